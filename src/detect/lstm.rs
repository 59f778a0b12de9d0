//! LSTM autoencoder detector (stub: being implemented).

use super::{Detector, Point};
use crate::config::LstmAeConfig;

pub struct LstmAe {
    _cfg: LstmAeConfig,
}

impl LstmAe {
    pub fn new(cfg: &LstmAeConfig) -> Self {
        LstmAe { _cfg: cfg.clone() }
    }
}

impl Detector for LstmAe {
    fn update(&mut self, _point: Point) -> f64 {
        0.5
    }
}
