//! The engine's forecast service: keeps the latest forecast of every series it is fed, refits
//! them off the caller's thread, and publishes immutable snapshots through a
//! [`tokio::sync::watch`] channel for the TUI and the exporters.
//!
//! ```no_run
//! # async fn demo(cfg: pulsewatch_core::config::Config) -> Result<(), Box<dyn std::error::Error>> {
//! use pulsewatch_core::domain::Point;
//! use pulsewatch_engine::forecast_service::ForecastService;
//!
//! let (handle, mut snapshots) = ForecastService::spawn(&cfg.forecast)?;
//! handle.update_history("realKnownCause/nyc_taxi.csv", vec![Point { timestamp: 0, value: 1.0 }]);
//! snapshots.changed().await?;
//! let snap = snapshots.borrow().clone();
//! if let Some(s) = snap.get("realKnownCause/nyc_taxi.csv") {
//!     println!("{:?} next: {:?}", s.forecast.as_ref().map(|f| &f.detail), s.next);
//! }
//! handle.refresh("realKnownCause/nyc_taxi.csv"); // retrain now
//! # Ok(()) }
//! ```
//!
//! Rules:
//! * A series is fitted as soon as it first has [`pulsewatch_core::forecast::model::MIN_POINTS`]
//!   points, then again every `[forecast] refresh` if new points arrived since its last fit
//!   (`0s`: only on demand), and whenever [`ForecastHandle::refresh`] asks for it.
//! * One fit runs at a time, on tokio's blocking pool (`spawn_blocking`); further requests wait
//!   in a queue (each series at most once; on-demand requests go first). Scheduled fits keep to
//!   a budget of [`FIT_DUTY`] of one core: after a fit that took `d`, the next scheduled one
//!   starts `d × (1 / FIT_DUTY − 1)` later, so thousands of series are refitted in turn at a
//!   flat CPU cost and scoring is never starved (on-demand fits skip the wait).
//! * `auto` keeps each series' validated choice and refits only the chosen model until the
//!   series has grown by one horizon ([`AutoMemo::fresh_for`]); then, or on demand, it
//!   validates again. Steady-state cost per series is one fit of its model.
//! * A failed fit keeps the previous forecast and records the error.
//! * Each snapshot holds, per series, the latest forecast, the replay time (the newest point's
//!   timestamp), the expectation *at* the replay time (the forecast step on that timestamp, when
//!   the point arrived after the fit) and the one-step expectation (the first forecast step after
//!   the replay time). Expectations are recomputed on every [`ForecastHandle::update_history`],
//!   without refitting.
//! * Each series' history is a [`ForecastHistory`]: at most 288 buckets a day and
//!   [`pulsewatch_core::forecast::MAX_BUCKETS`] in all, so per-series state is bounded at any
//!   sampling interval.
//! * Snapshots are published at most every [`PUBLISH_EVERY`] (one copy of the series map per
//!   publish, not per fit).
//! * The service stops when every handle is dropped or [`ForecastHandle::shutdown`] is called.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use pulsewatch_core::config::ForecastConfig;
use pulsewatch_core::detect::Point;
use pulsewatch_core::forecast::auto::AutoMemo;
use pulsewatch_core::forecast::model::MIN_POINTS;
use pulsewatch_core::forecast::{
    Fitted, ForecastError, ForecastHistory, ForecastSettings, ModelKind, SeriesForecast,
};

/// Share of one core scheduled fits may use on average.
pub const FIT_DUTY: f64 = 0.25;
/// Longest gap between two snapshots while something changed.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(500);

/// Everything the service knows, at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ForecastSnapshot {
    /// Increases with every published snapshot.
    pub version: u64,
    pub model: Option<ModelKind>,
    pub series: BTreeMap<String, Arc<SeriesForecast>>,
}

impl ForecastSnapshot {
    pub fn get(&self, series: &str) -> Option<&SeriesForecast> {
        self.series.get(series).map(Arc::as_ref)
    }
}

enum Command {
    Append(String, Vec<Point>),
    AppendMany(Vec<(String, Vec<Point>)>),
    Replace(String, Vec<Point>),
    Refresh(Option<String>),
    Remove(String),
    Shutdown,
}

/// Sends commands to the service. Cheap to clone; every method returns immediately.
#[derive(Debug, Clone)]
pub struct ForecastHandle {
    tx: mpsc::UnboundedSender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Append(s, p) => write!(f, "Append({s}, {} points)", p.len()),
            Command::AppendMany(b) => write!(f, "AppendMany({} series)", b.len()),
            Command::Replace(s, p) => write!(f, "Replace({s}, {} points)", p.len()),
            Command::Refresh(s) => write!(f, "Refresh({s:?})"),
            Command::Remove(s) => write!(f, "Remove({s})"),
            Command::Shutdown => f.write_str("Shutdown"),
        }
    }
}

impl ForecastHandle {
    /// Appends new points of `series` (creating it). Points may be out of order or duplicated;
    /// the fit regularises them.
    pub fn update_history(&self, series: &str, points: Vec<Point>) -> bool {
        self.send(Command::Append(series.to_string(), points))
    }

    /// Appends new points of several series at once (one snapshot for the whole batch).
    pub fn update_many(&self, batch: Vec<(String, Vec<Point>)>) -> bool {
        self.send(Command::AppendMany(batch))
    }

    /// Replaces the whole history of `series` (e.g. after a replay restarts).
    pub fn set_history(&self, series: &str, points: Vec<Point>) -> bool {
        self.send(Command::Replace(series.to_string(), points))
    }

    /// Refits `series` now (ahead of scheduled fits), e.g. for a retrain key.
    pub fn refresh(&self, series: &str) -> bool {
        self.send(Command::Refresh(Some(series.to_string())))
    }

    /// Refits every series.
    pub fn refresh_all(&self) -> bool {
        self.send(Command::Refresh(None))
    }

    /// Forgets `series`.
    pub fn remove(&self, series: &str) -> bool {
        self.send(Command::Remove(series.to_string()))
    }

    /// Stops the service (a running fit finishes in the background and is discarded).
    pub fn shutdown(&self) -> bool {
        self.send(Command::Shutdown)
    }

    /// `false` when the service has stopped.
    fn send(&self, c: Command) -> bool {
        self.tx.send(c).is_ok()
    }
}

/// What [`ForecastService::spawn`] returns: the command handle and the snapshot receiver.
pub type Spawned = (ForecastHandle, watch::Receiver<Arc<ForecastSnapshot>>);

/// Starts the service.
pub struct ForecastService;

impl ForecastService {
    /// Validates `[forecast]` and starts the service on the current tokio runtime (an error
    /// outside one).
    pub fn spawn(cfg: &ForecastConfig) -> Result<Spawned, ForecastError> {
        Self::spawn_with(ForecastSettings::from_config(cfg)?)
    }

    /// [`ForecastService::spawn`] with settings already validated.
    pub fn spawn_with(settings: ForecastSettings) -> Result<Spawned, ForecastError> {
        let rt = tokio::runtime::Handle::try_current().map_err(|_| {
            ForecastError::Config(
                "the forecast service must be started inside a tokio runtime".into(),
            )
        })?;
        let (tx, rx) = mpsc::unbounded_channel();
        let initial = ForecastSnapshot {
            version: 0,
            model: Some(settings.model),
            series: BTreeMap::new(),
        };
        let (snap_tx, snap_rx) = watch::channel(Arc::new(initial));
        let actor = Actor {
            settings: Arc::new(settings),
            series: HashMap::new(),
            queue: VecDeque::new(),
            queued: HashSet::new(),
            urgent: 0,
            running: None,
            next_fit: tokio::time::Instant::now(),
            version: 0,
            snap_tx,
        };
        rt.spawn(actor.run(rx));
        Ok((ForecastHandle { tx }, snap_rx))
    }
}

struct SeriesData {
    history: ForecastHistory,
    /// A fit has started at least once.
    fitted: bool,
    /// Points appended since the last fit started.
    new_points: usize,
    /// Shared with the published snapshots; copied on write.
    state: Arc<SeriesForecast>,
    /// `auto`'s validated choice from the last fit, reused while fresh; cleared by an
    /// on-demand refresh (which revalidates) and by a replaced history.
    auto: Option<AutoMemo>,
}

struct FitDone {
    series: String,
    result: Result<Fitted, ForecastError>,
    took: Duration,
}

struct Actor {
    settings: Arc<ForecastSettings>,
    series: HashMap<String, SeriesData>,
    queue: VecDeque<String>,
    /// What `queue` holds (membership in O(1)).
    queued: HashSet<String>,
    /// On-demand requests, served before the budget's wait.
    urgent: usize,
    running: Option<String>,
    /// No scheduled fit starts before this (the budget).
    next_fit: tokio::time::Instant,
    version: u64,
    snap_tx: watch::Sender<Arc<ForecastSnapshot>>,
}

impl Actor {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<FitDone>();
        let refresh = self.settings.refresh;
        let mut tick = (!refresh.is_zero()).then(|| {
            let mut i = tokio::time::interval_at(tokio::time::Instant::now() + refresh, refresh);
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        });
        let mut dirty = false;
        let mut last_publish = tokio::time::Instant::now();
        loop {
            let publish_at = last_publish + PUBLISH_EVERY;
            let fit_at = (!self.queue.is_empty() && self.running.is_none()).then(|| {
                if self.urgent > 0 {
                    tokio::time::Instant::now()
                } else {
                    self.next_fit
                }
            });
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    None | Some(Command::Shutdown) => break,
                    Some(c) => dirty |= self.command(c),
                },
                Some(done) = done_rx.recv() => {
                    self.finished(done);
                    dirty = true;
                }
                _ = async {
                    match tick.as_mut() {
                        Some(t) => { t.tick().await; }
                        None => std::future::pending::<()>().await,
                    }
                } => dirty |= self.schedule_due(),
                _ = async {
                    match fit_at {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending::<()>().await,
                    }
                } => {}
                _ = async {
                    if dirty {
                        tokio::time::sleep_until(publish_at).await
                    } else {
                        std::future::pending::<()>().await
                    }
                } => {}
            }
            let ready = self.urgent > 0 || tokio::time::Instant::now() >= self.next_fit;
            if ready {
                dirty |= self.start_next(&done_tx);
            }
            if dirty && tokio::time::Instant::now() >= publish_at {
                self.publish();
                last_publish = tokio::time::Instant::now();
                dirty = false;
            }
        }
    }

    /// Applies a command; `true` when the snapshot changed.
    fn command(&mut self, c: Command) -> bool {
        match c {
            Command::Append(name, points) | Command::Replace(name, points)
                if points.is_empty() && !self.series.contains_key(&name) =>
            {
                false
            }
            Command::Append(name, points) => {
                self.add_points(name, points, false);
                true
            }
            Command::AppendMany(batch) => {
                let mut any = false;
                for (name, points) in batch {
                    if !points.is_empty() {
                        self.add_points(name, points, false);
                        any = true;
                    }
                }
                any
            }
            Command::Replace(name, points) => {
                self.add_points(name, points, true);
                true
            }
            Command::Refresh(Some(name)) => {
                if let Some(d) = self.series.get_mut(&name) {
                    d.auto = None;
                    self.enqueue(name, true);
                    true
                } else {
                    false
                }
            }
            Command::Refresh(None) => {
                let mut names: Vec<String> = self.series.keys().cloned().collect();
                names.sort();
                for d in self.series.values_mut() {
                    d.auto = None;
                }
                for n in names {
                    self.enqueue(n, false);
                }
                true
            }
            Command::Remove(name) => {
                if self.queued.remove(&name) {
                    self.queue.retain(|q| *q != name);
                }
                self.series.remove(&name).is_some()
            }
            Command::Shutdown => false,
        }
    }

    fn add_points(&mut self, name: String, points: Vec<Point>, replace: bool) {
        let d = self
            .series
            .entry(name.clone())
            .or_insert_with(|| SeriesData {
                history: ForecastHistory::new(),
                fitted: false,
                new_points: 0,
                state: Arc::new(SeriesForecast::new(&name)),
                auto: None,
            });
        let state = Arc::make_mut(&mut d.state);
        if replace {
            d.history = ForecastHistory::new();
            d.fitted = false;
            d.auto = None;
            state.replay_time = None;
        }
        d.history.extend(&points);
        if let Some(t) = points.iter().map(|p| p.timestamp).max() {
            state.replay_time = Some(state.replay_time.map_or(t, |r| r.max(t)));
        }
        d.new_points += points.len();
        state.history_points = d.history.len();
        state.update_expectations();
        let first_fit = !d.fitted && d.history.len() >= MIN_POINTS;
        if first_fit {
            self.enqueue(name, false);
        }
    }

    fn enqueue(&mut self, name: String, front: bool) {
        if self.queued.contains(&name) {
            if !front {
                return;
            }
            self.queue.retain(|q| *q != name);
        } else {
            self.queued.insert(name.clone());
        }
        if let Some(d) = self.series.get_mut(&name) {
            Arc::make_mut(&mut d.state).pending = true;
        }
        if front {
            self.urgent += 1;
            self.queue.push_front(name);
        } else {
            self.queue.push_back(name);
        }
    }

    /// The scheduled refresh: queue every series with new points since its last fit.
    fn schedule_due(&mut self) -> bool {
        let mut due: Vec<String> = self
            .series
            .iter()
            .filter(|(k, d)| {
                d.new_points > 0 && d.history.len() >= MIN_POINTS && !self.queued.contains(*k)
            })
            .map(|(k, _)| k.clone())
            .collect();
        due.sort();
        let any = !due.is_empty();
        for n in due {
            self.enqueue(n, false);
        }
        any
    }

    fn start_next(&mut self, done_tx: &mpsc::UnboundedSender<FitDone>) -> bool {
        if self.running.is_some() {
            return false;
        }
        while let Some(name) = self.queue.pop_front() {
            self.queued.remove(&name);
            self.urgent = self.urgent.saturating_sub(1);
            let Some(d) = self.series.get_mut(&name) else {
                continue;
            };
            let history = d.history.clone();
            let memo = d.auto.clone();
            d.fitted = true;
            d.new_points = 0;
            let settings = self.settings.clone();
            let tx = done_tx.clone();
            let series = name.clone();
            self.running = Some(name);
            tokio::task::spawn_blocking(move || {
                let t0 = Instant::now();
                let result =
                    SeriesForecast::fit_history_with(&series, &history, &settings, memo.as_ref());
                let took = t0.elapsed();
                tracing::debug!(target: "pulsewatch::forecast", series = %series, ok = result.is_ok(), elapsed = ?took, "forecast fit");
                let _ = tx.send(FitDone {
                    series,
                    result,
                    took,
                });
            });
            return true;
        }
        false
    }

    fn finished(&mut self, done: FitDone) {
        self.running = None;
        // The budget: the next scheduled fit waits in proportion to this one.
        self.next_fit = tokio::time::Instant::now() + done.took.mul_f64(1.0 / FIT_DUTY - 1.0);
        let queued = self.queued.contains(&done.series);
        let Some(d) = self.series.get_mut(&done.series) else {
            return;
        };
        let mut result = done.result;
        if let Ok(f) = &mut result {
            d.auto = f.auto.take();
        }
        let state = Arc::make_mut(&mut d.state);
        state.pending = queued;
        if let Err(e) = &result {
            tracing::warn!(target: "pulsewatch::forecast", series = %done.series, error = %e, "forecast fit failed");
        }
        state.record(result);
    }

    fn publish(&mut self) {
        self.version += 1;
        let snap = ForecastSnapshot {
            version: self.version,
            model: Some(self.settings.model),
            series: self
                .series
                .iter()
                .map(|(k, d)| (k.clone(), d.state.clone()))
                .collect(),
        };
        self.snap_tx.send_replace(Arc::new(snap));
    }
}

/// Waits until `rx` holds a snapshot satisfying `pred`, or `timeout` passes.
pub async fn wait_for(
    rx: &mut watch::Receiver<Arc<ForecastSnapshot>>,
    timeout: Duration,
    mut pred: impl FnMut(&ForecastSnapshot) -> bool,
) -> Option<Arc<ForecastSnapshot>> {
    let res = tokio::time::timeout(timeout, rx.wait_for(|s| pred(s))).await;
    match res {
        Ok(Ok(s)) => Some(s.clone()),
        _ => None,
    }
}
