//! Reader for a corpus folder laid out like the Numenta Anomaly Benchmark (NAB v1.1):
//!
//! ```text
//! <root>/data/<category>/<file>.csv        timestamp,value   (58 files upstream)
//! <root>/labels/combined_windows.json      {"<category>/<file>.csv": [[start, end], ...]}
//! <root>/config/profiles.json              cost matrices of the scoring profiles
//! <root>/config/thresholds.json            per-detector, per-profile thresholds
//! ```
//!
//! Quirks of the real corpus that this reader handles: CRLF line endings, no final newline,
//! duplicated and backwards timestamps (rows are kept in file order; NAB scores by row index).
//! Every malformed input gives one [`IngestError`] naming the file and the line (or JSON key).

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

pub mod demo;

/// The default timestamp format of NAB files: `YYYY-MM-DD HH:MM:SS`, naive, read as UTC.
pub const TIMESTAMP_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// One clear error about a corpus file.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// (The I/O error is part of the message, not a separate cause, so that it prints once.)
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}:{line}: {msg}", path.display())]
    Line {
        path: PathBuf,
        line: u64,
        msg: String,
    },
    #[error("{}: key {key:?}: {msg}", path.display())]
    Key {
        path: PathBuf,
        key: String,
        msg: String,
    },
    #[error("{}: {msg}", path.display())]
    File { path: PathBuf, msg: String },
}

impl From<crate::atomic::FileError> for IngestError {
    fn from(e: crate::atomic::FileError) -> Self {
        IngestError::Io {
            path: e.path,
            error: e.error,
        }
    }
}

impl IngestError {
    fn line(path: &Path, line: u64, msg: impl Into<String>) -> Self {
        IngestError::Line {
            path: path.to_path_buf(),
            line,
            msg: msg.into(),
        }
    }
    fn key(path: &Path, key: &str, msg: impl Into<String>) -> Self {
        IngestError::Key {
            path: path.to_path_buf(),
            key: key.to_string(),
            msg: msg.into(),
        }
    }
    fn file(path: &Path, msg: impl Into<String>) -> Self {
        IngestError::File {
            path: path.to_path_buf(),
            msg: msg.into(),
        }
    }
    fn io(path: &Path, error: std::io::Error) -> Self {
        IngestError::Io {
            path: path.to_path_buf(),
            error,
        }
    }
}

/// One time series: rows in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// `<category>/<file>.csv`, the key NAB's label files use.
    pub key: String,
    pub category: String,
    /// File stem, e.g. `nyc_taxi`.
    pub name: String,
    /// Unix seconds (NAB timestamps are naive; we read them as UTC).
    pub timestamps: Vec<i64>,
    pub values: Vec<f64>,
}

impl Series {
    pub fn len(&self) -> usize {
        self.values.len()
    }
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The rows as points, in file order.
    pub fn points(&self) -> Vec<crate::domain::Point> {
        self.timestamps
            .iter()
            .zip(&self.values)
            .map(|(&timestamp, &value)| crate::domain::Point { timestamp, value })
            .collect()
    }
}

/// A labelled anomaly window, both ends inclusive, resolved to row indices of its data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: i64,
    pub end: i64,
    /// First row whose timestamp equals `start`.
    pub first_row: usize,
    /// First row whose timestamp equals `end`.
    pub last_row: usize,
}

/// A scoring profile's cost matrix (`config/profiles.json`).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct CostMatrix {
    #[serde(rename = "tpWeight")]
    pub tp: f64,
    #[serde(rename = "fpWeight")]
    pub fp: f64,
    #[serde(rename = "fnWeight")]
    pub fn_: f64,
    #[serde(rename = "tnWeight")]
    pub tn: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: String,
    pub costs: CostMatrix,
}

/// Short display names of the three NAB profiles, in NAB's canonical order.
pub const PROFILE_ORDER: [&str; 3] = ["standard", "reward_low_FP_rate", "reward_low_FN_rate"];

/// A detector's threshold and raw score for one profile (`config/thresholds.json`).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct ThresholdEntry {
    pub threshold: f64,
    pub score: f64,
}

/// detector → profile → entry.
pub type Thresholds = BTreeMap<String, BTreeMap<String, ThresholdEntry>>;

/// A loaded corpus: every series with its label windows.
#[derive(Debug, Clone)]
pub struct Corpus {
    pub root: PathBuf,
    pub series: Vec<Series>,
    /// Windows per series, same order as `series`.
    pub windows: Vec<Vec<Window>>,
}

impl Corpus {
    /// Loads `<root>/data/**.csv` and `<root>/labels/combined_windows.json`. Every data file
    /// must have a labels key and every labels key a data file.
    pub fn load(root: &Path) -> Result<Corpus, IngestError> {
        let labels_path = root.join("labels").join("combined_windows.json");
        Self::load_with_labels(root, &labels_path, false)
    }

    /// Loads only the series that another windows file names (e.g.
    /// `labels/combined_windows_tiny.json`), for quick runs.
    pub fn load_subset(root: &Path, labels_path: &Path) -> Result<Corpus, IngestError> {
        Self::load_with_labels(root, labels_path, true)
    }

    fn load_with_labels(
        root: &Path,
        labels_path: &Path,
        subset: bool,
    ) -> Result<Corpus, IngestError> {
        let data_dir = root.join("data");
        let labels = read_windows_file(labels_path)?;
        let files = list_data_files(&data_dir)?;
        for (key, path) in &files {
            if !subset && !labels.contains_key(key) {
                return Err(IngestError::file(
                    path,
                    format!("data file has no key {key:?} in {}", labels_path.display()),
                ));
            }
        }
        let known: BTreeMap<&str, &PathBuf> = files.iter().map(|(k, p)| (k.as_str(), p)).collect();
        let mut series = Vec::with_capacity(labels.len());
        let mut windows = Vec::with_capacity(labels.len());
        for (key, raw) in &labels {
            let Some(path) = known.get(key.as_str()) else {
                return Err(IngestError::key(
                    labels_path,
                    key,
                    format!("no data file {}", data_dir.join(key).display()),
                ));
            };
            let s = read_series(path, key)?;
            let w = resolve_windows(&s, raw, labels_path, key)?;
            series.push(s);
            windows.push(w);
        }
        Ok(Corpus {
            root: root.to_path_buf(),
            series,
            windows,
        })
    }

    pub fn total_rows(&self) -> usize {
        self.series.iter().map(Series::len).sum()
    }

    pub fn total_windows(&self) -> usize {
        self.windows.iter().map(Vec::len).sum()
    }

    pub fn profiles(&self) -> Result<Vec<Profile>, IngestError> {
        read_profiles(&self.root.join("config").join("profiles.json"))
    }

    pub fn thresholds(&self) -> Result<Thresholds, IngestError> {
        read_thresholds(&self.root.join("config").join("thresholds.json"))
    }
}

/// Lists `<data_dir>/<category>/*.csv` as `(key, path)` sorted by key.
fn list_data_files(data_dir: &Path) -> Result<Vec<(String, PathBuf)>, IngestError> {
    let mut out = Vec::new();
    let rd = fs::read_dir(data_dir).map_err(|e| IngestError::io(data_dir, e))?;
    for cat in rd {
        let cat = cat.map_err(|e| IngestError::io(data_dir, e))?;
        let cat_path = cat.path();
        if !cat_path.is_dir() {
            continue;
        }
        let cat_name = cat.file_name().to_string_lossy().into_owned();
        let files = fs::read_dir(&cat_path).map_err(|e| IngestError::io(&cat_path, e))?;
        for f in files {
            let f = f.map_err(|e| IngestError::io(&cat_path, e))?;
            let name = f.file_name().to_string_lossy().into_owned();
            if name.ends_with(".csv") {
                out.push((format!("{cat_name}/{name}"), f.path()));
            }
        }
    }
    if out.is_empty() {
        return Err(IngestError::file(
            data_dir,
            "no <category>/<file>.csv data files",
        ));
    }
    out.sort();
    Ok(out)
}

/// Reads one NAB data file. `key` is `<category>/<file>.csv`.
pub fn read_series(path: &Path, key: &str) -> Result<Series, IngestError> {
    let bytes = fs::read(path).map_err(|e| IngestError::io(path, e))?;
    let (timestamps, values) = parse_series_csv(&bytes, path)?;
    let (category, file) = key.split_once('/').unwrap_or(("", key));
    Ok(Series {
        key: key.to_string(),
        category: category.to_string(),
        name: file.trim_end_matches(".csv").to_string(),
        timestamps,
        values,
    })
}

/// Parses `timestamp,value` CSV bytes (header required). `path` only names errors.
pub fn parse_series_csv(bytes: &[u8], path: &Path) -> Result<(Vec<i64>, Vec<f64>), IngestError> {
    if bytes.is_empty() {
        return Err(IngestError::line(
            path,
            1,
            "empty file: expected header \"timestamp,value\"",
        ));
    }
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Err(IngestError::line(
            path,
            1,
            "file starts with a UTF-8 byte-order mark; save it without BOM",
        ));
    }
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut rec = csv::ByteRecord::new();
    let mut timestamps = Vec::with_capacity(bytes.len() / 28);
    let mut values = Vec::with_capacity(bytes.len() / 28);
    let mut header_seen = false;
    let mut lines = LineCounter::default();
    loop {
        let hint = rdr.position().byte() as usize;
        match rdr.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let byte = e.position().map_or(hint, |p| p.byte() as usize);
                let line = lines.line_at(bytes, byte);
                return Err(IngestError::line(path, line, format!("malformed CSV: {e}")));
            }
        }
        let line = lines.line_at(bytes, rec.position().map_or(hint, |p| p.byte() as usize));
        if !header_seen {
            header_seen = true;
            let got: Vec<String> = rec
                .iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect();
            if got != ["timestamp", "value"] {
                return Err(IngestError::line(
                    path,
                    line,
                    format!(
                        "expected header \"timestamp,value\", found {:?}",
                        got.join(",")
                    ),
                ));
            }
            continue;
        }
        if rec.len() != 2 {
            return Err(IngestError::line(
                path,
                line,
                format!("expected 2 fields (timestamp,value), found {}", rec.len()),
            ));
        }
        let ts = parse_timestamp(&rec[0]).ok_or_else(|| {
            IngestError::line(
                path,
                line,
                format!(
                    "bad timestamp {:?}: expected YYYY-MM-DD HH:MM:SS",
                    String::from_utf8_lossy(&rec[0])
                ),
            )
        })?;
        let v = parse_value(&rec[1]).map_err(|msg| IngestError::line(path, line, msg))?;
        timestamps.push(ts);
        values.push(v);
    }
    if values.is_empty() {
        return Err(IngestError::line(path, 2, "no data rows after the header"));
    }
    Ok((timestamps, values))
}

/// Line numbers from byte offsets, for any of `\n`, `\r\n` or `\r` line ends. (The csv
/// reader's own line count is off by one after `\r\n` and skips blank lines.) Offsets must come
/// in increasing order.
#[derive(Default)]
struct LineCounter {
    pos: usize,
    breaks: u64,
}

impl LineCounter {
    /// The 1-based line of the first content byte at or after `offset`.
    fn line_at(&mut self, bytes: &[u8], offset: usize) -> u64 {
        let mut off = offset.min(bytes.len());
        while off < bytes.len() && matches!(bytes[off], b'\r' | b'\n') {
            off += 1;
        }
        if off < self.pos {
            (self.pos, self.breaks) = (0, 0);
        }
        for i in self.pos..off {
            let b = bytes[i];
            if b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')) {
                self.breaks += 1;
            }
        }
        self.pos = off;
        self.breaks + 1
    }
}

fn parse_value(field: &[u8]) -> Result<f64, String> {
    let s = std::str::from_utf8(field)
        .map_err(|_| "value is not valid UTF-8".to_string())?
        .trim();
    let v: f64 = s
        .parse()
        .map_err(|_| format!("value {s:?} is not a number"))?;
    if !v.is_finite() {
        return Err(format!("value {s:?} is not finite"));
    }
    Ok(v)
}

/// Parses `YYYY-MM-DD HH:MM:SS` into unix seconds (UTC). Strict: exactly that layout, a
/// real calendar date and time of day.
pub fn parse_timestamp(field: &[u8]) -> Option<i64> {
    let b = field;
    if b.len() != 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b' '
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let mut n = 0u32;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            n = n * 10 + u32::from(c - b'0');
        }
        Some(n)
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let date = chrono::NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, mo, d)?;
    let time = chrono::NaiveTime::from_hms_opt(h, mi, s)?;
    Some(date.and_time(time).and_utc().timestamp())
}

/// Formats unix seconds the way NAB files write timestamps.
pub fn format_timestamp(ts: i64) -> String {
    match chrono::DateTime::from_timestamp(ts, 0) {
        Some(dt) => dt.naive_utc().format(TIMESTAMP_FORMAT).to_string(),
        None => ts.to_string(),
    }
}

/// Display helper for unix seconds.
pub struct Ts(pub i64);
impl fmt::Display for Ts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_timestamp(self.0))
    }
}

/// A label window as written in the JSON file (`"YYYY-MM-DD HH:MM:SS.ffffff"`), parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawWindow {
    pub start: i64,
    pub end: i64,
}

/// Reads a windows file into key → windows, keeping key order sorted.
pub fn read_windows_file(path: &Path) -> Result<BTreeMap<String, Vec<RawWindow>>, IngestError> {
    let text = fs::read_to_string(path).map_err(|e| IngestError::io(path, e))?;
    parse_windows(&text, path)
}

/// Parses the text of a windows file. `path` only names errors.
pub fn parse_windows(
    text: &str,
    path: &Path,
) -> Result<BTreeMap<String, Vec<RawWindow>>, IngestError> {
    let root: Value = serde_json::from_str(text)
        .map_err(|e| IngestError::line(path, e.line() as u64, format!("invalid JSON: {e}")))?;
    let Value::Object(map) = root else {
        return Err(IngestError::file(
            path,
            "expected a JSON object of \"<category>/<file>.csv\": [[start, end], ...]",
        ));
    };
    let mut out = BTreeMap::new();
    for (key, val) in map {
        let Value::Array(items) = val else {
            return Err(IngestError::key(
                path,
                &key,
                "expected a list of [start, end] pairs",
            ));
        };
        let mut ws = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let pair = item.as_array().filter(|a| a.len() == 2);
            let Some(pair) = pair else {
                return Err(IngestError::key(
                    path,
                    &key,
                    format!("window {i}: expected [start, end], found {item}"),
                ));
            };
            let mut ends = [0i64; 2];
            for (slot, v) in ends.iter_mut().zip(pair) {
                let s = v.as_str().unwrap_or_default();
                *slot = parse_label_timestamp(s).ok_or_else(|| {
                    IngestError::key(
                        path,
                        &key,
                        format!("window {i}: bad timestamp {v}: expected \"YYYY-MM-DD HH:MM:SS[.ffffff]\""),
                    )
                })?;
            }
            if ends[0] > ends[1] {
                return Err(IngestError::key(
                    path,
                    &key,
                    format!(
                        "window {i}: start {} is after end {}",
                        Ts(ends[0]),
                        Ts(ends[1])
                    ),
                ));
            }
            ws.push(RawWindow {
                start: ends[0],
                end: ends[1],
            });
        }
        out.insert(key, ws);
    }
    Ok(out)
}

/// `YYYY-MM-DD HH:MM:SS` with an optional all-zero fraction (`.000000`, as NAB writes it).
fn parse_label_timestamp(s: &str) -> Option<i64> {
    let (main, frac) = match s.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (s, None),
    };
    if let Some(f) = frac
        && (f.is_empty() || !f.bytes().all(|c| c == b'0'))
    {
        return None;
    }
    parse_timestamp(main.as_bytes())
}

/// Maps each window onto row indices: NAB uses the first row whose timestamp equals each end.
pub fn resolve_windows(
    s: &Series,
    raw: &[RawWindow],
    labels_path: &Path,
    key: &str,
) -> Result<Vec<Window>, IngestError> {
    let mut out: Vec<Window> = Vec::with_capacity(raw.len());
    for (i, w) in raw.iter().enumerate() {
        let find = |t: i64| s.timestamps.iter().position(|&x| x == t);
        let first_row = find(w.start).ok_or_else(|| {
            IngestError::key(
                labels_path,
                key,
                format!(
                    "window {i}: start {} is not a timestamp of the data file",
                    Ts(w.start)
                ),
            )
        })?;
        let last_row = find(w.end).ok_or_else(|| {
            IngestError::key(
                labels_path,
                key,
                format!(
                    "window {i}: end {} is not a timestamp of the data file",
                    Ts(w.end)
                ),
            )
        })?;
        if last_row < first_row {
            return Err(IngestError::key(
                labels_path,
                key,
                format!("window {i}: its end row comes before its start row"),
            ));
        }
        if let Some(prev) = out.last()
            && first_row <= prev.last_row
        {
            return Err(IngestError::key(
                labels_path,
                key,
                format!("window {i} overlaps or precedes window {}", i - 1),
            ));
        }
        out.push(Window {
            start: w.start,
            end: w.end,
            first_row,
            last_row,
        });
    }
    Ok(out)
}

/// Reads `config/profiles.json`, returning profiles in NAB's canonical order (others after).
pub fn read_profiles(path: &Path) -> Result<Vec<Profile>, IngestError> {
    #[derive(Deserialize)]
    struct Entry {
        #[serde(rename = "CostMatrix")]
        cost_matrix: CostMatrix,
    }
    let text = fs::read_to_string(path).map_err(|e| IngestError::io(path, e))?;
    let map: BTreeMap<String, Value> = serde_json::from_str(&text)
        .map_err(|e| IngestError::line(path, e.line() as u64, format!("invalid JSON: {e}")))?;
    let mut out = Vec::new();
    for (name, v) in map {
        let e: Entry =
            serde_json::from_value(v).map_err(|e| IngestError::key(path, &name, e.to_string()))?;
        out.push(Profile {
            name,
            costs: e.cost_matrix,
        });
    }
    out.sort_by_key(|p| {
        (
            PROFILE_ORDER
                .iter()
                .position(|n| *n == p.name)
                .unwrap_or(PROFILE_ORDER.len()),
            p.name.clone(),
        )
    });
    if out.is_empty() {
        return Err(IngestError::file(path, "no profiles"));
    }
    Ok(out)
}

/// Reads `config/thresholds.json`.
pub fn read_thresholds(path: &Path) -> Result<Thresholds, IngestError> {
    let text = fs::read_to_string(path).map_err(|e| IngestError::io(path, e))?;
    let map: BTreeMap<String, Value> = serde_json::from_str(&text)
        .map_err(|e| IngestError::line(path, e.line() as u64, format!("invalid JSON: {e}")))?;
    let mut out = Thresholds::new();
    for (det, v) in map {
        let entries: BTreeMap<String, ThresholdEntry> =
            serde_json::from_value(v).map_err(|e| IngestError::key(path, &det, e.to_string()))?;
        out.insert(det, entries);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_roundtrip_and_rejects() {
        let t = parse_timestamp(b"2014-03-09 03:00:00").expect("valid");
        assert_eq!(format_timestamp(t), "2014-03-09 03:00:00");
        for bad in [
            &b"2014-02-30 00:00:00"[..],
            b"2014-03-09T03:00:00",
            b"2014-03-09 24:00:00",
            b"2014-3-9 03:00:00",
            b"",
            b"2014-03-09 03:00:0x",
        ] {
            assert_eq!(
                parse_timestamp(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(parse_label_timestamp("2014-03-09 03:00:00.000000"), Some(t));
        assert_eq!(parse_label_timestamp("2014-03-09 03:00:00.500000"), None);
    }

    #[test]
    fn crlf_and_no_final_newline() {
        let p = Path::new("x.csv");
        let (t, v) = parse_series_csv(
            b"timestamp,value\r\n2014-01-01 00:00:00,1.5\r\n2014-01-01 00:05:00,-2",
            p,
        )
        .expect("parses");
        assert_eq!(v, vec![1.5, -2.0]);
        assert_eq!(t[1] - t[0], 300);
    }
}
