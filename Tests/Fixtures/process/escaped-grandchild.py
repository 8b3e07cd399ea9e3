#!/usr/bin/env python3
"""Starts `sleep 30` in a new session (outside our process group, like a browser started by
`aws sso login`) that keeps stdout and stderr open, prints its pid and exits at once."""
import subprocess

child = subprocess.Popen(["sleep", "30"], start_new_session=True)
print(child.pid, flush=True)
