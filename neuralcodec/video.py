"""The video API: sources to ``.ncv`` files and back, one frame at a time.

    from neuralcodec.video import encode_video, decode_video, decode_frame
    info = encode_video("clip.mp4", "clip.ncv", quality=1.0, gop=32)
    for frame in decode_video("clip.ncv"):         # frame.rgb: (H, W, 3) uint8
        ...
    rgb = decode_frame("clip.ncv", 40)              # seeks to the I-frame before frame 40
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .bitstream import video as ncv
from .codec import image_digest
from .metrics import psnr
from .errors import InputError, InvalidHeaderError, LatentMismatchError, ModelError, ReconstructionMismatchWarning, WeightsMismatchError
from .models.video_weights import DEFAULT_VIDEO_MODEL, LoadedVideoModel, load_video_model, load_video_model_for_digest

DEFAULT_GOP = 32


@dataclass
class CodedFrame:
    """One frame as the encoder produced it."""

    record: ncv.FrameRecord
    size: int  # bytes of its record in the file
    rgb: np.ndarray | None  # (H, W, 3) uint8 reconstruction, exactly what the decoder returns (reconstruct=True)
    latent: torch.Tensor  # (M, h, w) float64 ŷ, exactly what the decoder reconstructs
    psnr: float | None = None  # RGB PSNR of the reconstruction against the source frame (reconstruct=True)


@dataclass
class EncodedVideo:
    path: Path
    header: ncv.VideoHeader
    frame_sizes: list[int] = field(default_factory=list)
    intra: list[bool] = field(default_factory=list)

    @property
    def frames(self) -> int:
        return len(self.frame_sizes)

    @property
    def bytes(self) -> int:
        return self.path.stat().st_size

    @property
    def bpp(self) -> float:
        return self.bytes * 8 / (self.frames * self.header.width * self.header.height)


@dataclass
class DecodedFrame:
    index: int
    intra: bool
    rgb: np.ndarray  # (H, W, 3) uint8


def make_header(loaded: LoadedVideoModel, quality: float | None, width: int, height: int, fps: Fraction, gop: int,
                scene_cuts: bool = True) -> ncv.VideoHeader:
    """Header of a video coded with ``loaded`` (checks quality and GOP); ``scene_cuts`` lets the
    encoder code any frame as an I-frame where that is smaller (format 1.1; without, 1.0)."""
    q = loaded.default_quality if quality is None else float(quality)
    loaded.image.check_quality(q)
    if gop < 0:
        raise ValueError(f"GOP must be 0 (only the first frame intra) or positive, got {gop}")
    k = loaded.codec.image.downsampling
    fps = Fraction(fps).limit_denominator(1_000_000)
    return ncv.VideoHeader(
        loaded.model_id, loaded.digest, loaded.image.model_id, loaded.image.digest, int(round(q * 1000)),
        width, height, -height % k, -width % k, fps.numerator, fps.denominator, fps.denominator, fps.numerator, gop,
        ncv.SCENE_CUTS if scene_cuts else 0,
    )


def encode_frames(frames: Iterable[np.ndarray], loaded: LoadedVideoModel, header: ncv.VideoHeader,
                  batch: int = 4, reconstruct: bool = False, device: str = "cpu") -> Iterator[CodedFrame]:
    """Code RGB frames (H, W, 3) uint8 in order: the analysis runs on ``batch`` frames at once,
    the entropy coding frame by frame (each P-frame needs the previous decoded latent). With the
    header's ``scene_cuts`` a frame the GOP rule leaves to P is also coded as an I-frame, and the
    smaller of the two is kept (a cut, or motion the temporal prior cannot follow)."""
    codec, q = loaded.codec, header.quality
    chunk: list[np.ndarray] = []
    state = {"index": 0, "ref": None}

    def flush() -> Iterator[CodedFrame]:
        x = torch.from_numpy(np.stack(chunk)).to(device).permute(0, 3, 1, 2).float().div_(255)
        x = F.pad(x, (0, header.pad_right, 0, header.pad_bottom), mode="replicate").contiguous()
        y = codec.analysis(x, q)
        for j in range(y.shape[0]):
            i = state["index"]
            code = codec.encode(y[j : j + 1], None if header.is_intra(i) else state["ref"])
            if not code.intra and header.scene_cuts:  # the same frame as an I-frame: keep the smaller
                alt = codec.encode(y[j : j + 1], None)
                code = alt if sum(map(len, alt.sections)) < sum(map(len, code.sections)) else code
            state["ref"], state["index"] = code.y_hat, i + 1
            rgb = codec.reconstruct(code.y_hat, q, header.height, header.width) if reconstruct else None
            rec = ncv.FrameRecord(i, code.intra, code.sections, code.latent_digest,
                                  image_digest(rgb) if rgb is not None else None)
            yield CodedFrame(rec, 0, rgb, code.y_hat[0], psnr(chunk[j], rgb) if rgb is not None else None)
        chunk.clear()

    for rgb in frames:
        if rgb.shape != (header.height, header.width, 3) or rgb.dtype != np.uint8:
            raise InputError(f"frame {state['index'] + len(chunk)} has shape {rgb.shape}, expected "
                             f"({header.height}, {header.width}, 3) uint8")
        chunk.append(rgb)
        if len(chunk) == batch:
            yield from flush()
    if chunk:
        yield from flush()


def encode_video(
    source, output: str | Path, model: str = DEFAULT_VIDEO_MODEL, quality: float | None = None,
    gop: int = DEFAULT_GOP, frames: int | None = None, device: str = "cpu", batch: int = 4,
    reconstruct: bool = False, size: tuple[int, int] | None = None, fps: float | Fraction | None = None,
    pix_fmt: str = "yuv420p", on_frame: Callable[[CodedFrame], None] | None = None, scene_cuts: bool = True,
) -> EncodedVideo:
    """Encode a video source (path, see neuralcodec.io.video) to a .ncv file, streaming.

    The file is written under a temporary name beside ``output`` and renamed when complete.
    ``frames`` limits how many frames are coded; ``on_frame`` sees every coded frame (with its
    reconstruction if ``reconstruct``). ``scene_cuts`` (default) codes a frame as an I-frame
    wherever that is smaller than its P-frame (format 1.1); ``False`` keeps the GOP's frame types
    and writes format 1.0.
    """
    from .io.files import publish
    from .io.video import open_video

    if frames is not None and frames < 1:
        raise ValueError("--frames must be at least 1")
    loaded = load_video_model(model, device)
    output = Path(output)
    with open_video(source, size, fps, pix_fmt) as reader:
        info = reader.info
        if info.has_audio:
            warnings.warn("audio is not carried: only the video stream is coded", stacklevel=2)
        header = make_header(loaded, quality, info.width, info.height, info.fps, gop, scene_cuts)
        result = EncodedVideo(output, header)
        output.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                writer = ncv.NcvWriter(f, header)
                for coded in encode_frames(_until(reader, frames), loaded, header, batch, reconstruct, device):
                    coded.size = writer.add(coded.record)
                    result.frame_sizes.append(coded.size)
                    result.intra.append(coded.record.intra)
                    if on_frame is not None:
                        on_frame(coded)
                if not result.frame_sizes:
                    raise InputError(f"{source}: no frames to encode")
                writer.finish()
            publish(Path(tmp), output)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    return result


def _until(it: Iterable[np.ndarray], n: int | None) -> Iterator[np.ndarray]:
    """Stop reading the source after ``n`` frames (the generator above would decode them all)."""
    for i, x in enumerate(it):
        yield x
        if n is not None and i + 1 >= n:
            return


# ---- decoding -------------------------------------------------------------------------------


def _check_header(h: ncv.VideoHeader, device: str) -> LoadedVideoModel:
    try:  # the installed version whose weights the file names
        loaded = load_video_model_for_digest(h.model_id, h.weights_digest, device)
    except ModelError as exc:
        raise ModelError(f"this file needs video model '{h.model_id}': {exc}") from None
    if h.image_model_id != loaded.image.model_id or h.image_weights_digest != loaded.image.digest:
        raise WeightsMismatchError(f"file's frames were coded with image model '{h.image_model_id}' weights "
                                   f"{h.image_weights_digest.hex()[:12]}, the installed ones are "
                                   f"'{loaded.image.model_id}' {loaded.image.digest.hex()[:12]}")
    k = loaded.codec.image.downsampling
    if (h.height + h.pad_bottom) % k or (h.width + h.pad_right) % k or h.pad_bottom >= k or h.pad_right >= k:
        raise InvalidHeaderError(f"padding {h.pad_bottom}/{h.pad_right} does not fit model '{h.model_id}'")
    try:
        loaded.codec.image.check_quality(h.quality)
    except ValueError as exc:
        raise InvalidHeaderError(str(exc)) from None
    return loaded


class VideoDecoder:
    """Decode frames of an open .ncv file; keeps the last decoded latent as the P-frame reference."""

    def __init__(self, path: str | Path, device: str = "cpu") -> None:
        self.reader = ncv.NcvReader(path)
        try:
            self.header = self.reader.file.header
            self.loaded = _check_header(self.header, device)
        except BaseException:
            self.reader.close()
            raise
        self.device = device
        self._ref: torch.Tensor | None = None
        self._next = 0  # index of the frame whose reference self._ref is
        self._warned = False

    @property
    def frames(self) -> int:
        return self.reader.file.frames

    def _latent(self, record: ncv.FrameRecord) -> torch.Tensor:
        h = self.header
        if not h.allows(record.number, record.intra):
            raise InvalidHeaderError(f"frame {record.number}: its type contradicts the header's GOP")
        code = self.loaded.codec.decode(record.sections, None if record.intra else self._ref,
                                        h.height + h.pad_bottom, h.width + h.pad_right, h.quality, self.device)
        if code.latent_digest[: ncv.DIGEST] != record.latent_digest:
            raise LatentMismatchError(f"frame {record.number}: decoded latents differ from the encoder's although all "
                                      "checksums pass (encoder/decoder mismatch: other platform or library versions)")
        self._ref, self._next = code.y_hat, record.number + 1
        return code.y_hat

    def _rgb(self, y_hat: torch.Tensor, record: ncv.FrameRecord) -> np.ndarray:
        h = self.header
        rgb = self.loaded.codec.reconstruct(y_hat, h.quality, h.height, h.width)
        if record.image_digest and image_digest(rgb)[: ncv.DIGEST] != record.image_digest and not self._warned:
            self._warned = True
            warnings.warn(f"frame {record.number}: decoded pixels differ slightly from the encoder's reconstruction "
                          "(the latents match; the synthesis ran on another device or build)",
                          ReconstructionMismatchWarning, stacklevel=3)
        return rgb

    def frames_from(self, start: int = 0) -> Iterator[DecodedFrame]:
        """Frames ``start``.. in order; the latents before ``start`` are decoded from the I-frame
        that precedes it, without synthesis."""
        self._seek(start)
        for rec in self.reader.records(self._next):
            yield DecodedFrame(rec.number, rec.intra, self._rgb(self._latent(rec), rec))

    def _seek(self, i: int) -> None:
        if not (0 <= i < max(self.frames, 1)):
            raise IndexError(f"frame {i} is out of range (the file has {self.frames} frames)")
        if self._ref is not None and self._next == i:
            return
        key = max(j for j in range(i + 1) if self.reader.file.entries[j].intra) if self.frames else 0
        self._ref, self._next = None, key
        for j in range(key, i):
            self._latent(self.reader.read_frame(j))

    def frame(self, i: int) -> DecodedFrame:
        """Frame ``i`` alone: latents from the preceding I-frame on, one synthesis."""
        self._seek(i)
        rec = self.reader.read_frame(i)
        return DecodedFrame(i, rec.intra, self._rgb(self._latent(rec), rec))

    def close(self) -> None:
        self.reader.close()

    def __enter__(self) -> "VideoDecoder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def decode_video(path: str | Path, device: str = "cpu", start: int = 0) -> Iterator[DecodedFrame]:
    """Frames of a .ncv file in order (from ``start``); a file without its index (cut short)
    yields its complete frames and then warns with ``TruncatedVideoWarning``."""
    with VideoDecoder(path, device) as dec:
        yield from dec.frames_from(start)


def decode_frame(path: str | Path, index: int, device: str = "cpu") -> np.ndarray:
    """Frame ``index`` (H, W, 3) uint8, decoded from the preceding I-frame on."""
    with VideoDecoder(path, device) as dec:
        return dec.frame(index).rgb


def read_video_info(path: str | Path) -> ncv.NcvFile:
    """Header, frame types and record sizes of a .ncv file, without decoding."""
    with ncv.NcvReader(path) as r:
        return r.file
