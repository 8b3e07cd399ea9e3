#!/usr/bin/env python3
"""Prints "early", starts a grandchild that prints "late" 0.3 s later, and exits at once.

The grandchild does not inherit Foundation's termination socket (close_fds), so the child's exit
is reported before its stdout reaches EOF.
"""
import subprocess
import sys

print("early", flush=True)
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3); print('late')"])
