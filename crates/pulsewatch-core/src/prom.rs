//! Prometheus wire formats, without any I/O: `query_range` answers turned into series, and the
//! Pushgateway's grouping-key paths (with `@base64` where a value needs it). The engine's
//! PromQL source and pusher speak HTTP around these; the fuzz targets feed them directly.

use std::borrow::Cow;
use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;

use crate::config::NamedQuery;
use crate::domain::{Point, SeriesInfo, SourceKind};

#[derive(Deserialize)]
struct Answer<'a> {
    status: String,
    #[serde(default, borrow)]
    data: Option<Data<'a>>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(rename = "resultType")]
    result_type: String,
    #[serde(borrow)]
    result: Vec<Matrix<'a>>,
}

/// One result series. Samples are parsed straight into points as they are read (no string per
/// sample: a 10,000-series answer is millions of them).
#[derive(Deserialize)]
struct Matrix<'a> {
    #[serde(borrow)]
    metric: BTreeMap<Cow<'a, str>, Cow<'a, str>>,
    #[serde(deserialize_with = "samples")]
    values: Vec<Point>,
}

/// `[[<unix seconds>, "<value>"], ...]` as points; non-finite samples are dropped.
fn samples<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Point>, D::Error> {
    struct Samples;
    impl<'de> serde::de::Visitor<'de> for Samples {
        type Value = Vec<Point>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of [timestamp, \"value\"] pairs")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Vec<Point>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
            while let Some((t, v)) = seq.next_element::<(f64, Cow<'de, str>)>()? {
                if let Ok(value) = v.parse::<f64>()
                    && value.is_finite()
                    && t.is_finite()
                {
                    out.push(Point {
                        timestamp: t as i64,
                        value,
                    });
                }
            }
            Ok(out)
        }
    }
    d.deserialize_seq(Samples)
}

/// One result series of a query.
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySeries {
    pub info: SeriesInfo,
    pub points: Vec<Point>,
}

/// `<name>{k="v",...}` (labels sorted, `__name__` left out; `<name>` alone without labels).
pub fn series_id(name: &str, labels: &BTreeMap<String, String>) -> String {
    let body: Vec<String> = labels
        .iter()
        .filter(|(k, _)| k.as_str() != "__name__")
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    if body.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{}}}", body.join(","))
    }
}

/// The labels of a [`series_id`] (`name{k="v",...}`), in order; none for a plain name. Values
/// are unescaped (`\"`, `\\`, `\n`, `\t`, `\r`, `\u{..}`) as `series_id` escaped them.
pub fn series_labels(id: &str) -> Vec<(String, String)> {
    let Some(open) = id.find('{') else {
        return Vec::new();
    };
    let body = id[open + 1..].strip_suffix('}').unwrap_or(&id[open + 1..]);
    let mut out = Vec::new();
    let mut chars = body.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        if key.is_empty() || chars.next() != Some('"') {
            return out;
        }
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some('t') => value.push('\t'),
                    Some('r') => value.push('\r'),
                    Some('u') => {
                        let hex: String = chars
                            .by_ref()
                            .skip_while(|&c| c == '{')
                            .take_while(|&c| c != '}')
                            .collect();
                        if let Some(ch) =
                            u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32)
                        {
                            value.push(ch);
                        }
                    }
                    Some(other) => value.push(other),
                    None => {}
                },
                c => value.push(c),
            }
        }
        out.push((key.trim_start_matches(',').to_string(), value));
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
}

/// Turns a `query_range` answer (HTTP status and body) into series. Errors name the query and,
/// for answers that are not Prometheus JSON, the URL. Non-finite samples are dropped.
pub fn parse_query_range(
    q: &NamedQuery,
    url: &str,
    status: u16,
    body: &[u8],
) -> Result<Vec<QuerySeries>, String> {
    let status = http::StatusCode::from_u16(status)
        .map(|s| s.to_string())
        .unwrap_or_else(|_| status.to_string());
    let ok = status.starts_with('2');
    let answer: Answer = serde_json::from_slice(body).map_err(|_| {
        let text = String::from_utf8_lossy(body);
        let snippet: String = text.chars().take(80).collect();
        format!(
            "query {:?}: {url}: HTTP {status}, not a Prometheus JSON answer: {:?}",
            q.name,
            snippet.trim()
        )
    })?;
    if answer.status != "success" || !ok {
        return Err(format!(
            "query {:?}: HTTP {status} {}: {}",
            q.name,
            answer.error_type.as_deref().unwrap_or("error"),
            answer.error.as_deref().unwrap_or("no message")
        ));
    }
    let data = answer
        .data
        .ok_or_else(|| format!("query {:?}: answer without data", q.name))?;
    if data.result_type != "matrix" {
        return Err(format!(
            "query {:?}: expected a range vector (matrix), got {}",
            q.name, data.result_type
        ));
    }
    Ok(data
        .result
        .into_iter()
        .map(|m| {
            let labels: BTreeMap<String, String> = m
                .metric
                .into_iter()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            let id = series_id(&q.name, &labels);
            let points = m.values;
            QuerySeries {
                info: SeriesInfo {
                    name: id.clone(),
                    id,
                    category: q.name.clone(),
                    source: SourceKind::Prometheus,
                    instance: labels.get("instance").cloned(),
                },
                points,
            }
        })
        .collect())
}

/// One path segment pair `/<name>/<value>` of a grouping key.
pub fn key_segment(name: &str, value: &str) -> String {
    // "." and ".." would be removed from the path as dot-segments by any URL parser.
    let plain = !matches!(value, "" | "." | "..")
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if plain {
        format!("/{name}/{value}")
    } else {
        let b64 = base64::engine::general_purpose::URL_SAFE.encode(value.as_bytes());
        let b64 = if b64.is_empty() { "=".to_string() } else { b64 };
        format!("/{name}@base64/{b64}")
    }
}

/// `<base>/metrics/job/<job>{/<label>/<value>}` with `@base64` where needed.
pub fn group_url(base: &str, job: &str, grouping: &[(&str, &str)]) -> String {
    let mut url = format!("{}/metrics", base.trim_end_matches('/'));
    url.push_str(&key_segment("job", job));
    for (k, v) in grouping {
        url.push_str(&key_segment(k, v));
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_labels_read_back_what_series_id_wrote() {
        let labels: BTreeMap<String, String> = [
            ("instance", "host:9100"),
            ("job", "node"),
            ("odd", "a \"quoted\", back\\slash\nnew line é"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let id = series_id("cpu", &labels);
        let back: BTreeMap<String, String> = series_labels(&id).into_iter().collect();
        assert_eq!(back, labels, "{id}");
        assert!(series_labels("cpu").is_empty());
    }
}
