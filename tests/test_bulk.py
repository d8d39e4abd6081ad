"""Bulk encoding into tar shards (one process or under torchrun) and reading them back as latents."""

import json
import os
import subprocess
import sys
import tarfile

import pytest
import torch
from torch.utils.data import DataLoader

from neuralcodec import bulk, codec
from neuralcodec.errors import InputError
from neuralcodec.latents import LatentShards, encode_latents

from .conftest import crop

MODEL = "walloc-16x"  # the cheapest encoder; the shard logic is the same for every model


@pytest.fixture(scope="module")
def tree(photo, tmp_path_factory):
    """7 images of 64x64 in two class folders (sorted: a/0 a/2 a/4 a/6 b/1 b/3 b/5)."""
    src = tmp_path_factory.mktemp("src")
    for i in range(7):
        (src / "ab"[i % 2]).mkdir(exist_ok=True)
        crop(photo, 64, 64, 20 * i, 7 * i).save(src / "ab"[i % 2] / f"{i}.png")
    return src


def images(src):
    return sorted(src.rglob("*.png"))


def encode(src, dst, *extra):
    return bulk.main(["encode", str(src), str(dst), "--model", MODEL, "--shard-size", "2", "--labels", "folder",
                      "-q", *extra])


@pytest.fixture(scope="module")
def shards(tree, tmp_path_factory):
    dst = tmp_path_factory.mktemp("shards")
    assert encode(tree, dst) == 0
    return dst


def test_tar_shards_hold_ncf_and_cls_members_by_key(shards, tree):
    assert sorted(p.name for p in shards.glob("*.tar")) == [f"shard-00000{i}.tar" for i in range(4)]
    with tarfile.open(shards / "shard-000002.tar") as tar:
        assert tar.getnames() == ["b/1.ncf", "b/1.cls", "b/3.ncf", "b/3.cls"]
        assert tar.extractfile("b/1.cls").read() == b"1"
        data = tar.extractfile("b/3.ncf").read()
    assert data == codec.encode_image(tree / "b" / "3.png", MODEL).data


def test_torchrun_two_processes_write_what_one_process_writes(shards, tree, tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "neuralcodec.bulk", "encode", str(tree), str(tmp_path), "--model", MODEL, "--shard-size", "2",
         "--labels", "folder", "-q"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert res.returncode == 0, res.stderr
    names = sorted(p.name for p in shards.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == names
    for name in names:
        assert (tmp_path / name).read_bytes() == (shards / name).read_bytes(), name


def test_rank_takes_every_world_th_shard(tree, tmp_path):
    summary = bulk.encode_tree(tree, tmp_path, MODEL, shard_size=2, rank=1, world=2)
    assert sorted(p.name for p in tmp_path.glob("*.tar")) == ["shard-000001.tar", "shard-000003.tar"]
    assert (summary.encoded, summary.skipped, summary.failed) == (3, 0, 0)


def test_resume_skips_finished_shards_and_redoes_partial_ones(shards, tree, tmp_path):
    for p in shards.iterdir():
        (tmp_path / p.name).write_bytes(p.read_bytes())
    (tmp_path / "shard-000001.tar").unlink()
    (tmp_path / "shard-000001.tar.partial").write_bytes(b"interrupted")
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.tar")}
    summary = bulk.encode_tree(tree, tmp_path, MODEL, shard_size=2, labels="folder")
    assert (summary.encoded, summary.skipped) == (2, 5)
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.tar") if p.name in before} == before
    assert (tmp_path / "shard-000001.tar").read_bytes() == (shards / "shard-000001.tar").read_bytes()
    assert not (tmp_path / "shard-000001.tar.partial").exists()


def test_folder_format_writes_the_ncf_files_and_resumes(tree, tmp_path):
    assert bulk.main(["encode", str(tree), str(tmp_path), "--model", MODEL, "--format", "folder", "-q"]) == 0
    for p in images(tree):
        out = tmp_path / p.relative_to(tree).with_suffix(".ncf")
        assert out.read_bytes() == codec.encode_image(p, MODEL).data
    summary = bulk.encode_tree(tree, tmp_path, MODEL, fmt="folder")
    assert (summary.encoded, summary.skipped) == (0, 7)


def test_unreadable_input_is_one_error_line_and_the_rest_is_done(tree, tmp_path, capsys):
    src = tmp_path / "src"
    for p in images(tree)[:2]:
        (src / p.relative_to(tree)).parent.mkdir(parents=True, exist_ok=True)
        (src / p.relative_to(tree)).write_bytes(p.read_bytes())
    (src / "a" / "1.png").write_bytes(b"not an image")
    assert bulk.main(["encode", str(src), str(tmp_path / "out"), "--model", MODEL, "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("neuralcodec.bulk: error: ") and "1.png" in err[0]
    with tarfile.open(tmp_path / "out" / "shard-000000.tar") as tar:
        assert tar.getnames() == ["a/0.ncf", "a/2.ncf"]


@pytest.mark.parametrize("args, message", [
    (["--model", "nope"], "unknown model"),
    (["--quality", "99"], "quality must be between"),
    (["--shard-size", "0"], "--shard-size and --batch must be at least 1"),
])
def test_bad_arguments_are_one_line_and_status_2(tree, tmp_path, capsys, args, message):
    assert bulk.main(["encode", str(tree), str(tmp_path), "-q", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not list(tmp_path.glob("*.tar"))


def test_missing_source_and_changed_settings_are_refused(shards, tree, tmp_path, capsys):
    assert bulk.main(["encode", str(tmp_path / "nothing"), str(tmp_path / "out"), "-q"]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert encode(tree, shards, "--quality", "1") == 2
    assert "other settings (quality 2.0 -> 1.0)" in capsys.readouterr().err


# -- reading the shards -------------------------------------------------------------------------------------------


def expected(tree, quality=None):
    """encode_latents of the images, by key."""
    paths = images(tree)
    zs = encode_latents(paths, MODEL, quality=quality)
    return {p.relative_to(tree).with_suffix("").as_posix(): z for p, z in zip(paths, zs)}


def match(latent, by_key):
    (key,) = [k for k, z in by_key.items() if torch.equal(z, latent)]
    return key


def test_two_workers_yield_each_sample_once_equal_to_encode_latents(shards, tree):
    by_key = expected(tree)
    ds = LatentShards(shards, shuffle=True, seed=3)
    got = list(DataLoader(ds, batch_size=None, num_workers=2))
    keys = [match(z, by_key) for z, _ in got]
    assert sorted(keys) == sorted(by_key)
    assert all(label == "ab".index(k[0]) for (_, label), k in zip(got, keys))


def test_ranks_and_workers_split_the_shards_of_a_seeded_epoch(shards):
    parts = [LatentShards(shards, shuffle=True, seed=1, rank=r, world_size=2) for r in range(2)]
    for ds in parts:
        ds.set_epoch(4)
    split = [ds.indices(w, 2) for ds in parts for w in range(2)]
    assert sorted(i for part in split for i in part) == list(range(7))
    assert all(len({parts[0].samples[i].shard for i in part}) == 1 for part in split)  # a worker gets whole shards
    assert parts[0].indices(1, 2) == split[1]  # the same epoch gives the same order
    parts[0].set_epoch(5)
    assert [parts[0].indices(w, 2) for w in range(2)] != split[:2]


def count_decodes(monkeypatch):
    calls = []
    real = codec.decode_latent

    def counting(data, *a, **k):
        calls.append(1)
        return real(data, *a, **k)

    monkeypatch.setattr(codec, "decode_latent", counting)
    return calls


def test_cache_skips_decoding_after_the_first_epoch_with_identical_latents(shards, tmp_path, monkeypatch):
    cache = tmp_path / "latents.bin"
    first = list(DataLoader(LatentShards(shards, cache=cache), batch_size=None, num_workers=2))  # workers fill it
    calls = count_decodes(monkeypatch)
    ds = LatentShards(shards, cache=cache)
    again = list(ds)
    assert calls == []
    assert len(again) == len(first) == 7
    assert sorted((z.flatten().tolist(), y) for z, y in again) == sorted((z.flatten().tolist(), y) for z, y in first)
    assert ds.cache.nbytes == 7 * 48 * 4 * 4 * 4


def test_cache_is_rebuilt_when_the_weights_digest_differs(shards, tmp_path, monkeypatch):
    cache = tmp_path / "latents.bin"
    first = list(LatentShards(shards, cache=cache))
    meta = json.loads((tmp_path / "latents.bin.json").read_text())
    model, digest = meta["weights"][0].split(":")
    meta["weights"] = [f"{model}:{'0' * len(digest)}"]
    (tmp_path / "latents.bin.json").write_text(json.dumps(meta))
    calls = count_decodes(monkeypatch)
    again = list(LatentShards(shards, cache=cache))
    assert len(calls) == 1 + 7  # one probe for the latent shape, then every sample again
    assert all(torch.equal(a, b) and x == y for (a, x), (b, y) in zip(first, again))
    assert json.loads((tmp_path / "latents.bin.json").read_text())["weights"][0] == f"{model}:{digest}"


def test_cache_follows_reencoded_shards(tree, tmp_path):
    dst, cache = tmp_path / "shards", tmp_path / "latents.bin"
    bulk.encode_tree(tree, dst, MODEL, quality=2, shard_size=4)
    list(LatentShards(dst, cache=cache))
    for p in dst.iterdir():
        p.unlink()
    bulk.encode_tree(tree, dst, MODEL, quality=1, shard_size=4)  # same keys and weights, other latents
    by_key = expected(tree, quality=1)
    got = [match(z, by_key) for z in LatentShards(dst, cache=cache)]
    assert sorted(got) == sorted(by_key)



def test_target_gives_labels_from_keys(shards):
    got = list(LatentShards(shards, target=lambda key: key.split("/")[0]))
    assert [label for _, label in got] == ["a"] * 4 + ["b"] * 3


def test_a_damaged_shard_is_one_input_error(tmp_path):
    (tmp_path / "shard-000000.tar").write_bytes(b"not a tar" * 100)
    with pytest.raises(InputError, match="not a readable tar shard"):
        LatentShards(tmp_path)
    with pytest.raises(InputError, match="no .tar shards"):
        LatentShards([])
