import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

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
