"""compressai's layers and entropy models, imported without running compressai's package ``__init__``.

``import compressai`` imports every subpackage, ``datasets`` included (torch_geometric, pandas,
scipy): about 3 of its 4.4 s here, none of it used to code or to train. Importing this module
registers ``compressai`` and ``compressai.models`` as *deferred* packages: their submodules import
as usual, and their ``__init__`` runs in full the first time an attribute it defines is read, so
``compressai.zoo`` or ``compressai.datasets.ImageFolder`` still work in the same process.
``scipy.stats`` (read by compressai's Gaussian model only when it builds its own tables) is
loaded on first use. The classes are compressai's own: weights load and train unchanged.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import warnings


def _deferred_package(name: str, **attrs) -> None:
    """Put package ``name`` in ``sys.modules`` with its ``__path__`` but without running its
    ``__init__`` until an attribute that is not a submodule is read; ``attrs`` are defined up
    front (what its submodules read at import time)."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    module = importlib.util.module_from_spec(spec)
    module.__dict__.update(attrs)

    def __getattr__(attr: str):
        if importlib.util.find_spec(f"{name}.{attr}") is not None:
            return importlib.import_module(f"{name}.{attr}")
        del module.__getattr__  # the real __init__ defines the rest
        spec.loader.exec_module(module)
        try:
            return module.__dict__[attr]
        except KeyError:
            raise AttributeError(f"module '{name}' has no attribute '{attr}'") from None

    module.__getattr__ = __getattr__
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)


_deferred_package(
    "compressai",
    # read by compressai.entropy_models when an entropy model is built: the default coder
    _entropy_coder="ans",
    get_entropy_coder=lambda: "ans",
    available_entropy_coders=lambda: ["ans"],
)
_deferred_package("compressai.models")
_deferred_package("scipy.stats")

with warnings.catch_warnings():
    # compressai's layers use torch.jit.script, which torch 2.14 deprecates with a FutureWarning
    # on every import; it says nothing to our users.
    warnings.filterwarnings("ignore", category=FutureWarning, message=r".*torch\.jit\.script.*")
    from compressai.entropy_models import EntropyBottleneck, GaussianConditional
    from compressai.layers import GDN, CheckerboardMaskedConv2d, ResidualBlock, conv3x3
    from compressai.models.utils import conv, deconv

__all__ = ["EntropyBottleneck", "GaussianConditional", "GDN", "CheckerboardMaskedConv2d", "ResidualBlock",
           "conv3x3", "conv", "deconv"]
