#!/usr/bin/env python3
"""Prints its arguments (without the script name) as a JSON array."""
import json
import sys

print(json.dumps(sys.argv[1:]))
