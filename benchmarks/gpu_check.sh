#!/usr/bin/env bash
# The GPU checks, as one script of steps (each step has a time limit, and a failed step does not stop the others;
# a device command may run 10 minutes at most, so run the steps in groups, e.g. `tests modules models`, then
# `loop scoring`, then `study`):
#   1. the tests on CUDA: the Triton tests (compiled kernels, not the interpreter; the half-precision kernel
#      cases are left to the module tests, to save compile time) and the `gpu`-marked ones;
#   2. `attnlab bench modules` at ResNet-50's four stage shapes, N=64, bf16 autocast, channels_last, CUDA events,
#      with timm's SE/ECA/CBAM where timm imports, on the Triton path and (for the "today" figures) the PyTorch one;
#   3. `attnlab bench models` for ResNet-50 at batch 128 (training step and inference), same settings, with timm's
#      ResNet-50s, on the Triton path and the PyTorch one.
#   4. `loop`: the GPU-only loop tests, then `attnlab bench loop` (the training loop against the bare step,
#      ResNet-20 and + CBAM, batch 128 and 1024, bf16, channels_last, batches made on the host and on the GPU);
#   5. `scoring`: `attnlab bench scoring`, the five localisation metrics on 10,000 maps of 64x64 on the GPU, today's
#      code against the frozen reference (one round: the reference's MaxBoxAccV2 is slow);
#   6. `study` (not in the default steps): the study of the GPU-speed issue, the full preset's 15 runs at one
#      clutter level (5 models x 3 seeds x 30 epochs on 60,000 canvases, 10,000 scored), timed wall clock; its
#      report goes to benchmarks/results/study-<gpu>/, its runs to $TMPDIR (finished runs are reused, so a second
#      command on the same machine continues).
# Tables go to benchmarks/results/*-<gpu>.md (and, when $OUT is set, are copied there with the logs).
#
#   PYTHONPATH=src bash benchmarks/gpu_check.sh                 # everything, from the repository root
#   PYTHONPATH=src bash benchmarks/gpu_check.sh tests modules   # some steps only (tests modules models loop scoring study)
#   QUICK=1 ...                                                 # fewer rounds (a smoke run)
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="${PYTHONPATH:-src}"
PY="${PYTHON:-python}"
unset TRITON_INTERPRET ATTNLAB_BACKEND
STEPS="${*:-tests modules models loop scoring}"
REPEATS=$([ "${QUICK:-0}" = 1 ] && echo 3 || echo 10)
MODEL_REPEATS=$([ "${QUICK:-0}" = 1 ] && echo 2 || echo 6)
LOG=benchmarks/results/gpu_check.log
mkdir -p benchmarks/results
: >> "$LOG"
status=0

step() {  # step NAME SECONDS CMD...: run with a time limit, log it, remember a failure, go on
    local name=$1 limit=$2
    shift 2
    echo "== $name: $*" | tee -a "$LOG"
    local t0=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee -a "$LOG"
    local rc=${PIPESTATUS[0]}
    echo "== $name: exit $rc after $((SECONDS - t0)) s" | tee -a "$LOG"
    [ "$rc" = 0 ] || status=1
}

GPU=$("$PY" -c "import torch; print(torch.cuda.get_device_name(0))") || { echo "no CUDA device" | tee -a "$LOG"; exit 2; }
SLUG=$(echo "$GPU" | tr 'A-Z' 'a-z' | sed -E 's/[^a-z0-9]+/-/g; s/^-|-$//g')
"$PY" - <<'EOF' 2>&1 | tee -a "$LOG"
import platform, torch
print("GPU:", torch.cuda.get_device_name(0), "| torch", torch.__version__, "| python", platform.python_version())
for mod in ("triton", "timm"):
    try:
        print(mod, __import__(mod).__version__)
    except Exception as err:  # noqa: BLE001
        print(mod, "does not import:", err)
EOF

if [[ " $STEPS " == *" tests "* ]]; then
    step tests 200 "$PY" -m pytest -q -p no:cacheprovider -m "gpu or not slow" -k "not (passes_match and float16)" \
        tests/attention/test_triton_kernels.py tests/attention/test_triton_modules.py tests/attention/test_triton_ops.py \
        tests/attention/test_triton_gpu.py tests/attention/test_triton_ptx.py tests/benchtools/test_timing.py \
        tests/metrics/test_fast_paths.py
fi

MOD=(bench modules --device cuda --amp bfloat16 --channels-last --batch 64 --modules se,eca,cbam --timm
     --repeats "$REPEATS")
if [[ " $STEPS " == *" modules "* ]]; then
    step "modules (triton)" 90 "$PY" -m attnlab.cli "${MOD[@]}" --out "benchmarks/results/modules-$SLUG.md"
    step "modules (torch)" 60 env ATTNLAB_BACKEND=torch "$PY" -m attnlab.cli "${MOD[@]}" \
        --out "benchmarks/results/modules-torch-$SLUG.md"
fi

NET=(bench models --device cuda --amp bfloat16 --channels-last --models resnet50 --infer-batch 128 --train-batch 128
     --repeats "$MODEL_REPEATS" --warmup 2)
if [[ " $STEPS " == *" models "* ]]; then
    step "models (triton)" 150 "$PY" -m attnlab.cli "${NET[@]}" --attention se,eca,cbam,bam --timm \
        --out "benchmarks/results/models-$SLUG.md"
    step "models (torch)" 90 env ATTNLAB_BACKEND=torch "$PY" -m attnlab.cli "${NET[@]}" --attention se,eca,cbam \
        --out "benchmarks/results/models-torch-$SLUG.md"
fi

# loop: `attnlab bench loop`, the training loop's images/s against the bare step's (ResNet-20 and + CBAM on
# Cluttered Fashion-MNIST, batch 128 and 1024, bf16, channels_last), batches made on the host and on the GPU.
LOOP_REPEATS=$([ "${QUICK:-0}" = 1 ] && echo 2 || echo 5)
if [[ " $STEPS " == *" loop "* ]]; then
    step "loop tests" 200 "$PY" -m pytest -q -p no:cacheprovider -m gpu tests/train tests/benchmarks/test_loop.py
    step loop 420 "$PY" -m attnlab.cli bench loop --device cuda --batch 128,1024 --repeats "$LOOP_REPEATS" \
        --out "benchmarks/results/loop-$SLUG.md"
fi

if [[ " $STEPS " == *" scoring "* ]]; then
    step scoring 300 "$PY" -m attnlab.cli bench scoring --device cuda --repeats 1 \
        --out "benchmarks/results/scoring-$SLUG.md"
fi

if [[ " $STEPS " == *" study "* ]]; then
    step study 570 "$PY" -m attnlab.cli study --preset full --clutter 4 --dataset cluttered-fashion-mnist \
        --device cuda --no-progress --out "benchmarks/results/study-$SLUG" --runs "${TMPDIR:-/tmp}/attnlab-study-runs"
fi

if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT/results"
    cp benchmarks/results/*-"$SLUG".md "$LOG" "$OUT/results/" 2>/dev/null
    [ -d "benchmarks/results/study-$SLUG" ] && cp "benchmarks/results/study-$SLUG"/{index.html,results.json} \
        "$OUT/results/" 2>/dev/null
fi
echo "gpu_check: $([ $status = 0 ] && echo all steps passed || echo some step failed, see $LOG)" | tee -a "$LOG"
exit $status
