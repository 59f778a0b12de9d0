//! Evaluation: run a detector over the corpus point by point, write NAB-format results, choose
//! thresholds (shipped or corpus-wide optimised) and score with NAB's rules ([`scorer`]).

pub mod results;
pub mod scoreboard;
pub mod scorer;
pub mod tune;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::config::DetectorConfig;
use crate::detect::{DetectorKind, score_series};
use crate::nab::{Corpus, IngestError, Profile, Thresholds};
use scorer::{Counts, FileLabels, FileScore, normalize, optimize_threshold};

/// Detectors of the published NAB scoreboard shown beside ours.
pub const PUBLISHED: [&str; 5] = [
    "ARTime",
    "numenta",
    "contextOSE",
    "windowedGaussian",
    "null",
];

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("detector {det:?} has no {profile} threshold in {path}; pass --optimize to find one")]
    NoThreshold {
        det: String,
        profile: String,
        path: String,
    },
    #[error(
        "detector {det} gave score {score} for row {row} of {key}: scores must be finite and in [0, 1]"
    )]
    BadScore {
        det: String,
        key: String,
        row: usize,
        score: f64,
    },
    #[error("detector {det} panicked on {key}: {message}")]
    Worker {
        det: String,
        key: String,
        message: String,
    },
}

/// How thresholds are chosen.
pub enum ThresholdChoice<'a> {
    /// From `config/thresholds.json`, under this detector name.
    Shipped(&'a Thresholds),
    /// NAB's exhaustive corpus-wide optimisation, per profile.
    Optimize,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProfileReport {
    pub profile: String,
    pub threshold: f64,
    pub raw: f64,
    pub normalized: f64,
    pub null: f64,
    pub perfect: f64,
    #[serde(flatten)]
    pub counts: Counts,
    #[serde(skip)]
    pub files: Vec<FileScore>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CategoryProfile {
    pub raw: f64,
    /// Undefined for a category without windows.
    pub normalized: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CategoryReport {
    pub category: String,
    pub files: usize,
    pub windows: usize,
    pub profiles: BTreeMap<String, CategoryProfile>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PublishedRow {
    pub detector: String,
    /// profile → published normalised score ([`scoreboard::PUBLISHED`]).
    pub profiles: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub detector: String,
    pub corpus: String,
    pub files: usize,
    pub rows: usize,
    pub windows: usize,
    pub thresholds: &'static str,
    pub profiles: Vec<ProfileReport>,
    pub categories: Vec<CategoryReport>,
    pub published: Vec<PublishedRow>,
}

/// Runs `kind` over every series (a fresh detector per series, points in file order), spreading
/// series over the machine's cores.
pub fn run_detector(
    corpus: &Corpus,
    kind: DetectorKind,
    cfg: &DetectorConfig,
) -> Result<Vec<Vec<f64>>, EvalError> {
    let all: Vec<usize> = (0..corpus.series.len()).collect();
    run_detector_with(corpus, &all, kind.name(), &|| kind.build_for_nab(cfg))
}

/// Runs a fresh detector from `build` over each of `files` (corpus indices), in parallel; one
/// score vector per file, in the order given. `det` names the detector in errors.
pub fn run_detector_with(
    corpus: &Corpus,
    files: &[usize],
    det: &str,
    build: &(dyn Fn() -> Box<dyn crate::detect::Detector> + Sync),
) -> Result<Vec<Vec<f64>>, EvalError> {
    let scores = crate::par::map(files, |&i| {
        let s = &corpus.series[i];
        let mut d = build();
        score_series(d.as_mut(), &s.timestamps, &s.values)
    })
    .map_err(|p| EvalError::Worker {
        det: det.into(),
        key: corpus.series[files[p.index]].key.clone(),
        message: p.message,
    })?;
    check_scores(corpus, files, det, &scores)?;
    Ok(scores)
}

/// Every score finite and in [0, 1], else the first bad one with its file and row.
pub(crate) fn check_scores(
    corpus: &Corpus,
    files: &[usize],
    det: &str,
    scores: &[Vec<f64>],
) -> Result<(), EvalError> {
    for (&i, sc) in files.iter().zip(scores) {
        if let Some((row, &score)) = sc
            .iter()
            .enumerate()
            .find(|(_, v)| !(0.0..=1.0).contains(*v))
        {
            return Err(EvalError::BadScore {
                det: det.into(),
                key: corpus.series[i].key.clone(),
                row,
                score,
            });
        }
    }
    Ok(())
}

/// The whole `eval` pipeline for one detector: run it over the corpus, write its results and the
/// per-profile scores files under `<out>/<det>/` (NAB layout), and score it with thresholds
/// optimised corpus-wide, beside the published scoreboard.
pub fn evaluate(
    corpus: &Corpus,
    profiles: &[Profile],
    kind: DetectorKind,
    cfg: &DetectorConfig,
    out: &Path,
) -> Result<Report, EvalError> {
    let t0 = std::time::Instant::now();
    let scores = run_detector(corpus, kind, cfg)?;
    tracing::info!(detector = %kind, rows = corpus.total_rows(), elapsed = ?t0.elapsed(), "detector run");
    write_results(out, kind.name(), corpus, &scores)?;
    let report = score_corpus(
        corpus,
        profiles,
        kind.name(),
        &scores,
        &ThresholdChoice::Optimize,
        true,
    )?;
    report.write_scores_files(out, corpus)?;
    Ok(report)
}

/// Writes every series' results file under `<out>/<det>/`.
pub fn write_results(
    out: &Path,
    det: &str,
    corpus: &Corpus,
    scores: &[Vec<f64>],
) -> Result<(), IngestError> {
    for ((s, w), sc) in corpus.series.iter().zip(&corpus.windows).zip(scores) {
        results::write_series_results(out, det, s, w, sc)?;
    }
    Ok(())
}

/// Scores `scores` (one vector per corpus series) with NAB's rules for every profile.
pub fn score_corpus(
    corpus: &Corpus,
    profiles: &[Profile],
    det: &str,
    scores: &[Vec<f64>],
    choice: &ThresholdChoice<'_>,
    with_published: bool,
) -> Result<Report, EvalError> {
    let labels = FileLabels::for_corpus(corpus);
    let total_windows = corpus.total_windows();
    let scored_windows: usize = labels.iter().map(FileLabels::scored_windows).sum();
    let mut reports = Vec::new();
    let mut categories: BTreeMap<String, CategoryReport> = BTreeMap::new();
    for p in profiles {
        let c = &p.costs;
        let threshold = match choice {
            ThresholdChoice::Shipped(t) => t
                .get(det)
                .and_then(|m| m.get(&p.name))
                .map(|e| e.threshold)
                .ok_or_else(|| EvalError::NoThreshold {
                    det: det.into(),
                    profile: p.name.clone(),
                    path: corpus
                        .root
                        .join("config/thresholds.json")
                        .display()
                        .to_string(),
                })?,
            ThresholdChoice::Optimize => {
                let files: Vec<(&FileLabels, &[f64])> = labels
                    .iter()
                    .zip(scores)
                    .map(|(l, s)| (l, s.as_slice()))
                    .collect();
                optimize_threshold(&files, c).threshold
            }
        };
        let files: Vec<FileScore> = labels
            .iter()
            .zip(scores)
            .map(|(l, s)| l.score(s, threshold, c))
            .collect();
        let raw: f64 = files.iter().map(|f| f.score).sum();
        let mut counts = Counts::default();
        for f in &files {
            counts += f.counts;
        }
        let null = -c.fn_ * scored_windows as f64;
        let perfect = c.tp * total_windows as f64;
        for ((s, l), f) in corpus.series.iter().zip(&labels).zip(&files) {
            let cat = categories
                .entry(s.category.clone())
                .or_insert_with(|| CategoryReport {
                    category: s.category.clone(),
                    files: 0,
                    windows: 0,
                    profiles: BTreeMap::new(),
                });
            if reports.is_empty() {
                cat.files += 1;
                cat.windows += l.windows.len();
            }
            cat.profiles
                .entry(p.name.clone())
                .or_insert(CategoryProfile {
                    raw: 0.0,
                    normalized: None,
                })
                .raw += f.score;
        }
        reports.push(ProfileReport {
            profile: p.name.clone(),
            threshold,
            raw,
            normalized: normalize(raw, null, perfect),
            null,
            perfect,
            counts,
            files,
        });
    }
    let mut categories: Vec<CategoryReport> = categories.into_values().collect();
    for cat in &mut categories {
        let scored: usize = corpus
            .series
            .iter()
            .zip(&labels)
            .filter(|(s, _)| s.category == cat.category)
            .map(|(_, l)| l.scored_windows())
            .sum();
        for p in profiles {
            if let Some(cp) = cat.profiles.get_mut(&p.name)
                && cat.windows > 0
            {
                let null = -p.costs.fn_ * scored as f64;
                let perfect = p.costs.tp * cat.windows as f64;
                cp.normalized = Some(normalize(cp.raw, null, perfect));
            }
        }
    }
    let published = if with_published {
        published_rows()
    } else {
        Vec::new()
    };
    Ok(Report {
        detector: det.into(),
        corpus: corpus.root.display().to_string(),
        files: corpus.series.len(),
        rows: corpus.total_rows(),
        windows: total_windows,
        thresholds: match choice {
            ThresholdChoice::Shipped(_) => "config/thresholds.json",
            ThresholdChoice::Optimize => "optimized",
        },
        profiles: reports,
        categories,
        published,
    })
}

/// The published scoreboard rows shown beside ours.
fn published_rows() -> Vec<PublishedRow> {
    scoreboard::SHOWN
        .iter()
        .filter_map(|det| {
            let scores = scoreboard::published(det)?;
            let profiles = scoreboard::PROFILES
                .iter()
                .zip(scores)
                .map(|(p, v)| ((*p).to_string(), v))
                .collect();
            Some(PublishedRow {
                detector: (*det).to_string(),
                profiles,
            })
        })
        .collect()
}

impl Report {
    /// Writes `<out>/<det>/<det>_<profile>_scores.csv` for every profile.
    pub fn write_scores_files(&self, out: &Path, corpus: &Corpus) -> Result<(), IngestError> {
        for p in &self.profiles {
            let rows: Vec<results::ScoresRow<'_>> = corpus
                .series
                .iter()
                .zip(&p.files)
                .map(|(s, f)| results::ScoresRow {
                    key: &s.key,
                    rows: s.len(),
                    score: *f,
                })
                .collect();
            results::write_scores_csv(out, &self.detector, &p.profile, p.threshold, &rows)?;
        }
        Ok(())
    }

    /// The per-profile summary (what `score` prints).
    pub fn summary_table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{}: {} files, {} rows, {} windows (corpus {}); thresholds: {}",
            self.detector, self.files, self.rows, self.windows, self.corpus, self.thresholds
        );
        let _ = writeln!(
            s,
            "{:<20} {:>12} {:>12} {:>10} {:>6} {:>8} {:>6} {:>7}",
            "profile", "threshold", "raw", "score", "TP", "TN", "FP", "FN"
        );
        for p in &self.profiles {
            let _ = writeln!(
                s,
                "{:<20} {:>12.6} {:>12.6} {:>10.3} {:>6} {:>8} {:>6} {:>7}",
                p.profile,
                p.threshold,
                p.raw,
                p.normalized,
                p.counts.tp,
                p.counts.tn,
                p.counts.fp,
                p.counts.fn_
            );
        }
        s
    }

    /// Per-category and total table with the published scoreboard beneath (what `eval` prints).
    pub fn full_table(&self) -> String {
        let mut s = String::new();
        let names: Vec<&str> = self.profiles.iter().map(|p| p.profile.as_str()).collect();
        let head = |s: &mut String, first: &str| {
            let _ = write!(s, "{first:<24} {:>5} {:>7}", "files", "windows");
            for n in &names {
                let _ = write!(s, " {n:>19}");
            }
            s.push('\n');
        };
        let _ = writeln!(
            s,
            "NAB evaluation of {} over {} ({} rows); thresholds: {}",
            self.detector, self.corpus, self.rows, self.thresholds
        );
        head(&mut s, "category");
        for c in &self.categories {
            let _ = write!(s, "{:<24} {:>5} {:>7}", c.category, c.files, c.windows);
            for n in &names {
                match c.profiles.get(*n) {
                    Some(CategoryProfile {
                        normalized: Some(v),
                        ..
                    }) => {
                        let _ = write!(s, " {v:>19.3}");
                    }
                    Some(CategoryProfile { raw, .. }) => {
                        let txt = format!("n/a (raw {raw:.2})");
                        let _ = write!(s, " {txt:>19}");
                    }
                    None => {
                        let _ = write!(s, " {:>19}", "-");
                    }
                }
            }
            s.push('\n');
        }
        let _ = write!(
            s,
            "{:<24} {:>5} {:>7}",
            format!("TOTAL {}", self.detector),
            self.files,
            self.windows
        );
        for p in &self.profiles {
            let _ = write!(s, " {:>19.3}", p.normalized);
        }
        s.push('\n');
        let _ = write!(s, "{:<38}", "  threshold");
        for p in &self.profiles {
            let _ = write!(s, " {:>19.6}", p.threshold);
        }
        s.push('\n');
        if !self.published.is_empty() {
            let _ = writeln!(
                s,
                "\npublished NAB scoreboard (NAB v1.1, shipped thresholds):"
            );
            for r in &self.published {
                let _ = write!(s, "{:<38}", r.detector);
                for n in &names {
                    match r.profiles.get(*n) {
                        Some(v) => {
                            let _ = write!(s, " {v:>19.3}");
                        }
                        None => {
                            let _ = write!(s, " {:>19}", "-");
                        }
                    }
                }
                s.push('\n');
            }
        }
        s
    }
}
