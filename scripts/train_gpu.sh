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
#   here:  cat <files_at>/weights.part-* > runs/gpu/checkpoint.pt
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
RUN=${RUN:-/tmp/run}    # the training run's folder (a rerun there resumes it)
mkdir -p "$OUT"
WHEELS=${WHEELS:-.whl}  # WHEELS=none for a dry run here (the wheels are for the device's Python 3.12)
if [ -d "$WHEELS" ]; then
  "${PYTHON:-python3}" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else  # the caller's path stays (scripts/gpu_session.sh installed the wheels in /tmp/site already)
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
STATE=${STATE:-campaign/$MODEL.pt}
if [ ! -f "$RUN/checkpoint.pt" ] && [ "$STATE" != none ] && [ -f "$STATE" ]; then  # copied in when it continues MODEL's newest
  "${PYTHON:-python3}" scripts/campaign.py seed --model "$MODEL" --run "$RUN" --checkpoint "$STATE" \
    || echo "train_gpu: starting from the newest version of $MODEL"
fi
[ "$DEVICE" = cpu ] || nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
COOL=${COOL:-0}  # the last COOL of the MINUTES cool the lr linearly to 0 over as many steps as fit (phase 1's steps/s)
train() {
  PYTHONUNBUFFERED=1 TQDM_MININTERVAL=60 "${PYTHON:-python3}" scripts/train.py --model "$MODEL" --data "$PACK" --out "$RUN" \
    --init "$MODEL" --device "$DEVICE" --lr 2e-4 --batch "${BATCH:-16}" --crop "${CROP:-256}" \
    --checkpoint_every 2000 --log_every 100 "$@"
}
train --decay_at 1.0 --steps 10000000 --minutes "$("${PYTHON:-python3}" -c "print($MINUTES - $COOL)")"
if [ "$COOL" != 0 ]; then
  # the step reached and phase 1's steps/s (its log's records since the last start; 10 steps without two)
  read -r STEP N < <("${PYTHON:-python3}" - <<PY
import json, torch
step = torch.load("$RUN/checkpoint.pt", weights_only=True, map_location="cpu")["step"]
recs = [r for r in map(json.loads, open("$RUN/log.jsonl")) if "sec" in r]
starts = [i for i, r in enumerate(recs) if i == 0 or r["sec"] < recs[i - 1]["sec"]]
last = recs[starts[-1]:] if recs else []
rate = (last[-1]["step"] - last[0]["step"]) / (last[-1]["sec"] - last[0]["sec"]) if len(last) > 1 else 0.0
print(step, max(10, int(0.9 * rate * 60 * $COOL)))
PY
  )
  echo "train_gpu: cooling down from step $STEP over $N steps"
  train --decay linear --decay_at "$("${PYTHON:-python3}" -c "print($STEP / ($STEP + $N))")" --steps $((STEP + N)) \
    --minutes "$("${PYTHON:-python3}" -c "print($COOL * 1.15)")"  # a safety stop: the steps end first
fi
# model weights, step, config and lineage only (the optimizer state would not fit the 64 MiB that comes back)
"${PYTHON:-python3}" - <<PY
import torch
ck = torch.load("$RUN/checkpoint.pt", weights_only=True, map_location="cpu")
torch.save({k: ck[k] for k in ("model", "step", "config", "lineage")}, "$RUN/weights.pt")
print("steps:", ck["step"])
PY
split -b 15M -d "$RUN/weights.pt" "$OUT/weights.part-"
cp "$RUN/log.jsonl" "$OUT/log.jsonl"
ls -la "$OUT"
