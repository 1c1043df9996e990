//! What `ledger bench` reports about the machine and the process: peak memory, CPU times
//! (steal included) and load.

use std::time::Duration;

pub(super) fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The process's peak resident memory (VmHWM) in MiB, where Linux reports it.
pub fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The CPUs' time counters of `/proc/stat`'s `cpu` line, in ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CpuTimes {
    /// user, nice, system, idle, iowait, irq, softirq and steal together.
    total: u64,
    /// Time the hypervisor ran something else while this machine wanted the CPU.
    steal: u64,
}

impl CpuTimes {
    /// Parses the aggregate `cpu` line of `/proc/stat`.
    fn parse(line: &str) -> Option<Self> {
        let mut fields = line.split_whitespace();
        if fields.next()? != "cpu" {
            return None;
        }
        let ticks: Vec<u64> = fields
            .take(8)
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        (ticks.len() == 8).then(|| Self {
            total: ticks.iter().sum(),
            steal: ticks[7],
        })
    }

    /// The stolen share of the time between `start` and `self`, in per cent.
    pub(super) fn steal_percent_since(&self, start: &Self) -> Option<f64> {
        let total = self.total.checked_sub(start.total).filter(|&t| t > 0)?;
        let steal = self.steal.checked_sub(start.steal)?;
        Some(steal as f64 * 100.0 / total as f64)
    }
}

/// The CPUs' time counters, where Linux reports them.
pub(super) fn cpu_times() -> Option<CpuTimes> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    CpuTimes::parse(text.lines().next()?)
}

/// The 1, 5 and 15 minute load averages, where Linux reports them.
pub(super) fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steal_is_read_from_the_cpu_line() {
        let start = CpuTimes::parse("cpu  532323 0 118945 356861 15467 0 7678 5432 0 0").unwrap();
        assert_eq!(start.total, 1_036_706);
        assert_eq!(start.steal, 5432);
        let end = CpuTimes::parse("cpu  532400 0 119000 356900 15467 0 7678 5457 0 0").unwrap();
        let percent = end.steal_percent_since(&start).unwrap();
        assert!((percent - 25.0 * 100.0 / 196.0).abs() < 1e-9, "{percent}");
        assert_eq!(start.steal_percent_since(&start), None);
        assert_eq!(CpuTimes::parse("cpu0 1 2 3 4 5 6 7 8 0 0"), None);
        assert_eq!(CpuTimes::parse("cpu  1 2 3"), None);
    }
}
