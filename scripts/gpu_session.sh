#!/usr/bin/env bash
# A lent GPU session in one device call (15 minutes of device time, a machine start included):
# the CUDA tests, the CPU<->CUDA conformance check, then bf16 training until SECONDS_TOTAL after
# the start, its last COOL minutes a linear cooldown (scripts/train_gpu.sh), the weights back in $OUT.
#
#   here:   python scripts/device_tree.py hide
#           python scripts/make_train_pack.py --out pack --jpeg 90 --per-image 2 --budget-mib 35 --chunk-mib 36
#           (wheels into .whl/ as in scripts/train_gpu.sh's header)
#   device (carry pack, .whl; timeout_s about SECONDS_TOTAL + 40):
#           SECONDS_TOTAL=520 COOL=4 bash scripts/gpu_session.sh
#   here:   python scripts/device_tree.py restore; cat <files_at>/weights.part-* > runs/gpu/checkpoint.pt
# Each check has its own time limit and its log comes back; a failed check does not stop the training.
set -uo pipefail
START=$(date +%s)
TOTAL=${SECONDS_TOTAL:-520}
OUT=${OUT:-out/gpu}
mkdir -p "$OUT" /tmp/pack
PY=${PYTHON:-python3}  # dry run here: PYTHON=.venv/bin/python WHEELS=none DEVICE=cpu BATCH=2 CROP=64 SECONDS_TOTAL=150
if [ "${WHEELS:-.whl}" != none ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
fi
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
for t in pack/pack-*.tar; do tar -xf "$t" -C /tmp/pack; done
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
echo "gpu_session: training for $LEFT s"
COOL=$("$PY" -c "print(min(${COOL:-4}, $LEFT / 120))")  # at most half the training
COOL=$COOL WHEELS=none OUT="$OUT" PYTHON="$PY" bash scripts/train_gpu.sh /tmp/pack "$("$PY" -c "print($LEFT / 60)")" \
  > "$OUT/train.log" 2>&1; echo "gpu_session: train_gpu exit $?"
grep -v '^\s*$' "$OUT/train.log" | tail -15
echo "gpu_session: done after $(( $(date +%s) - START )) s"
