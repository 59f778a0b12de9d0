//! Background retraining for detectors with a fit step: [`spawn_retrain`] fits a fresh detector
//! on the blocking pool with progress events and cancellation (what the TUI's `r` key and the
//! engine's schedule drive); the engine swaps the new detector in when it finishes, so scoring
//! never waits for training. [`RetrainSchedule`] decides when `[retrain] interval` is due.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

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

/// A retrain running on a blocking thread.
pub struct TrainJob {
    cancel: Arc<AtomicBool>,
    handle: tokio::task::JoinHandle<Option<Box<dyn Detector>>>,
}

impl TrainJob {
    /// Asks the fit to stop at its next checkpoint; the previous model stays in use.
    pub fn cancel(&self) {
        self.cancel
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// The freshly fitted detector, or `None` if it was cancelled or failed (see the events).
    pub async fn finish(self) -> Option<Box<dyn Detector>> {
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
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let handle = tokio::task::spawn_blocking(move || {
        let RetrainRequest {
            mut detector,
            name,
            params,
            series,
            history,
            store,
        } = req;
        let Some(t) = detector.trainable() else {
            let _ = events.send(TrainEvent::Failed {
                series,
                error: format!("detector {name} has no fit step"),
            });
            return None;
        };
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
        match t.fit(&history, &mut ctl) {
            Ok(()) => {
                let saved = match (store, t.save_state()) {
                    (Some(st), Some(state)) => st
                        .save(&name, &params, &series, history.len(), &state)
                        .map(Some)
                        .inspect_err(|e| {
                            tracing::warn!(detector = %name, series = %series, error = %e, "cannot save model; the fitted model stays in use");
                        }),
                    _ => Ok(None),
                };
                let _ = events.send(TrainEvent::Finished {
                    series,
                    elapsed: t0.elapsed(),
                    saved,
                });
                Some(detector)
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
