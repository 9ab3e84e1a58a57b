//! Running `kestrel run` from a test or a bench: start it, wait until its probes are
//! attached, signal it, stop it and collect what it wrote on stderr.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

/// Why this machine cannot run the live test, if it cannot.
pub fn cannot_run() -> Option<String> {
    if !kestrel_sensor::probes::built() {
        return Some("the probes were not built (no clang or libbpf-dev at build time)".into());
    }
    if let Err(error) = kestrel_sensor::probes::check_privileges() {
        return Some(error.to_string());
    }
    if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Some("the kernel has no BTF (/sys/kernel/btf/vmlinux)".into());
    }
    if Command::new("python3").arg("--version").output().is_err() {
        return Some("python3 is not installed (the scenarios use it)".into());
    }
    None
}

#[allow(dead_code)] // benches only skip
pub fn skip_or_fail(why: &str) {
    if std::env::var_os("KESTREL_REQUIRE_LIVE").is_some() {
        panic!("KESTREL_REQUIRE_LIVE is set but the live test cannot run: {why}");
    }
    eprintln!("SKIPPED: live detection test: {why}");
}

pub struct Running {
    pub child: Child,
    collector: Option<JoinHandle<String>>,
}

/// Starts `kestrel run ARGS...` and returns once it says it is watching (panics with its
/// stderr if it does not within a minute).
pub fn start<I, S>(binary: &str, args: I) -> Running
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut child = Command::new(binary).arg("run").args(args).stderr(Stdio::piped()).spawn().expect("kestrel starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let collector = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("watching") {
                let _ = ready_tx.send(());
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let mut running = Running { child, collector: Some(collector) };
    if ready_rx.recv_timeout(Duration::from_secs(60)).is_err() {
        let _ = running.child.kill();
        let (_, stderr) = running.wait();
        panic!("kestrel run did not start:\n{stderr}");
    }
    running
}

/// A test that fails midway must not leave Kestrel running (with `--enforce`, every
/// exec on the machine would wait for it).
impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Running {
    /// Sends a signal (`TERM`, `STOP`, `CONT`, ...) with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill").arg(format!("-{name}")).arg(self.child.id().to_string()).status().expect("kill runs");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to end; its exit status and everything it wrote on stderr.
    pub fn wait(&mut self) -> (ExitStatus, String) {
        let status = self.child.wait().expect("kestrel is waited for");
        let stderr = self.collector.take().map(|collector| collector.join().unwrap_or_default()).unwrap_or_default();
        (status, stderr)
    }

    /// SIGTERM, then [`Running::wait`].
    pub fn stop(mut self) -> (ExitStatus, String) {
        self.signal("TERM");
        self.wait()
    }
}
