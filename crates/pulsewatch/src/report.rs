//! Report printers for `--once`: the summary table and the `--json` document (schema
//! [`ONCE_SCHEMA`], documented in the README).

use serde_json::{Value, json};

use pulsewatch_engine::services::OnceReport;

/// `schema` field of `--once --json`.
pub const ONCE_SCHEMA: &str = "pulsewatch.once/v1";

use pulsewatch_core::num::compact as fmt_num;

/// The summary table.
pub fn table(report: &OnceReport) -> String {
    let s = &report.snapshot;
    let mut out = String::new();
    let w = s
        .series
        .iter()
        .map(|v| v.info.name.chars().count())
        .max()
        .unwrap_or(6)
        .clamp(6, 60);
    out.push_str(&format!(
        "{:<w$}  {:<22}  {:>7}  {:>5}  {:>11}  {:>5}  {:>1}  {}\n",
        "series", "category", "points", "anom", "value", "score", "!", "forecast [lower, upper]"
    ));
    for v in &s.series {
        let (val, score, flag) = v.last().map_or(("-".into(), "-".into(), " "), |p| {
            (
                fmt_num(p.value),
                format!("{:.3}", p.score),
                if p.anomaly { "!" } else { " " },
            )
        });
        let fc = v.expectation().map_or_else(
            || {
                v.forecast
                    .as_ref()
                    .and_then(|f| f.error.clone())
                    .map_or("-".to_string(), |e| format!("none: {e}"))
            },
            |e| {
                format!(
                    "{} [{}, {}]",
                    fmt_num(e.point),
                    fmt_num(e.lower),
                    fmt_num(e.upper)
                )
            },
        );
        let fc = match v.capacity() {
            Some((cap, now)) => format!("{fc} · {}", cap.describe(now)),
            None => fc,
        };
        let cat: String = v.info.category.chars().take(22).collect();
        out.push_str(&format!(
            "{:<w$}  {:<22}  {:>7}  {:>5}  {:>11}  {:>5}  {}  {}\n",
            v.info.name, cat, v.ingested, v.anomalies, val, score, flag, fc
        ));
    }
    out.push_str(&format!(
        "\n{} series, {} points, {} flagged by {} at threshold {}; forecasts: {}\n",
        s.series.len(),
        s.ingested(),
        s.anomalies(),
        s.detector,
        s.threshold,
        if s.forecast_model.is_empty() {
            "off"
        } else {
            &s.forecast_model
        }
    ));
    for e in &report.source_errors {
        out.push_str(&format!("source error: {e}\n"));
    }
    for q in &report.empty_queries {
        out.push_str(&format!("query {q:?} returned no series\n"));
    }
    match &report.push {
        None => out.push_str("push: off ([pushgateway] url is empty)\n"),
        Some(p) => match &p.result {
            Ok(n) => out.push_str(&format!(
                "pushed to {} in {:.0} ms ({n} attempt{})\n",
                p.url,
                p.seconds * 1000.0,
                if *n == 1 { "" } else { "s" }
            )),
            Err(e) => out.push_str(&format!("push FAILED: {e}\n")),
        },
    }
    out
}

/// The `--json` document (schema [`ONCE_SCHEMA`]).
pub fn json(report: &OnceReport) -> Value {
    let s = &report.snapshot;
    let series: Vec<Value> = s
        .series
        .iter()
        .map(|v| {
            json!({
                "id": v.info.id,
                "name": v.info.name,
                "category": v.info.category,
                "points": v.ingested,
                "anomalies": v.anomalies,
                "last": v.last().map(|p| json!({
                    "timestamp": p.timestamp,
                    "value": p.value,
                    "score": p.score,
                    "anomaly": p.anomaly,
                })),
                "forecast": v.expectation(),
                "capacity": v.capacity_json(),
                "forecast_error": v.forecast.as_ref().and_then(|f| f.error.clone()),
            })
        })
        .collect();
    json!({
        "schema": ONCE_SCHEMA,
        "source": s.source,
        "detector": s.detector,
        "threshold": s.threshold,
        "forecast_model": s.forecast_model,
        "status": s.status,
        "source_errors": report.source_errors,
        "empty_queries": report.empty_queries,
        "exit_code": report.exit_code(),
        "push": report.push.as_ref().map(|p| json!({
            "url": p.url,
            "pushed": p.result.is_ok(),
            "attempts": p.result.as_ref().ok(),
            "seconds": p.seconds,
            "error": p.result.as_ref().err(),
        })),
        "totals": {
            "series": s.series.len(),
            "points": s.ingested(),
            "anomalies": s.anomalies(),
        },
        "series": series,
        "events": s
            .events_newest_first()
            .iter()
            .filter_map(|e| serde_json::to_value(e.as_ref()).ok())
            .collect::<Vec<Value>>(),
    })
}
