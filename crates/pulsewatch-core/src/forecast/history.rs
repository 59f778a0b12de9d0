//! What a forecast is fitted on: a series' history on a regular grid of at most 288 buckets a
//! day, bounded in buckets, whatever the sampling interval.
//!
//! The bucket width is the series' sampling interval (the median of its first
//! [`INTERVAL_SAMPLES`] intervals) or 5 minutes, whichever is longer; a bucket holds the mean of
//! the points that fell in it (as f32: forecasts do not need more digits). So a 5-minute or
//! coarser series is kept point for point, and a 15-second series as 5-minute means: its fits
//! and forecasts have 288 steps a day, not 5,760, and its state stops growing at
//! [`MAX_BUCKETS`] (14 days of 5-minute buckets, about 16 KB). Written by hand: it is a few
//! dozen lines over a `VecDeque`.

use std::collections::VecDeque;

use crate::domain::Point;

/// Buckets kept (14 days at 5 minutes: two weekly seasons for MSTL).
pub const MAX_BUCKETS: usize = 4032;
/// Shortest bucket, in seconds (288 a day).
pub const MIN_BUCKET_SECONDS: i64 = 300;
/// Intervals looked at to find the sampling interval.
pub const INTERVAL_SAMPLES: usize = 16;
/// Raw points kept while the timestamps do not advance.
const EARLY_CAP: usize = 1024;

/// A series' bucketed history; see the module doc.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ForecastHistory {
    /// Points seen before the bucket width is known.
    early: Vec<Point>,
    /// Bucket width in seconds (0 until known).
    width: i64,
    /// Start of the first bucket kept (buckets are aligned to the first point's timestamp).
    start: i64,
    /// Where the bucket grid is anchored: the first point's timestamp.
    origin: i64,
    /// Bucket means (NaN: no point fell in the bucket).
    values: VecDeque<f32>,
    /// Sum and count of the newest bucket, which is still filling.
    open_sum: f64,
    open_n: u32,
    /// Points accepted in all (for "new points since the last fit").
    points: u64,
}

impl ForecastHistory {
    pub fn new() -> Self {
        Self::default()
    }

    /// The history of `points` (in time order).
    pub fn from_points(points: &[Point]) -> Self {
        let mut h = Self::new();
        h.extend(points);
        h
    }

    /// Adds points (in time order; one older than the newest bucket is dropped).
    pub fn extend(&mut self, points: &[Point]) {
        for &p in points {
            self.push(p);
        }
    }

    pub fn push(&mut self, p: Point) {
        if !p.value.is_finite() {
            return;
        }
        self.points += 1;
        if self.width == 0 {
            self.early.push(p);
            if self.early.len() > INTERVAL_SAMPLES {
                self.settle();
            }
            // Timestamps that never advance: keep a bounded window of the raw points (the fit
            // then says what is wrong with them).
            if self.width == 0 && self.early.len() > EARLY_CAP {
                self.early.drain(..EARLY_CAP / 2);
            }
            return;
        }
        self.add(p);
    }

    /// Decides the bucket width from the early points and buckets them.
    fn settle(&mut self) {
        let mut deltas: Vec<i64> = self
            .early
            .windows(2)
            .map(|w| w[1].timestamp - w[0].timestamp)
            .filter(|&d| d > 0)
            .collect();
        if deltas.is_empty() {
            return; // no interval yet
        }
        deltas.sort_unstable();
        let interval = deltas[deltas.len() / 2];
        self.width = interval.max(MIN_BUCKET_SECONDS);
        self.origin = self.early.first().map_or(0, |p| p.timestamp);
        let early = std::mem::take(&mut self.early);
        for p in early {
            self.add(p);
        }
    }

    fn add(&mut self, p: Point) {
        let w = self.width;
        let bucket = self.origin + (p.timestamp - self.origin).div_euclid(w) * w;
        if self.values.is_empty() && self.open_n == 0 {
            self.start = bucket;
        }
        let open = self.start + self.values.len() as i64 * w;
        if bucket < open {
            return; // older than the bucket being filled
        }
        if bucket > open {
            self.close();
            // Empty buckets for a gap (bounded by the cap).
            let gap = ((bucket - open) / w - 1).max(0) as usize;
            for _ in 0..gap.min(MAX_BUCKETS) {
                self.values.push_back(f32::NAN);
            }
            if gap > MAX_BUCKETS {
                self.start += (gap - MAX_BUCKETS) as i64 * w;
            }
            self.trim();
        }
        self.open_sum += p.value;
        self.open_n += 1;
    }

    /// Closes the open bucket (makes it a kept value).
    fn close(&mut self) {
        let v = if self.open_n > 0 {
            (self.open_sum / f64::from(self.open_n)) as f32
        } else {
            f32::NAN
        };
        self.values.push_back(v);
        self.open_sum = 0.0;
        self.open_n = 0;
        self.trim();
    }

    fn trim(&mut self) {
        while self.values.len() >= MAX_BUCKETS {
            self.values.pop_front();
            self.start += self.width;
        }
    }

    /// Points accepted since the history began.
    pub fn points(&self) -> u64 {
        self.points
    }

    /// Buckets with a value (the open one included).
    pub fn len(&self) -> usize {
        if self.width == 0 {
            return self.early.len();
        }
        self.values.iter().filter(|v| v.is_finite()).count() + usize::from(self.open_n > 0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bucket width in seconds (`None` until the sampling interval is known).
    pub fn bucket_seconds(&self) -> Option<i64> {
        (self.width > 0).then_some(self.width)
    }

    /// Newest timestamp held (the open bucket's start, or the newest early point).
    pub fn newest(&self) -> Option<i64> {
        if self.width == 0 {
            return self.early.last().map(|p| p.timestamp);
        }
        let n = self.values.len() as i64 + i64::from(self.open_n > 0) - 1;
        (n >= 0).then(|| self.start + n * self.width)
    }

    /// The history as (timestamps, values) for a fit: bucket starts and means, gaps left out
    /// (the fit regularises them), the open bucket included.
    pub fn series(&self) -> (Vec<i64>, Vec<f64>) {
        if self.width == 0 {
            return self.early.iter().map(|p| (p.timestamp, p.value)).unzip();
        }
        let mut ts = Vec::with_capacity(self.values.len() + 1);
        let mut vs = Vec::with_capacity(self.values.len() + 1);
        for (i, v) in self.values.iter().enumerate() {
            if v.is_finite() {
                ts.push(self.start + i as i64 * self.width);
                vs.push(f64::from(*v));
            }
        }
        if self.open_n > 0 {
            ts.push(self.start + self.values.len() as i64 * self.width);
            vs.push(self.open_sum / f64::from(self.open_n));
        }
        (ts, vs)
    }

    /// Heap bytes held (for the scale figures).
    pub fn heap_bytes(&self) -> usize {
        self.early.capacity() * std::mem::size_of::<Point>()
            + self.values.capacity() * std::mem::size_of::<f32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(step: i64, n: usize, f: impl Fn(i64) -> f64) -> Vec<Point> {
        (0..n as i64)
            .map(|i| Point {
                timestamp: 1_000_000 + i * step,
                value: f(i),
            })
            .collect()
    }

    #[test]
    fn five_minute_series_are_kept_point_for_point() {
        let p = pts(300, 500, |i| i as f64);
        let h = ForecastHistory::from_points(&p);
        let (ts, vs) = h.series();
        assert_eq!(h.bucket_seconds(), Some(300));
        assert_eq!(ts, p.iter().map(|p| p.timestamp).collect::<Vec<_>>());
        assert_eq!(vs, p.iter().map(|p| p.value).collect::<Vec<_>>());
    }

    #[test]
    fn fast_series_become_five_minute_means_and_stop_growing() {
        // 15 s for 20 days: 115,200 points, 5,760 buckets' worth, kept as MAX_BUCKETS.
        let p = pts(15, 20 * 5760, |i| (i / 20) as f64 + (i % 20) as f64 / 100.0);
        let h = ForecastHistory::from_points(&p);
        assert_eq!(h.bucket_seconds(), Some(300));
        let (ts, vs) = h.series();
        assert!(ts.len() <= MAX_BUCKETS, "{}", ts.len());
        assert!(ts.windows(2).all(|w| w[1] - w[0] == 300));
        // Each bucket is the mean of its 20 points: k + 0.095.
        let last_full = vs[vs.len() - 2];
        assert!(
            (last_full - last_full.floor() - 0.095).abs() < 1e-3,
            "{last_full}"
        );
        assert!(h.heap_bytes() < 20 * 1024, "{} bytes", h.heap_bytes());
        assert_eq!(h.points(), p.len() as u64);
    }

    #[test]
    fn gaps_are_left_out_and_old_points_dropped() {
        let mut p = pts(300, 50, |i| i as f64);
        p.extend(pts(300, 50, |i| 100.0 + i as f64).iter().map(|q| Point {
            timestamp: q.timestamp + 86_400,
            value: q.value,
        }));
        let mut h = ForecastHistory::from_points(&p);
        let (ts, _) = h.series();
        assert_eq!(ts.len(), 100);
        h.push(Point {
            timestamp: 0,
            value: 5.0,
        });
        assert_eq!(
            h.series().0.len(),
            100,
            "a point older than the history is dropped"
        );
    }
}
