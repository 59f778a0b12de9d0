//! NAB replay: streams corpus series as if they were live, `speed` points per second per series,
//! with pause/resume and an optional loop at the end.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

use super::source::{SeriesInfo, SourceEvent, SourceKind, SourceStatus, unix_now};
use pulsewatch_core::detect::Point;
use pulsewatch_core::nab::Series;

/// How often the replay emits a batch (each series advances `speed × tick` points, carrying
/// fractions over).
pub const TICK: Duration = Duration::from_millis(100);

/// What the engine can change while the replay runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplayControl {
    pub paused: bool,
    /// Points per second per series.
    pub speed: f64,
}

/// Identity of a NAB series as a live series.
pub fn info(s: &Series) -> SeriesInfo {
    SeriesInfo {
        id: s.key.clone(),
        name: s.name.clone(),
        category: s.category.clone(),
        source: SourceKind::Nab,
        instance: None,
    }
}

/// The whole of `series` at once, as the replay would send it: a status, then every series'
/// points in one batch (the one-shot read of `--once`).
pub fn read_all(series: &[Series], target: &str) -> Vec<SourceEvent> {
    let points: usize = series.iter().map(Series::len).sum();
    let mut out = Vec::with_capacity(series.len() + 1);
    out.push(SourceEvent::Status(SourceStatus {
        source: SourceKind::Nab,
        target: target.to_string(),
        healthy: true,
        message: format!("{} series, {points} points", series.len()),
        last_ok: unix_now(),
        poll_seconds: None,
    }));
    for s in series {
        out.push(SourceEvent::Points {
            info: info(s),
            points: s.points(),
            restart: false,
        });
    }
    out
}

/// Runs the replay until the engine goes away (`tx` closed) or every series has ended (when not
/// looping). `target` names the corpus in status messages.
pub async fn run(
    series: Arc<Vec<Series>>,
    target: String,
    loop_at_end: bool,
    mut control: watch::Receiver<ReplayControl>,
    tx: mpsc::Sender<SourceEvent>,
) {
    let infos: Vec<SeriesInfo> = series.iter().map(info).collect();
    let mut pos = vec![0usize; series.len()];
    let mut budget = 0.0f64;
    let status = |message: String| {
        SourceEvent::Status(SourceStatus {
            source: SourceKind::Nab,
            target: target.clone(),
            healthy: true,
            message,
            last_ok: unix_now(),
            poll_seconds: None,
        })
    };
    let describe = |c: &ReplayControl| {
        if c.paused {
            format!("{} series, paused", series.len())
        } else {
            format!("{} series at {} points/s", series.len(), c.speed)
        }
    };
    let mut last = *control.borrow();
    if tx.send(status(describe(&last))).await.is_err() {
        return;
    }
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut prev = Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = control.changed() => {
                if changed.is_err() {
                    return;
                }
                let now = *control.borrow_and_update();
                if now != last {
                    last = now;
                    if tx.send(status(describe(&now))).await.is_err() {
                        return;
                    }
                }
                continue;
            }
        }
        let now = Instant::now();
        let dt = now.duration_since(prev).as_secs_f64();
        prev = now;
        let c = *control.borrow();
        if c.paused || c.speed.is_nan() || c.speed <= 0.0 {
            continue;
        }
        budget += c.speed * dt;
        let n = budget.floor();
        budget -= n;
        let n = n as usize;
        if n == 0 {
            continue;
        }
        let mut active = 0;
        for (i, s) in series.iter().enumerate() {
            let mut restart = false;
            if pos[i] >= s.len() {
                if !loop_at_end || s.is_empty() {
                    continue;
                }
                pos[i] = 0;
                restart = true;
            }
            active += 1;
            let end = (pos[i] + n).min(s.len());
            let points: Vec<Point> = (pos[i]..end)
                .map(|k| Point {
                    timestamp: s.timestamps[k],
                    value: s.values[k],
                })
                .collect();
            pos[i] = end;
            let ev = SourceEvent::Points {
                info: infos[i].clone(),
                points,
                restart,
            };
            if tx.send(ev).await.is_err() {
                return;
            }
        }
        if active == 0 {
            let _ = tx
                .send(status(format!("{} series, replay finished", series.len())))
                .await;
            return;
        }
    }
}
