import os
import sys
import warnings
from pathlib import Path

# One torch thread per test process (and the CLI processes tests start) unless OMP_NUM_THREADS
# says otherwise: the suite's time then does not depend on what else the machine runs (two
# threads beside a training job on one of two cores made it 4x slower), and no result depends
# on how many cores split a reduction.
if not os.environ.get("OMP_NUM_THREADS"):
    os.environ["OMP_NUM_THREADS"] = "1"

import numpy as np
import pytest
import torch
from PIL import Image

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
KODAK = ROOT.parent / "shared" / "data" / "kodak"

warnings.filterwarnings("ignore", category=FutureWarning)


@pytest.fixture(scope="session")
def photo() -> Image.Image:
    """A real photo (the bundled sample), so latents are not trivially empty."""
    return Image.open(SAMPLES / "coffee.png").convert("RGB")


def crop(im: Image.Image, w: int, h: int, left: int = 0, top: int = 0) -> Image.Image:
    return im.crop((left, top, left + w, top + h))


def random_image(h: int, w: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")


def run_cli(*args: str, cwd: Path | None = None):
    import subprocess

    return subprocess.run(
        [sys.executable, "-m", "neuralcodec.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )
