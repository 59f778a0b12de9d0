//! Capacity planning: when a series' forecast crosses a threshold set in the config, and the
//! long-horizon view the Forecast tab draws.
//!
//! * **Thresholds** come from `[[forecast.thresholds]]` (a series pattern with `above` or
//!   `below`) and from `above`/`below` on a `[[prometheus.queries]]` entry (every series of that
//!   query). The first rule whose pattern matches a series id applies; a pattern is the id itself
//!   or has `*` wildcards (matched here: a dozen lines, not worth a dependency).
//! * **Time to threshold** ([`Capacity::from_forecast`]) is read off the full-resolution forecast
//!   over `[forecast] long_horizon` (7 days by default), with linear interpolation between steps:
//!   *likely* when the point forecast crosses, *earliest* when the near side of the band does
//!   (the upper bound for `above`), *latest* when the far side does. A bound that does not cross
//!   within the horizon is `None` (exported as `+Inf`). A series already past its threshold has
//!   all three at its newest point.
//! * The crossings are kept as timestamps, so the time left ([`Capacity::eta`]) counts down between
//!   fits without refitting.
//! * **Long view** ([`decimate`]): the long forecast is kept as at most [`LONG_POINTS`] blocks (mean
//!   point, lowest lower and highest upper bound of each), so its memory does not grow with the
//!   sampling rate.

use serde::Serialize;

use super::model::Forecast;

/// Most blocks kept of a long forecast (hourly over 7 days).
pub const LONG_POINTS: usize = 168;

/// Which way a threshold is crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Rising to or past the value (e.g. disk used ratio 0.9).
    Above,
    /// Falling to or past the value (e.g. free memory 0.1).
    Below,
}

/// A threshold for one series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Threshold {
    pub value: f64,
    pub direction: Direction,
}

impl Threshold {
    /// `v` is at or past the threshold.
    pub fn reached(&self, v: f64) -> bool {
        match self.direction {
            Direction::Above => v >= self.value,
            Direction::Below => v <= self.value,
        }
    }
}

impl Direction {
    /// `above` or `below` (config key and label value).
    pub fn name(self) -> &'static str {
        match self {
            Direction::Above => "above",
            Direction::Below => "below",
        }
    }
}

impl std::fmt::Display for Threshold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.direction.name(), self.value)
    }
}

/// A series pattern and its threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThresholdRule {
    /// A series id, with `*` matching any run of characters.
    pub pattern: String,
    pub threshold: Threshold,
}

/// `text` matches `pattern`, where `*` matches any run of characters (none included).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    if !text.ends_with(last) {
        return false;
    }
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// The threshold of `series`: the first rule that matches it.
pub fn threshold_for(rules: &[ThresholdRule], series: &str) -> Option<Threshold> {
    rules
        .iter()
        .find(|r| glob_match(&r.pattern, series))
        .map(|r| r.threshold)
}

/// Which crossing of [`Capacity`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Earliest,
    Likely,
    Latest,
}

impl Bound {
    pub const ALL: [Bound; 3] = [Bound::Earliest, Bound::Likely, Bound::Latest];

    /// The `bound` label value.
    pub fn name(self) -> &'static str {
        match self {
            Bound::Earliest => "earliest",
            Bound::Likely => "likely",
            Bound::Latest => "latest",
        }
    }
}

/// When a forecast crosses a series' threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Capacity {
    pub threshold: Threshold,
    /// The newest value the forecast was fitted on.
    pub value: f64,
    /// Unix seconds of that value (the forecast's origin).
    pub origin: i64,
    /// The newest value is already at or past the threshold.
    pub reached: bool,
    /// Unix seconds at which the near side of the band crosses (`None`: not within the horizon).
    pub earliest: Option<i64>,
    /// Unix seconds at which the point forecast crosses.
    pub likely: Option<i64>,
    /// Unix seconds at which the far side of the band crosses.
    pub latest: Option<i64>,
    /// Unix seconds of the forecast's last step: crossings after it are unknown.
    pub until: i64,
}

impl Capacity {
    /// The crossings of `threshold` by `fc` (full resolution), after the newest value `value` at
    /// `origin`.
    pub fn from_forecast(fc: &Forecast, threshold: Threshold, origin: i64, value: f64) -> Self {
        let until = fc.timestamps.last().copied().unwrap_or(origin);
        let reached = threshold.reached(value);
        let (near, far) = match threshold.direction {
            Direction::Above => (&fc.upper, &fc.lower),
            Direction::Below => (&fc.lower, &fc.upper),
        };
        let cross = |ys: &[f64]| -> Option<i64> {
            if reached {
                return Some(origin);
            }
            let (mut t0, mut y0) = (origin as f64, value);
            for (&t, &y) in fc.timestamps.iter().zip(ys) {
                if threshold.reached(y) {
                    // Linear between the last step short of it and this one.
                    let frac = if (y - y0).abs() > 0.0 {
                        ((threshold.value - y0) / (y - y0)).clamp(0.0, 1.0)
                    } else {
                        1.0
                    };
                    return Some((t0 + frac * (t as f64 - t0)).round() as i64);
                }
                (t0, y0) = (t as f64, y);
            }
            None
        };
        Capacity {
            threshold,
            value,
            origin,
            reached,
            earliest: cross(near),
            likely: cross(&fc.point),
            latest: cross(far),
            until,
        }
    }

    /// The crossing time of `bound`.
    pub fn at(&self, bound: Bound) -> Option<i64> {
        match bound {
            Bound::Earliest => self.earliest,
            Bound::Likely => self.likely,
            Bound::Latest => self.latest,
        }
    }

    /// Seconds from `now` until `bound` crosses (0 once passed; `None`: not within the horizon).
    pub fn eta(&self, bound: Bound, now: i64) -> Option<i64> {
        self.at(bound).map(|t| (t - now).max(0))
    }

    /// One line for people: "crosses above 0.9 in about 31 h (earliest 22 h, latest after 7 d)".
    pub fn describe(&self, now: i64) -> String {
        if self.reached {
            return format!("at or past {} now", self.threshold);
        }
        let beyond = format!("not within {}", fmt_eta((self.until - now).max(0)));
        let part = |b: Bound| self.eta(b, now).map_or(beyond.clone(), fmt_eta);
        match self.likely {
            Some(_) => format!(
                "crosses {} in about {} (earliest {}, latest {})",
                self.threshold,
                part(Bound::Likely),
                part(Bound::Earliest),
                self.eta(Bound::Latest, now).map_or(
                    format!("after {}", fmt_eta((self.until - now).max(0))),
                    fmt_eta
                ),
            ),
            None => match self.earliest {
                Some(_) => format!(
                    "{} unlikely within {} (earliest {})",
                    self.threshold,
                    fmt_eta((self.until - now).max(0)),
                    part(Bound::Earliest)
                ),
                None => format!("{} {beyond}", self.threshold),
            },
        }
    }
}

/// "45 min", "31 h", "6.5 d".
pub fn fmt_eta(secs: i64) -> String {
    let s = secs as f64;
    if s < 3600.0 {
        format!("{:.0} min", (s / 60.0).ceil())
    } else if s < 2.0 * 86_400.0 {
        format!("{:.0} h", s / 3600.0)
    } else {
        format!("{:.1} d", s / 86_400.0)
    }
}

/// `fc` in at most `max` blocks of consecutive steps: each block's mean point, lowest lower and
/// highest upper bound, at the block's last timestamp.
pub fn decimate(fc: &Forecast, max: usize) -> Forecast {
    let n = fc.len();
    let k = n.div_ceil(max.max(1)).max(1);
    let mut out = Forecast {
        timestamps: Vec::with_capacity(n / k + 1),
        point: Vec::with_capacity(n / k + 1),
        lower: Vec::with_capacity(n / k + 1),
        upper: Vec::with_capacity(n / k + 1),
        step: fc.step * k as i64,
        ..fc.clone_meta()
    };
    for start in (0..n).step_by(k) {
        let end = (start + k).min(n);
        let len = (end - start) as f64;
        out.timestamps.push(fc.timestamps[end - 1]);
        out.point
            .push(fc.point[start..end].iter().sum::<f64>() / len);
        out.lower.push(
            fc.lower[start..end]
                .iter()
                .copied()
                .fold(f64::INFINITY, f64::min),
        );
        out.upper.push(
            fc.upper[start..end]
                .iter()
                .copied()
                .fold(f64::NEG_INFINITY, f64::max),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::ModelKind;
    use std::time::Duration;

    fn fc(point: Vec<f64>, half: f64) -> Forecast {
        let n = point.len();
        Forecast {
            model: ModelKind::Theta,
            detail: String::new(),
            why: None,
            step: 60,
            level: 0.95,
            timestamps: (1..=n as i64).map(|i| i * 60).collect(),
            lower: point.iter().map(|p| p - half).collect(),
            upper: point.iter().map(|p| p + half).collect(),
            point,
            periods: Vec::new(),
            history: 100,
            fit_time: Duration::ZERO,
            note: None,
        }
    }

    #[test]
    fn globs_match_runs_of_characters() {
        assert!(glob_match("disk*", "disk_used{instance=\"a\"}"));
        assert!(glob_match("*used*", "disk_used{instance=\"a\"}"));
        assert!(glob_match("a*c*e", "abcde"));
        assert!(!glob_match("a*c*e", "abcd"));
        assert!(!glob_match("disk", "disk_used"));
        assert!(glob_match("disk", "disk"));
        assert!(!glob_match("ab*ba", "aba"));
    }

    #[test]
    fn crossings_interpolate_between_steps_and_band_sides_order_them() {
        // 0.1 per minute from 0.5 at t=0: 0.9 is reached at t = 240 s.
        let f = fc((1..=10).map(|i| 0.5 + 0.1 * i as f64).collect(), 0.05);
        let th = Threshold {
            value: 0.9,
            direction: Direction::Above,
        };
        let c = Capacity::from_forecast(&f, th, 0, 0.5);
        assert_eq!(c.likely, Some(240));
        assert_eq!(c.earliest, Some(210));
        assert_eq!(c.latest, Some(270));
        assert_eq!(c.eta(Bound::Likely, 100), Some(140));
        assert_eq!(c.eta(Bound::Likely, 1000), Some(0));
        let below = Threshold {
            value: 0.2,
            direction: Direction::Below,
        };
        let c = Capacity::from_forecast(&f, below, 0, 0.5);
        assert_eq!((c.earliest, c.likely, c.latest), (None, None, None));
        assert!(
            c.describe(0).contains("not within 10 min"),
            "{}",
            c.describe(0)
        );
        let c = Capacity::from_forecast(&f, th, 0, 0.95);
        assert!(c.reached);
        assert_eq!(c.likely, Some(0));
    }

    #[test]
    fn decimation_keeps_the_band_envelope() {
        let f = fc((0..1000).map(|i| (i % 7) as f64).collect(), 1.0);
        let d = decimate(&f, LONG_POINTS);
        assert!(d.len() <= LONG_POINTS);
        assert_eq!(d.timestamps.last(), f.timestamps.last());
        assert_eq!(d.step, 60 * 6);
        assert_eq!(d.upper.iter().copied().fold(f64::MIN, f64::max), 7.0);
        assert_eq!(d.lower.iter().copied().fold(f64::MAX, f64::min), -1.0);
    }
}
