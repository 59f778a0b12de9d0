//! The command line: a thin front-end over the engine. Each subcommand loads the config, sets up
//! file logging and calls into `ingest` / `detect` / `eval`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use color_eyre::eyre::{Result, WrapErr, bail, eyre};

use crate::config::{Config, Loaded};
use crate::detect::DetectorKind;
use crate::eval::{self, ThresholdChoice};
use crate::export::api;
use crate::headless;
use crate::ingest::fetch;
use crate::ingest::nab::Corpus;
use crate::ingest::source::SourceKind;
use crate::logging;

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
    Score {
        /// Results folder holding <DETECTOR>/<category>/<DETECTOR>_<file>.csv.
        #[arg(long, value_name = "DIR")]
        results: PathBuf,
        /// Detector name (folder under --results).
        #[arg(long, value_name = "NAME")]
        detector: String,
        /// Corpus root (default: [data] dir).
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        /// Find thresholds by NAB's corpus-wide optimisation instead of config/thresholds.json.
        #[arg(long)]
        optimize: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run a detector over the corpus point by point, write NAB-format results, optimise the
    /// thresholds and print scores per category beside the published scoreboard.
    Eval {
        /// Detector name (default: [detector] name).
        #[arg(long, value_name = "NAME")]
        detector: Option<String>,
        /// Corpus root (default: [data] dir).
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        /// Output folder for results (NAB layout).
        #[arg(long, value_name = "DIR", default_value = "results")]
        out: PathBuf,
        /// Use another windows file (e.g. labels/combined_windows_tiny.json) to evaluate a subset.
        #[arg(long, value_name = "FILE")]
        labels: Option<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Evaluate several detectors and print one markdown table of their NAB scores beside the
    /// published scoreboard (the README's table is made with this command).
    Scoreboard {
        /// Detectors to evaluate (default: all).
        #[arg(long, value_name = "NAME", value_delimiter = ',')]
        detectors: Vec<String>,
        /// Corpus root (default: [data] dir).
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        /// Output folder for results (NAB layout).
        #[arg(long, value_name = "DIR", default_value = "results")]
        out: PathBuf,
    },
    /// Forecast a series with Prophet, MSTL+ETS or ETS (point, lower, upper per step); with
    /// --holdout, fit on all but the last horizon and report MAE, MASE, sMAPE and coverage;
    /// with --all, evaluate every NAB series.
    Forecast(crate::forecast::cli::ForecastArgs),
    /// Download the NAB corpus (pinned upstream commit), verifying every file's SHA-256.
    FetchNab {
        /// Destination folder (default: [data] dir).
        #[arg(long, value_name = "DIR")]
        dest: Option<PathBuf>,
        /// Base URL the file paths are appended to.
        #[arg(long, value_name = "URL", default_value = fetch::DEFAULT_BASE_URL)]
        base_url: String,
    },
    /// Print the effective configuration (defaults, file and environment merged) as TOML.
    PrintConfig,
    /// Write NAB history with its original timestamps (values; optionally scores and rolling
    /// forecasts) as OpenMetrics and turn it into Prometheus TSDB blocks with promtool. Serve the
    /// folder with `prometheus --storage.tsdb.path=DIR --storage.tsdb.retention.time=100y`.
    Backfill {
        /// Output folder: nab.om and the blocks.
        #[arg(long, value_name = "DIR", default_value = "backfill")]
        out: PathBuf,
        /// Series to write, by key (realKnownCause/nyc_taxi.csv) or name (nyc_taxi); default all.
        #[arg(long, value_name = "SERIES", value_delimiter = ',')]
        series: Vec<String>,
        /// Also write the detector's scores and flags ([detector] name and threshold).
        #[arg(long)]
        scores: bool,
        /// Also write rolling forecasts (refitted once per [forecast] horizon, causal).
        #[arg(long)]
        forecast: bool,
        /// promtool's --max-block-duration.
        #[arg(long, value_name = "DURATION", default_value = "720h")]
        max_block_duration: String,
        /// The promtool binary.
        #[arg(long, value_name = "PATH", default_value = "promtool")]
        promtool: PathBuf,
        /// Corpus root (default: [data] dir).
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
    },
    /// Write screenshots of the three tabs (SVG, and PNG through rsvg-convert) from the real
    /// engine replaying NAB (or the demo data) for a few seconds.
    Screenshots {
        /// Output folder.
        #[arg(long, value_name = "DIR", default_value = "screenshots")]
        out: PathBuf,
        /// Seconds of replay before the pictures are taken.
        #[arg(long, default_value_t = 8)]
        seconds: u64,
        /// Replay speed (points per second per series) while waiting.
        #[arg(long, default_value_t = 400.0)]
        speed: f64,
        /// Terminal size, columns x rows.
        #[arg(long, default_value = "120x36")]
        size: String,
        /// Series to select (default: realKnownCause/nyc_taxi.csv).
        #[arg(long)]
        series: Option<String>,
    },
}

/// Entry point of the binary.
pub fn main() -> Result<()> {
    install_error_hook()?;
    let cli = Cli::parse();
    let loaded = Config::load(cli.config.as_deref())?;
    match cli.command {
        None => {
            let _guard = logging::init(&loaded.config.logging).map_err(|e| eyre!(e))?;
            log_panics();
            tracing::info!(source = %loaded.source, overrides = ?loaded.env_overrides, "config loaded");
            live(&cli, loaded.config.clone())
        }
        Some(Command::PrintConfig) => {
            print!("# effective config; source: {}", loaded.source);
            if !loaded.env_overrides.is_empty() {
                print!("; environment: {}", loaded.env_overrides.join(", "));
            }
            println!("\n{}", loaded.config.redacted().to_toml());
            Ok(())
        }
        Some(cmd) => {
            let _guard = logging::init(&loaded.config.logging).map_err(|e| eyre!(e))?;
            tracing::info!(source = %loaded.source, overrides = ?loaded.env_overrides, "config loaded");
            run(cmd, &loaded)
        }
    }
}

/// The main job: `--once`, or the long-running monitor.
fn live(cli: &Cli, mut cfg: Config) -> Result<()> {
    if let Some(d) = &cli.detector {
        cfg.detector.name = d.clone();
    }
    let (kind, key) = match cli.source.as_deref() {
        Some(s) => (s, "--source"),
        None => (cfg.source.kind.as_str(), "[source] kind"),
    };
    let kind: SourceKind = kind.parse().map_err(|e: String| eyre!("{key}: {e}"))?;
    let listen = match cli.listen.as_deref().unwrap_or(&cfg.api.listen) {
        "" => None,
        a => Some(api::parse_listen(a).map_err(|e| eyre!(e))?),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .wrap_err("cannot start the async runtime")?;
    if cli.once {
        let report = rt.block_on(headless::once(&cfg, kind))?;
        if cli.json {
            println!("{}", serde_json::to_string_pretty(&report.json())?);
        } else {
            print!("{}", report.table());
        }
        if let Some(f) = report.failure() {
            bail!(f);
        }
        return Ok(());
    }
    if cli.headless {
        return rt.block_on(headless::run(&cfg, kind, listen, Duration::from_secs(5)));
    }
    rt.block_on(crate::tui::run(&cfg, kind, listen))
}

fn run(cmd: Command, loaded: &Loaded) -> Result<()> {
    let cfg = &loaded.config;
    match cmd {
        Command::Score {
            results,
            detector,
            data,
            optimize,
            json,
        } => {
            let root = data.unwrap_or_else(|| cfg.data.dir.clone());
            let corpus = load_corpus(&root, None)?;
            let scores = eval::results::read_detector_results(&results, &detector, &corpus)?;
            let profiles = corpus.profiles()?;
            let thresholds = corpus.thresholds()?;
            let choice = if optimize {
                ThresholdChoice::Optimize
            } else {
                ThresholdChoice::Shipped(&thresholds)
            };
            let report =
                eval::score_corpus(&corpus, &profiles, &detector, &scores, &choice, false)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.summary_table());
            }
            Ok(())
        }
        Command::Eval {
            detector,
            data,
            out,
            labels,
            json,
        } => {
            let (name, key) = match detector {
                Some(d) => (d, "--detector"),
                None => (cfg.detector.name.clone(), "[detector] name"),
            };
            let kind: DetectorKind = name.parse().map_err(|e: String| eyre!("{key}: {e}"))?;
            cfg.detector.validate().map_err(|e| eyre!(e))?;
            let root = data.unwrap_or_else(|| cfg.data.dir.clone());
            let corpus = load_corpus(&root, labels.as_deref())?;
            let t0 = Instant::now();
            let report = eval::evaluate(&corpus, &corpus.profiles()?, kind, &cfg.detector, &out)?;
            let elapsed = t0.elapsed();
            let summary = out.join(kind.name()).join("summary.json");
            eval::results::write_atomic(
                &summary,
                serde_json::to_string_pretty(&report)?.as_bytes(),
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.full_table());
                println!(
                    "\nresults: {} (NAB layout); scored {} rows in {:.2?}",
                    out.join(kind.name()).display(),
                    corpus.total_rows(),
                    elapsed
                );
            }
            Ok(())
        }
        Command::Scoreboard {
            detectors,
            data,
            out,
        } => {
            let kinds: Vec<DetectorKind> = if detectors.is_empty() {
                DetectorKind::ALL.to_vec()
            } else {
                detectors
                    .iter()
                    .map(|d| d.parse().map_err(|e: String| eyre!(e)))
                    .collect::<Result<_>>()?
            };
            let root = data.unwrap_or_else(|| cfg.data.dir.clone());
            let corpus = load_corpus(&root, None)?;
            let profiles = corpus.profiles()?;
            let mut rows = Vec::new();
            for kind in kinds {
                let t0 = Instant::now();
                let report = eval::evaluate(&corpus, &profiles, kind, &cfg.detector, &out)?;
                let elapsed = t0.elapsed();
                eprintln!("scoreboard: {kind} done in {elapsed:.1?}");
                rows.push((kind, report, elapsed));
            }
            println!(
                "| detector | standard | reward_low_FP_rate | reward_low_FN_rate | eval time |"
            );
            println!("|---|---|---|---|---|");
            for (kind, r, elapsed) in &rows {
                let s: Vec<String> = r
                    .profiles
                    .iter()
                    .map(|p| format!("{:.2}", p.normalized))
                    .collect();
                println!(
                    "| {kind} (ours) | {} | {:.2} s |",
                    s.join(" | "),
                    elapsed.as_secs_f64()
                );
            }
            for (det, s) in eval::scoreboard::PUBLISHED {
                if eval::scoreboard::SHOWN.contains(det) || *det == "knncad" || *det == "htmjava" {
                    println!(
                        "| *published:* {det} | {:.2} | {:.2} | {:.2} | |",
                        s[0], s[1], s[2]
                    );
                }
            }
            Ok(())
        }
        Command::Forecast(args) => crate::forecast::cli::run(&args, cfg),
        Command::FetchNab { dest, base_url } => {
            let dest = dest.unwrap_or_else(|| cfg.data.dir.clone());
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .wrap_err("cannot start the async runtime")?;
            let opts = fetch::FetchOptions::new(dest, base_url);
            let summary = rt.block_on(fetch::fetch_nab(&opts))?;
            println!("{summary}");
            Ok(())
        }
        Command::PrintConfig => Ok(()),
        Command::Backfill {
            out,
            series,
            scores,
            forecast,
            max_block_duration,
            promtool,
            data,
        } => {
            let root = data.unwrap_or_else(|| cfg.data.dir.clone());
            let corpus = load_corpus(&root, None)?;
            let chosen: Vec<_> = if series.is_empty() {
                corpus.series
            } else {
                let mut out = Vec::new();
                for want in &series {
                    let s = corpus
                        .series
                        .iter()
                        .find(|s| &s.key == want || &s.name == want)
                        .ok_or_else(|| {
                            eyre!(
                                "--series {want:?}: no such NAB series in {}",
                                root.display()
                            )
                        })?;
                    out.push(s.clone());
                }
                out
            };
            let opts = crate::export::backfill::BackfillOptions {
                scores: if scores {
                    let kind: DetectorKind = cfg
                        .detector
                        .name
                        .parse()
                        .map_err(|e: String| eyre!("[detector] name: {e}"))?;
                    cfg.detector.validate().map_err(|e| eyre!(e))?;
                    Some((kind, cfg.detector.clone(), cfg.detector.threshold))
                } else {
                    None
                },
                forecast: if forecast {
                    Some(
                        crate::forecast::ForecastSettings::from_config(&cfg.forecast)
                            .map_err(|e| eyre!(e))?,
                    )
                } else {
                    None
                },
            };
            let t0 = Instant::now();
            let r = crate::export::backfill::create_blocks(
                &chosen,
                &opts,
                &out,
                &promtool,
                &max_block_duration,
            )
            .map_err(|e| eyre!(e))?;
            println!(
                "wrote {} samples of {} series to {} and {} blocks into {} in {:.1?}\n\
                 serve: prometheus --storage.tsdb.path={} --storage.tsdb.retention.time=100y",
                r.samples,
                chosen.len(),
                r.openmetrics.display(),
                r.blocks,
                r.blocks_dir.display(),
                t0.elapsed(),
                r.blocks_dir.display()
            );
            Ok(())
        }
        Command::Screenshots {
            out,
            seconds,
            speed,
            size,
            series,
        } => {
            let (w, h) = size
                .split_once('x')
                .and_then(|(w, h)| Some((w.parse::<u16>().ok()?, h.parse::<u16>().ok()?)))
                .ok_or_else(|| eyre!("--size {size:?}: expected COLUMNSxROWS, e.g. 120x36"))?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .wrap_err("cannot start the async runtime")?;
            let files = rt.block_on(crate::tui::screenshot::write_all(
                cfg,
                &out,
                seconds,
                speed,
                (w, h),
                series.as_deref(),
            ))?;
            for f in files {
                println!("{}", f.display());
            }
            Ok(())
        }
    }
}

fn load_corpus(root: &Path, labels: Option<&Path>) -> Result<Corpus> {
    headless::load_corpus_at(root, labels)
}

/// Writes every panic, with a backtrace, to the log file before the previous hook runs (the
/// TUI's hook, installed later, restores the terminal first and then calls this one).
fn log_panics() {
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let bt = std::backtrace::Backtrace::force_capture();
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
