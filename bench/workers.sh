#!/usr/bin/env bash
# --workers 2 against --workers 1, side by side (zero latency, concurrency 64, see bench/README.md).
#   bash bench/workers.sh [ROUNDS] [extra loadgen args...]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
shared="$here/../../shared/bench"
rounds="${1:-3}"; shift || true
PY=/tmp/bench-tools-venv/bin/python
[ -x "$PY" ] || bash "$shared/setup.sh" tools
common="--host 127.0.0.1 --port {port} --ttft 0 --itl 0 --output-length max --log-level warning"
exec "$PY" "$shared/compare.py" \
  --a-cmd "fakeai server $common --workers 2 --data-dir /tmp/fakeai-bench-w2" --a-port 18012 --a-name workers-2 \
  --b-cmd "fakeai server $common --workers 1 --data-dir /tmp/fakeai-bench-w1" --b-port 18013 --b-name workers-1 \
  --rounds "$rounds" -- --requests 4000 --concurrency 64 "$@"
