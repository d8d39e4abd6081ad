"""Every CLI failure is one ``ncodec: error: ...`` line and a documented exit status, never a
traceback: 1 an input failed, 2 bad command line (nothing done), 3 out of memory."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from PIL import Image

from neuralcodec.cli import EXIT_FAILED, EXIT_RESOURCE, EXIT_USAGE, main
from neuralcodec.codec import encode_image

from .conftest import ROOT, SAMPLES, run_cli

CUDA = torch.cuda.is_available()
NO_CUDA = "no CUDA device" if not CUDA else "only"

# (arguments, exit status, fragment of the error line). Placeholders: {png} a small image,
# {ncf} its .ncf, {txt} a text file, {fake} text named .png, {garbage}/{truncated}/{empty} bad .ncf
# files, {missing} a path that does not exist, {dir} a folder of images, {out} a fresh output path.
ROWS = [
    # bad options
    ([], EXIT_USAGE, "required: command"),
    (["frobnicate"], EXIT_USAGE, "invalid choice"),
    (["encode"], EXIT_USAGE, "required: inputs"),
    (["encode", "{png}", "--bogus"], EXIT_USAGE, "unrecognized arguments: --bogus"),
    (["encode", "{png}", "--quality", "high"], EXIT_USAGE, "invalid float value"),
    (["encode", "{png}", "--bpp", "0.3", "--psnr", "30"], EXIT_USAGE, "not allowed with"),
    (["encode", "{png}", "--bpp", "0.3", "--quality", "1"], EXIT_USAGE, "cannot be combined"),
    (["encode", "{png}", "--bpp", "-1"], EXIT_USAGE, "--bpp must be positive"),
    (["encode", "{png}", "-o", "{out}", "--model", "nope"], EXIT_USAGE, "unknown model 'nope'"),
    (["eval", "{dir}", "--models", "nope"], EXIT_USAGE, "unknown model 'nope'"),
    (["eval", "{dir}", "--limit", "x"], EXIT_USAGE, "invalid int value"),
    (["info"], EXIT_USAGE, "required: inputs"),
    # out-of-range qualities
    (["encode", "{png}", "-o", "{out}", "--quality", "99"], EXIT_USAGE, "quality must be between"),
    (["encode", "{png}", "-o", "{out}", "--quality", "-5"], EXIT_USAGE, "quality must be between"),
    (["encode", "{png}", "-o", "{out}", "--quality", "nan"], EXIT_USAGE, "quality must be between"),
    (["eval", "{dir}", "--qualities", "99", "--codecs", "jpeg"], EXIT_USAGE, "quality must be between"),
    # bad devices
    (["encode", "{png}", "-o", "{out}", "--device", "nonsense"], EXIT_USAGE, "unknown device 'nonsense'"),
    (["decode", "{ncf}", "-o", "{out}", "--device", "cuda:7"], EXIT_USAGE, NO_CUDA),
    (["eval", "{dir}", "--device", "cuda:7"], EXIT_USAGE, NO_CUDA),
    (["decode", "{ncf}", "-o", "{out}", "--device", "meta"], EXIT_USAGE, "unsupported device 'meta'"),
    pytest.param(["decode", "{ncf}", "-o", "{out}", "--device", "cuda"], EXIT_USAGE, "no CUDA device",
                 marks=pytest.mark.skipif(CUDA, reason="CUDA is available here")),
    # missing, unreadable and non-image inputs
    (["encode", "{missing}", "-o", "{out}"], EXIT_FAILED, "no such file"),
    (["encode", "{txt}", "-o", "{out}"], EXIT_FAILED, "cannot read image"),
    (["encode", "{fake}", "-o", "{out}"], EXIT_FAILED, "cannot read image"),
    (["decode", "{missing}"], EXIT_FAILED, "no such file"),
    (["info", "{missing}"], EXIT_FAILED, "no such file"),
    (["info", "{dir}"], EXIT_FAILED, "cannot read"),
    (["eval", "{missing}"], EXIT_FAILED, ""),
    # damaged compressed files
    (["decode", "{garbage}", "-o", "{out}"], EXIT_FAILED, "garbage.ncf"),
    (["decode", "{truncated}", "-o", "{out}"], EXIT_FAILED, "truncated.ncf"),
    (["decode", "{empty}", "-o", "{out}"], EXIT_FAILED, "empty.ncf"),
    (["info", "{garbage}"], EXIT_FAILED, "garbage.ncf"),
    (["info", "{truncated}"], EXIT_FAILED, "truncated.ncf"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli-errors")
    png = d / "imgs" / "cat.png"
    png.parent.mkdir()
    Image.open(SAMPLES / "chelsea.png").convert("RGB").crop((100, 50, 164, 114)).save(png)
    data = encode_image(png).data
    paths = {"png": png, "ncf": d / "cat.ncf", "txt": d / "notes.txt", "fake": d / "fake.png",
             "garbage": d / "garbage.ncf", "truncated": d / "truncated.ncf", "empty": d / "empty.ncf",
             "missing": d / "missing.png", "dir": png.parent}
    paths["ncf"].write_bytes(data)
    paths["txt"].write_text("not an image\n")
    paths["fake"].write_text("not an image either\n")
    paths["garbage"].write_bytes(bytes(range(256)) * 4)
    paths["truncated"].write_bytes(data[: len(data) // 2])
    paths["empty"].write_bytes(b"")
    return {k: str(v) for k, v in paths.items()}


def assert_one_error_line(err: str, fragment: str) -> None:
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ncodec: error: "), err
    assert fragment in lines[0], err


@pytest.mark.parametrize("args, status, fragment", ROWS)
def test_failure_is_one_line_and_documented_status(files, tmp_path, capsys, args, status, fragment):
    argv = [a.format(**files, out=tmp_path / "out.x") for a in args]
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's own errors
        rc = exc.code
    assert rc == status, capsys.readouterr().err
    assert_one_error_line(capsys.readouterr().err, fragment)
    assert not (tmp_path / "out.x").exists()


def test_as_a_process_too(files, tmp_path):
    """The same promise through the real entry point: a usage error and a damaged file."""
    res = run_cli("encode", files["png"], "-o", str(tmp_path / "a.ncf"), "--quality", "99")
    assert res.returncode == EXIT_USAGE
    assert_one_error_line(res.stderr, "quality must be between")
    res = run_cli("decode", files["garbage"], "-o", str(tmp_path / "a.png"))
    assert res.returncode == EXIT_FAILED
    assert_one_error_line(res.stderr, "garbage.ncf")


def test_unexpected_exception_is_one_line_with_a_debug_hint(files, tmp_path, capsys, monkeypatch):
    from neuralcodec import cli

    def broken(args):
        raise KeyError("surprise")

    monkeypatch.setattr(cli, "cmd_info", broken)
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    assert main(["info", files["ncf"]]) == EXIT_FAILED
    assert_one_error_line(capsys.readouterr().err, "NEURALCODEC_DEBUG=1")
    monkeypatch.setenv(cli.DEBUG_ENV, "1")
    with pytest.raises(KeyError):
        main(["info", files["ncf"]])


def test_allocation_failure_is_one_line_and_status_3(files, tmp_path):
    """Decoding under a real address-space limit (RLIMIT_AS): after a warm-up decode of a small
    file (imports and model loaded), the limit is set 8 MiB above what the process maps, and a
    larger image's synthesis cannot allocate; the CLI says so on one line."""
    big, out = tmp_path / "big.ncf", tmp_path / "out.png"
    big.write_bytes(encode_image(Image.open(SAMPLES / "chelsea.png").convert("RGB").crop((0, 0, 384, 256))).data)
    code = textwrap.dedent(f"""
        import resource, sys
        from neuralcodec.cli import main
        assert main(["decode", {files["ncf"]!r}, "-o", {str(tmp_path / "warm.png")!r}, "-q"]) == 0
        vm = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize:"))
        resource.setrlimit(resource.RLIMIT_AS, (vm + (8 << 20), resource.RLIM_INFINITY))
        sys.exit(main(["decode", {str(big)!r}, "-o", {str(out)!r}]))
    """)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert res.returncode == EXIT_RESOURCE, res.stderr[-2000:]
    assert_one_error_line(res.stderr, f"{big}: out of memory while decoding")
    assert not out.exists()


@pytest.mark.parametrize("command", ["encode", "decode"])
def test_colliding_outputs_are_refused_before_any_work(files, tmp_path, capsys, command):
    """``a.png`` and ``a.jpg`` would both become ``a.ncf`` (and ``a.ncf``/``a.NCF`` both ``a.png``):
    refused with both names, nothing written, with or without --force."""
    src = tmp_path / "src"
    src.mkdir()
    if command == "encode":
        Image.open(files["png"]).save(src / "a.png")
        Image.open(files["png"]).save(src / "a.jpg")
        Image.open(files["png"]).save(src / "b.png")
        names = ("a.jpg", "a.png")
    else:
        data = open(files["ncf"], "rb").read()
        for name in ("a.ncf", "a.NCF", "b.ncf"):
            (src / name).write_bytes(data)
        names = ("a.NCF", "a.ncf")
    for force in ([], ["--force"]):
        assert main([command, str(src), "-o", str(tmp_path / "out"), *force]) == EXIT_USAGE
        err = capsys.readouterr().err
        assert_one_error_line(err, "would both be written to")
        assert all(n in err for n in names), err
        assert not (tmp_path / "out").exists()
