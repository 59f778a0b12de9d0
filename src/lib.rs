//! pulsewatch: a terminal AIOps monitor.
//!
//! The data flows through the modules in this order, and nothing here knows about the terminal:
//!
//! ```text
//!   ingest ──► detect ──► eval                    (offline: NAB corpus → scores → NAB score)
//!   ingest ──► engine ─┬─► detect                  (live: replay, PromQL, host)
//!                      ├─► forecast
//!                      └─► snapshots ──► export    (Pushgateway, /metrics, JSON API)
//!                                   └──► headless, tui
//! ```
//!
//! * [`ingest`]: NAB corpus reader and downloader; live sources (replay, PromQL, host).
//! * [`detect`]: streaming anomaly detectors behind one trait.
//! * [`forecast`]: MSTL/ETS and Prophet forecasts with bands, and the forecast service.
//! * [`engine`]: one detector per series, snapshots on a watch channel, a control channel back.
//! * [`export`]: the Prometheus metric set, the Pushgateway pusher, `/metrics` and the JSON API.
//! * [`eval`]: the NAB scorer, results files in NAB's format, and the `eval` runner.
//! * [`config`]: the one config file, layered with environment overrides.
//! * [`logging`]: tracing to per-component log files, never to the terminal.
//!
//! The front-ends (`cli`, [`headless`], [`tui`]) are thin consumers of this engine.

pub mod cli;
pub mod config;
pub mod detect;
pub mod engine;
pub mod eval;
pub mod export;
pub mod forecast;
#[doc(hidden)]
pub mod fuzz;
pub mod headless;
pub mod ingest;
pub mod logging;
pub mod tui;
