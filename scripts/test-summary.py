#!/usr/bin/env python3
"""Prints the closing line of a test run from swift test's xUnit file: 'N passed, N failed'."""
import sys
import xml.etree.ElementTree as ET

try:
    root = ET.parse(sys.argv[1]).getroot()
except (OSError, ET.ParseError, IndexError) as error:
    print(f"test summary: no readable xUnit file ({error})")
    sys.exit(0)
cases = root.findall(".//testcase")
failed = [case for case in cases if case.find("failure") is not None or case.find("error") is not None]
skipped = [case for case in cases if case.find("skipped") is not None]
for case in failed:
    print(f"failed: {case.get('classname')}.{case.get('name')}")
line = f"{len(cases) - len(failed) - len(skipped)} passed, {len(failed)} failed"
if skipped:
    line += f", {len(skipped)} skipped"
print(line)
