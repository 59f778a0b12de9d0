//! `score`, `eval` and `scoreboard`: the NAB corpus through the scorer and the detectors.

use std::path::PathBuf;
use std::time::Instant;

use color_eyre::eyre::{Result, eyre};

use super::load_corpus;
use pulsewatch_core::config::{Config, IsolationForestPreset};
use pulsewatch_core::detect::DetectorKind;
use pulsewatch_core::detect::calibrate::CalibrationParams;
use pulsewatch_core::detect::pulse::PulseParams;
use pulsewatch_core::eval::tune::{self, Candidate, CrossValidation, TuneSettings};
use pulsewatch_core::eval::{self, ThresholdChoice};
use pulsewatch_core::nab::Corpus;

#[derive(Debug, clap::Args)]
pub struct ScoreArgs {
    /// Results folder holding <DETECTOR>/<category>/<DETECTOR>_<file>.csv.
    #[arg(long, value_name = "DIR")]
    pub results: PathBuf,
    /// Detector name (folder under --results).
    #[arg(long, value_name = "NAME")]
    pub detector: String,
    /// Corpus root (default: [data] dir).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Find thresholds by NAB's corpus-wide optimisation instead of config/thresholds.json.
    #[arg(long)]
    pub optimize: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn score(args: ScoreArgs, cfg: &Config) -> Result<()> {
    let ScoreArgs {
        results,
        detector,
        data,
        optimize,
        json,
    } = args;
    let root = data.unwrap_or_else(|| cfg.data.dir.clone());
    let corpus = load_corpus(&root, None)?;
    let scores = eval::results::read_detector_results(&results, &detector, &corpus)?;
    let profiles = corpus.profiles()?;
    let thresholds = corpus.thresholds()?;
    let choice = if optimize {
        ThresholdChoice::Optimize
    } else {
        ThresholdChoice::Shipped(&thresholds)
    };
    let report = eval::score_corpus(&corpus, &profiles, &detector, &scores, &choice, false)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.summary_table());
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Detector name (default: [detector] name).
    #[arg(long, value_name = "NAME")]
    pub detector: Option<String>,
    /// Corpus root (default: [data] dir).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Output folder for results (NAB layout).
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub out: PathBuf,
    /// Use another windows file (e.g. labels/combined_windows_tiny.json) to evaluate a subset.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Held-out protocol: split the files into K folds (stratified by category), tune on K-1,
    /// score the held-out fold, and print in-sample and held-out scores side by side.
    #[arg(long, value_name = "K")]
    pub folds: Option<usize>,
    #[command(flatten)]
    pub tune: TuneOpts,
}

/// The search settings shared by `tune` and `eval --folds`.
#[derive(Debug, Clone, clap::Args)]
pub struct TuneOpts {
    /// Candidate evaluations per tuning run.
    #[arg(long, value_name = "N", default_value_t = TuneSettings::default().budget)]
    pub budget: usize,
    /// Seed of the search and of the fold split.
    #[arg(long, value_name = "SEED", default_value_t = TuneSettings::default().seed)]
    pub seed: u64,
    /// Where the search starts: `prior` (round constants fixed before any tuning) or
    /// `config` (the configured constants, by default the shipped ones).
    #[arg(long, value_name = "FROM", default_value = "prior")]
    pub from: String,
    /// Accept equal-scoring moves (to cross plateaus).
    #[arg(long)]
    pub plateau: bool,
    /// Tune only these constants (comma-separated; `weights` names every weight of pulse;
    /// `all`: every constant). The default is the procedure that chose the shipped constants
    /// (pulse: reach; isolation-forest: its calibration's memory and warmup; lstm-ae: its
    /// calibration's memory).
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    pub only: Vec<String>,
}

impl TuneOpts {
    /// The search settings for `P`'s constants (`what` names them in errors); an empty
    /// `--only` is the detector's own procedure, `defaults`.
    fn settings<P: tune::Tunable>(
        &self,
        what: &str,
        defaults: TuneSettings,
    ) -> Result<TuneSettings> {
        let dims = P::dims();
        for o in &self.only {
            let known = o == "all"
                || dims
                    .iter()
                    .any(|d| d.name == *o || d.name.starts_with(&format!("{o}[")));
            if !known {
                let names: Vec<&str> = dims
                    .iter()
                    .map(|d| d.name.split('[').next().unwrap_or(&d.name))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                return Err(eyre!(
                    "--only {o:?}: not one of {what}'s constants ({}, or all)",
                    names.join(", ")
                ));
            }
        }
        let only = if self.only.is_empty() {
            defaults.only
        } else if self.only.iter().any(|o| o == "all") {
            Vec::new()
        } else {
            self.only.clone()
        };
        Ok(TuneSettings {
            budget: self.budget,
            seed: self.seed,
            plateau: self.plateau,
            only,
        })
    }

    /// `--from`: the prior or the configured constants.
    fn start<P>(&self, prior: P, config: P) -> Result<P> {
        match self.from.as_str() {
            "prior" => Ok(prior),
            "config" => Ok(config),
            other => Err(eyre!("--from {other:?}: expected prior or config")),
        }
    }
}

pub fn eval(args: EvalArgs, cfg: &Config) -> Result<()> {
    let EvalArgs {
        detector,
        data,
        out,
        labels,
        json,
        folds,
        tune,
    } = args;
    let kind: DetectorKind = match detector {
        Some(d) => d.parse().map_err(|e: String| eyre!("--detector: {e}"))?,
        None => cfg.detector.name,
    };
    cfg.detector.validate().map_err(|e| eyre!(e))?;
    let root = data.unwrap_or_else(|| cfg.data.dir.clone());
    let corpus = load_corpus(&root, labels.as_deref())?;
    if let Some(k) = folds {
        return cross_validate(&corpus, kind, cfg, k, &tune, json);
    }
    let t0 = Instant::now();
    let report = eval::evaluate(&corpus, &corpus.profiles()?, kind, &cfg.detector, &out)?;
    let elapsed = t0.elapsed();
    let summary = out.join(kind.name()).join("summary.json");
    pulsewatch_core::atomic::write_atomic(
        &summary,
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.full_table());
        println!(
            "\nresults: {} (NAB layout); scored {} rows in {:.2?}",
            out.join(kind.name()).display(),
            corpus.total_rows(),
            elapsed
        );
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct ScoreboardArgs {
    /// Detectors to evaluate (default: all).
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub detectors: Vec<String>,
    /// Corpus root (default: [data] dir).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Output folder for results (NAB layout).
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub out: PathBuf,
    /// Add held-out columns: `eval --folds K` for every detector (the README's table uses 5).
    #[arg(long, value_name = "K")]
    pub folds: Option<usize>,
    #[command(flatten)]
    pub tune: TuneOpts,
}

pub fn scoreboard(args: ScoreboardArgs, cfg: &Config) -> Result<()> {
    let ScoreboardArgs {
        detectors,
        data,
        out,
        folds,
        tune,
    } = args;
    let kinds: Vec<DetectorKind> = if detectors.is_empty() {
        DetectorKind::ALL.to_vec()
    } else {
        detectors
            .iter()
            .map(|d| d.parse().map_err(|e: String| eyre!(e)))
            .collect::<Result<_>>()?
    };
    let root = data.unwrap_or_else(|| cfg.data.dir.clone());
    let corpus = load_corpus(&root, None)?;
    let profiles = corpus.profiles()?;
    let mut rows = Vec::new();
    for kind in kinds {
        let t0 = Instant::now();
        let report = eval::evaluate(&corpus, &profiles, kind, &cfg.detector, &out)?;
        let elapsed = t0.elapsed();
        let held = match folds {
            Some(k) => Some(run_folds(&corpus, kind, cfg, k, &tune, &mut |_| {})?),
            None => None,
        };
        eprintln!("scoreboard: {kind} done in {:.1?}", t0.elapsed());
        rows.push((kind, report, elapsed, held));
    }
    let held_head = if folds.is_some() {
        " held-out standard | held-out low_FP | held-out low_FN | tuned |"
    } else {
        ""
    };
    let held_rule = if folds.is_some() {
        "---|---|---|---|"
    } else {
        ""
    };
    println!(
        "| detector | standard | reward_low_FP_rate | reward_low_FN_rate |{held_head} eval time |"
    );
    println!("|---|---|---|---|{held_rule}---|");
    for (kind, r, elapsed, held) in &rows {
        let s: Vec<String> = r
            .profiles
            .iter()
            .map(|p| format!("{:.2}", p.normalized))
            .collect();
        let h = match held {
            Some(cv) => {
                let v: Vec<String> = cv
                    .held_out
                    .iter()
                    .map(|p| format!("{:.2}", p.normalized))
                    .collect();
                let tuned = if cv.tuned {
                    "constants and thresholds"
                } else {
                    "thresholds only"
                };
                format!(" {} | {tuned} |", v.join(" | "))
            }
            None => String::new(),
        };
        println!(
            "| {kind} (ours) | {} |{h} {:.2} s |",
            s.join(" | "),
            elapsed.as_secs_f64()
        );
    }
    let blank = if folds.is_some() { " | | | |" } else { "" };
    for (det, s) in eval::scoreboard::PUBLISHED {
        if eval::scoreboard::SHOWN.contains(det) || *det == "knncad" || *det == "htmjava" {
            println!(
                "| *published:* {det} | {:.2} | {:.2} | {:.2} |{blank} |",
                s[0], s[1], s[2]
            );
        }
    }
    Ok(())
}

/// `eval --folds k`: the held-out protocol ([`tune::cross_validate`]).
fn cross_validate(
    corpus: &Corpus,
    kind: DetectorKind,
    cfg: &Config,
    k: usize,
    opts: &TuneOpts,
    json: bool,
) -> Result<()> {
    let t0 = Instant::now();
    let mut progress = |line: String| eprintln!("eval --folds: {line} ({:.0?})", t0.elapsed());
    let report = run_folds(corpus, kind, cfg, k, opts, &mut progress)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", cross_validation_table(&report));
    }
    Ok(())
}

/// The held-out protocol for one detector: tuned per fold where it has a procedure (`pulse`),
/// else thresholds only.
fn run_folds(
    corpus: &Corpus,
    kind: DetectorKind,
    cfg: &Config,
    k: usize,
    opts: &TuneOpts,
    progress: &mut dyn FnMut(String),
) -> Result<CrossValidation> {
    if k < 2 || k > corpus.series.len() {
        return Err(eyre!(
            "--folds {k}: need 2..={} (one file per fold at most)",
            corpus.series.len()
        ));
    }
    let profiles = corpus.profiles()?;
    let det = &cfg.detector;
    match kind {
        DetectorKind::Pulse => {
            let score = tune::pulse_scorer(corpus);
            let candidate = Candidate::Tuned {
                start: opts.start(PulseParams::prior(), det.pulse)?,
                shipped: det.pulse,
                settings: opts.settings::<PulseParams>("pulse", TuneSettings::default())?,
                score: &score,
            };
            Ok(tune::cross_validate(
                corpus,
                &profiles,
                kind.name(),
                &candidate,
                k,
                opts.seed,
                progress,
            )?)
        }
        _ if calibrated(kind, cfg).is_some() => {
            // Names checked before the models are fitted.
            let settings =
                opts.settings::<CalibrationParams>(kind.name(), calibration_procedure(kind))?;
            let (raw, shipped) = calibrated_raw(kind, corpus, cfg)?;
            progress("fitted the models once; tuning replays the calibration".into());
            let score = tune::calibration_scorer(&raw);
            let candidate = Candidate::Tuned {
                start: opts.start(CalibrationParams::default(), shipped)?,
                shipped,
                settings,
                score: &score,
            };
            Ok(tune::cross_validate(
                corpus,
                &profiles,
                kind.name(),
                &candidate,
                k,
                opts.seed,
                progress,
            )?)
        }
        _ => {
            let build = || kind.build_for_nab(det);
            let candidate = Candidate::<PulseParams>::Fixed(&build);
            Ok(tune::cross_validate(
                corpus,
                &profiles,
                kind.name(),
                &candidate,
                k,
                opts.seed,
                progress,
            )?)
        }
    }
}

/// The side-by-side table `eval --folds` prints.
fn cross_validation_table(r: &CrossValidation) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}: {}-fold cross-validation by file (stratified by category, seed {})",
        r.detector, r.folds, r.seed
    );
    match &r.tuning {
        Some(t) => {
            let _ = writeln!(
                s,
                "constants and thresholds tuned on the training folds (budget {}, seed {})",
                t.budget, t.seed
            );
        }
        None => {
            let _ = writeln!(
                s,
                "{} has no tuning procedure: its constants are fixed; only the thresholds are \
                 chosen on the training folds",
                r.detector
            );
        }
    }
    let _ = writeln!(
        s,
        "{:<22} {:>10} {:>10}",
        "profile", "in-sample", "held-out"
    );
    for (a, b) in r.in_sample.iter().zip(&r.held_out) {
        let _ = writeln!(
            s,
            "{:<22} {:>10.2} {:>10.2}",
            a.profile, a.normalized, b.normalized
        );
    }
    let _ = writeln!(s, "\nper fold (training folds -> held-out fold, standard):");
    for f in &r.per_fold {
        let train = f.train.first().map_or(f64::NAN, |p| p.normalized);
        let test = f.test.first().map_or(f64::NAN, |p| p.normalized);
        let _ = writeln!(
            s,
            "  fold {}: {:>2} held-out files, train {train:>7.2}, held-out {test:>7.2}",
            f.fold,
            f.held_out.len()
        );
    }
    s
}

#[derive(Debug, clap::Args)]
pub struct TuneArgs {
    /// Detector to tune (`pulse`, or the calibration of the streaming `isolation-forest` or of
    /// `lstm-ae`).
    #[arg(long, value_name = "NAME", default_value = "pulse")]
    pub detector: String,
    /// Corpus root (default: [data] dir).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Use another windows file (e.g. labels/combined_windows_tiny.json) to tune on a subset.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    #[command(flatten)]
    pub tune: TuneOpts,
}

/// `pulsewatch tune`: the search that sets the shipped constants, on every corpus file; prints
/// the `[detector.pulse]` block it chose.
fn no_procedure(kind: DetectorKind) -> color_eyre::eyre::Report {
    eyre!(
        "--detector {kind}: only pulse, the streaming isolation-forest and lstm-ae have a \
         tuning procedure; {kind}'s constants are fixed (see docs/detectors.md)"
    )
}

/// The config table of `kind`'s calibration, for detectors whose calibration is tuned over
/// cached raw scores (the streaming Isolation Forest, the LSTM autoencoder).
fn calibrated(kind: DetectorKind, cfg: &Config) -> Option<&'static str> {
    match kind {
        DetectorKind::IsolationForest
            if cfg.detector.isolation_forest.preset == IsolationForestPreset::Streaming =>
        {
            Some("detector.isolation_forest.calibration")
        }
        #[cfg(feature = "lstm")]
        DetectorKind::LstmAe => Some("detector.lstm_ae.calibration"),
        _ => None,
    }
}

/// The raw scores of every corpus file (each model fitted once) and the configured calibration
/// of a [`calibrated`] detector.
fn calibrated_raw(
    kind: DetectorKind,
    corpus: &Corpus,
    cfg: &Config,
) -> Result<(Vec<Vec<f64>>, CalibrationParams)> {
    let det = &cfg.detector;
    match kind {
        #[cfg(feature = "lstm")]
        DetectorKind::LstmAe => Ok((
            tune::lstm_raw(corpus, &det.lstm_ae)?,
            det.lstm_ae.calibration,
        )),
        _ => Ok((
            tune::iforest_raw(corpus, &det.isolation_forest)?,
            det.isolation_forest.calibration,
        )),
    }
}

pub fn tune(args: TuneArgs, cfg: &Config) -> Result<()> {
    let kind: DetectorKind = args
        .detector
        .parse()
        .map_err(|e: String| eyre!("--detector: {e}"))?;
    if kind != DetectorKind::Pulse && calibrated(kind, cfg).is_none() {
        return Err(no_procedure(kind));
    }
    let root = args.data.unwrap_or_else(|| cfg.data.dir.clone());
    let corpus = load_corpus(&root, args.labels.as_deref())?;
    let standard = corpus
        .profiles()?
        .into_iter()
        .find(|p| p.name == "standard")
        .ok_or_else(|| {
            eyre!(
                "{}: no standard profile",
                root.join("config/profiles.json").display()
            )
        })?;
    let all: Vec<usize> = (0..corpus.series.len()).collect();
    let t0 = Instant::now();
    let mut progress = |k: usize, score: f64| {
        eprintln!(
            "tune: candidate {k}: standard {score:.3} ({:.0?})",
            t0.elapsed()
        )
    };
    let summary = |evaluations: usize, accepted: usize, from: f64, to: f64| {
        eprintln!(
            "tune: {} files, {evaluations} candidates ({accepted} accepted) in {:.1?}: standard \
             {from:.3} -> {to:.3}",
            corpus.series.len(),
            t0.elapsed(),
        )
    };
    let det = &cfg.detector;
    match kind {
        DetectorKind::Pulse => {
            let tuned = tune::tune(
                &corpus,
                &all,
                standard.costs,
                &args.tune.start(PulseParams::prior(), det.pulse)?,
                &args
                    .tune
                    .settings::<PulseParams>("pulse", TuneSettings::default())?,
                &tune::pulse_scorer(&corpus),
                &mut progress,
            )?;
            summary(
                tuned.evaluations,
                tuned.accepted,
                tuned.start_score,
                tuned.score,
            );
            print!("{}", tuned.params.toml_block());
        }
        _ if let Some(table) = calibrated(kind, cfg) => {
            let settings = args
                .tune
                .settings::<CalibrationParams>(kind.name(), calibration_procedure(kind))?;
            let (raw, shipped) = calibrated_raw(kind, &corpus, cfg)?;
            let tuned = tune::tune(
                &corpus,
                &all,
                standard.costs,
                &args.tune.start(CalibrationParams::default(), shipped)?,
                &settings,
                &tune::calibration_scorer(&raw),
                &mut progress,
            )?;
            summary(
                tuned.evaluations,
                tuned.accepted,
                tuned.start_score,
                tuned.score,
            );
            print!("{}", tuned.params.toml_block(table));
        }
        other => return Err(no_procedure(other)),
    }
    Ok(())
}

/// The procedure that chooses a calibrated detector's calibration constants.
fn calibration_procedure(kind: DetectorKind) -> TuneSettings {
    if kind == DetectorKind::IsolationForest {
        TuneSettings::iforest_calibration()
    } else {
        TuneSettings::calibration()
    }
}
