//! Fuzz entry points: one per input that reaches pulsewatch from outside.
//!
//! Each function takes arbitrary bytes, runs the real parser on them and panics only when an
//! invariant breaks (a parser panic counts). They are shared by the cargo-fuzz targets in `fuzz/`
//! (coverage-guided, run locally) and by `tests/fuzz_properties.rs` (the committed seeds, every
//! crash found so far, and proptest-generated inputs, run in CI).
//!
//! | target           | input                                      | invariants checked                                   |
//! |------------------|--------------------------------------------|------------------------------------------------------|
//! | `nab_csv`        | a NAB data file                            | error names file:line; rows finite, columns aligned  |
//! | `labels_json`    | a NAB windows file, resolved against data  | error names the file; windows ordered, rows in range |
//! | `config_toml`    | `config.toml`, then every validator        | error names the file; accepted configs round-trip    |
//! | `query_range`    | a Prometheus `query_range` answer          | error names the query; samples finite                |
//! | `grouping_key`   | Pushgateway job and grouping label values  | the URL decodes (as Pushgateway 1.5.1 does) to input |

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;

use crate::config::{Config, NamedQuery};
use crate::nab::{self, Series};
use crate::prom::{group_url, parse_query_range};

const CSV_PATH: &str = "fuzz/data/x/input.csv";
const LABELS_PATH: &str = "fuzz/labels/input.json";
const CONFIG_PATH: &str = "fuzz/config.toml";
const PROM_URL: &str = "http://127.0.0.1:9/api/v1/query_range";

/// NAB data CSV: `parse_series_csv` either gives aligned, finite rows or one error that names the
/// file and a line.
pub fn nab_csv(data: &[u8]) {
    let path = Path::new(CSV_PATH);
    match nab::parse_series_csv(data, path) {
        Ok((ts, vs)) => {
            assert_eq!(ts.len(), vs.len(), "timestamps and values differ in length");
            assert!(!vs.is_empty(), "accepted a file without rows");
            assert!(
                vs.iter().all(|v| v.is_finite()),
                "accepted a non-finite value"
            );
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.starts_with(&format!("{CSV_PATH}:")),
                "error does not name the file and line: {msg}"
            );
        }
    }
}

/// A small fixed series the labels target resolves windows against (5-minute steps).
fn labels_series() -> Series {
    let t0 = 1_388_534_400; // 2014-01-01 00:00:00
    let timestamps: Vec<i64> = (0..64).map(|i| t0 + i * 300).collect();
    Series {
        key: "x/input.csv".into(),
        category: "x".into(),
        name: "input".into(),
        values: timestamps.iter().map(|&t| (t % 7) as f64).collect(),
        timestamps,
    }
}

/// NAB windows JSON: parsed, then each key's windows resolved against a fixed series. Errors
/// name the file; resolved windows are ordered, disjoint and inside the data.
pub fn labels_json(data: &[u8]) {
    let path = Path::new(LABELS_PATH);
    let Ok(text) = std::str::from_utf8(data) else {
        return; // the reader reports non-UTF-8 as an I/O error naming the file
    };
    let parsed = match nab::parse_windows(text, path) {
        Ok(p) => p,
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.starts_with(LABELS_PATH),
                "error does not name the file: {msg}"
            );
            return;
        }
    };
    let series = labels_series();
    for (key, raw) in &parsed {
        assert!(
            raw.iter().all(|w| w.start <= w.end),
            "window with start after end"
        );
        match nab::resolve_windows(&series, raw, path, key) {
            Ok(ws) => {
                for pair in ws.windows(2) {
                    assert!(pair[0].last_row < pair[1].first_row, "overlapping windows");
                }
                for w in &ws {
                    assert!(w.first_row <= w.last_row && w.last_row < series.len());
                }
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.starts_with(LABELS_PATH),
                    "error does not name the file: {msg}"
                );
                assert!(
                    msg.contains(&format!("{key:?}")),
                    "error does not name the key: {msg}"
                );
            }
        }
    }
}

/// `config.toml`: parsed, then run through every validator the program runs at start. Errors
/// from the parser name the file; a config every validator accepts survives a round trip through
/// `print-config` unchanged.
pub fn config_toml(data: &[u8]) {
    let path = Path::new(CONFIG_PATH);
    let Ok(text) = std::str::from_utf8(data) else {
        return; // read_to_string reports non-UTF-8 naming the file
    };
    let cfg = match Config::from_toml(text, path) {
        Ok(c) => c,
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.starts_with(CONFIG_PATH),
                "error does not name the file: {msg}"
            );
            return;
        }
    };
    if validate(&cfg).is_err() {
        return;
    }
    let printed = cfg.to_toml();
    let again = Config::from_toml(&printed, path)
        .unwrap_or_else(|e| panic!("print-config output does not parse: {e}\n{printed}"));
    assert!(
        again == cfg,
        "config changed in a round trip:\n{printed}\nfrom\n{text}"
    );
}

/// Every check the program makes on a config before it starts ([`Config::validate`]).
pub fn validate(cfg: &Config) -> Result<(), String> {
    cfg.validate()
}

/// A Prometheus `query_range` answer. The first byte picks the HTTP status, the rest is the body.
/// Accepted answers hold finite samples only; errors name the query.
pub fn query_range(data: &[u8]) {
    let (status, body) = match data.split_first() {
        Some((&b, rest)) => (
            [200, 200, 200, 400, 422, 500, 503, 302][usize::from(b % 8)],
            rest,
        ),
        None => (200, data),
    };
    let q = NamedQuery::new("fuzz", "up");
    match parse_query_range(&q, PROM_URL, status, body) {
        Ok(series) => {
            assert!(
                (200..300).contains(&status),
                "accepted an HTTP {status} answer"
            );
            for s in series {
                assert!(
                    s.info.id.starts_with("fuzz"),
                    "series id lost the query name"
                );
                assert!(s.points.iter().all(|p| p.value.is_finite()));
            }
        }
        Err(msg) => assert!(
            msg.starts_with("query \"fuzz\""),
            "error does not name the query: {msg}"
        ),
    }
}

/// Pushgateway grouping key: bytes split at NUL into a job and label values. The URL we build
/// must parse as a URL without changing its path, and decode, as Pushgateway 1.5.1 decodes it,
/// to exactly the job and values we started from.
pub fn grouping_key(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let job = parts.next().unwrap_or_default().to_string();
    if job.trim().is_empty() {
        return; // Pusher::new refuses an empty job before any URL is built
    }
    let names = ["source", "instance", "le", "a_b"];
    let values: Vec<String> = parts.take(names.len()).map(str::to_string).collect();
    let grouping: Vec<(&str, &str)> = names
        .iter()
        .copied()
        .zip(values.iter().map(String::as_str))
        .collect();
    let base = "http://127.0.0.1:9091";
    let url = group_url(base, &job, &grouping);
    let parsed = url::Url::parse(&url).unwrap_or_else(|e| panic!("{url}: not a URL: {e}"));
    let path = url.strip_prefix(base).unwrap_or(&url);
    assert_eq!(parsed.path(), path, "URL parsing rewrote the path of {url}");
    let decoded = decode_grouping_path(path)
        .unwrap_or_else(|e| panic!("Pushgateway would reject {url}: {e}"));
    let mut expected = BTreeMap::new();
    expected.insert("job".to_string(), job.clone());
    for (k, v) in &grouping {
        expected.insert(k.to_string(), v.to_string());
    }
    assert_eq!(decoded, expected, "grouping key does not round-trip: {url}");
}

/// Decodes `/metrics/job/<job>{/<label>/<value>}` the way Pushgateway 1.5.1 does
/// (`handler.splitLabels`): `@base64` names take URL-safe base64, padding optional, `=` is empty.
pub fn decode_grouping_path(path: &str) -> Result<BTreeMap<String, String>, String> {
    let rest = path
        .strip_prefix("/metrics/")
        .ok_or_else(|| format!("{path} does not start with /metrics/"))?;
    let segs: Vec<&str> = rest.split('/').collect();
    if !segs.len().is_multiple_of(2) {
        return Err(format!("odd number of segments in {path}"));
    }
    let mut out = BTreeMap::new();
    for pair in segs.chunks(2) {
        let (name, raw) = (pair[0], pair[1]);
        let (name, value) = match name.strip_suffix("@base64") {
            Some(n) => {
                let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(raw.trim_end_matches('='))
                    .map_err(|e| format!("bad base64 {raw:?}: {e}"))?;
                let v = String::from_utf8(bytes).map_err(|_| "value is not UTF-8".to_string())?;
                (n, v)
            }
            None => {
                // Pushgateway path-unescapes plain values; ours must need no escaping at all.
                if raw.is_empty() || raw.contains(['%', '?', '#']) {
                    return Err(format!("plain value {raw:?} needs escaping"));
                }
                (name, raw.to_string())
            }
        };
        if name.is_empty() || out.insert(name.to_string(), value).is_some() {
            return Err(format!("empty or repeated label name {name:?}"));
        }
    }
    if !out.contains_key("job") || out["job"].is_empty() {
        return Err("job missing or empty".into());
    }
    Ok(out)
}
