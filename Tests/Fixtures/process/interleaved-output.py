#!/usr/bin/env python3
"""Writes SIZE bytes (default 1 MiB) to stdout and SIZE bytes to stderr, alternating 8 KiB chunks.

stdout carries bytes(range(256)) repeated, stderr the same pattern reversed, so the test can
check every byte. A runner that reads one pipe to EOF before the other deadlocks after 64 KiB.
"""
import os
import sys

size = int(sys.argv[1]) if len(sys.argv) > 1 else 1 << 20
pattern = bytes(range(256)) * (size // 256 + 1)
out = pattern[:size]
err = pattern[::-1][:size]
chunk = 8192
for offset in range(0, size, chunk):
    for fd, data in ((1, out), (2, err)):
        view = memoryview(data)[offset:offset + chunk]
        while view:
            written = os.write(fd, view)
            view = view[written:]
