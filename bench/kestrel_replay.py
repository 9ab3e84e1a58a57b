#!/usr/bin/env python3
"""Kestrel end to end as a user runs it, for `bench/compare-python.sh --sequence`
(docs/benchmarks.md): `eqlc build` of the rule, then `kestrel replay -q` of the NDJSON
file, each a process of the release binaries, timed by wall clock from the outside.

For each thread count in `--threads`, runs `--warmup` times untimed, then `--reps`
times; each run is `eqlc build --dialect endgame -q -o BUNDLE RULE` followed by `kestrel
replay -q --threads T --bundle BUNDLE --alerts FILE EVENTS`. The replay's wall time
includes everything the process does: start, reading and validating the bundle,
compiling its Wasm (`Program::load`), reading the file, and writing the alerts. The
build is timed apart. Reports the medians, and the CPU time of the replay process
(user + system, from the kernel's accounting of the child).

Matches are the alert lines (one alert per completed sequence). `--results FILE`
writes, from the first timed run of the first thread count, each alert's events as
their `event.sequence` numbers, one JSON list per line, in output order. Prints one
JSON object on stdout.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def timed_process(command):
    """Runs `command`; returns (wall seconds, CPU seconds of the child)."""
    before = os.times()
    start = time.perf_counter()
    done = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    after = os.times()
    if done.returncode != 0:
        sys.stderr.write(done.stdout.decode(errors="replace"))
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}")
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu


def count_lines(path):
    with open(path, "rb") as handle:
        return sum(1 for line in handle if line.strip())


def sequences(path):
    out = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                alert = json.loads(line)
                out.append([event.get("event", {}).get("sequence") for event in alert.get("events", [])])
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eqlc", required=True)
    parser.add_argument("--kestrel", required=True)
    parser.add_argument("--rule", required=True)
    parser.add_argument("--events", required=True)
    parser.add_argument("--work", required=True, help="a directory for the bundle and the alerts")
    parser.add_argument("--threads", default="1", help="comma-separated parsing thread counts, e.g. 1,2")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--results", help="write each alert's event.sequence numbers here")
    args = parser.parse_args()

    with open(args.events, "rb") as handle:
        lines = sum(1 for line in handle if line.strip())
    bundle = os.path.join(args.work, "sequence.kbundle")
    alerts = os.path.join(args.work, "sequence-alerts.ndjson")
    build = [args.eqlc, "build", "--dialect", "endgame", "-q", "-o", bundle, args.rule]
    report = {"events": lines, "bytes": os.path.getsize(args.events), "reps": args.reps, "build": [], "replay": {}}
    build_times = []
    recorded = not args.results
    for threads in [int(count) for count in args.threads.split(",")]:
        replay = [args.kestrel, "replay", "-q", "--threads", str(threads), "--bundle", bundle, "--alerts", alerts, args.events]
        walls, cpus, matches = [], [], None
        for rep in range(args.warmup + args.reps):
            build_wall, _ = timed_process(build)
            wall, cpu = timed_process(replay)
            if rep < args.warmup:
                continue
            build_times.append(build_wall)
            walls.append(wall)
            cpus.append(cpu)
            matches = count_lines(alerts)
            if not recorded:
                recorded = True
                with open(args.results, "w", encoding="utf-8") as handle:
                    for result in sequences(alerts):
                        handle.write(json.dumps(result) + "\n")
        median = statistics.median(walls)
        report["replay"][str(threads)] = {
            "threads": threads,
            "seconds": median,
            "best": min(walls),
            "cpu_seconds": statistics.median(cpus),
            "events_per_s": lines / median,
            "matches": matches,
        }
        print(
            f"  kestrel replay -q --threads {threads}: median {median:.3f} s over {args.reps} runs "
            f"({lines / median:,.0f} ev/s; CPU {statistics.median(cpus):.3f} s), {matches} alerts",
            file=sys.stderr,
        )
    report["build"] = {"seconds": statistics.median(build_times), "best": min(build_times)}
    print(f"  eqlc build --dialect endgame: median {report['build']['seconds']:.3f} s", file=sys.stderr)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
