//! The live path and its captures: lines pushed one at a time (`Replay::push_line`,
//! `Feed`) give the alerts a replay of the same lines gives, wherever flushes fall; a
//! capture written while pushing replays through `kestrel replay` to the same bytes;
//! `kestrel export` gives the lines back; damaged captures are reported and replayed up
//! to the damage. The cases are the replay suite's (tests/data/replay).

use kestrel_rt::capture::{CaptureReader, Header, Record, Settings};
use kestrel_rt::feed::{Feed, FeedError};
use kestrel_rt::program::Program;
use kestrel_rt::replay::{BadLine, Options, Order, Replay, Summary};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

/// A replay case: its name, bundle and event lines.
struct Case {
    name: String,
    bundle: Vec<u8>,
    events: String,
}

fn cases() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/replay");
    let mut paths: Vec<PathBuf> =
        std::fs::read_dir(&dir).unwrap().map(|entry| entry.unwrap().path()).filter(|path| path.extension().is_some_and(|ext| ext == "eql")).collect();
    paths.sort();
    assert!(paths.len() >= 10, "the replay cases are in {}", dir.display());
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            let events = std::fs::read_to_string(path.with_extension("ndjson")).unwrap();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            Case { bundle: build(&name, &text), name, events }
        })
        .collect()
}

/// Builds a case's rules with the settings of its `// eqlc:` header, as the replay suite does.
fn build(name: &str, text: &str) -> Vec<u8> {
    let (mut schema, mut dialect, mut case) = ("linux".to_string(), eqlc::dialect::Dialect::Elasticsearch, eqlc::dialect::EndgameCase::Insensitive);
    for settings in text.lines().filter_map(|line| line.trim().strip_prefix("// eqlc:")) {
        for setting in settings.split_whitespace() {
            match setting.split_once('=').unwrap_or((setting, "")) {
                ("schema", value) => schema = value.to_string(),
                ("dialect", value) => dialect = value.parse().unwrap(),
                ("case", value) => case = if value == "sensitive" { eqlc::dialect::EndgameCase::Sensitive } else { case },
                (other, _) => panic!("{name}: header setting `{other}` is not supported here"),
            }
        }
    }
    let schema = kestrel_bundle::schema::Schema::builtin(&schema).unwrap();
    let options = eqlc::check::Options { schema: &schema, dialect, endgame_case: case, declarations: &[] };
    let mut sources = eqlc::source::SourceMap::new();
    let (rules, _) = eqlc::rules::split(&format!("{name}.eql"), text.to_string(), eqlc::rules::FileKind::Eql, &mut sources);
    let checked = eqlc::driver::check_all(&rules, &sources, &options);
    let (bytes, diags) = eqlc::driver::build(&checked, &schema, &[]);
    bytes.unwrap_or_else(|| panic!("{name}: {:?}", diags.iter().map(|diag| &diag.message).collect::<Vec<_>>()))
}

fn program(bundle: &[u8]) -> Arc<Program> {
    Arc::new(Program::load(bundle).unwrap())
}

/// A small deterministic generator (no test depends on a seed it does not print).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// What a run wrote and reported.
#[derive(Debug, PartialEq)]
struct Outcome {
    alerts: String,
    bad: Vec<String>,
    counts: (u64, u64, u64, u64, u64, u64, u64),
}

fn outcome(alerts: Vec<u8>, bad: Vec<String>, summary: &Summary) -> Outcome {
    let counts = (summary.lines, summary.events, summary.alerts, summary.bad_lines, summary.untimed, summary.late, summary.reorder_early);
    Outcome { alerts: String::from_utf8(alerts).unwrap(), bad, counts }
}

fn read_all(bundle: &[u8], events: &str, options: Options) -> Outcome {
    let (mut alerts, mut bad) = (Vec::new(), Vec::new());
    let mut replay = Replay::new(program(bundle), options, &mut alerts).unwrap();
    replay.read_all("events.ndjson", events.as_bytes(), &mut |line| bad.push(line.to_string())).unwrap();
    let summary = replay.finish().unwrap();
    outcome(alerts, bad, &summary)
}

/// One step of a live run: a line pushed, or a flush.
#[derive(Clone, Debug)]
enum Step {
    Line(String),
    Flush,
}

/// The lines of `events`, with a flush after each with probability `1 / every` (never
/// when `every` is 0).
fn steps(events: &str, every: u64, rng: &mut Lcg) -> Vec<Step> {
    let mut steps = Vec::new();
    for line in events.lines() {
        steps.push(Step::Line(line.to_string()));
        if every > 0 && rng.below(every) == 0 {
            steps.push(Step::Flush);
        }
    }
    steps
}

fn push_all(bundle: &[u8], steps: &[Step], options: Options) -> Outcome {
    let (mut alerts, mut bad) = (Vec::new(), Vec::new());
    let mut replay = Replay::new(program(bundle), options, &mut alerts).unwrap();
    for step in steps {
        match step {
            Step::Line(line) => replay.push_line("events.ndjson", line, &mut |line: &BadLine| bad.push(line.to_string())).unwrap(),
            Step::Flush => replay.flush().unwrap(),
        }
    }
    let summary = replay.finish().unwrap();
    outcome(alerts, bad, &summary)
}

/// A case's events repeated past a few engine chunks, with bad and blank lines between.
fn long_events(events: &str) -> String {
    let mut long = String::new();
    while long.lines().count() < 2 * kestrel_rt::replay::CHUNK + 100 {
        long.push_str(events);
        long.push_str("not json\n\n");
    }
    long
}

#[test]
fn pushed_lines_give_the_alerts_of_read_all_whatever_the_flush_points() {
    let mut rng = Lcg(0x5eed);
    let (mut with_alerts, mut early) = (0, 0);
    for case in cases() {
        // The reorder window's memory bound as well: a few events' worth, so that events
        // leave it early, as many with their lines read one way as the other.
        let bounded = Options { order: Order::Timestamp, reorder_bytes: 4096, ..Options::default() };
        for options in [Options { order: Order::Input, ..Options::default() }, Options { order: Order::Timestamp, ..Options::default() }, bounded] {
            let order = options.order;
            for (events, rounds) in [(case.events.clone(), 6), (long_events(&case.events), 2)] {
                let expected = read_all(&case.bundle, &events, options.clone());
                with_alerts += usize::from(!expected.alerts.is_empty());
                early += usize::from(expected.counts.6 > 0);
                for round in 0..rounds {
                    // Never, after every line, then at random points.
                    let every = [0, 1, 2, 3, 7, 50][round];
                    let steps = steps(&events, every, &mut rng);
                    let pushed = push_all(&case.bundle, &steps, options.clone());
                    assert_eq!(pushed, expected, "{} ({order:?}, {} lines, a flush every {every} lines or so)", case.name, events.lines().count());
                }
            }
        }
    }
    assert!(with_alerts >= 20, "most cases have alerts to compare ({with_alerts} runs had)");
    assert!(early >= 10, "the memory bound is reached in many runs ({early} did)");
}

#[test]
fn pushed_lines_are_checked_as_read_lines_are() {
    let case = cases().into_iter().find(|case| case.name == "linux_rules").unwrap();
    let long = format!("{{\"pad\":\"{}\"}}", "x".repeat(300));
    let events = format!("{}{long}\n   \n{{\"event\":\n\u{feff}{{}}\n", case.events);
    let options = Options { max_line_bytes: 200, order: Order::Input, ..Options::default() };
    let expected = read_all(&case.bundle, &events, options.clone());
    assert!(expected.bad.iter().any(|bad| bad.contains("over the limit of 200 bytes")), "{:?}", expected.bad);
    let pushed = push_all(&case.bundle, &steps(&events, 3, &mut Lcg(1)), options.clone());
    assert_eq!(pushed, expected);
    // A pushed line may end with its newline; one with a line break inside is a bad line.
    let (mut alerts, mut bad) = (Vec::new(), Vec::new());
    let mut replay = Replay::new(program(&case.bundle), options, &mut alerts).unwrap();
    replay.push_line("live", "{\"a\":1}\n", &mut |line: &BadLine| bad.push(line.to_string())).unwrap();
    replay.push_line("live", "{\"a\":\n1}", &mut |line: &BadLine| bad.push(line.to_string())).unwrap();
    replay.push_bytes("live", b"{\"a\":\"\xff\"}", &mut |line: &BadLine| bad.push(line.to_string())).unwrap();
    let summary = replay.finish().unwrap();
    assert_eq!(bad, ["live:2:6: the line holds a line break", "live:3:7: the line is not UTF-8"]);
    assert_eq!((summary.lines, summary.events, summary.bad_lines), (3, 1, 2));
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kestrel-capture-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn kestrel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kestrel")).args(args).output().expect("kestrel runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A live run: its steps pushed through a recording feed. Returns the alerts and the capture.
fn record(bundle: &[u8], steps: &[Step], producer: &str) -> (Vec<u8>, Vec<u8>) {
    let options = Options { order: Order::Input, ..Options::default() };
    let header = Header::now(bundle.to_vec(), Settings::of(&options), producer);
    let (mut alerts, mut capture) = (Vec::new(), Vec::new());
    let mut feed = Feed::recording(header, options, &mut alerts, Box::new(&mut capture)).unwrap();
    for step in steps {
        match step {
            Step::Line(line) => feed.push_line("live", line, &mut |_: &BadLine| {}).unwrap(),
            Step::Flush => feed.flush().unwrap(),
        }
    }
    feed.finish().unwrap();
    (alerts, capture)
}

/// What a live run over `steps` writes, recording nothing.
fn live(bundle: &[u8], steps: &[Step]) -> Vec<u8> {
    let mut alerts = Vec::new();
    let mut feed = Feed::new(program(bundle), Options { order: Order::Input, ..Options::default() }, &mut alerts).unwrap();
    for step in steps {
        match step {
            Step::Line(line) => feed.push_line("live", line, &mut |_: &BadLine| {}).unwrap(),
            Step::Flush => feed.flush().unwrap(),
        }
    }
    feed.finish().unwrap();
    alerts
}

#[test]
fn a_recorded_run_replays_to_the_same_bytes_and_exports_its_lines() {
    let mut rng = Lcg(42);
    let dir = scratch("replay");
    for case in cases() {
        let steps = steps(&format!("{}\n\n", case.events), 4, &mut rng);
        let (alerts, capture) = record(&case.bundle, &steps, "kestrel test");
        assert_eq!(alerts, live(&case.bundle, &steps), "{}: recording changes nothing", case.name);
        let path = dir.join(format!("{}.kcap", case.name));
        std::fs::write(&path, &capture).unwrap();
        let path = path.to_str().unwrap();

        let out = kestrel(&["replay", "-q", path]);
        assert_eq!(out.status.code(), Some(0), "{}: {}", case.name, text(&out.stderr));
        assert_eq!(text(&out.stdout), text(&alerts), "{}: the capture replays to the live run's alerts", case.name);

        let lines: Vec<&str> = steps.iter().filter_map(|step| if let Step::Line(line) = step { Some(line.as_str()) } else { None }).collect();
        let exported = kestrel(&["export", path]);
        assert_eq!(exported.status.code(), Some(0), "{}", text(&exported.stderr));
        assert_eq!(text(&exported.stdout), lines.iter().map(|line| format!("{line}\n")).collect::<String>(), "{}: export gives the lines back", case.name);

        let described = kestrel(&["export", "--header", path]);
        let description = text(&described.stdout);
        let flushes = steps.iter().filter(|step| matches!(step, Step::Flush)).count();
        for expected in ["Kestrel capture, format 2", "producer  \"kestrel test\"", "options   order input, reorder window 65536", "end       complete"] {
            assert!(description.contains(expected), "{}: {expected:?} in\n{description}", case.name);
        }
        assert!(description.contains(&format!("lines     {}\nflushes   {flushes}\n", lines.len())), "{description}");
        assert!(description.contains("rules, schema"), "{description}");
    }
}

#[test]
fn a_capture_brings_its_bundle_and_settings_and_mixes_with_ndjson() {
    let case = cases().into_iter().find(|case| case.name == "sequence").unwrap();
    let dir = scratch("mix");
    let steps = steps(&case.events, 3, &mut Lcg(7));
    let (alerts, capture) = record(&case.bundle, &steps, "kestrel test");
    let capture_path = dir.join("run.kcap");
    std::fs::write(&capture_path, &capture).unwrap();
    let events_path = dir.join("events.ndjson");
    std::fs::write(&events_path, &case.events).unwrap();
    let bundle_path = dir.join("rules.kbundle");
    std::fs::write(&bundle_path, &case.bundle).unwrap();
    let (capture_path, events_path, bundle_path) = (capture_path.to_str().unwrap(), events_path.to_str().unwrap(), bundle_path.to_str().unwrap());

    let needs_bundle = kestrel(&["replay", capture_path, events_path]);
    assert_eq!(needs_bundle.status.code(), Some(1));
    assert!(
        text(&needs_bundle.stderr).contains(&format!("`{events_path}` is not a capture: replaying NDJSON events needs `--bundle`")),
        "{}",
        text(&needs_bundle.stderr)
    );
    assert!(needs_bundle.stdout.is_empty(), "nothing runs");

    // With --bundle, the NDJSON stream runs with the command line's options, then the
    // capture with its own (and the given bundle); a note says the options differ.
    let ndjson = kestrel(&["replay", "-q", "--bundle", bundle_path, events_path]);
    let mixed = kestrel(&["replay", "-q", "--order", "timestamp", "--bundle", bundle_path, events_path, capture_path]);
    assert_eq!(mixed.status.code(), Some(0), "{}", text(&mixed.stderr));
    assert_eq!(text(&mixed.stdout), text(&ndjson.stdout) + &text(&alerts));
    assert!(text(&mixed.stderr).contains("replays with the options it was recorded with (order input"), "{}", text(&mixed.stderr));

    // A capture on standard input.
    let mut child =
        Command::new(env!("CARGO_BIN_EXE_kestrel")).args(["replay", "-"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(&capture).unwrap();
    let piped = child.wait_with_output().unwrap();
    assert_eq!(piped.status.code(), Some(0), "{}", text(&piped.stderr));
    assert_eq!(piped.stdout, alerts);
    assert!(text(&piped.stderr).contains("capture of"), "the summary names the capture: {}", text(&piped.stderr));
}

/// The steps of the records before record `number` (records are numbered from 1).
fn steps_before(steps: &[Step], number: u64) -> Vec<Step> {
    steps[..number as usize - 1].to_vec()
}

#[test]
fn a_damaged_capture_replays_up_to_the_damage_and_says_where() {
    let case = cases().into_iter().find(|case| case.name == "sequence").unwrap();
    let dir = scratch("damaged");
    let steps = steps(&case.events, 3, &mut Lcg(3));
    let (_, capture) = record(&case.bundle, &steps, "kestrel test");
    let entries: Vec<_> = CaptureReader::new(capture.as_slice()).unwrap().map(Result::unwrap).collect();
    assert_eq!(entries.len(), steps.len() + 1, "a record per step, and the trailer");
    for number in [2, entries.len() as u64 / 2, entries.len() as u64 - 1] {
        let entry = &entries[number as usize - 1];
        let expected = text(&live(&case.bundle, &steps_before(&steps, number)));

        // Cut inside the record: a crash. Reported, replayed up to it, exit 0.
        let cut = dir.join(format!("cut-{number}.kcap"));
        std::fs::write(&cut, &capture[..entry.offset as usize + 3]).unwrap();
        let out = kestrel(&["replay", "-q", cut.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), expected, "record {number}: the records before the cut replay");
        assert!(text(&out.stderr).contains(&format!("truncated at record {number} (byte {})", entry.offset)), "{}", text(&out.stderr));

        // A flipped byte in the record: corrupt. Reported, replayed up to it, exit 1.
        let mut flipped = capture.clone();
        flipped[entry.offset as usize + 5] ^= 0x01;
        let bad = dir.join(format!("bad-{number}.kcap"));
        std::fs::write(&bad, &flipped).unwrap();
        let out = kestrel(&["replay", "-q", bad.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(text(&out.stdout), expected, "record {number}: the records before the damage replay");
        assert!(text(&out.stderr).contains(&format!("corrupt record {number} at byte {}", entry.offset)), "{}", text(&out.stderr));
        let exported = kestrel(&["export", bad.to_str().unwrap()]);
        assert_eq!(exported.status.code(), Some(1));
        assert_eq!(
            text(&exported.stdout).lines().count() as u64,
            entries[..number as usize - 1].iter().filter(|entry| matches!(entry.record, Record::Line(_))).count() as u64
        );
    }
    let mut versioned = capture.clone();
    versioned[8] = 9;
    let path = dir.join("v9.kcap");
    std::fs::write(&path, &versioned).unwrap();
    let out = kestrel(&["replay", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("capture format version 9; this kestrel reads versions 1 to 2"), "{}", text(&out.stderr));
}

/// Accepts `budget` bytes, then fails every write.
struct Failing<'b> {
    bytes: &'b mut Vec<u8>,
    budget: usize,
}

impl Write for Failing<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.budget == 0 {
            return Err(std::io::Error::other("disk full"));
        }
        let len = buf.len().min(self.budget);
        self.bytes.extend_from_slice(&buf[..len]);
        self.budget -= len;
        Ok(len)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_capture_that_cannot_be_written_stops_recording_and_not_the_feed() {
    let case = cases().into_iter().find(|case| case.name == "sequence").unwrap();
    // A flush after every line, so the failure shows at a known step.
    let steps = steps(&case.events, 1, &mut Lcg(0));
    let options = Options { order: Order::Input, ..Options::default() };
    let header = Header::now(case.bundle.clone(), Settings::of(&options), "kestrel test");
    let (mut alerts, mut capture) = (Vec::new(), Vec::new());
    let failing = Failing { bytes: &mut capture, budget: case.bundle.len() + 2000 };
    let mut feed = Feed::recording(header, options, &mut alerts, Box::new(failing)).unwrap();
    let mut failures = 0;
    for step in &steps {
        let result = match step {
            Step::Line(line) => feed.push_line("live", line, &mut |_: &BadLine| {}),
            Step::Flush => feed.flush(),
        };
        match result {
            Ok(()) => {}
            Err(FeedError::Capture(_)) => failures += 1,
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!(failures, 1, "the error is returned once");
    assert!(!feed.is_recording() && feed.recording_failed());
    feed.finish().unwrap();
    assert_eq!(alerts, live(&case.bundle, &steps), "the feed went on");
    // What was written is a capture cut short: its records replay.
    let mut reader = CaptureReader::new(capture.as_slice()).unwrap();
    let read = (&mut reader).take_while(Result::is_ok).count();
    assert!(read > 0 && !reader.is_complete());
}

/// Alerts written so far, readable while a feed holds the writer.
#[derive(Clone, Default)]
struct Shared(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn text(&self) -> String {
        String::from_utf8(self.0.borrow().clone()).unwrap()
    }
}

/// A quiet live host: a sequence waiting for a missing event is released by a clock
/// tick once its window has closed, not at the next event; the tick is recorded, and
/// the capture's replay writes the same alerts.
#[test]
fn a_tick_releases_a_trailing_missing_sequence_and_replays_identically() {
    let bundle =
        build("trailing", "sequence by process.pid with maxspan=5s\n  [process where event.action == \"exec\"]\n  ![process where event.action == \"end\"]\n");
    let at = |seconds: i64| 1_800_000_000_000_000_000 + seconds * 1_000_000_000;
    let line = |seconds: i64, action: &str, pid: u32| {
        format!(
            "{{\"@timestamp\":\"{}\",\"event\":{{\"category\":[\"process\"],\"action\":\"{action}\"}},\"process\":{{\"pid\":{pid}}}}}",
            kestrel_bundle::time::format_rfc3339(at(seconds))
        )
    };
    let options = Options { order: Order::Input, ..Options::default() };
    let alerts = Shared::default();
    let mut capture = Vec::new();
    let mut bad = |line: &BadLine| panic!("bad line {line}");
    {
        let mut out = alerts.clone();
        let header = Header::now(bundle.clone(), Settings::of(&options), "test");
        let mut feed = Feed::recording(header, options.clone(), &mut out, Box::new(&mut capture)).unwrap();
        assert!(feed.needs_ticks());
        feed.push_line("live", &line(0, "exec", 7), &mut bad).unwrap();
        feed.push_line("live", &line(1, "exec", 8), &mut bad).unwrap();
        feed.push_line("live", &line(2, "end", 8), &mut bad).unwrap();
        feed.flush().unwrap();
        feed.tick(at(4)).unwrap();
        assert_eq!(alerts.text(), "", "pid 7's window (0 s + 5 s) is still open at 4 s");
        feed.tick(at(9)).unwrap();
        let after_tick = alerts.text();
        assert!(after_tick.lines().count() == 1 && after_tick.contains("\"pid\":7"), "the tick at 9 s releases pid 7 (pid 8 ended):\n{after_tick}");
        feed.push_line("live", &line(20, "exec", 9), &mut bad).unwrap();
        feed.flush().unwrap();
        feed.finish().unwrap();
    }
    let text = alerts.text();
    assert_eq!(text.lines().count(), 2, "pid 9 at the end of the input:\n{text}");
    let ticks =
        CaptureReader::new(capture.as_slice()).unwrap().filter(|entry| matches!(entry.as_ref().map(|entry| &entry.record), Ok(Record::Tick(_)))).count();
    assert_eq!(ticks, 2);
    let mut replayed = Vec::new();
    kestrel_rt::feed::replay_capture(CaptureReader::new(capture.as_slice()).unwrap(), "capture", None, Options::default(), &mut replayed, &mut |line| {
        panic!("bad line {line}")
    })
    .unwrap();
    assert_eq!(String::from_utf8(replayed).unwrap(), text);
}
