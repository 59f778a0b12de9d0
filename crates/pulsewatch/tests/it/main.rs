//! The pulsewatch binary's integration tests, in one test binary: the real binary against real
//! Prometheus, Pushgateway and node-exporter servers, the TUI in TestBackend and in tmux, the
//! bad-input corpus, deployment files, and the engine's pipelines end to end.

mod support {
    pub use testkit::{corpus, http_server};

    pub mod servers {
        use std::path::Path;
        use std::process::Command;

        pub use testkit::servers::*;

        /// The pulsewatch binary of this build, run in `dir` (see [`pulsewatch_at`]).
        pub fn pulsewatch(dir: &Path) -> Command {
            pulsewatch_at(Path::new(env!("CARGO_BIN_EXE_pulsewatch")), dir)
        }

        /// Runs a `--once --json` command, asserts that it succeeded and returns its document.
        pub fn once_json(mut cmd: Command, what: &str) -> serde_json::Value {
            let out = cmd
                .output()
                .unwrap_or_else(|e| panic!("run pulsewatch --once ({what}): {e}"));
            assert!(
                out.status.success(),
                "--once ({what}) failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("--once --json ({what}) printed no JSON: {e}"))
        }
    }
}

mod alerting;
mod backfill;
mod bad_input;
mod cli_eval;
mod config_file;
mod deployment;
mod engine_export;
mod fetch_nab;
mod fleet;
mod forecast;
mod multivariate;
mod pipelines;
mod prometheus_integration;
mod retrain;
mod tui_snapshots;
mod tui_tmux;
