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
        Ok(Sensor { probes, converter, options, seed, arena: (Vec::new(), Vec::new()) })
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
        self.probes.read(timeout, self.options.linger, self.options.batch, |bytes| {
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

    /// Now, on the events' clock (ns since the epoch).
    pub fn now(&self) -> i64 {
        self.converter.clock.wall_now()
    }

    pub fn stats(&self) -> SensorStats {
        let (kernel_drops, kernel_pending_drops) = self.probes.kernel_drops();
        SensorStats {
            kernel_drops,
            kernel_pending_drops,
            convert: self.converter.stats,
            table: self.converter.table.stats(),
            processes: self.converter.table.len(),
        }
    }
}
