#!/usr/bin/env bash
# The GPU check, in one call on a lent GPU machine (`make gpu-check OUT=dir`), or as a dry run here (--cpu).
#
#   benchmarks/gpu_check.sh OUT [--cpu]
#
# On the GPU (LLaMA-2-7B's architecture with random weights, bfloat16, no download): an offline transformers run
# on short2short (64 requests, batch 8) with NVML telemetry and energy per token; `tuibench profile` at input
# lengths 128, 512 and 2048, batch 8, against the GPU's roofline, timed twice: CUDA events per module, then a
# torch.profiler trace (what each timer cost, and where they differ); the tests/gpu suite; the app on
# a real run, its Live screen saved as an SVG; serving through every managed server installed (vLLM, SGLang,
# TensorRT-LLM), side by side. --cpu: the same steps on the toy tiny-llama, for CI.
#
# It uses the python and torch already on the machine (PYTHON, default python3). What tuibench needs beside them
# and is missing is installed from the wheels in gpu-wheels/ (`make gpu-wheels` fetches them where PyPI is
# reachable), never from a network. Writes at most 8 files into OUT: gpu-check.log, summary.json, offline.json,
# modules.txt, live.svg, results.db.
set -euo pipefail

OUT=${1:?usage: benchmarks/gpu_check.sh OUT [--cpu]}
MODE=${2:-gpu}
REPO=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
LOG="$OUT/gpu-check.log"
: >"$LOG"
exec > >(tee -a "$LOG") 2>&1

if [ "$MODE" = "--cpu" ]; then
    MODEL=tiny-llama DTYPE=float32 REQUESTS=8 BATCH=4 LENGTHS=16,64 APP_REQUESTS=4 SERVING_REQUESTS=8 SERVING_RATE=4
else
    MODEL=llama-2-7b DTYPE=bfloat16 REQUESTS=64 BATCH=8 LENGTHS=128,512,2048 APP_REQUESTS=16 SERVING_REQUESTS=64
    SERVING_RATE=4
fi
step() { printf '\n== %s  (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

step "machine"
nvidia-smi -L 2>/dev/null || echo "no nvidia-smi: no GPU"
"$PYTHON" -c 'import sys, torch; print("python", sys.version.split()[0], "· torch", torch.__version__, "· CUDA", torch.version.cuda, "· GPUs", torch.cuda.device_count())'

step "tuibench's own dependencies"
missing=$("$PYTHON" - <<'EOF'
import importlib.util
need = {"msgspec": "msgspec", "textual": "textual", "textual_plotext": "textual-plotext", "plotext": "plotext",
        "pytest": "pytest", "aiohttp": "aiohttp", "psutil": "psutil", "pynvml": "nvidia-ml-py",
        "rich": "rich", "transformers": "transformers", "accelerate": "accelerate", "tokenizers": "tokenizers",
        "httptools": "httptools"}
print(" ".join(name for module, name in need.items() if importlib.util.find_spec(module) is None))
EOF
)
if [ -n "$missing" ]; then
    echo "installing from $REPO/gpu-wheels: $missing"
    "$PYTHON" -m pip install --quiet --no-index --find-links "$REPO/gpu-wheels" $missing
fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" XDG_DATA_HOME="$OUT/.data" XDG_CACHE_HOME="${XDG_CACHE_HOME:-$OUT/.cache}"
export XDG_CONFIG_HOME="$OUT/.config" HF_HUB_OFFLINE=1
TUIBENCH=("$PYTHON" -m tuibench)
DB="$OUT/results.db"

step "offline: $MODEL ($DTYPE, random weights), short2short, $REQUESTS requests, batch $BATCH"
"${TUIBENCH[@]}" run --model "$MODEL" --dtype "$DTYPE" --dataset short2short --num-requests "$REQUESTS" \
    --batch-size "$BATCH" --db "$DB" --json "$OUT/offline.json"

step "profile: every module at input lengths $LENGTHS, batch $BATCH, timed by CUDA events (run 2)"
"${TUIBENCH[@]}" profile --model "$MODEL" --dtype "$DTYPE" --lengths "$LENGTHS" --batch "$BATCH" --db "$DB" \
    --timer events | tee "$OUT/modules.txt"

step "profile: the same, timed from a torch.profiler trace (run 3)"
"${TUIBENCH[@]}" profile --model "$MODEL" --dtype "$DTYPE" --lengths "$LENGTHS" --batch "$BATCH" --db "$DB" \
    --timer trace | tee -a "$OUT/modules.txt"

step "tests/gpu"
(cd "$REPO" && "$PYTHON" -m pytest -q -p no:cacheprovider tests/gpu) || echo "tests/gpu FAILED (see above)"

step "the app on a real run"
"$PYTHON" "$REPO/benchmarks/gpu_check.py" app "$OUT" --db "$DB" --model "$MODEL" --dtype "$DTYPE" \
    --requests "$APP_REQUESTS"

step "serving: every managed server installed here, $SERVING_REQUESTS requests of short2short at $SERVING_RATE req/s"
# vLLM, SGLang and TensorRT-LLM side by side on one workload, each its own managed server (cold start, server
# metrics); one not installed here is skipped with its reason (SGLANG=1 / TRTLLM=1 install them).
served=0
"${TUIBENCH[@]}" compare --models "$MODEL" --dtype "$DTYPE" --libraries vllm,sglang,trtllm --scenarios serving \
    --datasets short2short --num-requests "$SERVING_REQUESTS" --rates "$SERVING_RATE" --db "$DB" || served=$?
case $served in
    0) ;;
    2) echo "serving: none of the three can run here (the line above says why)" ;;
    *) echo "serving comparison FAILED (see above)" ;;
esac

step "figures"
"$PYTHON" "$REPO/benchmarks/gpu_check.py" summary "$OUT" --db "$DB"
rm -rf "$OUT/.data" "$OUT/.config"
[ "${XDG_CACHE_HOME}" = "$OUT/.cache" ] && rm -rf "$OUT/.cache"
step "done: $(ls "$OUT" | tr '\n' ' ')"
