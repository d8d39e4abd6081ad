"""Structure-aware fuzzer for the .ncf decoder.

Seeds: small encodes of a real crop of samples/coffee.png, per model at three qualities of its
shipped range (the middle one with an image digest, i.e. ``--verify``), in format 1.1 and 1.0.
Each case mutates one seed and decodes it (``decode(data, max_pixels=None)``: only the format's
own pixel limit) in a worker process under an address-space limit (RLIMIT_AS) and a time limit;
the worker is reused across cases and restarted after a crash or a timeout.

Mutations (``KINDS``): header fields (quality, size, padding, channels, frames, model id,
digests), section count, empty and minimal sections under large claimed sizes, section payloads
(bit flips, truncation, appended or random bytes, escape counts and escaped values), extreme
symbols re-entropy-coded with the model's own tables, sections and header fields swapped
between models and qualities, and random flips / truncations / splices of the whole file.
``fix`` says what the fuzzer recomputed afterwards: ``none`` (raw damage), ``crc`` (the CRCs,
as a naive repair would) or ``all`` (CRCs and the 1.1 binding digest: a crafted file). The
latent and image digests are never recomputed, except in ``extreme`` cases marked ``forged``.

Outcomes: ``error:<Class>`` (a documented neuralcodec.errors class), ``other:<Class>`` (any
other exception: a bug), ``hang`` (> --timeout CPU seconds, twice), ``memory`` (the address-space limit
was hit), ``crash`` (the worker died), ``accepted-identical`` (decoded to the seed's pixels),
``accepted-altered`` (decoded to other pixels; ``+warned`` when the decoder warned that the
pixels differ from the encoder's). Altered means the *pixels* differ: a mutation of a field that
does not change decoding (channels, bit depth, a damaged image digest) decodes identically.

    OMP_NUM_THREADS=1 nice -n 10 python scripts/fuzz_decoder.py --cases 10000 --seed 1
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pickle
import select
import struct
import subprocess
import sys
import time
import zlib
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KINDS = (
    "quality", "size", "padding", "format-fields", "model-id", "digests", "section-count",
    "empty-large", "payload", "escapes", "extreme", "swap-sections", "swap-header",
    "raw-flip", "raw-truncate", "raw-splice",
)
U8, U16, U32 = 0xFF, 0xFFFF, 0xFFFFFFFF


# ---- seeds ---------------------------------------------------------------------------------

def make_seeds(models: list[str]) -> list[dict]:
    """Small encodes of a real photo crop: per model 3 qualities x formats 1.1 and 1.0."""
    from PIL import Image

    from neuralcodec import bitstream
    from neuralcodec.codec import encode_image
    from neuralcodec.models.weights import load_model

    photo = Image.open(ROOT / "samples" / "coffee.png").convert("RGB").crop((200, 100, 328, 228))
    seeds = []
    for mid in models:
        lo, hi = load_model(mid).quality_range
        for i, q in enumerate((lo, (lo + hi) / 2, hi)):
            enc = encode_image(photo, mid, round(q, 3), reconstruct=(i == 1))
            c = bitstream.unpack(enc.data)
            for minor in (1, 0):
                data = enc.data if minor == 1 else bitstream.pack(c.header, list(c.sections), minor=0)
                seeds.append({"model": mid, "quality": q, "minor": minor, "data": data})
    return seeds


# ---- writing files the writer would refuse -------------------------------------------------

def unchecked(header):
    """A copy of ``header`` whose validation is skipped, so pack() writes out-of-range fields."""
    from neuralcodec.bitstream import Header

    class Unchecked(Header):
        def validate(self) -> None:
            pass

    return Unchecked(**{f.name: getattr(header, f.name) for f in dataclasses.fields(Header)})


def _fit(header):
    """Clamp integer fields to their on-disk widths."""
    widths = {"quality_milli": U32, "height": U32, "width": U32, "channels": U8, "bit_depth": U8,
              "pad_bottom": U16, "pad_right": U16, "frames": U32}
    return dataclasses.replace(header, **{k: int(getattr(header, k)) & w for k, w in widths.items()})


def write(header, sections: list[bytes], metadata: dict, minor: int) -> bytes:
    """pack() with validation skipped; sections beyond 1..64 are fixed up at the byte level."""
    from neuralcodec import bitstream

    n = len(sections)
    body = list(sections) if 1 <= n <= 64 else [b"\0\0\0\0"]
    data = bitstream.pack(unchecked(_fit(header)), body, metadata if minor else None, minor=minor)
    if body is not sections and n != 1:  # rewrite the section count field and the sections
        data = _set_section_count(data, n, sections, minor)
    return data


def _layout(data: bytes):
    """(header end, n_sections field offset, metadata count, binding offset or None) of a file, or None."""
    from neuralcodec.bitstream import container as C

    if len(data) < C._PREFIX.size:
        return None
    _, _, minor, hlen = C._PREFIX.unpack_from(data)
    end = C._PREFIX.size + hlen
    if len(data) < end + 4 or hlen < 1:
        return None
    n = data[C._PREFIX.size]
    fixed_end = C._PREFIX.size + 1 + n + C._FIXED.size
    if fixed_end > end:
        return None
    n_meta, binding = 0, None
    if minor >= 1 and fixed_end + C._V11.size <= end:
        n_meta, binding = data[fixed_end], fixed_end + 1
    return end, fixed_end - 2, n_meta, binding


def _set_section_count(data: bytes, n: int, sections: list[bytes], minor: int) -> bytes:
    lay = _layout(data)
    end, count_at, _, _ = lay
    head = bytearray(data[:end])
    struct.pack_into("<H", head, count_at, n & U16)
    body = b"".join(struct.pack("<II", len(s), zlib.crc32(s)) + s for s in sections)
    return refresh(bytes(head) + b"\0\0\0\0" + body, binding=True)


def refresh(data: bytes, binding: bool) -> bytes:
    """Recompute the section CRCs and the header CRC (and the 1.1 binding digest if ``binding``)
    of a possibly damaged file, as far as its structure can still be walked."""
    from neuralcodec.bitstream import container as C

    lay = _layout(data)
    if lay is None:
        return data
    end, count_at, n_meta, binding_at = lay
    buf = bytearray(data)
    (n_sections,) = struct.unpack_from("<H", buf, count_at)
    pos = end + 4
    for _ in range(n_sections + n_meta):
        if pos + 8 > len(buf):
            break
        (length,) = struct.unpack_from("<I", buf, pos)
        payload = bytes(buf[pos + 8 : pos + 8 + length])
        struct.pack_into("<I", buf, pos + 4, zlib.crc32(payload))
        pos += 8 + length
    if binding and binding_at is not None and binding_at + 16 <= end:
        buf[binding_at : binding_at + 16] = C._binding(bytes(buf[:binding_at]), bytes(buf[end + 4 :]))
    struct.pack_into("<I", buf, end, zlib.crc32(bytes(buf[:end])))
    return bytes(buf)


# ---- mutations -----------------------------------------------------------------------------

class Mutator:
    def __init__(self, seeds: list[dict]) -> None:
        from neuralcodec import bitstream
        from neuralcodec.models.weights import load_model

        self.seeds = seeds
        self.parsed = [bitstream.unpack(s["data"]) for s in seeds]
        self.models = sorted({s["model"] for s in seeds})
        self.loaded = {m: load_model(m) for m in self.models}

    def case(self, index: int, seed: int) -> dict:
        """Case ``index`` of campaign ``seed`` (each case is reproducible on its own)."""
        rng = np.random.default_rng([seed, index])
        k = int(rng.integers(len(self.seeds)))
        kind = KINDS[int(rng.integers(len(KINDS)))]
        s, c = self.seeds[k], self.parsed[k]
        info = {"index": index, "seed": k, "kind": kind, "fix": "all"}
        data = getattr(self, "_" + kind.replace("-", "_"))(rng, s, c, info)
        return {**info, "data": data}

    # header fields ------------------------------------------------------------------------
    def _repack(self, c, s, header=None, sections=None):
        return write(header or c.header, list(c.sections) if sections is None else sections, c.metadata, s["minor"])

    def _quality(self, rng, s, c, info):
        lo, hi = self.loaded[s["model"]].quality_range
        q = c.header.quality_milli
        choices = [0, int(lo * 1000) - 1, int(hi * 1000) + 1, q + 1, q - 1, q + 250, int(rng.integers(0, 10**6)),
                   10**6 + 1, U32, int(rng.integers(int(lo * 1000), int(hi * 1000) + 1))]
        return self._repack(c, s, dataclasses.replace(c.header, quality_milli=max(0, choices[rng.integers(len(choices))])))

    def _size(self, rng, s, c, info):
        h = c.header
        k = self.loaded[s["model"]].model.downsampling
        sides = [1, h.height + 1, h.height - 1, 2 * h.height, 8192, 32768, 32769, U32, int(rng.integers(1, 8193))]
        H, W = (int(sides[rng.integers(len(sides))]) for _ in range(2))
        fit = rng.random() < 0.5  # consistent padding, so the decoder gets past the header checks
        pb, pr = (-H % k, -W % k) if fit else (h.pad_bottom, h.pad_right)
        return self._repack(c, s, dataclasses.replace(h, height=H, width=W, pad_bottom=pb, pad_right=pr))

    def _padding(self, rng, s, c, info):
        h = c.header
        pb, pr = (int(v) for v in rng.integers(0, 256, 2))
        if rng.random() < 0.5:  # shift rows between image and padding, total unchanged
            d = int(rng.integers(-h.pad_bottom, 64))
            pb, pr, H = h.pad_bottom + d, h.pad_right, h.height - d
            return self._repack(c, s, dataclasses.replace(h, pad_bottom=max(pb, 0), pad_right=pr, height=max(H, 1)))
        return self._repack(c, s, dataclasses.replace(h, pad_bottom=pb, pad_right=pr))

    def _format_fields(self, rng, s, c, info):
        field = ["channels", "bit_depth", "frames"][rng.integers(3)]
        value = int(rng.choice([0, 1, 2, 3, 8, 16, 255, int(rng.integers(0, 1 << 16))]))
        return self._repack(c, s, dataclasses.replace(c.header, **{field: value}))

    def _model_id(self, rng, s, c, info):
        other = self.models[rng.integers(len(self.models))]
        ids = [other, "no-such-model", "Mean-Scale", "a" * 64, "", "mean-scale-hyperprior\x00"]
        mid = ids[rng.integers(len(ids))]
        digest = self.loaded[other].digest if rng.random() < 0.5 and mid == other else c.header.weights_digest
        try:
            return self._repack(c, s, dataclasses.replace(c.header, model_id=mid, weights_digest=digest))
        except (UnicodeEncodeError, struct.error, ValueError):
            return self._repack(c, s, dataclasses.replace(c.header, model_id="zz-unknown"))

    def _digests(self, rng, s, c, info):
        field = ["weights_digest", "latent_digest", "image_digest"][rng.integers(3)]
        n = len(getattr(c.header, field))
        value = bytes(n) if rng.random() < 0.3 else rng.bytes(n)
        return self._repack(c, s, dataclasses.replace(c.header, **{field: value}))

    def _section_count(self, rng, s, c, info):
        secs = list(c.sections)
        op = rng.integers(4)
        if op == 0 and len(secs) > 1:
            secs.pop(int(rng.integers(len(secs))))
        elif op == 1:
            secs.insert(int(rng.integers(len(secs) + 1)), secs[int(rng.integers(len(secs)))])
        elif op == 2:
            secs.append(b"")
        else:
            secs = secs * int(rng.integers(2, 40))
        return self._repack(c, s, sections=secs)

    def _empty_large(self, rng, s, c, info):
        """Tiny sections under a large claimed size (the issue's 146-byte 8192^2 file)."""
        k = self.loaded[s["model"]].model.downsampling
        side = int(rng.choice([1024, 4096, 8192]))
        H, W = side - int(rng.integers(0, k)), side
        minimal = [b"", b"\0\0\0\0", b"\0" * 8, struct.pack("<I", 0) + rng.bytes(4), struct.pack("<II", 0, 1 << 31)]
        secs = [minimal[rng.integers(len(minimal))] for _ in c.sections]
        header = dataclasses.replace(c.header, height=H, width=W, pad_bottom=-H % k, pad_right=-W % k)
        return self._repack(c, s, header, secs)

    # payloads -----------------------------------------------------------------------------
    def _payload(self, rng, s, c, info):
        secs = [bytearray(x) for x in c.sections]
        i = int(rng.integers(len(secs)))
        p = secs[i]
        op = int(rng.integers(5))
        if op == 0 and p:
            for _ in range(int(rng.integers(1, 9))):
                j = int(rng.integers(len(p)))
                p[j] ^= 1 << int(rng.integers(8))
        elif op == 1:
            del p[int(rng.integers(len(p) + 1)) :]
        elif op == 2:
            p += rng.bytes(int(rng.choice([1, 3, 4, 64, 4096])))
        elif op == 3:
            p[:] = rng.bytes(len(p))
        else:
            p[4:] = bytes(len(p) - 4) if len(p) > 4 else p[4:]
        info["fix"] = ["all", "crc"][int(rng.integers(2))]
        data = self._repack(c, s, sections=[bytes(x) for x in secs])
        return data if info["fix"] == "all" else self._crc_only(c, s, data)

    def _crc_only(self, c, s, crafted: bytes) -> bytes:
        """``crafted`` with the original binding digest: what recomputing only the CRCs gives."""
        lay, orig = _layout(crafted), _layout(s["data"])
        if lay is None or lay[3] is None or orig is None or orig[3] is None:
            return crafted
        buf = bytearray(crafted)
        buf[lay[3] : lay[3] + 16] = s["data"][orig[3] : orig[3] + 16]
        return refresh(bytes(buf), binding=False)

    def _escapes(self, rng, s, c, info):
        """Escape count and escaped values: huge counts, values at and beyond the int32 range."""
        secs = [bytearray(x) for x in c.sections]
        i = int(rng.integers(len(secs)))
        p = secs[i]
        n_esc = struct.unpack_from("<I", p)[0] if len(p) >= 4 else 0
        op = int(rng.integers(3))
        if op == 0 or len(p) < 4:
            p[:4] = struct.pack("<I", int(rng.choice([1, 2, 255, 1 << 20, U32, n_esc + 1])))
        elif op == 1:  # insert escapes with extreme values (count and bytes consistent)
            extra = rng.choice([-(2**31), 2**31 - 1, 2**30, -(2**30), 2**30 + 1, 0], int(rng.integers(1, 5)))
            p[:4] = struct.pack("<I", n_esc + len(extra))
            p[4 + 4 * n_esc : 4 + 4 * n_esc] = np.asarray(extra, "<i4").tobytes()
        elif n_esc:
            j = int(rng.integers(n_esc))
            struct.pack_into("<i", p, 4 + 4 * j, int(rng.choice([-(2**31), 2**31 - 1, 2**30 + 1, 0])))
        else:
            p[:4] = struct.pack("<I", 1)
        return self._repack(c, s, sections=[bytes(x) for x in secs])

    def _extreme(self, rng, s, c, info):
        """Extreme symbols, entropy-coded with the model's own tables: the first section's values
        set to large or int32-extreme numbers (escapes). Single-section models also get the
        matching latent digest (a forged, self-consistent file), so the synthesis runs on them."""
        from neuralcodec.entropy import coder
        from neuralcodec.entropy.stages import _channel_rows

        m = self.loaded[s["model"]].model
        h = c.header
        ph, pw = h.height + h.pad_bottom, h.width + h.pad_right
        if len(c.sections) == 1:  # factorized prior, WaLLoC: the latent itself
            stage, gain = m._y_stage, m.gain.gain64(h.quality)
            shape, tables = (ph // m.latent_stride, pw // m.latent_stride), stage.tables(gain)
            channels = len(stage.medians)
        else:  # hyperprior family: the hyper-latent z
            stage, tables = m._z_stage, m._z_stage.tables
            shape, channels = (ph // m.downsampling, pw // m.downsampling), m._z_stage.channels
        rows = _channel_rows(channels, shape)
        sym = coder.decode(c.sections[0], rows, tables)
        values = np.array([2**30, -(2**30), 2**30 - 1, 4096, -4096, 100000], dtype=np.int64)
        mask = rng.random(sym.shape) < float(rng.choice([0.001, 0.05, 1.0]))
        sym = sym.astype(np.int64)
        sym[mask] = rng.choice(values, int(mask.sum()))
        sym = sym.astype(np.int32)  # the writer codes up to +-2^30; beyond: see "escapes"
        secs = [coder.encode(sym, rows, tables), *c.sections[1:]]
        header = h
        if len(c.sections) == 1 and rng.random() < 0.7:
            header = dataclasses.replace(h, latent_digest=m.latent_digest([sym]))
            info["fix"] = "all+forged"
        return self._repack(c, s, header, secs)

    # swaps --------------------------------------------------------------------------------
    def _other(self, rng, s):
        j = int(rng.integers(len(self.seeds)))
        return self.seeds[j], self.parsed[j]

    def _swap_sections(self, rng, s, c, info):
        s2, c2 = self._other(rng, s)
        if rng.random() < 0.5 or not c.sections:
            secs = list(c2.sections)
        else:
            secs = list(c.sections)
            i = int(rng.integers(len(secs)))
            secs[i] = c2.sections[min(i, len(c2.sections) - 1)]
        return self._repack(c, s, sections=secs)

    def _swap_header(self, rng, s, c, info):
        s2, c2 = self._other(rng, s)
        fields = [f.name for f in dataclasses.fields(c.header)]
        take = [f for f in fields if rng.random() < 0.3] or ["quality_milli"]
        header = dataclasses.replace(c.header, **{f: getattr(c2.header, f) for f in take})
        return self._repack(c, s, header)

    # raw bytes ----------------------------------------------------------------------------
    def _raw_flip(self, rng, s, c, info):
        buf = bytearray(s["data"])
        for _ in range(int(rng.integers(1, 9))):
            j = int(rng.integers(len(buf)))
            buf[j] ^= 1 << int(rng.integers(8))
        info["fix"] = ["none", "crc", "all"][int(rng.integers(3))]
        return bytes(buf) if info["fix"] == "none" else refresh(bytes(buf), binding=info["fix"] == "all")

    def _raw_truncate(self, rng, s, c, info):
        info["fix"] = "none"
        return s["data"][: int(rng.integers(len(s["data"])))]

    def _raw_splice(self, rng, s, c, info):
        buf = bytearray(s["data"])
        j = int(rng.integers(len(buf) + 1))
        if rng.random() < 0.5:
            buf[j:j] = rng.bytes(int(rng.integers(1, 64)))
        else:
            del buf[j : j + int(rng.integers(1, 64))]
        info["fix"] = ["none", "all"][int(rng.integers(2))]
        return bytes(buf) if info["fix"] == "none" else refresh(bytes(buf), binding=True)


# ---- the worker ----------------------------------------------------------------------------

WORKER = r"""
import hashlib, pickle, resource, struct, sys, warnings
import torch
torch.set_num_threads(1)
from neuralcodec.codec import decode
from neuralcodec.errors import NeuralCodecError, ReconstructionMismatchWarning
from neuralcodec.models.weights import load_model
for m in sys.argv[2:]:
    load_model(m)
vm = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize"))
limit = vm + int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
out = sys.stdout.buffer
out.write(b"ready\n"); out.flush()
while True:
    head = sys.stdin.buffer.read(4)
    if len(head) < 4:
        break
    data = sys.stdin.buffer.read(struct.unpack("<I", head)[0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            rgb = decode(data, max_pixels=None).rgb
            res = {"ok": hashlib.blake2b(rgb.tobytes(), digest_size=16).hexdigest(),
                   "warned": any(issubclass(w.category, ReconstructionMismatchWarning) for w in caught)}
        except MemoryError:
            res = {"memory": "MemoryError"}
        except NeuralCodecError as exc:
            res = {"error": type(exc).__name__, "msg": str(exc)[:200]}
        except Exception as exc:
            msg = str(exc)
            if "alloc" in msg.lower() and "memory" in msg.lower():
                res = {"memory": type(exc).__name__, "msg": msg[:200]}
            else:
                res = {"other": type(exc).__name__, "msg": msg[:300]}
    line = pickle.dumps(res)
    out.write(struct.pack("<I", len(line)) + line); out.flush()
"""


class Worker:
    """A decoding subprocess under RLIMIT_AS, reused across cases."""

    def __init__(self, models: list[str], memory: int) -> None:
        self.models, self.memory, self.proc = models, memory, None

    def start(self) -> None:
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), PYTHONWARNINGS="ignore")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(self.memory), *self.models],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
        )
        if self.proc.stdout.readline() != b"ready\n":
            raise RuntimeError("fuzz worker failed to start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def run(self, data: bytes, timeout: float) -> dict:
        if self.proc is None:
            self.start()
        try:
            self.proc.stdin.write(struct.pack("<I", len(data)) + data)
            self.proc.stdin.flush()
        except BrokenPipeError:
            return self._died()
        fd, start = self.proc.stdout.fileno(), self._cpu()
        t0 = time.perf_counter()
        while not select.select([fd], [], [], 0.25)[0]:
            # CPU seconds, not wall time: a shared, busy machine must not turn slow cases into hangs
            # (a worker blocked without using CPU still counts as hung after 10x the limit)
            if self._cpu() - start > timeout or time.perf_counter() - t0 > 10 * timeout:
                self.stop()
                return {"hang": True}
        head = self.proc.stdout.read(4)
        if len(head) < 4:
            return self._died()
        return pickle.loads(self.proc.stdout.read(struct.unpack("<I", head)[0]))

    def _cpu(self) -> float:
        """CPU seconds the worker has used (user + system)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return 0.0

    def _died(self) -> dict:
        code = self.proc.wait()
        self.proc = None
        return {"crash": f"exit {code}"}


def outcome(res: dict, reference: str) -> str:
    if "ok" in res:
        if res["ok"] == reference:
            return "accepted-identical"
        return "accepted-altered" + ("+warned" if res["warned"] else "")
    if "error" in res:
        return "error:" + res["error"]
    if "other" in res:
        return "other:" + res["other"]
    if "memory" in res:
        return "memory"
    if "hang" in res:
        return "hang"
    return "crash"


BUGS = ("other:", "hang", "memory", "crash")


def campaign(cases: int, seed: int, models: list[str] | None = None, timeout: float = 5.0, memory_gib: float = 2.0,
             log=None, progress: bool = False) -> list[dict]:
    """Run ``cases`` cases; one record per case (index, kind, fix, model, minor, outcome, msg)."""
    from neuralcodec.models.weights import read_manifest

    models = models or sorted(read_manifest()["models"])
    seeds = make_seeds(models)
    mut = Mutator(seeds)
    worker = Worker(models, int(memory_gib * 2**30))
    refs = [worker.run(s["data"], 60.0).get("ok") for s in seeds]
    if not all(refs):
        raise RuntimeError("a seed file does not decode")
    records: list[dict] = []
    t0 = time.perf_counter()
    try:
        for i in range(cases):
            case = mut.case(i, seed)
            res = worker.run(case["data"], timeout)
            if "hang" in res:  # confirm on a fresh worker: a busy machine can stall one case
                res = worker.run(case["data"], timeout)
            out = outcome(res, refs[case["seed"]])
            rec = {k: v for k, v in case.items() if k != "data"} | {
                "outcome": out, "msg": res.get("msg", ""), "bytes": len(case["data"]),
                "model": seeds[case["seed"]]["model"], "minor": seeds[case["seed"]]["minor"]}
            records.append(rec)
            if log is not None:
                log.write(json.dumps(rec) + "\n")
                if out.startswith(BUGS) or out.startswith("accepted-altered"):
                    log.flush()
            if progress and (i + 1) % 500 == 0:
                print(f"  {i + 1} cases, {time.perf_counter() - t0:.0f} s: {_summary(records)}", file=sys.stderr, flush=True)
    finally:
        worker.stop()
    return records


def undetected(records: list[dict]) -> list[dict]:
    """Cases decoded to other pixels from a 1.1 file whose binding digest was left stale (raw
    damage, or only the CRCs recomputed): damage the format promises to catch."""
    return [r for r in records if r["outcome"].startswith("accepted-altered") and r["minor"] >= 1
            and r["fix"] in ("none", "crc")]


def bugs(records: list[dict]) -> list[dict]:
    """Undocumented exceptions, hangs, memory-limit hits and worker crashes."""
    return [r for r in records if r["outcome"].startswith(BUGS)]


def _summary(records: list[dict]) -> str:
    c = Counter("bugs" if r["outcome"].startswith(BUGS) else r["outcome"].split(":")[0] for r in records)
    return ", ".join(f"{k} {v}" for k, v in sorted(c.items()))


def table(records: list[dict]) -> str:
    """Markdown tables: cases per outcome, and outcomes per mutation kind and fix-up."""
    counts = Counter((r["kind"], r["fix"], r["outcome"]) for r in records)
    by_outcome = Counter(r["outcome"] for r in records)
    lines = ["| outcome | cases |", "|---|---|"]
    lines += [f"| {out} | {n} |" for out, n in sorted(by_outcome.items(), key=lambda kv: (-kv[1], kv[0]))]
    lines += ["", "| mutation | fix | cases | outcomes |", "|---|---|---|---|"]
    groups: dict = {}
    for (kind, fix, out), n in counts.items():
        groups.setdefault((kind, fix), Counter())[out] += n
    for (kind, fix), c in sorted(groups.items()):
        desc = ", ".join(f"{o} {n}" for o, n in c.most_common())
        lines.append(f"| {kind} | {fix} | {sum(c.values())} | {desc} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", nargs="*", default=None, help="model ids (default: every shipped model)")
    ap.add_argument("--timeout", type=float, default=5.0, help="CPU seconds per case before it counts as a hang")
    ap.add_argument("--memory-gib", type=float, default=2.0, help="address space a case may add (RLIMIT_AS)")
    ap.add_argument("--log", type=Path, help="write one JSON line per case here")
    args = ap.parse_args()
    t = time.perf_counter()
    log = open(args.log, "w") if args.log else None
    records = campaign(args.cases, args.seed, args.models, args.timeout, args.memory_gib, log, progress=True)
    if log:
        log.close()
    print(table(records))
    found, missed = bugs(records), undetected(records)
    print(f"\n{len(records)} cases in {time.perf_counter() - t:.0f} s; undocumented exceptions, hangs, memory, "
          f"crashes: {len(found)}; stale-binding 1.1 files accepted with other pixels: {len(missed)}")
    return 1 if found or missed else 0


if __name__ == "__main__":
    sys.exit(main())
