//! Local host source: this machine's CPU, memory and network, read directly (through `sysinfo`:
//! /proc on Linux, the native APIs elsewhere), so monitoring works with no Prometheus at all.
//!
//! Series (category `host`): `cpu_busy` and `memory_used` (ratios 0..1),
//! `network_receive_bytes_per_second`, `network_transmit_bytes_per_second` and
//! `network_errors_per_second` (summed over every interface except loopback).

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::source::{SeriesInfo, SourceEvent, SourceKind, SourceStatus, unix_now};
use pulsewatch_core::detect::Point;
use pulsewatch_core::domain::HOST_INSTANCE;

/// The series the host source produces, in order.
pub const SERIES: [&str; 5] = [
    "cpu_busy",
    "memory_used",
    "network_receive_bytes_per_second",
    "network_transmit_bytes_per_second",
    "network_errors_per_second",
];

/// Identity of a host series.
pub fn info(name: &str) -> SeriesInfo {
    SeriesInfo {
        id: name.to_string(),
        name: name.to_string(),
        category: "host".into(),
        source: SourceKind::Host,
        instance: Some(HOST_INSTANCE.to_string()),
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct NetTotals {
    rx: u64,
    tx: u64,
    errors: u64,
}

/// Samples this machine. The first [`HostSampler::sample`] primes the counters (CPU usage and
/// network rates are differences between two readings).
pub struct HostSampler {
    sys: sysinfo::System,
    nets: sysinfo::Networks,
    prev: Option<(Instant, NetTotals)>,
}

impl HostSampler {
    pub fn new() -> Result<Self, String> {
        let mut sys =
            sysinfo::System::new().map_err(|e| format!("cannot read this host's metrics: {e}"))?;
        sys.refresh_cpu_usage();
        let nets = sysinfo::Networks::new_with_refreshed_list()
            .map_err(|e| format!("cannot list network interfaces: {e}"))?;
        Ok(HostSampler {
            sys,
            nets,
            prev: None,
        })
    }

    fn net_totals(&self) -> NetTotals {
        let mut t = NetTotals::default();
        for (name, n) in self.nets.iter() {
            if name.to_string_lossy() == "lo" {
                continue;
            }
            t.rx += n.total_received();
            t.tx += n.total_transmitted();
            t.errors += n.total_errors_on_received() + n.total_errors_on_transmitted();
        }
        t
    }

    /// One reading of every series in [`SERIES`] order, stamped `now`; `None` for a series that
    /// has no value yet (rates on the first reading).
    pub fn sample(&mut self, now: i64) -> Vec<(SeriesInfo, Option<Point>)> {
        self.sys.refresh_cpu_usage();
        self.sys.refresh_memory();
        self.nets.refresh(true);
        let at = Instant::now();
        let totals = self.net_totals();
        let point = |value: f64| {
            value.is_finite().then_some(Point {
                timestamp: now,
                value,
            })
        };
        let cpu = f64::from(self.sys.global_cpu_usage()) / 100.0;
        let total = self.sys.total_memory() as f64;
        let mem = if total > 0.0 {
            1.0 - self.sys.available_memory() as f64 / total
        } else {
            f64::NAN
        };
        let rates = self.prev.map(|(t0, p)| {
            let dt = at.duration_since(t0).as_secs_f64().max(1e-3);
            let rate = |a: u64, b: u64| a.saturating_sub(b) as f64 / dt;
            (
                rate(totals.rx, p.rx),
                rate(totals.tx, p.tx),
                rate(totals.errors, p.errors),
            )
        });
        self.prev = Some((at, totals));
        let values = [
            point(cpu),
            point(mem),
            rates.and_then(|r| point(r.0)),
            rates.and_then(|r| point(r.1)),
            rates.and_then(|r| point(r.2)),
        ];
        SERIES
            .iter()
            .zip(values)
            .map(|(name, p)| (info(name), p))
            .collect()
    }
}

/// Runs the source: a reading every `interval`, until the engine goes away.
/// One reading of every host series as source events (the one-shot read of `--once`): rates
/// need two samples, so it samples, waits one second and samples again.
pub async fn read_once() -> Result<Vec<SourceEvent>, String> {
    let mut sampler = HostSampler::new()?;
    sampler.sample(unix_now());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let now = unix_now();
    let readings = sampler.sample(now);
    let got = readings.iter().filter(|(_, p)| p.is_some()).count();
    let mut out = vec![SourceEvent::Status(SourceStatus {
        source: SourceKind::Host,
        target: "localhost".into(),
        healthy: got > 0,
        message: format!("{got} series"),
        last_ok: now,
        poll_seconds: None,
    })];
    for (info, p) in readings {
        if let Some(p) = p {
            out.push(SourceEvent::Points {
                info,
                points: vec![p],
                restart: false,
            });
        }
    }
    Ok(out)
}

pub async fn run(interval: Duration, tx: mpsc::Sender<SourceEvent>) {
    let status = |healthy: bool, message: String, last_ok: i64| {
        SourceEvent::Status(SourceStatus {
            source: SourceKind::Host,
            target: "localhost".into(),
            healthy,
            message,
            last_ok,
            poll_seconds: None,
        })
    };
    let mut sampler = match HostSampler::new() {
        Ok(s) => s,
        Err(e) => {
            let _ = tx.send(status(false, e, 0)).await;
            return;
        }
    };
    let mut tick = tokio::time::interval(interval.max(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let now = unix_now();
        let readings = sampler.sample(now);
        let got = readings.iter().filter(|(_, p)| p.is_some()).count();
        for (info, p) in readings {
            if let Some(p) = p {
                let ev = SourceEvent::Points {
                    info,
                    points: vec![p],
                    restart: false,
                };
                if tx.send(ev).await.is_err() {
                    return;
                }
            }
        }
        let msg = format!(
            "{got} series every {}",
            humantime::format_duration(interval)
        );
        if tx.send(status(got > 0, msg, now)).await.is_err() {
            return;
        }
    }
}
