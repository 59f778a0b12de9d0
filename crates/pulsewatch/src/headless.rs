//! Headless front-end: the engine with its exporters, without a terminal UI (used with
//! `--headless`, or when stdout is not a terminal); a status line goes to stderr.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use color_eyre::eyre::Result;

use pulsewatch_core::config::Config;
use pulsewatch_core::domain::SourceKind;
use pulsewatch_engine::services::{Services, shutdown_signal};

/// Long-running headless mode: the engine, the pusher and (with `listen`) the API, until Ctrl-C
/// or SIGTERM; prints a status line to stderr every `every`.
pub async fn run(
    cfg: &Config,
    kind: SourceKind,
    listen: Option<SocketAddr>,
    every: Duration,
) -> Result<()> {
    let services = Services::start(cfg, kind, listen).await?;
    if let Some(bound) = services.api_addr {
        eprintln!("pulsewatch: serving /metrics and /api/v1 on http://{bound}");
    }
    let push = &services.push;
    eprintln!(
        "pulsewatch: headless, source {kind}, detector {}; Ctrl-C stops{}",
        cfg.detector.name,
        push.as_ref()
            .map(|p| format!("; pushing to {}", p.status.borrow().url))
            .unwrap_or_default()
    );
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    let signal = shutdown_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            _ = &mut signal => break,
            _ = tick.tick() => {
                let snap = services.engine.latest();
                let src = snap.status.as_ref().map_or("starting".to_string(), |s| {
                    format!("{}{}", if s.healthy { "" } else { "DOWN: " }, s.message)
                });
                let pushed = push.as_ref().map_or("push off".to_string(), |p| {
                    let s = p.status.borrow();
                    if s.ok {
                        format!("push ok ({} pushes, last {:.0} ms)", s.pushes, s.last_seconds * 1000.0)
                    } else if s.absent_default() {
                        format!("push: none at {}", s.base_url())
                    } else if s.idle {
                        "push pending".into()
                    } else {
                        format!("push FAILING ({} failures): {}", s.failures, s.error)
                    }
                });
                let mut err = std::io::stderr().lock();
                let _ = writeln!(
                    err,
                    "{kind}: {src} | {} points, {} anomalies | {pushed}",
                    snap.ingested(),
                    snap.anomalies()
                );
            }
        }
    }
    eprintln!("pulsewatch: stopping");
    if let Some(e) = services.stop(cfg.pushgateway.delete_on_exit).await {
        eprintln!("pulsewatch: {e}");
    }
    Ok(())
}
