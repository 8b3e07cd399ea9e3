#!/usr/bin/env python3
"""Writes PREFIX bytes of b'P' to stdout first (default 0), then copies stdin to stdout.

With a 1 MiB prefix and 1 MiB of input, a runner that writes all of stdin before reading stdout
deadlocks: both pipes fill up.
"""
import os
import sys

prefix = int(sys.argv[1]) if len(sys.argv) > 1 else 0
view = memoryview(b"P" * prefix)
while view:
    view = view[os.write(1, view):]
while True:
    data = os.read(0, 65536)
    if not data:
        break
    view = memoryview(data)
    while view:
        view = view[os.write(1, view):]
