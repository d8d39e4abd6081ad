#!/usr/bin/env bash
# A lent GPU session in one device call (15 minutes of device time, a machine start included):
# the CUDA tests, the CPU<->CUDA conformance check, then bf16 training until SECONDS_TOTAL after
# the start, its last COOL minutes a linear cooldown (scripts/train_gpu.sh), the weights back in $OUT.
#
#   here:   python scripts/device_tree.py hide
#           python scripts/make_train_pack.py --out pack --crop 320 --jpeg 90 --budget-mib 34.5 --chunk-mib 35.5
#           (825 crops of 320², 34.3 MiB: training draws random 256² crops from them)
#           (wheels into .whl/ as in scripts/train_gpu.sh's header)
#   device (carry pack, .whl; timeout_s at least SECONDS_TOTAL + 30):
#           SECONDS_TOTAL=555 COOL=4 bash scripts/gpu_session.sh   (timeout_s 600)
#   here:   python scripts/device_tree.py restore; mkdir -p runs/gpu; cat <files_at>/weights.part-* > runs/gpu/checkpoint.pt
# Session 27 (docs/benchmarks.md, "First GPU session"): the machine's start and the transfers took
# about 40 s, so SECONDS_TOTAL=555 leaves about 280 s: enough for a second call at once, on the
# still-warm machine (no start; warm for 30 s), of about 3 minutes' training. There /tmp/run is
# still there: train_gpu.sh would resume it (STATE ignored) with a constant-lr phase that undoes its
# cooldown; give such a call RUN=/tmp/run2 and STATE=<the weights to go on from>.
# Each check has its own time limit and its log comes back; a failed check does not stop the training.
set -uo pipefail
START=$(date +%s)
TOTAL=${SECONDS_TOTAL:-555}
OUT=${OUT:-out/gpu}
mkdir -p "$OUT" /tmp/pack
PY=${PYTHON:-python3}  # dry run here: PYTHON=.venv/bin/python WHEELS=none DEVICE=cpu BATCH=2 CROP=64 SECONDS_TOTAL=400
WHEELS=${WHEELS:-.whl}
if [ "$WHEELS" != none ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1
ls pack/pack-*.tar > /dev/null || { echo "gpu_session: no pack/pack-*.tar (scripts/make_train_pack.py, carry pack)"; exit 1; }
for t in pack/pack-*.tar; do tar -xf "$t" -C /tmp/pack; done  # a warm machine's /tmp/pack keeps an earlier pack's crops too
: > "$OUT/cross_device.log"
echo "gpu_session: $(ls /tmp/pack | wc -l) crops; torch $("$PY" -c 'import torch; print(torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name())')"
# the tests that read torch.cuda (by file and name: '-k cuda' misses the CLI rows whose ids change with CUDA)
timeout 100 "$PY" -m pytest -q -p no:cacheprovider tests/test_cli_errors.py tests/test_train.py::test_resume_restores_the_cuda_generator \
  > "$OUT/cuda_tests.log" 2>&1; echo "gpu_session: CUDA tests exit $? ($(tail -1 "$OUT/cuda_tests.log"))"
for dir in "--decode threads=2 device=cuda" "--encode device=cuda --decode threads=2 device=cuda"; do
  # shellcheck disable=SC2086
  timeout 90 "$PY" scripts/cross_device.py --data samples --limit 2 --models elic-context-hyperprior $dir \
    >> "$OUT/cross_device.log" 2>&1; echo "gpu_session: cross_device $dir: exit $?"
done
grep '^|' "$OUT/cross_device.log"
LEFT=$(( TOTAL - ($(date +%s) - START) - 30 ))  # 30 s for the weights' export
[ "$LEFT" -ge 60 ] || { echo "gpu_session: only $LEFT s left for training; none started"; exit 1; }
echo "gpu_session: training for $LEFT s"
COOL=$("$PY" -c "print(min(${COOL:-4}, $LEFT / 120))")  # at most half the training
# batch 32: 1.7x batch 16's crops/s on the H200 (docs/benchmarks.md, "First GPU session")
BATCH=${BATCH:-32} COOL=$COOL WHEELS=none OUT="$OUT" PYTHON="$PY" bash scripts/train_gpu.sh /tmp/pack "$("$PY" -c "print($LEFT / 60)")" \
  > "$OUT/train.log" 2>&1; echo "gpu_session: train_gpu exit $?"
grep -v '^\s*$' "$OUT/train.log" | tail -15
echo "gpu_session: done after $(( $(date +%s) - START )) s"
