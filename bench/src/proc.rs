//! What /proc says about a process: CPU time used and memory held.

/// The fields of /proc/<pid>/stat after the command name (which may hold spaces), the
/// state first: utime and stime are at 11 and 12, the reaped children's at 13 and 14.
fn stat(pid: u32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(text.rsplit_once(')')?.1.split_whitespace().map(str::to_owned).collect())
}

/// Clock ticks at `at` in seconds (sysconf(_SC_CLK_TCK) is 100 on Linux everywhere this runs).
fn ticks(fields: &[String], at: &[usize]) -> f64 {
    at.iter().filter_map(|i| fields.get(*i)?.parse::<f64>().ok()).sum::<f64>() / 100.0
}

/// User + system CPU seconds of a process so far.
pub fn cpu_seconds(pid: u32) -> f64 {
    stat(pid).map(|f| ticks(&f, &[11, 12])).unwrap_or(0.0)
}

/// CPU seconds of the children this process has waited for.
pub fn reaped_children_cpu() -> f64 {
    stat(std::process::id()).map(|f| ticks(&f, &[13, 14])).unwrap_or(0.0)
}

/// CPU seconds of a process with its children: those it has reaped and those still
/// running (a Postgres cluster: the postmaster and its backends).
pub fn tree_cpu_seconds(pid: u32) -> f64 {
    let own = stat(pid).map(|f| ticks(&f, &[11, 12, 13, 14])).unwrap_or(0.0);
    let parent = pid.to_string();
    let live: f64 = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(stat)
        .filter(|f| f.get(1) == Some(&parent))
        .map(|f| ticks(&f, &[11, 12]))
        .sum();
    own + live
}

/// (resident now, peak resident) in bytes.
pub fn rss(pid: u32) -> (u64, u64) {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return (0, 0) };
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (kb("VmRSS:"), kb("VmHWM:"))
}

/// CPUs of the machine (not only those this process may use: it pins itself).
pub fn cpus() -> usize {
    std::fs::read_to_string("/proc/cpuinfo")
        .map(|c| c.lines().filter(|l| l.starts_with("processor")).count())
        .unwrap_or(1)
        .max(1)
}

/// Pins a process (all its threads) to one CPU with taskset, when there is more than one.
pub fn pin(pid: u32, cpu: usize) {
    let cpus = cpus();
    if cpus < 2 {
        return;
    }
    let _ = std::process::Command::new("taskset")
        .args(["-a", "-cp", &(cpu % cpus).to_string(), &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// Lets a process (all its threads) run on every CPU again; what it starts afterwards
/// inherits that, not an earlier benchmark's pinning.
pub fn unpin(pid: u32) {
    let _ = std::process::Command::new("taskset")
        .args(["-a", "-cp", &format!("0-{}", cpus() - 1), &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}
