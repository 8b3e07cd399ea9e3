#!/usr/bin/env bash
# A stand-in for the services' health endpoint, for `make demo`: the local emulator runs no
# containers, so `runbook run verify` probes this instead (Tests/Fixtures/net/health-server.py,
# answering 200 {"status":"UP"}).
#
#   scripts/demo-health.sh start URL   serve on URL's port on 127.0.0.1 (idempotent; no URL: nothing)
#   scripts/demo-health.sh stop        stop it by its recorded pid
#
# State: ${RUNBOOK_TEST_DIR:-<repo>/.test-env}/demo-health.{pid,log}
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${RUNBOOK_TEST_DIR:-$ROOT/.test-env}"
PID_FILE="$STATE/demo-health.pid"

running() { [[ -f "$PID_FILE" ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; }

case "${1:-}" in
  start)
    url="${2:-}"
    if [[ -z "$url" ]]; then
      echo "demo-health: no healthCheckUrl in the configuration: verify will probe the load balancer" >&2
      exit 0
    fi
    running && exit 0
    port="$(python3 -c 'import sys, urllib.parse; u = urllib.parse.urlsplit(sys.argv[1]); print(u.port or 80 if u.hostname in ("127.0.0.1", "localhost") else "")' "$url")"
    if [[ -z "$port" ]]; then
      echo "demo-health: $url is not on 127.0.0.1: nothing to start" >&2
      exit 0
    fi
    mkdir -p "$STATE"
    HEALTH_SERVER_PORT="$port" nohup python3 "$ROOT/Tests/Fixtures/net/health-server.py" up \
      >"$STATE/demo-health.log" 2>&1 </dev/null &
    echo $! >"$PID_FILE"
    for _ in $(seq 50); do
      if [[ -s "$STATE/demo-health.log" ]]; then exit 0; fi
      running || break
      sleep 0.1
    done
    echo "demo-health: the stand-in health server did not start on port $port (see $STATE/demo-health.log)" >&2
    exit 1
    ;;
  stop)
    if running; then kill "$(cat "$PID_FILE")"; fi
    rm -f "$PID_FILE"
    ;;
  *)
    echo "usage: scripts/demo-health.sh start URL | stop" >&2
    exit 2
    ;;
esac
