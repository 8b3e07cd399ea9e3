#!/usr/bin/env python3
"""Checks the layers: the targets' dependencies in Package.swift, and every import in Sources/.

make check-layers (and so make test) runs it. It fails (exit 1, one line per problem) when:
- a target depends on a target its layer may not see (the engine on the AWS or runbook layer,
  anything below the CLI on the CLI, ...), directly or through another target;
- a source file imports a module of this package that its target does not declare (SwiftPM on
  Linux lets a file import any module already built, so the compiler alone does not catch it).

The allowed arrows (docs/architecture.md draws them):
  RunbookProcess  -> (nothing)
  RunbookAWS      -> RunbookProcess
  RunbookState    -> RunbookProcess, RunbookAWS
  RunbookEngine   -> RunbookProcess, RunbookState          (no AWS, no runbook)
  UniSyncRunbook  -> RunbookProcess, RunbookAWS, RunbookState, RunbookEngine
  RunbookCLI      -> all of the above
  runbook         -> RunbookCLI, RunbookProcess
"""
import os, re, sys

ALLOWED = {
    "RunbookProcess": set(),
    "RunbookAWS": {"RunbookProcess"},
    "RunbookState": {"RunbookProcess", "RunbookAWS"},
    "RunbookEngine": {"RunbookProcess", "RunbookState"},
    "UniSyncRunbook": {"RunbookProcess", "RunbookAWS", "RunbookState", "RunbookEngine"},
    "RunbookCLI": {"RunbookProcess", "RunbookAWS", "RunbookState", "RunbookEngine", "UniSyncRunbook"},
    "runbook": {"RunbookCLI", "RunbookProcess"},
    "runbook-health-probe": set(),
}
# What the engine must never reach, even through another target. (It reaches RunbookAWS through
# RunbookState, whose S3 store drives the aws CLI: the engine itself may not import it.)
FORBIDDEN_BELOW = {"RunbookEngine": {"UniSyncRunbook", "RunbookCLI"}}


def load_package(path):
    """The targets of a Package.swift: name, kind, dependencies (by name) and path.

    Read from the manifest's text, not from `swift package dump-package`, which waits for the
    build folder's lock and so cannot run inside `swift test`.
    """
    with open(path, encoding="utf-8") as f:
        text = f.read()
    text = re.sub(r"//[^\n]*", "", text)
    targets = []
    for match in re.finditer(r"\.(target|executableTarget|testTarget)\(", text):
        depth, end = 1, match.end()
        while depth and end < len(text):
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            end += 1
        body = text[match.end():end - 1]
        name = re.search(r'name:\s*"([^"]+)"', body)
        deps = re.search(r"dependencies:\s*\[([^\]]*)\]", body)
        folder = re.search(r'path:\s*"([^"]+)"', body)
        targets.append({
            "name": name.group(1),
            "type": {"testTarget": "test", "executableTarget": "executable"}.get(match.group(1), "regular"),
            "dependencies": re.findall(r'"([^"]+)"', deps.group(1)) if deps else [],
            "path": folder.group(1) if folder else None,
        })
    return targets


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    manifest = sys.argv[2] if len(sys.argv) > 2 else os.path.join(root, "Package.swift")
    targets = {t["name"]: t for t in load_package(manifest) if t["type"] != "test"}
    deps = {name: set(t["dependencies"]) for name, t in targets.items()}
    problems = []
    for name, declared in sorted(deps.items()):
        if name not in ALLOWED:
            problems.append(f"Package.swift: target {name} has no layer (add it to scripts/check-layers.py and docs/architecture.md)")
            continue
        for dep in sorted(declared - ALLOWED[name]):
            problems.append(f"Package.swift: {name} depends on {dep}, which its layer may not see")
    for name, forbidden in FORBIDDEN_BELOW.items():
        seen, stack = set(), list(deps.get(name, ()))
        while stack:
            dep = stack.pop()
            if dep in seen:
                continue
            seen.add(dep)
            stack.extend(deps.get(dep, ()))
        for dep in sorted(seen & forbidden):
            problems.append(f"Package.swift: {name} reaches {dep} (the engine knows no runbook)")
    modules = set(targets)
    for name, target in targets.items():
        path = target.get("path") or os.path.join("Sources", name)
        for folder, _, files in os.walk(os.path.join(root, path)):
            for file in files:
                if not file.endswith(".swift"):
                    continue
                full = os.path.join(folder, file)
                with open(full, encoding="utf-8") as f:
                    for number, line in enumerate(f, 1):
                        m = re.match(r"\s*(?:@testable\s+|@_\w+\s+)?import\s+(?:\w+\s+)?(\w+)", line)
                        if m and m.group(1) in modules and m.group(1) not in deps[name]:
                            problems.append(f"{os.path.relpath(full, root)}:{number}: imports {m.group(1)}, which {name} does not depend on")
    for problem in problems:
        print(problem)
    if problems:
        print(f"check-layers: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"check-layers: {len(targets)} targets, every arrow allowed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
