//! What the engine publishes: immutable snapshots, shared by the TUI, headless output, the
//! exporters and the JSON API. Series views are `Arc`s, so a snapshot only copies the series
//! that changed since the previous one.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use pulsewatch_core::detect::FitProgress;
use pulsewatch_core::domain::Expectation;
pub use pulsewatch_core::domain::ScoredPoint;
pub use pulsewatch_core::events::AnomalyEvent;
use pulsewatch_core::forecast::SeriesForecast;
use pulsewatch_core::forecast::capacity::{Bound, Capacity};

pub use super::history::History;
use crate::sources::source::{SeriesInfo, SourceKind, SourceStatus};

/// A retrain of one series, as the UI shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum TrainState {
    Running {
        done: usize,
        total: usize,
        loss: Option<f64>,
    },
    Finished {
        seconds: f64,
        /// Why the fitted model could not be saved (the detector still uses it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        save_error: Option<String>,
    },
    Cancelled,
    Failed {
        error: String,
    },
}

impl TrainState {
    pub fn progress(p: &FitProgress) -> Self {
        TrainState::Running {
            done: p.done,
            total: p.total,
            loss: p.loss,
        }
    }
}

/// One series at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesView {
    pub info: SeriesInfo,
    /// The newest points, oldest first (at most `[source] history`), shared with the engine.
    pub points: History,
    /// Points ingested since start (a looped replay keeps counting).
    pub ingested: u64,
    /// Points flagged anomalous since start.
    pub anomalies: u64,
    /// The source no longer reports this series.
    pub stale: bool,
    /// The series' forecast, when forecasting is on and a fit succeeded or failed.
    pub forecast: Option<Arc<SeriesForecast>>,
    /// The latest retrain.
    pub training: Option<TrainState>,
    /// Duration of the detector's latest fit (detectors with a fit step).
    pub detector_fit: Option<Duration>,
    /// Whether the detector's model is fitted (`None`: the detector has no fit step).
    pub fitted: Option<bool>,
    /// The detector is still warming up (its scores are not yet meaningful).
    pub warming_up: bool,
    /// The running anomaly event, else the latest closed one.
    pub event: Option<Arc<AnomalyEvent>>,
    /// Points flagged in the last hour of the series' own time (five-minute buckets).
    pub recent_anomalies: u32,
}

impl SeriesView {
    pub fn last(&self) -> Option<ScoredPoint> {
        self.points.last()
    }

    /// The forecast band for the latest point (what the model expected at the replay time), else
    /// the next step's.
    pub fn expectation(&self) -> Option<Expectation> {
        let f = self.forecast.as_ref()?;
        f.current.or(f.next)
    }

    /// The time to the series' threshold, and the time it counts from (the newest point's, so it
    /// counts down between fits).
    pub fn capacity(&self) -> Option<(&Capacity, i64)> {
        let f = self.forecast.as_ref()?;
        let cap = f.capacity.as_ref()?;
        let now = self
            .last()
            .map(|p| p.timestamp)
            .or(f.replay_time)
            .unwrap_or(cap.origin)
            .max(cap.origin);
        Some((cap, now))
    }

    /// [`SeriesView::capacity`] as JSON: threshold, crossing times and seconds left per bound.
    pub fn capacity_json(&self) -> Option<serde_json::Value> {
        let (cap, now) = self.capacity()?;
        let eta = |b| cap.eta(b, now);
        Some(serde_json::json!({
            "threshold": cap.threshold.value,
            "direction": cap.threshold.direction,
            "reached": cap.reached,
            "now": now,
            "eta_seconds": {
                "earliest": eta(Bound::Earliest),
                "likely": eta(Bound::Likely),
                "latest": eta(Bound::Latest),
            },
            "crosses_at": {
                "earliest": cap.earliest,
                "likely": cap.likely,
                "latest": cap.latest,
            },
            "until": cap.until,
            "summary": cap.describe(now),
        }))
    }
}

/// Everything the engine knows, at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Increases with every published snapshot.
    pub version: u64,
    pub source: SourceKind,
    pub detector: String,
    pub threshold: f64,
    /// Forecast model name ("" when forecasting is off).
    pub forecast_model: String,
    pub paused: bool,
    /// Replay speed in points per second per series (replay only).
    pub speed: f64,
    /// The source's latest status (`None` until it reports).
    pub status: Option<SourceStatus>,
    /// Series by id, sorted.
    pub series: Vec<Arc<SeriesView>>,
    /// Closed anomaly events, oldest first (at most `[events] keep`); running ones are in
    /// [`SeriesView::event`]. [`Snapshot::events_newest_first`] merges both.
    pub events: Arc<Vec<Arc<AnomalyEvent>>>,
    /// A problem with the events file (reported once, shown until restart).
    pub events_warning: Option<String>,
}

impl Snapshot {
    pub fn empty(source: SourceKind, detector: &str, threshold: f64) -> Self {
        Snapshot {
            version: 0,
            source,
            detector: detector.to_string(),
            threshold,
            forecast_model: String::new(),
            paused: false,
            speed: 0.0,
            status: None,
            series: Vec::new(),
            events: Arc::new(Vec::new()),
            events_warning: None,
        }
    }

    /// Every event, running ones included, newest first (by end, then start). A running group
    /// event, every member's latest, is listed once (through the member it names).
    pub fn events_newest_first(&self) -> Vec<Arc<AnomalyEvent>> {
        let mut all: Vec<Arc<AnomalyEvent>> = self
            .series
            .iter()
            .filter_map(|s| {
                s.event
                    .as_ref()
                    .filter(|e| e.open && e.series == s.info.id)
                    .cloned()
            })
            .collect();
        all.extend(self.events.iter().cloned());
        all.sort_by_key(|e| std::cmp::Reverse((e.end, e.start)));
        all
    }

    /// The events of the series with id or name `key`, newest first: its own and its group's
    /// (a group event names only the member with the largest error). `None` when no series
    /// and no kept event has that id or name.
    pub fn events_of(&self, key: &str) -> Option<Vec<Arc<AnomalyEvent>>> {
        let ids: Vec<&str> = match self.get(key) {
            Some(s) => vec![s.info.id.as_str()],
            None => self
                .series
                .iter()
                .filter(|s| s.info.name == key)
                .map(|s| s.info.id.as_str())
                .collect(),
        };
        let all = self.events_newest_first();
        if ids.is_empty() && !all.iter().any(|e| e.series == key || e.name == key) {
            return None;
        }
        Some(
            all.into_iter()
                .filter(|e| e.series == key || e.name == key || ids.iter().any(|id| e.involves(id)))
                .collect(),
        )
    }

    pub fn get(&self, id: &str) -> Option<&SeriesView> {
        self.series
            .binary_search_by(|s| s.info.id.as_str().cmp(id))
            .ok()
            .map(|i| self.series[i].as_ref())
    }

    /// Total points ingested over every series.
    pub fn ingested(&self) -> u64 {
        self.series.iter().map(|s| s.ingested).sum()
    }

    /// Total anomalies over every series.
    pub fn anomalies(&self) -> u64 {
        self.series.iter().map(|s| s.anomalies).sum()
    }
}
