//! Groups of series scored by one multivariate model (the LSTM autoencoder's multivariate mode,
//! [`super::lstm::joint`]). The engine keeps one [`Groups`] and asks it for each new series'
//! detector: a series with a group key (its `instance`) gets a handle onto its group's shared
//! model, and each handle feeds its own points.
//!
//! # Rows from separate streams
//! Members report one point at a time, each through its own handle (the host source emits every
//! metric of a poll with the same timestamp, one series after the other). The group assembles
//! rows by timestamp: the **membership** is the set of series that reported in the first
//! [`FORMING_ROWS`] timestamps (a rate, such as the host's network counters, has no value at the
//! first poll); a row is scored once every member has reported its timestamp, or, if one is late,
//! when any member reports a newer timestamp (the late member's latest value is carried
//! forward). Points older than the row being assembled are ignored. Every handle returns the
//! calibrated score of the latest scored row, so a member that reports before the row is
//! complete shows the previous row's score (one poll behind): every score uses that row and
//! earlier ones only. A series that joins after the first row is scored alone by the univariate
//! detector.
//!
//! # Saving and retraining
//! With a model store, a group's model is kept under the store key `instance=<key>`
//! ([`Groups::store_key`]): the model's automatic fit on its first `train` rows and a retrain
//! ([`Groups::prepare_fit`], run anywhere, then [`Groups::install`]) write it, and a group
//! restores it when it forms, if the saved members
//! are the ones that reported its first row (else it trains afresh, with a warning). A retrain
//! fits on the members' kept histories joined by timestamp (a late member's value carried
//! forward, rows before every member has a value left out), exactly as live rows are assembled.
//!
//! The registry and handles are plain synchronous code (a `Mutex` per group, never contended:
//! the engine scores on one thread).

#[cfg(feature = "lstm")]
use std::collections::HashMap;
#[cfg(feature = "lstm")]
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Detector, FitControl, FitError, Point};
#[cfg(feature = "lstm")]
use super::{DetectorKind, JointRow, Reason};
use crate::config::LstmAeConfig;
use crate::store::ModelStore;
#[cfg(feature = "lstm")]
use crate::store::{LoadOutcome, fingerprint};

/// Timestamps over which a group gathers its members before its model starts (a series that
/// first reports later is scored alone).
pub const FORMING_ROWS: usize = 3;

/// The multivariate groups of one engine, by key.
#[derive(Debug, Default)]
pub struct Groups {
    #[cfg(feature = "lstm")]
    cfg: LstmAeConfig,
    #[cfg(feature = "lstm")]
    store: Option<ModelStore>,
    #[cfg(feature = "lstm")]
    map: HashMap<String, Arc<Mutex<Group>>>,
}

/// A refit of one group's model, prepared where the histories are ([`Groups::prepare_fit`]),
/// run anywhere ([`GroupFit::fit`], with progress and cancellation) and swapped in by
/// [`Groups::install`].
pub struct GroupFit {
    key: String,
    members: Vec<String>,
    /// Training rows, row-major (one value per member, NaN where a member has none yet).
    #[cfg(feature = "lstm")]
    rows: Vec<f64>,
    #[cfg(feature = "lstm")]
    det: Joint,
}

impl GroupFit {
    /// The group's key (its instance).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The members, in the model's input order.
    pub fn members(&self) -> &[String] {
        &self.members
    }

    /// Rows the fit sees.
    pub fn rows(&self) -> usize {
        #[cfg(feature = "lstm")]
        return self.rows.len() / self.members.len().max(1);
        #[cfg(not(feature = "lstm"))]
        0
    }

    /// Fits the group's model on its latest `train` complete rows.
    pub fn fit(&mut self, ctl: &mut FitControl<'_>) -> Result<(), FitError> {
        #[cfg(feature = "lstm")]
        return self.det.fit(&self.rows, ctl);
        #[cfg(not(feature = "lstm"))]
        {
            let _ = ctl;
            Err(FitError::Failed("built without the lstm feature".into()))
        }
    }

    /// The fitted model's state, for the model store; `None` before a fit.
    pub fn save_state(&self) -> Option<Vec<u8>> {
        #[cfg(feature = "lstm")]
        return self.det.save_state();
        #[cfg(not(feature = "lstm"))]
        None
    }
}

/// The group's rows from its members' histories: one row per distinct timestamp, each member's
/// latest value at or before it (NaN before its first), row-major in `histories`' order.
pub fn join_rows(histories: &[Vec<Point>]) -> Vec<f64> {
    let mut all: Vec<(i64, usize, f64)> = histories
        .iter()
        .enumerate()
        .flat_map(|(c, h)| h.iter().map(move |p| (p.timestamp, c, p.value)))
        .collect();
    all.sort_by_key(|&(ts, c, _)| (ts, c));
    let m = histories.len();
    let mut row = vec![f64::NAN; m];
    let mut out = Vec::new();
    for (i, &(ts, c, v)) in all.iter().enumerate() {
        if v.is_finite() {
            row[c] = v;
        }
        if all.get(i + 1).is_none_or(|&(next, _, _)| next != ts) {
            out.extend_from_slice(&row);
        }
    }
    out
}

impl Groups {
    /// The groups of one engine; with `store`, group models are restored from it and saved to
    /// it (see the module docs).
    pub fn new(cfg: &LstmAeConfig, store: Option<ModelStore>) -> Self {
        #[cfg(not(feature = "lstm"))]
        let _ = (cfg, store);
        Groups {
            #[cfg(feature = "lstm")]
            cfg: cfg.clone(),
            #[cfg(feature = "lstm")]
            store,
            #[cfg(feature = "lstm")]
            map: HashMap::new(),
        }
    }

    /// The model store's key of group `key`'s model.
    pub fn store_key(key: &str) -> String {
        format!("instance={key}")
    }

    /// Group `key`'s members once its first row fixed them (`None` before, or for no group).
    pub fn members(&self, key: &str) -> Option<Vec<String>> {
        #[cfg(feature = "lstm")]
        return Some(lock(self.map.get(key)?).det.as_ref()?.members().to_vec());
        #[cfg(not(feature = "lstm"))]
        {
            let _ = key;
            None
        }
    }

    /// A refit of group `key`'s model on its members' histories (`history` gives a member's
    /// kept points); why not, when the group has not formed.
    pub fn prepare_fit(
        &self,
        key: &str,
        history: impl Fn(&str) -> Vec<Point>,
    ) -> Result<GroupFit, String> {
        let Some(members) = self.members(key) else {
            return Err(format!(
                "the group of instance {key} has not formed yet (it forms at its first row)"
            ));
        };
        #[cfg(feature = "lstm")]
        {
            let histories: Vec<Vec<Point>> = members.iter().map(|m| history(m)).collect();
            Ok(GroupFit {
                key: key.to_string(),
                rows: join_rows(&histories),
                det: Joint::new(&self.cfg, members.clone()),
                members,
            })
        }
        #[cfg(not(feature = "lstm"))]
        {
            let _ = history;
            Ok(GroupFit {
                key: key.to_string(),
                members,
            })
        }
    }

    /// Swaps a fitted model in (it continues the group's live window); false when the group's
    /// members changed meanwhile (the fit is dropped).
    pub fn install(&mut self, fit: GroupFit) -> bool {
        #[cfg(feature = "lstm")]
        {
            let Some(group) = self.map.get(&fit.key) else {
                return false;
            };
            let mut g = lock(group);
            let mut det = fit.det;
            match &g.det {
                Some(old) if old.members() == det.members() => det.continue_from(old),
                _ => return false,
            }
            g.det = Some(det);
            // The retrain job writes the store.
            g.saved = true;
            true
        }
        #[cfg(not(feature = "lstm"))]
        {
            let _ = fit;
            false
        }
    }

    /// The detector of series `member` in group `key`: a handle onto the group's model (a
    /// series that restarts gets a new handle onto the same place in its group). `None` in a
    /// build without the `lstm` feature.
    pub fn member(&mut self, key: &str, member: &str) -> Option<Box<dyn Detector>> {
        #[cfg(feature = "lstm")]
        {
            let group = self
                .map
                .entry(key.to_string())
                .or_insert_with(|| {
                    Arc::new(Mutex::new(Group::new(&self.cfg, key, self.store.clone())))
                })
                .clone();
            Some(Box::new(Member {
                group,
                name: member.to_string(),
                solo: None,
                cfg: self.cfg.clone(),
            }))
        }
        #[cfg(not(feature = "lstm"))]
        {
            let _ = (key, member);
            None
        }
    }
}

#[cfg(feature = "lstm")]
fn lock(g: &Mutex<Group>) -> MutexGuard<'_, Group> {
    g.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(feature = "lstm")]
type Joint = super::lstm::joint::JointLstmAe;

#[cfg(feature = "lstm")]
#[derive(Debug)]
struct Group {
    cfg: LstmAeConfig,
    key: String,
    store: Option<ModelStore>,
    /// Members reporting in the first timestamps (the membership, once `det` exists).
    first: Vec<String>,
    /// Distinct timestamps completed while forming.
    formed_rows: usize,
    det: Option<Joint>,
    /// Timestamp of the row being assembled, and its values by member.
    row_ts: Option<i64>,
    row: Vec<Option<f64>>,
    /// The row at `row_ts` was scored (every member reported).
    scored: bool,
    /// Calibrated score of the latest scored row, and its timestamp.
    score: f64,
    scored_row: Option<i64>,
    /// The fitted model is in the store (restored, retrained or saved after its automatic fit).
    saved: bool,
}

#[cfg(feature = "lstm")]
impl Group {
    fn new(cfg: &LstmAeConfig, key: &str, store: Option<ModelStore>) -> Self {
        Group {
            cfg: cfg.clone(),
            key: key.to_string(),
            store,
            first: Vec::new(),
            formed_rows: 0,
            det: None,
            row_ts: None,
            row: Vec::new(),
            scored: false,
            score: 0.0,
            scored_row: None,
            saved: false,
        }
    }

    /// Records `name`'s value in the row being gathered (a new name joins the members).
    fn register(&mut self, name: &str, value: f64) {
        let i = match self.first.iter().position(|m| m == name) {
            Some(i) => i,
            None => {
                self.first.push(name.to_string());
                self.first.len() - 1
            }
        };
        self.row.resize(self.first.len(), None);
        self.row[i] = Some(value);
    }

    /// The group's saved model, when the store has one for exactly these members.
    fn restored(&self, members: &[String]) -> Option<Joint> {
        let store = self.store.as_ref()?;
        let (name, params) = (DetectorKind::LstmAe.name(), fingerprint(&self.cfg));
        let key = Groups::store_key(&self.key);
        let (path, payload) = match store.load(name, &params, &key) {
            (LoadOutcome::Loaded(path), Some((_, payload))) => (path, payload),
            (LoadOutcome::Rejected(path, why), _) => {
                tracing::warn!(target: "pulsewatch::analysis", group = %self.key, path = %path.display(), reason = %why, "saved group model unusable; the group trains itself");
                return None;
            }
            _ => return None,
        };
        let det = match Joint::from_state(&self.cfg, &payload) {
            Ok(det) => det,
            Err(e) => {
                tracing::warn!(target: "pulsewatch::analysis", group = %self.key, path = %path.display(), error = %e, "saved group model unusable; the group trains itself");
                return None;
            }
        };
        let (mut saved, mut now) = (det.members().to_vec(), members.to_vec());
        saved.sort();
        now.sort();
        if saved != now {
            tracing::warn!(target: "pulsewatch::analysis", group = %self.key, path = %path.display(), saved = ?saved, now = ?now, "saved group model has other members; the group trains itself");
            return None;
        }
        tracing::info!(target: "pulsewatch::analysis", group = %self.key, path = %path.display(), "group model restored");
        Some(det)
    }

    /// Scores the row being assembled (missing values carried forward by the model).
    fn close_row(&mut self) {
        if let Some(det) = &mut self.det {
            let row: Vec<f64> = self.row.iter().map(|v| v.unwrap_or(f64::NAN)).collect();
            self.score = det.update(&row);
            self.scored_row = self.row_ts;
            if !self.saved && det.is_fitted() {
                self.saved = true;
                self.save();
            }
        }
        self.scored = true;
    }

    /// Writes the model after its automatic fit (a restart then restores it instead of
    /// training again); a failure is logged and the model stays in use.
    fn save(&self) {
        let (Some(store), Some(det)) = (&self.store, &self.det) else {
            return;
        };
        let Some(state) = det.save_state() else {
            return;
        };
        let key = Groups::store_key(&self.key);
        let params = fingerprint(&self.cfg);
        match store.save(
            DetectorKind::LstmAe.name(),
            &params,
            &key,
            self.cfg.train,
            &state,
        ) {
            Ok(path) => {
                tracing::info!(target: "pulsewatch::analysis", group = %self.key, path = %path.display(), "group model saved after its first fit")
            }
            Err(e) => {
                tracing::warn!(target: "pulsewatch::analysis", group = %self.key, error = %e, "cannot save the group model; it stays in use")
            }
        }
    }

    /// Feeds `point` of `name`; `None` when `name` is not a member (it is scored alone).
    fn feed(&mut self, name: &str, point: Point) -> Option<f64> {
        let ts = point.timestamp;
        if self.det.is_none() {
            match self.row_ts {
                Some(t) if ts < t => return Some(0.0),
                Some(t) if ts > t && self.formed_rows + 1 < FORMING_ROWS => {
                    // Still gathering members: a new row starts.
                    self.formed_rows += 1;
                    self.row.iter_mut().for_each(|v| *v = None);
                    self.row_ts = Some(ts);
                    self.register(name, point.value);
                    return Some(0.0);
                }
                Some(t) if ts > t => {
                    // The forming rows are over: fix the membership and score the last one.
                    let first = std::mem::take(&mut self.first);
                    let restored = self.restored(&first);
                    self.saved = restored.is_some();
                    let det = restored.unwrap_or_else(|| Joint::new(&self.cfg, first.clone()));
                    // The row being assembled is in first-reporter order; the model's may
                    // differ (a restored one keeps its own).
                    let row = std::mem::take(&mut self.row);
                    self.row = det.members().iter().map(|_| None).collect();
                    for (name, v) in first.iter().zip(row) {
                        if let Some(i) = det.members().iter().position(|m| m == name) {
                            self.row[i] = v;
                        }
                    }
                    self.det = Some(det);
                    self.close_row();
                }
                _ => {
                    self.row_ts = Some(ts);
                    self.register(name, point.value);
                    return Some(0.0);
                }
            }
        }
        let i = self
            .det
            .as_ref()?
            .members()
            .iter()
            .position(|m| m == name)?;
        match self.row_ts {
            Some(t) if ts < t => return Some(self.score),
            Some(t) if ts == t && self.scored => return Some(self.score),
            Some(t) if ts > t => {
                if !self.scored {
                    self.close_row();
                }
                self.row.iter_mut().for_each(|v| *v = None);
                self.row_ts = Some(ts);
                self.scored = false;
            }
            _ => self.row_ts = Some(ts),
        }
        self.row[i] = Some(point.value);
        if self.row.iter().all(Option::is_some) {
            self.close_row();
        }
        Some(self.score)
    }
}

/// One member's detector: a handle onto its group, or the univariate detector for a series that
/// is not in its group's membership.
#[cfg(feature = "lstm")]
struct Member {
    group: Arc<Mutex<Group>>,
    name: String,
    solo: Option<super::lstm::LstmAe>,
    cfg: LstmAeConfig,
}

#[cfg(feature = "lstm")]
impl Detector for Member {
    fn update(&mut self, point: Point) -> f64 {
        if let Some(s) = &mut self.solo {
            return s.update(point);
        }
        let fed = lock(&self.group).feed(&self.name, point);
        match fed {
            Some(score) => score,
            None => {
                let mut s = super::lstm::LstmAe::new(&self.cfg);
                let score = s.update(point);
                self.solo = Some(s);
                score
            }
        }
    }

    fn warming_up(&self) -> bool {
        match &self.solo {
            Some(s) => s.warming_up(),
            None => lock(&self.group).det.as_ref().is_none_or(Joint::warming_up),
        }
    }

    fn explain(&mut self) -> Option<Reason> {
        match &mut self.solo {
            Some(s) => s.explain(),
            None => lock(&self.group).det.as_ref()?.explain(),
        }
    }

    fn joint_row(&self) -> Option<JointRow> {
        if self.solo.is_some() {
            return None;
        }
        let g = lock(&self.group);
        Some(JointRow {
            timestamp: g.scored_row?,
            worst: g.det.as_ref()?.worst().map(|(name, _)| name.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(v: &[(i64, f64)]) -> Vec<Point> {
        v.iter()
            .map(|&(timestamp, value)| Point { timestamp, value })
            .collect()
    }

    /// Rows by timestamp: a late member is NaN until its first value, then carried forward
    /// over a gap; a non-finite value keeps the previous one.
    #[test]
    fn histories_join_into_rows_by_timestamp() {
        let a = pts(&[(0, 1.0), (60, 2.0), (120, 3.0), (180, f64::NAN)]);
        let b = pts(&[(60, 10.0), (180, 30.0)]);
        let rows = join_rows(&[a, b]);
        let got: Vec<String> = rows.chunks(2).map(|r| format!("{:?}", r)).collect();
        assert_eq!(
            got,
            ["[1.0, NaN]", "[2.0, 10.0]", "[3.0, 10.0]", "[3.0, 30.0]"]
        );
        assert!(join_rows(&[]).is_empty());
    }

    /// A member whose first value comes a poll late (a rate) still joins the group; one that
    /// first reports after the forming rows is scored alone.
    #[cfg(feature = "lstm")]
    #[test]
    fn members_that_report_within_the_forming_rows_join_the_group() {
        let mut groups = Groups::new(&LstmAeConfig::default(), None);
        let mut dets: Vec<(String, Box<dyn Detector>)> = ["cpu", "rx", "late"]
            .iter()
            .map(|n| (n.to_string(), groups.member("host", n).expect("lstm build")))
            .collect();
        for t in 0..8i64 {
            for (name, det) in &mut dets {
                let joins = match name.as_str() {
                    "cpu" => 0,
                    "rx" => 1,
                    _ => FORMING_ROWS as i64 + 1,
                };
                if t >= joins {
                    det.update(Point {
                        timestamp: 60 * t,
                        value: t as f64,
                    });
                }
            }
            let formed = groups.members("host");
            assert_eq!(formed.is_some(), t >= FORMING_ROWS as i64, "row {t}");
        }
        assert_eq!(
            groups.members("host"),
            Some(vec!["cpu".to_string(), "rx".to_string()])
        );
    }
}
