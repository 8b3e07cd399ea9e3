#!/usr/bin/env python3
"""Prints the named environment variables as a JSON object (null when unset)."""
import json
import os
import sys

print(json.dumps({name: os.environ.get(name) for name in sys.argv[1:]}))
