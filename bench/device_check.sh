#!/usr/bin/env bash
# One short accelerator check (at most 8 minutes on one GPU): hi-res 128x1024 mel-IF training
# images/s at batch 8 and at the largest batch that fits, with and without --mixed_precision
# and --jit_compile; generation x real time at batch 64 with IF phase; peak GPU memory.
# Writes bench/results/device_check_<host>_<date>.json. See bench/device_check.py.
#
#   bash bench/device_check.sh            # on the GPU machine
#   bash bench/device_check.sh --tiny     # toy size on the CPU, < 1 minute (CI smoke test)
#   PYTHON=/path/to/python bash bench/device_check.sh --max_batch=128
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# The script skips what is left after --budget_s (7 min); this is the hard stop.
exec timeout --signal=INT --kill-after=20 480 "$PYTHON" bench/device_check.py "$@"
