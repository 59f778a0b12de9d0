//! Anomaly events and why a point was flagged.
//!
//! * [`Reason`]: a detector's explanation of its latest score (which signal went how far past
//!   what it usually does), from [`crate::detect::Detector::explain`].
//! * [`AnomalyEvent`]: consecutive flagged points of one series as one record (start, end, peak
//!   score, value at the peak, the forecast's expected range at the peak, the reason at the
//!   peak); for a multivariate group, consecutive flagged rows of the group as one record. [`AnomalyEvent::begin`] and [`AnomalyEvent::extend`] are the whole rule; the engine
//!   applies it to every scored point.
//! * [`EventFile`]: the events on disk, one JSON object a line (`events.jsonl`), appended as
//!   events close and reloaded on start. A line is written with one `write` on a file opened
//!   for appending, so a crash can only cut the last line short. A file with a line that does not
//!   parse (truncated, corrupt, another program's) is renamed aside (`<file>.corrupt-<unix
//!   seconds>`, never deleted) and a new file is started with the events that could be read; the
//!   report says so once. The file stays bounded: past twice `keep` lines it is rewritten
//!   atomically with the newest `keep` events.
//!
//! Written by hand: a JSON-lines log with these recovery rules is a few dozen lines on serde_json
//! and std; no crate does exactly this.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::atomic::{FileError, write_atomic};
use crate::domain::{Expectation, SeriesInfo};

/// Why a detector scored a point as it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// What moved, as a short machine name: `level`, `step`, `short_mean`, `spread`,
    /// `daily_residual`, `daily_spread`, `long_mean`, `level_shift` (pulse); `z`
    /// (windowed-gaussian); `path_length` (isolation-forest); `reconstruction` (lstm-ae).
    pub signal: String,
    /// How far past its usual range, in the signal's own unit (see `text`): for pulse the excess
    /// as a multiple of the envelope's width, for windowed-gaussian |z|, for isolation-forest the
    /// percentile of training windows with a longer path, for lstm-ae the error over its usual
    /// level.
    pub excess: f64,
    /// One line for people: "step 812 above its recent range 3.1–40 by 2.3× the range".
    pub text: String,
}

/// The forecast band at a point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Band {
    pub lower: f64,
    pub point: f64,
    pub upper: f64,
}

impl From<Expectation> for Band {
    fn from(e: Expectation) -> Self {
        Band {
            lower: e.lower,
            point: e.point,
            upper: e.upper,
        }
    }
}

/// Consecutive flagged points of one series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyEvent {
    /// Series id, display name, category and source (as in the series list).
    pub series: String,
    pub name: String,
    pub category: String,
    pub source: String,
    pub detector: String,
    /// Timestamps (Unix seconds, the data's own time) of the first and last flagged points.
    pub start: i64,
    pub end: i64,
    /// Flagged points in the event.
    pub points: u32,
    /// The highest-scoring point: its time, score and value.
    pub peak_timestamp: i64,
    pub peak_score: f64,
    pub peak_value: f64,
    /// The forecast's band at the peak, when a forecast covered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<Band>,
    /// The detector's reason at the peak.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// For a multivariate group's event: the group's instance. One event stands for the whole
    /// group; `series` and `name` are then the member with the largest error at the peak.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// For a multivariate group's event: the ids of the group's members (the event is each
    /// one's); empty for a one-series event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    /// Still running: the series' latest point is flagged.
    #[serde(default)]
    pub open: bool,
    /// Wall-clock Unix seconds when the event was last updated.
    pub recorded: i64,
}

/// The flagged point an event starts with or grows by.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Flagged {
    pub timestamp: i64,
    pub value: f64,
    pub score: f64,
}

impl AnomalyEvent {
    /// An event of one flagged point.
    pub fn begin(
        info: &SeriesInfo,
        detector: &str,
        p: Flagged,
        expected: Option<Band>,
        reason: Option<Reason>,
        now: i64,
    ) -> Self {
        AnomalyEvent {
            series: info.id.clone(),
            name: info.name.clone(),
            category: info.category.clone(),
            source: info.source.name().to_string(),
            detector: detector.to_string(),
            start: p.timestamp,
            end: p.timestamp,
            points: 1,
            peak_timestamp: p.timestamp,
            peak_score: p.score,
            peak_value: p.value,
            expected,
            reason,
            group: None,
            members: Vec::new(),
            open: true,
            recorded: now,
        }
    }

    /// Whether the event is series `id`'s: its own, or its group's.
    pub fn involves(&self, id: &str) -> bool {
        self.series == id || self.members.iter().any(|m| m == id)
    }

    /// Adds the next flagged point; a higher score moves the peak (and its band and reason,
    /// computed only then: `peak` is called when the point is the new peak).
    pub fn extend(
        &mut self,
        p: Flagged,
        now: i64,
        peak: impl FnOnce() -> (Option<Band>, Option<Reason>),
    ) {
        self.end = p.timestamp;
        self.points = self.points.saturating_add(1);
        self.recorded = now;
        if p.score > self.peak_score {
            let (expected, reason) = peak();
            self.peak_timestamp = p.timestamp;
            self.peak_score = p.score;
            self.peak_value = p.value;
            self.expected = expected;
            self.reason = reason;
        }
    }

    /// Whether the event touches `[since, ∞)` in data time.
    pub fn ends_after(&self, since: i64) -> bool {
        self.end >= since
    }
}

/// The newest events, oldest first, at most `keep`; an event already held (same series, start
/// and end: a looped replay meeting the same anomaly again) is not added twice.
#[derive(Debug, Clone, Default)]
pub struct EventLog {
    events: VecDeque<Arc<AnomalyEvent>>,
    keep: usize,
    held: std::collections::HashSet<(String, i64, i64)>,
}

fn key(e: &AnomalyEvent) -> (String, i64, i64) {
    (e.series.clone(), e.start, e.end)
}

impl EventLog {
    pub fn new(keep: usize) -> Self {
        EventLog {
            events: VecDeque::new(),
            keep: keep.max(1),
            held: std::collections::HashSet::new(),
        }
    }

    /// Adds `e`; `false` when the log already holds that event.
    pub fn push(&mut self, e: Arc<AnomalyEvent>) -> bool {
        if !self.held.insert(key(&e)) {
            return false;
        }
        if self.events.len() == self.keep
            && let Some(old) = self.events.pop_front()
        {
            self.held.remove(&key(&old));
        }
        self.events.push_back(e);
        true
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Arc<AnomalyEvent>> {
        self.events.iter()
    }
}

/// Why the events file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum EventFileError {
    #[error(transparent)]
    Io(#[from] FileError),
}

/// What [`EventFile::open`] found.
#[derive(Debug)]
pub struct Opened {
    pub file: EventFile,
    /// The newest `keep` events read back, oldest first (shared with the file's own list).
    pub events: Vec<Arc<AnomalyEvent>>,
    /// The one report about a damaged file: where it went and how many events were kept.
    pub warning: Option<String>,
}

/// The events file (see the module documentation).
#[derive(Debug)]
pub struct EventFile {
    path: PathBuf,
    keep: usize,
    /// Lines in the file now.
    lines: usize,
    /// The newest `keep` events, for compaction (shared with the engine's log, not copied).
    recent: VecDeque<Arc<AnomalyEvent>>,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> FileError + '_ {
    move |error| FileError {
        path: path.to_path_buf(),
        error,
    }
}

fn lines_of(events: &VecDeque<Arc<AnomalyEvent>>) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events {
        if let Ok(mut l) = serde_json::to_vec(e.as_ref()) {
            l.push(b'\n');
            out.extend(l);
        }
    }
    out
}

impl EventFile {
    /// Opens (or creates on the first append) the events file at `path`, keeping `keep` events.
    pub fn open(path: &Path, keep: usize) -> Result<Opened, EventFileError> {
        let keep = keep.max(1);
        let text = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err(path)(e).into()),
        };
        let mut recent = VecDeque::new();
        let mut bad: Option<(usize, String)> = None;
        let mut lines = 0;
        for (i, line) in text.split(|&b| b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            lines += 1;
            match serde_json::from_slice::<AnomalyEvent>(line) {
                Ok(e) => {
                    if recent.len() == keep {
                        recent.pop_front();
                    }
                    recent.push_back(Arc::new(e));
                }
                Err(e) => {
                    if bad.is_none() {
                        bad = Some((i + 1, e.to_string()));
                    }
                }
            }
        }
        let mut warning = None;
        if let Some((line, why)) = bad {
            let aside = PathBuf::from(format!(
                "{}.corrupt-{}",
                path.display(),
                crate::domain::unix_now()
            ));
            std::fs::rename(path, &aside).map_err(io_err(path))?;
            write_atomic(path, &lines_of(&recent))?;
            lines = recent.len();
            warning = Some(format!(
                "{}: line {line} is not an anomaly event ({why}); the file was kept aside as {} \
                 and a new one started with the {} events that could be read",
                path.display(),
                aside.display(),
                recent.len()
            ));
        }
        let events = recent.iter().cloned().collect();
        Ok(Opened {
            file: EventFile {
                path: path.to_path_buf(),
                keep,
                lines,
                recent,
            },
            events,
            warning,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends closed events (one `write` each line batch), compacting past `2 × keep` lines.
    pub fn append(&mut self, events: &[Arc<AnomalyEvent>]) -> Result<(), FileError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        for e in events {
            if let Ok(mut l) = serde_json::to_vec(e.as_ref()) {
                l.push(b'\n');
                buf.extend(l);
            }
            if self.recent.len() == self.keep {
                self.recent.pop_front();
            }
            self.recent.push_back(Arc::clone(e));
        }
        self.lines += events.len();
        if self.lines > 2 * self.keep {
            write_atomic(&self.path, &lines_of(&self.recent))?;
            self.lines = self.recent.len();
            return Ok(());
        }
        let io = io_err(&self.path);
        if let Some(dir) = self.path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(&io)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(&io)?;
        f.write_all(&buf).map_err(&io)?;
        f.sync_data().map_err(&io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SourceKind;

    fn info() -> SeriesInfo {
        SeriesInfo {
            id: "a/b.csv".into(),
            name: "b".into(),
            category: "a".into(),
            source: SourceKind::Nab,
            instance: None,
        }
    }

    fn ev(start: i64) -> AnomalyEvent {
        AnomalyEvent::begin(
            &info(),
            "pulse",
            Flagged {
                timestamp: start,
                value: 5.0,
                score: 0.7,
            },
            None,
            None,
            1,
        )
    }

    #[test]
    fn the_peak_moves_only_to_a_higher_score() {
        let mut e = ev(100);
        let mut asked = 0;
        e.extend(
            Flagged {
                timestamp: 200,
                value: 9.0,
                score: 0.9,
            },
            2,
            || {
                asked += 1;
                (
                    Some(Band {
                        lower: 1.0,
                        point: 2.0,
                        upper: 3.0,
                    }),
                    None,
                )
            },
        );
        e.extend(
            Flagged {
                timestamp: 300,
                value: 7.0,
                score: 0.8,
            },
            3,
            || {
                asked += 1;
                (None, None)
            },
        );
        assert_eq!(asked, 1);
        assert_eq!((e.start, e.end, e.points), (100, 300, 3));
        assert_eq!((e.peak_timestamp, e.peak_value), (200, 9.0));
        assert_eq!(e.expected.map(|b| b.upper), Some(3.0));
        assert_eq!(e.recorded, 3);
    }

    #[test]
    fn the_log_is_bounded_and_holds_an_event_once() {
        let mut log = EventLog::new(2);
        assert!(log.push(Arc::new(ev(1))));
        assert!(!log.push(Arc::new(ev(1))), "the same event again");
        assert!(log.push(Arc::new(ev(2))));
        assert!(log.push(Arc::new(ev(3))));
        assert_eq!(log.iter().map(|e| e.start).collect::<Vec<_>>(), [2, 3]);
        // Once dropped from the log, an event can come back.
        assert!(log.push(Arc::new(ev(1))));
        assert_eq!(log.len(), 2);
    }

    #[test]
    fn events_survive_a_reopen_and_the_file_stays_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state/events.jsonl");
        let mut f = EventFile::open(&path, 3).expect("open").file;
        for i in 0..5 {
            f.append(&[Arc::new(ev(i))]).expect("append");
        }
        let o = EventFile::open(&path, 3).expect("reopen");
        assert!(o.warning.is_none());
        assert_eq!(
            o.events.iter().map(|e| e.start).collect::<Vec<_>>(),
            [2, 3, 4]
        );
        // Past 2 × keep lines the file is compacted to the newest `keep`.
        let mut f = o.file;
        f.append(&[Arc::new(ev(5)), Arc::new(ev(6))])
            .expect("append");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.contains("\"start\":6"));
    }

    #[test]
    fn a_truncated_file_is_kept_aside_and_a_new_one_started() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.jsonl");
        let mut f = EventFile::open(&path, 10).expect("open").file;
        f.append(&[Arc::new(ev(1)), Arc::new(ev(2))])
            .expect("append");
        let mut text = std::fs::read_to_string(&path).expect("read");
        let cut = text.len() - 20;
        text.truncate(cut);
        std::fs::write(&path, &text).expect("truncate");
        let o = EventFile::open(&path, 10).expect("reopen");
        let w = o.warning.expect("a warning");
        assert!(w.contains("line 2") && w.contains("kept aside"), "{w}");
        assert_eq!(o.events.len(), 1);
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .expect("ls")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1, "the damaged file is renamed, not deleted");
        assert_eq!(
            std::fs::read_to_string(aside[0].path()).expect("aside"),
            text
        );
        // The new file holds the readable event and opens cleanly.
        let again = EventFile::open(&path, 10).expect("third open");
        assert!(again.warning.is_none());
        assert_eq!(again.events.len(), 1);
    }
}
