//! Results files in NAB's own layout, so NAB's Python scorer can read ours and we can read theirs:
//!
//! ```text
//! <results>/<det>/<category>/<det>_<file>.csv          timestamp,value,anomaly_score,label
//! <results>/<det>/<det>_<profile>_scores.csv           per-file score, TP, TN, FP, FN + Totals
//! ```
//!
//! Detector names must not contain `_`: NAB takes the text before the first `_` as the name.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::atomic::write_atomic;
use crate::eval::scorer::FileScore;
use crate::nab::{Corpus, IngestError, Series, Window, format_timestamp};

/// `<results>/<det>/<category>/<det>_<file>.csv` for a series key `<category>/<file>.csv`.
pub fn results_path(results: &Path, det: &str, key: &str) -> PathBuf {
    let (cat, file) = key.split_once('/').unwrap_or(("", key));
    results.join(det).join(cat).join(format!("{det}_{file}"))
}

/// Writes one series' scores. The write is atomic (temp file + rename).
pub fn write_series_results(
    results: &Path,
    det: &str,
    series: &Series,
    windows: &[Window],
    scores: &[f64],
) -> Result<PathBuf, IngestError> {
    let path = results_path(results, det, &series.key);
    let mut label = vec![0u8; series.len()];
    for w in windows {
        for l in &mut label[w.first_row..=w.last_row] {
            *l = 1;
        }
    }
    let mut buf = Vec::with_capacity(series.len() * 48);
    buf.extend_from_slice(b"timestamp,value,anomaly_score,label\n");
    for i in 0..series.len() {
        // `{}` on f64 prints the shortest text that parses back to the same value.
        let _ = writeln!(
            buf,
            "{},{},{},{}",
            format_timestamp(series.timestamps[i]),
            series.values[i],
            scores[i],
            label[i]
        );
    }
    write_atomic(&path, &buf)?;
    Ok(path)
}

/// Reads the `anomaly_score` column of every series' results file under `<results>/<det>/`.
/// Every series must have a file with one row per data row; a CSV under `<results>/<det>/` that
/// maps to no series is an error, as in NAB.
pub fn read_detector_results(
    results: &Path,
    det: &str,
    corpus: &Corpus,
) -> Result<Vec<Vec<f64>>, IngestError> {
    let det_dir = results.join(det);
    if !det_dir.is_dir() {
        return Err(IngestError::File {
            path: det_dir,
            msg: format!("no results folder for detector {det:?}"),
        });
    }
    check_no_stray_files(&det_dir, det, corpus)?;
    corpus
        .series
        .iter()
        .map(|s| {
            let path = results_path(results, det, &s.key);
            read_scores_column(&path, s.len())
        })
        .collect()
}

fn check_no_stray_files(det_dir: &Path, det: &str, corpus: &Corpus) -> Result<(), IngestError> {
    let io = |p: &Path, e| IngestError::Io {
        path: p.to_path_buf(),
        error: e,
    };
    for cat in std::fs::read_dir(det_dir).map_err(|e| io(det_dir, e))? {
        let cat = cat.map_err(|e| io(det_dir, e))?;
        if !cat.path().is_dir() {
            continue;
        }
        let cat_name = cat.file_name().to_string_lossy().into_owned();
        for f in std::fs::read_dir(cat.path()).map_err(|e| io(&cat.path(), e))? {
            let f = f.map_err(|e| io(&cat.path(), e))?;
            let name = f.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".csv") || name.ends_with("_scores.csv") {
                continue;
            }
            let key = name
                .strip_prefix(&format!("{det}_"))
                .map(|file| format!("{cat_name}/{file}"));
            let known = key
                .as_ref()
                .is_some_and(|k| corpus.series.iter().any(|s| &s.key == k));
            if !known {
                return Err(IngestError::File {
                    path: f.path(),
                    msg: format!(
                        "results file maps to no series of the corpus at {}",
                        corpus.root.display()
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Reads the `anomaly_score` column of one results file and checks its length.
pub fn read_scores_column(path: &Path, expected_rows: usize) -> Result<Vec<f64>, IngestError> {
    let line_err = |line: u64, msg: String| IngestError::Line {
        path: path.to_path_buf(),
        line,
        msg,
    };
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|e| IngestError::File {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })?;
    let headers = rdr
        .byte_headers()
        .map_err(|e| line_err(1, format!("malformed header: {e}")))?
        .clone();
    let col = headers
        .iter()
        .position(|h| h == b"anomaly_score")
        .ok_or_else(|| line_err(1, "no \"anomaly_score\" column in the header".into()))?;
    let mut out = Vec::with_capacity(expected_rows);
    let mut rec = csv::ByteRecord::new();
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                return Err(line_err(line, format!("malformed CSV: {e}")));
            }
        }
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let field = rec
            .get(col)
            .ok_or_else(|| line_err(line, "row has no anomaly_score field".into()))?;
        let text = String::from_utf8_lossy(field);
        let v: f64 = text
            .trim()
            .parse()
            .map_err(|_| line_err(line, format!("anomaly_score {text:?} is not a number")))?;
        if !v.is_finite() {
            return Err(line_err(
                line,
                format!("anomaly_score {text:?} is not finite"),
            ));
        }
        out.push(v);
    }
    if out.len() != expected_rows {
        return Err(IngestError::File {
            path: path.to_path_buf(),
            msg: format!(
                "has {} result rows but its data file has {expected_rows}",
                out.len()
            ),
        });
    }
    Ok(out)
}

/// One row of a `<det>_<profile>_scores.csv` file.
pub struct ScoresRow<'a> {
    pub key: &'a str,
    pub rows: usize,
    pub score: FileScore,
}

/// Writes NAB's per-file summary `<results>/<det>/<det>_<profile>_scores.csv`.
pub fn write_scores_csv(
    results: &Path,
    det: &str,
    profile: &str,
    threshold: f64,
    rows: &[ScoresRow<'_>],
) -> Result<PathBuf, IngestError> {
    let path = results
        .join(det)
        .join(format!("{det}_{profile}_scores.csv"));
    let mut buf = Vec::new();
    buf.extend_from_slice(b"Detector,Profile,File,Threshold,Score,TP,TN,FP,FN,Total_Count\n");
    let (mut total, mut tp, mut tn, mut fp, mut fn_, mut n) = (0.0, 0, 0, 0, 0, 0);
    for r in rows {
        let c = r.score.counts;
        let _ = writeln!(
            buf,
            "{det},{profile},{},{threshold},{},{},{},{},{},{}",
            r.key, r.score.score, c.tp, c.tn, c.fp, c.fn_, r.rows
        );
        total += r.score.score;
        (tp, tn, fp, fn_, n) = (tp + c.tp, tn + c.tn, fp + c.fp, fn_ + c.fn_, n + r.rows);
    }
    let _ = writeln!(buf, "Totals,,,,{total},{tp},{tn},{fp},{fn_},{n}");
    write_atomic(&path, &buf)?;
    Ok(path)
}
