#!/usr/bin/env bash
# Runs the benchmarks (scripts/bench.py) and rewrites docs/performance.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec python3 scripts/bench.py "$@"
