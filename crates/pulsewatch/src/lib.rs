//! pulsewatch, the binary's library: the front-ends over [`pulsewatch_engine`].
//!
//! ```text
//!   main ──► cli (one function per command)
//!              ├──► tui       (ratatui: Live, Forecast, Test spikes; renders engine snapshots)
//!              ├──► headless  (long-running, status lines on stderr)
//!              └──► report    (--once: the table and the JSON document)
//! ```
//!
//! * [`cli`]: argument parsing and one module per command (`cli/`), the async runtime built once.
//! * [`tui`]: the terminal UI; it only renders what the engine publishes and sends it controls.
//! * [`headless`] and [`report`]: the front-ends without a terminal.
//! * [`logging`]: tracing to per-component log files, never to the terminal.

pub mod cli;
pub mod headless;
pub mod logging;
pub mod report;
pub mod tui;
