//! pulsewatch-engine: the one pipeline every front-end runs.
//!
//! ```text
//!   sources ──SourceEvent──► engine ──watch<Arc<Snapshot>>──► export (Pushgateway, /metrics, API)
//!   (replay, promql, host)    │  ▲                         └──► front-ends (TUI, headless, --once)
//!                             │  └── Control (pause, speed, retrain, spike, analysis jobs)
//!                             ├──► forecast_service (background fits)
//!                             └──► retrain (blocking pool)
//! ```
//!
//! * [`sources`]: replay, PromQL and host sources, and the NAB downloader.
//! * [`engine`]: one detector per series, snapshots on a watch channel, a control channel back.
//! * [`forecast_service`]: background forecast fits with snapshots of their own.
//! * [`analysis`]: spike tests and held-out accuracy, run by the engine for its front-ends.
//! * [`retrain`]: detector fits on the blocking pool with progress and cancellation.
//! * [`export`]: the Prometheus metric set, the Pushgateway pusher, `/metrics` + JSON API, and
//!   backfill (history as TSDB blocks).
//! * [`http`]: the one HTTP client builder (TLS by rustls with ring).
//! * [`services`]: the engine with its exporters, started and stopped as one.
//!
//! Nothing here draws: no ratatui or crossterm.

pub mod analysis;
pub mod engine;
pub mod export;
pub mod forecast_service;
pub mod http;
pub mod retrain;
pub mod services;
pub mod sources;

pub use analysis::{AnalysisRequest, EngineEvent};
pub use engine::state::{SeriesView, Snapshot, TrainState};
pub use engine::{Control, Controller, EngineHandle, EngineSettings, SourceSpec};
