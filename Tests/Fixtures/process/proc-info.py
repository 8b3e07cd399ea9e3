#!/usr/bin/env python3
"""Prints pid, process group and open descriptors (number -> target) as JSON."""
import json
import os

fds = {}
for name in os.listdir("/proc/self/fd"):
    try:
        fds[name] = os.readlink(f"/proc/self/fd/{name}")
    except OSError:
        pass  # the descriptor of the listing itself, already closed
print(json.dumps({"pid": os.getpid(), "pgid": os.getpgid(0), "fds": fds}))
