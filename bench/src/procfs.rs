//! Readings from `/proc`: a process's resident memory and CPU time, and one core's busy time
//! (softirq included, which is where loopback TCP work lands).

use std::fs;
use std::io;
use std::time::Instant;

/// Clock ticks per second in `/proc` CPU times: Linux's USER_HZ, 100 on every architecture
/// this runs on (reading `sysconf(_SC_CLK_TCK)` would need `unsafe` or another crate).
pub(crate) const TICKS_PER_SEC: f64 = 100.0;

/// Which process to read: ours, or another by pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pid {
    /// `/proc/self`.
    Own,
    /// `/proc/<pid>`.
    Other(u32),
}

impl Pid {
    fn dir(self) -> String {
        match self {
            Pid::Own => String::from("/proc/self"),
            Pid::Other(pid) => format!("/proc/{pid}"),
        }
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// Resident set size in KiB (`VmRSS` of `/proc/<pid>/status`).
pub(crate) fn rss_kib(pid: Pid) -> io::Result<u64> {
    let status = fs::read_to_string(format!("{}/status", pid.dir()))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| invalid("no VmRSS in /proc/<pid>/status"))
}

/// User plus system CPU time of every thread of the process, in ticks.
pub(crate) fn cpu_ticks(pid: Pid) -> io::Result<u64> {
    let stat = fs::read_to_string(format!("{}/stat", pid.dir()))?;
    parse_process_stat(&stat).ok_or_else(|| invalid("unexpected /proc/<pid>/stat"))
}

/// `utime + stime` from a `/proc/<pid>/stat` line. The command name in parentheses may hold
/// spaces, so fields are counted from the last `)`.
fn parse_process_stat(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    // After the name: state is field 3 of the line; utime and stime are fields 14 and 15.
    let mut fields = after.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The pid of `ksoftirqd/<cpu>`, the kernel thread that takes over softirq work (such as
/// loopback TCP receive) when there is too much of it to run on the way out of interrupts.
pub(crate) fn ksoftirqd(cpu: usize) -> Option<u32> {
    let name = format!("ksoftirqd/{cpu}");
    fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let comm = fs::read_to_string(entry.path().join("comm")).ok()?;
        (comm.trim_end() == name).then_some(pid)
    })
}

/// One core's time in ticks, from `/proc/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct CoreTimes {
    /// user + nice + system + irq + softirq + steal.
    pub(crate) busy: u64,
    /// busy + idle + iowait.
    pub(crate) total: u64,
}

impl CoreTimes {
    /// The busy fraction between `earlier` and `self`.
    pub(crate) fn busy_since(self, earlier: CoreTimes) -> f64 {
        let total = self.total.saturating_sub(earlier.total);
        if total == 0 {
            return 0.0;
        }
        self.busy.saturating_sub(earlier.busy) as f64 / total as f64
    }
}

/// The times of core `cpu`.
pub(crate) fn core_times(cpu: usize) -> io::Result<CoreTimes> {
    let stat = fs::read_to_string("/proc/stat")?;
    parse_core_times(&stat, cpu).ok_or_else(|| invalid("no such cpu line in /proc/stat"))
}

fn parse_core_times(stat: &str, cpu: usize) -> Option<CoreTimes> {
    let name = format!("cpu{cpu}");
    let line = stat
        .lines()
        .find(|line| line.split_whitespace().next() == Some(name.as_str()))?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    let [user, nice, system, idle, iowait, irq, softirq, steal, ..] = values[..] else {
        return None;
    };
    let busy = user + nice + system + irq + softirq + steal;
    Some(CoreTimes {
        busy,
        total: busy + idle + iowait,
    })
}

/// CPU counters at one instant.
pub(crate) struct Snapshot {
    pub(crate) at: Instant,
    pub(crate) own_ticks: u64,
    pub(crate) server_ticks: Option<u64>,
    pub(crate) core: Option<CoreTimes>,
    /// The server core's `ksoftirqd`, which runs softirq work the server caused when there is
    /// a lot of it (it may also run other processes' softirq work, rarely on loopback).
    pub(crate) ksoftirqd_ticks: Option<u64>,
}

impl Snapshot {
    /// Reads them now: ours, the server's if given, its core's if given.
    pub(crate) fn take(server: Option<Pid>, core: Option<usize>) -> Result<Snapshot, String> {
        let read = |what: &str, e: std::io::Error| format!("cannot read {what}: {e}");
        Ok(Snapshot {
            ksoftirqd_ticks: core
                .and_then(ksoftirqd)
                .and_then(|pid| cpu_ticks(Pid::Other(pid)).ok()),
            at: Instant::now(),
            own_ticks: cpu_ticks(Pid::Own).map_err(|e| read("our CPU time", e))?,
            server_ticks: server
                .map(cpu_ticks)
                .transpose()
                .map_err(|e| read("the server's CPU time", e))?,
            core: core
                .map(core_times)
                .transpose()
                .map_err(|e| read("/proc/stat", e))?,
        })
    }
}

/// CPU use in cores between two tick counts `secs` apart (0 if either is missing).
pub(crate) fn cores(from: Option<u64>, to: Option<u64>, secs: f64) -> f64 {
    match (from, to) {
        (Some(from), Some(to)) if secs > 0.0 => {
            to.saturating_sub(from) as f64 / TICKS_PER_SEC / secs
        }
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_stat() {
        let line = "4242 (a b) c) S 1 2 3 4 5 6 7 8 9 10 123 45 0 0 20 0 1 0 100 200 300";
        assert_eq!(parse_process_stat(line), Some(168));
        assert_eq!(parse_process_stat("garbage"), None);
    }

    #[test]
    fn core_line() {
        let stat =
            "cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 10 1 20 100 5 2 30 0 0 0\ncpu1 1 1 1 1 1 1 1 1 0 0\n";
        assert_eq!(
            parse_core_times(stat, 0),
            Some(CoreTimes {
                busy: 63,
                total: 168
            })
        );
        assert_eq!(parse_core_times(stat, 2), None);
        let a = CoreTimes {
            busy: 10,
            total: 100,
        };
        let b = CoreTimes {
            busy: 60,
            total: 200,
        };
        assert_eq!(b.busy_since(a), 0.5);
    }

    #[test]
    fn own_process() {
        assert!(rss_kib(Pid::Own).unwrap() > 0);
        assert!(ksoftirqd(0).is_some());
        cpu_ticks(Pid::Own).unwrap();
        core_times(0).unwrap();
    }
}
