//! Loads the probes and prints the kinds of records for a few seconds (root only).
use kestrel_sensor::probes::Probes;
use kestrel_sensor::records::{Record, comm};
use std::time::{Duration, Instant};

fn main() {
    let mut probes = match Probes::start(8 << 20) {
        Ok(probes) => probes,
        Err(error) => {
            eprintln!("{error}");
            std::process::exit(1);
        }
    };
    eprintln!("attached {}, skipped {:?}", probes.attached, probes.skipped);
    let _ = std::process::Command::new("/bin/sh").args(["-c", "cd /tmp && echo x > /tmp/kestrel-smoke && mv /tmp/kestrel-smoke /tmp/kestrel-smoke2 && rm /tmp/kestrel-smoke2; exit 3"]).status();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        probes.read(Duration::from_millis(100), 1024, |bytes| match Record::parse(bytes) {
            Ok(record) => eprintln!("{:?} pid={} ppid={} comm={} size={} tail={:?}", record.kind, record.header.pid, record.header.ppid, comm(&record.header), record.header.size, String::from_utf8_lossy(record.tail)),
            Err(error) => eprintln!("bad record: {error}"),
        });
    }
    eprintln!("drops {:?}", probes.kernel_drops());
}
