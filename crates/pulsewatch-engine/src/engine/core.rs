//! The engine's synchronous heart: one detector per series, the bounded history of scored
//! points, counters, and the snapshot built from them. The async loop ([`super::spawn`]), batch
//! mode ([`super::run_batch`], what `--once` runs) and backfill all score through [`Core::ingest`].
//!
//! Anomaly events: a series' consecutive flagged points are one event; the members of a
//! multivariate group share one event per run of flagged group rows (every member carries the
//! group's score, so one event per member would say the same thing once per member). The group's
//! event names the member with the largest error at its peak and is every member's latest event.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use pulsewatch_core::events::{AnomalyEvent, Band, EventLog, Flagged};

use super::history::History;
use super::state::{ScoredPoint, SeriesView, Snapshot, TrainState};
use crate::sources::source::{SeriesInfo, SourceEvent, SourceKind, SourceStatus};
use pulsewatch_core::config::DetectorConfig;
use pulsewatch_core::detect::group::{GroupFit, Groups};
use pulsewatch_core::detect::{Detector, DetectorKind, JointRow, Point, Reason};
use pulsewatch_core::forecast::SeriesForecast;
use pulsewatch_core::store::{LoadOutcome, ModelStore};

/// What the core needs to know.
#[derive(Debug, Clone)]
pub struct CoreSettings {
    pub source: SourceKind,
    pub detector: DetectorKind,
    pub detector_cfg: DetectorConfig,
    /// Score at which a point is flagged.
    pub threshold: f64,
    /// Points kept per series.
    pub history: usize,
    /// Where fitted models are restored from and saved to (`None`: no persistence).
    pub store: Option<ModelStore>,
    /// Closed anomaly events kept in memory (`[events] keep`).
    pub events_keep: usize,
}

/// Flagged points per five-minute bucket over the last hour of a series' own time: "anomalies in
/// the last hour" in constant memory at any sampling interval.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct HourCounter {
    buckets: [u32; HOUR_BUCKETS],
    /// Bucket number (timestamp / 300) of the newest point.
    head: i64,
}

const HOUR_BUCKETS: usize = 12;
const BUCKET_SECONDS: i64 = 300;

impl HourCounter {
    /// Moves the window to the bucket of `ts` (a later point clears the buckets it passes).
    fn advance(&mut self, ts: i64) {
        let b = ts.div_euclid(BUCKET_SECONDS);
        if b <= self.head {
            return;
        }
        let gap = (b - self.head).min(HOUR_BUCKETS as i64);
        for k in 1..=gap {
            self.buckets[(self.head + k).rem_euclid(HOUR_BUCKETS as i64) as usize] = 0;
        }
        self.head = b;
    }

    fn add(&mut self, ts: i64) {
        let b = ts.div_euclid(BUCKET_SECONDS);
        if b > self.head - HOUR_BUCKETS as i64 {
            self.buckets[b.rem_euclid(HOUR_BUCKETS as i64) as usize] += 1;
        }
    }

    fn count(&self) -> u32 {
        self.buckets.iter().sum()
    }
}

pub(crate) struct Tracked {
    pub info: SeriesInfo,
    pub detector: Box<dyn Detector>,
    pub points: History,
    pub ingested: u64,
    pub anomalies: u64,
    pub stale: bool,
    /// Spike to add to the next point, in the series' own units.
    pub spike: Option<f64>,
    pub forecast: Option<Arc<SeriesForecast>>,
    pub training: Option<TrainState>,
    pub detector_fit: Option<Duration>,
    /// Nothing to write to the model store: the model is there (restored, retrained, or saved
    /// after its automatic fit), or the detector has no model worth keeping (no fit step, or
    /// refitted on a sliding window: [`pulsewatch_core::detect::Trainable::keep_first_fit`]).
    pub saved: bool,
    /// The running anomaly event (the latest point is flagged).
    open: Option<AnomalyEvent>,
    /// The series' latest closed event.
    last_event: Option<Arc<AnomalyEvent>>,
    hour: HourCounter,
    /// The published view, rebuilt when `dirty`.
    view: Option<Arc<SeriesView>>,
    dirty: bool,
}

impl Tracked {
    pub fn mark(&mut self) {
        self.dirty = true;
    }

    /// Ends the running event, if any (`now`: wall clock); it becomes the latest event.
    fn close(&mut self, now: i64) -> Option<Arc<AnomalyEvent>> {
        let mut e = self.open.take()?;
        e.open = false;
        e.recorded = now;
        let e = Arc::new(e);
        self.last_event = Some(e.clone());
        self.dirty = true;
        Some(e)
    }

    /// The kept points as plain points (for retraining, forecasting and analysis).
    pub fn history(&self) -> Vec<Point> {
        self.points.points()
    }

    fn view(&mut self) -> Arc<SeriesView> {
        if let (false, Some(v)) = (self.dirty, &self.view) {
            return v.clone();
        }
        let v = Arc::new(SeriesView {
            info: self.info.clone(),
            points: self.points.clone(),
            ingested: self.ingested,
            anomalies: self.anomalies,
            stale: self.stale,
            forecast: self.forecast.clone(),
            training: self.training.clone(),
            detector_fit: self.detector_fit,
            fitted: self.detector.trainable().map(|t| t.is_fitted()),
            warming_up: self.detector.warming_up(),
            event: match &self.open {
                Some(e) => Some(Arc::new(e.clone())),
                None => self.last_event.clone(),
            },
            recent_anomalies: self.hour.count(),
        });
        self.view = Some(v.clone());
        self.dirty = false;
        v
    }
}

/// The state behind every snapshot.
pub struct Core {
    pub settings: CoreSettings,
    pub(crate) series: BTreeMap<String, Tracked>,
    pub status: Option<SourceStatus>,
    pub paused: bool,
    pub speed: f64,
    pub forecast_model: String,
    version: u64,
    changed: bool,
    /// Closed events, oldest first.
    log: EventLog,
    /// Closed events not yet handed to the events file ([`Core::take_closed`]).
    closed: Vec<Arc<AnomalyEvent>>,
    /// The published list of closed events (rebuilt when one closes).
    events_view: Arc<Vec<Arc<AnomalyEvent>>>,
    events_dirty: bool,
    /// A problem with the events file, reported in every snapshot.
    pub events_warning: Option<String>,
    /// The latest restored event of each series not seen yet (taken when it appears).
    restored: std::collections::HashMap<String, Arc<AnomalyEvent>>,
    /// Multivariate groups by instance (used in the LSTM autoencoder's multivariate mode).
    groups: Groups,
    /// The anomaly event of each multivariate group, by instance.
    group_events: std::collections::HashMap<String, GroupEvent>,
}

/// A multivariate group's event state: the latest row it has seen, and its running event.
#[derive(Debug)]
struct GroupEvent {
    last_row: i64,
    open: Option<AnomalyEvent>,
}

/// A group row a member's point completed, for the group's event (handled once the member's
/// points are in).
struct RowSeen {
    row: JointRow,
    score: f64,
    /// The detector's reason, asked for flagged rows only.
    reason: Option<Reason>,
}

/// The forecast band of a series at `ts`, when its forecast covers it.
fn band_at(forecast: Option<&Arc<SeriesForecast>>, ts: i64) -> Option<Band> {
    let f = forecast?.forecast.as_ref()?;
    f.expectation_at(ts).map(Band::from)
}

impl Core {
    pub fn new(settings: CoreSettings) -> Self {
        Core {
            series: BTreeMap::new(),
            status: None,
            paused: false,
            speed: 0.0,
            forecast_model: String::new(),
            version: 0,
            changed: true,
            log: EventLog::new(settings_keep(&settings)),
            closed: Vec::new(),
            events_view: Arc::new(Vec::new()),
            events_dirty: false,
            events_warning: None,
            restored: std::collections::HashMap::new(),
            groups: Groups::new(&settings.detector_cfg.lstm_ae, settings.store.clone()),
            group_events: std::collections::HashMap::new(),
            settings,
        }
    }

    /// Events read back from the events file (oldest first), as if they had closed here.
    pub fn restore_events(&mut self, events: Vec<Arc<AnomalyEvent>>) {
        for e in events {
            // A group's event is each member's latest.
            let owners =
                std::iter::once(&e.series).chain(e.members.iter().filter(|m| **m != e.series));
            for id in owners {
                match self.series.get_mut(id) {
                    Some(t) => t.last_event = Some(e.clone()),
                    None => {
                        self.restored.insert(id.clone(), e.clone());
                    }
                }
            }
            let _ = self.log.push(e);
        }
        self.events_dirty = true;
        self.changed = true;
    }

    /// Closed events since the last call, for the events file.
    pub fn take_closed(&mut self) -> Vec<Arc<AnomalyEvent>> {
        std::mem::take(&mut self.closed)
    }

    /// Closes every running event (at shutdown, or the end of a batch run) so it is kept.
    pub fn close_all(&mut self) {
        let ids: Vec<String> = self
            .series
            .iter()
            .filter(|(_, t)| t.open.is_some())
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            self.close_event(&id);
        }
        let keys: Vec<String> = self
            .group_events
            .iter()
            .filter(|(_, g)| g.open.is_some())
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            self.close_group_event(&key);
        }
    }

    /// Ends group `key`'s running event, if any; it becomes every member's latest event.
    fn close_group_event(&mut self, key: &str) {
        let Some(mut e) = self.group_events.get_mut(key).and_then(|g| g.open.take()) else {
            return;
        };
        e.open = false;
        e.recorded = pulsewatch_core::domain::unix_now();
        let e = Arc::new(e);
        self.share_group_event(key, &e);
        if self.log.push(e.clone()) {
            self.closed.push(e);
        }
        self.events_dirty = true;
        self.changed = true;
    }

    /// Makes `e` the latest event of every member of group `key`.
    fn share_group_event(&mut self, key: &str, e: &Arc<AnomalyEvent>) {
        for m in self.groups.members(key).unwrap_or_default() {
            if let Some(t) = self.series.get_mut(&m) {
                t.last_event = Some(e.clone());
                t.dirty = true;
            }
        }
    }

    /// Applies a group row seen by member `id` to its group's event: the first member to report
    /// a row decides; a flagged row begins or extends the event, a normal one ends it.
    fn group_row(&mut self, id: &str, seen: RowSeen, now: i64) {
        let Some(key) = self.series.get(id).and_then(|t| t.info.instance.clone()) else {
            return;
        };
        let ts = seen.row.timestamp;
        let g = self.group_events.entry(key.clone()).or_insert(GroupEvent {
            last_row: i64::MIN,
            open: None,
        });
        if ts <= g.last_row {
            return;
        }
        g.last_row = ts;
        if seen.score < self.settings.threshold {
            self.close_group_event(&key);
            return;
        }
        // The member with the largest error carries the event: its name, value and band.
        let lead = seen
            .row
            .worst
            .as_deref()
            .and_then(|w| self.series.get(w))
            .or_else(|| self.series.get(id));
        let Some(lead) = lead else {
            return;
        };
        let value = lead
            .points
            .iter()
            .rev()
            .find(|p| p.timestamp <= ts)
            .map_or(f64::NAN, |p| p.value);
        let band = band_at(lead.forecast.as_ref(), ts);
        let f = Flagged {
            timestamp: ts,
            value,
            score: seen.score,
        };
        let info = lead.info.clone();
        let detector_name = self.settings.detector.name();
        let members = self.groups.members(&key).unwrap_or_default();
        let Some(g) = self.group_events.get_mut(&key) else {
            return;
        };
        match &mut g.open {
            Some(e) => {
                let peak = seen.score > e.peak_score;
                e.extend(f, now, || (band, seen.reason));
                if peak {
                    e.series = info.id;
                    e.name = info.name;
                    e.category = info.category;
                }
            }
            None => {
                let mut e = AnomalyEvent::begin(&info, detector_name, f, band, seen.reason, now);
                e.group = Some(key.clone());
                e.members = members;
                g.open = Some(e);
            }
        }
        if let Some(e) = g.open.clone() {
            self.share_group_event(&key, &Arc::new(e));
        }
    }

    fn close_event(&mut self, id: &str) {
        let now = pulsewatch_core::domain::unix_now();
        if let Some(e) = self.series.get_mut(id).and_then(|t| t.close(now)) {
            if self.log.push(e.clone()) {
                self.closed.push(e);
            }
            self.events_dirty = true;
            self.changed = true;
        }
    }

    /// Something changed since the last snapshot.
    pub fn is_changed(&self) -> bool {
        self.changed
    }

    pub fn touch(&mut self) {
        self.changed = true;
    }

    pub fn series_ids(&self) -> impl Iterator<Item = &String> {
        self.series.keys()
    }

    pub(crate) fn tracked(&self, id: &str) -> Option<&Tracked> {
        self.series.get(id)
    }

    pub(crate) fn tracked_mut(&mut self, id: &str) -> Option<&mut Tracked> {
        self.changed = true;
        self.series.get_mut(id)
    }

    /// A refit of multivariate group `key`'s model on its members' kept histories, or why not.
    pub fn prepare_group_fit(&self, key: &str) -> Result<GroupFit, String> {
        self.groups.prepare_fit(key, |m| {
            self.series.get(m).map(Tracked::history).unwrap_or_default()
        })
    }

    /// Group `key`'s members (empty before it forms).
    pub fn group_members(&self, key: &str) -> Vec<String> {
        self.groups.members(key).unwrap_or_default()
    }

    /// Swaps a group's refitted model in; false when its members changed meanwhile.
    pub fn install_group_fit(&mut self, fit: GroupFit) -> bool {
        self.changed = true;
        self.groups.install(fit)
    }

    /// A fresh detector for a series, restored from the model store when a saved model fits.
    /// A series of an instance in multivariate mode gets a handle onto its group's model (the
    /// group restores its saved model when it forms: `detect::group`).
    pub fn new_detector(&mut self, info: &SeriesInfo) -> (Box<dyn Detector>, Option<String>) {
        let kind = self.settings.detector;
        let id = info.id.as_str();
        if let Some(key) = kind.group_key(&self.settings.detector_cfg, info)
            && let Some(det) = self.groups.member(key, id)
        {
            return (
                det,
                Some(format!("scored jointly with the series of instance {key}")),
            );
        }
        let mut det = kind.build(&self.settings.detector_cfg);
        let mut note = None;
        if let (Some(store), Some(t)) = (&self.settings.store, det.trainable()) {
            let params = kind.params(&self.settings.detector_cfg);
            match store.load(kind.name(), &params, id) {
                (LoadOutcome::Loaded(path), Some((_, payload))) => match t.load_state(&payload) {
                    Ok(()) => note = Some(format!("model restored from {}", path.display())),
                    Err(e) => {
                        tracing::warn!(target: "pulsewatch::analysis", series = id, path = %path.display(), error = %e, "saved model unusable; the detector trains itself");
                    }
                },
                (LoadOutcome::Rejected(path, why), _) => {
                    tracing::warn!(target: "pulsewatch::analysis", series = id, path = %path.display(), reason = %why, "saved model unusable; the detector trains itself");
                }
                _ => {}
            }
        }
        (det, note)
    }

    /// Applies a source event. Returns the points of the series (for the forecaster) and whether
    /// the series restarted.
    pub fn apply(&mut self, ev: SourceEvent) -> Option<(String, Vec<Point>, bool)> {
        match ev {
            SourceEvent::Status(s) => {
                self.status = Some(s);
                self.changed = true;
                None
            }
            SourceEvent::Stale { id } => {
                self.close_event(&id);
                if let Some(t) = self.series.get_mut(&id) {
                    t.stale = true;
                    t.mark();
                    self.changed = true;
                }
                None
            }
            SourceEvent::Points {
                info,
                points,
                restart,
            } => {
                let id = info.id.clone();
                let fed = self.ingest(info, &points, restart);
                Some((id, fed.iter().map(ScoredPoint::point).collect(), restart))
            }
        }
    }

    /// Scores `points` of a series (creating it); returns them scored, as fed (spikes
    /// included). The loop, batch mode and backfill all score through here.
    pub fn ingest(
        &mut self,
        info: SeriesInfo,
        points: &[Point],
        restart: bool,
    ) -> Vec<ScoredPoint> {
        self.changed = true;
        let id = info.id.clone();
        if !self.series.contains_key(&id) || restart {
            self.close_event(&id);
            let (mut detector, note) = self.new_detector(&info);
            // Saved already, or not worth saving (refitted on a sliding window).
            let saved = detector
                .trainable()
                .is_none_or(|t| t.is_fitted() || !t.keep_first_fit());
            if let Some(n) = note {
                tracing::info!(target: "pulsewatch::analysis", series = %id, "{n}");
            }
            let prev = self.series.remove(&id);
            self.series.insert(
                id.clone(),
                Tracked {
                    info: info.clone(),
                    detector,
                    points: History::new(self.settings.history),
                    ingested: prev.as_ref().map_or(0, |p| p.ingested),
                    anomalies: prev.as_ref().map_or(0, |p| p.anomalies),
                    stale: false,
                    spike: None,
                    forecast: prev.as_ref().and_then(|p| p.forecast.clone()),
                    training: None,
                    detector_fit: None,
                    saved,
                    open: None,
                    last_event: prev
                        .as_ref()
                        .and_then(|p| p.last_event.clone())
                        .or_else(|| self.restored.remove(&id)),
                    hour: HourCounter::default(),
                    view: None,
                    dirty: true,
                },
            );
        }
        let threshold = self.settings.threshold;
        let detector_name = self.settings.detector.name();
        let now = pulsewatch_core::domain::unix_now();
        let Some(t) = self.series.get_mut(&id) else {
            return Vec::new();
        };
        let mut ended = false;
        t.stale = false;
        t.mark();
        let mut fed = Vec::with_capacity(points.len());
        let mut rows: Vec<RowSeen> = Vec::new();
        for &p in points {
            let spike = t.spike.take();
            let p = Point {
                timestamp: p.timestamp,
                value: p.value + spike.unwrap_or(0.0),
            };
            let score = t.detector.update(p);
            let score = if score.is_finite() {
                score.clamp(0.0, 1.0)
            } else {
                0.0
            };
            let anomaly = score >= threshold;
            t.ingested += 1;
            t.anomalies += u64::from(anomaly);
            if !t.saved
                && let Some(store) = &self.settings.store
                && let Some(tr) = t.detector.trainable()
                && tr.is_fitted()
            {
                // The detector fitted itself on its first window: its model is kept as a
                // retrain's is, so a restart restores it instead of training again.
                t.saved = true;
                let (kind, cfg) = (self.settings.detector, &self.settings.detector_cfg);
                save_fit(store, kind, cfg, &id, t.ingested as usize, tr);
            }
            let sp = ScoredPoint {
                timestamp: p.timestamp,
                value: p.value,
                score,
                anomaly,
                injected: spike.is_some(),
            };
            t.points.push(sp);
            fed.push(sp);
            t.hour.advance(p.timestamp);
            if anomaly {
                t.hour.add(p.timestamp);
            }
            if let Some(row) = t.detector.joint_row() {
                // A group member: the group's event (below), not one of its own.
                if rows.last().is_none_or(|r| r.row.timestamp < row.timestamp) {
                    let reason = if anomaly { t.detector.explain() } else { None };
                    rows.push(RowSeen { row, score, reason });
                }
                continue;
            }
            if anomaly {
                let f = Flagged {
                    timestamp: p.timestamp,
                    value: p.value,
                    score,
                };
                let (det, forecast) = (&mut t.detector, t.forecast.as_ref());
                match &mut t.open {
                    Some(e) => e.extend(f, now, || (band_at(forecast, p.timestamp), det.explain())),
                    None => {
                        t.open = Some(AnomalyEvent::begin(
                            &t.info,
                            detector_name,
                            f,
                            band_at(forecast, p.timestamp),
                            det.explain(),
                            now,
                        ));
                    }
                }
            } else if let Some(e) = t.close(now) {
                // The event ends with the first normal point (a looped replay meets the same
                // event again: it is kept once).
                ended = true;
                if self.log.push(e.clone()) {
                    self.closed.push(e);
                }
            }
        }
        if ended {
            self.events_dirty = true;
        }
        for seen in rows {
            self.group_row(&id, seen, now);
        }
        fed
    }

    /// Queues a spike of `magnitude` robust standard deviations of the recent values (at least
    /// 1 % of their mean magnitude) on the next point of `id`. Returns the spike in the series'
    /// units.
    pub fn inject_spike(&mut self, id: &str, magnitude: f64) -> Option<f64> {
        let t = self.tracked_mut(id)?;
        let vals: Vec<f64> = t.points.iter().rev().take(200).map(|p| p.value).collect();
        let n = vals.len().max(1) as f64;
        let mean = vals.iter().sum::<f64>() / n;
        let sd = (vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        let unit = sd.max(mean.abs() * 0.01).max(1e-9);
        let spike = magnitude * unit;
        t.spike = Some(spike);
        t.mark();
        Some(spike)
    }

    /// Records a forecast.
    pub fn set_forecast(&mut self, id: &str, f: Arc<SeriesForecast>) {
        if let Some(t) = self.series.get_mut(id)
            && !t.forecast.as_ref().is_some_and(|old| Arc::ptr_eq(old, &f))
        {
            t.forecast = Some(f);
            t.mark();
            self.changed = true;
        }
    }

    /// Records a retrain state.
    pub fn set_training(&mut self, id: &str, s: TrainState) {
        if let Some(t) = self.tracked_mut(id) {
            if let TrainState::Finished { seconds, .. } = &s {
                t.detector_fit = Some(Duration::from_secs_f64(*seconds));
            }
            t.training = Some(s);
            t.mark();
        }
    }

    /// The current snapshot (series views are reused unless they changed).
    pub fn snapshot(&mut self) -> Arc<Snapshot> {
        self.version += 1;
        self.changed = false;
        Arc::new(Snapshot {
            version: self.version,
            source: self.settings.source,
            detector: self.settings.detector.name().to_string(),
            threshold: self.settings.threshold,
            forecast_model: self.forecast_model.clone(),
            paused: self.paused,
            speed: self.speed,
            status: self.status.clone(),
            series: self.series.values_mut().map(Tracked::view).collect(),
            events: self.events_view(),
            events_warning: self.events_warning.clone(),
        })
    }

    fn events_view(&mut self) -> Arc<Vec<Arc<AnomalyEvent>>> {
        if std::mem::take(&mut self.events_dirty) {
            self.events_view = Arc::new(self.log.iter().cloned().collect());
        }
        self.events_view.clone()
    }
}

/// Writes a detector's automatic fit to the model store (a failure is logged; the model stays
/// in use).
fn save_fit(
    store: &ModelStore,
    kind: DetectorKind,
    cfg: &DetectorConfig,
    id: &str,
    trained: usize,
    tr: &mut dyn pulsewatch_core::detect::Trainable,
) {
    let Some(state) = tr.save_state() else {
        return;
    };
    match store.save(kind.name(), &kind.params(cfg), id, trained, &state) {
        Ok(path) => {
            tracing::info!(target: "pulsewatch::analysis", series = id, path = %path.display(), "model saved after its first fit")
        }
        Err(e) => {
            tracing::warn!(target: "pulsewatch::analysis", series = id, error = %e, "cannot save model; the fitted model stays in use")
        }
    }
}

fn settings_keep(s: &CoreSettings) -> usize {
    s.events_keep.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(threshold: f64) -> CoreSettings {
        CoreSettings {
            source: SourceKind::Nab,
            detector: DetectorKind::Pulse,
            detector_cfg: DetectorConfig::default(),
            threshold,
            history: 100,
            store: None,
            events_keep: 100,
        }
    }

    fn info(id: &str) -> SeriesInfo {
        SeriesInfo {
            id: id.into(),
            name: id.into(),
            category: "c".into(),
            source: SourceKind::Nab,
            instance: None,
        }
    }

    fn pts(range: std::ops::Range<i64>, f: impl Fn(i64) -> f64) -> Vec<Point> {
        range
            .map(|i| Point {
                timestamp: i * 300,
                value: f(i),
            })
            .collect()
    }

    #[test]
    fn history_is_bounded_and_counters_keep_counting() {
        let mut core = Core::new(settings(0.5));
        core.ingest(info("a"), &pts(0..250, |i| (i % 7) as f64), false);
        let snap = core.snapshot();
        let a = snap.get("a").expect("series a");
        assert_eq!(a.points.len(), 100);
        assert_eq!(a.ingested, 250);
        assert_eq!(a.points.get(0).map(|p| p.timestamp), Some(150 * 300));
        // A restart (looped replay) starts a fresh detector but keeps the counters.
        core.ingest(info("a"), &pts(0..10, |_| 1.0), true);
        let a2 = core.snapshot();
        let a2 = a2.get("a").expect("a");
        assert_eq!(a2.ingested, 260);
        assert_eq!(a2.points.len(), 10);
    }

    #[test]
    fn unchanged_series_views_are_shared_between_snapshots() {
        let mut core = Core::new(settings(0.5));
        core.ingest(info("a"), &pts(0..10, |_| 1.0), false);
        core.ingest(info("b"), &pts(0..10, |_| 1.0), false);
        let s1 = core.snapshot();
        core.ingest(info("b"), &pts(10..11, |_| 1.0), false);
        let s2 = core.snapshot();
        assert!(Arc::ptr_eq(&s1.series[0], &s2.series[0]), "a unchanged");
        assert!(!Arc::ptr_eq(&s1.series[1], &s2.series[1]), "b changed");
        assert!(s2.version > s1.version);
    }

    #[test]
    fn injected_spike_is_flagged_and_marked() {
        let mut core = Core::new(settings(0.5));
        let wave = |i: i64| 10.0 + (i as f64 * 0.3).sin();
        core.ingest(info("a"), &pts(0..600, wave), false);
        let spike = core.inject_spike("a", 8.0).expect("series exists");
        assert!(spike > 1.0, "8 standard deviations of a sine: {spike}");
        core.ingest(info("a"), &pts(600..602, wave), false);
        let snap = core.snapshot();
        let a = snap.get("a").expect("a");
        let n = a.points.len();
        let hit = a.points.get(n - 2).expect("point");
        assert!(hit.injected && hit.anomaly, "{hit:?}");
        assert!(!a.points.get(n - 1).expect("point").injected);
        assert!(a.anomalies >= 1);
    }

    #[test]
    fn consecutive_flags_form_one_event_and_the_hour_counts_flags() {
        let mut core = Core::new(settings(0.5));
        let wave = |i: i64| 10.0 + (i as f64 * 0.7).sin();
        // Two spikes on "a" (one point each; the second higher and past the rest after the
        // first, as `pulse` flags new records and rests after an alarm), one at the end of "b".
        let spikes = |i: i64| match i {
            300 => 50.0,
            480 => 120.0,
            _ => 0.0,
        };
        core.ingest(info("a"), &pts(0..500, |i| wave(i) + spikes(i)), false);
        let snap = core.snapshot();
        assert_eq!(snap.events.len(), 2, "{:?}", snap.events);
        let e = &snap.events[1];
        // The spike and its echo in the short mean (an alarm-strength point during the rest,
        // which the live detector shows): one event of two points.
        assert_eq!((e.start, e.end, e.points), (480 * 300, 481 * 300, 2));
        assert!(!e.open && e.peak_value > 55.0, "{e:?}");
        // Points are 5 minutes apart: the flag at 480 is 95 minutes before the newest point.
        assert_eq!(snap.get("a").map(|s| s.recent_anomalies), Some(0));
        assert_eq!(core.take_closed().len(), 2);
        assert!(core.take_closed().is_empty());
        // A looped replay meets the same anomalies again: they are kept once.
        core.ingest(info("a"), &pts(0..500, |i| wave(i) + spikes(i)), true);
        assert_eq!(core.snapshot().events.len(), 2);
        assert!(core.take_closed().is_empty());
        core.ingest(info("b"), &pts(0..499, wave), false);
        core.ingest(info("b"), &pts(499..500, |i| wave(i) + 50.0), false);
        let snap = core.snapshot();
        let b = snap.get("b").expect("b");
        assert!(b.event.as_ref().is_some_and(|e| e.open), "{:?}", b.event);
        assert_eq!(
            b.recent_anomalies, 1,
            "the flag on the newest point is in the last hour"
        );
        let closed = snap.events.len();
        let all = snap.events_newest_first();
        assert_eq!(all.len(), closed + 1);
        assert!(all[0].open && all[0].series == "b");
        // Stopping closes it, so it is kept.
        core.take_closed();
        core.close_all();
        assert_eq!(core.take_closed().len(), 1);
        assert_eq!(core.snapshot().events.len(), closed + 1);
        // A restart: the restored events are listed, and a series that appears gets its latest.
        let kept: Vec<Arc<AnomalyEvent>> = core.snapshot().events.iter().cloned().collect();
        let mut again = Core::new(settings(0.5));
        again.restore_events(kept.clone());
        assert_eq!(again.snapshot().events.len(), kept.len());
        again.ingest(info("a"), &pts(0..3, wave), false);
        let a = again.snapshot();
        let latest_a = kept.iter().rev().find(|e| e.series == "a").map(Arc::as_ref);
        assert_eq!(
            a.get("a").and_then(|s| s.event.as_deref()),
            latest_a,
            "series a shows its latest restored event"
        );
        assert!(
            again.take_closed().is_empty(),
            "restored events are not written again"
        );
    }

    #[test]
    fn stale_and_status_events() {
        let mut core = Core::new(settings(0.5));
        core.apply(SourceEvent::Points {
            info: info("x"),
            points: pts(0..3, |_| 1.0),
            restart: false,
        });
        core.apply(SourceEvent::Stale { id: "x".into() });
        let snap = core.snapshot();
        assert!(snap.get("x").expect("x").stale);
        core.apply(SourceEvent::Points {
            info: info("x"),
            points: pts(3..4, |_| 1.0),
            restart: false,
        });
        assert!(!core.snapshot().get("x").expect("x").stale);
    }
}
