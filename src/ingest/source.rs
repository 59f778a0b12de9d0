//! What every live source sends to the engine.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::detect::Point;

/// The kinds of live source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// The NAB corpus replayed as if live.
    Nab,
    /// PromQL `query_range` polls of a Prometheus server.
    Prometheus,
    /// This machine's CPU, memory and network, read directly.
    Host,
}

impl SourceKind {
    pub const ALL: [SourceKind; 3] = [SourceKind::Nab, SourceKind::Prometheus, SourceKind::Host];

    /// Name in config, on the command line and in the `source` label.
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Nab => "nab",
            SourceKind::Prometheus => "prometheus",
            SourceKind::Host => "host",
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SourceKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown source {s:?}; known: nab, prometheus, host"))
    }
}

/// Identity of one monitored series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeriesInfo {
    /// Unique within the source: the NAB key (`realKnownCause/nyc_taxi.csv`), `<query>{<labels>}`
    /// for PromQL, `<metric>` for the host.
    pub id: String,
    /// Short display name and the `series` label: the NAB file stem, or the id.
    pub name: String,
    /// NAB category, PromQL query name, or `host`.
    pub category: String,
    pub source: SourceKind,
}

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

/// Unix seconds now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
