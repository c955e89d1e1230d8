//! Resident memory as the kernel counts it, from `/proc/PID/status` (Linux; `None`
//! elsewhere or when the process is gone): a run's peak for the logs, and the service's
//! watch over its runs' processes.

/// A `kB` field of `/proc/PID/status` (`/proc/self` for `None`), in KiB.
fn status_kib(pid: Option<u32>, field: &str) -> Option<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_string(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Resident memory now (VmRSS).
pub fn resident_kib(pid: Option<u32>) -> Option<u64> {
    status_kib(pid, "VmRSS")
}

/// The most resident memory so far (VmHWM).
pub fn peak_kib(pid: Option<u32>) -> Option<u64> {
    status_kib(pid, "VmHWM")
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_process_has_a_peak_at_least_its_resident_memory() {
        let (now, peak) = (super::resident_kib(None), super::peak_kib(None));
        if cfg!(target_os = "linux") {
            let (now, peak) = (now.unwrap(), peak.unwrap());
            assert!(now > 0 && peak >= now, "{now} {peak}");
        }
    }
}
