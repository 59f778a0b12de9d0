//! The engine with its exporters, as every front-end starts it.
//!
//! * [`Services`]: the long-running engine, the Pushgateway pusher and the API (the TUI and
//!   `--headless`), started and stopped as one.
//! * [`once`]: `--once`, the engine in batch mode: each source's one-shot read (the whole NAB
//!   corpus, one PromQL window, or one host reading), [`crate::engine::run_batch`], then one push
//!   (kept on the Pushgateway, as a batch job's result should be). The front-end prints the
//!   report; it fails when the push, or every query, still fails after retries.
//! * The settings every front-end derives from the config ([`engine_settings`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use color_eyre::eyre::{Result, WrapErr, bail, eyre};

use crate::engine::core::CoreSettings;
use crate::engine::state::Snapshot;
use crate::engine::{self, EngineHandle, EngineSettings, SourceSpec};
use crate::export::api::{self, ApiState};
use crate::export::{metrics, pushgateway};
use crate::sources::host;
use crate::sources::promql::{self, PromClient, PromSettings};
use crate::sources::replay::{self, ReplayControl};
use crate::sources::source::SourceKind;
use pulsewatch_core::config::Config;
use pulsewatch_core::forecast::ForecastSettings;
use pulsewatch_core::nab::Corpus;
use pulsewatch_core::store::ModelStore;

/// Push attempts of `--once` before it gives up: 1 s, 2 s and 4 s apart, so a Pushgateway that
/// restarts within about 7 s does not fail a cron run.
pub const ONCE_PUSH_ATTEMPTS: u32 = 4;
/// Poll attempts of `--once` on the Prometheus source while every query fails (same spacing).
pub const ONCE_QUERY_ATTEMPTS: u32 = 4;
/// The first pause between `--once` attempts; it doubles after each.
pub const ONCE_FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// The engine's core settings from the config.
pub fn core_settings(cfg: &Config, source: SourceKind) -> Result<CoreSettings> {
    let detector = cfg.detector.name;
    cfg.detector.validate().map_err(|e| eyre!(e))?;
    let t = cfg.detector.threshold;
    Ok(CoreSettings {
        source,
        detector,
        detector_cfg: cfg.detector.clone(),
        threshold: t,
        history: cfg.source.history.max(1),
        store: Some(ModelStore::new(cfg.retrain.model_dir.clone())),
        events_keep: cfg.events.keep,
    })
}

/// Engine settings from the config.
pub fn engine_settings(cfg: &Config, source: SourceKind) -> Result<EngineSettings> {
    let forecast = ForecastSettings::for_config(cfg).map_err(|e| eyre!(e))?;
    cfg.replay.validate().map_err(|e| eyre!(e))?;
    let speed = cfg.replay.speed;
    Ok(EngineSettings {
        core: core_settings(cfg, source)?,
        forecast: Some(forecast),
        retrain_interval: cfg.retrain.interval.0,
        replay: ReplayControl {
            paused: cfg.replay.paused,
            speed,
        },
        events_file: (!cfg.events.file.as_os_str().is_empty()).then(|| cfg.events.file.clone()),
        auto_choices_file: Some(engine::choices::path_in(
            &cfg.retrain.model_dir,
            cfg.source.shard().map_err(|e| eyre!(e))?,
        )),
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

/// The Pushgateway pusher of `kind` (with this instance's shard in its group), `None` when
/// export is off.
pub fn pusher(cfg: &Config, kind: SourceKind) -> Result<Option<pushgateway::Pusher>> {
    let shard = cfg.source.shard().map_err(|e| eyre!(e))?;
    Ok(pushgateway::Pusher::new(&cfg.pushgateway, kind.name())
        .map_err(|e| eyre!(e))?
        .map(|p| p.for_shard(shard)))
}

/// `[prometheus]` with this instance's shard.
fn prom_settings(cfg: &Config) -> Result<PromSettings> {
    let mut s = PromSettings::from_config(&cfg.prometheus).map_err(|e| eyre!(e))?;
    s.shard = cfg.source.shard().map_err(|e| eyre!(e))?;
    Ok(s)
}

/// The corpus of `[data] dir`, only this instance's shard of it.
fn sharded_corpus(cfg: &Config) -> Result<Corpus> {
    let mut corpus = load_corpus(cfg)?;
    if let Some(sh) = cfg.source.shard().map_err(|e| eyre!(e))? {
        corpus.series.retain(|s| sh.owns(&s.key));
    }
    Ok(corpus)
}

/// The live source for `kind`.
pub fn source_spec(cfg: &Config, kind: SourceKind) -> Result<SourceSpec> {
    Ok(match kind {
        SourceKind::Nab => {
            let corpus = sharded_corpus(cfg)?;
            SourceSpec::Replay {
                series: Arc::new(corpus.series),
                target: cfg.data.dir.display().to_string(),
                loop_at_end: cfg.replay.loop_at_end,
            }
        }
        SourceKind::Prometheus => {
            let s = prom_settings(cfg)?;
            SourceSpec::Prometheus(Box::new(PromClient::new(s).map_err(|e| eyre!(e))?))
        }
        SourceKind::Host => SourceSpec::Host(cfg.host.interval.0.max(Duration::from_millis(200))),
    })
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
    /// Queries that answered with no series (PromQL source).
    pub empty_queries: Vec<String>,
    /// Queries the source ran (PromQL source; 0 for the others).
    pub queries: usize,
}

/// `--once` exit codes (README, "Exit codes").
pub mod exit {
    /// Scored and pushed (or export off).
    pub const OK: u8 = 0;
    /// The push failed after its retries, a query failed, or input/config errors.
    pub const ERROR: u8 = 1;
    /// Every query answered, but none returned a series: nothing was scored.
    pub const NOTHING_FOUND: u8 = 2;
}

/// What `kind` has now, as the source events a live run would have sent (each source's one-shot
/// read), and the errors of the queries that failed.
async fn read_once(cfg: &Config, kind: SourceKind) -> Result<promql::OnceRead> {
    let events = match kind {
        SourceKind::Nab => {
            let corpus = sharded_corpus(cfg)?;
            let target = cfg.data.dir.display().to_string();
            replay::read_all(&corpus.series, &target)
        }
        SourceKind::Prometheus => {
            let client = PromClient::new(prom_settings(cfg)?).map_err(|e| eyre!(e))?;
            return promql::read_once(&client, ONCE_QUERY_ATTEMPTS, ONCE_FIRST_BACKOFF)
                .await
                .map_err(|e| eyre!(e));
        }
        SourceKind::Host => host::read_once().await.map_err(|e| eyre!(e))?,
    };
    Ok(promql::OnceRead {
        events,
        ..Default::default()
    })
}

/// `--once`: ingest, score, forecast, push. The push result is in the report (the caller decides
/// the exit code); input and config errors are errors.
pub async fn once(cfg: &Config, kind: SourceKind) -> Result<OnceReport> {
    let settings = engine_settings(cfg, kind)?;
    let pusher = pusher(cfg, kind)?;
    let promql::OnceRead {
        events,
        errors: source_errors,
        empty: empty_queries,
    } = read_once(cfg, kind).await?;
    let queries = match kind {
        SourceKind::Prometheus => cfg.prometheus.queries.len(),
        _ => 0,
    };
    let snapshot = tokio::task::spawn_blocking(move || engine::run_batch(&settings, events))
        .await
        .wrap_err("the batch engine thread failed")?
        .map_err(|e| eyre!(e))?;
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
        empty_queries,
        queries,
    })
}

impl OnceReport {
    /// The error that makes `--once` exit non-zero, if any.
    pub fn failure(&self) -> Option<String> {
        let mut why = Vec::new();
        if let Some(PushOutcome { result: Err(e), .. }) = &self.push {
            why.push(format!("push failed: {e}"));
        }
        if !self.source_errors.is_empty() {
            why.push(format!(
                "{} of {} queries failed",
                self.source_errors.len(),
                self.queries
            ));
        }
        if why.is_empty() && self.nothing_found() {
            let names: Vec<String> = self
                .empty_queries
                .iter()
                .map(|q| format!("{q:?}"))
                .collect();
            why.push(format!(
                "no query returned a series ({}): nothing to score",
                names.join(", ")
            ));
        }
        (!why.is_empty()).then(|| why.join("; "))
    }

    /// Every query answered and none returned a series.
    pub fn nothing_found(&self) -> bool {
        self.queries > 0 && self.empty_queries.len() == self.queries
    }

    /// The process exit code ([`exit`]).
    pub fn exit_code(&self) -> u8 {
        let push_failed = matches!(&self.push, Some(PushOutcome { result: Err(_), .. }));
        if push_failed || !self.source_errors.is_empty() {
            exit::ERROR
        } else if self.nothing_found() {
            exit::NOTHING_FOUND
        } else {
            exit::OK
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
        let pusher = pusher(cfg, kind)?;
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
