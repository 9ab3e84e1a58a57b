#!/usr/bin/env bash
# `bench/compare-python.sh --sequence` (run it that way: that script sets up the python
# venv first). Kestrel against python `eql` 1.0.1 on a 3-step `sequence by` rule, on the
# same NDJSON events, in one run of ROUNDS interleaved rounds (docs/benchmarks.md, "3-step
# sequence vs python eql"). Each round:
#   1. python (bench/python_reference.py): end to end (json.loads + @timestamp + Event +
#      stream_event) and engine only (stream_events over pre-built Events), PYTHON_REPS
#      runs each, no warm-up (a run takes about a minute);
#   2. kestrel end to end (bench/kestrel_replay.py): `eqlc build --dialect endgame`, then
#      `kestrel replay -q --threads T` on the file, release binaries, wall clock of each
#      process, for T = 1 and T = the number of cores; one warm-up, then REPS runs;
#   3. kestrel engine only: the replay bench (`cargo bench --bench replay`) with the rule
#      as its query, endgame dialect: Engine::run + finish over pre-parsed Events, REPS
#      runs after a warm-up (it also prints its in-process end to end and its breakdown).
# Then checks that every run of both engines found the same number of sequences and that
# round 1's sequences are the same events in the same order (python's results against
# kestrel's alerts, as event.sequence numbers), and only then prints the ratios.
# Environment: COUNT (200000), SEED (1), RATE (500 events/s), HOSTS (8), ROUNDS (3),
# REPS (3), PYTHON_REPS (1), RULE (bench/sequence.eql), KESTREL_BENCH_VENV.
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=${COUNT:-200000}
SEED=${SEED:-1}
RATE=${RATE:-500}
HOSTS=${HOSTS:-8}
ROUNDS=${ROUNDS:-3}
REPS=${REPS:-3}
PYTHON_REPS=${PYTHON_REPS:-1}
RULE=${RULE:-bench/sequence.eql}
VENV=${KESTREL_BENCH_VENV:-bench/.venv}
OUT="$PWD/bench/out"   # absolute: cargo bench runs the bench from kestrel-rt/
RELEASE="${CARGO_TARGET_DIR:-$PWD/target}/release"
CORES=$(nproc)
THREADS=1
if [ "$CORES" -gt 1 ]; then THREADS="1,$CORES"; fi
mkdir -p "$OUT"
if [ ! -x "$VENV/bin/python" ]; then
    echo "no python venv at $VENV: run bench/compare-python.sh --sequence" >&2
    exit 2
fi
PY="$VENV/bin/python"
RULE=$(realpath "$RULE")

EVENTS="$OUT/sequence-events-$COUNT-$SEED-r$RATE-h$HOSTS.ndjson"
if [ ! -s "$EVENTS" ]; then
    echo "== generating $COUNT events (seed $SEED, $RATE events/s over $HOSTS hosts) into $EVENTS"
    "$PY" bench/gen_sequence_events.py --count "$COUNT" --seed "$SEED" --rate "$RATE" --hosts "$HOSTS" > "$EVENTS.tmp"
    mv "$EVENTS.tmp" "$EVENTS"
fi

echo "== building eqlc, kestrel and the replay bench (release)"
cargo build --locked -q --release -p eqlc -p kestrel-rt
cargo bench --locked -q -p kestrel-rt --bench replay --no-run

echo "== the rule: $RULE; its partial matches over these events (kestrel replay's summary):"
if ! built=$("$RELEASE/eqlc" build --dialect endgame -q -o "$OUT/sequence.kbundle" "$RULE" 2>&1); then
    echo "$built" >&2
    exit 1
fi
"$RELEASE/kestrel" replay --threads 1 --bundle "$OUT/sequence.kbundle" --alerts /dev/null "$EVENTS" 2>&1 | sed 's/^/   /'

echo "== load before: $(cut -d' ' -f1-3 /proc/loadavg) on $CORES cores"
rm -f "$OUT"/sequence-python-*.json "$OUT"/sequence-kestrel-*.json "$OUT"/sequence-results-*.ndjson
for round in $(seq 1 "$ROUNDS"); do
    python_results=()
    kestrel_results=()
    if [ "$round" = 1 ]; then
        python_results=(--results "$OUT/sequence-results-python.ndjson")
        kestrel_results=(--results "$OUT/sequence-results-kestrel.ndjson")
    fi
    echo "== round $round of $ROUNDS: python eql"
    "$PY" bench/python_reference.py --events "$EVENTS" --query-file "$RULE" --reps "$PYTHON_REPS" --warmup 0 "${python_results[@]}" \
        > "$OUT/sequence-python-$round.json"
    echo "== round $round of $ROUNDS: kestrel end to end (eqlc build, then kestrel replay -q; endgame dialect: python eql's semantics)"
    "$PY" bench/kestrel_replay.py --eqlc "$RELEASE/eqlc" --kestrel "$RELEASE/kestrel" --rule "$RULE" --events "$EVENTS" --work "$OUT" \
        --threads "$THREADS" --reps "$REPS" --warmup 1 "${kestrel_results[@]}" > "$OUT/sequence-kestrel-replay-$round.json"
    echo "== round $round of $ROUNDS: kestrel engine only (the replay bench)"
    cargo bench --locked -q -p kestrel-rt --bench replay -- --events "$EVENTS" --query "$(grep -v '^ *//' "$RULE")" --dialect endgame \
        --reps "$REPS" --no-corpus --json-out "$OUT/sequence-kestrel-bench-$round.json" | grep -v '^$'
    if [ "$round" = 1 ]; then
        # The answers first: a speed figure over different answers is worthless.
        "$PY" - "$OUT" <<'EOF'
import json, sys
out = sys.argv[1]
load = lambda name: [json.loads(line) for line in open(f"{out}/sequence-results-{name}.ndjson")]
python, kestrel = load("python"), load("kestrel")
same = python == kestrel
print(f"== round 1 answers: python {len(python)} sequences, kestrel {len(kestrel)}; the same events in the same order: {'yes' if same else 'NO'}")
if not same:
    only_python = sorted(set(map(tuple, python)) - set(map(tuple, kestrel)))
    only_kestrel = sorted(set(map(tuple, kestrel)) - set(map(tuple, python)))
    print(f"   only python ({len(only_python)}): {only_python[:10]}\n   only kestrel ({len(only_kestrel)}): {only_kestrel[:10]}")
    print("   (event.sequence numbers; see bench/out/sequence-results-*.ndjson)")
    sys.exit(1)
EOF
    fi
done
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"

"$PY" - "$OUT" "$ROUNDS" <<'EOF'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
read = lambda name, r: json.load(open(f"{out}/sequence-{name}-{r}.json"))
runs = [(read("python", r), read("kestrel-replay", r), read("kestrel-bench", r)["single"]) for r in range(1, rounds + 1)]
python0, replay0, bench0 = runs[0]

# Every run's count of sequences, both engines, every round: the same, or no ratio at all.
counts = {}
for r, (python, replay, bench) in enumerate(runs, 1):
    counts[f"round {r} python end to end"] = python["end_to_end"]["matches"]
    counts[f"round {r} python engine only"] = python["engine_only"]["matches"]
    for threads, figures in replay["replay"].items():
        counts[f"round {r} kestrel replay --threads {threads}"] = figures["matches"]
    for key in ("end_to_end", "end_to_end_parallel", "engine_only"):
        if key in bench:
            counts[f"round {r} kestrel bench {key}"] = bench[key]["matches"]
if len(set(counts.values())) != 1:
    print("\nTHE ENGINES DISAGREE on the number of sequences; no ratio is printed:", file=sys.stderr)
    for label, count in counts.items():
        print(f"  {label}: {count}", file=sys.stderr)
    sys.exit(1)
sequences = python0["end_to_end"]["matches"]

print(f"\n== {python0['events']} events, {python0['bytes'] / 1e6:.1f} MB, {rounds} rounds; {sequences} sequences found by both engines in all {len(counts)} runs")
print(f"   rule: {python0['query']}")
builds = [replay["build"]["seconds"] for _, replay, _ in runs]
print(f"   eqlc build --dialect endgame (not in the ratios): median {statistics.median(builds) * 1e3:.0f} ms per build")
threads = list(replay0["replay"].keys())
rows = [(f"end to end, {t} thr", "end_to_end", lambda replay, bench, t=t: replay["replay"][t]["events_per_s"], 20) for t in threads]
rows.append(("engine only", "engine_only", lambda replay, bench: bench["engine_only"]["events_per_s"], 50))
rows.append(("(bench e2e, 1 thr)", "end_to_end", lambda replay, bench: bench["end_to_end"]["events_per_s"], None))
for label, python_key, kestrel_rate, target in rows:
    ratios = []
    for r, (python, replay, bench) in enumerate(runs, 1):
        p, k = python[python_key]["events_per_s"], kestrel_rate(replay, bench)
        ratios.append(k / p)
        print(f"  round {r} {label:<20} python {p:>11,.0f} ev/s   kestrel {k:>12,.0f} ev/s   ratio {k / p:7.1f}x")
    median = statistics.median(ratios)
    verdict = f": {'meets' if median >= target else 'MISSES'} the {target}x target" if target else " (in-process Replay, for reference; no target)"
    print(f"{label:<22} median ratio {median:7.1f}x (rounds {min(ratios):.1f}x to {max(ratios):.1f}x){verdict}")
EOF
