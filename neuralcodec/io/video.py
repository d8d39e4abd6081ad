"""Reading and writing videos with PyAV, one frame at a time (memory flat in the clip's length).

Sources: container files (mp4, mkv, mov, webm, avi, y4m), raw planar ``.yuv`` (size, frame rate
and pixel format given, ffmpeg conventions) and PNG frame folders (a directory, a glob pattern
such as ``frames/*.png`` or a printf pattern such as ``frames/%06d.png``).

Colour policy: YUV frames become 8-bit RGB with the matrix and range the stream declares
(BT.709, BT.601/BT.470BG/SMPTE 170M, BT.2020, ...). Untagged streams use BT.709 from 720 lines
up and BT.601 below (ffmpeg's and most players' convention), limited range unless tagged full
(``yuvj*`` pixel formats are full). RGB sources (FFV1 RGB, PNG) are read exactly. Audio is not
carried. Outputs use the same rule in reverse for YUV formats.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import InputError
from .files import publish

CONTAINER_SUFFIXES = {".mp4", ".mkv", ".mov", ".webm", ".avi", ".y4m", ".yuv"}
OUTPUT_SUFFIXES = {".mkv", ".y4m", ".mp4"}
DEFAULT_FOLDER_FPS = Fraction(25)
MAX_SIDE = 16384

# AVColorSpace values of the stream -> swscale matrix names
_MATRIX = {1: "ITU709", 5: "ITU601", 6: "ITU601", 4: "FCC", 7: "SMPTE240M", 9: "BT2020", 10: "BT2020"}


def is_folder_source(path: str | Path) -> bool:
    s = str(path)
    return Path(s).is_dir() or "*" in s or "%" in s


def is_video_path(path: str | Path) -> bool:
    """Whether ``path`` names a video source (container suffix or frame folder/pattern)."""
    return Path(path).suffix.lower() in CONTAINER_SUFFIXES or is_folder_source(path)


def default_matrix(height: int) -> str:
    """Matrix of untagged YUV: BT.709 from 720 lines up, BT.601 below."""
    return "ITU709" if height >= 720 else "ITU601"


@dataclass
class VideoInfo:
    width: int
    height: int
    fps: Fraction
    frames: int | None  # as the container announces it (None: unknown)
    color: str  # how frames become RGB, e.g. "yuv420p BT.601 limited -> RGB" or "rgb (exact)"
    has_audio: bool = False


class VideoReader:
    """Iterate a source's frames as (H, W, 3) uint8 RGB arrays; use as a context manager."""

    def __init__(self, path: str | Path, size: tuple[int, int] | None = None, fps: float | Fraction | None = None,
                 pix_fmt: str = "yuv420p") -> None:
        self.path = str(path)
        self._container = None
        self._files: list[Path] | None = None
        if is_folder_source(path):
            self._open_folder(fps)
        else:
            self._open_container(size, fps, pix_fmt)

    # ---- opening ------------------------------------------------------------------------

    def _open_folder(self, fps) -> None:
        s = self.path
        if Path(s).is_dir():
            files = sorted(p for p in Path(s).iterdir() if p.suffix.lower() == ".png")
        elif "%" in s:
            files = []
            start = 0 if os.path.exists(s % 0) else 1
            while os.path.exists(s % (start + len(files))):
                files.append(Path(s % (start + len(files))))
        else:
            files = [Path(p) for p in sorted(glob.glob(s))]
        if not files:
            raise InputError(f"{s}: no PNG frames found")
        from PIL import Image

        try:
            with Image.open(files[0]) as im:
                w, h = im.size
        except OSError as exc:
            raise InputError(f"{files[0]}: cannot read ({exc})") from None
        self._files = files
        self.info = VideoInfo(w, h, Fraction(fps) if fps else DEFAULT_FOLDER_FPS, len(files), "rgb (exact)")

    def _open_container(self, size, fps, pix_fmt) -> None:
        import av

        options, fmt = {}, None
        if Path(self.path).suffix.lower() == ".yuv":
            if size is None or fps is None:
                raise InputError(f"{self.path}: raw .yuv needs --size WxH and --fps F")
            fmt = "rawvideo"
            options = {"video_size": f"{size[0]}x{size[1]}", "pixel_format": pix_fmt, "framerate": str(fps)}
        if not os.path.exists(self.path):
            raise InputError(f"{self.path}: no such file")
        try:
            self._container = av.open(self.path, format=fmt, options=options)
        except (av.FFmpegError, ValueError) as exc:
            raise InputError(f"{self.path}: cannot open as video ({exc})") from None
        if not self._container.streams.video:
            self.close()
            raise InputError(f"{self.path}: has no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        cc = self._stream.codec_context
        w, h = cc.width, cc.height
        if not (1 <= w <= MAX_SIDE and 1 <= h <= MAX_SIDE):
            self.close()
            raise InputError(f"{self.path}: frame size {w}x{h} is not supported")
        rate = Fraction(fps) if fps else self._stream.average_rate or self._stream.guessed_rate or Fraction(25)
        frames = self._stream.frames or None
        self._rgb_source = cc.pix_fmt in ("gbrp", "rgb24", "bgr0", "rgba", "bgra", "0rgb", "rgb0", "bgr24")
        self._matrix = _MATRIX.get(int(cc.colorspace), default_matrix(h))
        self._full = int(cc.color_range) == 2 or (cc.pix_fmt or "").startswith("yuvj")
        color = "rgb (exact)" if self._rgb_source else (
            f"{cc.pix_fmt} {self._matrix.replace('ITU', 'BT.')} {'full' if self._full else 'limited'} -> RGB")
        has_audio = bool(self._container.streams.audio)
        self.info = VideoInfo(w, h, Fraction(rate), frames, color, has_audio)

    # ---- reading ------------------------------------------------------------------------

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._files is not None:
            yield from self._folder_frames()
            return
        import av

        try:
            for frame in self._container.decode(self._stream):
                yield self._to_rgb(frame)
        except av.FFmpegError as exc:
            raise InputError(f"{self.path}: cannot decode ({exc})") from None

    def _folder_frames(self) -> Iterator[np.ndarray]:
        from PIL import Image

        for f in self._files:
            try:
                with Image.open(f) as im:
                    rgb = np.asarray(im.convert("RGB"))
            except OSError as exc:
                raise InputError(f"{f}: cannot read ({exc})") from None
            if rgb.shape[:2] != (self.info.height, self.info.width):
                raise InputError(f"{f}: size {rgb.shape[1]}x{rgb.shape[0]} differs from the first frame's")
            yield rgb

    def _to_rgb(self, frame) -> np.ndarray:
        if (frame.width, frame.height) != (self.info.width, self.info.height):
            raise InputError(f"{self.path}: frame size changes mid-stream, which is not supported")
        if self._rgb_source:
            return frame.to_ndarray(format="rgb24")
        matrix = _MATRIX.get(int(frame.colorspace), self._matrix)
        rng = "JPEG" if (int(frame.color_range) == 2 or self._full) else "MPEG"
        out = frame.reformat(format="rgb24", src_colorspace=matrix, dst_colorspace=matrix,
                             src_color_range=rng, dst_color_range="JPEG", threads=1)
        return out.to_ndarray()

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_video(path: str | Path, size: tuple[int, int] | None = None, fps: float | Fraction | None = None,
               pix_fmt: str = "yuv420p") -> VideoReader:
    """Open a video source; see the module docstring for what is accepted."""
    return VideoReader(path, size, fps, pix_fmt)


def parse_size(text: str) -> tuple[int, int]:
    """``"WxH"`` -> (W, H)."""
    m = re.fullmatch(r"(\d+)x(\d+)", text.strip())
    if not m:
        raise InputError(f"size must be WxH, got {text!r}")
    return int(m.group(1)), int(m.group(2))


# ---- writing ------------------------------------------------------------------------------


def is_folder_output(path: str | Path) -> bool:
    s = str(path)
    return s.endswith(("/", os.sep)) or Path(s).is_dir() or Path(s).suffix == ""


class VideoWriter:
    """Write RGB frames to a folder of PNGs, .mkv (FFV1 lossless RGB), .y4m or .mp4 (libx264).

    Output appears atomically on :meth:`close` (temp file or folder, then rename); :meth:`abort`
    leaves nothing behind.
    """

    def __init__(self, path: str | Path, width: int, height: int, fps: Fraction, crf: int = 18) -> None:
        self.path = Path(str(path).rstrip("/" + os.sep))
        self.width, self.height, self.fps = width, height, Fraction(fps)
        self.count = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.folder = is_folder_output(path)
        suffix = self.path.suffix.lower()
        if not self.folder and suffix not in OUTPUT_SUFFIXES:
            raise InputError(f"{path}: output must be a folder, .mkv, .y4m or .mp4")
        if self.folder:
            self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", dir=self.path.parent))
            return
        if suffix in (".mp4", ".y4m") and (width % 2 or height % 2):
            raise InputError(f"{path}: 4:2:0 output needs an even width and height ({width}x{height}); "
                             "write .mkv or a folder of PNGs")
        import av

        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=suffix, dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        fmt = {".mkv": "matroska", ".y4m": "yuv4mpegpipe", ".mp4": "mp4"}[suffix]
        self._container = av.open(str(self._tmp), "w", format=fmt)
        codec = {".mkv": "ffv1", ".y4m": "rawvideo", ".mp4": "libx264"}[suffix]
        options = {"crf": str(crf), "preset": "medium"} if suffix == ".mp4" else {}
        self._stream = self._container.add_stream(codec, rate=self.fps, options=options)
        self._stream.width, self._stream.height = width, height
        self._stream.time_base = Fraction(1) / self.fps
        self._yuv = suffix != ".mkv"
        self._stream.pix_fmt = "bgr0" if not self._yuv else "yuv420p"
        self._matrix = default_matrix(height)
        if suffix == ".mp4":  # tag what we convert with, so players use the same matrix
            cc = self._stream.codec_context
            cc.colorspace = 1 if self._matrix == "ITU709" else 6
            cc.color_range = 1

    def write(self, rgb: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 frame."""
        self.count += 1
        if self.folder:
            from PIL import Image

            Image.fromarray(rgb).save(self._tmp / f"{self.count:06d}.png")
            return
        import av

        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        if self._yuv:
            frame = frame.reformat(format="yuv420p", src_colorspace=self._matrix, dst_colorspace=self._matrix,
                                   src_color_range="JPEG", dst_color_range="MPEG", threads=1)
        else:
            frame = frame.reformat(format="bgr0")
        frame.pts = self.count - 1
        frame.time_base = self._stream.time_base
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        """Finish the output and move it into place."""
        if self.folder:
            if self.path.exists():
                if not self.path.is_dir():
                    raise InputError(f"{self.path} exists and is not a folder")
                old = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.old.", dir=self.path.parent))
                os.replace(self.path, old / "x")
                os.replace(self._tmp, self.path)
                shutil.rmtree(old)
            else:
                os.replace(self._tmp, self.path)
            return
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        publish(self._tmp, self.path)

    def abort(self) -> None:
        """Remove the partial output."""
        if self.folder:
            shutil.rmtree(self._tmp, ignore_errors=True)
            return
        try:
            self._container.close()
        except Exception:  # noqa: BLE001 - the output is discarded anyway
            pass
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
