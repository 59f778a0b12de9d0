//! Retraining and persistence for detectors with a fit step ([`Trainable`]).
//!
//! * [`ModelStore`] saves fitted models under `[retrain] model_dir` as
//!   `<dir>/<detector>/<series>.model` in a versioned format: a magic line, a JSON header (format
//!   version, detector, parameter fingerprint, series, payload length and SHA-256) and the payload
//!   from [`Trainable::save_state`]. Writes are atomic (temp file + rename), so a crash never
//!   leaves a half-written model and the previous model survives a failed save.
//! * [`load_or_fit`] restores a saved model; a missing, corrupt or incompatible file gives a
//!   warning and a fresh fit, never a crash.
//! * [`spawn_retrain`] fits a fresh detector on a blocking thread with progress events and
//!   cancellation (what the TUI's `r` key and the engine's schedule drive); the caller swaps the
//!   new detector in when it finishes, so scoring never waits for training.
//! * [`RetrainSchedule`] decides when `[retrain] interval` is due.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Detector, FitControl, FitError, FitProgress, Point};
use crate::eval::results::write_atomic;

/// First line of every model file.
const MAGIC: &str = "pulsewatch-model";
/// Version of the file layout; a different version is "incompatible" (→ retrain).
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelHeader {
    pub format_version: u32,
    pub detector: String,
    /// Fingerprint of the detector's parameters: a model fitted with other parameters is stale.
    pub params: String,
    pub series: String,
    pub trained_points: usize,
    pub payload_len: usize,
    pub payload_sha256: String,
}

/// Why a saved model was not used.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadOutcome {
    /// Restored from this file.
    Loaded(PathBuf),
    /// No file yet.
    Missing(PathBuf),
    /// Unreadable, corrupt or for other parameters: the reason, and the file.
    Rejected(PathBuf, String),
}

/// Fitted models on disk.
#[derive(Debug, Clone)]
pub struct ModelStore {
    dir: PathBuf,
}

/// Fingerprint of a serialisable parameter set (first 16 hex digits of its JSON's SHA-256).
pub fn fingerprint<T: Serialize>(params: &T) -> String {
    let json = serde_json::to_vec(params).unwrap_or_default();
    hex16(&Sha256::digest(&json))
}

fn hex16(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A file-name-safe form of a series key (`realKnownCause/nyc_taxi.csv` →
/// `realKnownCause__nyc_taxi.csv`; other unsafe characters become `_`).
fn file_stem(series: &str) -> String {
    let mut out = String::with_capacity(series.len() + 2);
    for c in series.chars() {
        match c {
            '/' => out.push_str("__"),
            c if c.is_ascii_alphanumeric() || "._-".contains(c) => out.push(c),
            _ => out.push('_'),
        }
    }
    out
}

impl ModelStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ModelStore { dir: dir.into() }
    }

    pub fn path(&self, detector: &str, series: &str) -> PathBuf {
        self.dir
            .join(detector)
            .join(format!("{}.model", file_stem(series)))
    }

    /// Saves a fitted model atomically. Returns the file written.
    pub fn save(
        &self,
        detector: &str,
        params: &str,
        series: &str,
        trained_points: usize,
        payload: &[u8],
    ) -> Result<PathBuf, String> {
        let header = ModelHeader {
            format_version: FORMAT_VERSION,
            detector: detector.into(),
            params: params.into(),
            series: series.into(),
            trained_points,
            payload_len: payload.len(),
            payload_sha256: hex(&Sha256::digest(payload)),
        };
        let mut bytes = format!("{MAGIC}\n").into_bytes();
        let header_json = serde_json::to_string(&header).map_err(|e| e.to_string())?;
        bytes.extend_from_slice(header_json.as_bytes());
        bytes.push(b'\n');
        bytes.extend_from_slice(payload);
        let path = self.path(detector, series);
        write_atomic(&path, &bytes).map_err(|e| e.to_string())?;
        Ok(path)
    }

    /// Reads and checks a model file: the payload, or why it cannot be used.
    pub fn load(
        &self,
        detector: &str,
        params: &str,
        series: &str,
    ) -> (LoadOutcome, Option<(ModelHeader, Vec<u8>)>) {
        let path = self.path(detector, series);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return (LoadOutcome::Missing(path), None);
            }
            Err(e) => return (LoadOutcome::Rejected(path, e.to_string()), None),
        };
        match parse_model(&bytes, detector, params) {
            Ok(v) => (LoadOutcome::Loaded(path), Some(v)),
            Err(why) => (LoadOutcome::Rejected(path, why), None),
        }
    }
}

fn parse_model(
    bytes: &[u8],
    detector: &str,
    params: &str,
) -> Result<(ModelHeader, Vec<u8>), String> {
    let mut parts = bytes.splitn(3, |&b| b == b'\n');
    let magic = parts.next().unwrap_or_default();
    if magic != MAGIC.as_bytes() {
        return Err("not a pulsewatch model file".into());
    }
    let header_line = parts.next().ok_or("truncated header")?;
    let header: ModelHeader =
        serde_json::from_slice(header_line).map_err(|e| format!("bad header: {e}"))?;
    let payload = parts.next().unwrap_or_default().to_vec();
    if header.format_version != FORMAT_VERSION {
        return Err(format!(
            "format version {} (this build reads {FORMAT_VERSION})",
            header.format_version
        ));
    }
    if header.detector != detector {
        return Err(format!("model of detector {:?}", header.detector));
    }
    if header.params != params {
        return Err("fitted with other parameters".into());
    }
    if payload.len() != header.payload_len
        || hex(&Sha256::digest(&payload)) != header.payload_sha256
    {
        return Err("payload checksum mismatch (corrupt file)".into());
    }
    Ok((header, payload))
}

/// What [`load_or_fit`] did.
pub struct Prepared {
    pub detector: Box<dyn Detector>,
    pub outcome: LoadOutcome,
    /// The fit that followed a missing or rejected model, if any.
    pub fitted: Option<Result<Duration, FitError>>,
}

/// Restores `series`' model from `store`, or fits `detector` on `history` and saves it.
/// Detectors without a fit step are returned as they are.
pub fn load_or_fit(
    mut detector: Box<dyn Detector>,
    name: &str,
    params: &str,
    series: &str,
    history: &[Point],
    store: &ModelStore,
) -> Prepared {
    let Some(t) = detector.trainable() else {
        return Prepared {
            detector,
            outcome: LoadOutcome::Missing(PathBuf::new()),
            fitted: None,
        };
    };
    let (outcome, loaded) = store.load(name, params, series);
    let outcome = match (outcome, loaded) {
        (LoadOutcome::Loaded(path), Some((_, payload))) => match t.load_state(&payload) {
            Ok(()) => {
                tracing::info!(detector = name, series, path = %path.display(), "model restored");
                return Prepared {
                    detector,
                    outcome: LoadOutcome::Loaded(path),
                    fitted: None,
                };
            }
            Err(e) => LoadOutcome::Rejected(path, e.to_string()),
        },
        (o, _) => o,
    };
    match &outcome {
        LoadOutcome::Rejected(path, why) => {
            tracing::warn!(detector = name, series, path = %path.display(), reason = %why, "saved model unusable; retraining")
        }
        LoadOutcome::Missing(path) => {
            tracing::info!(detector = name, series, path = %path.display(), "no saved model; training")
        }
        LoadOutcome::Loaded(_) => {}
    }
    let cancel = AtomicBool::new(false);
    let mut noop = |_: FitProgress| {};
    let mut ctl = FitControl {
        cancel: &cancel,
        progress: &mut noop,
    };
    let t0 = Instant::now();
    let res = t.fit(history, &mut ctl).map(|()| t0.elapsed());
    if res.is_ok()
        && let Some(state) = t.save_state()
        && let Err(e) = store.save(name, params, series, history.len(), &state)
    {
        tracing::warn!(detector = name, series, error = %e, "cannot save model");
    }
    Prepared {
        detector,
        outcome,
        fitted: Some(res),
    }
}

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

/// Model path for display.
pub fn describe(outcome: &LoadOutcome) -> String {
    match outcome {
        LoadOutcome::Loaded(p) => format!("restored from {}", p.display()),
        LoadOutcome::Missing(p) if p.as_os_str().is_empty() => "no fit step".into(),
        LoadOutcome::Missing(p) => format!("no saved model at {}", p.display()),
        LoadOutcome::Rejected(p, why) => format!("{} unusable ({why}); retrained", p.display()),
    }
}
