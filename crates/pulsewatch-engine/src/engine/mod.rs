//! The engine: ingest → detect / forecast → snapshots, with a control channel back.
//!
//! ```text
//!   source task ──SourceEvent──► engine loop ──watch<Arc<Snapshot>>──► TUI, headless, exporters, API
//!   (replay/promql/host)           │    ▲
//!                                  │    └── Control (pause, speed, retrain, spike, shutdown)
//!                                  ├──► forecast service ──watch<ForecastSnapshot>──┐
//!                                  │◄────────────────────────────────────────────────┘
//!                                  └──► retrain jobs (blocking pool) ──TrainEvent──► engine loop
//! ```
//!
//! The engine loop owns every detector. The source, the forecaster and retraining run in their
//! own tasks, so a slow Prometheus, a long Prophet fit or an LSTM training never delays scoring;
//! consumers read the latest snapshot whenever they like and never block the engine.

pub mod choices;
pub mod core;
pub mod history;
pub mod state;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

use self::core::{Core, CoreSettings};
use self::state::{Snapshot, TrainState};
use crate::analysis::{self, AnalysisRequest, EngineEvent, HoldoutOutcome, SpikeOutcome};
use crate::forecast_service::{ForecastHandle, ForecastService, ForecastSnapshot};
use crate::retrain::{
    RetrainRequest, RetrainSchedule, TrainEvent, TrainJob, spawn_group_retrain, spawn_retrain,
};
use crate::sources::promql::PromClient;
use crate::sources::replay::{self, ReplayControl};
use crate::sources::source::SourceEvent;
use crate::sources::{host, promql};
use pulsewatch_core::detect::Point;
use pulsewatch_core::detect::group::GroupFit;
use pulsewatch_core::domain::ModelKind;
use pulsewatch_core::forecast::ForecastSettings;
use pulsewatch_core::forecast::SeriesForecast;
use pulsewatch_core::nab::Series;

/// How often the engine publishes a snapshot when something changed.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(250);

/// Where the engine's series come from.
pub enum SourceSpec {
    /// Replay of NAB series; `target` names the corpus in status messages.
    Replay {
        series: Arc<Vec<Series>>,
        target: String,
        loop_at_end: bool,
    },
    Prometheus(Box<PromClient>),
    /// This machine, sampled every interval.
    Host(Duration),
    /// Events from elsewhere (tests, embedding).
    Channel(mpsc::Receiver<SourceEvent>),
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub core: CoreSettings,
    /// `None`: no forecasting.
    pub forecast: Option<ForecastSettings>,
    /// `[retrain] interval` (zero: on demand only).
    pub retrain_interval: Duration,
    /// Initial replay state.
    pub replay: ReplayControl,
    /// Where anomaly events are kept across restarts (`None`: memory only).
    pub events_file: Option<std::path::PathBuf>,
    /// Where batch runs keep `auto`'s validated choices between runs ([`choices`]; `None`:
    /// every run validates afresh).
    pub auto_choices_file: Option<std::path::PathBuf>,
}

/// Commands to the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    Pause,
    Resume,
    TogglePause,
    /// Replay speed, points per second per series.
    SetSpeed(f64),
    /// Retrain one series' detector and forecast, or all of them (`None`).
    Retrain {
        series: Option<String>,
    },
    /// Stop running retrains (the previous models stay).
    CancelRetrain {
        series: Option<String>,
    },
    /// Add a spike of `magnitude` standard deviations to the next point of a series.
    InjectSpike {
        series: String,
        magnitude: f64,
    },
    /// Switch every series' forecast to another model (refits everything).
    SetForecastModel(pulsewatch_core::forecast::ModelKind),
    /// Run an analysis job; its result arrives as an [`EngineEvent`] ([`EngineHandle::events`]).
    Analyse(AnalysisRequest),
    Shutdown,
}

/// Sends [`Control`]s; cheap to clone.
#[derive(Debug, Clone)]
pub struct Controller(mpsc::UnboundedSender<Control>);

impl Controller {
    /// `false` when the engine has stopped.
    pub fn send(&self, c: Control) -> bool {
        self.0.send(c).is_ok()
    }
}

/// A running engine.
pub struct EngineHandle {
    controller: Controller,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    events: broadcast::Sender<EngineEvent>,
    task: JoinHandle<()>,
}

impl EngineHandle {
    pub fn controller(&self) -> Controller {
        self.controller.clone()
    }

    pub fn send(&self, c: Control) -> bool {
        self.controller.send(c)
    }

    /// A receiver of snapshots (each consumer takes its own).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshots.clone()
    }

    /// A receiver of [`EngineEvent`]s (analysis results), from now on.
    pub fn events(&self) -> broadcast::Receiver<EngineEvent> {
        self.events.subscribe()
    }

    pub fn latest(&self) -> Arc<Snapshot> {
        self.snapshots.borrow().clone()
    }

    /// Stops the engine and its tasks and waits for it.
    pub async fn shutdown(self) {
        self.controller.send(Control::Shutdown);
        let _ = self.task.await;
    }
}

/// Starts the engine and its source on the current tokio runtime.
pub fn spawn(settings: EngineSettings, source: SourceSpec) -> Result<EngineHandle, String> {
    let forecast = match &settings.forecast {
        Some(f) => Some(ForecastService::spawn_with(f.clone()).map_err(|e| e.to_string())?),
        None => None,
    };
    let (src_tx, src_rx) = mpsc::channel::<SourceEvent>(1024);
    let (replay_tx, replay_rx) = watch::channel(settings.replay);
    let source_task = match source {
        SourceSpec::Replay {
            series,
            target,
            loop_at_end,
        } => Some(tokio::spawn(replay::run(
            series,
            target,
            loop_at_end,
            replay_rx,
            src_tx,
        ))),
        SourceSpec::Prometheus(client) => Some(tokio::spawn(promql::run(*client, src_tx))),
        SourceSpec::Host(every) => Some(tokio::spawn(host::run(every, src_tx))),
        SourceSpec::Channel(rx) => {
            drop(src_tx);
            return Ok(start(settings, forecast, rx, replay_tx, None));
        }
    };
    Ok(start(settings, forecast, src_rx, replay_tx, source_task))
}

/// The engine in batch mode (`--once`): applies `events` in order exactly as the loop does
/// ([`Core::apply`]), forecasts every series in parallel with the function the forecast service
/// fits with ([`SeriesForecast::fit_with`], reusing `auto`'s choices from the previous run:
/// [`choices`]), and returns the final snapshot.
pub fn run_batch(
    settings: &EngineSettings,
    events: Vec<SourceEvent>,
) -> Result<Arc<Snapshot>, String> {
    let mut core = Core::new(settings.core.clone());
    core.paused = settings.replay.paused;
    core.speed = settings.replay.speed;
    let t0 = Instant::now();
    for ev in events {
        core.apply(ev);
    }
    tracing::info!(target: "pulsewatch::analysis", series = core.series.len(), elapsed = ?t0.elapsed(), "scored");
    if let Some(f) = &settings.forecast {
        core.forecast_model = f.model.name().to_string();
        let t1 = Instant::now();
        let jobs: Vec<(String, Vec<Point>)> = core
            .series
            .iter()
            .map(|(id, t)| (id.clone(), t.history()))
            .collect();
        // `auto`'s choices from the previous run, reused while fresh.
        let file = settings
            .auto_choices_file
            .as_deref()
            .filter(|_| f.model == ModelKind::Auto);
        let kept = match file.map(|p| choices::load(p, f)) {
            Some(Ok(kept)) => kept,
            Some(Err(e)) => {
                tracing::warn!(target: "pulsewatch::analysis", error = %e, "auto's saved choices unusable; validating every series");
                Default::default()
            }
            None => Default::default(),
        };
        let fits = pulsewatch_core::par::map(&jobs, |(id, pts)| {
            SeriesForecast::fit_with(id, pts, f, kept.get(id))
        })
        .map_err(|p| format!("forecasting {} failed: {}", jobs[p.index].0, p.message))?;
        let mut keep = std::collections::BTreeMap::new();
        for ((id, _), (fit, memo)) in jobs.iter().zip(fits) {
            core.set_forecast(id, Arc::new(fit));
            if let Some(m) = memo {
                keep.insert(id.clone(), m);
            }
        }
        if let Some(path) = file {
            let reused = keep
                .iter()
                .filter(|(id, m)| kept.get(*id) == Some(*m))
                .count();
            tracing::info!(target: "pulsewatch::analysis", reused, validated = keep.len() - reused, file = %path.display(), "auto's choices");
            let horizon = i64::try_from(f.horizon.as_secs()).unwrap_or(i64::MAX);
            let ran = |id: &str| core.series.contains_key(id);
            if let Err(e) = choices::save_merged(path, f, keep, ran, horizon) {
                tracing::warn!(target: "pulsewatch::analysis", error = %e, "cannot keep auto's choices for the next run");
            }
        }
        tracing::info!(target: "pulsewatch::analysis", elapsed = ?t1.elapsed(), "forecast");
    }
    Ok(core.snapshot())
}

fn start(
    settings: EngineSettings,
    forecast: Option<(ForecastHandle, watch::Receiver<Arc<ForecastSnapshot>>)>,
    src_rx: mpsc::Receiver<SourceEvent>,
    replay_tx: watch::Sender<ReplayControl>,
    source_task: Option<JoinHandle<()>>,
) -> EngineHandle {
    let mut core = Core::new(settings.core.clone());
    core.paused = settings.replay.paused;
    core.speed = settings.replay.speed;
    core.forecast_model = settings
        .forecast
        .as_ref()
        .map(|f| f.model.name().to_string())
        .unwrap_or_default();
    let writer = settings
        .events_file
        .as_deref()
        .and_then(|path| open_events(&mut core, path));
    let (snap_tx, snap_rx) = watch::channel(core.snapshot());
    let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
    let (train_tx, train_rx) = mpsc::unbounded_channel();
    let (group_tx, group_rx) = mpsc::unbounded_channel();
    let (events, _) = broadcast::channel(EVENT_BUFFER);
    let lp = Loop {
        events: events.clone(),
        core,
        settings,
        forecast,
        replay_tx,
        snap_tx,
        train_tx,
        jobs: HashMap::new(),
        group_tx,
        group_jobs: HashMap::new(),
        fc_generation: 0,
        fc_pending: Vec::new(),
        fc_index: HashMap::new(),
        writer,
    };
    let task = tokio::spawn(lp.run(src_rx, ctl_rx, (train_rx, group_rx), source_task));
    EngineHandle {
        controller: Controller(ctl_tx),
        snapshots: snap_rx,
        events,
        task,
    }
}

/// Engine events kept for a slow consumer before it starts missing them.
const EVENT_BUFFER: usize = 64;

/// The thread that appends closed anomaly events to the events file, so file I/O never runs on
/// the engine loop.
struct EventWriter {
    tx: std::sync::mpsc::Sender<Vec<Arc<pulsewatch_core::events::AnomalyEvent>>>,
    thread: std::thread::JoinHandle<()>,
}

/// Loads the events file into `core` and starts its writer; a damaged file is reported once
/// (kept aside by [`EventFile::open`]); an unreadable one leaves events in memory only.
fn open_events(core: &mut Core, path: &std::path::Path) -> Option<EventWriter> {
    use pulsewatch_core::events::EventFile;
    let opened = match EventFile::open(path, core.settings.events_keep) {
        Ok(o) => o,
        Err(e) => {
            let msg = format!("events file: {e}; anomaly events are kept in memory only");
            tracing::warn!(target: "pulsewatch", "{msg}");
            core.events_warning = Some(msg);
            return None;
        }
    };
    if let Some(w) = &opened.warning {
        tracing::warn!(target: "pulsewatch", "{w}");
        core.events_warning = Some(w.clone());
    }
    tracing::info!(target: "pulsewatch", path = %path.display(), events = opened.events.len(), "anomaly events loaded");
    core.restore_events(opened.events);
    let mut file = opened.file;
    let (tx, rx) = std::sync::mpsc::channel::<Vec<Arc<pulsewatch_core::events::AnomalyEvent>>>();
    let thread = std::thread::Builder::new()
        .name("pulsewatch-events".into())
        .spawn(move || {
            let mut failing = false;
            for batch in rx {
                match file.append(&batch) {
                    Ok(()) => failing = false,
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(target: "pulsewatch", error = %e, "cannot append anomaly events");
                    }
                    Err(_) => {}
                }
            }
        })
        .ok()?;
    Some(EventWriter { tx, thread })
}

struct Loop {
    events: broadcast::Sender<EngineEvent>,
    core: Core,
    settings: EngineSettings,
    forecast: Option<(ForecastHandle, watch::Receiver<Arc<ForecastSnapshot>>)>,
    replay_tx: watch::Sender<ReplayControl>,
    snap_tx: watch::Sender<Arc<Snapshot>>,
    train_tx: mpsc::UnboundedSender<TrainEvent>,
    jobs: HashMap<String, TrainJob>,
    /// Retrains of multivariate groups, by group key (their events come on their own channel
    /// and name the key).
    group_tx: mpsc::UnboundedSender<TrainEvent>,
    group_jobs: HashMap<String, TrainJob<GroupFit>>,
    /// Bumped when the forecast service is replaced (the loop re-subscribes).
    fc_generation: u64,
    /// New points for the forecaster, sent in one batch per publish tick.
    fc_pending: Vec<(String, Vec<Point>)>,
    /// Where each series is in `fc_pending`.
    fc_index: HashMap<String, usize>,
    writer: Option<EventWriter>,
}

/// Runs `f` where blocking is allowed: scoring may fit a model (Isolation Forest, LSTM) on the
/// way, which must not stall a runtime worker.
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

async fn forecast_changed(rx: &mut Option<watch::Receiver<Arc<ForecastSnapshot>>>) -> bool {
    match rx {
        Some(r) => r.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}

impl Loop {
    async fn run(
        mut self,
        mut src_rx: mpsc::Receiver<SourceEvent>,
        mut ctl_rx: mpsc::UnboundedReceiver<Control>,
        (mut train_rx, mut group_rx): (
            mpsc::UnboundedReceiver<TrainEvent>,
            mpsc::UnboundedReceiver<TrainEvent>,
        ),
        source_task: Option<JoinHandle<()>>,
    ) {
        let mut publish = tokio::time::interval(PUBLISH_EVERY);
        publish.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut schedule = RetrainSchedule::new(self.settings.retrain_interval, Instant::now());
        let mut fc_rx = self.forecast.as_ref().map(|(_, rx)| rx.clone());
        let mut fc_gen = self.fc_generation;
        let mut source_open = true;
        loop {
            if fc_gen != self.fc_generation {
                fc_gen = self.fc_generation;
                fc_rx = self.forecast.as_ref().map(|(_, rx)| rx.clone());
            }
            tokio::select! {
                c = ctl_rx.recv() => match c {
                    None | Some(Control::Shutdown) => break,
                    Some(c) => self.control(c, &mut schedule),
                },
                ev = src_rx.recv(), if source_open => match ev {
                    Some(ev) => self.source_event(ev),
                    None => source_open = false,
                },
                ok = forecast_changed(&mut fc_rx) => {
                    if ok {
                        self.merge_forecasts();
                    } else {
                        fc_rx = None;
                    }
                }
                Some(te) = train_rx.recv() => self.train_event(te).await,
                Some(te) = group_rx.recv() => self.group_event(te).await,
                _ = publish.tick() => {
                    if schedule.due(Instant::now()) {
                        self.retrain(None);
                    }
                    self.flush_forecast();
                    self.write_events();
                    if self.core.is_changed() {
                        let _ = self.snap_tx.send(self.core.snapshot());
                    }
                }
            }
        }
        for job in self.jobs.values() {
            job.cancel();
        }
        for job in self.group_jobs.values() {
            job.cancel();
        }
        if let Some((h, _)) = &self.forecast {
            h.shutdown();
        }
        if let Some(t) = source_task {
            t.abort();
        }
        // Running events end with the run, and are kept.
        self.core.close_all();
        self.write_events();
        if let Some(w) = self.writer.take() {
            drop(w.tx);
            let _ = tokio::task::spawn_blocking(move || w.thread.join()).await;
        }
        let _ = self.snap_tx.send(self.core.snapshot());
    }

    /// Hands closed events to the events file's writer.
    fn write_events(&mut self) {
        let closed = self.core.take_closed();
        if let (Some(w), false) = (&self.writer, closed.is_empty()) {
            let _ = w.tx.send(closed);
        }
    }

    fn source_event(&mut self, ev: SourceEvent) {
        let core = &mut self.core;
        let fed = blocking(|| core.apply(ev));
        if let (Some((id, points, restart)), Some((fc, _))) = (fed, &self.forecast) {
            if restart {
                if let Some(i) = self.fc_index.get(&id) {
                    self.fc_pending[*i].1.clear();
                }
                fc.set_history(&id, points);
            } else if !points.is_empty() {
                match self.fc_index.get(&id) {
                    Some(&i) => self.fc_pending[i].1.extend(points),
                    None => {
                        self.fc_index.insert(id.clone(), self.fc_pending.len());
                        self.fc_pending.push((id, points));
                    }
                }
            }
        }
    }

    fn flush_forecast(&mut self) {
        if self.fc_pending.is_empty() {
            return;
        }
        let mut batch = std::mem::take(&mut self.fc_pending);
        self.fc_index.clear();
        batch.retain(|(_, p)| !p.is_empty());
        if let Some((fc, _)) = &self.forecast {
            fc.update_many(batch);
        }
    }

    fn merge_forecasts(&mut self) {
        let Some(rx) = self.forecast.as_mut().map(|(_, rx)| rx) else {
            return;
        };
        let snap = rx.borrow_and_update().clone();
        for (id, f) in &snap.series {
            self.core.set_forecast(id, f.clone());
        }
    }

    fn control(&mut self, c: Control, schedule: &mut RetrainSchedule) {
        match c {
            Control::Pause | Control::Resume | Control::TogglePause => {
                self.core.paused = match c {
                    Control::Pause => true,
                    Control::Resume => false,
                    _ => !self.core.paused,
                };
                self.core.touch();
                self.push_replay();
            }
            Control::SetSpeed(s) => {
                if s.is_finite() && s > 0.0 {
                    self.core.speed = s;
                    self.core.touch();
                    self.push_replay();
                }
            }
            Control::Retrain { series } => {
                self.flush_forecast();
                schedule.reset(Instant::now());
                self.retrain(series);
            }
            Control::CancelRetrain { series } => {
                for (id, job) in &self.jobs {
                    if series.as_ref().is_none_or(|s| s == id) {
                        job.cancel();
                    }
                }
                // A member's cancel stops its group's retrain.
                let kind = self.settings.core.detector;
                let cfg = &self.settings.core.detector_cfg;
                let group = series.as_ref().and_then(|s| {
                    let t = self.core.tracked(s)?;
                    kind.group_key(cfg, &t.info).map(str::to_string)
                });
                for (key, job) in &self.group_jobs {
                    if series.is_none() || group.as_deref() == Some(key) {
                        job.cancel();
                    }
                }
            }
            Control::InjectSpike { series, magnitude } => {
                if let Some(v) = self.core.inject_spike(&series, magnitude) {
                    tracing::info!(target: "pulsewatch::analysis", series = %series, magnitude, spike = v, "spike queued");
                }
            }
            Control::SetForecastModel(model) => self.switch_forecast(model),
            Control::Analyse(req) => self.analyse(req),
            Control::Shutdown => {}
        }
    }

    /// Restarts the forecast service with another model and gives it every series' history.
    fn switch_forecast(&mut self, model: pulsewatch_core::forecast::ModelKind) {
        self.fc_pending.clear();
        self.fc_index.clear();
        let Some(mut settings) = self.settings.forecast.clone() else {
            return;
        };
        if settings.model == model {
            return;
        }
        settings.model = model;
        match ForecastService::spawn_with(settings.clone()) {
            Ok((handle, rx)) => {
                if let Some((old, _)) = self.forecast.take() {
                    old.shutdown();
                }
                for id in self.core.series_ids().cloned().collect::<Vec<_>>() {
                    if let Some(t) = self.core.tracked_mut(&id) {
                        let h = t.history();
                        t.forecast = None;
                        t.mark();
                        handle.set_history(&id, h);
                    }
                }
                self.settings.forecast = Some(settings);
                self.core.forecast_model = model.name().to_string();
                self.core.touch();
                self.forecast = Some((handle, rx));
                self.fc_generation += 1;
                tracing::info!(target: "pulsewatch::analysis", model = model.name(), "forecast model switched");
            }
            Err(e) => {
                tracing::warn!(target: "pulsewatch::analysis", error = %e, "cannot switch the forecast model");
            }
        }
    }

    /// Runs an analysis job on the newest [`analysis::TEST_POINTS`] of a series, on the
    /// blocking pool; the result goes out as an event.
    fn analyse(&mut self, req: AnalysisRequest) {
        let (AnalysisRequest::Spikes { series, .. } | AnalysisRequest::Holdout { series, .. }) =
            &req;
        let (request, events) = (format!("{req:?}"), self.events.clone());
        let refuse = move |reason: String| {
            let _ = events.send(EngineEvent::Refused { request, reason });
        };
        let Some(t) = self.core.tracked(series) else {
            return refuse(format!("no series {series:?}"));
        };
        let h = t.history();
        let points = h[h.len().saturating_sub(analysis::TEST_POINTS)..].to_vec();
        let tx = self.events.clone();
        match req {
            AnalysisRequest::Spikes {
                series,
                spec,
                at_back,
            } => {
                if points.len() < analysis::MIN_SPIKE_POINTS {
                    return refuse(format!(
                        "{series} has {} points; the spike test needs {}",
                        points.len(),
                        analysis::MIN_SPIKE_POINTS
                    ));
                }
                let kind = self.settings.core.detector;
                let cfg = self.settings.core.detector_cfg.clone();
                let threshold = self.settings.core.threshold;
                tokio::task::spawn_blocking(move || {
                    let report =
                        analysis::spike_test(&points, spec, at_back, kind, &cfg, threshold);
                    let _ = tx.send(EngineEvent::Spikes(SpikeOutcome { series, report }));
                });
            }
            AnalysisRequest::Holdout { series, model } => {
                let Some(settings) = self.settings.forecast.clone() else {
                    return refuse("forecasting is off".into());
                };
                tokio::task::spawn_blocking(move || {
                    let result = analysis::holdout_accuracy(&points, &settings, model);
                    let _ = tx.send(EngineEvent::Holdout(HoldoutOutcome {
                        series,
                        model,
                        result,
                    }));
                });
            }
        }
    }

    fn push_replay(&self) {
        let _ = self.replay_tx.send(ReplayControl {
            paused: self.core.paused,
            speed: self.core.speed,
        });
    }

    /// Retrains detectors (on the blocking pool for those with a fit step; streaming detectors
    /// restart warm on the kept history) and refits forecasts.
    fn retrain(&mut self, which: Option<String>) {
        let ids: Vec<String> = match &which {
            Some(id) => vec![id.clone()],
            None => self.core.series_ids().cloned().collect(),
        };
        let kind = self.settings.core.detector;
        let cfg = self.settings.core.detector_cfg.clone();
        let mut groups: Vec<(String, String)> = Vec::new();
        for id in ids {
            let Some(t) = self.core.tracked_mut(&id) else {
                continue;
            };
            if let Some(key) = kind.group_key(&cfg, &t.info) {
                // A group's model is refitted once, for all its members.
                if !groups.iter().any(|(k, _)| k == key) {
                    groups.push((key.to_string(), id.clone()));
                }
                if let Some((fc, _)) = &self.forecast
                    && which.is_some()
                {
                    fc.refresh(&id);
                }
                continue;
            }
            let history = t.history();
            let mut fresh = kind.build(&cfg);
            if fresh.trainable().is_some() {
                if let Some(old) = self.jobs.remove(&id) {
                    old.cancel();
                }
                t.training = Some(TrainState::Running {
                    done: 0,
                    total: 0,
                    loss: None,
                });
                t.mark();
                let job = spawn_retrain(
                    RetrainRequest {
                        detector: fresh,
                        name: kind.name().to_string(),
                        params: kind.params(&cfg),
                        series: id.clone(),
                        history,
                        store: self.settings.core.store.clone(),
                    },
                    self.train_tx.clone(),
                );
                self.jobs.insert(id.clone(), job);
            } else {
                let t0 = Instant::now();
                blocking(|| {
                    for p in &history {
                        fresh.update(*p);
                    }
                });
                t.detector = fresh;
                t.detector_fit = Some(t0.elapsed());
                t.training = Some(TrainState::Finished {
                    seconds: t0.elapsed().as_secs_f64(),
                    save_error: None,
                });
                t.mark();
            }
            if let Some((fc, _)) = &self.forecast
                && which.is_some()
            {
                fc.refresh(&id);
            }
        }
        for (key, asked) in groups {
            self.retrain_group(&key, &asked);
        }
        if let (Some((fc, _)), None) = (&self.forecast, &which) {
            fc.refresh_all();
        }
    }

    /// Refits multivariate group `key`'s model on the blocking pool (`asked`: the member the
    /// retrain was asked for, which shows why when the group cannot be refitted yet).
    fn retrain_group(&mut self, key: &str, asked: &str) {
        let fit = match self.core.prepare_group_fit(key) {
            Ok(fit) => fit,
            Err(error) => {
                self.core.set_training(asked, TrainState::Failed { error });
                return;
            }
        };
        if let Some(old) = self.group_jobs.remove(key) {
            old.cancel();
        }
        let running = TrainState::Running {
            done: 0,
            total: 0,
            loss: None,
        };
        for m in fit.members() {
            self.core.set_training(m, running.clone());
        }
        let kind = self.settings.core.detector;
        let job = spawn_group_retrain(
            fit,
            kind.name().to_string(),
            kind.params(&self.settings.core.detector_cfg),
            self.settings.core.store.clone(),
            self.group_tx.clone(),
        );
        self.group_jobs.insert(key.to_string(), job);
    }

    /// A group retrain's event (`series` is the group's key): shown on every member.
    async fn group_event(&mut self, te: TrainEvent) {
        let key = match &te {
            TrainEvent::Progress { series, .. }
            | TrainEvent::Finished { series, .. }
            | TrainEvent::Cancelled { series }
            | TrainEvent::Failed { series, .. } => series.clone(),
        };
        let mut state = match te {
            TrainEvent::Progress { progress, .. } => TrainState::progress(&progress),
            TrainEvent::Finished { elapsed, saved, .. } => {
                tracing::info!(target: "pulsewatch::analysis", group = %key, ?elapsed, "group retrained");
                TrainState::Finished {
                    seconds: elapsed.as_secs_f64(),
                    save_error: saved.err(),
                }
            }
            TrainEvent::Cancelled { .. } => TrainState::Cancelled,
            TrainEvent::Failed { error, .. } => {
                tracing::warn!(target: "pulsewatch::analysis", group = %key, %error, "group retrain failed");
                TrainState::Failed { error }
            }
        };
        let members = self.core.group_members(&key);
        if !matches!(state, TrainState::Running { .. })
            && let Some(job) = self.group_jobs.remove(&key)
            && let Some(fit) = job.finish().await
            && !self.core.install_group_fit(fit)
        {
            state = TrainState::Failed {
                error: format!("the members of instance {key} changed during the retrain"),
            };
        }
        for m in members {
            self.core.set_training(&m, state.clone());
        }
    }

    async fn train_event(&mut self, te: TrainEvent) {
        match te {
            TrainEvent::Progress { series, progress } => {
                self.core
                    .set_training(&series, TrainState::progress(&progress));
            }
            TrainEvent::Finished {
                series,
                elapsed,
                saved,
            } => {
                if let Some(job) = self.jobs.remove(&series)
                    && let Some(det) = job.finish().await
                    && let Some(t) = self.core.tracked_mut(&series)
                {
                    t.detector = det;
                    // The job saved it (or could not: then it is not retried here).
                    t.saved = true;
                }
                self.core.set_training(
                    &series,
                    TrainState::Finished {
                        seconds: elapsed.as_secs_f64(),
                        save_error: saved.err(),
                    },
                );
                tracing::info!(target: "pulsewatch::analysis", series = %series, ?elapsed, "retrained");
            }
            TrainEvent::Cancelled { series } => {
                self.jobs.remove(&series);
                self.core.set_training(&series, TrainState::Cancelled);
            }
            TrainEvent::Failed { series, error } => {
                self.jobs.remove(&series);
                tracing::warn!(target: "pulsewatch::analysis", series = %series, %error, "retrain failed");
                self.core
                    .set_training(&series, TrainState::Failed { error });
            }
        }
    }
}
