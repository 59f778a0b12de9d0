//! Persistence for detectors with a fit step ([`Trainable`](crate::detect::Trainable)).
//!
//! * [`ModelStore`] saves fitted models under `[retrain] model_dir` as
//!   `<dir>/<detector>/<series>.model` in a versioned format: a magic line, a JSON header (format
//!   version, detector, parameter fingerprint, series, payload length and SHA-256) and the payload
//!   from `Trainable::save_state`. Writes are atomic (temp file + rename), so a crash never
//!   leaves a half-written model and the previous model survives a failed save.
//! * [`load_or_fit`] restores a saved model; a missing, corrupt or incompatible file gives a
//!   warning and a fresh fit, never a crash.
//!
//! Background retraining (progress, cancellation, schedule) is the engine's (`retrain`).

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::atomic::write_atomic;
use crate::detect::{Detector, FitControl, FitError, FitProgress};
use crate::domain::Point;
use crate::num::hex;

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
    hex(&bytes[..bytes.len().min(8)])
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

    /// The folder the models are kept in.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
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

/// Model path for display.
pub fn describe(outcome: &LoadOutcome) -> String {
    match outcome {
        LoadOutcome::Loaded(p) => format!("restored from {}", p.display()),
        LoadOutcome::Missing(p) if p.as_os_str().is_empty() => "no fit step".into(),
        LoadOutcome::Missing(p) => format!("no saved model at {}", p.display()),
        LoadOutcome::Rejected(p, why) => format!("{} unusable ({why}); retrained", p.display()),
    }
}
