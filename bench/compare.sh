#!/usr/bin/env bash
# Side-by-side throughput against fakeai 0.3.2 at zero latency (see bench/README.md).
#   bash bench/compare.sh [ROUNDS] [extra loadgen args...]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
shared="$here/../../shared/bench"
rounds="${1:-3}"; shift || true
PY=/tmp/bench-tools-venv/bin/python
[ -x "$PY" ] && [ -x /tmp/bench-fakeai-venv/bin/fakeai ] || bash "$shared/setup.sh" tools fakeai
exec "$PY" "$shared/compare.py" \
  --a-cmd "fakeai server --host 127.0.0.1 --port {port} --ttft 0 --itl 0 --output-length max --log-level warning" \
  --a-port 18010 --a-name ours \
  --b-cmd 'FAKEAI_GENERATION__TTFT_MS=0 FAKEAI_GENERATION__ITL_MS=0 /tmp/bench-fakeai-venv/bin/fakeai server --host 127.0.0.1 --port {port}' \
  --b-port 18011 --b-name fakeai-0.3.2 --rounds "$rounds" -- --requests 2000 --concurrency 64 "$@"
