//! Logging with `tracing` to files only, never to the terminal (which a TUI may own).
//!
//! `<dir>/pulsewatch.log` receives everything; `<dir>/ingest.log` the ingest component (the
//! sources, the corpus reader and downloader); `<dir>/analysis.log` detection, forecasting,
//! retraining and evaluation (see `COMPONENTS`). The level comes from
//! `[logging] level` (a level or a tracing filter directive).

use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::filter::{EnvFilter, filter_fn};
use tracing_subscriber::prelude::*;

use pulsewatch_core::config::LoggingConfig;

/// Keeps the background log writers alive; logs are flushed when it is dropped.
pub struct LogGuard {
    _guards: Vec<WorkerGuard>,
}

/// Log files by target prefix: the explicit `pulsewatch::<component>` targets, and the modules
/// of each crate that belong to the component.
const COMPONENTS: &[(&str, &[&str])] = &[
    (
        "ingest.log",
        &[
            "pulsewatch::ingest",
            "pulsewatch_core::nab",
            "pulsewatch_engine::sources",
        ],
    ),
    (
        "analysis.log",
        &[
            "pulsewatch::analysis",
            "pulsewatch::forecast",
            "pulsewatch_core::detect",
            "pulsewatch_core::forecast",
            "pulsewatch_core::eval",
            "pulsewatch_core::store",
            "pulsewatch_engine::analysis",
            "pulsewatch_engine::forecast_service",
            "pulsewatch_engine::retrain",
        ],
    ),
];

/// Installs the global subscriber writing to `cfg.dir`. Fails if the directory cannot be created
/// or the level is not a valid filter.
pub fn init(cfg: &LoggingConfig) -> Result<LogGuard, String> {
    let dir: &Path = &cfg.dir;
    std::fs::create_dir_all(dir).map_err(|e| format!("logging.dir {}: {e}", dir.display()))?;
    let filter = |_: ()| {
        EnvFilter::builder()
            .parse(&cfg.level)
            .map_err(|e| format!("logging.level {:?}: {e}", cfg.level))
    };
    let mut guards = Vec::new();
    let (all, g) =
        tracing_appender::non_blocking(tracing_appender::rolling::never(dir, "pulsewatch.log"));
    guards.push(g);
    let mut layers = vec![
        tracing_subscriber::fmt::layer()
            .with_writer(all)
            .with_ansi(false)
            .with_filter(filter(())?)
            .boxed(),
    ];
    for (file, targets) in COMPONENTS {
        let (w, g) = tracing_appender::non_blocking(tracing_appender::rolling::never(dir, file));
        guards.push(g);
        let targets: &'static [&'static str] = targets;
        layers.push(
            tracing_subscriber::fmt::layer()
                .with_writer(w)
                .with_ansi(false)
                .with_filter(filter(())?)
                .with_filter(filter_fn(move |m| {
                    targets.iter().any(|t| m.target().starts_with(t))
                }))
                .boxed(),
        );
    }
    tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .map_err(|e| format!("cannot install the logger: {e}"))?;
    Ok(LogGuard { _guards: guards })
}
