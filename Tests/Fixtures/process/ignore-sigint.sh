#!/bin/sh
# Usage: ignore-sigint.sh READY
# Ignores SIGINT (only SIGKILL stops it). Creates READY once SIGINT is ignored.
trap '' INT
: > "$1"
exec sleep 30
