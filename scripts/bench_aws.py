"""The report of `make bench TIMING=aws` (scripts/bench.py --timing aws): docs/performance-aws.md."""
import os
import re
import statistics
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPORT = os.path.join(ROOT, "docs", "performance-aws.md")

# Where the strict layer's real durations come from (docs/reliability.md, "Strict layer").
SOURCES = {
    "nat-pending": "NAT gateway `pending`: 1–2 min (issue 16; the NatGateway API page gives none)",
    "rds-creating": "DB instance `creating`: 10–15 min Multi-AZ with `backing-up` (issue 16)",
    "rds-backing-up": "DB instance `backing-up` after `creating`",
    "alb-provisioning": "load balancer `provisioning`: a few minutes (issue 16)",
    "lambda-pending": "function `Pending`: up to a minute for a VPC function (estimate)",
    "ecs-service-starting": "a new service's tasks placed, pulled, started, passing health checks: "
                            "a few minutes (issue 19; estimate of its parts, docs/reliability.md)",
}


def seconds_of(text):
    """`0.4s`, `12s`, `3m05s`, `1h02m` (the tool's durations) -> seconds."""
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:([\d.]+)s)?", text)
    if not match or not any(match.groups()):
        return None
    hours, minutes, secs = (float(group) if group else 0.0 for group in match.groups())
    return hours * 3600 + minutes * 60 + secs


def links(line):
    """`critical path: a 2.0s -> b 3m05s` -> [(a, 2.0), (b, 185.0)]."""
    if not line:
        return []
    chain = line.split(": ", 1)[1]
    result = []
    for link in chain.split(" -> "):
        action, _, duration = link.rpartition(" ")
        result.append((action, seconds_of(duration) or 0.0))
    return result


def write_report(f, failures, scale, machine):
    rounds = [r for r in f.get("rounds", []) if r.get("hand") and r.get("tool")]
    lines = [
        "# Performance on AWS timings",
        "",
        "Measured by `make bench TIMING=aws` (scripts/bench.py --timing aws), which regenerates this file.",
        "The emulators answer with AWS's readiness times, each its real duration times one factor",
        f"(**{scale:.4f}**, 1/{1 / scale:.0f}), through the strict layer without its test bounds; the tool's",
        "pauses between polls (`operations.pausePercent`) and the by-hand script's DB wait scale with them.",
        "Everything else (each aws CLI call's own second of CPU, the image builds) is not scaled: on",
        "AWS a call takes a fraction of that, so these figures overstate the calls' share.",
        "",
        f"- machine: {machine}",
        f"- load average at the end: {f.get('load_end', '?')}",
        f"- steps: {', '.join(f.get('steps', []))} (guide sections {f.get('sections', '?')})",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
    ]
    if failures:
        lines += ["**This run did not finish cleanly:**", "", "```", *"\n\n".join(failures).splitlines(), "```", ""]
    config = next((r.get("strict_config") for r in f.get("rounds", []) if r.get("strict_config")), None)
    if config:
        lines += ["## The waits", "", "| wait | real AWS | scaled here | source |", "| --- | --- | --- | --- |"]
        for name, real in sorted(config.get("real_seconds", {}).items()):
            if name in SOURCES and name in config.get("behaviours", []) or name == "rds-backing-up":
                lines.append(f"| `{name}` | {real:.0f} s | {config['delays'][name]:.1f} s | {SOURCES.get(name, '')} |")
        lines.append("")
    lines += [
        "## The guide by hand and the tool", "",
        "By hand: the guide's commands one after the other, waiting only where the guide waits (the",
        "DB instance, 3.3) and where AWS leaves no choice: 9.1's health check answers only once the",
        "load balancer is active and the services' tasks run, so the operator tries again until then.",
        "The tool: `runbook run --yes ... verify`, which also waits where AWS leaves no choice (the NAT",
        "gateway before its route, the load balancer, the function), schedules actions as soon as what",
        "they use exists, waits in verify for the deployment to settle, and prints the chain that set",
        "its wall time. Both end with the deployment verified (guide 9).",
        "",
        "| round | by hand | tool | tool / by hand | critical path (its actions' own time) | tool / critical path |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    ratios = []
    floors = []
    for r in rounds:
        hand, tool = r["hand"].seconds, r["tool"].seconds
        chain = links(r.get("critical_path"))
        own = sum(seconds for _, seconds in chain)
        ratio = tool / hand if hand else float("nan")
        ratios.append(ratio)
        if own and hand:
            floors.append(own / hand)
        lines.append(
            f"| {r['number']} | {hand:.1f} s | {tool:.1f} s | **{ratio:.2f}** | {own:.1f} s | "
            + (f"{tool / own:.2f}" if own else "–") + " |")
    lines.append("")
    if ratios:
        lines += [f"Median tool / by hand: **{statistics.median(ratios):.2f}** (goal 0.5 or less).", ""]
    if floors:
        lines += [
            f"The floor: no schedule of these actions ends before the critical path's own time, and",
            f"that time over the by-hand time is **{statistics.median(floors):.2f}** (median). Below it, only",
            "faster actions on the path help (the waits are AWS's; each aws call's start-up is the",
            "CLI's), not a better order.", ""]
    for r in rounds:
        if r.get("critical_path"):
            lines += [f"Round {r['number']}, the tool's own line:", "", "```", r["critical_path"], "```", ""]
    lines += [
        "The critical path is the tool's: from the action that finished last back through, each",
        "time, what it waited for that finished last (`RunbookEngine/CriticalPath.swift`). Its",
        "actions' own time is the sum of their durations; the rest of the wall time is spent",
        "before the first of them (the run's checks) and between them (waiting for a free",
        "`--jobs` slot, or for the process to notice).",
        "",
    ]
    with open(REPORT, "w") as handle:
        handle.write("\n".join(lines))
    print(f"bench: wrote {os.path.relpath(REPORT, ROOT)}")
