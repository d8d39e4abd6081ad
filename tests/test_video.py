"""Video codec (.ncv): exact round trip, P-frames are the image model's synthesis, seeking, GOPs,
damaged and cut-short files, odd sizes, YUV and RGB sources. Tiny frames keep each test fast."""

import json
import warnings

import numpy as np
import pytest
import torch

from neuralcodec.bitstream.video import NcvReader, TruncatedVideoWarning
from neuralcodec.errors import CorruptFileError, InputError, NotNcfError
from neuralcodec.io.video import VideoWriter, open_video
from neuralcodec.models.video_weights import load_video_model
from neuralcodec.models.weights import load_model_for_digest
from neuralcodec.video import decode_frame, decode_video, encode_video, read_video_info

from .conftest import SAMPLES

MODEL = "stem-msh"  # model-independent behaviour is tested on this one
MODELS = ["stem-msh", "stem-elic", "stem-elic-cg", "stem-elic-copy"]  # coding itself on every video model


def moving_frames(n: int, h: int = 48, w: int = 64, seed: int = 0) -> list[np.ndarray]:
    """A photo crop panning by a few pixels per frame: real texture, real motion."""
    from PIL import Image

    photo = np.asarray(Image.open(SAMPLES / "coffee.png").convert("RGB"))
    return [np.ascontiguousarray(photo[10 + 2 * t + seed : 10 + 2 * t + seed + h, 20 + 3 * t : 20 + 3 * t + w])
            for t in range(n)]


def write_png_folder(folder, frames) -> None:
    from PIL import Image

    folder.mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"{i + 1:06d}.png")


def encode(tmp_path, frames, gop=3, name="v.ncv", model=MODEL, **kw):
    src = tmp_path / (name + ".frames")
    write_png_folder(src, frames)
    coded = []
    enc = encode_video(src, tmp_path / name, model, gop=gop, reconstruct=True, on_frame=coded.append, **kw)
    return enc, coded


def image_model_of(header):
    """The image model version a file's frames were coded with."""
    return load_model_for_digest(header.image_model_id, header.image_weights_digest).model


@pytest.fixture(scope="module", params=MODELS)
def clip(request, tmp_path_factory):
    """Seven frames, GOP 3 (I P P I P P I), with the encoder's reconstructions."""
    tmp = tmp_path_factory.mktemp("clip")
    frames = moving_frames(7)
    enc, coded = encode(tmp, frames, gop=3, model=request.param)
    return enc, coded, frames


def test_round_trip_is_exact(clip):
    enc, coded, _ = clip
    decoded = list(decode_video(enc.path))
    assert [d.index for d in decoded] == list(range(7))
    for d, c in zip(decoded, coded):
        assert np.array_equal(d.rgb, c.rgb)
    # GOP 3: frames 0, 3, 6 are I; scene cuts may make any other one I where that is cheaper
    assert [d.intra for d in decoded] == [c.record.intra for c in coded]
    assert all(decoded[i].intra for i in (0, 3, 6)) and not all(d.intra for d in decoded)


def test_png_source_is_read_exactly_and_reconstruction_is_close(clip):
    _, coded, frames = clip
    assert all(c.psnr > 20 for c in coded)  # the codec codes these frames, not something else


def test_p_frame_pixels_are_the_image_models_synthesis(clip):
    enc, coded, _ = clip
    h = enc.header
    image = image_model_of(h)
    for c in coded:
        x = image.synthesize(c.latent[None].float().contiguous(), h.quality)  # image model's g_s, float output
        rgb = x[0, :, : h.height, : h.width].mul(255).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()
        assert np.array_equal(rgb, c.rgb)


@pytest.mark.parametrize("model", MODELS)
def test_intra_frames_are_coded_as_the_image_model_codes_an_image(tmp_path, model):
    frames = moving_frames(1)
    enc, coded = encode(tmp_path, frames, gop=1, batch=1, model=model)
    image = image_model_of(enc.header)
    x = torch.from_numpy(frames[0]).permute(2, 0, 1)[None].float().div(255)
    x = torch.nn.functional.pad(x, (0, enc.header.pad_right, 0, enc.header.pad_bottom), mode="replicate")
    ref = image.compress(x, enc.header.quality, reconstruct=False)[0]
    assert coded[0].record.sections == ref.sections
    assert coded[0].record.latent_digest == ref.latent_digest


def test_seeking_equals_the_full_decode(clip):
    enc, _, _ = clip
    full = [d.rgb for d in decode_video(enc.path)]
    for i in (0, 2, 3, 5, 6):
        assert np.array_equal(decode_frame(enc.path, i), full[i])
    later = [d.rgb for d in decode_video(enc.path, start=4)]
    assert all(np.array_equal(a, b) for a, b in zip(later, full[4:])) and len(later) == 3


def test_seeking_past_the_end_is_an_error(clip):
    with pytest.raises(IndexError, match="frame 7"):
        decode_frame(clip[0].path, 7)


@pytest.mark.parametrize("gop,types", [(1, "IIII"), (0, "IPPP"), (2, "IPIP")])
def test_gop_settings(tmp_path, gop, types):
    enc, _ = encode(tmp_path, moving_frames(4), gop=gop)
    info = read_video_info(enc.path)
    assert "".join("I" if e.intra else "P" for e in info.entries) == types
    assert info.header.gop == gop and info.indexed


@pytest.mark.parametrize("model", ["stem-msh", "stem-elic-copy"])  # stem-elic(-cg) save under 5 % here (docs/benchmarks.md, "A still scene")
def test_temporal_prior_saves_bits_on_a_static_scene(tmp_path, model):
    """A P-frame of a still scene costs less than coding it again as an image (an untrained P-frame
    model costs as much as an I-frame plus a section, and fails this)."""
    frames = moving_frames(1, 128, 192) * 3
    intra, _ = encode(tmp_path, frames, gop=1, name="i.ncv", model=model)
    inter, _ = encode(tmp_path, frames, gop=0, name="p.ncv", model=model)
    assert sum(inter.frame_sizes[1:]) < 0.95 * sum(intra.frame_sizes[1:])


@pytest.mark.parametrize("n", [1, 2])
def test_one_and_two_frame_videos_at_qcif(tmp_path, n):
    frames = moving_frames(n, 144, 176)
    enc, coded = encode(tmp_path, frames)
    decoded = list(decode_video(enc.path))
    assert len(decoded) == n and decoded[0].rgb.shape == (144, 176, 3)
    assert all(np.array_equal(d.rgb, c.rgb) for d, c in zip(decoded, coded))


def _cut(enc, nbytes, tmp_path, name="cut.ncv"):
    out = tmp_path / name
    out.write_bytes(enc.path.read_bytes()[:nbytes])
    return out


def test_file_cut_mid_frame_decodes_its_complete_frames_and_warns(clip, tmp_path):
    enc, coded, _ = clip
    with NcvReader(enc.path) as r:
        cut_at = r.file.entries[4].offset + 20  # inside frame 4
    path = _cut(enc, cut_at, tmp_path)
    with pytest.warns(TruncatedVideoWarning, match="4 complete frames"):
        decoded = list(decode_video(path))
    assert len(decoded) == 4 and all(np.array_equal(d.rgb, c.rgb) for d, c in zip(decoded, coded))
    assert read_video_info(path).truncated


def test_file_without_its_index_decodes_every_frame(clip, tmp_path):
    enc, coded, _ = clip
    with NcvReader(enc.path) as r:
        index_at = sum(e.size for e in r.file.entries) + r.file.entries[0].offset
    path = _cut(enc, index_at, tmp_path)
    info = read_video_info(path)
    assert not info.indexed and not info.truncated and info.frames == 7
    assert np.array_equal(decode_frame(path, 6), coded[6].rgb)


def test_damaged_frame_is_named_and_earlier_frames_decode(clip, tmp_path):
    enc, _, _ = clip
    data = bytearray(enc.path.read_bytes())
    with NcvReader(enc.path) as r:
        e = r.file.entries[2]
    data[e.offset + e.size - 3] ^= 0x40  # inside frame 2's last section
    path = tmp_path / "bad.ncv"
    path.write_bytes(bytes(data))
    got = []
    with pytest.raises(CorruptFileError, match="frame 2: checksum"):
        for f in decode_video(path):
            got.append(f.index)
    assert got == [0, 1]


def test_damaged_header_and_wrong_magic_are_one_error(clip, tmp_path):
    data = bytearray(clip[0].path.read_bytes())
    data[12] ^= 1
    (tmp_path / "h.ncv").write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match="header checksum"):
        read_video_info(tmp_path / "h.ncv")
    (tmp_path / "m.ncv").write_bytes(b"\x89NCF" + bytes(data[4:]))
    with pytest.raises(NotNcfError):
        read_video_info(tmp_path / "m.ncv")


def test_absurd_frame_count_in_index_is_rejected_before_allocation(clip, tmp_path):
    import struct

    data = bytearray(clip[0].path.read_bytes())
    data[-12:-8] = struct.pack("<I", 4_000_000_000)
    (tmp_path / "n.ncv").write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match="index"):
        read_video_info(tmp_path / "n.ncv")


def test_raw_yuv_source(tmp_path):
    h, w = 48, 64
    rng = np.random.default_rng(0)
    y = np.clip(rng.normal(128, 20, (3, h, w)), 16, 235).astype(np.uint8)
    uv = np.full((3, 2, h // 2, w // 2), 128, np.uint8)
    raw = b"".join(y[i].tobytes() + uv[i].tobytes() for i in range(3))
    (tmp_path / "c.yuv").write_bytes(raw)
    with pytest.raises(InputError, match="--size"):
        encode_video(tmp_path / "c.yuv", tmp_path / "c.ncv", MODEL)
    enc = encode_video(tmp_path / "c.yuv", tmp_path / "c.ncv", MODEL, size=(w, h), fps=12, gop=2)
    assert enc.frames == 3 and enc.header.fps == 12
    with open_video(tmp_path / "c.yuv", (w, h), 12) as r:
        first = next(iter(r))
    assert first.shape == (h, w, 3)
    assert np.all(first[..., 0] == first[..., 1])  # neutral chroma: grey pixels


def test_ffv1_output_is_lossless_and_carries_the_frame_rate(clip, tmp_path):
    enc, coded, _ = clip
    with VideoWriter(tmp_path / "o.mkv", enc.header.width, enc.header.height, enc.header.fps) as out:
        for d in decode_video(enc.path):
            out.write(d.rgb)
    with open_video(tmp_path / "o.mkv") as r:
        back = list(r)
        assert r.info.fps == enc.header.fps
    assert len(back) == 7 and all(np.array_equal(a, c.rgb) for a, c in zip(back, coded))


def test_writer_leaves_nothing_behind_on_failure(tmp_path):
    with pytest.raises(RuntimeError):
        with VideoWriter(tmp_path / "o.mkv", 64, 48, 25) as out:
            out.write(np.zeros((48, 64, 3), np.uint8))
            raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []


def test_encoder_writes_nothing_when_the_source_fails(tmp_path):
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    with pytest.raises(InputError):
        encode_video(tmp_path / "bad.mp4", tmp_path / "o.ncv", MODEL)
    assert not (tmp_path / "o.ncv").exists()


def test_video_model_records_its_image_model():
    loaded = load_video_model(MODEL)
    assert loaded.image.model_id == "mean-scale-hyperprior"
    assert loaded.codec.image is loaded.image.model


def test_cli_encode_info_decode(tmp_path, capsys):
    from neuralcodec.cli import main

    write_png_folder(tmp_path / "frames", moving_frames(3))
    assert main(["encode", str(tmp_path / "frames"), "-o", str(tmp_path / "c.ncv"), "--gop", "2", "--fps", "30", "-q"]) == 0
    assert main(["info", str(tmp_path / "c.ncv"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["frames"] == 3 and info["frame_types"] == "IPI" and info["fps"] == "30/1" and info["gop"] == 2
    assert main(["decode", str(tmp_path / "c.ncv"), "-o", str(tmp_path / "out") + "/", "-q"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["000001.png", "000002.png", "000003.png"]
    decoded = [d.rgb for d in decode_video(tmp_path / "c.ncv")]
    from PIL import Image

    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "000002.png")), decoded[1])


def test_cli_errors_are_one_line(tmp_path, capsys):
    from neuralcodec.cli import main

    (tmp_path / "bad.ncv").write_bytes(b"\x89NCV" + bytes(40))
    assert main(["decode", str(tmp_path / "bad.ncv"), "-o", str(tmp_path / "o.mkv")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ncodec: error:")
    assert not (tmp_path / "o.mkv").exists()
    assert main(["encode", str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "m.ncv")]) == 1


def test_odd_sized_420_output_is_refused_before_writing(tmp_path):
    with pytest.raises(InputError, match="even width"):
        VideoWriter(tmp_path / "o.mp4", 65, 48, 25)
    assert list(tmp_path.iterdir()) == []


def test_cli_image_model_names_the_video_model_built_on_it(tmp_path, capsys):
    """`--model mean-scale-hyperprior` on a video means stem-msh, which codes frames with it."""
    from neuralcodec.cli import main

    write_png_folder(tmp_path / "frames", moving_frames(2))
    out = tmp_path / "c.ncv"
    assert main(["encode", str(tmp_path / "frames"), "-o", str(out), "--model", "mean-scale-hyperprior", "-q"]) == 0
    assert main(["info", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == "stem-msh"
    assert main(["encode", str(tmp_path / "frames"), "-o", str(tmp_path / "d.ncv"), "--model", "factorized-prior"]) == 2


def cut_clip() -> list[np.ndarray]:
    """Three frames of one scene, then three of another (a cut at frame 3), 96x64."""
    from PIL import Image

    photo = np.asarray(Image.open(SAMPLES / "chelsea.png").convert("RGB"))
    other = [np.ascontiguousarray(photo[40 + 2 * t : 104 + 2 * t, 100 + 3 * t : 196 + 3 * t]) for t in range(3)]
    return moving_frames(3, h=64, w=96) + other


@pytest.mark.parametrize("model", MODELS)
def test_a_scene_cut_becomes_an_i_frame(tmp_path, model):
    """With scene cuts (the default) the cut frame is coded as an I-frame, where its P-frame costs
    more (measured margin: 38 bytes for stem-msh, 52 for stem-elic); the file is format 1.1 and
    decodes exactly. Without, the GOP's types stay and the file is 1.0 and larger."""
    frames = cut_clip()
    cut, coded = encode(tmp_path, frames, gop=0, name="cut.ncv", model=model)
    plain, _ = encode(tmp_path, frames, gop=0, name="plain.ncv", model=model, scene_cuts=False)
    assert cut.intra[3] and plain.intra == [True] + [False] * 5  # frames 1-2 are P by 14-22 bytes: not asserted
    assert read_video_info(cut.path).version == (1, 1) and read_video_info(plain.path).version == (1, 0)
    assert cut.bytes < plain.bytes
    decoded = list(decode_video(cut.path))  # latents exact, else LatentMismatchError
    assert [f.intra for f in decoded] == cut.intra
    assert all(np.array_equal(f.rgb, c.rgb) for f, c in zip(decoded, coded))
    assert np.array_equal(decode_frame(cut.path, 4), coded[4].rgb)  # seeks from the cut's I-frame


def test_cli_no_scenecut_keeps_the_gop(tmp_path, capsys):
    from neuralcodec.cli import main

    write_png_folder(tmp_path / "frames", cut_clip())
    for flag, types, version in ([], "IPPIPP", "1.1"), (["--no-scenecut"], "IPPPPP", "1.0"):
        out = tmp_path / f"c{len(flag)}.ncv"
        assert main(["encode", str(tmp_path / "frames"), "-o", str(out), "--gop", "0", "--fps", "25", "-q", *flag]) == 0
        assert main(["info", str(out), "--json"]) == 0
        info = json.loads(capsys.readouterr().out)
        assert (info["frame_types"], info["version"]) == (types, version)
