//! The exported metric set, built on the `prometheus` crate's registry and text encoder.
//!
//! Names follow the Prometheus naming guide (application prefix, base units, `_total` counters,
//! `_info` and `_timestamp_seconds` suffixes) and pass `promtool check metrics` (a test runs it).
//! Every series-level metric carries `series`, `category` and `source`; scores add `detector`,
//! forecasts add `model`.
//!
//! | metric | type | meaning |
//! |---|---|---|
//! | `pulsewatch_value` | gauge | latest value of the series |
//! | `pulsewatch_anomaly_score` | gauge | latest anomaly score, 0..1 |
//! | `pulsewatch_anomaly_flag` | gauge | 1 when the latest score reached the threshold |
//! | `pulsewatch_anomaly_threshold` | gauge | the threshold in use, per detector |
//! | `pulsewatch_forecast_value` / `_lower` / `_upper` | gauge | forecast point and band for the latest point |
//! | `pulsewatch_forecast_threshold` | gauge | the capacity threshold of the series, `direction` = above or below |
//! | `pulsewatch_forecast_threshold_eta_seconds` | gauge | time until the forecast crosses it, `bound` = earliest, likely, latest (`+Inf`: not within the long horizon; 0: reached) |
//! | `pulsewatch_points_ingested_total` | counter | points scored since start |
//! | `pulsewatch_anomalies_total` | counter | points flagged since start |
//! | `pulsewatch_point_timestamp_seconds` | gauge | original time of the latest point (replays: 2013-2015) |
//! | `pulsewatch_series_stale` | gauge | 1 when the source stopped reporting the series |
//! | `pulsewatch_model_fit_duration_seconds` | gauge | duration of the latest fit, `kind` = detector or forecast |
//! | `pulsewatch_model_info` | gauge (1) | detector and forecast model fitted per series |
//! | `pulsewatch_source_up` | gauge | 1 when the source's last read succeeded |
//! | `pulsewatch_source_poll_duration_seconds` | gauge | how long the source's latest read took (PromQL) |
//! | `pulsewatch_build_info` | gauge (1) | version of pulsewatch |
//!
//! The metrics are a pure function of a [`Snapshot`]: a fresh registry per render, so vanished
//! series disappear and the pushed group always matches the snapshot.

use prometheus::{Encoder, GaugeVec, IntCounterVec, Opts, Registry, TextEncoder};

use pulsewatch_core::forecast::capacity::Bound;

use crate::engine::state::Snapshot;

const SERIES: [&str; 3] = ["series", "category", "source"];
const SCORED: [&str; 4] = ["series", "category", "source", "detector"];
const FORECAST: [&str; 4] = ["series", "category", "source", "model"];
const ETA: [&str; 5] = ["series", "category", "source", "model", "bound"];
const THRESHOLD: [&str; 5] = ["series", "category", "source", "model", "direction"];
const FIT: [&str; 5] = ["series", "category", "source", "kind", "model"];
const INFO: [&str; 5] = ["series", "category", "source", "detector", "forecast"];

fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<GaugeVec> {
    let g = GaugeVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(g.clone()))?;
    Ok(g)
}

fn counter(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

/// A registry holding the metrics of `snap`.
pub fn registry(snap: &Snapshot) -> prometheus::Result<Registry> {
    let r = Registry::new();
    let value = gauge(
        &r,
        "pulsewatch_value",
        "Latest value of the series.",
        &SERIES,
    )?;
    let score = gauge(
        &r,
        "pulsewatch_anomaly_score",
        "Anomaly score of the latest point, 0 (normal) to 1 (certainly anomalous).",
        &SCORED,
    )?;
    let flag = gauge(
        &r,
        "pulsewatch_anomaly_flag",
        "1 when the latest point's anomaly score reached the threshold, else 0.",
        &SCORED,
    )?;
    let threshold = gauge(
        &r,
        "pulsewatch_anomaly_threshold",
        "Anomaly score at which a point is flagged.",
        &["source", "detector"],
    )?;
    let fc_point = gauge(
        &r,
        "pulsewatch_forecast_value",
        "Forecast for the latest point of the series.",
        &FORECAST,
    )?;
    let fc_lower = gauge(
        &r,
        "pulsewatch_forecast_lower",
        "Lower bound of the forecast's prediction interval for the latest point.",
        &FORECAST,
    )?;
    let fc_upper = gauge(
        &r,
        "pulsewatch_forecast_upper",
        "Upper bound of the forecast's prediction interval for the latest point.",
        &FORECAST,
    )?;
    let fc_threshold = gauge(
        &r,
        "pulsewatch_forecast_threshold",
        "Capacity threshold of the series (direction: above or below).",
        &THRESHOLD,
    )?;
    let fc_eta = gauge(
        &r,
        "pulsewatch_forecast_threshold_eta_seconds",
        "Seconds until the forecast crosses the series' threshold (bound: earliest, likely or latest; +Inf: not within the long horizon).",
        &ETA,
    )?;
    let ingested = counter(
        &r,
        "pulsewatch_points_ingested_total",
        "Points ingested and scored since start.",
        &SERIES,
    )?;
    let anomalies = counter(
        &r,
        "pulsewatch_anomalies_total",
        "Points flagged anomalous since start.",
        &SCORED,
    )?;
    let ts = gauge(
        &r,
        "pulsewatch_point_timestamp_seconds",
        "Original time of the latest point (for a replay, its time in the recorded data).",
        &SERIES,
    )?;
    let stale = gauge(
        &r,
        "pulsewatch_series_stale",
        "1 when the source no longer reports the series, else 0.",
        &SERIES,
    )?;
    let fit = gauge(
        &r,
        "pulsewatch_model_fit_duration_seconds",
        "Duration of the latest model fit (kind: detector or forecast).",
        &FIT,
    )?;
    let info = gauge(
        &r,
        "pulsewatch_model_info",
        "Models in use per series (always 1).",
        &INFO,
    )?;
    let up = gauge(
        &r,
        "pulsewatch_source_up",
        "1 when the source's latest read succeeded, else 0.",
        &["source"],
    )?;
    let poll = gauge(
        &r,
        "pulsewatch_source_poll_duration_seconds",
        "How long the source's latest read took (polling sources).",
        &["source"],
    )?;
    let build = gauge(
        &r,
        "pulsewatch_build_info",
        "pulsewatch build (always 1).",
        &["version"],
    )?;
    build
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1.0);
    let source = snap.source.name();
    let det = snap.detector.as_str();
    threshold
        .with_label_values(&[source, det])
        .set(snap.threshold);
    if let Some(s) = &snap.status {
        up.with_label_values(&[source])
            .set(f64::from(u8::from(s.healthy)));
        if let Some(secs) = s.poll_seconds {
            poll.with_label_values(&[source]).set(secs);
        }
    }
    for s in &snap.series {
        let base = [s.info.name.as_str(), s.info.category.as_str(), source];
        let scored = [base[0], base[1], source, det];
        ingested.with_label_values(&base).inc_by(s.ingested);
        anomalies.with_label_values(&scored).inc_by(s.anomalies);
        stale
            .with_label_values(&base)
            .set(f64::from(u8::from(s.stale)));
        if let Some(p) = s.last() {
            value.with_label_values(&base).set(p.value);
            score.with_label_values(&scored).set(p.score);
            flag.with_label_values(&scored)
                .set(f64::from(u8::from(p.anomaly)));
            ts.with_label_values(&base).set(p.timestamp as f64);
        }
        if let Some(d) = s.detector_fit {
            fit.with_label_values(&[base[0], base[1], source, "detector", det])
                .set(d.as_secs_f64());
        }
        let mut detail = String::new();
        if let Some(f) = s.forecast.as_ref().and_then(|f| f.forecast.as_ref()) {
            let model = f.model.name();
            detail = f.detail.clone();
            fit.with_label_values(&[base[0], base[1], source, "forecast", model])
                .set(f.fit_time.as_secs_f64());
            if let Some(e) = s.expectation() {
                let l = [base[0], base[1], source, model];
                fc_point.with_label_values(&l).set(e.point);
                fc_lower.with_label_values(&l).set(e.lower);
                fc_upper.with_label_values(&l).set(e.upper);
            }
            if let Some((cap, now)) = s.capacity() {
                let dir = cap.threshold.direction.name();
                fc_threshold
                    .with_label_values(&[base[0], base[1], source, model, dir])
                    .set(cap.threshold.value);
                for b in Bound::ALL {
                    let eta = cap.eta(b, now).map_or(f64::INFINITY, |e| e as f64);
                    fc_eta
                        .with_label_values(&[base[0], base[1], source, model, b.name()])
                        .set(eta);
                }
            }
        }
        info.with_label_values(&[base[0], base[1], source, det, &detail])
            .set(1.0);
    }
    Ok(r)
}

/// The metrics of `snap` in Prometheus' text exposition format.
pub fn render(snap: &Snapshot) -> Result<String, String> {
    let r = registry(snap).map_err(|e| format!("cannot build the metrics: {e}"))?;
    let mut out = Vec::with_capacity(256 * (snap.series.len() + 4));
    TextEncoder::new()
        .encode(&r.gather(), &mut out)
        .map_err(|e| format!("cannot encode the metrics: {e}"))?;
    String::from_utf8(out).map_err(|e| format!("metrics are not UTF-8: {e}"))
}

/// Content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
