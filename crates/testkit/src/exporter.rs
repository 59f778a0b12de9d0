//! A synthetic Prometheus exporter for tests and the scale benchmark: `N` gauge series
//! `synth_load{series="s000042",group="g07"}` whose values have a daily rhythm, noise and rare
//! spikes, all a pure function of (series, time) so that a scrape, a backfill and a test's
//! expectation agree.
//!
//! [`Exporter::start`] serves `GET /metrics` (text format 0.0.4) on a free loopback port from its
//! own thread, one request per connection; it stops when dropped. [`openmetrics_history`] writes
//! the same values for a past interval in the OpenMetrics text format, for
//! `promtool tsdb create-blocks-from openmetrics` (a Prometheus with the last hour backfilled).

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The metric every series belongs to.
pub const METRIC: &str = "synth_load";

/// Series label value of series `i`.
pub fn series_label(i: usize) -> String {
    format!("s{i:06}")
}

/// Group label value of series `i` (100 series per group).
pub fn group_label(i: usize) -> String {
    format!("g{:03}", i / 100)
}

fn mix(mut x: u64) -> u64 {
    // splitmix64's finaliser: a well-spread hash of the input.
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Uniform in [0, 1) from (series, slot).
fn uniform(series: usize, slot: i64, salt: u64) -> f64 {
    let h = mix(mix(series as u64 ^ salt).wrapping_add(slot as u64));
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// The value of series `i` at unix second `t`: a level per series, a daily wave, noise that
/// changes every 5 s, and a spike in about one 5-minute slot in 5,000.
pub fn value(i: usize, t: i64) -> f64 {
    let level = 50.0 + 100.0 * uniform(i, 0, 1);
    let phase = std::f64::consts::TAU * uniform(i, 0, 2);
    let day = std::f64::consts::TAU * (t.rem_euclid(86_400) as f64) / 86_400.0;
    let wave = 0.3 * level * (day + phase).sin();
    let slot = t.div_euclid(5);
    let noise = 0.05 * level * (uniform(i, slot, 3) + uniform(i, slot, 4) - 1.0);
    let spike = if uniform(i, t.div_euclid(300), 5) < 1.0 / 5000.0 {
        2.0 * level
    } else {
        0.0
    };
    level + wave + noise + spike
}

/// The exposition of `n` series at unix second `t`.
pub fn exposition(n: usize, t: i64) -> String {
    let mut s = String::with_capacity(64 * n + 64);
    let _ = writeln!(s, "# HELP {METRIC} Synthetic load (pulsewatch tests).");
    let _ = writeln!(s, "# TYPE {METRIC} gauge");
    for i in 0..n {
        let _ = writeln!(
            s,
            "{METRIC}{{series=\"{}\",group=\"{}\"}} {:.4}",
            series_label(i),
            group_label(i),
            value(i, t)
        );
    }
    s
}

/// OpenMetrics text of `n` series every `step` seconds over `[from, to)` (for promtool), with
/// the labels a scrape of `exporter` by job `synth` adds, so history and scrapes are one series.
pub fn openmetrics_history(exporter: &Exporter, n: usize, from: i64, to: i64, step: i64) -> String {
    let mut out = Vec::new();
    write_openmetrics_history(&mut out, exporter, n, from, to, step).expect("write to memory");
    String::from_utf8(out).expect("ASCII")
}

/// [`openmetrics_history`] written to `w` as it goes (millions of lines for a benchmark).
pub fn write_openmetrics_history(
    w: &mut impl Write,
    exporter: &Exporter,
    n: usize,
    from: i64,
    to: i64,
    step: i64,
) -> std::io::Result<()> {
    let target = exporter.target();
    writeln!(w, "# HELP {METRIC} Synthetic load (pulsewatch tests).")?;
    writeln!(w, "# TYPE {METRIC} gauge")?;
    for i in 0..n {
        let (series, group) = (series_label(i), group_label(i));
        let mut t = from;
        while t < to {
            writeln!(
                w,
                "{METRIC}{{series=\"{series}\",group=\"{group}\",instance=\"{target}\",job=\"synth\"}} {:.4} {t}",
                value(i, t)
            )?;
            t += step.max(1);
        }
    }
    w.write_all(b"# EOF\n")
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A running exporter; see the module doc.
pub struct Exporter {
    port: u16,
    series: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    scrapes: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl Exporter {
    /// Serves `n` series on a free 127.0.0.1 port.
    pub fn start(n: usize) -> Exporter {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the exporter");
        let port = listener.local_addr().expect("exporter address").port();
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let series = Arc::new(AtomicUsize::new(n));
        let stop = Arc::new(AtomicBool::new(false));
        let scrapes = Arc::new(AtomicUsize::new(0));
        let (s, st, sc) = (series.clone(), stop.clone(), scrapes.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = serve(stream, s.load(Ordering::Relaxed));
                        sc.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Exporter {
            port,
            series,
            stop,
            scrapes,
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host:port`, for a scrape config.
    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Changes the number of series served (new ones appear, the last ones vanish).
    pub fn set_series(&self, n: usize) {
        self.series.store(n, Ordering::Relaxed);
    }

    /// Scrapes served so far.
    pub fn scrapes(&self) -> usize {
        self.scrapes.load(Ordering::Relaxed)
    }
}

fn serve(mut stream: TcpStream, n: usize) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = [0u8; 4096];
    let mut head = Vec::new();
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        let k = stream.read(&mut buf)?;
        if k == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..k]);
    }
    let body = exposition(n, now());
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
