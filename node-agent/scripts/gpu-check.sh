#!/usr/bin/env bash
# GPU check for both tasks: compute each job on the GPU and on the CPU of the same
# machine, then let each side verify the other's result bytes.
#
#   gpu-check.sh NTX_EMBED JOBS_DIR RESULTS_DIR CASE...
#
# NTX_EMBED is an `ntx-embed` built with `--features cuda`; with NTX_DEVICE=cpu the same
# binary runs on the CPU. A CASE is `JOB_NAME:MODEL_DIR:GPU_RUNS`; JOBS_DIR/JOB_NAME.json
# is the job. For each case RESULTS_DIR gets JOB_NAME.{gpu,cpu}.{bin,hash}; the log (on
# stdout) has the timings (`compute … RUNS` repeats the GPU run: the first includes
# loading the model) and both verdicts. Exit status: 0 when every verdict is Accept.
set -u
bin=$1 jobs=$2 results=$3
shift 3
mkdir -p "$results"

. "$(dirname "$0")/gpu-env.sh"
if ldd "$bin" | grep -q "not found"; then
    echo "libraries missing:"
    ldd "$bin" | grep "not found"
    exit 2
fi

status=0
for case in "$@"; do
    IFS=: read -r name model runs <<<"$case"
    job=$jobs/$name.json
    g=$results/$name.gpu c=$results/$name.cpu
    echo "== $name (model $model)"
    "$bin" compute "$model" "$job" "$g.bin" "$runs" >"$g.hash" || { status=1; continue; }
    NTX_DEVICE=cpu "$bin" compute "$model" "$job" "$c.bin" 1 >"$c.hash" || { status=1; continue; }
    if cmp -s "$g.bin" "$c.bin"; then
        echo "GPU and CPU bytes identical"
    else
        echo "GPU and CPU bytes differ ($(cmp "$g.bin" "$c.bin" 2>&1 | head -1))"
    fi
    echo -n "CPU verifier on the GPU result: "
    NTX_DEVICE=cpu "$bin" verify "$model" "$job" "$g.bin" "$(cat "$g.hash")" || status=1
    echo -n "GPU verifier on the CPU result: "
    "$bin" verify "$model" "$job" "$c.bin" "$(cat "$c.hash")" || status=1
done
exit $status
