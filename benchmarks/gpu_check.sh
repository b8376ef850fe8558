#!/usr/bin/env bash
# The GPU checks of the LLM reward-model ensemble work (BENCHMARKS.md, "LLM reward-model
# ensembles"), in one go. NOT RUN YET: written on a machine without a GPU.
#
#   OUT=gpu-out bash benchmarks/gpu_check.sh          # from the repository root
#
# Steps (each bounded by its own timeout so the whole fits a 10-minute slot; rerun the script on
# the same machine and step 3 resumes where it stopped):
#   1. LoRA ensemble of a Qwen2-0.5B-shaped model (random weights) in bfloat16: training pairs/s,
#      scoring pairs/s routed against looped, peak CUDA memory and peak RSS for M = 1 and 10.
#   2. DeepSpeed ZeRO-3 smoke run through examples/accelerate_zero3.yaml (skipped without
#      deepspeed): a 2-member LoRA strength run on 64 HH pairs, one process.
#   3. `rewardlab strength` on the 8,552 HH pairs with M = 10 (LoRA r 8 on the same model), wall
#      time; its partial results live in $WORK, so a rerun continues it.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-check-out}
WORK=${WORK:-/tmp/rewardlab-bench}
HH=${HH:-../shared/data/hh-rlhf}
PY=${PY:-python}
export PYTHONPATH="$PWD/src:${PYTHONPATH:-}" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
mkdir -p "$OUT" "$WORK"
{ nvidia-smi; $PY -c "import torch, transformers, peft, accelerate; print(torch.__version__, \
transformers.__version__, peft.__version__, accelerate.__version__)"; } > "$OUT/env.txt" 2>&1

echo "== 1. LoRA ensemble, bf16: speed and memory, M = 1 and M = 10"
timeout 240 $PY benchmarks/bench_lora.py --device cuda --members 1,10 --pairs 128 \
    --batch-size 16 --max-length 512 --score-pairs 512 --encode-batch-size 256 \
    --json "$OUT/lora_cuda.json" 2>&1 | tee "$OUT/lora_cuda.log" | grep -v Loading

echo "== 2. DeepSpeed ZeRO-3 recipe (examples/accelerate_zero3.yaml), smoke run"
if $PY -c "import deepspeed" 2>/dev/null; then
    $PY - "$HH" "$WORK/hh-64.jsonl" <<'PY'
import glob, gzip, itertools, sys
rows = itertools.chain.from_iterable(gzip.open(f, "rt") for f in sorted(glob.glob(sys.argv[1] + "/*.jsonl.gz")))
open(sys.argv[2], "w").writelines(itertools.islice(rows, 64))
PY
    timeout 150 accelerate launch --config_file examples/accelerate_zero3.yaml \
        --num_processes 1 -m rewardlab.cli strength "$WORK/hh-64.jsonl" -o "$OUT/zero3" \
        --backend finetune --model "$WORK/qwen2-0.5b" --lora-r 8 --members 2 \
        --parallel data --batch-size 8 --max-length 256 --lr 1e-4 \
        > "$OUT/zero3.log" 2>&1
    echo "exit $? (log: $OUT/zero3.log)"; tail -5 "$OUT/zero3.log"
else
    echo "deepspeed is not installed here: ZeRO-3 recipe NOT checked" | tee "$OUT/zero3.log"
fi

echo "== 3. rewardlab strength, 8,552 HH pairs, M = 10 (resumes from $WORK/strength-hh)"
start=$(date +%s)
timeout 270 $PY -m rewardlab.cli strength "$HH"/*.jsonl.gz -o "$WORK/strength-hh" \
    --backend finetune --model "$WORK/qwen2-0.5b" --lora-r 8 --members 10 --epochs 1 \
    --batch-size 16 --lr 1e-4 --max-length 512 > "$OUT/strength.log" 2>&1
status=$?
jobs=$(ls "$WORK"/strength-hh/strength/.partial/*/job-*.npy 2>/dev/null | wc -l)
echo "exit $status after $(( $(date +%s) - start )) s; $jobs of 10 jobs finished so far" \
    | tee -a "$OUT/strength.log"
cat "$WORK"/strength-hh/strength/.partial/*/job-*.json > "$OUT/strength_jobs.json" 2>/dev/null
[ -f "$WORK/strength-hh/strength/summary.json" ] && cp "$WORK/strength-hh/strength/summary.json" \
    "$OUT/strength_summary.json"
exit 0
