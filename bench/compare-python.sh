#!/usr/bin/env bash
# Kestrel against the python `eql` 1.0.1 reference, on the same NDJSON events and the
# same query, measured in one run (docs/benchmarks.md):
#   end to end   NDJSON bytes -> matches  (python: json.loads + Event + stream_event;
#                                          kestrel: Replay, as `kestrel replay` runs; and,
#                                          when the bundle has a prefilter, without it;
#                                          and on a copy of the events in 4 KiB pages)
#   engine only  pre-built events -> matches (python: stream_events over Event objects;
#                                          kestrel: Engine::run + finish over Events)
# The two sides alternate for ROUNDS rounds (this machine's speed drifts by tens of
# percent within minutes: a ratio is taken within a round, never across rounds). The
# events file is put in the page cache as a read from disk leaves it (large folios), the
# copy is written in 4 KiB appends as a logger leaves a file (bench/page_cache.py prints
# how fast the kernel copies each out). Prints each round's rates and ratios, the median
# ratio against the targets, and fails if the two engines ever disagree on the number of
# matches.
#
# Usage: bench/compare-python.sh [--corpus]     (--corpus: also the corpus rule set, once)
#        bench/compare-python.sh --sequence     (a 3-step sequence instead; see below)
# Environment: COUNT (events, 200000), SEED (1), ROUNDS (3), REPS (3 per side and
# round), QUERY, KESTREL_BENCH_VENV.
#
# --sequence: the 3-step `sequence by` rule of bench/sequence.eql (RULE overrides) over
# events from bench/gen_sequence_events.py (process lifetimes, so that sequences by
# process.entity_id advance; RATE events/s, 500, over HOSTS hosts, 8), in ROUNDS rounds:
#   python       as above, the event time from @timestamp, one result per sequence;
#                PYTHON_REPS runs (1) per round and no warm-up: a run takes a minute
#   end to end   kestrel: `eqlc build` then `kestrel replay -q` (release binaries, one
#                process each, wall clock; --threads 1, then one per core)
#   engine only  kestrel: the replay bench's Engine::run + finish over Events
# and fails before any ratio if the engines disagree on the sequences (their number in
# every run, and the events of each, in order, in round 1).
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=${COUNT:-200000}
SEED=${SEED:-1}
ROUNDS=${ROUNDS:-3}
REPS=${REPS:-3}
QUERY=${QUERY:-'process where process.name == "bash"'}
VENV=${KESTREL_BENCH_VENV:-bench/.venv}
OUT="$PWD/bench/out"   # absolute: cargo bench runs the bench from kestrel-rt/
CORPUS=no
SEQUENCE=no
for arg in "$@"; do
    case "$arg" in
        --corpus) CORPUS=yes ;;
        --sequence) SEQUENCE=yes ;;
        *) echo "usage: bench/compare-python.sh [--corpus | --sequence]" >&2; exit 2 ;;
    esac
done
if [ "$CORPUS$SEQUENCE" = yesyes ]; then
    echo "usage: bench/compare-python.sh [--corpus | --sequence]" >&2
    exit 2
fi
mkdir -p "$OUT"

echo "== python reference: $VENV (eql 1.0.1)"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import sys, eql; sys.exit(eql.__version__ != "1.0.1")' 2>/dev/null; then
    "$VENV/bin/python" -m pip install --quiet 'eql==1.0.1'
fi

if [ "$SEQUENCE" = yes ]; then
    COUNT="$COUNT" SEED="$SEED" ROUNDS="$ROUNDS" REPS="$REPS" KESTREL_BENCH_VENV="$VENV" exec bench/compare-sequence.sh
fi

EVENTS="$OUT/events-$COUNT-$SEED.ndjson"
if [ ! -s "$EVENTS" ]; then
    echo "== generating $COUNT events (seed $SEED) into $EVENTS"
    cargo xtask gen-events --count "$COUNT" --seed "$SEED" > "$EVENTS.tmp"
    mv "$EVENTS.tmp" "$EVENTS"
fi

# How fast the kernel copies a cached file out depends on the page cache's folios: a
# file appended to in small writes (as a logger writes) sits in 4 KiB pages, one read
# back from disk (or copied in large writes) in large folios, which this kernel copies
# about 3x faster. Python's rate does not move with it (it spends 10 us on an event);
# Kestrel's does. So both states are measured, on the same bytes: the events file as
# read back from disk, and a copy written in 4 KiB appends.
APPENDED="$OUT/events-$COUNT-$SEED.appended.ndjson"
echo "== the page cache: $EVENTS read back from disk; $APPENDED written in 4 KiB appends"
dd if="$EVENTS" of="$APPENDED.tmp" bs=4096 status=none
mv "$APPENDED.tmp" "$APPENDED"
"$VENV/bin/python" bench/page_cache.py "$EVENTS" "$APPENDED"

echo "== building the bench (release)"
cargo bench --locked -q -p kestrel-rt --bench replay --no-run

# kestrel_bench EVENTS_FILE [OPTIONS...]
kestrel_bench() {
    local events=$1
    shift
    cargo bench --locked -q -p kestrel-rt --bench replay -- --events "$events" --query "$QUERY" --dialect endgame --reps "$REPS" "$@"
}

echo "== load before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores; query: $QUERY"
rm -f "$OUT"/python-*.json "$OUT"/kestrel-*.json
for round in $(seq 1 "$ROUNDS"); do
    echo "== round $round of $ROUNDS: python eql"
    "$VENV/bin/python" bench/python_reference.py --events "$EVENTS" --query "$QUERY" --reps "$REPS" > "$OUT/python-$round.json"
    echo "== round $round of $ROUNDS: kestrel (release, endgame dialect: the same semantics as python eql)"
    kestrel_bench "$EVENTS" --no-corpus --json-out "$OUT/kestrel-$round.json"
    echo "== round $round of $ROUNDS: kestrel, end to end, on the events written in 4 KiB appends"
    KESTREL_BENCH_ONLY=end-to-end kestrel_bench "$APPENDED" --no-corpus --json-out "$OUT/kestrel-appended-$round.json"
done
if [ "$CORPUS" = yes ]; then
    echo "== kestrel, the corpus rule set"
    kestrel_bench "$EVENTS" --json-out "$OUT/kestrel-corpus.json" | grep -v '^$'
fi
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"

"$VENV/bin/python" - "$OUT" "$ROUNDS" <<'EOF'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def kestrel(r):
    rows = json.load(open(f"{out}/kestrel-{r}.json"))["single"]
    rows["end_to_end_appended"] = json.load(open(f"{out}/kestrel-appended-{r}.json"))["single"]["end_to_end"]
    return rows
pairs = [(json.load(open(f"{out}/python-{r}.json")), kestrel(r)) for r in range(1, rounds + 1)]
python0 = pairs[0][0]
print(f"\n== {python0['events']} events, {python0['bytes'] / 1e6:.1f} MB, query: {python0['query']}, {rounds} rounds")
failed = False
rows = [
    ("end_to_end", "end_to_end", "end to end (NDJSON)", 20),
    ("end_to_end", "end_to_end_all_read", "  every line read", 20),
    ("end_to_end", "end_to_end_appended", "  in 4 KiB pages", 20),
    ("end_to_end", "end_to_end_parallel", "end to end, threads", 20),
    ("engine_only", "engine_only", "engine only", 50),
]
for key, kestrel_key, label, target in rows:
    if kestrel_key not in pairs[0][1]:
        continue
    if "threads" in pairs[0][1][kestrel_key]:
        label = f"end to end, {pairs[0][1][kestrel_key]['threads']} thr"
    ratios = []
    for r, (python, kestrel) in enumerate(pairs, 1):
        p, k = python[key], kestrel[kestrel_key]
        ratio = k["events_per_s"] / p["events_per_s"]
        ratios.append(ratio)
        print(f"  round {r} {label:<20} python {p['events_per_s']:>11,.0f} ev/s   kestrel {k['events_per_s']:>12,.0f} ev/s   ratio {ratio:6.1f}x   matches python {p['matches']} kestrel {k['matches']}")
        if p["matches"] != k["matches"]:
            print(f"  match counts differ for {label} in round {r}", file=sys.stderr)
            failed = True
    median = statistics.median(ratios)
    verdict = "meets" if median >= target else "MISSES"
    print(f"{label:<22} median ratio {median:6.1f}x (rounds {min(ratios):.1f}x to {max(ratios):.1f}x): {verdict} the {target}x target")
sys.exit(1 if failed else 0)
EOF
