"""Start-up: the package, the container and the light CLI commands import no torch; the coding
path uses compressai's layers without running compressai's package ``__init__``."""

import json
import subprocess
import sys

import pytest

from .conftest import ROOT

GOLDEN = sorted((ROOT / "tests" / "golden").glob("*.ncf"))


def run_python(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON object, returned here."""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def cli_modules(*args: str) -> dict:
    """Exit status of ``ncodec ARGS`` run through ``main`` and whether it imported torch / compressai."""
    return run_python(f"""
import contextlib, io, json, sys
from neuralcodec.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        rc = main({list(args)!r})
    except SystemExit as e:
        rc = e.code
print(json.dumps({{"rc": rc, "torch": "torch" in sys.modules, "compressai": any(m.startswith("compressai") for m in sys.modules)}}))
""")


def test_package_bitstream_and_errors_import_without_torch():
    out = run_python("""
import json, sys
import neuralcodec, neuralcodec.bitstream, neuralcodec.errors, neuralcodec.models, neuralcodec.models.manifest
print(json.dumps({"torch": "torch" in sys.modules, "api": callable(neuralcodec.decode) and "torch" in sys.modules}))
""")
    assert out == {"torch": False, "api": True}  # the API still resolves, importing torch on first use


@pytest.mark.parametrize("args", [["--help"], ["models"], ["models", "--json"], ["info", str(GOLDEN[0])]])
def test_light_commands_import_no_torch(args):
    assert cli_modules(*args) == {"rc": 0, "torch": False, "compressai": False}


def test_coding_path_skips_compressai_package_init():
    """Loading a model and decoding import compressai's layers but neither its datasets (torch_geometric,
    pandas) nor scipy.stats; code that wants the whole package still gets it on first use."""
    out = run_python(f"""
import json, sys
import neuralcodec as nc
dec = nc.decode(open({str(GOLDEN[0])!r}, "rb").read())
seen = {{m: m in sys.modules for m in ("compressai.layers", "compressai.datasets", "torch_geometric", "pandas", "scipy.stats._stats_py")}}
import compressai
from compressai.models import MeanScaleHyperprior
seen["full"] = callable(compressai.set_entropy_coder) and "compressai.datasets" in sys.modules
print(json.dumps(seen))
""")
    assert out == {"compressai.layers": True, "compressai.datasets": False, "torch_geometric": False,
                   "pandas": False, "scipy.stats._stats_py": False, "full": True}


def test_deferred_scipy_stats_loads_on_use():
    """compressai's Gaussian model reads scipy.stats only to build its own tables: it still works."""
    out = run_python("""
import json
from neuralcodec._compressai import GaussianConditional
print(json.dumps(round(float(GaussianConditional(None)._standardized_quantile(0.5)), 6)))
""")
    assert out == 0.0


def test_registry_builds_models_lazily():
    from neuralcodec.models import REGISTRY, ImageCodec

    for spec in REGISTRY.values():
        assert isinstance(spec.build(), ImageCodec), spec.id


def test_version_flag_is_light():
    assert cli_modules("--version") == {"rc": 0, "torch": False, "compressai": False}
