#!/bin/sh
# Usage: trap-sigint.sh MARKER
# On SIGINT writes "interrupted" to MARKER and exits 130. Creates MARKER.ready once the trap is set.
trap 'echo interrupted > "$1"; exit 130' INT
: > "$1.ready"
while :; do sleep 0.05; done
