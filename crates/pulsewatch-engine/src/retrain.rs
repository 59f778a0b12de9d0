//! Background retraining for detectors with a fit step: [`spawn_retrain`] fits a fresh detector
//! on the blocking pool with progress events and cancellation (what the TUI's `r` key and the
//! engine's schedule drive), and [`spawn_group_retrain`] a multivariate group's model; the
//! engine swaps the new model in when it finishes, so scoring never waits for training. [`RetrainSchedule`] decides when `[retrain] interval` is due.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use pulsewatch_core::detect::group::{GroupFit, Groups};
use pulsewatch_core::detect::{Detector, FitControl, FitError, FitProgress};
use pulsewatch_core::domain::Point;
use pulsewatch_core::store::ModelStore;

/// Progress of a background retrain, as the engine and the TUI see it.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainEvent {
    Progress {
        series: String,
        progress: FitProgress,
    },
    Finished {
        series: String,
        elapsed: Duration,
        /// The model file written, `Ok(None)` without a store, or why saving failed.
        saved: Result<Option<PathBuf>, String>,
    },
    Cancelled {
        series: String,
    },
    Failed {
        series: String,
        error: String,
    },
}

/// A retrain running on a blocking thread; `T` is what it fits (a series' detector, or a
/// group's model: [`spawn_group_retrain`]).
pub struct TrainJob<T = Box<dyn Detector>> {
    cancel: Arc<AtomicBool>,
    handle: tokio::task::JoinHandle<Option<T>>,
}

impl<T> TrainJob<T> {
    /// Asks the fit to stop at its next checkpoint; the previous model stays in use.
    pub fn cancel(&self) {
        self.cancel
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// The freshly fitted model, or `None` if it was cancelled or failed (see the events).
    pub async fn finish(self) -> Option<T> {
        self.handle.await.ok().flatten()
    }

    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }
}

/// What a retrain needs: a fresh detector to fit, its name and parameter fingerprint, the series
/// and its history (points up to now, never later ones), and where to save the result.
pub struct RetrainRequest {
    pub detector: Box<dyn Detector>,
    pub name: String,
    pub params: String,
    pub series: String,
    pub history: Vec<Point>,
    pub store: Option<ModelStore>,
}

/// Starts fitting on a blocking thread. Events go to `events` (progress per step, then exactly one
/// of Finished / Cancelled / Failed). Must be called inside a tokio runtime.
pub fn spawn_retrain(
    req: RetrainRequest,
    events: tokio::sync::mpsc::UnboundedSender<TrainEvent>,
) -> TrainJob {
    let RetrainRequest {
        detector,
        name,
        params,
        series,
        history,
        store,
    } = req;
    let target = SaveTarget {
        store,
        name,
        params,
        key: series.clone(),
        trained: history.len(),
    };
    spawn_fit(
        series,
        detector,
        move |d: &mut Box<dyn Detector>, ctl: &mut FitControl<'_>| match d.trainable() {
            Some(t) => t.fit(&history, ctl),
            None => Err(FitError::Failed("the detector has no fit step".into())),
        },
        move |d: &mut Box<dyn Detector>| target.save(d.trainable().and_then(|t| t.save_state())),
        events,
    )
}

/// Starts refitting a multivariate group's model on a blocking thread, as [`spawn_retrain`]
/// does a series' (the events name the group's key). The model is saved under the group's
/// store key ([`Groups::store_key`]).
pub fn spawn_group_retrain(
    fit: GroupFit,
    name: String,
    params: String,
    store: Option<ModelStore>,
    events: tokio::sync::mpsc::UnboundedSender<TrainEvent>,
) -> TrainJob<GroupFit> {
    let target = SaveTarget {
        store,
        name,
        params,
        key: Groups::store_key(fit.key()),
        trained: fit.rows(),
    };
    spawn_fit(
        fit.key().to_string(),
        fit,
        |f: &mut GroupFit, ctl: &mut FitControl<'_>| f.fit(ctl),
        move |f: &mut GroupFit| target.save(f.save_state()),
        events,
    )
}

/// Where a fitted model is saved.
struct SaveTarget {
    store: Option<ModelStore>,
    name: String,
    params: String,
    key: String,
    trained: usize,
}

impl SaveTarget {
    /// The file written, `Ok(None)` without a store or a state, or why saving failed.
    fn save(self, state: Option<Vec<u8>>) -> Result<Option<PathBuf>, String> {
        let (Some(store), Some(state)) = (self.store, state) else {
            return Ok(None);
        };
        store
            .save(&self.name, &self.params, &self.key, self.trained, &state)
            .map(Some)
            .inspect_err(|e| {
                tracing::warn!(detector = %self.name, series = %self.key, error = %e, "cannot save model; the fitted model stays in use");
            })
    }
}

/// Runs `fit` on `item` on the blocking pool with progress events and cancellation, then
/// `save`; the job yields `item` when the fit succeeded.
fn spawn_fit<T: Send + 'static>(
    series: String,
    mut item: T,
    fit: impl FnOnce(&mut T, &mut FitControl<'_>) -> Result<(), FitError> + Send + 'static,
    save: impl FnOnce(&mut T) -> Result<Option<PathBuf>, String> + Send + 'static,
    events: tokio::sync::mpsc::UnboundedSender<TrainEvent>,
) -> TrainJob<T> {
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let handle = tokio::task::spawn_blocking(move || {
        let tx = events.clone();
        let s2 = series.clone();
        let mut progress = move |p: FitProgress| {
            let _ = tx.send(TrainEvent::Progress {
                series: s2.clone(),
                progress: p,
            });
        };
        let mut ctl = FitControl {
            cancel: &flag,
            progress: &mut progress,
        };
        let t0 = Instant::now();
        match fit(&mut item, &mut ctl) {
            Ok(()) => {
                let saved = save(&mut item);
                let _ = events.send(TrainEvent::Finished {
                    series,
                    elapsed: t0.elapsed(),
                    saved,
                });
                Some(item)
            }
            Err(FitError::Cancelled) => {
                let _ = events.send(TrainEvent::Cancelled { series });
                None
            }
            Err(e) => {
                let _ = events.send(TrainEvent::Failed {
                    series,
                    error: e.to_string(),
                });
                None
            }
        }
    });
    TrainJob { cancel, handle }
}

/// `[retrain] interval`: due once per interval, never when the interval is zero.
#[derive(Debug, Clone)]
pub struct RetrainSchedule {
    interval: Duration,
    last: Instant,
}

impl RetrainSchedule {
    pub fn new(interval: Duration, now: Instant) -> Self {
        RetrainSchedule {
            interval,
            last: now,
        }
    }

    /// True (and restarts the interval) when a scheduled retrain is due at `now`.
    pub fn due(&mut self, now: Instant) -> bool {
        if self.interval.is_zero() || now.duration_since(self.last) < self.interval {
            return false;
        }
        self.last = now;
        true
    }

    /// A manual retrain also restarts the interval.
    pub fn reset(&mut self, now: Instant) {
        self.last = now;
    }
}
