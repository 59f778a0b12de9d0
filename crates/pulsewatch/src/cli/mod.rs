//! The command line: arguments, the one config load and validation pass, file logging, the one
//! async runtime, and a module per command (`live`: the TUI, `--headless` and `--once`; `nab`:
//! `score`, `eval`, `scoreboard`; `forecast`, `fetch_nab`, `backfill`, `screenshots`).

mod backfill;
mod fetch_nab;
pub mod forecast;
mod live;
mod nab;
mod screenshots;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use color_eyre::eyre::{Result, WrapErr, eyre};

use crate::logging;
use pulsewatch_core::config::{Config, Loaded};
use pulsewatch_core::nab::Corpus;
use pulsewatch_engine::services;

#[derive(Debug, Parser)]
#[command(
    name = "pulsewatch",
    version,
    about = "Terminal AIOps monitor: live metric series with anomaly scores and forecasts",
    long_about = "Terminal AIOps monitor: replays the Numenta Anomaly Benchmark (NAB) corpus or \
                  polls Prometheus, scores anomalies with streaming detectors, forecasts, and \
                  exports to a Pushgateway.\n\nConfig: --config PATH, else ./config.toml, else the \
                  XDG config dir (~/.config/pulsewatch/config.toml); every key can be overridden \
                  with PULSEWATCH_<SECTION>_<KEY>, e.g. PULSEWATCH_DATA_DIR."
)]
pub struct Cli {
    /// Config file (default: ./config.toml, else the XDG config dir, else built-in defaults).
    #[arg(long, global = true, value_name = "PATH", env = "PULSEWATCH_CONFIG")]
    pub config: Option<PathBuf>,

    /// Run once: ingest what the source has now, score, forecast, push to the Pushgateway, print
    /// a summary and exit (non-zero when the push still fails after retries). For cron and CI.
    #[arg(long)]
    pub once: bool,

    /// With --once: print JSON (schema `pulsewatch.once/v1`, see the README) instead of a table.
    #[arg(long, requires = "once")]
    pub json: bool,

    /// Where series come from: nab, prometheus or host (default: [source] kind).
    #[arg(long, value_name = "KIND")]
    pub source: Option<String>,

    /// Detector to run (default: [detector] name).
    #[arg(long, value_name = "NAME")]
    pub detector: Option<String>,

    /// Take only shard K of N of the series (by a stable hash of the series id; default:
    /// [source] shard, all). Each shard pushes its own Pushgateway group.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,

    /// Serve /metrics and the JSON API on ADDR: HOST:PORT, :PORT or PORT (the last two bind
    /// 127.0.0.1). Default: [api] listen (off).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,

    /// Keep monitoring without the terminal UI (status lines on stderr); for services and
    /// terminals without a TTY.
    #[arg(long)]
    pub headless: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Score a results folder in NAB's format (ours or upstream's) and print normalised scores.
    Score(nab::ScoreArgs),
    /// Run a detector over the corpus point by point, write NAB-format results, optimise the
    /// thresholds and print scores per category beside the published scoreboard.
    Eval(nab::EvalArgs),
    /// Evaluate several detectors and print one markdown table of their NAB scores beside the
    /// published scoreboard (the README's table is made with this command).
    Scoreboard(nab::ScoreboardArgs),
    /// Search pulse's constants on the corpus (seeded, fixed budget) and print the
    /// [detector.pulse] block it chose; `eval --folds K` runs the same search out of sample.
    Tune(nab::TuneArgs),
    /// Forecast a series (auto, mstl, ets, prophet, snaive, smedian or theta: point, lower,
    /// upper per step); with --holdout, fit on all but the last horizon and report MAE, MASE,
    /// sMAPE and coverage; with --all, evaluate every NAB series.
    Forecast(forecast::ForecastArgs),
    /// Download the NAB corpus (pinned upstream commit), verifying every file's SHA-256.
    FetchNab(fetch_nab::FetchNabArgs),
    /// Print the effective configuration (defaults, file and environment merged) as TOML.
    PrintConfig,
    /// Write NAB history with its original timestamps (values; optionally scores and rolling
    /// forecasts) as OpenMetrics and turn it into Prometheus TSDB blocks with promtool. Serve the
    /// folder with `prometheus --storage.tsdb.path=DIR --storage.tsdb.retention.time=100y`.
    Backfill(backfill::BackfillArgs),
    /// Write screenshots of the three tabs (SVG, and PNG through rsvg-convert) from the real
    /// engine replaying NAB (or the demo data) for a few seconds.
    Screenshots(screenshots::ScreenshotsArgs),
}

/// Entry point of the binary.
pub fn main() -> Result<ExitCode> {
    install_error_hook()?;
    let cli = Cli::parse();
    let loaded = Config::load(cli.config.as_deref())?;
    // One validation pass before any command but `print-config` (which shows a config as it is).
    if !matches!(cli.command, Some(Command::PrintConfig)) {
        loaded.validate()?;
    }
    match cli.command {
        None => {
            let _guard = logging::init(&loaded.config.logging).map_err(|e| eyre!(e))?;
            log_panics();
            tracing::info!(source = %loaded.source, overrides = ?loaded.env_overrides, "config loaded");
            live::live(&cli, loaded.config.clone())
        }
        Some(Command::PrintConfig) => {
            print!("# effective config; source: {}", loaded.source);
            if !loaded.env_overrides.is_empty() {
                print!("; environment: {}", loaded.env_overrides.join(", "));
            }
            println!("\n{}", loaded.config.redacted().to_toml());
            Ok(ExitCode::SUCCESS)
        }
        Some(cmd) => {
            let _guard = logging::init(&loaded.config.logging).map_err(|e| eyre!(e))?;
            tracing::info!(source = %loaded.source, overrides = ?loaded.env_overrides, "config loaded");
            run(cmd, &loaded).map(|()| ExitCode::SUCCESS)
        }
    }
}

fn run(cmd: Command, loaded: &Loaded) -> Result<()> {
    let cfg = &loaded.config;
    match cmd {
        Command::Score(a) => nab::score(a, cfg),
        Command::Eval(a) => nab::eval(a, cfg),
        Command::Scoreboard(a) => nab::scoreboard(a, cfg),
        Command::Tune(a) => nab::tune(a, cfg),
        Command::Forecast(a) => forecast::run(&a, cfg),
        Command::FetchNab(a) => fetch_nab::run(a, cfg),
        Command::PrintConfig => Ok(()),
        Command::Backfill(a) => backfill::run(a, cfg),
        Command::Screenshots(a) => screenshots::run(a, cfg),
    }
}

/// The one async runtime of a command (multi-threaded, all drivers on).
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .wrap_err("cannot start the async runtime")
}

fn load_corpus(root: &Path, labels: Option<&Path>) -> Result<Corpus> {
    services::load_corpus_at(root, labels)
}

/// Writes every panic, with a backtrace, to the log file before the previous hook runs (the
/// TUI's hook, installed later, restores the terminal first and then calls this one). Only the
/// first panic reaches the previous hook (the report on the terminal): a panic elsewhere while
/// the process unwinds from it (a task of the runtime being shut down) goes to the log only, so
/// the report on screen names the cause, not an echo of it.
fn log_panics() {
    static REPORTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let bt = std::backtrace::Backtrace::force_capture();
        if REPORTED.swap(true, std::sync::atomic::Ordering::SeqCst) {
            tracing::error!(target: "pulsewatch", "panic after an earlier one (not shown on the terminal): {info}\n{bt}");
            return;
        }
        tracing::error!(target: "pulsewatch", "panic: {info}\n{bt}");
        prev(info);
    }));
}

fn install_error_hook() -> Result<()> {
    let plain = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
        || !std::io::stderr().is_terminal();
    let mut hook = color_eyre::config::HookBuilder::default().display_env_section(false);
    if plain {
        hook = hook.theme(color_eyre::config::Theme::new());
    }
    hook.install()
}
