#!/usr/bin/env bash
# The real CLI path on a GPU, end to end: a bf16 CAW fine-tune of ViT-B-32 (random weights; no hub there) on
# the toy training task at the toy eps (12/255), stopped half way and resumed, then an fp32 evaluation (clean,
# PGD-10, AutoAttack) of the vanilla toy CLIP and of the fine-tune on CUDA, and the report.
#
#   scripts/gpu_smoke.sh OUT_DIR      # about 2 minutes on an H200; MODEL=, DEVICE=, PRECISION= to change
#
# What to read in OUT_DIR: train.log (both halves; the resumed one starts at step 10), the report (report.txt)
# with vanilla toy at ~0% under AutoAttack on CUDA, and the run's config.json / metrics.jsonl.
set -euo pipefail
out=${1:?usage: scripts/gpu_smoke.sh OUT_DIR}
mkdir -p "$out"
cd "$(dirname "$0")/.."
py=${PYTHON:-python}
model=${MODEL:-ViT-B-32} device=${DEVICE:-cuda} precision=${PRECISION:-bf16}
cli() { "$py" -m caw_core.cli "$@"; }
train=(train --method caw --model "$model" --pretrained none --data toy-shape --device "$device" --precision "$precision"
       --batch-size 64 --eps 12 --save-every 10 --num-workers 2 --runs-dir "$out/runs" --name smoke --quiet)
cli "${train[@]}" --max-steps 10 >"$out/train.log" 2>&1
cli train --resume "$out/runs/smoke" --max-steps 20 --quiet >>"$out/train.log" 2>&1
cli eval --models "toy:none:none" "$model:none:$out/runs/smoke" --datasets toy-shape,toy-colour \
    --attacks clean,pgd,aa --eps 12 --n 64 --device "$device" --out "$out/results" --quiet >"$out/eval.log" 2>&1
cli report "$out/results" >"$out/report.txt" 2>&1
cat "$out/report.txt"
tail -n 3 "$out/runs/smoke/metrics.jsonl"
