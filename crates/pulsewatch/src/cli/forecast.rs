//! The `forecast` command:
//!
//! * `pulsewatch forecast --series <category/file.csv> [--model M] [--horizon D] [--holdout]
//!   [--json] [--data DIR]` forecasts one series (point, lower and upper per step); with
//!   `--holdout` it fits on all but the last horizon and also prints the actual values, MAE, MASE,
//!   sMAPE and interval coverage (see `pulsewatch_core::forecast::metrics`).
//! * `pulsewatch forecast --all --holdout [--model M|all]` evaluates every series of the corpus
//!   per model and prints a table: median MASE, median sMAPE, pooled coverage, median and total
//!   fit time, failures.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use color_eyre::eyre::{Result, WrapErr, bail, eyre};
use serde::Serialize;

use pulsewatch_core::config::{Config, HumanDuration};
use pulsewatch_core::forecast::metrics::{Accuracy, holdout, median};
use pulsewatch_core::forecast::model::{Forecast, forecast, warm_up_prophet};
use pulsewatch_core::forecast::regular::{RegularStats, regularise};
use pulsewatch_core::forecast::{ForecastSettings, ModelKind, ProphetOptimizer};
use pulsewatch_core::nab::{Series, Ts, read_series};

/// Arguments of `pulsewatch forecast`.
#[derive(Debug, Clone, clap::Args)]
pub struct ForecastArgs {
    /// Series to forecast: `<category>/<file>.csv` under the corpus' data/ folder, or a path to a
    /// `timestamp,value` CSV file.
    #[arg(
        long,
        value_name = "KEY",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub series: Option<String>,
    /// Evaluate every series of the corpus (needs --holdout) and print a table per model.
    #[arg(long, requires = "holdout")]
    pub all: bool,
    /// Model: mstl, ets, prophet, snaive, smedian, theta, auto, or all (default: [forecast] model).
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,
    /// How far ahead to forecast, e.g. 6h, 1d (default: [forecast] horizon).
    #[arg(long, value_name = "DURATION")]
    pub horizon: Option<HumanDuration>,
    /// Fit on all but the last horizon and score the forecast on it.
    #[arg(long)]
    pub holdout: bool,
    /// With `--all`: drop the last DURATION of every series first, so the held-out horizon ends
    /// that much earlier (earlier origins, for choosing constants on data the reported figures
    /// do not use).
    #[arg(long, value_name = "DURATION", requires = "all")]
    pub before: Option<HumanDuration>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Corpus root (default: [data] dir).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
}

/// Runs `pulsewatch forecast`: prints [`output`].
pub fn run(args: &ForecastArgs, cfg: &Config) -> Result<()> {
    let text = output(args, cfg)?;
    print!("{text}");
    Ok(())
}

/// What `pulsewatch forecast` prints (text or JSON). Progress of `--all` goes to stderr.
pub fn output(args: &ForecastArgs, cfg: &Config) -> Result<String> {
    let mut settings = ForecastSettings::for_config(cfg)?;
    if let Some(h) = args.horizon {
        if h.is_zero() {
            bail!("--horizon must be longer than 0s");
        }
        settings.horizon = h.0;
    }
    let models = parse_models(args.model.as_deref(), settings.model)?;
    let root = args.data.clone().unwrap_or_else(|| cfg.data.dir.clone());
    if args.all {
        let before = args.before.map_or(0, |d| d.0.as_secs() as i64);
        let report = evaluate_corpus(&root, &settings, &models, before, true)?;
        return Ok(if args.json {
            serde_json::to_string_pretty(&report)? + "\n"
        } else {
            report.table()
        });
    }
    let key = args
        .series
        .as_deref()
        .ok_or_else(|| eyre!("give --series <category/file.csv> or --all --holdout"))?;
    let series = load_series(&root, key)?;
    let mut outputs = Vec::new();
    for &m in &models {
        outputs.push(forecast_one(&series, &settings, m, args.holdout)?);
    }
    if args.json {
        let json = if outputs.len() == 1 {
            serde_json::to_string_pretty(&outputs[0])?
        } else {
            serde_json::to_string_pretty(&outputs)?
        };
        return Ok(json + "\n");
    }
    let texts: Vec<String> = outputs.iter().map(SeriesOutput::text).collect();
    Ok(texts.join("\n"))
}

/// `--model`: one model, or `all`.
pub fn parse_models(arg: Option<&str>, default: ModelKind) -> Result<Vec<ModelKind>> {
    match arg.map(str::trim) {
        None => Ok(vec![default]),
        Some(s) if s.eq_ignore_ascii_case("all") => Ok(ModelKind::ALL.to_vec()),
        Some(s) => Ok(vec![s.parse().map_err(|e: String| eyre!("--model: {e}"))?]),
    }
}

/// Reads `key` as `<root>/data/<key>`, or as a path when that file exists.
pub fn load_series(root: &Path, key: &str) -> Result<Series> {
    let in_corpus = root.join("data").join(key);
    let path = if in_corpus.is_file() {
        in_corpus
    } else if Path::new(key).is_file() {
        PathBuf::from(key)
    } else {
        bail!(
            "no series {key:?}: neither {} nor {key} is a file (keys look like \
             realKnownCause/nyc_taxi.csv; set --data or [data] dir to the corpus root)",
            in_corpus.display()
        );
    };
    Ok(read_series(&path, key)?)
}

/// The result for one series and model, as printed.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesOutput {
    pub series: String,
    pub regularisation: RegularStats,
    pub forecast: Forecast,
    /// With `--holdout`: actual values per step (`null` where the tail has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<Vec<Option<f64>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<Accuracy>,
}

/// Forecasts (or, with `with_holdout`, evaluates) one series with one model.
pub fn forecast_one(
    s: &Series,
    settings: &ForecastSettings,
    model: ModelKind,
    with_holdout: bool,
) -> Result<SeriesOutput> {
    let ctx = || format!("forecasting {} with {model}", s.key);
    if with_holdout {
        let h = holdout(&s.timestamps, &s.values, settings, model).wrap_err_with(ctx)?;
        let stats = regularise(&s.timestamps, &s.values)
            .map(|r| r.stats)
            .unwrap_or_default();
        Ok(SeriesOutput {
            series: s.key.clone(),
            regularisation: stats,
            forecast: h.forecast,
            actual: Some(h.actual),
            accuracy: Some(h.accuracy),
        })
    } else {
        let reg = regularise(&s.timestamps, &s.values).wrap_err_with(ctx)?;
        let h = reg.steps_for(settings.horizon.as_secs());
        let fc = forecast(&reg, settings, model, h).wrap_err_with(ctx)?;
        Ok(SeriesOutput {
            series: s.key.clone(),
            regularisation: reg.stats,
            forecast: fc,
            actual: None,
            accuracy: None,
        })
    }
}

fn fmt_step(secs: i64) -> String {
    HumanDuration(Duration::from_secs(secs.max(0) as u64)).to_string()
}

/// Formats a number compactly: up to 6 significant digits.
fn num(v: f64) -> String {
    if v == 0.0 || (v.abs() >= 1e-3 && v.abs() < 1e7) {
        let digits = (6 - (v.abs().max(1e-300).log10().floor() as i32 + 1)).clamp(0, 6) as usize;
        format!("{v:.digits$}")
    } else {
        format!("{v:.4e}")
    }
}

impl SeriesOutput {
    /// The human-readable form.
    pub fn text(&self) -> String {
        use std::fmt::Write;
        let f = &self.forecast;
        let st = &self.regularisation;
        let mut o = String::new();
        let _ = writeln!(
            o,
            "series   {}: {} raw points, step {}{}",
            self.series,
            st.raw_points,
            fmt_step(f.step),
            describe_stats(st)
        );
        let _ = writeln!(
            o,
            "model    {} = {}; fitted on {} slots in {:.1} ms; {:.0} % interval",
            f.model,
            f.detail,
            f.history,
            f.fit_time.as_secs_f64() * 1e3,
            f.level * 100.0
        );
        if let Some(w) = &f.why {
            let _ = writeln!(o, "chosen   by {w}");
        }
        if let Some(n) = &f.note {
            let _ = writeln!(o, "note     {n}");
        }
        if let Some(a) = &self.accuracy {
            let _ = writeln!(
                o,
                "holdout  last {} ({} steps, {} scored): MAE {}  MASE {}  sMAPE {:.2} %  coverage {:.1} %",
                fmt_step(f.step * f.len() as i64),
                f.len(),
                a.n,
                num(a.mae),
                a.mase.map_or("n/a".to_string(), |m| format!("{m:.3}")),
                a.smape,
                a.coverage * 100.0
            );
            let _ = writeln!(
                o,
                "         (MASE scale: in-sample one-step naive MAE {})",
                num(a.naive_mae)
            );
        }
        let actual = self.actual.as_ref();
        let _ = write!(
            o,
            "{:<19}  {:>13}  {:>13}  {:>13}",
            "timestamp", "point", "lower", "upper"
        );
        if actual.is_some() {
            let _ = write!(o, "  {:>13}", "actual");
        }
        o.push('\n');
        for i in 0..f.len() {
            let _ = write!(
                o,
                "{}  {:>13}  {:>13}  {:>13}",
                Ts(f.timestamps[i]),
                num(f.point[i]),
                num(f.lower[i]),
                num(f.upper[i])
            );
            if let Some(a) = actual {
                let cell = a.get(i).copied().flatten().map_or("-".into(), num);
                let _ = write!(o, "  {cell:>13}");
            }
            o.push('\n');
        }
        o
    }
}

fn describe_stats(st: &RegularStats) -> String {
    let mut parts = Vec::new();
    if st.out_of_order > 0 {
        parts.push(format!("{} backwards step(s) sorted", st.out_of_order));
    }
    if st.merged_points > 0 {
        parts.push(format!(
            "{} point(s) averaged into shared slots",
            st.merged_points
        ));
    }
    if st.filled_linear > 0 {
        parts.push(format!("{} slot(s) filled linearly", st.filled_linear));
    }
    if st.filled_seasonal > 0 {
        parts.push(format!("{} slot(s) filled seasonally", st.filled_seasonal));
    }
    if st.dropped_points > 0 {
        parts.push(format!(
            "{} point(s) before a long gap dropped",
            st.dropped_points
        ));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

/// One series' held-out result in a corpus evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesScore {
    pub series: String,
    pub detail: Option<String>,
    pub accuracy: Option<Accuracy>,
    pub fit_secs: Option<f64>,
    pub error: Option<String>,
}

/// One model's corpus evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct ModelSummary {
    pub model: ModelKind,
    pub series: usize,
    pub failed: usize,
    pub median_mase: Option<f64>,
    /// Geometric mean over series of this model's MASE over seasonal naive's (`snaive`) on the
    /// same series (series where both are defined and positive); below 1 beats the baseline.
    pub relative_mase: Option<f64>,
    /// Skill against seasonal naive: 1 − `relative_mase` (0.15 = 15 % better).
    pub skill: Option<f64>,
    pub median_smape: Option<f64>,
    /// Share of all scored held-out points (pooled over series) inside the interval.
    pub coverage: Option<f64>,
    pub median_fit_secs: Option<f64>,
    pub total_fit_secs: f64,
    /// One-off optimizer start-up before the first fit (Prophet only).
    pub warm_up_secs: Option<f64>,
    pub results: Vec<SeriesScore>,
}

/// `forecast --all --holdout`.
#[derive(Debug, Clone, Serialize)]
pub struct CorpusReport {
    pub root: PathBuf,
    pub horizon_secs: u64,
    pub interval_width: f64,
    pub models: Vec<ModelSummary>,
}

/// Every `<root>/data/<category>/<file>.csv`, sorted by key.
pub fn corpus_keys(root: &Path) -> Result<Vec<(String, PathBuf)>> {
    let data = root.join("data");
    let mut out = Vec::new();
    let cats = std::fs::read_dir(&data).wrap_err_with(|| {
        format!(
            "no NAB corpus at {} (run `pulsewatch fetch-nab` or set --data / [data] dir)",
            root.display()
        )
    })?;
    for cat in cats {
        let cat = cat.wrap_err_with(|| format!("reading {}", data.display()))?;
        let cp = cat.path();
        if !cp.is_dir() {
            continue;
        }
        let cname = cat.file_name().to_string_lossy().into_owned();
        for f in std::fs::read_dir(&cp).wrap_err_with(|| format!("reading {}", cp.display()))? {
            let f = f.wrap_err_with(|| format!("reading {}", cp.display()))?;
            let name = f.file_name().to_string_lossy().into_owned();
            if name.ends_with(".csv") {
                out.push((format!("{cname}/{name}"), f.path()));
            }
        }
    }
    if out.is_empty() {
        bail!("no <category>/<file>.csv files under {}", data.display());
    }
    out.sort();
    Ok(out)
}

/// Held-out evaluation of every corpus series with each model, each series cut `before`
/// seconds before its last point first. `progress` prints one line per model to stderr.
pub fn evaluate_corpus(
    root: &Path,
    settings: &ForecastSettings,
    models: &[ModelKind],
    before: i64,
    progress: bool,
) -> Result<CorpusReport> {
    let keys = corpus_keys(root)?;
    let mut series = Vec::with_capacity(keys.len());
    for (key, path) in &keys {
        let mut s = read_series(path, key)?;
        if before > 0
            && let Some(&last) = s.timestamps.last()
        {
            let keep = s.timestamps.partition_point(|&t| t <= last - before);
            s.timestamps.truncate(keep);
            s.values.truncate(keep);
        }
        series.push(s);
    }
    let mut out = Vec::new();
    // The baseline's results, for skill (computed here unless snaive is among the models).
    let mut baseline: Option<Vec<SeriesScore>> = None;
    for &m in models {
        let t0 = Instant::now();
        let wasm = settings.prophet.optimizer == ProphetOptimizer::Wasmstan;
        let warm_up_secs = (m == ModelKind::Prophet && wasm).then(|| {
            let t = Instant::now();
            warm_up_prophet();
            t.elapsed().as_secs_f64()
        });
        let results = score_all(&series, settings, m);
        if m == ModelKind::SeasonalNaive {
            baseline = Some(results.clone());
        }
        let summary = summarise(m, results, warm_up_secs);
        if progress {
            eprintln!(
                "forecast: {m} done on {} series in {:.1?} ({} failed)",
                summary.series,
                t0.elapsed(),
                summary.failed
            );
        }
        out.push(summary);
    }
    let baseline = match baseline {
        Some(b) => b,
        None => score_all(&series, settings, ModelKind::SeasonalNaive),
    };
    for m in &mut out {
        m.relative_mase = relative_mase(&m.results, &baseline);
        m.skill = m.relative_mase.map(|r| 1.0 - r);
    }
    Ok(CorpusReport {
        root: root.to_path_buf(),
        horizon_secs: settings.horizon.as_secs(),
        interval_width: settings.interval_width,
        models: out,
    })
}

/// Held-out results of `model` on every series.
fn score_all(series: &[Series], settings: &ForecastSettings, model: ModelKind) -> Vec<SeriesScore> {
    series
        .iter()
        .map(
            |s| match holdout(&s.timestamps, &s.values, settings, model) {
                Ok(h) => SeriesScore {
                    series: s.key.clone(),
                    detail: Some(h.forecast.detail.clone()),
                    fit_secs: Some(h.forecast.fit_time.as_secs_f64()),
                    accuracy: Some(h.accuracy),
                    error: None,
                },
                Err(e) => SeriesScore {
                    series: s.key.clone(),
                    detail: None,
                    accuracy: None,
                    fit_secs: None,
                    error: Some(e.to_string()),
                },
            },
        )
        .collect()
}

/// Geometric mean of MASE ratios against the baseline, over series where both are positive.
fn relative_mase(results: &[SeriesScore], baseline: &[SeriesScore]) -> Option<f64> {
    let mase = |r: &SeriesScore| {
        r.accuracy
            .as_ref()
            .and_then(|a| a.mase)
            .filter(|&m| m > 0.0)
    };
    let logs: Vec<f64> = results
        .iter()
        .zip(baseline)
        .filter_map(|(r, b)| Some((mase(r)? / mase(b)?).ln()))
        .collect();
    (!logs.is_empty()).then(|| (logs.iter().sum::<f64>() / logs.len() as f64).exp())
}

fn summarise(
    model: ModelKind,
    results: Vec<SeriesScore>,
    warm_up_secs: Option<f64>,
) -> ModelSummary {
    let ok: Vec<&Accuracy> = results.iter().filter_map(|r| r.accuracy.as_ref()).collect();
    let (cov, n): (f64, usize) = ok
        .iter()
        .fold((0.0, 0), |(c, n), a| (c + a.coverage * a.n as f64, n + a.n));
    let fits: Vec<f64> = results.iter().filter_map(|r| r.fit_secs).collect();
    ModelSummary {
        model,
        series: results.len(),
        failed: results.iter().filter(|r| r.error.is_some()).count(),
        median_mase: median(ok.iter().filter_map(|a| a.mase)),
        relative_mase: None,
        skill: None,
        median_smape: median(ok.iter().map(|a| a.smape)),
        coverage: (n > 0).then(|| cov / n as f64),
        median_fit_secs: median(fits.iter().copied()),
        total_fit_secs: fits.iter().sum(),
        warm_up_secs,
        results,
    }
}

impl CorpusReport {
    /// The markdown table, then one line per failure.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut o = String::new();
        let _ = writeln!(
            o,
            "held-out evaluation: {} series, horizon {}, {:.0} % intervals (corpus {})\n",
            self.models.first().map_or(0, |m| m.series),
            HumanDuration::secs(self.horizon_secs),
            self.interval_width * 100.0,
            self.root.display()
        );
        let _ = writeln!(
            o,
            "| model | series | failed | MASE vs snaive (geo. mean) | skill % | median MASE | median sMAPE % | coverage % | median fit | total fit |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|");
        let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or("n/a".to_string(), f);
        for m in &self.models {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {}{} |",
                m.model,
                m.series,
                m.failed,
                opt(m.relative_mase, &|v| format!("{v:.3}")),
                opt(m.skill, &|v| format!("{:+.1}", v * 100.0)),
                opt(m.median_mase, &|v| format!("{v:.3}")),
                opt(m.median_smape, &|v| format!("{v:.2}")),
                opt(m.coverage, &|v| format!("{:.1}", v * 100.0)),
                opt(m.median_fit_secs, &|v| format!("{:.1} ms", v * 1e3)),
                format_args!("{:.2} s", m.total_fit_secs),
                m.warm_up_secs
                    .map_or(String::new(), |w| format!(" (+{w:.2} s optimizer start)"))
            );
        }
        o.push_str(
            "\nMASE: MAE / in-sample one-step naive MAE; MASE vs snaive: geometric mean over \
             series of the model's MASE over seasonal naive's on the same series, skill = 1 − \
             that; coverage: held-out points inside the interval, pooled over series.\n",
        );
        for m in &self.models {
            for r in &m.results {
                if let Some(e) = &r.error {
                    let _ = writeln!(o, "failed: {} {}: {e}", m.model, r.series);
                }
            }
        }
        o
    }
}
