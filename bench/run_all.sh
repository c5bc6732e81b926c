#!/usr/bin/env bash
# Runs every benchmark with its defaults and writes JSON (and the printed Markdown tables)
# into bench/results/. On a machine with a GPU the same commands run unchanged: TensorFlow
# picks the GPU up and each script prints the device it used.
#
#   bench/run_all.sh                    # uses $PYTHON, else ./venv, ../venv, .venv, python3
#   PYTHON=/path/to/python bench/run_all.sh
#   bench/run_all.sh --skip-data        # leave out bench_data.py
#   BENCH_OUT=/tmp/b bench/run_all.sh   # write somewhere else than bench/results/
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${PYTHON:-}" ]]; then
  for candidate in venv/bin/python ../venv/bin/python .venv/bin/python; do
    if [[ -x "$candidate" ]]; then PYTHON="$candidate"; break; fi
  done
fi
PYTHON="${PYTHON:-python3}"
OUT="${BENCH_OUT:-bench/results}"
mkdir -p "$OUT"
skip_data=0
[[ "${1:-}" == "--skip-data" ]] && skip_data=1

run() {  # name, script, extra flags...
  local name=$1 script=$2; shift 2
  echo "== $name: $PYTHON $script $* --output_json=$OUT/$name.json"
  "$PYTHON" "$script" "$@" --output_json="$OUT/$name.json" 2>"$OUT/$name.stderr.log" \
    | tee "$OUT/$name.md"
}

{ date -u; lscpu | grep 'Model name' || true; nproc; uptime; } > "$OUT/machine.txt"
run generation bench/bench_generation.py
run training bench/bench_training.py
run memory bench/bench_memory.py
if [[ $skip_data == 0 ]]; then
  run data bench/bench_data.py
fi
echo "results in $OUT/"
