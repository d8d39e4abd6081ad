"""Pillow plugin for .ncf files, registered by ``import neuralcodec``.

    from PIL import Image
    import neuralcodec
    im = Image.open("photo.ncf")          # parses the header only (no torch): im.size, im.info
    im.load()                            # decodes on first pixel access (neuralcodec.decode)
    im.save("copy.ncf", quality=3.5)     # encodes; also model=, metadata=, effort=, device=

``quality`` is the model's own scale (see ``ncodec models``), not JPEG's 0-100.
"""

from __future__ import annotations

from typing import IO

from PIL import Image, ImageFile

from ..bitstream import MAGIC, unpack
from ..errors import NeuralCodecError

FORMAT = "NCF"
MIME = "image/x-ncf"
_SAVE_OPTIONS = ("model", "quality", "metadata", "effort", "device")


def _accept(prefix: bytes) -> bool:
    return prefix[:4] == MAGIC


class NcfImageFile(ImageFile.ImageFile):
    """An .ncf file: header fields in ``.info`` at open, pixels decoded on first access."""

    format = FORMAT
    format_description = "neuralcodec learned image"

    def _open(self) -> None:
        self._data = self.fp.read()
        try:
            container = unpack(self._data)  # validates header, sections and checksums; no torch
        except NeuralCodecError as exc:
            raise OSError(f"damaged .ncf file: {exc}") from exc
        h = container.header
        self._mode = "L" if h.channels == 1 else "RGB"
        self._size = (h.width, h.height)
        self.info.update(model=h.model_id, quality=h.quality, version=f"{container.version[0]}.{container.version[1]}",
                         width=h.width, height=h.height, channels=h.channels, bit_depth=h.bit_depth)
        meta = container.metadata
        if "icc" in meta:
            self.info["icc_profile"] = meta["icc"]
        if "exif" in meta:
            self.info["exif"] = meta["exif"]
        if "xmp" in meta:
            self.info["xmp"] = meta["xmp"]
        self.tile = []

    def load(self):
        if self._im is None:
            from ..codec import decode

            try:
                decoded = decode(self._data)
            except NeuralCodecError as exc:
                raise OSError(f"cannot decode .ncf file: {exc}") from exc
            self.im = decoded.to_pil().im
            self._data = b""
            if self._exclusive_fp and self._close_exclusive_fp_after_loading and self.fp is not None:
                self.fp.close()
                self.fp = None
        return Image.Image.load(self)


def _save(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    from ..codec import encode_image

    options = {k: im.encoderinfo[k] for k in _SAVE_OPTIONS if im.encoderinfo.get(k) is not None}
    icc = im.encoderinfo.get("icc_profile")
    if icc:  # Pillow's usual save option overrides the image's own profile
        im = im.copy()
        im.info["icc_profile"] = icc
    fp.write(encode_image(im, **options).data)


Image.register_open(FORMAT, NcfImageFile, _accept)
Image.register_save(FORMAT, _save)
Image.register_extension(FORMAT, ".ncf")
Image.register_mime(FORMAT, MIME)
