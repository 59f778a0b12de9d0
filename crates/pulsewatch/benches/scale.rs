//! Fleet scale: the headless engine watching N PromQL series through a real Prometheus.
//!
//! For each N (default 1,000, 10,000 and 50,000; or the numbers given after `--`), it starts the
//! synthetic exporter (`testkit::exporter`: daily rhythm, noise, rare spikes), writes the last
//! hour of the same values every 15 s as OpenMetrics and imports it with
//! `promtool tsdb create-blocks-from openmetrics`, starts Debian's Prometheus scraping the
//! exporter every 5 s, then runs `pulsewatch --headless --source prometheus` (one query, step
//! 15 s, window 1 h, default detector and forecasts, export off, API on) for `SCALE_SECONDS`
//! (default 180) and samples it every second: peak RSS (VmHWM), CPU in cores over the steady
//! part (after the first `SCALE_WARMUP` seconds, default 90), the poll latency the API reports,
//! and bytes per series. Then it times `pulsewatch --once` over the same Prometheus.
//!
//! `cargo bench -p pulsewatch --bench scale [-- 1000 10000]`. It prints a table; goals (issue 14):
//! 10,000 series ≤ 400 MB and ≤ 0.5 core, 50,000 ≤ 2 GB, `--once` over 10,000 ≤ 15 s.
//! `SCALE_BINS=/path/a:/path/b` runs other pulsewatch binaries instead, each N for each binary
//! in turn (an A/B comparison in one run); the `binary` column names them.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testkit::exporter::{self, Exporter};
use testkit::servers::{self, History};

const STEP: i64 = 15;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// (resident KB, peak resident KB, CPU ticks) of `pid`.
fn sample(pid: u32) -> Option<(u64, u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some((kb("VmRSS:")?, kb("VmHWM:")?, ticks))
}

fn ticks_per_second() -> f64 {
    // sysconf(_SC_CLK_TCK) is 100 on every Linux this runs on.
    100.0
}

struct Row {
    n: usize,
    peak_mb: f64,
    steady_mb: f64,
    cores: f64,
    poll_ms: f64,
    once_s: f64,
    series_seen: u64,
}

fn config(dir: &Path, prom: &str, listen: &str) -> std::path::PathBuf {
    let cfg = format!(
        "[source]\nkind = \"prometheus\"\n\n[prometheus]\nurl = \"{prom}\"\nstep = \"{STEP}s\"\n\
         window = \"1h\"\ntimeout = \"60s\"\nqueries = [{{ name = \"synth\", query = \"{}\" }}]\n\n\
         [pushgateway]\nurl = \"\"\n\n[api]\nlisten = \"{listen}\"\n",
        exporter::METRIC
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, cfg).expect("write config.toml");
    path
}

fn api_status(listen: &str) -> Option<serde_json::Value> {
    let body = servers::http_get(&format!("http://{listen}/api/v1/status"))?;
    serde_json::from_str(&body).ok()
}

fn run(bin: &Path, n: usize, seconds: u64, warmup: u64) -> Option<Row> {
    let exp = Exporter::start(n);
    let dir = tempfile::tempdir().expect("tempdir");
    let t = now();
    let hist = dir.path().join("history.om");
    {
        let f = std::fs::File::create(&hist).expect("history file");
        let mut w = BufWriter::new(f);
        exporter::write_openmetrics_history(&mut w, &exp, n, t - 3600, t - 30, STEP)
            .expect("write history");
        w.flush().expect("flush history");
    }
    eprintln!("N = {n}: importing the last hour, starting Prometheus …");
    let prom = servers::prometheus_scraping(&[exp.target()], 5, History::File(&hist))?;
    let _ = std::fs::remove_file(&hist);
    // Wait until the scrapes have every series.
    let t0 = Instant::now();
    loop {
        let r = servers::query(&prom, &format!("count({})", exporter::METRIC));
        let c = r
            .first()
            .and_then(|v| v["value"][1].as_str())
            .and_then(|s| s.parse::<usize>().ok())
            .unwrap_or(0);
        if c >= n {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "Prometheus has {c} of {n} series"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let port = servers::free_port();
    let listen = format!("127.0.0.1:{port}");
    let cfg = config(dir.path(), &prom.url(), &listen);
    let mut child = Command::new(bin)
        .args(["--headless", "--config"])
        .arg(&cfg)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start pulsewatch --headless");
    let pid = child.id();
    let start = Instant::now();
    let mut steady: Option<(Instant, u64)> = None;
    let (mut last_ticks, mut peak_kb, mut rss_sum, mut rss_n) = (0, 0, 0u64, 0u64);
    let mut polls = Vec::new();
    let mut series_seen = 0;
    while start.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_secs(1));
        let Some((rss, hwm, ticks)) = sample(pid) else {
            eprintln!("pulsewatch exited early");
            break;
        };
        peak_kb = peak_kb.max(hwm);
        last_ticks = ticks;
        if start.elapsed() >= Duration::from_secs(warmup) {
            if steady.is_none() {
                steady = Some((Instant::now(), ticks));
            }
            rss_sum += rss;
            rss_n += 1;
            if let Some(st) = api_status(&listen) {
                if let Some(p) = st["status"]["poll_seconds"].as_f64() {
                    polls.push(p);
                }
                series_seen = st["series"].as_u64().unwrap_or(series_seen);
            }
        }
    }
    let cores = steady.map_or(f64::NAN, |(t, k)| {
        (last_ticks - k) as f64 / ticks_per_second() / t.elapsed().as_secs_f64()
    });
    let _ = child.kill();
    let _ = child.wait();
    polls.sort_by(f64::total_cmp);
    let poll_ms = polls.get(polls.len() / 2).map_or(f64::NAN, |p| p * 1000.0);
    let t = Instant::now();
    let once = Command::new(bin)
        .args(["--once", "--config"])
        .arg(&cfg)
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run pulsewatch --once");
    let once_s = t.elapsed().as_secs_f64();
    if !once.status.success() {
        eprintln!(
            "--once failed: {}",
            String::from_utf8_lossy(&once.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
    }
    drop(prom);
    drop(exp);
    Some(Row {
        n,
        peak_mb: peak_kb as f64 / 1024.0,
        steady_mb: rss_sum as f64 / rss_n.max(1) as f64 / 1024.0,
        cores,
        poll_ms,
        once_s,
        series_seen,
    })
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.replace('_', "").parse().ok())
        .collect();
    let ns = if args.is_empty() {
        vec![1_000, 10_000, 50_000]
    } else {
        args
    };
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (seconds, warmup) = (env("SCALE_SECONDS", 180), env("SCALE_WARMUP", 90));
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "scale: headless pulsewatch over N PromQL series (step {STEP} s, window 1 h, Prometheus \
         scraping every 5 s, last hour backfilled); {seconds} s run, steady after {warmup} s; {cpus} CPUs"
    );
    let bins: Vec<std::path::PathBuf> = match std::env::var("SCALE_BINS") {
        Ok(v) if !v.trim().is_empty() => v.split(':').map(std::path::PathBuf::from).collect(),
        _ => vec![Path::new(env!("CARGO_BIN_EXE_pulsewatch")).to_path_buf()],
    };
    println!(
        "{:>7} {:>10} {:>11} {:>9} {:>10} {:>11} {:>9} {:>8}  binary",
        "series", "peak MB", "steady MB", "cores", "poll ms", "KB/series", "--once s", "seen"
    );
    for n in ns {
        for bin in &bins {
            let Some(r) = run(bin, n, seconds, warmup) else {
                println!("{n:>7} SKIPPED (prometheus or promtool missing)");
                continue;
            };
            print_row(&r, bin);
        }
    }
}

fn print_row(r: &Row, bin: &Path) {
    println!(
        "{:>7} {:>10.0} {:>11.0} {:>9.2} {:>10.0} {:>11.1} {:>9.1} {:>8}  {}",
        r.n,
        r.peak_mb,
        r.steady_mb,
        r.cores,
        r.poll_ms,
        r.steady_mb * 1024.0 / r.n as f64,
        r.once_s,
        r.series_seen,
        bin.display()
    );
}
