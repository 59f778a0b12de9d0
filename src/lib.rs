//! pulsewatch: a terminal AIOps monitor.
//!
//! The data flows through the modules in this order, and nothing here knows about the terminal:
//!
//! ```text
//!   ingest ──► detect ──► eval          (offline: NAB corpus → anomaly scores → NAB score)
//!     │          │
//!     │          └──────► export        (later: Pushgateway, /metrics)
//!     └──► forecast ─────► export
//! ```
//!
//! * [`ingest`]: NAB corpus reader and downloader (later: replay, PromQL and host sources).
//! * [`detect`]: streaming anomaly detectors behind one trait.
//! * [`eval`]: the NAB scorer, results files in NAB's format, and the `eval` runner.
//! * [`config`]: the one config file, layered with environment overrides.
//! * [`logging`]: tracing to per-component log files, never to the terminal.
//!
//! The front-ends (`cli`, later the TUI and headless mode) are thin consumers of this engine.

pub mod cli;
pub mod config;
pub mod detect;
pub mod eval;
pub mod forecast;
pub mod ingest;
pub mod logging;
