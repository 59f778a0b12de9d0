//! One series' forecast as the engine publishes it, and [`SeriesForecast::fit`]: the one function
//! that turns a series' history into that state. The forecast service (background fits), batch
//! mode (`--once`) and backfill all fit through it, so they cannot disagree.

use std::sync::Arc;

use super::auto::AutoMemo;
use super::capacity::{Capacity, LONG_POINTS, decimate};
use super::history::ForecastHistory;
use super::model::{Forecast, forecast_to_with};
use super::regular::regularise;
use super::{ForecastError, ForecastSettings};
use crate::domain::{Expectation, Point};

/// What one fit produces: the forecast over the horizon, the long view and the time to the
/// series' threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    pub forecast: Forecast,
    /// The forecast over `[forecast] long_horizon`, decimated ([`decimate`]); `None` when that
    /// is not longer than the horizon.
    pub long: Option<Forecast>,
    /// When the forecast crosses the series' threshold, if it has one.
    pub capacity: Option<Capacity>,
    /// `auto`'s validated choice, to pass to the next fit ([`SeriesForecast::fit_history_with`]).
    pub auto: Option<AutoMemo>,
}

/// One series' forecast state.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesForecast {
    pub series: String,
    /// The latest successful forecast.
    pub forecast: Option<Arc<Forecast>>,
    /// Its long view (decimated), from the same fit.
    pub long: Option<Arc<Forecast>>,
    /// Time to the series' threshold, from the same fit.
    pub capacity: Option<Capacity>,
    /// The error of the latest fit, if it failed (the previous forecast stays).
    pub error: Option<String>,
    /// A fit of this series is queued or running.
    pub pending: bool,
    /// Completed fits (successful or not).
    pub fits: u64,
    /// Points (buckets) the forecast is fitted on.
    pub history_points: usize,
    /// Replay time: the newest point's timestamp.
    pub replay_time: Option<i64>,
    /// The forecast at the replay time, when the forecast covers it.
    pub current: Option<Expectation>,
    /// One-step expectation: the first forecast step after the replay time.
    pub next: Option<Expectation>,
}

impl SeriesForecast {
    /// A series with no fit yet.
    pub fn new(series: &str) -> Self {
        SeriesForecast {
            series: series.to_string(),
            forecast: None,
            long: None,
            capacity: None,
            error: None,
            pending: false,
            fits: 0,
            history_points: 0,
            replay_time: None,
            current: None,
            next: None,
        }
    }

    /// Fits `settings.model` on `points` (in time order, as the engine keeps them) as a
    /// [`ForecastHistory`] holds them, and returns the state after that one fit.
    pub fn fit(series: &str, points: &[Point], settings: &ForecastSettings) -> Self {
        Self::fit_with(series, points, settings, None).0
    }

    /// [`Self::fit`] reusing `auto`'s choice from an earlier fit while it is fresh, and the
    /// choice to keep for the next fit (batch mode keeps them between runs).
    pub fn fit_with(
        series: &str,
        points: &[Point],
        settings: &ForecastSettings,
        memo: Option<&AutoMemo>,
    ) -> (Self, Option<AutoMemo>) {
        let history = ForecastHistory::from_points(points);
        let mut s = SeriesForecast::new(series);
        s.replay_time = points.iter().map(|p| p.timestamp).max();
        s.history_points = history.len();
        let fitted = Self::fit_history_with(series, &history, settings, memo);
        let keep = fitted.as_ref().ok().and_then(|f| f.auto.clone());
        s.record(fitted);
        (s, keep)
    }

    /// The one fit: `settings.model` on a bucketed history, over the longer of the horizon and
    /// the long horizon, split into the forecast and the long view, with the time to the
    /// series' threshold. The forecast service, batch mode and backfill all come here.
    pub fn fit_history(
        series: &str,
        history: &ForecastHistory,
        settings: &ForecastSettings,
    ) -> Result<Fitted, ForecastError> {
        Self::fit_history_with(series, history, settings, None)
    }

    /// [`Self::fit_history`] reusing `auto`'s choice from an earlier fit while it is fresh
    /// ([`AutoMemo::fresh_for`]); the forecast service keeps [`Fitted::auto`] per series.
    pub fn fit_history_with(
        series: &str,
        history: &ForecastHistory,
        settings: &ForecastSettings,
        memo: Option<&AutoMemo>,
    ) -> Result<Fitted, ForecastError> {
        let (ts, vs) = history.series();
        let reg = regularise(&ts, &vs)?;
        let h = reg.steps_for(settings.horizon.as_secs());
        let steps = reg.steps_for(settings.long_horizon.as_secs()).max(h);
        let (mut forecast, auto) =
            forecast_to_with(&reg, settings, settings.model, h, steps, memo)?;
        let capacity = settings.threshold_for(series).and_then(|th| {
            let last = reg.observed.iter().rposition(|&o| o)?;
            let origin = reg.start + last as i64 * reg.step;
            Some(Capacity::from_forecast(
                &forecast,
                th,
                origin,
                reg.values[last],
            ))
        });
        let long = (steps > h).then(|| decimate(&forecast, LONG_POINTS));
        forecast.truncate(h);
        Ok(Fitted {
            forecast,
            long,
            capacity,
            auto,
        })
    }

    /// Records the result of a fit: a new forecast, or the error (the previous forecast stays).
    pub fn record(&mut self, result: Result<Fitted, ForecastError>) {
        self.fits += 1;
        match result {
            Ok(f) => {
                self.forecast = Some(Arc::new(f.forecast));
                self.long = f.long.map(Arc::new);
                self.capacity = f.capacity;
                self.error = None;
            }
            Err(e) => self.error = Some(e.to_string()),
        }
        self.update_expectations();
    }

    /// Recomputes `current` and `next` from the forecast and the replay time.
    pub fn update_expectations(&mut self) {
        let (Some(f), Some(t)) = (self.forecast.as_ref(), self.replay_time) else {
            self.current = None;
            self.next = None;
            return;
        };
        let half = f.step / 2;
        let at = |i: usize| Expectation {
            timestamp: f.timestamps[i],
            point: f.point[i],
            lower: f.lower[i],
            upper: f.upper[i],
        };
        self.current = f
            .timestamps
            .iter()
            .position(|&ts| (ts - t).abs() <= half)
            .map(at);
        self.next = f.timestamps.iter().position(|&ts| ts > t + half).map(at);
    }
}
