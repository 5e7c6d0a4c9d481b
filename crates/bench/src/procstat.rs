//! CPU time and memory of a process, from Linux `/proc`.
//!
//! The broker's numbers come from `/proc/PID/stat` and `/proc/PID/status` of the PID given
//! with `--broker-pid`; the generator's own CPU time from `/proc/self/stat`, so a run shows
//! whether the generator, not the broker, was the bottleneck.

use std::path::Path;

/// Clock ticks per second of `utime`/`stime` in `/proc/PID/stat`.
///
/// `USER_HZ` is 100 on every Linux architecture we run on; reading `sysconf` would need
/// `libc` for a constant.
pub const USER_HZ: f64 = 100.0;

/// One reading of a process's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessSample {
    /// User plus system CPU time so far, in seconds.
    pub cpu_seconds: f64,
    /// Resident set size now, in KiB (`VmRSS`).
    pub rss_kb: u64,
    /// Peak resident set size since the process started, in KiB (`VmHWM`).
    pub hwm_kb: u64,
}

/// User plus system CPU seconds from the text of `/proc/PID/stat`, or `None` if malformed.
///
/// The command name (field 2) may contain spaces and parentheses, so fields are counted
/// from the last `)`.
///
/// ```
/// let stat = "42 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0 100 0 0";
/// assert_eq!(mqgate_bench::parse_stat_cpu_seconds(stat), Some(3.0));
/// ```
pub fn parse_stat_cpu_seconds(stat: &str) -> Option<f64> {
    let after_name = stat.get(stat.rfind(')')? + 1..)?;
    // After the name: state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt
    // cmajflt utime(14) stime(15): utime is the 12th field after the name.
    let mut fields = after_name.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime.saturating_add(stime) as f64 / USER_HZ)
}

/// The value in KiB of a `Key:   123 kB` line of `/proc/PID/status`, or `None`.
///
/// ```
/// let status = "Name:\tmosquitto\nVmHWM:\t  6144 kB\nVmRSS:\t  5120 kB\n";
/// assert_eq!(mqgate_bench::parse_status_kb(status, "VmRSS"), Some(5120));
/// assert_eq!(mqgate_bench::parse_status_kb(status, "VmSwap"), None);
/// ```
pub fn parse_status_kb(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_ascii_whitespace().next()?.parse().ok()
    })
}

/// Reads `/proc/{pid}` (or `/proc/self` for `None`); `None` if the process is gone or this is
/// not Linux.
pub fn sample_process(pid: Option<u32>) -> Option<ProcessSample> {
    let dir = match pid {
        Some(pid) => format!("/proc/{pid}"),
        None => "/proc/self".to_owned(),
    };
    let dir = Path::new(&dir);
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    let status = std::fs::read_to_string(dir.join("status")).ok()?;
    Some(ProcessSample {
        cpu_seconds: parse_stat_cpu_seconds(&stat)?,
        rss_kb: parse_status_kb(&status, "VmRSS").unwrap_or(0),
        hwm_kb: parse_status_kb(&status, "VmHWM").unwrap_or(0),
    })
}

/// Parses both files' texts and returns what it found; the fuzz target and its test call this
/// to show that no input makes the parsers panic.
pub fn parse_proc_texts(stat: &str, status: &str) -> (Option<f64>, Option<u64>) {
    (
        parse_stat_cpu_seconds(stat),
        parse_status_kb(status, "VmRSS"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stat_table() {
        let cases: [(&str, Option<f64>); 5] = [
            ("1 (a) S 0 0 0 0 0 0 0 0 0 0 100 100 0", Some(2.0)),
            ("1 (a b) c) R 0 0 0 0 0 0 0 0 0 0 7 3", Some(0.1)),
            ("1 (a) S 0 0 0 0 0 0 0 0 0 0 100", None),
            ("no parenthesis 1 2 3", None),
            ("1 (a) S 0 0 0 0 0 0 0 0 0 0 x 1", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_stat_cpu_seconds(text), want, "{text}");
        }
    }

    #[test]
    fn this_process_is_readable() {
        let me = sample_process(None).expect("/proc/self on Linux");
        assert!(me.rss_kb > 0 && me.hwm_kb >= me.rss_kb);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        // The same function the fuzz target calls: any text, no panic, and a number only when
        // the text has one where it should.
        #[test]
        fn any_text_parses_without_panic(stat in ".{0,200}", status in ".{0,200}") {
            let (cpu, rss) = parse_proc_texts(&stat, &status);
            if let Some(cpu) = cpu { prop_assert!(cpu >= 0.0); }
            if rss.is_some() { prop_assert!(status.contains("VmRSS:")); }
        }

        #[test]
        fn any_bytes_pass_every_parser(data in proptest::collection::vec(any::<u8>(), 0..400)) {
            crate::parse_untrusted(&data);
        }
    }
}
