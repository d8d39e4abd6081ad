"""Image round trips through the real model and container: exactness, invariance, policies, errors."""

import dataclasses
import functools

import numpy as np
import pytest
import torch
from PIL import Image

import neuralcodec as nc
from neuralcodec import bitstream
from neuralcodec.errors import InputError, LatentMismatchError, ModelError, WeightsMismatchError
from neuralcodec.models import DEFAULT_MODEL
from neuralcodec.models.weights import load_model

from .conftest import crop, random_image

encode = functools.partial(nc.encode_image, reconstruct=True)
encode_many = functools.partial(nc.encode_images, reconstruct=True)
LOADED = load_model(DEFAULT_MODEL)
Q_LO, Q_HI = LOADED.quality_range
Q_MID = LOADED.default_quality


@pytest.mark.parametrize("size", [(1, 1), (63, 65), (64, 64), (130, 70), (512, 768)])
def test_decode_is_bit_exact_to_encoder_reconstruction(photo, size):
    h, w = size
    im = photo.resize((w, h)) if h > photo.height or w > photo.width else crop(photo, w, h, 17, 9)
    enc = encode(im, quality=Q_MID)
    dec = nc.decode(enc.data)
    assert dec.rgb.shape == (h, w, 3)
    assert np.array_equal(dec.rgb, enc.rgb)
    assert (dec.header.height, dec.header.width) == (h, w)


def test_reconstruction_is_close_to_input(photo):
    im = crop(photo, 256, 192, 100, 50)
    enc = encode(im, quality=Q_HI)
    mse = np.mean((np.asarray(im, dtype=np.float64) - enc.rgb) ** 2)
    assert 10 * np.log10(255**2 / mse) > 24  # a broken transform or coder gives < 15 dB


def test_file_size_is_what_bpp_reports(photo):
    enc = encode(crop(photo, 200, 100), quality=Q_LO)
    assert enc.bpp == len(enc.data) * 8 / (200 * 100)


def test_rate_grows_with_quality(photo):
    im = crop(photo, 256, 256, 200, 100)
    sizes = [len(encode(im, quality=q).data) for q in np.linspace(Q_LO, Q_HI, 4)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]


def _encode_both_ways(ims):
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        batched = [e.data for e in encode_many(ims, quality=Q_HI, batch=len(ims))]
        torch.set_num_threads(1)
        single = [encode(im, quality=Q_HI).data for im in ims]
    finally:
        torch.set_num_threads(threads)
    return batched, single


def test_batch_and_threads_do_not_change_bytes(photo):
    """Photo-sized inputs: the whole file is identical for batch 2 / 2 threads and batch 1 / 1 thread."""
    ims = [photo.resize((768, 512)), photo.resize((768, 512)).transpose(Image.FLIP_LEFT_RIGHT)]
    batched, single = _encode_both_ways(ims)
    assert batched == single


def test_batch_and_threads_do_not_change_latents_of_small_images(photo):
    """Small inputs: the coded sections are identical. (oneDNN may pick thread-dependent kernels for
    tiny transposed convolutions, so the reconstruction digest in the header can differ; the decoder
    then warns, see test_reconstruction_digest_mismatch_warns.)"""
    ims = [crop(photo, 256, 192, 60 * i, 40 * i) for i in range(3)]
    batched, single = _encode_both_ways(ims)
    for b, s in zip(batched, single):
        assert bitstream.unpack(b).sections == bitstream.unpack(s).sections


def test_mixed_sizes_in_one_batch_keep_input_order(photo):
    ims = [crop(photo, 64, 64), crop(photo, 100, 80), crop(photo, 64, 64, 30, 30)]
    out = list(encode_many(ims, batch=3))
    assert [(e.header.width, e.header.height) for e in out] == [(64, 64), (100, 80), (64, 64)]
    assert out[0].data == encode(ims[0]).data


def test_quality_is_stored_exactly(photo):
    q = round(Q_LO + 0.345 * (Q_HI - Q_LO), 3)
    enc = encode(crop(photo, 64, 64), quality=q)
    assert enc.header.quality_milli == round(q * 1000) and nc.read_header(enc.data).quality == q


def test_quality_out_of_range(photo):
    with pytest.raises(ValueError, match="quality"):
        encode(crop(photo, 64, 64), quality=Q_HI + 0.5)


def test_grey_input_is_decoded_as_grey(photo):
    grey = crop(photo, 96, 64).convert("L")
    enc = encode(grey)
    dec = nc.decode(enc.data)
    assert dec.header.channels == 1 and dec.to_pil().mode == "L"
    assert np.array_equal(dec.rgb, enc.rgb)


def test_opaque_alpha_is_dropped_with_notice(photo):
    rgba = crop(photo, 64, 64).convert("RGBA")
    with pytest.warns(nc.io.ColorPolicyWarning, match="alpha"):
        enc = encode(nc.io.load_image(rgba))
    assert enc.header.channels == 3


def test_transparency_is_refused(photo):
    rgba = crop(photo, 64, 64).convert("RGBA")
    rgba.putpixel((0, 0), (1, 2, 3, 0))
    with pytest.raises(InputError, match="transparency"):
        encode(rgba)


def test_16_bit_grey_is_reduced_with_notice(tmp_path):
    arr = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16)
    path = tmp_path / "deep.png"
    Image.fromarray(arr).save(path)
    with pytest.warns(nc.io.ColorPolicyWarning, match="8 bits"):
        loaded = nc.io.load_image(path)
    assert loaded.bit_depth == 16 and loaded.channels == 1
    assert encode(loaded).header.bit_depth == 16


def test_unreadable_image(tmp_path):
    bad = tmp_path / "not_an_image.png"
    bad.write_bytes(b"hello")
    with pytest.raises(InputError, match="cannot read"):
        encode(bad)


def test_unknown_model():
    with pytest.raises(ModelError, match="unknown model"):
        encode(random_image(8, 8), model="nope")


def _rewrite_header(data: bytes, **changes) -> bytes:
    c = bitstream.unpack(data)
    return bitstream.pack(dataclasses.replace(c.header, **changes), c.sections)


def test_latent_mismatch_is_reported_as_such(photo):
    data = encode(crop(photo, 64, 64)).data  # rewritten (binding recomputed) as another encoder would
    with pytest.raises(LatentMismatchError, match="intact.*different build, platform or device"):
        nc.decode(_rewrite_header(data, latent_digest=bytes(16)))


def test_reconstruction_digest_mismatch_warns(photo):
    data = encode(crop(photo, 64, 64)).data
    with pytest.warns(nc.errors.ReconstructionMismatchWarning, match="not bit-identical.*round-off"):
        nc.decode(_rewrite_header(data, image_digest=b"\x01" * 16))


def test_encoding_without_reconstruction_codes_the_same_latents(photo):
    im = crop(photo, 128, 96)
    fast, full = nc.encode_image(im), encode(im)
    assert fast.rgb is None and fast.header.image_digest == bytes(16)
    assert bitstream.unpack(fast.data).sections == bitstream.unpack(full.data).sections
    assert np.array_equal(nc.decode(fast.data).rgb, full.rgb)


def test_other_weights_are_refused(photo):
    data = encode(crop(photo, 64, 64)).data
    with pytest.raises(WeightsMismatchError, match="weights"):
        nc.decode(_rewrite_header(data, weights_digest=bytes(32)))


def test_corrupt_later_section_detected(photo):
    data = bytearray(encode(crop(photo, 64, 64)).data)
    n = len(bitstream.unpack(bytes(data)).sections)  # the damage below is in the last one
    data[-3] ^= 0x10
    with pytest.raises(nc.errors.CorruptFileError, match=f"section {n} of {n}"):
        nc.decode(bytes(data))


def test_crafted_payload_with_valid_crc_is_caught(photo):
    """A section rewritten with a matching CRC is caught by the coder or the latent digest."""
    data = encode(crop(photo, 128, 128)).data
    c = bitstream.unpack(data)
    y = bytearray(c.sections[1])
    y[len(y) // 2] ^= 0x5A
    forged = bitstream.pack(c.header, [c.sections[0], bytes(y)])
    with pytest.raises(nc.errors.BitstreamError):
        nc.decode(forged)


def test_oversized_input_refused_before_decoding_pixels(tmp_path):
    path = tmp_path / "wide.png"
    Image.new("L", (40000, 1)).save(path)
    with pytest.raises(InputError, match="exceeds"):
        nc.io.load_image(path)


def test_rate_control_hits_bpp_target(photo):
    im = crop(photo, 128, 128, 60, 40)
    target = encode(im, quality=Q_MID).bpp
    enc = nc.encode_to_target(im, bpp=target)
    assert enc.bpp <= target
    assert enc.header.quality >= Q_MID - 0.01  # bisection lands at the highest quality that fits
    assert np.array_equal(nc.decode(enc.data).rgb, enc.rgb)


def test_rate_control_hits_psnr_target(photo):
    im = crop(photo, 128, 128, 60, 40)
    ref = np.asarray(im)
    target = nc.metrics.psnr(ref, encode(im, quality=Q_MID).rgb)
    enc = nc.encode_to_target(im, psnr=target)
    assert nc.metrics.psnr(ref, enc.rgb) >= target
    assert enc.header.quality <= Q_MID + 0.01


def test_rate_control_unreachable_target_warns(photo):
    with pytest.warns(UserWarning, match="not reachable"):
        enc = nc.encode_to_target(crop(photo, 64, 64), bpp=0.001)
    assert enc.header.quality == Q_LO
