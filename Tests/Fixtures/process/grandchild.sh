#!/bin/sh
# Usage: grandchild.sh READY
# Starts a background `sleep` (a non-interactive shell runs it with SIGINT ignored) that holds
# stdout and stderr open, prints its pid, creates READY, then waits. SIGINT kills the shell but
# not the sleep: only a SIGKILL to the whole process group releases the pipes.
sleep 30 &
echo "$!"
: > "$1"
wait
