#!/usr/bin/env python3
"""Benchmarks of the runbook tool; writes docs/performance.md.

Measures, against a moto_server of its own (scripts/local-aws.sh with a private state dir):
  - `plan` of every step: median wall time over many runs, and the number of child processes
    (aws/docker calls seen by a logging shim: the goal is zero);
  - a full `run --yes` of every step on a fresh emulator: wall time and aws calls;
  - a rerun of the finished deployment: aws calls made (goal zero) and wall time;
  - the tool's peak resident memory during the full run (from wait4's ru_maxrss).
"""
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, ".build", "release", "runbook")
SHIM_DIR = os.path.join(ROOT, "Tests", "Fixtures", "bin")


def sh(args, env=None, check=True):
    return subprocess.run(args, env=env, check=check, capture_output=True, text=True)


def run_tool(args, env, log):
    """Runs the tool; returns (seconds, exit status, aws calls, peak RSS in KiB)."""
    if os.path.exists(log):
        os.remove(log)
    env = dict(env, RUNBOOK_AWS_LOG=log)
    started = time.perf_counter()
    child = subprocess.Popen([BIN] + args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    calls = 0
    if os.path.exists(log):
        with open(log) as handle:
            calls = sum(1 for line in handle if line.strip())
    return seconds, os.waitstatus_to_exitcode(status), calls, usage.ru_maxrss


def main():
    sh(["swift", "build", "-c", "release"])
    work = tempfile.mkdtemp(prefix="runbook-bench-")
    env_dir = os.path.join(work, "env")
    base_env = dict(os.environ, RUNBOOK_TEST_DIR=env_dir)
    sh([os.path.join(ROOT, "scripts", "local-aws.sh"), "start"], env=base_env)
    try:
        exports = sh([os.path.join(ROOT, "scripts", "local-aws.sh"), "env"], env=base_env).stdout
        env = dict(base_env)
        for line in exports.splitlines():
            if line.startswith("export "):
                name, _, value = line[len("export "):].partition("=")
                env[name] = value.strip("'\"")
            elif line.startswith("unset "):
                for name in line.split()[1:]:
                    env.pop(name, None)
        env["PATH"] = SHIM_DIR + ":" + env["PATH"]
        env["NO_COLOR"] = "1"
        endpoint = env["RUNBOOK_TEST_ENDPOINT"]
        config = os.path.join(ROOT, "runbooks", "local.json")
        state = os.path.join(work, "state")
        common = ["--config", config, "--state-dir", state, "--endpoint-url", endpoint]
        log = os.path.join(work, "aws.log")

        plan_times, plan_calls = [], 0
        for _ in range(30):
            seconds, status, calls, _ = run_tool(common + ["plan"], env, log)
            assert status == 0, "plan failed"
            plan_times.append(seconds)
            plan_calls += calls
        full_seconds, full_status, full_calls, full_rss = run_tool(common + ["run", "--yes"], env, log)
        assert full_status == 0, "full run failed"
        rerun_seconds, rerun_status, rerun_calls, _ = run_tool(common + ["run", "--yes"], env, log)
        assert rerun_status == 0, "rerun failed"
        steps = json.loads(sh([BIN] + common + ["status", "--json"], env=env).stdout)["steps"]
    finally:
        sh([os.path.join(ROOT, "scripts", "local-aws.sh"), "stop"], env=base_env, check=False)
        shutil.rmtree(work, ignore_errors=True)

    aws_version = sh(["aws", "--version"], env=env, check=False)
    lines = [
        "# Performance",
        "",
        "Measured by `make bench` (scripts/bench.py), which regenerates this file. Release build,",
        "local emulator (moto_server) on 127.0.0.1, real aws CLI.",
        "",
        f"- machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        f"- aws CLI: {(aws_version.stdout or aws_version.stderr).strip()}",
        f"- steps measured: {', '.join(step['id'] for step in steps)}",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        "| measurement | result | goal |",
        "| --- | --- | --- |",
        f"| `plan` of every step, median wall time (30 runs) | {statistics.median(plan_times) * 1000:.1f} ms "
        f"(min {min(plan_times) * 1000:.1f}, max {max(plan_times) * 1000:.1f}) | under 50 ms |",
        f"| `plan`: aws/docker processes started (30 runs) | {plan_calls} | 0 |",
        f"| full `run --yes` on a fresh emulator: wall time | {full_seconds:.1f} s | |",
        f"| full `run --yes`: aws calls | {full_calls} | |",
        f"| full `run --yes`: peak resident memory of the tool | {full_rss / 1024:.1f} MiB | |",
        f"| rerun of the finished deployment: aws calls | {rerun_calls} | 0 |",
        f"| rerun of the finished deployment: wall time | {rerun_seconds * 1000:.0f} ms | |",
        "",
        "Every aws CLI v1 call costs about 0.9 s of CPU (Python start-up and botocore loading), so the",
        "wall time of a run is dominated by the number of calls and by how many run at once (`--jobs`).",
        "",
    ]
    with open(os.path.join(ROOT, "docs", "performance.md"), "w") as handle:
        handle.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
