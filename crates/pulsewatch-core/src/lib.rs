//! pulsewatch-core: what pulsewatch knows without a runtime, a network or a terminal.
//!
//! ```text
//!   nab (corpus reader, labels, demo data) ──► detect ──► eval (NAB scorer, results files)
//!                                          └─► forecast (models, regularisation, metrics)
//! ```
//!
//! * [`domain`]: points, scored points, series identity, source / detector / model names.
//! * [`nab`]: the NAB corpus on disk (data, windows, profiles) and the built-in demo data.
//! * [`detect`]: streaming anomaly detectors behind one trait, and the spike test.
//! * [`forecast`]: MSTL/ETS and Prophet forecasts with bands, regularisation, held-out metrics,
//!   and the one function that turns a history into a series' forecast state.
//! * [`events`]: anomaly events (consecutive flags), detectors' reasons, the events file.
//! * [`eval`]: the NAB scorer, results files in NAB's format, the corpus runner, the scoreboard.
//! * [`num`]: the median, hex digests and the compact number format, written once.
//! * [`store`]: fitted models on disk (versioned, checksummed); [`atomic`] writes.
//! * [`config`]: the config file's schema, its environment layering and validation.
//!
//! No tokio, HTTP or terminal code lives here; the `lstm` feature brings candle (the LSTM
//! autoencoder), `wasmstan` Prophet's WebAssembly optimizer.

pub mod atomic;
pub mod config;
pub mod detect;
pub mod domain;
pub mod eval;
pub mod events;
pub mod forecast;
#[doc(hidden)]
pub mod fuzz;
pub mod nab;
pub mod num;
pub mod par;
pub mod prom;
pub mod shard;
pub mod store;
