//! Headless front-end: `--once` for cron and CI, and a long-running mode without a terminal UI
//! (used when stdout is not a terminal, or with `--headless`).
//!
//! `--once` ingests everything the source has now (the whole NAB corpus, one PromQL window, or
//! one host reading), scores it with the configured detector, forecasts every series, pushes the
//! result to the Pushgateway (kept there, as a batch job's result should be) and prints a summary
//! table, or JSON with `--json` (schema [`ONCE_SCHEMA`], documented in the README). It fails with
//! a non-zero exit code when the push, or every query, still fails after retries.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use color_eyre::eyre::{Result, WrapErr, bail, eyre};
use serde_json::{Value, json};

use crate::config::Config;
use crate::detect::Point;
use crate::detect::train::ModelStore;
use crate::engine::core::{Core, CoreSettings};
use crate::engine::state::Snapshot;
use crate::engine::{self, EngineHandle, EngineSettings, SourceSpec};
use crate::export::api::{self, ApiState};
use crate::export::{metrics, pushgateway};
use crate::forecast::ForecastSettings;
use crate::forecast::model::forecast_series;
use crate::forecast::service::{Expectation, MAX_HISTORY, SeriesForecast};
use crate::ingest::host;
use crate::ingest::nab::{Corpus, Series};
use crate::ingest::promql::{Poller, PromClient, PromSettings};
use crate::ingest::replay::{self, ReplayControl};
use crate::ingest::source::{SourceKind, unix_now};

/// `schema` field of `--once --json`.
pub const ONCE_SCHEMA: &str = "pulsewatch.once/v1";
/// Push attempts of `--once` before it gives up: 1 s, 2 s and 4 s apart, so a Pushgateway that
/// restarts within about 7 s does not fail a cron run.
pub const ONCE_PUSH_ATTEMPTS: u32 = 4;
/// Poll attempts of `--once` on the Prometheus source while every query fails (same spacing).
pub const ONCE_QUERY_ATTEMPTS: u32 = 4;
/// The first pause between `--once` attempts; it doubles after each.
pub const ONCE_FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// The engine's core settings from the config.
pub fn core_settings(cfg: &Config, source: SourceKind) -> Result<CoreSettings> {
    let detector = cfg
        .detector
        .name
        .parse()
        .map_err(|e: String| eyre!("[detector] name: {e}"))?;
    cfg.detector.validate().map_err(|e| eyre!(e))?;
    let t = cfg.detector.threshold;
    Ok(CoreSettings {
        source,
        detector,
        detector_cfg: cfg.detector.clone(),
        threshold: t,
        history: cfg.source.history.max(1),
        store: Some(ModelStore::new(cfg.retrain.model_dir.clone())),
    })
}

/// Engine settings from the config.
pub fn engine_settings(cfg: &Config, source: SourceKind) -> Result<EngineSettings> {
    let forecast = ForecastSettings::from_config(&cfg.forecast).map_err(|e| eyre!(e))?;
    let speed = cfg.replay.speed;
    if !(speed.is_finite() && speed > 0.0) {
        bail!("[replay] speed {speed} must be a positive number of points per second");
    }
    Ok(EngineSettings {
        core: core_settings(cfg, source)?,
        forecast: Some(forecast),
        retrain_interval: cfg.retrain.interval.0,
        replay: ReplayControl {
            paused: cfg.replay.paused,
            speed,
        },
    })
}

/// Loads the NAB corpus of `[data] dir`, with a hint when it is missing.
pub fn load_corpus(cfg: &Config) -> Result<Corpus> {
    load_corpus_at(&cfg.data.dir, None)
}

/// Loads the corpus at `root` (with another windows file when `labels` is given); a missing
/// corpus gives one error that says how to get it.
pub fn load_corpus_at(root: &std::path::Path, labels: Option<&std::path::Path>) -> Result<Corpus> {
    if !root.join("data").is_dir() {
        bail!(
            "no NAB corpus at {} (expected {}/data/<category>/<file>.csv); run `pulsewatch \
             fetch-nab` or set [data] dir / PULSEWATCH_DATA_DIR",
            root.display(),
            root.display()
        );
    }
    let t0 = Instant::now();
    let corpus = match labels {
        Some(l) => Corpus::load_subset(root, l)?,
        None => Corpus::load(root)?,
    };
    tracing::info!(
        target: "pulsewatch::ingest",
        files = corpus.series.len(),
        rows = corpus.total_rows(),
        elapsed = ?t0.elapsed(),
        "corpus loaded from {}",
        root.display()
    );
    Ok(corpus)
}

/// The live source for `kind`.
pub fn source_spec(cfg: &Config, kind: SourceKind) -> Result<SourceSpec> {
    Ok(match kind {
        SourceKind::Nab => {
            let corpus = load_corpus(cfg)?;
            SourceSpec::Replay {
                series: Arc::new(corpus.series),
                target: cfg.data.dir.display().to_string(),
                loop_at_end: cfg.replay.loop_at_end,
            }
        }
        SourceKind::Prometheus => {
            let s = PromSettings::from_config(&cfg.prometheus).map_err(|e| eyre!(e))?;
            SourceSpec::Prometheus(PromClient::new(s).map_err(|e| eyre!(e))?)
        }
        SourceKind::Host => SourceSpec::Host(cfg.host.interval.0.max(Duration::from_millis(200))),
    })
}

/// Forecasts every series of `core` (in parallel, on the newest [`MAX_HISTORY`] points).
fn forecast_all(core: &mut Core, settings: &ForecastSettings) {
    let jobs: Vec<(String, Vec<Point>)> = core
        .series
        .iter()
        .map(|(id, t)| (id.clone(), t.history()))
        .collect();
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 8);
    let chunk = jobs.len().div_ceil(workers).max(1);
    let results: Vec<(String, SeriesForecast)> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|(id, pts)| (id.clone(), forecast_one(id, pts, settings)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    for (id, f) in results {
        core.set_forecast(&id, Arc::new(f));
    }
}

fn forecast_one(id: &str, pts: &[Point], settings: &ForecastSettings) -> SeriesForecast {
    let tail = &pts[pts.len().saturating_sub(MAX_HISTORY)..];
    let ts: Vec<i64> = tail.iter().map(|p| p.timestamp).collect();
    let vs: Vec<f64> = tail.iter().map(|p| p.value).collect();
    let res = forecast_series(&ts, &vs, settings, settings.model);
    let (forecast, error) = match res {
        Ok(f) => (Some(Arc::new(f)), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let next = forecast.as_ref().and_then(|f| {
        Some(Expectation {
            timestamp: *f.timestamps.first()?,
            point: *f.point.first()?,
            lower: *f.lower.first()?,
            upper: *f.upper.first()?,
        })
    });
    SeriesForecast {
        series: id.to_string(),
        forecast,
        error,
        pending: false,
        fits: 1,
        history_points: tail.len(),
        replay_time: ts.last().copied(),
        current: None,
        next,
    }
}

/// What `--once` pushed.
#[derive(Debug, Clone)]
pub struct PushOutcome {
    pub url: String,
    pub result: Result<u32, String>,
    pub seconds: f64,
}

/// The result of `--once`.
#[derive(Debug, Clone)]
pub struct OnceReport {
    pub snapshot: Arc<Snapshot>,
    /// `None` when export is off (`[pushgateway] url = ""`).
    pub push: Option<PushOutcome>,
    /// Errors of the source (failed queries), if any.
    pub source_errors: Vec<String>,
}

/// Ingests what `kind` has now into a fresh core.
async fn ingest_once(cfg: &Config, kind: SourceKind, core: &mut Core) -> Result<Vec<String>> {
    match kind {
        SourceKind::Nab => {
            let corpus = load_corpus(cfg)?;
            let series: Vec<Series> = corpus.series;
            for s in &series {
                core.ingest(replay::info(s), &s.points(), false);
            }
            core.status = Some(crate::ingest::source::SourceStatus {
                source: SourceKind::Nab,
                target: cfg.data.dir.display().to_string(),
                healthy: true,
                message: format!("{} series, {} points", series.len(), corpus_points(&series)),
                last_ok: unix_now(),
            });
            Ok(Vec::new())
        }
        SourceKind::Prometheus => {
            let settings = PromSettings::from_config(&cfg.prometheus).map_err(|e| eyre!(e))?;
            let n = settings.queries.len();
            let client = PromClient::new(settings).map_err(|e| eyre!(e))?;
            let mut delay = ONCE_FIRST_BACKOFF;
            let mut attempt = 0;
            let poll = loop {
                attempt += 1;
                let mut poller = Poller::default();
                let poll = poller.poll(&client, unix_now()).await;
                if poll.errors.len() < n || attempt >= ONCE_QUERY_ATTEMPTS {
                    break poll;
                }
                tracing::warn!(target: "pulsewatch::ingest", errors = ?poll.errors, attempt, "every query failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
            };
            if poll.errors.len() == n {
                bail!(
                    "every PromQL query failed after {attempt} attempts: {}",
                    poll.errors.join("; ")
                );
            }
            let found = poll.series.len();
            for qs in poll.series {
                core.ingest(qs.info, &qs.points, false);
            }
            core.status = Some(crate::ingest::source::SourceStatus {
                source: SourceKind::Prometheus,
                target: client.settings().url.clone(),
                healthy: poll.errors.is_empty(),
                message: if poll.errors.is_empty() {
                    format!("{n} queries, {found} series")
                } else {
                    poll.errors.join("; ")
                },
                last_ok: unix_now(),
            });
            Ok(poll.errors)
        }
        SourceKind::Host => {
            let mut sampler = host::HostSampler::new().map_err(|e| eyre!(e))?;
            sampler.sample(unix_now());
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = unix_now();
            let readings = sampler.sample(now);
            let got = readings.iter().filter(|(_, p)| p.is_some()).count();
            for (info, p) in readings {
                if let Some(p) = p {
                    core.ingest(info, &[p], false);
                }
            }
            core.status = Some(crate::ingest::source::SourceStatus {
                source: SourceKind::Host,
                target: "localhost".into(),
                healthy: got > 0,
                message: format!("{got} series"),
                last_ok: now,
            });
            Ok(Vec::new())
        }
    }
}

fn corpus_points(series: &[Series]) -> usize {
    series.iter().map(Series::len).sum()
}

/// `--once`: ingest, score, forecast, push. The push result is in the report (the caller decides
/// the exit code); input and config errors are errors.
pub async fn once(cfg: &Config, kind: SourceKind) -> Result<OnceReport> {
    let settings = engine_settings(cfg, kind)?;
    let pusher = pushgateway::Pusher::new(&cfg.pushgateway, kind.name()).map_err(|e| eyre!(e))?;
    let mut core = Core::new(settings.core.clone());
    let t0 = Instant::now();
    let source_errors = ingest_once(cfg, kind, &mut core).await?;
    tracing::info!(target: "pulsewatch::analysis", series = core.series.len(), elapsed = ?t0.elapsed(), "scored");
    if let Some(f) = &settings.forecast {
        core.forecast_model = f.model.name().to_string();
        let t1 = Instant::now();
        let fs = f.clone();
        core = tokio::task::spawn_blocking(move || {
            forecast_all(&mut core, &fs);
            core
        })
        .await
        .wrap_err("the forecasting thread failed")?;
        tracing::info!(target: "pulsewatch::analysis", elapsed = ?t1.elapsed(), "forecast");
    }
    let snapshot = core.snapshot();
    let push = match pusher {
        None => None,
        Some(p) => {
            let body = metrics::render(&snapshot).map_err(|e| eyre!(e))?;
            let t = Instant::now();
            let result = p
                .put_with_retries(body, ONCE_PUSH_ATTEMPTS, ONCE_FIRST_BACKOFF)
                .await
                .map_err(|e| e.0);
            Some(PushOutcome {
                url: p.url().to_string(),
                result,
                seconds: t.elapsed().as_secs_f64(),
            })
        }
    };
    Ok(OnceReport {
        snapshot,
        push,
        source_errors,
    })
}

fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !(1e-3..1e6).contains(&a) {
        format!("{v:.3e}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.4}")
    }
}

impl OnceReport {
    /// The summary table.
    pub fn table(&self) -> String {
        let s = &self.snapshot;
        let mut out = String::new();
        let w = s
            .series
            .iter()
            .map(|v| v.info.name.chars().count())
            .max()
            .unwrap_or(6)
            .clamp(6, 60);
        out.push_str(&format!(
            "{:<w$}  {:<22}  {:>7}  {:>5}  {:>11}  {:>5}  {:>1}  {}\n",
            "series",
            "category",
            "points",
            "anom",
            "value",
            "score",
            "!",
            "forecast [lower, upper]"
        ));
        for v in &s.series {
            let (val, score, flag) = v.last().map_or(("-".into(), "-".into(), " "), |p| {
                (
                    fmt_num(p.value),
                    format!("{:.3}", p.score),
                    if p.anomaly { "!" } else { " " },
                )
            });
            let fc = v.expectation().map_or_else(
                || {
                    v.forecast
                        .as_ref()
                        .and_then(|f| f.error.clone())
                        .map_or("-".to_string(), |e| format!("none: {e}"))
                },
                |e| {
                    format!(
                        "{} [{}, {}]",
                        fmt_num(e.point),
                        fmt_num(e.lower),
                        fmt_num(e.upper)
                    )
                },
            );
            let cat: String = v.info.category.chars().take(22).collect();
            out.push_str(&format!(
                "{:<w$}  {:<22}  {:>7}  {:>5}  {:>11}  {:>5}  {}  {}\n",
                v.info.name, cat, v.ingested, v.anomalies, val, score, flag, fc
            ));
        }
        out.push_str(&format!(
            "\n{} series, {} points, {} flagged by {} at threshold {}; forecasts: {}\n",
            s.series.len(),
            s.ingested(),
            s.anomalies(),
            s.detector,
            s.threshold,
            if s.forecast_model.is_empty() {
                "off"
            } else {
                &s.forecast_model
            }
        ));
        for e in &self.source_errors {
            out.push_str(&format!("source error: {e}\n"));
        }
        match &self.push {
            None => out.push_str("push: off ([pushgateway] url is empty)\n"),
            Some(p) => match &p.result {
                Ok(n) => out.push_str(&format!(
                    "pushed to {} in {:.0} ms ({n} attempt{})\n",
                    p.url,
                    p.seconds * 1000.0,
                    if *n == 1 { "" } else { "s" }
                )),
                Err(e) => out.push_str(&format!("push FAILED: {e}\n")),
            },
        }
        out
    }

    /// The `--json` document (schema [`ONCE_SCHEMA`]).
    pub fn json(&self) -> Value {
        let s = &self.snapshot;
        let series: Vec<Value> = s
            .series
            .iter()
            .map(|v| {
                json!({
                    "id": v.info.id,
                    "name": v.info.name,
                    "category": v.info.category,
                    "points": v.ingested,
                    "anomalies": v.anomalies,
                    "last": v.last().map(|p| json!({
                        "timestamp": p.timestamp,
                        "value": p.value,
                        "score": p.score,
                        "anomaly": p.anomaly,
                    })),
                    "forecast": v.expectation(),
                    "forecast_error": v.forecast.as_ref().and_then(|f| f.error.clone()),
                })
            })
            .collect();
        json!({
            "schema": ONCE_SCHEMA,
            "source": s.source,
            "detector": s.detector,
            "threshold": s.threshold,
            "forecast_model": s.forecast_model,
            "status": s.status,
            "source_errors": self.source_errors,
            "push": self.push.as_ref().map(|p| json!({
                "url": p.url,
                "pushed": p.result.is_ok(),
                "attempts": p.result.as_ref().ok(),
                "seconds": p.seconds,
                "error": p.result.as_ref().err(),
            })),
            "totals": {
                "series": s.series.len(),
                "points": s.ingested(),
                "anomalies": s.anomalies(),
            },
            "series": series,
        })
    }

    /// The error that makes `--once` exit non-zero, if any.
    pub fn failure(&self) -> Option<String> {
        match &self.push {
            Some(PushOutcome { result: Err(e), .. }) => Some(format!("push failed: {e}")),
            _ => None,
        }
    }
}

/// Resolves when SIGINT (Ctrl-C), SIGTERM or SIGHUP (e.g. the SSH session closed) arrives.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let other = async {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) {
            (Ok(mut term), Ok(mut hup)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = hup.recv() => {}
                }
            }
            _ => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let other = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = other => {}
    }
}

/// The background services of a long-running run: the engine, the pusher and the API.
pub struct Services {
    pub engine: EngineHandle,
    pub push: Option<pushgateway::PushTask>,
    /// Where the API listens, when it does.
    pub api_addr: Option<SocketAddr>,
    api: Option<(
        tokio::task::JoinHandle<()>,
        tokio::sync::watch::Sender<bool>,
    )>,
}

impl Services {
    /// Starts the engine on `kind`, the pusher (unless `[pushgateway] url` is empty) and the API
    /// (with `listen`).
    pub async fn start(cfg: &Config, kind: SourceKind, listen: Option<SocketAddr>) -> Result<Self> {
        let settings = engine_settings(cfg, kind)?;
        let pusher =
            pushgateway::Pusher::new(&cfg.pushgateway, kind.name()).map_err(|e| eyre!(e))?;
        let spec = source_spec(cfg, kind)?;
        Self::start_with(cfg, settings, spec, pusher, listen).await
    }

    /// [`Services::start`] with its parts spelled out (tests, demo data).
    pub async fn start_with(
        cfg: &Config,
        settings: EngineSettings,
        spec: SourceSpec,
        pusher: Option<pushgateway::Pusher>,
        listen: Option<SocketAddr>,
    ) -> Result<Self> {
        let engine = engine::spawn(settings, spec).map_err(|e| eyre!(e))?;
        let push = pusher.map(|p| pushgateway::spawn(p, engine.subscribe()));
        let (mut api, mut api_addr) = (None, None);
        if let Some(addr) = listen {
            let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
            let state = ApiState {
                snapshots: engine.subscribe(),
                controller: engine.controller(),
                token: cfg
                    .api
                    .resolved_token()
                    .map_err(|e| eyre!(e))?
                    .map(Arc::from),
                push: push.as_ref().map(|p| p.status.clone()),
            };
            let (bound, task) = api::serve(addr, state, async move {
                let _ = stop_rx.changed().await;
            })
            .await
            .map_err(|e| eyre!(e))?;
            tracing::info!(target: "pulsewatch", %bound, "API listening");
            api = Some((task, stop_tx));
            api_addr = Some(bound);
        }
        Ok(Services {
            engine,
            push,
            api_addr,
            api,
        })
    }

    /// Stops everything; deletes our Pushgateway group when `delete`. Returns a message when the
    /// delete failed.
    pub async fn stop(self, delete: bool) -> Option<String> {
        self.engine.shutdown().await;
        let mut msg = None;
        if let Some(p) = self.push
            && let Some(Err(e)) = p.stop(delete).await
        {
            msg = Some(e.to_string());
        }
        if let Some((task, stop)) = self.api {
            let _ = stop.send(true);
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        msg
    }
}

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
