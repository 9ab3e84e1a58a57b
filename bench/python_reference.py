#!/usr/bin/env python3
"""The python `eql` 1.0.1 reference for Kestrel's replay benchmarks (docs/benchmarks.md).

Runs one query through eql's streaming PythonEngine over an NDJSON file, two ways:

- end to end: read the lines, `json.loads` each, make the `Event`, stream it;
- engine only: the `Event` objects are built first (not timed), then streamed with
  `engine.stream_events` (which also calls `finalize`).

Each measurement builds a fresh engine (parsing the query is not timed), runs once to
warm up, then `--reps` times; the median is reported. Matches are counted by an output
hook that only increments a counter. Prints one JSON object on stdout.

The event type python dispatches on is the first `event.category` (Elastic Defend
events carry exactly one). For an event query, timestamps are not parsed (a filter does
not need them), so python does less work per line than Kestrel, which reads `@timestamp`
to order events. For a sequence (`maxspan` needs event times), each event's time is its
`@timestamp` in python eql's default unit, 100 ns ticks (`time_unit` 10^7 per second),
parsed in the timed region of the end-to-end run, as Kestrel parses it.

Results: an event query is run with `{"flatten": True}` and counts matched events; a
sequence with python eql's default (no flatten), whose output hook receives one result
per completed sequence, and counts sequences. `--results FILE` writes, from one more run
that is not timed, each result's events as their `event.sequence` numbers, one JSON
list per line, in output order (for comparison with Kestrel's alerts).
"""

import argparse
import calendar
import io
import json
import statistics
import sys
import time

import eql
from eql.engine import PythonEngine
from eql.events import Event


def event_type(data):
    category = data.get("event", {}).get("category")
    if isinstance(category, list):
        category = category[0] if category else None
    return category if isinstance(category, str) else "generic"


_SECONDS = {}


def ticks(data):
    """`@timestamp` (RFC 3339 in UTC, as Elastic Defend writes it) in 100 ns ticks."""
    stamp = data.get("@timestamp")
    if not isinstance(stamp, str):
        return 0
    head = stamp[:19]
    seconds = _SECONDS.get(head)
    if seconds is None:
        seconds = _SECONDS[head] = calendar.timegm(time.strptime(head, "%Y-%m-%dT%H:%M:%S"))
    fraction = stamp[20:-1] if stamp[19:20] == "." and stamp.endswith("Z") else ""
    return seconds * 10_000_000 + int((fraction + "0000000")[:7])


def no_time(_data):
    return 0


def is_sequence(query):
    return isinstance(getattr(query, "first", query), eql.ast.Sequence)


def new_engine(query, results=None):
    sequence = is_sequence(query)
    engine = PythonEngine({"flatten": not sequence})
    engine.add_query(query)
    counter = [0]

    def hook(_result):
        counter[0] += 1

    def record(result):
        counter[0] += 1
        results.append([event.data.get("event", {}).get("sequence") for event in result.events])

    engine.add_output_hook(hook if results is None else record)
    return engine, counter


def end_to_end(raw, query, results=None):
    engine, counter = new_engine(query, results)
    timestamp = ticks if is_sequence(query) else no_time
    loads = json.loads
    stream = engine.stream_event
    start = time.perf_counter()
    for line in io.BytesIO(raw):
        if line.strip():
            data = loads(line)
            stream(Event(event_type(data), timestamp(data), data))
    engine.finalize()
    return time.perf_counter() - start, counter[0]


def engine_only(events, query):
    engine, counter = new_engine(query)
    start = time.perf_counter()
    engine.stream_events(events)
    return time.perf_counter() - start, counter[0]


def measure(label, reps, run, warmup=1):
    for _ in range(warmup):
        run()
    times = []
    matches = None
    for _ in range(reps):
        seconds, count = run()
        times.append(seconds)
        matches = count
    median = statistics.median(times)
    print(f"  python {label}: median {median:.3f} s over {reps} runs, {matches} matches", file=sys.stderr)
    return {"seconds": median, "best": min(times), "matches": matches}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", required=True, help="NDJSON file")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--query", help="EQL query (python eql's endgame dialect)")
    source.add_argument("--query-file", help="a file holding the query (comments allowed)")
    parser.add_argument("--reps", type=int, default=5, help="timed runs per measurement (at least 1)")
    parser.add_argument("--warmup", type=int, default=1, help="runs before the timed ones, per measurement")
    parser.add_argument("--results", help="write each result's event.sequence numbers here (recorded by the first end-to-end run)")
    args = parser.parse_args()
    if args.reps < 1:
        parser.error("--reps must be at least 1")

    with open(args.events, "rb") as handle:
        raw = handle.read()
    text = args.query
    if args.query_file:
        with open(args.query_file, encoding="utf-8") as handle:
            text = handle.read()
    query = eql.parse_query(text)
    timestamp = ticks if is_sequence(query) else no_time
    events = [Event(event_type(data), timestamp(data), data) for data in (json.loads(line) for line in io.BytesIO(raw) if line.strip())]
    report = {
        "eql_version": eql.__version__,
        "python": sys.version.split()[0],
        "query": " ".join(line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("//")),
        "sequence": is_sequence(query),
        "events": len(events),
        "bytes": len(raw),
    }
    # The first end-to-end run records the results (one short list per result: noise
    # next to the run, and none at all without --results).
    results = []
    unrecorded = [results] if args.results else []

    def run_end_to_end():
        return end_to_end(raw, query, unrecorded.pop() if unrecorded else None)

    report["end_to_end"] = measure("end to end (json.loads + Event + stream_event)", args.reps, run_end_to_end, args.warmup)
    report["engine_only"] = measure("engine only (stream_events over pre-built Events)", args.reps, lambda: engine_only(events, query), args.warmup)
    for key in ("end_to_end", "engine_only"):
        report[key]["events_per_s"] = len(events) / report[key]["seconds"]
    if args.results:
        with open(args.results, "w", encoding="utf-8") as handle:
            for result in results:
                handle.write(json.dumps(result) + "\n")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
