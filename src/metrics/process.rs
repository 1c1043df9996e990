//! The process's own figures, read from `/proc` at each scrape (Linux; elsewhere they are
//! absent): resident and virtual memory, CPU seconds, open and maximum file descriptors, and
//! the start time, under the names Prometheus's other clients use.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// `/proc`'s clock ticks per second (`USER_HZ`): fixed at 100 by the kernel's ABI on every
/// architecture the ledger is built for.
const TICKS_PER_SECOND: f64 = 100.0;

/// The figures of one reading.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessFigures {
    /// Resident set size, bytes.
    pub resident_memory_bytes: Option<f64>,
    /// Virtual memory size, bytes.
    pub virtual_memory_bytes: Option<f64>,
    /// User plus system CPU time, seconds.
    pub cpu_seconds: Option<f64>,
    /// Open file descriptors.
    pub open_fds: Option<f64>,
    /// The soft limit on open file descriptors.
    pub max_fds: Option<f64>,
    /// Start time, seconds since the Unix epoch.
    pub start_time_seconds: Option<f64>,
}

impl ProcessFigures {
    /// Reads this process's figures; a file that cannot be read leaves its figures `None`.
    pub fn read() -> Self {
        let mut f = Self::default();
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // The command name in parentheses may hold spaces: fields count from its end.
            if let Some((_, rest)) = stat.rsplit_once(')') {
                let fields: Vec<&str> = rest.split_whitespace().collect();
                // `rest` starts at field 3 (state): field n is fields[n - 3].
                let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok());
                f.cpu_seconds = field(14)
                    .zip(field(15))
                    .map(|(u, s)| (u + s) / TICKS_PER_SECOND);
                f.virtual_memory_bytes = field(23);
                let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("btime "))
                        .and_then(|v| v.trim().parse::<f64>().ok())
                });
                f.start_time_seconds = field(22)
                    .zip(boot)
                    .map(|(ticks, boot)| boot + ticks / TICKS_PER_SECOND);
            }
        }
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            f.resident_memory_bytes = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .map(|kb| kb * 1024.0);
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            f.open_fds = Some(dir.count() as f64);
        }
        if let Ok(limits) = std::fs::read_to_string("/proc/self/limits") {
            f.max_fds = limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse().ok());
        }
        f
    }
}

/// Encodes [`ProcessFigures::read`] at each scrape.
#[derive(Debug)]
pub struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let f = ProcessFigures::read();
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                f.resident_memory_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                f.virtual_memory_bytes,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                f.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors",
                f.max_fds,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch in seconds",
                f.start_time_seconds,
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(v) = value {
                let gauge = ConstGauge::new(v);
                gauge.encode(encoder.encode_descriptor(
                    name,
                    help,
                    None,
                    gauge.metric_type(),
                )?)?;
            }
        }
        if let Some(v) = f.cpu_seconds {
            // The text encoder adds `_total`.
            let counter = ConstCounter::new(v);
            counter.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                counter.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn this_process_has_memory_cpu_descriptors_and_a_start_time() {
        let f = ProcessFigures::read();
        assert!(f.resident_memory_bytes.unwrap() > 1_000_000.0);
        assert!(f.open_fds.unwrap() >= 3.0);
        assert!(f.max_fds.unwrap() >= f.open_fds.unwrap());
        assert!(f.cpu_seconds.unwrap() >= 0.0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let start = f.start_time_seconds.unwrap();
        assert!(
            start <= now + 1.0 && start > now - 86_400.0 * 365.0,
            "{start}"
        );
    }
}
