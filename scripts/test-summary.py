#!/usr/bin/env python3
"""Prints the closing lines of a test run from swift test's xUnit file: the slowest classes (the
suite's time budget is spent there: 20 minutes on 2 cores) and 'N passed, N failed'."""
import collections
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
by_class = collections.Counter()
for case in cases:
    by_class[case.get("classname", "?").split(".")[-1]] += float(case.get("time") or 0)
if len(by_class) > 1:
    slowest = ", ".join(f"{name} {seconds:.0f}s" for name, seconds in by_class.most_common(6))
    print(f"test time {sum(by_class.values()):.0f}s over {len(by_class)} classes; slowest: {slowest}")
for case in failed:
    print(f"failed: {case.get('classname')}.{case.get('name')}")
line = f"{len(cases) - len(failed) - len(skipped)} passed, {len(failed)} failed"
if skipped:
    line += f", {len(skipped)} skipped"
print(line)
