//! Enforcement on this machine's kernel (root only): `kestrel run --enforce` with the
//! rules of tests/enforce/ blocks an exec of a dropped binary (EPERM, its marker never
//! written), blocks the shell a process starts right after connecting out (a two-step
//! sequence decided at its last step), kills at exec and through a verified pidfd (the
//! event's process, and a parent); in
//! shadow mode nothing is blocked and the alerts say what would have been; and when
//! Kestrel is killed, a paused exec goes on.
//!
//! Without root, kernel BTF or probes built in, each test says SKIPPED on stderr; with
//! `KESTREL_REQUIRE_LIVE=1` (CI sets it) skipping is a failure.

#[path = "live/support.rs"]
mod support;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// One at a time: each test's kestrel pauses every exec on the machine.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

const DROPPED_DIR: &str = "/tmp/kestrel-enforce-test";
const KILL_DIR: &str = "/tmp/kestrel-kill-test";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kestrel-enforce-scratch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// The bundle of tests/enforce/*.toml, built with eqlc's library.
fn bundle() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/enforce");
    let mut paths: Vec<PathBuf> =
        std::fs::read_dir(&dir).unwrap().map(|entry| entry.unwrap().path()).filter(|path| path.extension().is_some_and(|ext| ext == "toml")).collect();
    paths.sort();
    build(&paths, "enforce.kbundle")
}

/// The bundle of `paths` (rule files or packages), at `scratch(name)`.
fn build(paths: &[PathBuf], name: &str) -> PathBuf {
    let schema = kestrel_bundle::schema::Schema::builtin("linux").unwrap();
    let options = eqlc::check::Options::elasticsearch(&schema);
    let mut sources = eqlc::source::SourceMap::new();
    let bytes = eqlc::driver::build_paths(paths, &options, &mut sources).unwrap_or_else(|diags| panic!("the enforcement rules do not build: {diags:?}"));
    let path = scratch(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A copy of `program` at `dir/name`, executable.
fn drop_binary(dir: &str, program: &str, name: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = Path::new(dir).join(name);
    std::fs::copy(program, &path).unwrap();
    path
}

fn start(bundle: &Path, alerts: &Path, enforce: bool) -> support::Running {
    start_with(bundle, alerts, enforce, &[])
}

fn start_with(bundle: &Path, alerts: &Path, enforce: bool, more: &[&std::ffi::OsStr]) -> support::Running {
    let mut args: Vec<std::ffi::OsString> =
        vec!["--bundle".into(), bundle.into(), "--alerts".into(), alerts.into(), "--duration".into(), "120".into(), "--stats-interval".into(), "60".into()];
    if enforce {
        args.push("--enforce".into());
    }
    args.extend(more.iter().map(|arg| arg.to_os_string()));
    support::start(env!("CARGO_BIN_EXE_kestrel"), args)
}

fn alerts_of(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

fn rule_ids(alerts: &[serde_json::Value]) -> Vec<String> {
    alerts.iter().map(|alert| alert["rule"]["id"].as_str().unwrap_or_default().to_string()).collect()
}

/// Waits until `done` or the timeout; whether it happened.
fn eventually(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + timeout;
    while Instant::now() < until {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

/// Python that connects to 127.0.0.1:47017 (a listener it opens), then execs `sh -c
/// 'exit 7'`; it prints `EPERM` and exits 0 when the exec is denied.
const CONNECT_THEN_SHELL: &str = r#"
import os, socket, sys, time
server = socket.socket(); server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 47017)); server.listen(1)
if sys.argv[1] == "connect":
    client = socket.create_connection(("127.0.0.1", 47017)); client.close()
    time.sleep(0.3)
try:
    os.execv("/bin/sh", ["sh", "-c", "exit 7"])
except PermissionError:
    print("EPERM"); sys.exit(0)
"#;

#[test]
fn enforce_blocks_kills_and_alerts() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(why) = support::cannot_run() {
        support::skip_or_fail(&why);
        return;
    }
    let bundle = bundle();
    let alerts_path = scratch("enforce-alerts.ndjson");
    let dropped = drop_binary(DROPPED_DIR, "/usr/bin/touch", "dropped");
    let victim = drop_binary(KILL_DIR, "/usr/bin/touch", "victim");
    let marker = scratch("dropped-marker");
    let victim_marker = scratch("victim-marker");
    let capture = scratch("enforce.kcap");
    let metrics = scratch("enforce.prom");
    let running = start_with(&bundle, &alerts_path, true, &["--record".as_ref(), capture.as_os_str(), "--metrics".as_ref(), metrics.as_os_str()]);

    // 1. A binary dropped in /tmp: execve fails with EPERM, and it never ran.
    let error = Command::new(&dropped).arg(&marker).status().expect_err("the dropped binary must not start");
    assert_eq!(error.raw_os_error(), Some(1), "EPERM expected, got {error}");
    // Other programs run as before.
    assert!(Command::new("/bin/true").status().unwrap().success());

    // 2. The shell a process starts right after connecting out is denied; without the
    //    connection the same exec goes on.
    let blocked = Command::new("python3").args(["-c", CONNECT_THEN_SHELL, "connect"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&blocked.stdout).trim(), "EPERM", "the shell after the connection was not blocked: {blocked:?}");
    let allowed = Command::new("python3").args(["-c", CONNECT_THEN_SHELL, "quiet"]).output().unwrap();
    assert_eq!(allowed.status.code(), Some(7), "the shell without a connection must run: {allowed:?}");

    // 3. Kill at exec: the process dies by SIGKILL before its first instruction.
    let status = Command::new(&victim).arg(&victim_marker).status().unwrap();
    assert_eq!(status.signal(), Some(9), "the victim was not killed: {status:?}");

    // 4. Kill through a pidfd: the process that creates the trigger file is killed.
    let trigger_dir = scratch("trigger");
    std::fs::create_dir_all(&trigger_dir).unwrap();
    let started = Instant::now();
    // The shell creates the file itself (a redirection), then becomes `sleep` (same process).
    let status = Command::new("sh").arg("-c").arg(format!(": > {}/kestrel-kill-trigger; exec sleep 20", trigger_dir.display())).status().unwrap();
    assert_eq!(status.signal(), Some(9), "the trigger's creator was not killed: {status:?}");
    assert!(started.elapsed() < Duration::from_secs(15));

    // 5. Kill the parent: the shell that ran the trigger dies; the trigger itself ran.
    let trigger = drop_binary("/tmp/kestrel-parent-test", "/usr/bin/true", "trigger");
    let status = Command::new("sh").arg("-c").arg(format!("{}; sleep 20", trigger.display())).status().unwrap();
    assert_eq!(status.signal(), Some(9), "the trigger's parent was not killed: {status:?}");

    std::thread::sleep(Duration::from_millis(1000));
    let (exit, stderr) = running.stop();
    assert!(exit.success(), "kestrel run exited with {exit}:\n{stderr}");
    eprintln!("{stderr}");
    assert!(!marker.exists(), "the dropped binary ran: its marker exists");
    assert!(!victim_marker.exists(), "the killed victim ran: its marker exists");

    let alerts = alerts_of(&alerts_path);
    let ids = rule_ids(&alerts);
    for id in ["test-block-dropped", "test-block-shell-after-connect", "test-kill-at-exec", "test-kill-on-file", "test-kill-parent"] {
        assert!(ids.iter().any(|each| each == id), "no alert of {id}; alerts: {ids:?}");
    }
    let dropped_alert = alerts.iter().find(|alert| alert["rule"]["id"] == "test-block-dropped").unwrap();
    assert_eq!(dropped_alert["kestrel"]["action"], "block");
    assert_eq!(dropped_alert["events"][0]["kestrel"]["blocked"], true, "{dropped_alert}");
    assert_eq!(dropped_alert["events"][0]["event"]["outcome"], "failure");
    assert_eq!(dropped_alert["events"][0]["process"]["executable"], dropped.to_str().unwrap());
    assert!(stderr.contains("exec hook:"), "no exec hook line in the summary:\n{stderr}");
    assert!(stderr.contains("0 blocks missed"), "{stderr}");
    assert!(stderr.contains("1 processes killed at exec"), "{stderr}");
    assert!(stderr.contains("2 killed by pidfd"), "{stderr}");
    // The quiet python's shell was decided and allowed: nothing else was denied.
    let denied: u64 = stderr.split(" denied").next().and_then(|head| head.rsplit(' ').next()).and_then(|n| n.parse().ok()).unwrap_or(99);
    assert_eq!(denied, 2, "two execs denied expected:\n{stderr}");
    // The metrics say the same.
    let prometheus = std::fs::read_to_string(&metrics).unwrap();
    for line in [
        "kestrel_blocked_total 2",
        "kestrel_block_missed_total 0",
        "kestrel_killed_at_exec_total 1",
        "kestrel_killed_total 2",
        "kestrel_exec_hook_denied_total 2",
    ] {
        assert!(prometheus.lines().any(|each| each == line), "no `{line}` in the metrics:\n{prometheus}");
    }
    assert!(prometheus.contains("kestrel_exec_hook_latency_seconds{quantile=\"0.99\"}"), "{prometheus}");
    // The denied execs, which the probes never saw, are in the capture: it replays to
    // the same alerts, byte for byte.
    let replayed = Command::new(env!("CARGO_BIN_EXE_kestrel")).args(["replay", "-q"]).arg(&capture).output().unwrap();
    assert!(replayed.status.success(), "{}", String::from_utf8_lossy(&replayed.stderr));
    assert!(replayed.stdout == std::fs::read(&alerts_path).unwrap(), "the capture's replay differs from the enforced run's alerts");
    let _ = std::fs::remove_dir_all(alerts_path.parent().unwrap());
}

#[test]
fn shadow_mode_blocks_nothing_and_says_what_it_would_have_done() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(why) = support::cannot_run() {
        support::skip_or_fail(&why);
        return;
    }
    let bundle = bundle();
    let alerts_path = scratch("shadow-alerts.ndjson");
    let dropped = drop_binary(DROPPED_DIR, "/usr/bin/touch", "dropped-shadow");
    let victim = drop_binary(KILL_DIR, "/usr/bin/touch", "victim-shadow");
    let marker = scratch("shadow-marker");
    let victim_marker = scratch("shadow-victim-marker");
    let running = start(&bundle, &alerts_path, false);
    assert!(Command::new(&dropped).arg(&marker).status().unwrap().success(), "shadow mode blocked an exec");
    assert!(Command::new(&victim).arg(&victim_marker).status().unwrap().success(), "shadow mode killed a process");
    assert!(marker.exists() && victim_marker.exists());
    let alerts_ready = eventually(Duration::from_secs(10), || rule_ids(&alerts_of(&alerts_path)).len() >= 2);
    let (exit, stderr) = running.stop();
    assert!(exit.success(), "{stderr}");
    assert!(alerts_ready, "the would-have alerts did not appear:\n{stderr}");
    let alerts = alerts_of(&alerts_path);
    let dropped_alert = alerts.iter().find(|alert| alert["rule"]["id"] == "test-block-dropped").expect("an alert of the block rule");
    assert_eq!(dropped_alert["kestrel"]["action"], "block");
    assert!(dropped_alert["events"][0]["kestrel"]["blocked"].is_null(), "nothing was blocked in shadow mode");
    let killed_alert = alerts.iter().find(|alert| alert["rule"]["id"] == "test-kill-at-exec").expect("an alert of the kill rule");
    assert_eq!(killed_alert["kestrel"]["action"], "kill");
    assert!(stderr.contains("shadow mode"), "{stderr}");
    assert!(stderr.contains("would have blocked 1, would have killed 1"), "{stderr}");
    assert!(!stderr.contains("exec hook:"), "shadow mode must not pause execs:\n{stderr}");
    let _ = std::fs::remove_dir_all(alerts_path.parent().unwrap());
}

#[test]
fn killing_kestrel_leaves_no_exec_paused() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(why) = support::cannot_run() {
        support::skip_or_fail(&why);
        return;
    }
    let bundle = bundle();
    let alerts_path = scratch("killed-alerts.ndjson");
    let mut running = start(&bundle, &alerts_path, true);
    let pid = rustix::process::Pid::from_raw(running.child.id() as i32).unwrap();
    // Stopped, Kestrel cannot answer: an exec waits (signals are sent without an exec).
    rustix::process::kill_process(pid, rustix::process::Signal::STOP).unwrap();
    let (done_tx, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let status = Command::new("/bin/true").status();
        let _ = done_tx.send(status.map(|status| status.success()).unwrap_or(false));
    });
    assert!(done.recv_timeout(Duration::from_millis(500)).is_err(), "the exec did not wait for the stopped Kestrel: the hook was not on");
    // Killed, Kestrel's fanotify group goes away, and the kernel lets the exec go on.
    let killed_at = Instant::now();
    running.child.kill().unwrap();
    let ran = done.recv_timeout(Duration::from_secs(5)).expect("the paused exec went on after Kestrel died");
    assert!(ran, "/bin/true failed after Kestrel died");
    eprintln!("the paused exec went on {:?} after SIGKILL", killed_at.elapsed());
    let _ = running.wait();
    assert!(Command::new("/bin/true").status().unwrap().success());
    let _ = std::fs::remove_dir_all(alerts_path.parent().unwrap());
}

#[test]
fn a_slow_decision_is_allowed_at_the_deadline() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(why) = support::cannot_run() {
        support::skip_or_fail(&why);
        return;
    }
    let bundle = build(&[Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/enforce_slow")], "slow.kbundle");
    let alerts_path = scratch("slow-alerts.ndjson");
    let dropped = drop_binary("/tmp/kestrel-slow-test", "/usr/bin/touch", "dropped");
    let marker = scratch("slow-marker");
    let running = start_with(&bundle, &alerts_path, true, &["--decision-timeout-ms".as_ref(), "50".as_ref()]);
    let started = Instant::now();
    // The rule would deny it, but its decision takes far longer than 50 ms: the exec goes on.
    assert!(Command::new(&dropped).arg(&marker).status().unwrap().success());
    let waited = started.elapsed();
    assert!(marker.exists());
    assert!(waited < Duration::from_millis(900), "the exec waited {waited:?}, past the 50 ms deadline");
    let alerted = eventually(Duration::from_secs(60), || !alerts_of(&alerts_path).is_empty());
    let (exit, stderr) = running.stop();
    assert!(exit.success(), "{stderr}");
    eprintln!("{stderr}");
    assert!(alerted, "the late block rule did not alert on the exec that went on");
    let timeouts: u64 = stderr.split(" allowed at the deadline").next().and_then(|head| head.rsplit(' ').next()).and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(timeouts >= 1, "no exec allowed at the deadline:\n{stderr}");
    assert!(stderr.contains("1 blocks missed"), "the missed block is not counted:\n{stderr}");
    let _ = std::fs::remove_dir_all(alerts_path.parent().unwrap());
}

/// A field of an ECS document by its dotted name (nested objects).
fn field<'a>(event: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    name.split('.').try_fold(event, |value, key| value.get(key)).unwrap_or(&serde_json::Value::Null)
}

#[test]
fn the_exec_hook_sees_what_the_probe_sees() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(why) = support::cannot_run() {
        support::skip_or_fail(&why);
        return;
    }
    let bundle = bundle();
    let alerts_path = scratch("same-alerts.ndjson");
    let decisions = scratch("decisions.ndjson");
    let capture = scratch("same.kcap");
    let running = start_with(&bundle, &alerts_path, true, &["--decisions".as_ref(), decisions.as_os_str(), "--record".as_ref(), capture.as_os_str()]);
    let programs: [&[&str]; 4] = [
        &["/bin/echo", "one", "two words", ""],
        &["/usr/bin/env", "KESTREL_HOOK_TEST=1", "/usr/bin/true", "x"],
        &["/bin/sh", "-c", "cd /tmp && exec /usr/bin/printf %s kestrel-hook-test"],
        &["/usr/bin/nice", "-n", "1", "/usr/bin/true"],
    ];
    for program in programs {
        assert!(Command::new(program[0]).args(&program[1..]).output().unwrap().status.success());
    }
    std::thread::sleep(Duration::from_millis(1000));
    let (exit, stderr) = running.stop();
    assert!(exit.success(), "{stderr}");
    let exported = Command::new(env!("CARGO_BIN_EXE_kestrel")).arg("export").arg(&capture).output().unwrap();
    assert!(exported.status.success());
    let events: Vec<serde_json::Value> = String::from_utf8(exported.stdout).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let decided: Vec<serde_json::Value> = std::fs::read_to_string(&decisions).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let mut compared = 0;
    for decision in decided.iter().filter(|decision| decision["verdict"] == "allow") {
        let hook = &decision["event"];
        let executable = field(hook, "process.executable");
        if !["/usr/bin/echo", "/usr/bin/env", "/usr/bin/true", "/usr/bin/dash", "/usr/bin/printf", "/usr/bin/nice"].iter().any(|each| executable == each) {
            continue;
        }
        let probe = events.iter().find(|event| {
            field(event, "event.action") == "exec"
                && field(event, "process.entity_id") == field(hook, "process.entity_id")
                && field(event, "process.executable") == executable
                && field(event, "process.args") == field(hook, "process.args")
        });
        let probe = probe.unwrap_or_else(|| panic!("no exec event from the probes for the hook's {hook}"));
        for name in kestrel_bundle::enforce::EXEC_HOOK_FIELDS.iter().filter(|name| **name != "@timestamp") {
            assert_eq!(field(hook, name), field(probe, name), "`{name}` differs between the hook's event and the probe's:\nhook:  {hook}\nprobe: {probe}");
        }
        compared += 1;
    }
    assert!(compared >= 6, "only {compared} execs compared");
    let _ = std::fs::remove_dir_all(alerts_path.parent().unwrap());
}
