#!/usr/bin/env bash
# DIP-aware LoRA fine-tuning on stories260K (issue 13's evidence; results in bench/RESULTS.md).
#   bash bench/finetune-stories.sh [train|eval|eval-ca|all]   (default all; work files in .tmp/finetune-stories)
# Splits ../shared/data/text/tinystories-sample.txt at the first story start after 80% of its characters:
# the LoRA adapters train on the first part only, perplexity is measured on the rest (held out).
# train: one adapter per MLP density (0.25, 0.5, 0.75) trained with DIP's masks in the forward pass, and one
# trained dense; the four runs go in parallel (python3 with torch >= 1.13 and numpy).
# eval: `flashdip ppl` on the held-out part for dense, dip, dip + the masked adapter of that density and
# dip + the dense adapter, at each density.
# eval-ca: the same for dip-ca under a memory budget whose column cache holds half the MLP (static weights
# 510,720 + one layer's streaming buffer 132,096 + the f32 KV cache of 256 positions 327,680 + scratch 225,432
# + half the MLP 330,240 = 1,526,168 bytes; with an adapter, its 184,960 bytes more, so every run caches the
# same columns), at the gamma `flashdip plan` picks for that budget on the training text (0.5).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=../shared/data/models/stories260K.gguf
W=.tmp/finetune-stories
STEPS=${STEPS:-120} BATCH=${BATCH:-8} CTX=${CTX:-128} LR=${LR:-5e-3} RANK=${RANK:-8} SEED=${SEED:-1}
EVAL_TOKENS=${EVAL_TOKENS:-16384}
BUDGET=${BUDGET:-1526168} ADAPTER_BYTES=${ADAPTER_BYTES:-184960} GAMMA=${GAMMA:-0.5}
mkdir -p "$W"
phase=${1:-all}

split() {
  python3 - "$W" <<'PY'
import sys
w = sys.argv[1]
t = open('../shared/data/text/tinystories-sample.txt', encoding='utf-8').read()
cut = t.find('\n\nOnce upon a time', int(len(t) * 0.8))
open(w + '/train.txt', 'w', encoding='utf-8').write(t[:cut])
open(w + '/heldout.txt', 'w', encoding='utf-8').write(t[cut + 2:])
print('train: characters 0..%d of %d; held out: the rest' % (cut, len(t)))
PY
}

train() {
  split
  local pids=()
  for d in 0.25 0.5 0.75 dense; do
    local extra=()
    [ "$d" != dense ] && extra=(--density "$d")
    python3 scripts/finetune/recipe.py finetune --base "$MODEL" --text "$W/train.txt" --out "$W/lora-$d.gguf" \
      --work "$W/work-$d" "${extra[@]}" --steps "$STEPS" --batch "$BATCH" --ctx "$CTX" --lr "$LR" --rank "$RANK" \
      --seed "$SEED" --threads 1 > "$W/train-$d.log" 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  grep -h "wrote\|finetune:" "$W"/train-*.log
}

ppl() {
  node bin/flashdip.js ppl -m "$MODEL" --text "$W/heldout.txt" --ctx 256 --max-tokens "$EVAL_TOKENS" -t 1 "$@" 2>/dev/null |
    sed -n 's/^perplexity \([0-9.]*\) over \([0-9]*\) tokens.*/\1/p'
}

evaluate() {
  echo "stories260K, held-out TinyStories ($W/heldout.txt), first $EVAL_TOKENS tokens, windows of 256, chunked"
  echo "dense: $(ppl)"
  echo "dense + dense-trained LoRA: $(ppl --lora "$W/lora-dense.gguf")"
  echo
  echo "| MLP density | dip | dip + LoRA trained with masks | dip + LoRA trained dense |"
  echo "| --- | --- | --- | --- |"
  for d in 0.25 0.5 0.75; do
    echo "| $d | $(ppl --method dip --density $d) | $(ppl --method dip --density $d --lora "$W/lora-$d.gguf") | $(ppl --method dip --density $d --lora "$W/lora-dense.gguf") |"
  done
}

evaluate_ca() {
  local ca=(--method dip-ca --gamma "$GAMMA" --memory-budget "$BUDGET")
  local cal=(--method dip-ca --gamma "$GAMMA" --memory-budget $((BUDGET + ADAPTER_BYTES)))
  echo "dip-ca, gamma $GAMMA, memoryBudget $BUDGET bytes (+ $ADAPTER_BYTES with an adapter)"
  echo
  echo "| MLP density | dip-ca | dip-ca + LoRA trained with masks | dip-ca + LoRA trained dense |"
  echo "| --- | --- | --- | --- |"
  for d in 0.25 0.5 0.75; do
    echo "| $d | $(ppl "${ca[@]}" --density $d) | $(ppl "${cal[@]}" --density $d --lora "$W/lora-$d.gguf") | $(ppl "${cal[@]}" --density $d --lora "$W/lora-dense.gguf") |"
  done
}

case "$phase" in
  train) train ;;
  eval) evaluate ;;
  eval-ca) evaluate_ca ;;
  all) train; evaluate; evaluate_ca ;;
  *) echo "usage: $0 [train|eval|eval-ca|all]" >&2; exit 2 ;;
esac
