//! The `kestrel` command-line contract (README.md): scripts drive it, so exit codes,
//! where output goes and the error format must not change by accident.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const RULE: &str = "process where event.action == \"load_module\" and not process.name in (\"modprobe\", \"insmod\")\n";
const EVENTS: &str = concat!(
    "{\"@timestamp\":\"2024-05-04T12:00:02Z\",\"event\":{\"category\":[\"process\"],\"action\":\"load_module\"},\"process\":{\"name\":\"evil\"}}\n",
    "{\"@timestamp\":\"2024-05-04T12:00:01Z\",\"event\":{\"category\":\"process\",\"action\":\"load_module\"},\"process.name\":\"modprobe\"}\n",
    "{\"@timestamp\":\"2024-05-04T12:00:03Z\",\"event\":{\"category\":[\"process\"],\"action\":\"load_module\"},\"process\":{\"name\":\"rootkit\"}}\n",
    "{\"@timestamp\": \"2024-05-04T12:00:04Z\", \"event\": oops}\n",
);

fn kestrel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kestrel")).args(args).output().expect("kestrel runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kestrel-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Builds RULE with eqlc's library (as `eqlc build` does) into `dir/rule.kbundle`.
fn bundle(dir: &Path) -> PathBuf {
    let schema = kestrel_bundle::schema::Schema::builtin("linux").unwrap();
    let options = eqlc::check::Options::elasticsearch(&schema);
    let mut sources = eqlc::source::SourceMap::new();
    let (rules, _) = eqlc::rules::split("kernel_module.eql", RULE.to_string(), eqlc::rules::FileKind::Eql, &mut sources);
    let checked = eqlc::driver::check_all(&rules, &sources, &options);
    let (bytes, diags) = eqlc::driver::build(&checked, &schema, &[]);
    let path = dir.join("rule.kbundle");
    std::fs::write(&path, bytes.unwrap_or_else(|| panic!("{diags:?}"))).unwrap();
    path
}

#[test]
fn replay_writes_alerts_to_stdout_and_reports_bad_lines_with_their_location() {
    let dir = scratch("replay");
    let bundle = bundle(&dir);
    let events = dir.join("events.ndjson");
    std::fs::write(&events, EVENTS).unwrap();
    let out = kestrel(&["replay", "--bundle", bundle.to_str().unwrap(), events.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let alerts: Vec<serde_json::Value> = text(&out.stdout).lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let names: Vec<&str> = alerts.iter().map(|alert| alert["events"][0]["process"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["evil", "rootkit"], "alerts in timestamp order");
    assert_eq!(alerts[0]["event"]["kind"], "alert");
    assert_eq!(alerts[0]["rule"]["id"], "kernel_module");
    assert_eq!(alerts[0]["@timestamp"], "2024-05-04T12:00:02.000000000Z", "the time of the event, not of the run");
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!("kestrel: bad line: {}:4:", events.display())), "{stderr}");
    assert!(stderr.contains("replayed 3 events"), "{stderr}");
    assert!(stderr.contains("2 alerts, 1 bad lines"), "{stderr}");

    let strict = kestrel(&["replay", "--strict", "-q", "--bundle", bundle.to_str().unwrap(), events.to_str().unwrap()]);
    assert_eq!(strict.status.code(), Some(1), "--strict fails on bad lines");
    assert_eq!(strict.stdout, out.stdout, "--strict still writes every alert");
    assert!(!text(&strict.stderr).contains("replayed"), "-q: no summary");
}

#[test]
fn replays_of_the_same_input_are_byte_identical_whatever_the_output() {
    let dir = scratch("same");
    let bundle = bundle(&dir);
    let events = dir.join("events.ndjson");
    std::fs::write(&events, EVENTS).unwrap();
    let (first, second) = (dir.join("first.ndjson"), dir.join("second.ndjson"));
    for alerts in [&first, &second] {
        let out = kestrel(&["replay", "-q", "--bundle", bundle.to_str().unwrap(), "--alerts", alerts.to_str().unwrap(), events.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(out.stdout.is_empty(), "--alerts FILE writes nothing to stdout");
    }
    let first = std::fs::read(first).unwrap();
    assert!(!first.is_empty());
    assert_eq!(first, std::fs::read(second).unwrap());

    let mut child = Command::new(env!("CARGO_BIN_EXE_kestrel"))
        .args(["replay", "-q", "--bundle", bundle.to_str().unwrap(), "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(EVENTS.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.stdout, first, "`-` reads stdin; stdout gets the same bytes");
}

#[test]
fn inspect_prints_a_valid_bundle_and_rejects_a_broken_one_with_its_offset() {
    let dir = scratch("inspect");
    let bundle = bundle(&dir);
    let out = kestrel(&["inspect", bundle.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let printed = text(&out.stdout);
    assert!(printed.starts_with("Kestrel bundle, format 2, predicate ABI 1"), "{printed}");
    assert!(printed.contains("\"kernel_module\""), "{printed}");

    let mut bytes = std::fs::read(&bundle).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    let broken = dir.join("broken.kbundle");
    std::fs::write(&broken, &bytes).unwrap();
    for args in [vec!["inspect", broken.to_str().unwrap()], vec!["replay", "--bundle", broken.to_str().unwrap(), "-"]] {
        let out = kestrel(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(text(&out.stderr).contains("at byte"), "{args:?}: {}", text(&out.stderr));
    }
    let out = kestrel(&["replay", "--bundle", dir.join("absent.kbundle").to_str().unwrap(), "-"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot read"));
}

#[test]
fn events_outside_the_reorder_window_run_late_and_are_counted() {
    let dir = scratch("late");
    let bundle = bundle(&dir);
    let line = |second: u32, name: &str| {
        format!(
            "{{\"@timestamp\":\"2024-05-04T12:00:0{second}Z\",\"event\":{{\"category\":\"process\",\"action\":\"load_module\"}},\"process\":{{\"name\":\"{name}\"}}}}\n"
        )
    };
    let events = dir.join("late.ndjson");
    std::fs::write(&events, [line(3, "c"), line(4, "d"), line(1, "a")].concat()).unwrap();
    let names = |out: &Output| -> Vec<String> {
        text(&out.stdout)
            .lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["events"][0]["process"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    let windowed = kestrel(&["replay", "--reorder-window", "1", "--bundle", bundle.to_str().unwrap(), events.to_str().unwrap()]);
    assert_eq!(names(&windowed), ["c", "a", "d"], "a window of one event restores only short displacements");
    assert!(text(&windowed.stderr).contains("1 late"), "{}", text(&windowed.stderr));
    let sorted = kestrel(&["replay", "--bundle", bundle.to_str().unwrap(), events.to_str().unwrap()]);
    assert_eq!(names(&sorted), ["a", "c", "d"]);
    assert!(text(&sorted.stderr).contains("0 late"), "{}", text(&sorted.stderr));
    assert!(!text(&sorted.stderr).contains("early"), "{}", text(&sorted.stderr));
    // A memory bound no matched event fits under: each leaves the window as it comes.
    let bounded = kestrel(&["replay", "--reorder-bytes", "1", "--bundle", bundle.to_str().unwrap(), events.to_str().unwrap()]);
    assert_eq!(names(&bounded), ["c", "d", "a"]);
    let stderr = text(&bounded.stderr);
    assert!(stderr.contains("1 late") && stderr.contains("3 events left the reorder window early"), "{stderr}");
    // One the three matches fit under (lines and a few hundred bytes each) restores
    // their order.
    let roomy = (3 * line(1, "a").len() + 8192).to_string();
    let bounded = kestrel(&["replay", "--reorder-bytes", &roomy, "--bundle", bundle.to_str().unwrap(), events.to_str().unwrap()]);
    assert_eq!(names(&bounded), ["a", "c", "d"], "{}", text(&bounded.stderr));
    assert!(!text(&bounded.stderr).contains("early"), "{}", text(&bounded.stderr));
    let input = kestrel(&["replay", "--order", "input", "--bundle", bundle.to_str().unwrap(), events.to_str().unwrap()]);
    assert_eq!(names(&input), ["c", "d", "a"]);
}

/// A reader that goes away (`kestrel inspect B | head`) ends the output quietly: exit
/// code 0 and nothing on stderr, where `print!` would have panicked.
#[test]
fn inspect_into_a_closed_pipe_ends_quietly() {
    let dir = scratch("closed-pipe");
    let bundle = bundle(&dir);
    let mut child =
        Command::new(env!("CARGO_BIN_EXE_kestrel")).args(["inspect", bundle.to_str().unwrap()]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // The read end closes before the child has read its bundle and written.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}
