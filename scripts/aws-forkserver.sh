#!/usr/bin/env bash
# The aws CLI loaded once for the test suite (Tests/Fixtures/aws-forkserver.py): each call the
# test shim makes runs in a process forked from it, at about a third of the CPU of a fresh start.
#
#   scripts/aws-forkserver.sh start DIR   start it (socket DIR/aws-fork.sock), print the socket
#   scripts/aws-forkserver.sh stop DIR    stop it by its recorded pid
#
# Needs RUNBOOK_REAL_AWS (scripts/local-aws.sh env): the server runs on that aws's interpreter,
# and serves only that aws (make test starts a second one for the aws CLI v2, AWS_V2).
# RUNBOOK_AWS_FORK=0: start nothing (every call starts the aws CLI afresh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
command="${1:-}"
dir="${2:-}"
[[ -n "$command" && -n "$dir" ]] || {
  echo "usage: $0 start|stop DIR" >&2
  exit 2
}
socket="$dir/aws-fork.sock"
pidfile="$dir/aws-fork.pid"

case "$command" in
  start)
    [[ "${RUNBOOK_AWS_FORK:-1}" != 0 ]] || exit 0
    real="${RUNBOOK_REAL_AWS:?RUNBOOK_REAL_AWS is not set (eval \"\$(scripts/local-aws.sh env)\")}"
    shebang=""
    IFS= read -r shebang <"$real" || true
    python="${shebang#\#!}"
    python="${python%% *}"
    if [[ "$shebang" != '#!/'* || ! -x "$python" ]]; then
      echo "aws-forkserver: $real does not start with a python #! line: every call starts afresh" >&2
      exit 0
    fi
    # Descriptors go over the socket with socket.send_fds/recv_fds (Python 3.9 and later).
    if ! "$python" -c 'import socket, sys; sys.exit(not hasattr(socket, "send_fds"))'; then
      echo "aws-forkserver: $python is older than Python 3.9: every call starts afresh" >&2
      exit 0
    fi
    mkdir -p "$dir"
    rm -f "$socket" "$pidfile"
    "$python" "$ROOT/Tests/Fixtures/aws-forkserver.py" "$socket" "$pidfile" \
      </dev/null >"$dir/aws-fork.log" 2>&1 &
    for _ in $(seq 300); do
      if [[ -S "$socket" && -s "$pidfile" ]]; then
        echo "$socket"
        exit 0
      fi
      kill -0 $! 2>/dev/null || break
      sleep 0.1
    done
    echo "aws-forkserver: did not start (see $dir/aws-fork.log): every call starts afresh" >&2
    kill $! 2>/dev/null || true
    exit 0
    ;;
  stop)
    if [[ -s "$pidfile" ]]; then
      kill "$(<"$pidfile")" 2>/dev/null || true
      rm -f "$pidfile"
    fi
    rm -f "$socket"
    ;;
  *)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
