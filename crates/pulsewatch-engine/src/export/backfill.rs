//! `pulsewatch backfill`: the NAB corpus with its original 2013–2015 timestamps, as Prometheus
//! blocks.
//!
//! The Pushgateway cannot carry timestamps (it rejects them) and Prometheus refuses remote-write
//! samples more than about an hour behind its head (see `../shared/docs/PROMETHEUS.md` §3), so
//! history goes the documented way: an OpenMetrics file with a timestamp on every sample, turned
//! into TSDB blocks by `promtool tsdb create-blocks-from openmetrics`. Blocks are cut at
//! `--max-block-duration` (720h by default: 17 blocks for two NAB series instead of 3,526 two-hour
//! blocks). Serve them with `--storage.tsdb.retention.time=100y` or more: Prometheus measures
//! retention from the newest block, so with live data beside them anything older than the
//! retention (15 days by default) is deleted at start.
//!
//! Metrics (labels `series`, `category`, `source="nab"`, `job="nab_backfill"`):
//! `pulsewatch_value`; with `--scores` the detector's causal `pulsewatch_anomaly_score` and
//! `pulsewatch_anomaly_flag` (label `detector`); with `--forecast` the rolling forecast
//! `pulsewatch_forecast_value` / `_lower` / `_upper` (label `model`): refitted once per horizon on
//! the points up to that moment only, so every forecast sample was made before the time it is for;
//! for a series with a capacity threshold (`[[forecast.thresholds]]`), also
//! `pulsewatch_forecast_threshold` (label `direction`) and
//! `pulsewatch_forecast_threshold_eta_seconds` (label `bound`), as the live gauges would have
//! read at each point (no sample where the forecast does not cross).
//!
//! Samples of a series are written in time order with duplicate timestamps dropped (promtool
//! silently drops out-of-order samples; NAB has a few duplicated and backwards timestamps).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use pulsewatch_core::config::DetectorConfig;
use pulsewatch_core::detect::DetectorKind;
use pulsewatch_core::domain::{Point, SourceKind};
use pulsewatch_core::forecast::capacity::Bound;
use pulsewatch_core::forecast::{ForecastSettings, SeriesForecast};
use pulsewatch_core::nab::Series;

use crate::engine::core::{Core, CoreSettings};
use crate::sources::replay;

/// What to write besides the values.
#[derive(Debug, Clone)]
pub struct BackfillOptions {
    /// Detector scores and flags.
    pub scores: Option<(DetectorKind, DetectorConfig, f64)>,
    /// Rolling forecasts.
    pub forecast: Option<ForecastSettings>,
}

fn escape(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// A series' labels, in order.
type Labels = Vec<(&'static str, String)>;
/// One family: `(labels, [(timestamp, value)])` per series.
type Family = Vec<(Labels, Vec<(i64, f64)>)>;
/// Every family by metric name, with its help text.
type Families = BTreeMap<&'static str, (&'static str, Family)>;

fn label_text(labels: &Labels) -> String {
    let parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    parts.join(",")
}

/// Time-ordered, deduplicated (last value of a timestamp wins), finite samples.
fn clean(mut samples: Vec<(i64, f64)>) -> Vec<(i64, f64)> {
    samples.retain(|(_, v)| v.is_finite());
    samples.sort_by_key(|s| s.0);
    let mut out: Vec<(i64, f64)> = Vec::with_capacity(samples.len());
    for s in samples {
        match out.last_mut() {
            Some(last) if last.0 == s.0 => *last = s,
            _ => out.push(s),
        }
    }
    out
}

fn write_family(
    w: &mut impl Write,
    name: &str,
    help: &str,
    fam: &Family,
) -> std::io::Result<usize> {
    writeln!(w, "# HELP {name} {help}")?;
    writeln!(w, "# TYPE {name} gauge")?;
    let mut n = 0;
    for (labels, samples) in fam {
        let labels = label_text(labels);
        for (t, v) in samples {
            writeln!(w, "{name}{{{labels}}} {v} {t}")?;
            n += 1;
        }
    }
    Ok(n)
}

/// Samples of one series, in time order.
type Samples = Vec<(i64, f64)>;

/// The rolling forecast of one series, as samples.
#[derive(Debug, Default)]
struct Rolling {
    point: Samples,
    lower: Samples,
    upper: Samples,
    /// With a capacity threshold for the series: its direction, the threshold at every point
    /// after the first fit, and the seconds to it per bound (counting down between fits, as the
    /// live gauge does; no sample where the forecast does not cross within the long horizon,
    /// since neither OpenMetrics blocks nor VictoriaMetrics' JSON import carry `+Inf`).
    capacity: Option<(&'static str, Samples, [Samples; 3])>,
}

/// The rolling forecast of one series: every `horizon`, a fit on the points up to then (as a
/// [`ForecastHistory`](pulsewatch_core::forecast::ForecastHistory) keeps them), giving (point,
/// lower, upper) samples for the next horizon, and the time to the series' threshold when one
/// is configured.
fn rolling_forecast(s: &Series, settings: &ForecastSettings) -> Rolling {
    let mut out = Rolling::default();
    let Some(&first) = s.timestamps.first() else {
        return out;
    };
    let horizon = settings.horizon.as_secs().max(1) as i64;
    // The long view serves only the time to a threshold: without one, the horizon alone.
    let threshold = settings.threshold_for(&s.key);
    let settings = &ForecastSettings {
        long_horizon: if threshold.is_some() {
            settings.long_horizon
        } else {
            std::time::Duration::ZERO
        },
        ..settings.clone()
    };
    // The threshold and the seconds to it per bound (filled only when `threshold` is set).
    let (mut thr, mut etas): (Samples, [Samples; 3]) = Default::default();
    let last = s.timestamps.iter().copied().max().unwrap_or(first);
    let points: Vec<Point> = s.points();
    // The first fit after two horizons of history.
    let mut cut = first + 2 * horizon;
    while cut < last {
        let end = s.timestamps.partition_point(|&t| t <= cut);
        // The forecast service's own fit, on the points up to `cut` only.
        let fit = SeriesForecast::fit(&s.key, &points[..end], settings);
        if let Some(f) = &fit.forecast {
            for (i, &t) in f.timestamps.iter().enumerate() {
                if t > cut && t <= cut + horizon {
                    out.point.push((t, f.point[i]));
                    out.lower.push((t, f.lower[i]));
                    out.upper.push((t, f.upper[i]));
                }
            }
        }
        if let Some(cap) = &fit.capacity {
            // What the live gauges would read at each later point until the next fit.
            for &t in s.timestamps[end..]
                .iter()
                .take_while(|&&t| t <= cut + horizon)
            {
                let now = t.max(cap.origin);
                thr.push((t, cap.threshold.value));
                for (b, samples) in Bound::ALL.into_iter().zip(etas.iter_mut()) {
                    if let Some(eta) = cap.eta(b, now) {
                        samples.push((t, eta as f64));
                    }
                }
            }
        }
        cut += horizon;
    }
    out.point = clean(out.point);
    out.lower = clean(out.lower);
    out.upper = clean(out.upper);
    out.capacity = threshold.map(|th| (th.direction.name(), clean(thr), etas.map(clean)));
    out
}

/// Writes `series` as OpenMetrics (ending with `# EOF`); returns the number of samples.
pub fn write_openmetrics(
    series: &[Series],
    opts: &BackfillOptions,
    w: &mut impl Write,
) -> std::io::Result<usize> {
    let fams = families(series, opts);
    let mut n = 0;
    for (name, (help, fam)) in &fams {
        n += write_family(w, name, help, fam)?;
    }
    writeln!(w, "# EOF")?;
    Ok(n)
}

/// Writes `series` in VictoriaMetrics' JSON line import format (`/api/v1/import`: one line per
/// series with `metric`, `values` and `timestamps` in milliseconds); returns the samples.
pub fn write_vm_import(
    series: &[Series],
    opts: &BackfillOptions,
    w: &mut impl Write,
) -> std::io::Result<usize> {
    let mut n = 0;
    for (name, (_, fam)) in &families(series, opts) {
        for (labels, samples) in fam {
            let mut metric = serde_json::Map::new();
            metric.insert("__name__".into(), (*name).into());
            for (k, v) in labels {
                metric.insert((*k).into(), v.clone().into());
            }
            let values: Vec<f64> = samples.iter().map(|s| s.1).collect();
            let timestamps: Vec<i64> = samples.iter().map(|s| s.0 * 1000).collect();
            let line = serde_json::json!({
                "metric": metric,
                "values": values,
                "timestamps": timestamps,
            });
            writeln!(w, "{line}")?;
            n += samples.len();
        }
    }
    Ok(n)
}

/// Sends `series` to a VictoriaMetrics at `base` (`POST <base>/api/v1/import`); returns the
/// samples sent. Errors name the URL and the HTTP status.
pub async fn import_to_victoria(
    series: &[Series],
    opts: &BackfillOptions,
    base: &str,
) -> Result<usize, String> {
    let mut body = Vec::new();
    let n = write_vm_import(series, opts, &mut body).map_err(|e| e.to_string())?;
    let url = format!("{}/api/v1/import", base.trim_end_matches('/'));
    let http = crate::http::client_builder()
        .timeout(std::time::Duration::from_secs(300))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let resp = http
        .post(&url)
        .body(body)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status();
    if !status.is_success() {
        let text = resp.text().await.unwrap_or_default();
        return Err(format!(
            "{url}: HTTP {status}: {}",
            text.chars().take(200).collect::<String>()
        ));
    }
    Ok(n)
}

/// The families of `series`: values, and scores/flags and rolling forecasts when asked for.
fn families(series: &[Series], opts: &BackfillOptions) -> Families {
    let mut fams: Families = BTreeMap::new();
    let mut add = |name: &'static str, help: &'static str, labels: Labels, s: Vec<(i64, f64)>| {
        fams.entry(name)
            .or_insert_with(|| (help, Vec::new()))
            .1
            .push((labels, s));
    };
    for s in series {
        let base: Labels = vec![
            ("series", s.name.clone()),
            ("category", s.category.clone()),
            ("source", "nab".into()),
            ("job", "nab_backfill".into()),
        ];
        let values: Vec<(i64, f64)> = s
            .timestamps
            .iter()
            .copied()
            .zip(s.values.iter().copied())
            .collect();
        add(
            "pulsewatch_value",
            "Value of the series at its original time.",
            base.clone(),
            clean(values),
        );
        if let Some((kind, cfg, threshold)) = &opts.scores {
            // Scored by the engine's core, as a live replay of the series would be.
            let mut core = Core::new(CoreSettings {
                source: SourceKind::Nab,
                detector: *kind,
                detector_cfg: cfg.clone(),
                threshold: *threshold,
                history: 1,
                store: None,
                events_keep: 1,
            });
            let scored = core.ingest(replay::info(s), &s.points(), false);
            let mut labels = base.clone();
            labels.push(("detector", kind.name().to_string()));
            let sc: Vec<(i64, f64)> = scored.iter().map(|p| (p.timestamp, p.score)).collect();
            let flags: Vec<(i64, f64)> = scored
                .iter()
                .map(|p| (p.timestamp, f64::from(u8::from(p.anomaly))))
                .collect();
            add(
                "pulsewatch_anomaly_score",
                "Anomaly score of the point, 0..1 (causal: from that point and earlier ones).",
                labels.clone(),
                clean(sc),
            );
            add(
                "pulsewatch_anomaly_flag",
                "1 when the point's anomaly score reached the threshold, else 0.",
                labels,
                clean(flags),
            );
        }
        if let Some(fs) = &opts.forecast {
            let r = rolling_forecast(s, fs);
            let mut labels = base.clone();
            labels.push(("model", fs.model.name().to_string()));
            add(
                "pulsewatch_forecast_value",
                "Rolling forecast made one horizon ahead at most.",
                labels.clone(),
                r.point,
            );
            add(
                "pulsewatch_forecast_lower",
                "Lower bound of the rolling forecast's prediction interval.",
                labels.clone(),
                r.lower,
            );
            add(
                "pulsewatch_forecast_upper",
                "Upper bound of the rolling forecast's prediction interval.",
                labels.clone(),
                r.upper,
            );
            if let Some((direction, thr, etas)) = r.capacity {
                let mut l = labels.clone();
                l.push(("direction", direction.to_string()));
                add(
                    "pulsewatch_forecast_threshold",
                    "Capacity threshold of the series (direction: above or below).",
                    l,
                    thr,
                );
                for (b, samples) in Bound::ALL.into_iter().zip(etas) {
                    let mut l = labels.clone();
                    l.push(("bound", b.name().to_string()));
                    add(
                        "pulsewatch_forecast_threshold_eta_seconds",
                        "Seconds until the rolling forecast crosses the series' threshold (bound: earliest, likely or latest; no sample: not within the long horizon).",
                        l,
                        samples,
                    );
                }
            }
        }
    }
    fams
}

/// What [`create_blocks`] did.
#[derive(Debug, Clone)]
pub struct BlocksReport {
    pub openmetrics: PathBuf,
    pub blocks_dir: PathBuf,
    pub samples: usize,
    pub blocks: usize,
}

/// Writes `<out>/nab.om` and runs `promtool tsdb create-blocks-from openmetrics` into `<out>`
/// (the folder a Prometheus can use as `--storage.tsdb.path`).
pub fn create_blocks(
    series: &[Series],
    opts: &BackfillOptions,
    out: &Path,
    promtool: &Path,
    max_block_duration: &str,
) -> Result<BlocksReport, String> {
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let om = out.join("nab.om");
    let file =
        std::fs::File::create(&om).map_err(|e| format!("cannot write {}: {e}", om.display()))?;
    let mut w = std::io::BufWriter::new(file);
    let samples = write_openmetrics(series, opts, &mut w)
        .and_then(|n| w.flush().map(|()| n))
        .map_err(|e| format!("cannot write {}: {e}", om.display()))?;
    drop(w);
    let output = Command::new(promtool)
        .args(["tsdb", "create-blocks-from"])
        .arg(format!("--max-block-duration={max_block_duration}"))
        .arg("openmetrics")
        .arg(&om)
        .arg(out)
        .output()
        .map_err(|e| {
            format!(
                "cannot run {} ({e}); install Prometheus' promtool (Debian: apt-get install \
                 prometheus) or pass --promtool PATH",
                promtool.display()
            )
        })?;
    if !output.status.success() {
        return Err(format!(
            "promtool tsdb create-blocks-from failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let blocks = std::fs::read_dir(out)
        .map_err(|e| format!("cannot list {}: {e}", out.display()))?
        .filter_map(Result::ok)
        .filter(|e| e.path().join("meta.json").is_file())
        .count();
    Ok(BlocksReport {
        openmetrics: om,
        blocks_dir: out.to_path_buf(),
        samples,
        blocks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series() -> Series {
        Series {
            key: "c/a.csv".into(),
            category: "c".into(),
            name: "a\"b".into(),
            timestamps: vec![100, 200, 200, 150, 300],
            values: vec![1.0, 2.0, 3.0, 9.0, f64::NAN],
        }
    }

    #[test]
    fn openmetrics_is_ordered_deduplicated_escaped_and_ends_with_eof() {
        let mut out = Vec::new();
        let n = write_openmetrics(
            &[series()],
            &BackfillOptions {
                scores: None,
                forecast: None,
            },
            &mut out,
        )
        .expect("write");
        let text = String::from_utf8(out).expect("utf8");
        assert_eq!(n, 3, "{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "# HELP pulsewatch_value Value of the series at its original time."
        );
        assert_eq!(lines[1], "# TYPE pulsewatch_value gauge");
        let l = r#"pulsewatch_value{series="a\"b",category="c",source="nab",job="nab_backfill"}"#;
        assert_eq!(lines[2], format!("{l} 1 100"));
        assert_eq!(lines[3], format!("{l} 9 150"));
        assert_eq!(
            lines[4],
            format!("{l} 3 200"),
            "last value of a duplicated time wins"
        );
        assert_eq!(lines.last(), Some(&"# EOF"));
    }

    #[test]
    fn scores_come_with_flags_per_point() {
        let s = Series {
            key: "c/b.csv".into(),
            category: "c".into(),
            name: "b".into(),
            timestamps: (0..50).map(|i| i * 60).collect(),
            values: (0..50).map(|i| (i % 5) as f64).collect(),
        };
        let mut out = Vec::new();
        let n = write_openmetrics(
            &[s],
            &BackfillOptions {
                scores: Some((DetectorKind::Null, DetectorConfig::default(), 0.5)),
                forecast: None,
            },
            &mut out,
        )
        .expect("write");
        let text = String::from_utf8(out).expect("utf8");
        assert_eq!(n, 150);
        assert_eq!(text.matches("pulsewatch_anomaly_flag{").count(), 50);
        assert!(text.contains(r#"detector="null"} 0.5 0"#), "{text}");
        assert!(text.contains(r#"pulsewatch_anomaly_flag{series="b",category="c",source="nab",job="nab_backfill",detector="null"} 1 60"#));
    }

    /// A disk filling at 0.06 a day from 0.5 (5-minute points, four days, small noise) with a
    /// threshold of 0.9: the rolling forecast (refitted daily from day 2) writes the time to
    /// it at every later point, counting down towards the true crossing; a series without a
    /// threshold gets no capacity samples.
    #[test]
    fn rolling_forecast_writes_the_time_to_a_threshold_as_the_live_gauge_reads_it() {
        use pulsewatch_core::config::{ForecastConfig, ThresholdConfig};
        use pulsewatch_core::domain::ModelKind;
        let step = 300;
        let rate = 0.06 / 86_400.0;
        let t0 = 1_400_000_000;
        let n = 4 * 288;
        let disk = Series {
            key: "c/disk_used.csv".into(),
            category: "c".into(),
            name: "disk_used".into(),
            timestamps: (0..n).map(|i| t0 + i * step).collect(),
            values: (0..n)
                .map(|i| 0.5 + rate * (i * step) as f64 + 0.002 * ((i * 7919 % 13) as f64 - 6.0))
                .collect(),
        };
        let truth = t0 + (0.4 / rate).round() as i64;
        let mut cfg = ForecastConfig {
            model: ModelKind::Theta,
            ..ForecastConfig::default()
        };
        cfg.thresholds.push(ThresholdConfig {
            series: "c/disk_used*".into(),
            above: Some(0.9),
            below: None,
        });
        let settings = ForecastSettings::from_config(&cfg).expect("valid");
        let r = rolling_forecast(&disk, &settings);
        let (direction, thr, etas) = r.capacity.expect("a threshold matched");
        assert_eq!(direction, "above");
        // Fits at the end of days 2 and 3; samples at every point after the first fit.
        let after: Vec<i64> = disk
            .timestamps
            .iter()
            .copied()
            .filter(|&t| t > t0 + 2 * 86_400)
            .collect();
        assert_eq!(thr.len(), after.len());
        assert!(thr.iter().all(|&(_, v)| v == 0.9));
        let [earliest, likely, latest] = etas;
        assert_eq!(likely.len(), after.len(), "the trend crosses within 7 days");
        for (i, &(t, eta)) in likely.iter().enumerate() {
            assert_eq!(t, after[i]);
            let want = (truth - t) as f64;
            assert!(
                (eta / want - 1.0).abs() < 0.10,
                "at {t}: likely ETA {eta} s, truth {want} s"
            );
        }
        // Counting down between fits: one step less per point.
        assert_eq!(likely[1].1, likely[0].1 - step as f64);
        for (t, e) in &earliest {
            let l = likely.iter().find(|s| s.0 == *t).expect("same times");
            assert!(*e <= l.1, "earliest {e} after likely {}", l.1);
        }
        for (t, e) in &latest {
            let l = likely.iter().find(|s| s.0 == *t).expect("same times");
            assert!(*e >= l.1, "latest {e} before likely {}", l.1);
        }
        // The OpenMetrics text carries them with their labels; a series without a rule does not.
        let other = Series {
            key: "c/cpu.csv".into(),
            name: "cpu".into(),
            ..disk.clone()
        };
        let mut out = Vec::new();
        write_openmetrics(
            &[disk, other],
            &BackfillOptions {
                scores: None,
                forecast: Some(settings),
            },
            &mut out,
        )
        .expect("write");
        let text = String::from_utf8(out).expect("utf8");
        let first = format!(
            r#"pulsewatch_forecast_threshold_eta_seconds{{series="disk_used",category="c",source="nab",job="nab_backfill",model="theta",bound="likely"}} {} {}"#,
            likely[0].1, likely[0].0
        );
        assert!(text.contains(&first), "{first}");
        assert!(text.contains(r#"pulsewatch_forecast_threshold{series="disk_used",category="c",source="nab",job="nab_backfill",model="theta",direction="above"} 0.9 "#));
        assert!(!text.contains(r#"pulsewatch_forecast_threshold_eta_seconds{series="cpu""#));
        assert!(text.contains(r#"pulsewatch_forecast_value{series="cpu""#));
    }
}
