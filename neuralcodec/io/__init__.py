"""Reading and writing images (Pillow) with the colour policy; atomic file output."""

from .files import write_atomic
from .images import ColorPolicyWarning, load_image, save_image

__all__ = ["write_atomic", "ColorPolicyWarning", "load_image", "save_image"]
