//! CPU time as Linux counts it (/proc): of a process, of each of its threads, of the machine.

use std::time::Duration;

/// One thread of a process: its id, its name (`comm`, at most 15 bytes), its time on a CPU
/// so far and its nice value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadTime {
    pub tid: u32,
    pub name: String,
    pub cpu: Duration,
    pub nice: i64,
}

/// Clock ticks (`/proc`'s unit) as a duration.
pub fn ticks(n: u64) -> Duration {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_nanos(n * 1_000_000_000 / hz)
}

/// The name and the user + system ticks in a `/proc/.../stat` line: `pid (comm) state ...`.
/// The name may hold spaces and parentheses: it ends at the last `)`.
pub fn parse_stat(stat: &str) -> Option<(String, u64)> {
    let (head, rest) = stat.rsplit_once(')')?;
    let name = head.split_once('(')?.1.to_owned();
    let fields: Vec<u64> = rest.split_whitespace().skip(11).take(2).map(|f| f.parse().ok()).collect::<Option<_>>()?;
    (fields.len() == 2).then(|| (name, fields.iter().sum()))
}

/// The nice value in a `/proc/.../stat` line (its 19th field).
pub fn parse_nice(stat: &str) -> Option<i64> {
    stat.rsplit_once(')')?.1.split_whitespace().nth(16)?.parse().ok()
}

/// The time on a CPU in a `/proc/.../schedstat` line: `<ns on CPU> <ns waiting> <slices>`.
pub fn parse_schedstat(line: &str) -> Option<Duration> {
    line.split_whitespace().next()?.parse().ok().map(Duration::from_nanos)
}

/// User + system time of a process (all its threads); zero once it is gone.
pub fn process_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    ticks(parse_stat(&stat).map_or(0, |(_, t)| t))
}

/// Every thread of a process now (threads that end between two reads take their time with them).
pub fn threads(pid: u32) -> Vec<ThreadTime> {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    entries
        .filter_map(|e| {
            let tid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
            let task = format!("/proc/{pid}/task/{tid}");
            let stat = std::fs::read_to_string(format!("{task}/stat")).ok()?;
            let (name, t) = parse_stat(&stat)?;
            // The nanoseconds the scheduler counted, where there are: a thread doing little work
            // (a muxer) has none of stat's 10 ms ticks over a few seconds.
            let exact = std::fs::read_to_string(format!("{task}/schedstat")).ok().and_then(|s| parse_schedstat(&s));
            Some(ThreadTime { tid, name, cpu: exact.unwrap_or_else(|| ticks(t)), nice: parse_nice(&stat)? })
        })
        .collect()
}

/// Time all CPUs of the machine spent not idle, from /proc/stat.
pub fn machine_busy() -> Duration {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpu: Vec<u64> =
        stat.lines().next().unwrap_or_default().split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal ...
    let idle = cpu.get(3).copied().unwrap_or(0) + cpu.get(4).copied().unwrap_or(0);
    ticks(cpu.iter().take(8).sum::<u64>().saturating_sub(idle))
}

/// The machine's CPUs (for "% of the machine").
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_gives_its_name_and_ticks_even_with_odd_names() {
        let line = "4242 (face-decode:src) S 1 2 3 4 5 6 7 8 9 10 120 30 0 0 20 0 9 0 100";
        assert_eq!(parse_stat(line), Some(("face-decode:src".to_owned(), 150)));
        assert_eq!(parse_nice(line), Some(0));
        let niced = "4243 (face-mark:src) S 1 2 3 4 5 6 7 8 9 10 120 30 0 0 30 10 9 0 100";
        assert_eq!(parse_nice(niced), Some(10));
        let odd = "7 (a) b (c)) R 1 2 3 4 5 6 7 8 9 10 1 2 0";
        assert_eq!(parse_stat(odd), Some(("a) b (c)".to_owned(), 3)));
        assert_eq!(parse_stat("7 (cut short) R 1 2"), None);
        assert_eq!(parse_stat(""), None);
        assert_eq!(parse_schedstat("188113001 12267284 517\n"), Some(Duration::from_nanos(188_113_001)));
        assert_eq!(parse_schedstat(""), None);
    }

    /// This thread's own CPU time, as the kernel counts it.
    fn own_cpu() -> Duration {
        let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: clock_gettime writes into the struct we own.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
        Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
    }

    #[test]
    fn this_process_and_its_named_threads_are_read() {
        let me = std::process::id();
        let (spun, done) = std::sync::mpsc::channel();
        let (finish, finished) = std::sync::mpsc::channel::<()>();
        let spin = std::thread::Builder::new()
            .name("cpu-test-spin".into())
            .spawn(move || {
                let mut x = 0u64;
                while own_cpu() < Duration::from_millis(200) {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                }
                spun.send(()).unwrap();
                let _ = finished.recv();
            })
            .unwrap();
        done.recv().unwrap();
        let threads = threads(me);
        let spinner = threads.iter().find(|t| t.name == "cpu-test-spin").expect("the named thread is listed");
        // 200 ms spent (counted in clock ticks of 10 ms where schedstat is missing).
        assert!(spinner.cpu >= Duration::from_millis(190), "{spinner:?}");
        // The process's time is in whole ticks.
        assert!(process_cpu(me) + Duration::from_millis(20) >= spinner.cpu, "{:?}", process_cpu(me));
        assert!(machine_busy() > Duration::ZERO);
        finish.send(()).unwrap();
        spin.join().unwrap();
    }
}
