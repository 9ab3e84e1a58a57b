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
events carry exactly one). Timestamps are not parsed (a filter does not need them), so
python does less work per line than Kestrel, which reads `@timestamp` to order events.
"""

import argparse
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


def new_engine(query):
    engine = PythonEngine({"flatten": True})
    engine.add_query(query)
    counter = [0]

    def hook(_event):
        counter[0] += 1

    engine.add_output_hook(hook)
    return engine, counter


def end_to_end(raw, query):
    engine, counter = new_engine(query)
    loads = json.loads
    stream = engine.stream_event
    start = time.perf_counter()
    for line in io.BytesIO(raw):
        if line.strip():
            data = loads(line)
            stream(Event(event_type(data), 0, data))
    engine.finalize()
    return time.perf_counter() - start, counter[0]


def engine_only(events, query):
    engine, counter = new_engine(query)
    start = time.perf_counter()
    engine.stream_events(events)
    return time.perf_counter() - start, counter[0]


def measure(label, reps, run):
    run()  # warm-up
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
    parser.add_argument("--query", required=True, help="EQL query (python eql's endgame dialect)")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()

    with open(args.events, "rb") as handle:
        raw = handle.read()
    query = eql.parse_query(args.query)
    events = [Event(event_type(data), 0, data) for data in (json.loads(line) for line in io.BytesIO(raw) if line.strip())]
    report = {
        "eql_version": eql.__version__,
        "python": sys.version.split()[0],
        "query": args.query,
        "events": len(events),
        "bytes": len(raw),
        "end_to_end": measure("end to end (json.loads + Event + stream_event)", args.reps, lambda: end_to_end(raw, query)),
        "engine_only": measure("engine only (stream_events over pre-built Events)", args.reps, lambda: engine_only(events, query)),
    }
    for key in ("end_to_end", "engine_only"):
        report[key]["events_per_s"] = len(events) / report[key]["seconds"]
    print(json.dumps(report))


if __name__ == "__main__":
    main()
