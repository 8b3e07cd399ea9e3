"""`make bench SERVICES=N` (scripts/bench.py --services N): how the tool's cost grows with the
services of the configuration (issue 19, §4). Writes docs/performance-services.md.

The configuration is runbooks/local.json with its services replaced by N generated ones: the first
four are the configuration's own (api-gateway behind the load balancer, then the user, course and
schedule services); the others use the same database-service template and build contexts (in
turn), each with its own name (`extra-05-service` ...), port (8080 + its index), ECR repository,
database and database user. The ECS group's port range is widened to cover every port.

The tool runs the whole deployment once with 4 services and once with N, each on a fresh
emulator (and Docker engine), with the same timing (the emulator's, or AWS's with --timing aws),
then reruns the N-service deployment (0 aws calls expected). Reported: wall time, aws calls and
calls per service (by operation: what grows, and by how much per added service), peak memory.
"""
import json
import os
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPORT = os.path.join(ROOT, "docs", "performance-services.md")
BASE_SERVICES = 4


def generate(config_path, count):
    """The configuration at `config_path` (paths already absolute) with `count` services."""
    with open(config_path) as handle:
        config = json.load(handle)
    own = config["services"]
    if count < 1:
        raise ValueError("--services must be 1 or more")
    templates = [s for s in own if s.get("database")] or own
    services = [dict(s) for s in own[:count]]
    databases = list(config["rds"].get("databases", []))
    for index in range(len(services), count):
        model = dict(templates[index % len(templates)])
        name = f"extra-{index + 1:02d}-service"
        model.update(name=name, port=8080 + index, loadBalanced=False)
        if model.get("database"):
            model["database"] = f"extra_{index + 1:02d}_db"
            databases.append(model["database"])
        services.append(model)
    config["services"] = services
    config["rds"]["databases"] = [
        d for d in databases if any(s.get("database") == d for s in services)
    ] or databases[:1]
    ports = [s["port"] for s in services]
    ecs = config["securityGroups"]["ecs"]
    ecs["fromPort"] = min([ecs["fromPort"]] + ports)
    ecs["toPort"] = max([ecs["toPort"]] + ports)
    path = config_path.replace(".json", f"-{count}.json")
    with open(path, "w") as handle:
        json.dump(config, handle, indent=2)
    return path


def is_read(name):
    verb = name.split(" ")[1] if " " in name else name
    return verb.startswith(("describe", "get-", "list", "wait"))


def per_service(small, large, count):
    """Operations whose calls differ between the two runs: (operation, small, large, per added
    service), largest growth first."""
    operations = sorted(set(small) | set(large))
    rows = []
    for name in operations:
        a, b = small.get(name, 0), large.get(name, 0)
        if a != b:
            rows.append((name, a, b, (b - a) / (count - BASE_SERVICES)))
    rows.sort(key=lambda row: (-row[3], row[0]))
    return rows


def write_report(figures, failures, count, timing_scale, machine):
    small, large = figures.get("small"), figures.get("large")
    timing = (
        f"AWS's readiness times scaled by {timing_scale:.4f} (1/{1 / timing_scale:.0f}), as `make bench TIMING=aws`"
        if timing_scale else "the emulator's (every resource ready at once), as `make bench`")
    lines = [
        "# Performance with more services",
        "",
        f"Measured by `make bench SERVICES={count}` (scripts/bench.py --services {count}), which regenerates",
        "this file (with `TIMING=aws`, the section on AWS timings; the other section is kept).",
        "The configuration is runbooks/local.json with its services replaced by generated ones: its",
        "own four, then services of the same template and build contexts with distinct names, ports",
        "(8080 + index), repositories, databases and database users (scripts/bench_services.py). The",
        f"tool deploys every step once with {BASE_SERVICES} services and once with {count}, each on a fresh emulator,",
        "then reruns the larger deployment. The machine is shared with other developers' builds:",
        "the load average is noted with each figure.",
        "",
    ]
    section = [
        f"## {'AWS timings' if timing_scale else 'Emulator timings'}",
        "",
        f"- timing: {timing}",
        f"- machine: {machine}",
        f"- binary: {figures.get('binary', '?')}",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
    ]
    if failures:
        section += ["**This run did not finish cleanly:**", "", "```", *"\n\n".join(failures).splitlines(), "```", ""]
    if small and large:
        ratio = large.seconds / max(small.seconds, 0.001)
        per = (large.calls - small.calls) / (count - BASE_SERVICES)
        fixed = small.calls - BASE_SERVICES * per
        section += [
            f"| measurement | {BASE_SERVICES} services | {count} services | ratio |",
            "| --- | --- | --- | --- |",
            f"| wall time | {small.seconds:.1f} s | {large.seconds:.1f} s | **{ratio:.2f}** |",
            f"| load average (1, 5, 15 min) before the run | {figures['load_small']} | {figures['load_large']} | |",
            f"| aws calls | {small.calls} | {large.calls} | {large.calls / max(small.calls, 1):.2f} |",
            f"| aws calls: fixed + per service (from the two runs) | {fixed:.0f} + {per:.1f} x {BASE_SERVICES} | {fixed:.0f} + {per:.1f} x {count} | |",
            f"| docker calls | {small.docker_calls} | {large.docker_calls} | |",
            f"| CPU time with the aws and docker CLIs | {small.cpu:.1f} s | {large.cpu:.1f} s | {large.cpu / max(small.cpu, 0.001):.2f} |",
            f"| peak resident memory of the tool (VmHWM) | {small.peak_kib / 1024:.1f} MiB | {large.peak_kib / 1024:.1f} MiB | |",
            f"| exit status | {small.status} | {large.status} | |",
        ]
        rerun = figures.get("rerun")
        if rerun:
            section.append(
                f"| rerun of the {count}-service deployment: aws calls, wall time | | {rerun.calls}, {rerun.seconds:.2f} s | |")
        rows = per_service(small.operations, large.operations, count)
        section += [
            "",
            f"Each added service costs **{per:.1f}** aws calls. The operations that grow, and by how",
            "much per added service (a per-service rescan of the account would show here as a read",
            "growing with the services):",
            "",
            f"| operation | kind | {BASE_SERVICES} services | {count} services | per added service |",
            "| --- | --- | --- | --- | --- |",
        ]
        section += [f"| `{name}` | {'read' if is_read(name) else 'write'} | {a} | {b} | {growth:.2f} |"
                    for name, a, b, growth in rows]
        section.append("")
    # The other sections (the other timing's, the notes written by hand) stay as they are.
    sections = {}
    if os.path.exists(REPORT):
        with open(REPORT) as handle:
            parts = handle.read().split("\n## ")[1:]
        for part in parts:
            title = part.split("\n", 1)[0]
            sections[title] = ("## " + part).rstrip("\n").splitlines() + [""]
    sections[section[0][3:]] = section
    order = ["Emulator timings", "AWS timings"]
    titles = [t for t in order if t in sections] + [t for t in sections if t not in order]
    with open(REPORT, "w") as handle:
        body = lines + [line for title in titles for line in sections[title]]
        handle.write("\n".join(body).rstrip("\n") + "\n")


def measure(bench, work, binary, steps, images, count, timing_scale):
    """Runs the deployment with BASE_SERVICES and `count` services, each on fresh emulators, and
    the rerun of the larger one. `bench` is scripts/bench.py (its Emulator, timed, bench_config).
    Returns (figures, failures)."""
    import sys
    figures, failures = {}, []
    for key, services in (("small", BASE_SERVICES), ("large", count)):
        base = os.path.join(work, f"services-{services}")
        os.makedirs(base)
        print(f"bench: {services} services: starting an emulator"
              + (" with a Docker engine" if images else ""), file=sys.stderr)
        emulator = bench.Emulator(os.path.join(base, "env"), images, timing_scale)
        try:
            emulator.start()
            config = generate(bench.bench_config(base, emulator.registry if images else None,
                                                 timing_scale), services)
            state = os.path.join(base, "state")
            common = [binary, "--config", config, "--state-dir", state,
                      "--endpoint-url", emulator.endpoint, "run", "--yes"] + steps
            figures[f"load_{key}"] = bench.load_average()
            print(f"bench: runbook run --yes ({services} services)", file=sys.stderr)
            run = bench.timed(common, emulator.env, os.path.join(base, "aws.log"),
                              os.path.join(base, "tool.out"), sample_memory=True)
            figures[key] = run
            if run.status != 0:
                failures.append(f"runbook run --yes with {services} services exited {run.status}:\n"
                                + bench.tail(os.path.join(base, "tool.out")))
                break
            if key == "large":
                print(f"bench: rerun ({services} services)", file=sys.stderr)
                rerun = bench.timed(common, emulator.env, os.path.join(base, "aws-rerun.log"),
                                    os.path.join(base, "rerun.out"))
                figures["rerun"] = rerun
                if rerun.status != 0:
                    failures.append(f"the rerun exited {rerun.status}:\n"
                                    + bench.tail(os.path.join(base, "rerun.out")))
        finally:
            emulator.stop()
    figures["load_end"] = bench.load_average()
    return figures, failures
