//! The live sensor: probes + process table + conversion, as a source of ECS events.

use crate::ecs::{Clock, ConvertStats, Converted, Converter, Host, Names};
use crate::probes::{ProbeError, Probes, Skipped};
use crate::process_table::{ProcessTable, SeedStats, TableStats};
use std::time::Duration;

/// Settings of a live sensor.
#[derive(Clone, Debug)]
pub struct SensorOptions {
    /// Ring buffer size in bytes (a power of two).
    pub ring_bytes: u32,
    /// Processes the table keeps.
    pub max_processes: usize,
    /// Records handed over per poll at most (then the caller runs them).
    pub batch: usize,
    /// How long a poll that found the ring buffer empty waits, once a record arrives,
    /// for the records that come with it: the latency added to an alert, against the
    /// cost of running many small batches.
    pub linger: Duration,
}

impl Default for SensorOptions {
    fn default() -> SensorOptions {
        SensorOptions { ring_bytes: 16 << 20, max_processes: 65_536, batch: 8192, linger: Duration::from_millis(5) }
    }
}

/// Counters of a live sensor, for the stats line, the summary and the metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SensorStats {
    /// Records the kernel could not put in the ring buffer (it was full).
    pub kernel_drops: u64,
    /// Syscall entries the probes could not remember until their exit (map full).
    pub kernel_pending_drops: u64,
    /// Processes the probes killed at their exec (the exec hook's `kill` decisions).
    pub killed_at_exec: u64,
    pub convert: ConvertStats,
    pub table: TableStats,
    pub processes: usize,
}

/// A running sensor. Dropping it detaches the probes.
pub struct Sensor {
    probes: Probes,
    converter: Converter,
    options: SensorOptions,
    pub seed: SeedStats,
    /// The records of one poll, copied out of the ring buffer: bytes, and (time, offset, length) of each.
    arena: (Vec<u8>, Vec<(u64, usize, usize)>),
    /// Ends a poll's wait early when a byte arrives (see [`Sensor::wake_on`]).
    wake: Option<std::io::PipeReader>,
}

impl Sensor {
    /// Loads and attaches the probes, then seeds the process table from /proc (after
    /// attaching, so no process started in between is missed).
    pub fn start(options: SensorOptions) -> Result<Sensor, ProbeError> {
        let probes = Probes::start(options.ring_bytes)?;
        let host = Host::read();
        let mut table = ProcessTable::new(&host.boot_id, options.max_processes);
        let seed = table.seed_from_proc(std::path::Path::new("/proc"));
        let converter = Converter::new(host, Clock::now(), table, Names::read());
        Ok(Sensor { probes, converter, options, seed, arena: (Vec::new(), Vec::new()), wake: None })
    }

    /// Programs that did not attach (hooks this kernel lacks), and why.
    pub fn skipped(&self) -> &[Skipped] {
        &self.probes.skipped
    }

    pub fn attached(&self) -> usize {
        self.probes.attached
    }

    pub fn host(&self) -> &Host {
        &self.converter.host
    }

    /// Waits up to `timeout` for events, and hands the waiting ones to `each` in
    /// timestamp order (ties in arrival order). Records that do not decode are counted
    /// and passed to `bad`. Returns the number of events handed over.
    pub fn poll(&mut self, timeout: Duration, each: &mut dyn FnMut(&Converted), bad: &mut dyn FnMut(String)) -> usize {
        // The ring buffer is filled by every CPU, so records arrive nearly but not
        // exactly in time order: copy the batch out, order it by the probes' clock
        // (ties in arrival order), then convert, so the process table sees a fork
        // before the child's exec.
        let (arena, spans) = &mut self.arena;
        arena.clear();
        spans.clear();
        self.probes.read(timeout, self.options.linger, self.options.batch, self.wake.as_mut(), |bytes| {
            let ktime = bytes.get(..8).map_or(0, |raw| u64::from_le_bytes(raw.try_into().unwrap_or_default()));
            spans.push((ktime, arena.len(), bytes.len()));
            arena.extend_from_slice(bytes);
        });
        spans.sort_by_key(|(ktime, _, _)| *ktime);
        let mut count = 0;
        for (_, at, len) in spans.iter() {
            match self.converter.convert(&arena[*at..at + len]) {
                Ok(converted) => {
                    each(&converted);
                    count += 1;
                }
                Err(error) => bad(format!("record {}: {error}", self.converter.stats.records)),
            }
        }
        count
    }

    /// Polls end their wait as soon as a byte is written to the pipe's other end.
    pub fn wake_on(&mut self, reader: std::io::PipeReader) {
        self.wake = Some(reader);
    }

    /// The maps the exec hook needs (once).
    pub fn take_exec_maps(&mut self) -> Option<crate::probes::ExecMaps> {
        self.probes.take_exec_maps()
    }

    /// Turns a paused exec into its exec event, as the probe's event will be if the exec
    /// goes on (the fields of `kestrel_bundle::enforce::EXEC_HOOK_FIELDS`), from the
    /// process table as of now.
    pub fn exec_event(&mut self, attempt: &crate::exec_hook::ExecAttempt) -> Converted {
        self.converter.exec_attempt(attempt)
    }

    /// Now, on the events' clock (ns since the epoch).
    pub fn now(&self) -> i64 {
        self.converter.clock.wall_now()
    }

    pub fn stats(&self) -> SensorStats {
        let (kernel_drops, kernel_pending_drops) = self.probes.kernel_drops();
        SensorStats {
            kernel_drops,
            kernel_pending_drops,
            killed_at_exec: self.probes.killed_at_exec(),
            convert: self.converter.stats,
            table: self.converter.table.stats(),
            processes: self.converter.table.len(),
        }
    }
}
