#!/usr/bin/env python3
"""Usage: grandchild.py READY

Starts `sleep 30` with SIGINT ignored and stdout/stderr inherited, prints its pid, creates READY
and waits. On SIGINT this child dies at once and, as the grandchild does not inherit Foundation's
termination socket (close_fds), its exit is reported at once: the process group outlives its
leader, and only a SIGKILL to the group releases the pipes.
"""
import signal
import subprocess
import sys

grandchild = subprocess.Popen(
    ["sleep", "30"], preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
print(grandchild.pid, flush=True)
open(sys.argv[1], "w").close()
signal.signal(signal.SIGINT, signal.SIG_DFL)
grandchild.wait()
