//! Groups of series scored by one multivariate model (the LSTM autoencoder's multivariate mode,
//! [`super::lstm::joint`]). The engine keeps one [`Groups`] and asks it for each new series'
//! detector: a series with a group key (its `instance`) gets a handle onto its group's shared
//! model, and each handle feeds its own points.
//!
//! # Rows from separate streams
//! Members report one point at a time, each through its own handle (the host source emits every
//! metric of a poll with the same timestamp, one series after the other). The group assembles
//! rows by timestamp: the **membership** is the set of series that reported the first
//! timestamp; a row is scored once every member has reported its timestamp, or, if one is late,
//! when any member reports a newer timestamp (the late member's latest value is carried
//! forward). Points older than the row being assembled are ignored. Every handle returns the
//! calibrated score of the latest scored row, so a member that reports before the row is
//! complete shows the previous row's score (one poll behind): every score uses that row and
//! earlier ones only. A series that joins after the first row is scored alone by the univariate
//! detector.
//!
//! The registry and handles are plain synchronous code (a `Mutex` per group, never contended:
//! the engine scores on one thread).

#[cfg(feature = "lstm")]
use std::collections::HashMap;
#[cfg(feature = "lstm")]
use std::sync::{Arc, Mutex, MutexGuard};

use super::Detector;
#[cfg(feature = "lstm")]
use super::{Point, Reason};
use crate::config::LstmAeConfig;

/// The multivariate groups of one engine, by key.
#[derive(Debug, Default)]
pub struct Groups {
    #[cfg(feature = "lstm")]
    cfg: LstmAeConfig,
    #[cfg(feature = "lstm")]
    map: HashMap<String, Arc<Mutex<Group>>>,
}

impl Groups {
    pub fn new(cfg: &LstmAeConfig) -> Self {
        #[cfg(not(feature = "lstm"))]
        let _ = cfg;
        Groups {
            #[cfg(feature = "lstm")]
            cfg: cfg.clone(),
            #[cfg(feature = "lstm")]
            map: HashMap::new(),
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
                .or_insert_with(|| Arc::new(Mutex::new(Group::new(&self.cfg))))
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
    /// Members reporting the first timestamp (the membership, once `det` exists).
    first: Vec<String>,
    det: Option<Joint>,
    /// Timestamp of the row being assembled, and its values by member.
    row_ts: Option<i64>,
    row: Vec<Option<f64>>,
    /// The row at `row_ts` was scored (every member reported).
    scored: bool,
    /// Calibrated score of the latest scored row.
    score: f64,
}

#[cfg(feature = "lstm")]
impl Group {
    fn new(cfg: &LstmAeConfig) -> Self {
        Group {
            cfg: cfg.clone(),
            first: Vec::new(),
            det: None,
            row_ts: None,
            row: Vec::new(),
            scored: false,
            score: 0.0,
        }
    }

    /// Scores the row being assembled (missing values carried forward by the model).
    fn close_row(&mut self) {
        if let Some(det) = &mut self.det {
            let row: Vec<f64> = self.row.iter().map(|v| v.unwrap_or(f64::NAN)).collect();
            self.score = det.update(&row);
        }
        self.scored = true;
    }

    /// Feeds `point` of `name`; `None` when `name` is not a member (it is scored alone).
    fn feed(&mut self, name: &str, point: Point) -> Option<f64> {
        let ts = point.timestamp;
        if self.det.is_none() {
            match self.row_ts {
                Some(t) if ts < t => return Some(0.0),
                Some(t) if ts > t => {
                    // The first row is complete: fix the membership and score it.
                    let members = std::mem::take(&mut self.first);
                    self.det = Some(Joint::new(&self.cfg, members));
                    self.close_row();
                }
                _ => {
                    self.row_ts = Some(ts);
                    if !self.first.iter().any(|m| m == name) {
                        self.first.push(name.to_string());
                        self.row.push(None);
                    }
                    if let Some(i) = self.first.iter().position(|m| m == name) {
                        self.row[i] = Some(point.value);
                    }
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
}
