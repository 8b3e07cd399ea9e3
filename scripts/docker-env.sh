#!/usr/bin/env bash
# A real Docker engine and an image registry for tests, both on this machine only.
#
#   scripts/docker-env.sh start    install (apt-get) if needed, start dockerd + registry (idempotent)
#   scripts/docker-env.sh stop     stop both by recorded pid
#   scripts/docker-env.sh env      print shell lines for: eval "$(scripts/docker-env.sh env)"
#   scripts/docker-env.sh status   say what is running
#
# dockerd runs with its own data root, exec root, pid file and unix socket, no bridge and no
# iptables changes. The registry (Debian's docker-registry, distribution 2.8) listens on
# 127.0.0.1:<free port> over plain HTTP with htpasswd auth: user AWS, password
# 123456789012-auth-token, which is what moto's `aws ecr get-login-password` prints, so
# `aws ecr get-login-password | docker login --username AWS --password-stdin 127.0.0.1:PORT`
# works. Docker allows plain HTTP to 127.0.0.0/8 registries without configuration.
#
# RUNBOOK_REGISTRY_PORT=N makes the registry listen on 127.0.0.1:N (default: a free port).
#
# State: ${RUNBOOK_TEST_DIR:-<repo>/.test-env}/docker (data/, dockerd.pid, dockerd.log,
# registry.pid, registry.port, registry.log, registry/, config/ = DOCKER_CONFIG).
# Unix socket paths are limited to 108 bytes: when the state path is long, the socket and the
# exec root (containerd's sockets) go to a short directory in /tmp named after it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASE="${RUNBOOK_TEST_DIR:-$ROOT/.test-env}"
STATE="$BASE/docker"
REGISTRY_USER=AWS
REGISTRY_PASSWORD=123456789012-auth-token # moto's ecr get-login-password
START_TIMEOUT="${RUNBOOK_DOCKER_START_TIMEOUT:-60}"
export PATH="$PATH:/usr/sbin:/sbin" # dockerd looks up containerd and runc on PATH

die() {
  printf 'docker-env: %s\n' "$*" >&2
  exit 1
}

log() {
  printf 'docker-env: %s\n' "$*" >&2
}

# Socket and exec root: inside the state dir when short enough, else under /tmp.
short_dir() {
  local probe="$STATE/exec/containerd/containerd.sock.ttrpc"
  if ((${#probe} <= 100)); then
    RUN_DIR="$STATE"
  else
    local sum
    sum="$(printf '%s' "$STATE" | cksum)"
    RUN_DIR="${TMPDIR:-/tmp}/rbd-${sum%% *}"
  fi
  SOCK="$RUN_DIR/docker.sock"
  EXEC_ROOT="$RUN_DIR/exec"
}
short_dir

DOCKERD_PID="$STATE/dockerd.pid"
REGISTRY_PID="$STATE/registry.pid"
REGISTRY_PORT="$STATE/registry.port"

ensure_packages() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
  command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils)
  ((${#missing[@]})) || return 0
  [[ "$(id -u)" == 0 ]] || die "missing ${missing[*]}: run as root or install them"
  log "installing ${missing[*]} with apt-get"
  # Keep the packages' init scripts from starting a system dockerd or a registry on 0.0.0.0:5000.
  local policy=/usr/sbin/policy-rc.d made_policy=0
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    made_policy=1
  fi
  local rc=0
  {
    DEBIAN_FRONTEND=noninteractive apt-get update -q &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  } >&2 || rc=$?
  if ((made_policy)); then
    rm -f "$policy"
  fi
  ((rc == 0)) || die "apt-get install ${missing[*]} failed"
}

docker_client() {
  # The tool uses whatever `docker` is on PATH (here possibly a newer client in /usr/local/bin);
  # it talks to this engine through DOCKER_HOST. API versions are negotiated.
  command -v docker 2>/dev/null || printf '/usr/bin/docker\n'
}

free_port() {
  python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

read_pid() {
  local pid
  [[ -f "$1" ]] || return 1
  pid="$(<"$1")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  printf '%s\n' "$pid"
}

pid_alive() {
  kill -0 "$1" 2>/dev/null
}

# A recorded pid may have been reused by another process since: only touch it if it runs $2.
pid_runs() {
  local args
  args="$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null)" || return 1
  [[ "$args" == *"$2"* ]]
}

stop_pid() {
  local pid="$1" what="$2" grace="$3" i
  pid_alive "$pid" && pid_runs "$pid" "$what" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    pid_alive "$pid" || return 0
    sleep 0.1
  done
  log "pid $pid ignored TERM for ${grace}s: KILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 30; i++)); do
    pid_alive "$pid" || return 0
    sleep 0.1
  done
  log "pid $pid did not exit"
}

engine_answers() {
  DOCKER_HOST="unix://$SOCK" DOCKER_CONFIG="$STATE/config" \
    timeout 10 "$(docker_client)" version --format '{{.Server.Version}}' >/dev/null 2>&1
}

registry_answers() {
  local code
  code="$(curl --noproxy '*' -s -o /dev/null -w '%{http_code}' --max-time 2 \
    "http://127.0.0.1:$1/v2/" 2>/dev/null)" || return 1
  [[ "$code" == 401 || "$code" == 200 ]]
}

engine_running() {
  local pid
  pid="$(read_pid "$DOCKERD_PID")" && pid_runs "$pid" dockerd && engine_answers
}

registry_running() {
  local pid
  pid="$(read_pid "$REGISTRY_PID")" && pid_runs "$pid" docker-registry && [[ -f "$REGISTRY_PORT" ]] &&
    registry_answers "$(<"$REGISTRY_PORT")"
}

start_engine() {
  if engine_running; then
    return 0
  fi
  stop_engine
  mkdir -p "$STATE/data" "$STATE/config" "$EXEC_ROOT"
  chmod 700 "$RUN_DIR"
  # An empty config file: never merge the machine's /etc/docker/daemon.json.
  printf '{}\n' >"$STATE/daemon.json"
  local dockerd pid deadline
  dockerd="$(command -v dockerd)"
  "$dockerd" \
    --config-file "$STATE/daemon.json" \
    --data-root "$STATE/data" \
    --exec-root "$EXEC_ROOT" \
    --pidfile "$DOCKERD_PID" \
    -H "unix://$SOCK" \
    --bridge=none --iptables=false --ip-forward=false --ip-masq=false \
    </dev/null >"$STATE/dockerd.log" 2>&1 &
  pid=$!
  # dockerd writes the pid file itself a little later; write it now so stop works at once.
  printf '%s\n' "$pid" >"$DOCKERD_PID.start"
  deadline=$((SECONDS + START_TIMEOUT))
  while pid_alive "$pid" && ((SECONDS < deadline)); do
    if engine_answers; then
      rm -f "$DOCKERD_PID.start"
      return 0
    fi
    sleep 0.2
  done
  tail -n 30 "$STATE/dockerd.log" >&2 || true
  stop_engine
  die "dockerd did not answer on unix://$SOCK within ${START_TIMEOUT}s (log: $STATE/dockerd.log)"
}

stop_engine() {
  local pid file
  for file in "$DOCKERD_PID" "$DOCKERD_PID.start"; do
    if pid="$(read_pid "$file")"; then
      stop_pid "$pid" dockerd 20
    fi
    rm -f "$file"
  done
  # dockerd stops the containerd it started; if dockerd had to be killed, that one may remain.
  if pid="$(read_pid "$EXEC_ROOT/containerd/containerd.pid")"; then
    stop_pid "$pid" containerd 10
  fi
  rm -f "$SOCK"
}

start_registry() {
  if registry_running && [[ -z "${RUNBOOK_REGISTRY_PORT:-}" || "$(<"$REGISTRY_PORT")" == "$RUNBOOK_REGISTRY_PORT" ]]; then
    return 0
  fi
  stop_registry
  local dir="$STATE/registry" port pid deadline
  mkdir -p "$dir/data"
  # bcrypt is the only hash the registry accepts; the password goes in on stdin, not argv.
  printf '%s\n' "$REGISTRY_PASSWORD" | htpasswd -iBc "$dir/htpasswd" "$REGISTRY_USER" 2>/dev/null
  port="${RUNBOOK_REGISTRY_PORT:-$(free_port)}"
  cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  secret: $(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
auth:
  htpasswd:
    realm: runbook-test-registry
    path: $dir/htpasswd
EOF
  docker-registry serve "$dir/config.yml" </dev/null >"$STATE/registry.log" 2>&1 &
  pid=$!
  printf '%s\n' "$pid" >"$REGISTRY_PID"
  printf '%s\n' "$port" >"$REGISTRY_PORT"
  deadline=$((SECONDS + 30))
  while pid_alive "$pid" && ((SECONDS < deadline)); do
    if registry_answers "$port"; then
      return 0
    fi
    sleep 0.1
  done
  tail -n 30 "$STATE/registry.log" >&2 || true
  stop_registry
  die "registry did not answer on 127.0.0.1:$port (log: $STATE/registry.log)"
}

stop_registry() {
  local pid
  if pid="$(read_pid "$REGISTRY_PID")"; then
    stop_pid "$pid" docker-registry 5
  fi
  rm -f "$REGISTRY_PID" "$REGISTRY_PORT"
}

cmd_start() {
  ensure_packages
  command -v python3 >/dev/null 2>&1 || die "python3 is needed"
  command -v curl >/dev/null 2>&1 || die "curl is needed"
  mkdir -p "$STATE"
  start_engine
  start_registry
  printf 'DOCKER_HOST=unix://%s\nRUNBOOK_TEST_REGISTRY=127.0.0.1:%s\n' "$SOCK" "$(<"$REGISTRY_PORT")"
}

cmd_stop() {
  stop_registry
  stop_engine
}

cmd_env() {
  engine_running || die "dockerd is not running (scripts/docker-env.sh start)"
  registry_running || die "the registry is not running (scripts/docker-env.sh start)"
  printf 'export DOCKER_HOST=%q\n' "unix://$SOCK"
  printf 'export RUNBOOK_TEST_REGISTRY=%q\n' "127.0.0.1:$(<"$REGISTRY_PORT")"
  # Logins (docker login) are stored here, not in ~/.docker.
  printf 'export DOCKER_CONFIG=%q\n' "$STATE/config"
  # Without buildx, the client 28 in /usr/local/bin fails when DOCKER_BUILDKIT=1; unset, it
  # uses the legacy builder (with a deprecation notice on stderr).
  printf 'unset DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH DOCKER_BUILDKIT\n'
}

cmd_status() {
  if engine_running; then
    printf 'dockerd: running, pid %s, unix://%s\n' "$(<"$DOCKERD_PID")" "$SOCK"
  else
    printf 'dockerd: not running\n'
  fi
  if registry_running; then
    printf 'registry: running, pid %s, 127.0.0.1:%s\n' "$(<"$REGISTRY_PID")" "$(<"$REGISTRY_PORT")"
  else
    printf 'registry: not running\n'
  fi
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  env) cmd_env ;;
  status) cmd_status ;;
  *)
    printf 'usage: %s start|stop|env|status\n' "$0" >&2
    exit 64
    ;;
esac
