//! Idle cost of the real TUI: `pulsewatch` in tmux at 200×60 replaying the whole NAB corpus at
//! the default speed and tick, with export off. After a 10 s warm-up, CPU time (utime + stime
//! from /proc/<pid>/stat) is measured over 30 s, and resident memory (VmRSS, VmHWM) read from
//! /proc/<pid>/status. Goals: ≤ 1 % of a core, ≤ 64 MB. Linux only; needs tmux and the corpus.
//! Run with `cargo bench --bench tui_idle` (prints figures; no criterion statistics).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

fn ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn status_kb(pid: &str, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let root = std::env::var_os("PULSEWATCH_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| testkit::corpus::repo_root().join("data/nab"));
    if !root.join("data").is_dir() {
        eprintln!("tui_idle skipped: no NAB corpus at {}", root.display());
        return;
    }
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("tui_idle skipped: tmux not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = format!("pulsewatch-idle-{}", std::process::id());
    let script = format!(
        "cd {d} && PULSEWATCH_DATA_DIR={r} PULSEWATCH_PUSHGATEWAY_URL= PULSEWATCH_LOGGING_DIR={d}/logs \
         PULSEWATCH_EVENTS_FILE={d}/events.jsonl sh -c 'echo $$ > {d}/pid; exec {bin}'",
        d = dir.path().display(),
        r = root.display(),
        bin = env!("CARGO_BIN_EXE_pulsewatch"),
    );
    let ok = Command::new("tmux")
        .args([
            "-L",
            &socket,
            "new-session",
            "-d",
            "-x",
            "200",
            "-y",
            "60",
            "sh",
            "-c",
            &script,
        ])
        .status()
        .expect("tmux");
    assert!(ok.success());
    let t0 = Instant::now();
    let pid = loop {
        if let Ok(p) = std::fs::read_to_string(dir.path().join("pid"))
            && !p.trim().is_empty()
        {
            break p.trim().to_string();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "pulsewatch did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_secs(10));
    let hz = 100.0; // USER_HZ on Linux
    let (c0, w0) = (ticks(&pid).expect("stat"), Instant::now());
    std::thread::sleep(Duration::from_secs(30));
    let (c1, w1) = (ticks(&pid).expect("stat"), Instant::now());
    let cpu = (c1 - c0) as f64 / hz / (w1 - w0).as_secs_f64() * 100.0;
    let rss = status_kb(&pid, "VmRSS:").unwrap_or(0) as f64 / 1024.0;
    let hwm = status_kb(&pid, "VmHWM:").unwrap_or(0) as f64 / 1024.0;
    let _ = Command::new("tmux")
        .args(["-L", &socket, "kill-server"])
        .status();
    println!(
        "tui_idle: 58 NAB series replaying at the default speed, 200x60, default tick: \
         CPU {cpu:.2} % of one core over 30 s, RSS {rss:.1} MB (peak {hwm:.1} MB)"
    );
}
