//! Live detection on this machine's kernel (root and eBPF only): `kestrel run` with the
//! built-in rules sees attack scenarios (tests/live/scenarios.sh) and alerts; SIGTERM
//! stops it cleanly; its capture replays to byte-identical alerts; `kestrel export`
//! gives back the events.
//!
//! Without root, kernel BTF or probes built in, the test says SKIPPED on stderr; with
//! `KESTREL_REQUIRE_LIVE=1` (CI sets it) skipping is a failure.

#[path = "live/support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Live tests run one at a time: one's burst of events must not fill another's ring buffer.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn kestrel() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kestrel"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kestrel-live-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn rule_names(alerts: &str) -> Vec<String> {
    alerts
        .lines()
        .map(|line| {
            let alert: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|error| panic!("alert is not JSON ({error}): {line}"));
            alert["rule"]["name"].as_str().unwrap_or_default().to_string()
        })
        .collect()
}

#[test]
fn live_run_alerts_on_attacks_and_its_capture_replays_identically() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(why) = support::cannot_run() {
        support::skip_or_fail(&why);
        return;
    }
    let alerts_path = scratch("alerts.ndjson");
    let capture = scratch("run.kcap");
    let metrics = scratch("metrics.prom");
    let running = support::start(
        env!("CARGO_BIN_EXE_kestrel"),
        [
            "--stats-interval".as_ref(),
            "1".as_ref(),
            "--duration".as_ref(),
            "120".as_ref(),
            "--alerts".as_ref(),
            alerts_path.as_os_str(),
            "--record".as_ref(),
            capture.as_os_str(),
            "--metrics".as_ref(),
            metrics.as_os_str(),
        ],
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/live/scenarios.sh");
    let scenarios = Command::new("bash").arg(&script).output().expect("the scenarios run");
    assert!(scenarios.status.success(), "scenarios failed ({}):\n{}", scenarios.status, String::from_utf8_lossy(&scenarios.stderr));
    // Let the last events reach the engine, then stop it the way an operator would.
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    let (exit, stderr) = running.stop();
    assert!(exit.success(), "kestrel run exited with {exit}:\n{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10), "SIGTERM took {:?} to stop kestrel", started.elapsed());
    eprintln!("{stderr}");

    let alerts = std::fs::read_to_string(&alerts_path).unwrap();
    let names = rule_names(&alerts);
    for expected in [
        "Reverse shell: a process connects out, then starts a shell reading its input",
        "Program executed from /dev/shm",
        "Program executed from an anonymous memory file",
    ] {
        assert!(names.iter().any(|name| name == expected), "no `{expected}` alert; alerts were {names:?}");
    }
    // Nothing was dropped, and the summary and the metrics say so.
    assert!(stderr.contains("drops: 0 in the kernel"), "kernel drops reported:\n{stderr}");
    let prometheus = std::fs::read_to_string(&metrics).unwrap();
    assert!(prometheus.contains("\nkestrel_kernel_drops_total 0\n"), "{prometheus}");
    let events: u64 = prometheus.lines().find_map(|line| line.strip_prefix("kestrel_events_total ")).unwrap().parse().unwrap();
    // The built-in rules have needs: the conditions they skipped are counted.
    let skipped = prometheus.lines().find_map(|line| line.strip_prefix("kestrel_needs_skipped_total ")).map(str::parse::<u64>);
    assert!(matches!(skipped, Some(Ok(_))), "{prometheus}");
    // And what the engine dropped at its bounds: every counter is there, none moved.
    for (name, _, _) in kestrel_rt::losses::Losses::default().metrics() {
        assert!(prometheus.contains(&format!("\n{name} 0\n")), "{name}: {prometheus}");
    }
    assert!(events > 10, "only {events} events");

    // The capture replays, with no flags, to the same bytes.
    let replayed = kestrel().args(["replay", "-q"]).arg(&capture).output().unwrap();
    assert!(replayed.status.success(), "{}", String::from_utf8_lossy(&replayed.stderr));
    assert!(replayed.stdout == alerts.as_bytes(), "the capture's replay differs from the live alerts");

    // Export gives the events back as ECS NDJSON: one line per event the engine saw.
    let exported = kestrel().arg("export").arg(&capture).output().unwrap();
    assert!(exported.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(exported.stdout).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(lines.len() as u64, events);
    let memfd = lines.iter().find(|event| event["event"]["action"] == "memfd_create" && event["process"]["Ext"]["memfd"]["name"] == "kestrel-live");
    assert!(memfd.is_some(), "no memfd_create event named kestrel-live");
    let history = lines.iter().find(|event| {
        event["event"]["action"] == "exec" && event["process"]["env_vars"].as_array().is_some_and(|vars| vars.iter().any(|var| var == "HISTFILE=/dev/null"))
    });
    assert!(history.is_some(), "no exec event with HISTFILE=/dev/null in process.env_vars");
    assert!(!lines.iter().any(|event| event.to_string().contains("hunter2")), "an unlisted environment variable was reported");
    // Every kind of event the sensor emits on this kernel (load_module needs a kernel with modules).
    let actions: std::collections::BTreeSet<&str> = lines.iter().filter_map(|event| event["event"]["action"].as_str()).collect();
    let modules = Path::new("/proc/modules").exists();
    for action in [
        "exec",
        "fork",
        "end",
        "creation",
        "modification",
        "deletion",
        "rename",
        "connection_attempted",
        "connection_accepted",
        "disconnect_received",
        "uid_change",
        "gid_change",
        "memfd_create",
        "ptrace",
        "lookup_result",
    ] {
        assert!(actions.contains(action), "no `{action}` event; saw {actions:?}");
    }
    let exited = lines.iter().find(|event| event["event"]["action"] == "end" && event["process"]["args"] == serde_json::json!(["sh", "-c", "exit 3"]));
    assert_eq!(exited.map(|event| event["process"]["exit_code"].clone()), Some(serde_json::json!(3)), "no end event with exit code 3 for `sh -c 'exit 3'`");
    if !modules {
        eprintln!("NOTE: this kernel has no loadable modules (/proc/modules): load_module events cannot occur");
    }
    let lookup = lines.iter().find(|event| event["event"]["action"] == "lookup_result" && event["dns"]["question"]["name"] == "kestrel-live.example");
    let lookup = lookup.unwrap_or_else(|| panic!("no lookup_result event for kestrel-live.example"));
    assert_eq!(lookup["dns"]["resolved_ip"], serde_json::json!(["192.0.2.53"]));
    assert_eq!(lookup["event"]["category"], serde_json::json!(["dns"]));
    let _ = std::fs::remove_dir_all(alerts_path.parent().unwrap());
}

/// Drops are counted, never silent: kestrel is stopped (SIGSTOP) with a 1 MiB ring
/// buffer while a burst of file events fills it, then resumed; the kernel's drop count
/// reaches the metrics file and the summary.
#[test]
fn kernel_drops_are_counted_and_reported() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(why) = support::cannot_run() {
        support::skip_or_fail(&why);
        return;
    }
    let metrics = scratch("drops.prom");
    let mut running = support::start(
        env!("CARGO_BIN_EXE_kestrel"),
        [
            "--ring-mib".as_ref(),
            "1".as_ref(),
            "--stats-interval".as_ref(),
            "0.5".as_ref(),
            "--duration".as_ref(),
            "120".as_ref(),
            "--alerts".as_ref(),
            "/dev/null".as_ref(),
            "--metrics".as_ref(),
            metrics.as_os_str(),
        ],
    );
    running.signal("STOP");
    // About 60,000 records: far more than 1 MiB holds.
    let dir = scratch("burst");
    std::fs::create_dir_all(&dir).unwrap();
    for index in 0..20_000 {
        let path = dir.join(format!("f{index}"));
        std::fs::write(&path, b"x").unwrap();
        std::fs::remove_file(&path).unwrap();
    }
    running.signal("CONT");
    std::thread::sleep(Duration::from_millis(2000));
    running.signal("TERM");
    let (exit, stderr) = running.wait();
    assert!(exit.success(), "{stderr}");
    let prometheus = std::fs::read_to_string(&metrics).unwrap();
    let drops: u64 = prometheus.lines().find_map(|line| line.strip_prefix("kestrel_kernel_drops_total ")).unwrap().parse().unwrap();
    assert!(drops > 1000, "only {drops} kernel drops counted:\n{prometheus}\n{stderr}");
    assert!(stderr.contains(&format!("drops: {drops} in the kernel")), "the summary does not report {drops} kernel drops:\n{stderr}");
}

/// Without privileges `kestrel run` exits 2 and says what it needs. As root, the
/// command runs as `nobody` (setpriv), which has no capabilities.
#[test]
fn without_privileges_run_says_what_it_needs() {
    let mut command = if kestrel_sensor::probes::check_privileges().is_ok() {
        if Command::new("setpriv").arg("--version").output().is_err() {
            support::skip_or_fail("privileged, and setpriv (util-linux) is missing to drop the privileges");
            return;
        }
        let mut command = Command::new("setpriv");
        command.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"]);
        command.arg(env!("CARGO_BIN_EXE_kestrel"));
        command
    } else {
        kestrel()
    };
    let output = command.args(["run", "--duration", "1", "--alerts", "-"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let expected = if kestrel_sensor::probes::built() { "needs root, or CAP_BPF and CAP_PERFMON" } else { "install clang" };
    assert!(stderr.contains(expected), "{stderr}");
}
