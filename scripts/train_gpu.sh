#!/usr/bin/env bash
# Train on a lent GPU (bf16) for a fixed wall time, and bring back the weights as files of at most 15 MiB.
# It continues the committed campaign state (campaign/MODEL.pt, at its step) when that state continues
# the newest version, else it starts from the newest version (STATE=none: always from there).
# Runs on the bare CUDA machine (its python3 has torch; the other packages travel as wheels in .whl/).
# The training pack was unpacked there beforehand.
#
#   here:  python scripts/device_tree.py hide                  # leave older weights at home (restore before committing)
#          python scripts/make_train_pack.py --out pack        # pack/pack-000.tar ... (chunks sized to fit a device call)
#          (pack/ and .whl/ are git-ignored: they travel only when a call names them in carry)
#          python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#              --platform manylinux_2_34_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl \
#              compressai constriction pytorch-msssim PyWavelets     # 5.1 MB
#   device, one call per chunk (carry pack/pack-00N.tar):   mkdir -p /tmp/pack && tar -xf pack/pack-00N.tar -C /tmp/pack
#   device, last call (carry .whl):   [COOL=5] bash scripts/train_gpu.sh /tmp/pack 20 [MODEL]
#   (a session with one call does it all: scripts/gpu_session.sh)
#   here:  mkdir -p runs/gpu && cat <files_at>/weights.part-* > runs/gpu/checkpoint.pt
#          python scripts/campaign.py measure --checkpoint runs/gpu/checkpoint.pt
#          (the campaign goes on from the GPU's weights: campaign.py stop; campaign.py seed
#           --checkpoint runs/gpu/checkpoint.pt --run runs/campaign/MODEL; campaign.py start)
#          python scripts/device_tree.py restore
set -euo pipefail
PACK=${1:?usage: train_gpu.sh PACK_DIR MINUTES [MODEL]}
MINUTES=${2:?usage: train_gpu.sh PACK_DIR MINUTES [MODEL]}
MODEL=${3:-elic-context-hyperprior}
OUT=${OUT:-out/gpu}
DEVICE=${DEVICE:-cuda}  # dry run here: DEVICE=cpu WHEELS=none PYTHON=.venv/bin/python BATCH=2 CROP=64 RUN=/tmp/dry
RUN=${RUN:-/tmp/run}    # the training run's folder (a rerun there, on a still-warm machine, resumes it and ignores STATE)
PY=${PYTHON:-python3}
mkdir -p "$OUT"
WHEELS=${WHEELS:-.whl}  # WHEELS=none for a dry run here (the wheels are for the device's Python 3.12)
if [ -d "$WHEELS" ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else  # the caller's path stays (scripts/gpu_session.sh installed the wheels in /tmp/site already)
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
STATE=${STATE:-campaign/$MODEL.pt}
if [ ! -f "$RUN/checkpoint.pt" ] && [ "$STATE" != none ] && [ -f "$STATE" ]; then  # copied in when it continues MODEL's newest
  "$PY" scripts/campaign.py seed --model "$MODEL" --run "$RUN" --checkpoint "$STATE" \
    || echo "train_gpu: starting from the newest version of $MODEL"
fi
[ "$DEVICE" = cpu ] || nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
COOL=${COOL:-0}  # the last COOL minutes of the MINUTES: the lr falls linearly to 0 over as many steps as fit
"$PY" -c "import sys; sys.exit(not 0 <= $COOL < $MINUTES)" \
  || { echo "train_gpu: COOL ($COOL) must be at least 0 and less than MINUTES ($MINUTES)" >&2; exit 2; }
train() {
  PYTHONUNBUFFERED=1 TQDM_MININTERVAL=60 "$PY" scripts/train.py --model "$MODEL" --data "$PACK" --out "$RUN" \
    --init "$MODEL" --device "$DEVICE" --lr 2e-4 --batch "${BATCH:-16}" --crop "${CROP:-256}" \
    --checkpoint_every 2000 --log_every "${LOG_EVERY:-100}" "$@"
}
rc=0  # a failed phase still brings back the last checkpoint written, then exits with its status
train --decay_at 1.0 --steps 10000000 --minutes "$("$PY" -c "print($MINUTES - $COOL)")" || rc=$?
if [ "$rc" = 0 ] && "$PY" -c "import sys; sys.exit(not $COOL > 0)"; then
  # the step reached and phase 1's steps/s (its log's last start; 10 steps with fewer than two records)
  read -r STEP N < <("$PY" - <<PY
from pathlib import Path
from neuralcodec.train.loop import log_steps_per_second, read_checkpoint
rate = log_steps_per_second(Path("$RUN/log.jsonl"))
print(read_checkpoint("$RUN/checkpoint.pt")["step"], max(10, int(0.85 * rate * 60 * $COOL)))
PY
  )
  echo "train_gpu: cooling down from step $STEP over $N steps"
  train --decay linear --decay_at "$("$PY" -c "print($STEP / ($STEP + $N))")" --steps $((STEP + N)) \
    --minutes "$("$PY" -c "print($COOL * 1.5)")" || rc=$?  # a safety stop: the steps should end first
fi
# model weights, step, config and lineage only (the optimizer state would not fit the 64 MiB that comes back)
[ -f "$RUN/checkpoint.pt" ] || { echo "train_gpu: no checkpoint in $RUN to bring back" >&2; exit 1; }
"$PY" - <<PY
import torch
ck = torch.load("$RUN/checkpoint.pt", weights_only=True, map_location="cpu")
torch.save({k: ck[k] for k in ("model", "step", "config", "lineage")}, "$RUN/weights.pt")
print("steps:", ck["step"])
if "${STEP:-}" and ck["step"] < ${STEP:-0} + ${N:-0}:
    print("train_gpu: warning: the cooldown stopped at its time limit, step", ck["step"], "of", ${STEP:-0} + ${N:-0})
PY
split -b 15M -d "$RUN/weights.pt" "$OUT/weights.part-"
cp "$RUN/log.jsonl" "$OUT/log.jsonl"
ls -la "$OUT"
exit "$rc"
