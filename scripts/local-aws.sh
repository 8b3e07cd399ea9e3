#!/usr/bin/env bash
# Local AWS emulator for tests: moto_server on 127.0.0.1, driven by the real aws CLI (v1), with
# the strict layer in front of it (Tests/Fixtures/aws-strict.py: a loopback proxy that makes moto
# answer as real AWS documents; docs/reliability.md, "Strict layer").
#
#   scripts/local-aws.sh start       start moto_server and the strict layer (idempotent), print url
#   scripts/local-aws.sh stop        stop both by recorded pid
#   scripts/local-aws.sh url         print the URL the tests use: the strict layer's, or moto's
#                                    when RUNBOOK_AWS_STRICT=0
#   scripts/local-aws.sh strict-url  print the strict layer's URL (whatever RUNBOOK_AWS_STRICT says)
#   scripts/local-aws.sh plain-url   print moto_server's own URL
#   scripts/local-aws.sh env         print shell lines for: eval "$(scripts/local-aws.sh env)"
#   scripts/local-aws.sh tools       resolve (and install if needed) aws + moto_server, print their paths
#
# Between tests, reset all emulated state with:
#   curl --noproxy '*' -fsS -X POST "$RUNBOOK_TEST_ENDPOINT/moto-api/reset"
# (answers {"status": "ok"}; AWS managed IAM policies are loaded again after a reset). Through the
# strict layer the reset also clears what the layer remembers and its test settings.
#
# Environment:
#   RUNBOOK_TEST_DIR     state directory (default: <repo>/.test-env); holds moto.pid, moto.port,
#                        moto.log, aws.path, moto.path, strict.pid, strict.port, strict.log
#   RUNBOOK_AWS_STRICT   1 (default): url and env name the strict layer, with every behaviour on;
#                        0: they name moto_server itself (the layer still runs, applying nothing
#                        until told through its control API: the strict tests use it that way);
#                        or a comma list of behaviours (aws-strict.py's header lists them).
#                        start records it (strict.mode): url and env without it follow start
#   RUNBOOK_AWS_STRICT_SCALE  the layer's one time setting: real AWS seconds x this (default
#                        0.01), each delay kept between 0.5 and 3 s; never 0
#   RUNBOOK_FORCE_VENV=1 ignore aws/moto_server on PATH and use <repo>/.venv (created from PyPI)
#   RUNBOOK_VENV_DIR     virtualenv location (default: <repo>/.venv)
#   RUNBOOK_MOTO_START_TIMEOUT  seconds to wait for moto to answer (default 30)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${RUNBOOK_TEST_DIR:-$ROOT/.test-env}"
VENV="${RUNBOOK_VENV_DIR:-$ROOT/.venv}"
# Versions the design notes were measured with (shared/design/aws-and-moto.md).
AWSCLI_SPEC="${RUNBOOK_AWSCLI_SPEC:-awscli==1.45.11}"
MOTO_SPEC="${RUNBOOK_MOTO_SPEC:-moto[server]==5.2.1}"
START_TIMEOUT="${RUNBOOK_MOTO_START_TIMEOUT:-30}"

PID_FILE="$STATE/moto.pid"
PORT_FILE="$STATE/moto.port"
LOG_FILE="$STATE/moto.log"
STRICT_PY="$ROOT/Tests/Fixtures/aws-strict.py"
STRICT_PID_FILE="$STATE/strict.pid"
STRICT_PORT_FILE="$STATE/strict.port"
STRICT_LOG_FILE="$STATE/strict.log"
STRICT_MODE_FILE="$STATE/strict.mode"
# What `start` was told, for url and env run later without RUNBOOK_AWS_STRICT (make env-up, then
# eval "$(scripts/local-aws.sh env)" in a shell of one's own).
STRICT="${RUNBOOK_AWS_STRICT:-$(cat "$STRICT_MODE_FILE" 2>/dev/null || echo 1)}"

die() {
  printf 'local-aws: %s\n' "$*" >&2
  exit 1
}

log() {
  printf 'local-aws: %s\n' "$*" >&2
}

# Resolve a command on PATH to a real binary; pyenv shims cost ~0.2 s per call.
resolve_bin() {
  local name="$1" path real
  path="$(command -v "$name" 2>/dev/null)" || return 1
  if [[ "$path" == */shims/* ]]; then
    # A pyenv shim; pyenv itself may not be on PATH (only the shims are).
    local root="${path%/shims/*}" pyenv
    pyenv="$(command -v pyenv 2>/dev/null || true)"
    [[ -n "$pyenv" ]] || pyenv="$root/libexec/pyenv"
    if [[ -x "$pyenv" ]]; then
      # A shim whose command is missing in the active version fails at call time: absent.
      real="$(PYENV_ROOT="${PYENV_ROOT:-$root}" "$pyenv" which "$name" 2>/dev/null)" &&
        [[ -x "$real" ]] || return 1
      path="$real"
    fi
  fi
  readlink -f "$path"
}

# The tests' aws is v1 (pip awscli). v2 is AWS's native binary, or a Python script too in
# Debian's awscli package (/usr/bin/aws, aws-cli/2.9.19): ask it its version.
is_cli_v1() {
  local version
  version="$("$1" --version 2>&1)" || return 1
  [[ "$version" == aws-cli/1.* ]]
}

python_for_venv() {
  local py
  py="$(resolve_bin python3)" || die "python3 is not installed"
  # Debian's python3 ships without ensurepip: venv needs the python3-venv package.
  if ! "$py" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
      log "installing python3-venv with apt-get"
      DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >&2
    else
      die "$py cannot create a virtualenv (install python3-venv)"
    fi
  fi
  printf '%s\n' "$py"
}

ensure_venv() {
  if [[ -x "$VENV/bin/aws" && -x "$VENV/bin/moto_server" ]]; then
    return 0
  fi
  local py
  py="$(python_for_venv)"
  log "creating $VENV and installing $AWSCLI_SPEC $MOTO_SPEC from PyPI"
  "$py" -m venv "$VENV" >&2
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$AWSCLI_SPEC" "$MOTO_SPEC" >&2
  [[ -x "$VENV/bin/aws" && -x "$VENV/bin/moto_server" ]] || die "venv install did not provide aws and moto_server"
}

# Sets AWS_BIN and MOTO_BIN, writes aws.path and moto.path.
resolve_tools() {
  AWS_BIN=""
  MOTO_BIN=""
  if [[ "${RUNBOOK_FORCE_VENV:-0}" != 1 ]]; then
    AWS_BIN="$(resolve_bin aws || true)"
    MOTO_BIN="$(resolve_bin moto_server || true)"
    if [[ -n "$AWS_BIN" ]] && ! is_cli_v1 "$AWS_BIN"; then
      log "$AWS_BIN is not the aws CLI v1 (pip awscli): using $VENV"
      AWS_BIN=""
    fi
  fi
  if [[ -z "$AWS_BIN" || -z "$MOTO_BIN" ]]; then
    ensure_venv
    AWS_BIN="$VENV/bin/aws"
    MOTO_BIN="$VENV/bin/moto_server"
  fi
  mkdir -p "$STATE"
  printf '%s\n' "$AWS_BIN" >"$STATE/aws.path"
  printf '%s\n' "$MOTO_BIN" >"$STATE/moto.path"
}

free_port() {
  python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

recorded_pid() {
  local pid
  [[ -f "$PID_FILE" ]] || return 1
  pid="$(<"$PID_FILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  printf '%s\n' "$pid"
}

pid_alive() {
  kill -0 "$1" 2>/dev/null
}

# A recorded pid may have been reused by another process since: only touch it if it is moto.
is_moto() {
  local args
  args="$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null)" || return 1
  [[ "$args" == *moto_server* ]]
}

answers() {
  curl --noproxy '*' -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$1/moto-api/" 2>/dev/null
}

running() {
  local pid port
  pid="$(recorded_pid)" || return 1
  [[ -f "$PORT_FILE" ]] || return 1
  port="$(<"$PORT_FILE")"
  pid_alive "$pid" && is_moto "$pid" && answers "$port"
}

# A recorded pid of the strict layer: only touch it if it is the layer.
is_strict() {
  local args
  args="$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null)" || return 1
  [[ "$args" == *aws-strict.py* ]]
}

stop_pid() {
  local pid="$1" check="${2:-is_moto}" i
  pid_alive "$pid" && "$check" "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    pid_alive "$pid" || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 20; i++)); do
    pid_alive "$pid" || return 0
    sleep 0.1
  done
  log "pid $pid did not exit"
}

strict_pid() {
  local pid
  [[ -f "$STRICT_PID_FILE" ]] || return 1
  pid="$(<"$STRICT_PID_FILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  printf '%s\n' "$pid"
}

strict_answers() {
  curl --noproxy '*' -fsS --max-time 2 "http://127.0.0.1:$1/strict-api/config" 2>/dev/null
}

# The strict layer runs, answers, and forwards to the moto_server running now.
strict_running() {
  local pid port moto_port
  pid="$(strict_pid)" || return 1
  [[ -f "$STRICT_PORT_FILE" && -f "$PORT_FILE" ]] || return 1
  port="$(<"$STRICT_PORT_FILE")"
  moto_port="$(<"$PORT_FILE")"
  pid_alive "$pid" && is_strict "$pid" || return 1
  strict_answers "$port" | grep -q "\"upstream\": \"http://127.0.0.1:$moto_port\""
}

start_strict() {
  local moto_port="$1" old py pid deadline
  if strict_running; then
    return 0
  fi
  if old="$(strict_pid)"; then
    stop_pid "$old" is_strict
  fi
  rm -f "$STRICT_PID_FILE" "$STRICT_PORT_FILE"
  py="$(resolve_bin python3)" || die "python3 is not installed (the strict layer needs it)"
  printf '%s\n' "$STRICT" >"$STRICT_MODE_FILE"
  # RUNBOOK_AWS_STRICT=0 starts the layer with nothing on: url names moto, strict-url the layer.
  RUNBOOK_AWS_STRICT="$STRICT" "$py" "$STRICT_PY" --upstream "http://127.0.0.1:$moto_port" \
    --port-file "$STRICT_PORT_FILE" </dev/null >>"$STRICT_LOG_FILE" 2>&1 &
  pid=$!
  printf '%s\n' "$pid" >"$STRICT_PID_FILE"
  deadline=$((SECONDS + START_TIMEOUT))
  while pid_alive "$pid" && ((SECONDS < deadline)); do
    if [[ -f "$STRICT_PORT_FILE" ]] && strict_answers "$(<"$STRICT_PORT_FILE")" >/dev/null; then
      return 0
    fi
    sleep 0.05
  done
  stop_pid "$pid" is_strict
  rm -f "$STRICT_PID_FILE" "$STRICT_PORT_FILE"
  tail -n 20 "$STRICT_LOG_FILE" >&2 || true
  die "the strict layer did not start (log: $STRICT_LOG_FILE)"
}

cmd_start() {
  if running; then
    # A layer started with other behaviours is started again with these.
    if [[ -n "${RUNBOOK_AWS_STRICT:-}" && "$(cat "$STRICT_MODE_FILE" 2>/dev/null)" != "$STRICT" ]]; then
      rm -f "$STRICT_PORT_FILE"
    fi
    start_strict "$(<"$PORT_FILE")"
    cmd_url
    return 0
  fi
  resolve_tools
  local old
  if old="$(recorded_pid)"; then
    stop_pid "$old"
  fi
  rm -f "$PID_FILE" "$PORT_FILE"

  local attempt port pid deadline
  for attempt in 1 2 3; do
    port="$(free_port)"
    # An async command of a non-interactive shell ignores SIGINT: a Ctrl-C in the terminal
    # does not take moto down; stop (by pid) does.
    MOTO_IAM_LOAD_MANAGED_POLICIES=true MOTO_ECS_SERVICE_RUNNING=2 \
      "$MOTO_BIN" -H 127.0.0.1 -p "$port" </dev/null >"$LOG_FILE" 2>&1 &
    pid=$!
    printf '%s\n' "$pid" >"$PID_FILE"
    printf '%s\n' "$port" >"$PORT_FILE"
    deadline=$((SECONDS + START_TIMEOUT))
    while pid_alive "$pid" && ((SECONDS < deadline)); do
      if answers "$port"; then
        start_strict "$port"
        cmd_url
        return 0
      fi
      sleep 0.05
    done
    if pid_alive "$pid"; then
      stop_pid "$pid"
      rm -f "$PID_FILE" "$PORT_FILE"
      tail -n 20 "$LOG_FILE" >&2 || true
      die "moto_server did not answer on 127.0.0.1:$port within ${START_TIMEOUT}s (log: $LOG_FILE)"
    fi
    rm -f "$PID_FILE" "$PORT_FILE"
    # The port may have been taken between picking and binding: try another one.
    if ! grep -q 'Address already in use' "$LOG_FILE" 2>/dev/null; then
      break
    fi
    log "port $port was taken (attempt $attempt), retrying"
  done
  tail -n 20 "$LOG_FILE" >&2 || true
  die "moto_server exited during startup (log: $LOG_FILE)"
}

cmd_stop() {
  local pid
  if pid="$(strict_pid)"; then
    stop_pid "$pid" is_strict
  fi
  rm -f "$STRICT_PID_FILE" "$STRICT_PORT_FILE" "$STRICT_MODE_FILE"
  if pid="$(recorded_pid)"; then
    stop_pid "$pid"
  fi
  rm -f "$PID_FILE" "$PORT_FILE"
}

cmd_plain_url() {
  running || die "moto_server is not running (scripts/local-aws.sh start)"
  printf 'http://127.0.0.1:%s\n' "$(<"$PORT_FILE")"
}

cmd_strict_url() {
  running || die "moto_server is not running (scripts/local-aws.sh start)"
  strict_running || die "the strict layer is not running (scripts/local-aws.sh start)"
  printf 'http://127.0.0.1:%s\n' "$(<"$STRICT_PORT_FILE")"
}

cmd_url() {
  if [[ "$STRICT" == 0 ]]; then
    cmd_plain_url
  else
    cmd_strict_url
  fi
}

cmd_env() {
  running || die "moto_server is not running (scripts/local-aws.sh start)"
  local aws_bin var url strict_url
  aws_bin="$(<"$STATE/aws.path")"
  url="$(cmd_url)"
  strict_url="$(cmd_strict_url)"
  printf 'export RUNBOOK_TEST_ENDPOINT=%q\n' "$url"
  printf 'export RUNBOOK_TEST_STRICT_ENDPOINT=%q\n' "$strict_url"
  printf 'export RUNBOOK_REAL_AWS=%q\n' "$aws_bin"
  printf 'export RUNBOOK_TEST_DIR=%q\n' "$STATE"
  printf 'export AWS_ACCESS_KEY_ID=testing\n'
  printf 'export AWS_SECRET_ACCESS_KEY=testing\n'
  printf 'export AWS_CONFIG_FILE=/dev/null\n'
  printf 'export AWS_SHARED_CREDENTIALS_FILE=/dev/null\n'
  printf 'export AWS_EC2_METADATA_DISABLED=true\n'
  printf 'export AWS_PAGER=\n'
  printf 'export NO_PROXY=127.0.0.1,localhost,::1\n'
  printf 'export no_proxy=127.0.0.1,localhost,::1\n'
  printf 'unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_ENDPOINT_URL\n'
  printf 'unset HTTP_PROXY HTTPS_PROXY ALL_PROXY http_proxy https_proxy all_proxy\n'
  # Service-specific overrides (AWS_ENDPOINT_URL_EC2, ...) present in this environment.
  while IFS= read -r var; do
    printf 'unset %s\n' "$var"
  done < <(compgen -e | grep '^AWS_ENDPOINT_URL_' || true)
}

cmd_tools() {
  resolve_tools
  printf 'aws=%s\nmoto_server=%s\n' "$AWS_BIN" "$MOTO_BIN"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  url) cmd_url ;;
  strict-url) cmd_strict_url ;;
  plain-url) cmd_plain_url ;;
  env) cmd_env ;;
  tools) cmd_tools ;;
  *)
    printf 'usage: %s start|stop|url|strict-url|plain-url|env|tools\n' "$0" >&2
    exit 64
    ;;
esac
