#!/usr/bin/env bash
# Timing fidelity at TTFT 200 ms / ITL 20 ms, no jitter, max_tokens 64 (see bench/README.md).
#   bash bench/fidelity.sh [CONCURRENCY_LIST]
#   SERVER_ARGS="--workers 2" bash bench/fidelity.sh 1024      (extra flags for our server)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
shared="$here/../../shared/bench"
levels="${1:-1,64,256,1024}"
PY=/tmp/bench-tools-venv/bin/python
[ -x "$PY" ] || bash "$shared/setup.sh" tools
echo "== calibration server (the measuring side's own error)"
"$PY" "$shared/fidelity.py" --name calib --ttft-ms 200 --itl-ms 20 --port 18021 --concurrency "$levels" \
  --cmd "$PY $shared/calib_server.py --port {port} --ttft-ms 200 --itl-ms 20"
echo "== fakeai"
"$PY" "$shared/fidelity.py" --name ours --ttft-ms 200 --itl-ms 20 --port 18020 --concurrency "$levels" \
  --cmd "fakeai server --host 127.0.0.1 --port {port} --ttft 200 --itl 20 --log-level warning ${SERVER_ARGS:-}"
