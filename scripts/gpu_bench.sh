#!/usr/bin/env bash
# The GPU numbers of docs/BENCHMARKS.md: ViT-B-32 (random weights), batch 128, 200 classes, every method,
# optimised and naive, fp32 and bf16 autocast, the PGD-10 evaluation ratio, CAW with torch.compile, and
# caw's steps against the ported PMG-AFT and TGA-ZSR reference steps (--mode reference, fp32).
#
#   scripts/gpu_bench.sh OUT_DIR        # about 6 minutes on an H200 (torch.compile alone ~2); PYTHON=... to pick the interpreter
#
# Writes OUT_DIR/{fp32,bf16,bf16-compile,reference}.json (the `caw-core bench --json` report), .txt (the table) and .log,
# plus nvidia-smi.txt. Jobs run in one process per invocation (--no-isolate): on CUDA the memory figure is
# max_memory_allocated after a reset, which other jobs' freed tensors do not inflate. Each invocation has its
# own time limit so that one slow part cannot eat the others' time; a timed-out part leaves no JSON.
set -uo pipefail
out=${1:?usage: scripts/gpu_bench.sh OUT_DIR}
mkdir -p "$out"
cd "$(dirname "$0")/.."
py=${PYTHON:-python}
common=(--model ViT-B-32 --batch-size 128 --classes 200 --device cuda --no-isolate --warmup 2 --steps 5)

part() {  # part NAME LIMIT_S ARGS...
  local name=$1 limit=$2
  shift 2
  echo "gpu_bench: $name (limit ${limit}s)"
  timeout "$limit" "$py" -m caw_core.cli bench "${common[@]}" "$@" --out "$out/$name.json" \
    >"$out/$name.txt" 2>"$out/$name.log" || echo "gpu_bench: $name failed or timed out, see $out/$name.log"
}

nvidia-smi >"$out/nvidia-smi.txt" 2>&1
part fp32 100 --mode both --precision fp32 --eval --eval-repeats 3
part bf16 70 --mode both --precision bf16
part bf16-compile 200 --mode optimized --precision bf16 --compile --methods caw
part reference 100 --mode reference --precision fp32
cat "$out"/fp32.txt "$out"/bf16.txt "$out"/bf16-compile.txt "$out"/reference.txt 2>/dev/null
