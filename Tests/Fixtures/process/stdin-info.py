#!/usr/bin/env python3
"""Reads stdin to EOF and prints {"bytes": n, "fd0": target of /proc/self/fd/0} as JSON."""
import json
import os
import sys

data = sys.stdin.buffer.read()
print(json.dumps({"bytes": len(data), "fd0": os.readlink("/proc/self/fd/0")}))
