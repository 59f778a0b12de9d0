//! What every live source sends to the engine.

use serde::Serialize;

pub use pulsewatch_core::domain::{Point, SeriesInfo, SourceKind, unix_now};

/// Health of a source, as the UI and the exporters show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceStatus {
    pub source: SourceKind,
    /// Where it reads from (a directory, a URL, `localhost`).
    pub target: String,
    pub healthy: bool,
    /// What happened last: "58 series", or the error.
    pub message: String,
    /// Unix seconds of the last successful read (0 = never).
    pub last_ok: i64,
    /// How long the latest read took, in seconds (polling sources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_seconds: Option<f64>,
}

/// A message from a source to the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceEvent {
    /// New points of a series (the series is created on its first batch). `restart`: the series
    /// starts again from its beginning (a looped replay), so its detector starts fresh.
    Points {
        info: SeriesInfo,
        points: Vec<Point>,
        restart: bool,
    },
    /// A series the source no longer reports (a vanished PromQL label set).
    Stale { id: String },
    /// The source's health changed or it has news.
    Status(SourceStatus),
}
