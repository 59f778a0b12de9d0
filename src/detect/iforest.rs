//! Isolation Forest detector (stub: being implemented).

use super::{Detector, Point};
use crate::config::IsolationForestConfig;

pub struct IsolationForest {
    _cfg: IsolationForestConfig,
}

impl IsolationForest {
    pub fn new(cfg: &IsolationForestConfig) -> Self {
        IsolationForest { _cfg: cfg.clone() }
    }
}

impl Detector for IsolationForest {
    fn update(&mut self, _point: Point) -> f64 {
        0.5
    }
}
