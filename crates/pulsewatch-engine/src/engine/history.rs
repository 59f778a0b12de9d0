//! A series' scored history: bounded, compact, and shared between the engine and its snapshots.
//!
//! Points live in chunks of [`CHUNK`] as columns: timestamps as `i32` offsets from the chunk's
//! first (widened to `i64` only for a chunk whose offsets do not fit), values as `f64`, scores as
//! `f32`, flags as bits: 17 bytes a point instead of 32. Chunks are `Arc`s, so a snapshot's view
//! of a series clones a list of pointers, not the points: only the newest chunk is copied when
//! the engine appends to it while a snapshot still holds it (at most `CHUNK` points). Publishing
//! a series therefore costs the same whatever `[source] history` is. Written by hand: no crate
//! does a shared, chunked ring of columns.

use std::collections::VecDeque;
use std::sync::Arc;

use pulsewatch_core::domain::{Point, ScoredPoint};

/// Points per chunk.
pub const CHUNK: usize = 128;

const ANOMALY: u8 = 1;
const INJECTED: u8 = 2;

#[derive(Debug, Clone, PartialEq)]
enum Times {
    /// Offsets from `base`.
    Narrow(Vec<i32>),
    Wide(Vec<i64>),
}

#[derive(Debug, Clone, PartialEq)]
struct Chunk {
    base: i64,
    times: Times,
    values: Vec<f64>,
    scores: Vec<f32>,
    flags: Vec<u8>,
}

impl Chunk {
    fn new(base: i64) -> Self {
        Chunk {
            base,
            times: Times::Narrow(Vec::with_capacity(CHUNK)),
            values: Vec::with_capacity(CHUNK),
            scores: Vec::with_capacity(CHUNK),
            flags: Vec::with_capacity(CHUNK),
        }
    }

    fn len(&self) -> usize {
        self.values.len()
    }

    fn push(&mut self, p: &ScoredPoint) {
        let narrow = p
            .timestamp
            .checked_sub(self.base)
            .and_then(|d| i32::try_from(d).ok());
        match (&mut self.times, narrow) {
            (Times::Narrow(v), Some(d)) => v.push(d),
            (Times::Narrow(v), None) => {
                let mut wide: Vec<i64> = v.iter().map(|&d| self.base + i64::from(d)).collect();
                wide.push(p.timestamp);
                self.times = Times::Wide(wide);
            }
            (Times::Wide(v), _) => v.push(p.timestamp),
        }
        self.values.push(p.value);
        self.scores.push(p.score as f32);
        self.flags
            .push((u8::from(p.anomaly) * ANOMALY) | (u8::from(p.injected) * INJECTED));
    }

    fn get(&self, i: usize) -> ScoredPoint {
        let timestamp = match &self.times {
            Times::Narrow(v) => self.base + i64::from(v[i]),
            Times::Wide(v) => v[i],
        };
        // Scores are kept as f32; six decimals is what they carry.
        let score = (f64::from(self.scores[i]) * 1e6).round() / 1e6;
        ScoredPoint {
            timestamp,
            value: self.values[i],
            score,
            anomaly: self.flags[i] & ANOMALY != 0,
            injected: self.flags[i] & INJECTED != 0,
        }
    }

    fn heap_bytes(&self) -> usize {
        let t = match &self.times {
            Times::Narrow(v) => v.capacity() * 4,
            Times::Wide(v) => v.capacity() * 8,
        };
        t + self.values.capacity() * 8 + self.scores.capacity() * 4 + self.flags.capacity()
    }
}

/// The newest `cap` scored points of a series, oldest first; see the module doc.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    chunks: VecDeque<Arc<Chunk>>,
    /// Points of the first chunk that fell out of the window.
    skip: usize,
    len: usize,
    cap: usize,
}

impl History {
    /// An empty history keeping at most `cap` points (at least one).
    pub fn new(cap: usize) -> Self {
        History {
            chunks: VecDeque::new(),
            skip: 0,
            len: 0,
            cap: cap.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends a point, dropping the oldest beyond the cap.
    pub fn push(&mut self, p: ScoredPoint) {
        let full = self.chunks.back().is_none_or(|c| c.len() == CHUNK);
        if full {
            self.chunks.push_back(Arc::new(Chunk::new(p.timestamp)));
        }
        if let Some(last) = self.chunks.back_mut() {
            Arc::make_mut(last).push(&p);
        }
        self.len += 1;
        if self.len > self.cap {
            self.len -= 1;
            self.skip += 1;
            if self.skip == CHUNK {
                self.chunks.pop_front();
                self.skip = 0;
            }
        }
    }

    /// The `i`-th kept point (0: the oldest).
    pub fn get(&self, i: usize) -> Option<ScoredPoint> {
        (i < self.len).then(|| self.at(i))
    }

    /// The `i`-th kept point, `i < len` (every chunk but the last is full, so this is direct).
    fn at(&self, i: usize) -> ScoredPoint {
        let at = self.skip + i;
        self.chunks[at / CHUNK].get(at % CHUNK)
    }

    pub fn last(&self) -> Option<ScoredPoint> {
        self.len.checked_sub(1).and_then(|i| self.get(i))
    }

    /// Every kept point, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = ScoredPoint> + ExactSizeIterator + '_ {
        (0..self.len).map(|i| self.at(i))
    }

    /// The newest `n` points (or all), oldest first.
    pub fn tail(&self, n: usize) -> Vec<ScoredPoint> {
        let from = self.len.saturating_sub(n);
        (from..self.len).map(|i| self.at(i)).collect()
    }

    /// Every kept point, oldest first.
    pub fn to_vec(&self) -> Vec<ScoredPoint> {
        self.tail(self.len)
    }

    /// The kept points as plain points (for retraining, forecasting and analysis).
    pub fn points(&self) -> Vec<Point> {
        self.iter().map(|p| p.point()).collect()
    }

    /// Heap bytes of the chunks (shared chunks counted in full).
    pub fn heap_bytes(&self) -> usize {
        self.chunks.iter().map(|c| c.heap_bytes()).sum::<usize>()
            + self.chunks.capacity() * std::mem::size_of::<Arc<Chunk>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(t: i64) -> ScoredPoint {
        ScoredPoint {
            timestamp: t,
            value: t as f64 * 0.5,
            score: (t % 100) as f64 / 100.0,
            anomaly: t % 7 == 0,
            injected: t % 11 == 0,
        }
    }

    #[test]
    fn keeps_the_newest_cap_points_in_order() {
        let mut h = History::new(300);
        for t in 0..1000 {
            h.push(sp(t * 15));
        }
        assert_eq!(h.len(), 300);
        let v = h.to_vec();
        assert_eq!(v.len(), 300);
        assert_eq!(v[0], sp(700 * 15));
        assert_eq!(h.last(), Some(sp(999 * 15)));
        assert_eq!(h.tail(3), vec![sp(997 * 15), sp(998 * 15), sp(999 * 15)]);
        assert_eq!(h.iter().next_back(), Some(sp(999 * 15)));
        assert!(h.chunks.len() <= 300 / CHUNK + 2);
        // 17 bytes a point (plus at most one partly filled chunk's capacity).
        assert!(
            h.heap_bytes() <= (300 + 2 * CHUNK) * 17 + 1024,
            "{}",
            h.heap_bytes()
        );
    }

    #[test]
    fn a_snapshot_shares_chunks_and_sees_no_later_points() {
        let mut h = History::new(1000);
        for t in 0..500 {
            h.push(sp(t));
        }
        let view = h.clone();
        h.push(sp(500));
        assert_eq!(view.len(), 500);
        assert_eq!(view.last(), Some(sp(499)));
        assert_eq!(h.last(), Some(sp(500)));
        // Sealed chunks are the same allocations.
        assert!(Arc::ptr_eq(&view.chunks[0], &h.chunks[0]));
    }

    #[test]
    fn timestamps_far_apart_are_kept_exactly() {
        let mut h = History::new(10);
        for t in [0, i64::from(i32::MAX) + 5, -3, 1_400_000_000] {
            h.push(sp(t));
        }
        let ts: Vec<i64> = h.iter().map(|p| p.timestamp).collect();
        assert_eq!(ts, vec![0, i64::from(i32::MAX) + 5, -3, 1_400_000_000]);
    }
}
