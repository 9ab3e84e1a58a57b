#!/usr/bin/env bash
# Kestrel against the python `eql` 1.0.1 reference, on the same NDJSON events and the
# same query, measured in one run (docs/benchmarks.md):
#   end to end   NDJSON bytes -> matches  (python: json.loads + Event + stream_event;
#                                          kestrel: Replay, as `kestrel replay` runs)
#   engine only  pre-built events -> matches (python: stream_events over Event objects;
#                                          kestrel: Engine::run + finish over Events)
# Prints both rates, the ratios (Kestrel / python), and fails if the match counts differ.
#
# Usage: bench/compare-python.sh [--corpus]     (--corpus: also the corpus rule set)
# Environment: COUNT (events, 200000), SEED (1), REPS (5), QUERY, KESTREL_BENCH_VENV.
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=${COUNT:-200000}
SEED=${SEED:-1}
REPS=${REPS:-5}
QUERY=${QUERY:-'process where process.name == "bash"'}
VENV=${KESTREL_BENCH_VENV:-bench/.venv}
OUT="$PWD/bench/out"   # absolute: cargo bench runs the bench from kestrel-rt/
CORPUS=--no-corpus
for arg in "$@"; do
    case "$arg" in
        --corpus) CORPUS= ;;
        *) echo "usage: bench/compare-python.sh [--corpus]" >&2; exit 2 ;;
    esac
done
mkdir -p "$OUT"

echo "== python reference: $VENV (eql 1.0.1)"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import sys, eql; sys.exit(eql.__version__ != "1.0.1")' 2>/dev/null; then
    "$VENV/bin/python" -m pip install --quiet 'eql==1.0.1'
fi

EVENTS="$OUT/events-$COUNT-$SEED.ndjson"
if [ ! -s "$EVENTS" ]; then
    echo "== generating $COUNT events (seed $SEED) into $EVENTS"
    cargo xtask gen-events --count "$COUNT" --seed "$SEED" > "$EVENTS.tmp"
    mv "$EVENTS.tmp" "$EVENTS"
fi

echo "== building the bench (release)"
cargo bench --locked -q -p kestrel-rt --bench replay --no-run

echo "== load before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
echo "== python eql: $QUERY"
"$VENV/bin/python" bench/python_reference.py --events "$EVENTS" --query "$QUERY" --reps "$REPS" > "$OUT/python.json"
echo "== kestrel (release, endgame dialect: the same semantics as python eql)"
cargo bench --locked -q -p kestrel-rt --bench replay -- --events "$EVENTS" --query "$QUERY" --dialect endgame \
    --reps "$REPS" $CORPUS --json-out "$OUT/kestrel.json"
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"

"$VENV/bin/python" - "$OUT/python.json" "$OUT/kestrel.json" <<'EOF'
import json, sys
python = json.load(open(sys.argv[1]))
kestrel = json.load(open(sys.argv[2]))["single"]
print(f"\n== {python['events']} events, {python['bytes'] / 1e6:.1f} MB, query: {python['query']}")
failed = False
rows = [("end_to_end", "end_to_end", "end to end (NDJSON)", 20), ("end_to_end", "end_to_end_parallel", "end to end, threads", 20), ("engine_only", "engine_only", "engine only", 50)]
for key, kestrel_key, label, target in rows:
    if kestrel_key not in kestrel:
        continue
    p, k = python[key], kestrel[kestrel_key]
    if "threads" in k:
        label = f"end to end, {k['threads']} thr"
    ratio = k["events_per_s"] / p["events_per_s"]
    verdict = "meets" if ratio >= target else "MISSES"
    print(f"{label:<20} python {p['events_per_s']:>12,.0f} ev/s   kestrel {k['events_per_s']:>12,.0f} ev/s   "
          f"ratio {ratio:6.1f}x  ({verdict} the {target}x target)   matches python {p['matches']} kestrel {k['matches']}")
    if p["matches"] != k["matches"]:
        print(f"  match counts differ for {label}", file=sys.stderr)
        failed = True
sys.exit(1 if failed else 0)
EOF
