//! Starts the sensor, runs a small scenario and prints the events as ECS JSON (root only).
//! `cargo run -p kestrel-sensor --example probe_smoke`
use kestrel_sensor::sensor::{Sensor, SensorOptions};
use std::time::{Duration, Instant};

fn main() {
    let mut sensor = match Sensor::start(SensorOptions::default()) {
        Ok(sensor) => sensor,
        Err(error) => {
            eprintln!("{error}");
            std::process::exit(1);
        }
    };
    eprintln!("attached {}, skipped {}, seeded {:?}", sensor.attached(), sensor.skipped().len(), sensor.seed);
    let script = "cd /tmp && echo x > /tmp/kestrel-smoke && mv /tmp/kestrel-smoke /tmp/kestrel-smoke2 && rm /tmp/kestrel-smoke2; (exec 3<>/dev/tcp/127.0.0.1/9) 2>/dev/null; exit 3";
    let _ = std::process::Command::new("/bin/sh").args(["-c", script]).status();
    let _ = std::process::Command::new("/bin/bash").args(["-c", script]).status();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(1) {
        sensor.poll(Duration::from_millis(100), &mut |event| println!("{}", event.json), &mut |bad| eprintln!("{bad}"));
    }
    eprintln!("{:?}", sensor.stats());
}
