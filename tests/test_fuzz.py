"""A fixed-seed subset of scripts/fuzz_decoder.py: every mutated file is refused with a
documented error or decoded, within the time and address-space limits."""

import importlib.util

from .conftest import ROOT

_spec = importlib.util.spec_from_file_location("fuzz_decoder", ROOT / "scripts" / "fuzz_decoder.py")
fuzz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz)


def test_fuzzed_files_fail_cleanly_or_decode():
    records = fuzz.campaign(cases=240, seed=2024, models=["mean-scale-hyperprior", "elic-context-hyperprior",
                                                         "factorized-prior", "walloc-16x"])
    assert len(records) == 240
    assert fuzz.bugs(records) == []  # no undocumented exception, hang, memory-limit hit or crash
    assert fuzz.undetected(records) == []  # damage that leaves the binding digest stale never decodes
    kinds = {r["kind"] for r in records}
    assert kinds == set(fuzz.KINDS)  # every mutation kind ran
    outcomes = {r["outcome"].split(":")[0] for r in records}
    assert {"error", "accepted-identical"} <= outcomes
