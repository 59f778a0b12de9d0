//! PromQL live source: polls Prometheus' `query_range` API with a list of named queries. Every
//! result series (label set) becomes a monitored series `<name>{<labels>}`; label sets are
//! re-discovered on every poll (new ones appear, vanished ones are marked stale). Every failure
//! (unreachable server, timeout, 4xx/5xx, bad PromQL, non-JSON) becomes the source's status
//! message; the task keeps polling.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::mpsc;

use super::source::{SeriesInfo, SourceEvent, SourceKind, SourceStatus, unix_now};
use crate::config::{NamedQuery, PrometheusConfig};
use crate::detect::Point;

/// A series whose newest sample is this many steps old counts as vanished.
pub const STALE_STEPS: i64 = 3;

/// Settings of the source, from `[prometheus]`.
#[derive(Debug, Clone)]
pub struct PromSettings {
    pub url: String,
    pub step: Duration,
    pub window: Duration,
    pub timeout: Duration,
    pub queries: Vec<NamedQuery>,
}

/// The longest `[prometheus] window` accepted.
const MAX_WINDOW: Duration = Duration::from_secs(366 * 86_400);

impl PromSettings {
    pub fn from_config(c: &PrometheusConfig) -> Result<Self, String> {
        let url = c.url.trim_end_matches('/').to_string();
        let parsed =
            reqwest::Url::parse(&url).map_err(|e| format!("[prometheus] url {url:?}: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!(
                "[prometheus] url {url:?}: only http and https are supported (e.g. \"http://{url}\")"
            ));
        }
        if c.window.0 > MAX_WINDOW {
            return Err(format!(
                "[prometheus] window {} is longer than the most a query_range may span here (366d)",
                c.window
            ));
        }
        if c.step.0 < Duration::from_secs(1) {
            return Err(format!(
                "[prometheus] step {} is below Prometheus' 1s resolution",
                c.step
            ));
        }
        if c.window.0 < c.step.0 {
            return Err(format!(
                "[prometheus] window {} is shorter than step {}",
                c.window, c.step
            ));
        }
        if c.queries.is_empty() {
            return Err("[prometheus] queries is empty: nothing to poll".into());
        }
        let mut names = HashSet::new();
        for q in &c.queries {
            if q.name.trim().is_empty() || q.query.trim().is_empty() {
                return Err("[[prometheus.queries]]: every query needs a name and a query".into());
            }
            if !names.insert(q.name.as_str()) {
                return Err(format!(
                    "[[prometheus.queries]]: the name {:?} is used twice",
                    q.name
                ));
            }
        }
        Ok(PromSettings {
            url,
            step: c.step.0,
            window: c.window.0,
            timeout: c.timeout.0,
            queries: c.queries.clone(),
        })
    }
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<Matrix>,
}

#[derive(Deserialize)]
struct Matrix {
    metric: BTreeMap<String, String>,
    values: Vec<(f64, String)>,
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

/// A client for one Prometheus server.
#[derive(Debug, Clone)]
pub struct PromClient {
    http: reqwest::Client,
    settings: PromSettings,
}

impl PromClient {
    pub fn new(settings: PromSettings) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(PromClient { http, settings })
    }

    pub fn settings(&self) -> &PromSettings {
        &self.settings
    }

    /// Runs `q` over `[start, end]` (unix seconds) at the configured step.
    pub async fn query_range(
        &self,
        q: &NamedQuery,
        start: i64,
        end: i64,
    ) -> Result<Vec<QuerySeries>, String> {
        let url = format!("{}/api/v1/query_range", self.settings.url);
        let step = self.settings.step.as_secs().max(1);
        let resp = self
            .http
            .post(&url)
            .form(&[
                ("query", q.query.as_str()),
                ("start", &start.to_string()),
                ("end", &end.to_string()),
                ("step", &step.to_string()),
            ])
            .send()
            .await
            .map_err(|e| format!("query {:?}: {url}: {}", q.name, describe_reqwest(&e)))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| {
            format!(
                "query {:?}: {url}: reading the answer: {}",
                q.name,
                describe_reqwest(&e)
            )
        })?;
        parse_query_range(q, &url, status.as_u16(), &body)
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
    let status = reqwest::StatusCode::from_u16(status)
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
            let id = series_id(&q.name, &m.metric);
            let points = m
                .values
                .iter()
                .filter_map(|(t, v)| {
                    let value: f64 = v.parse().ok()?;
                    (value.is_finite() && t.is_finite()).then_some(Point {
                        timestamp: *t as i64,
                        value,
                    })
                })
                .collect();
            QuerySeries {
                info: SeriesInfo {
                    name: id.clone(),
                    id,
                    category: q.name.clone(),
                    source: SourceKind::Prometheus,
                },
                points,
            }
        })
        .collect())
}

fn describe_reqwest(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed (is the server running?)".into()
    } else {
        let mut s = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(inner) = src {
            s = format!("{s}: {inner}");
            src = inner.source();
        }
        s
    }
}

/// What one poll of every query found.
#[derive(Debug, Default)]
pub struct Poll {
    /// New points per series (only points after those seen before).
    pub series: Vec<QuerySeries>,
    /// Series seen before that no successful query returned this time.
    pub vanished: Vec<String>,
    /// Per-query errors.
    pub errors: Vec<String>,
}

/// The poller's memory: the newest timestamp seen per series, and which series are live.
#[derive(Debug, Default)]
pub struct Poller {
    seen: HashMap<String, (String, i64)>,
    stale: HashSet<String>,
}

impl Poller {
    /// Polls every query over the window ending at `now` (unix seconds, aligned to the step).
    pub async fn poll(&mut self, client: &PromClient, now: i64) -> Poll {
        let s = client.settings();
        let step = s.step.as_secs().max(1) as i64;
        let end = now - now.rem_euclid(step);
        let start = end.saturating_sub(i64::try_from(s.window.as_secs()).unwrap_or(i64::MAX));
        let mut out = Poll::default();
        for q in &s.queries {
            match client.query_range(q, start, end).await {
                Ok(found) => {
                    let mut present = HashSet::new();
                    for mut qs in found {
                        // A series whose newest sample is older than three steps has gone (the
                        // range still returns its earlier samples).
                        if qs
                            .points
                            .last()
                            .is_some_and(|p| p.timestamp >= end - STALE_STEPS * step)
                        {
                            present.insert(qs.info.id.clone());
                        }
                        let last = self.seen.get(&qs.info.id).map(|(_, t)| *t);
                        if let Some(last) = last {
                            qs.points.retain(|p| p.timestamp > last);
                        }
                        if let Some(p) = qs.points.last() {
                            self.seen
                                .insert(qs.info.id.clone(), (q.name.clone(), p.timestamp));
                        }
                        if present.contains(&qs.info.id) {
                            self.stale.remove(&qs.info.id);
                        }
                        if !qs.points.is_empty() || last.is_none() {
                            out.series.push(qs);
                        }
                    }
                    for (id, (query, _)) in &self.seen {
                        if query == &q.name
                            && !present.contains(id)
                            && self.stale.insert(id.clone())
                        {
                            out.vanished.push(id.clone());
                        }
                    }
                }
                Err(e) => out.errors.push(e),
            }
        }
        out.vanished.sort();
        out
    }

    /// Series currently live (seen and not stale).
    pub fn live(&self) -> usize {
        self.seen.len() - self.stale.len()
    }
}

/// Runs the source: a poll every step, until the engine goes away.
pub async fn run(client: PromClient, tx: mpsc::Sender<SourceEvent>) {
    let mut poller = Poller::default();
    let target = client.settings().url.clone();
    let period = client.settings().step.max(Duration::from_secs(1));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_ok = 0;
    loop {
        tick.tick().await;
        let poll = poller.poll(&client, unix_now()).await;
        for qs in poll.series {
            let ev = SourceEvent::Points {
                info: qs.info,
                points: qs.points,
                restart: false,
            };
            if tx.send(ev).await.is_err() {
                return;
            }
        }
        for id in poll.vanished {
            if tx.send(SourceEvent::Stale { id }).await.is_err() {
                return;
            }
        }
        let n = client.settings().queries.len();
        let healthy = poll.errors.is_empty();
        if poll.errors.len() < n {
            last_ok = unix_now();
        }
        let message = if healthy {
            format!("{n} queries, {} series", poller.live())
        } else {
            format!(
                "{} of {n} queries failed: {}",
                poll.errors.len(),
                poll.errors.join("; ")
            )
        };
        if !healthy {
            tracing::warn!(target: "pulsewatch::ingest", source = "prometheus", "{message}");
        }
        let ev = SourceEvent::Status(SourceStatus {
            source: SourceKind::Prometheus,
            target: target.clone(),
            healthy,
            message,
            last_ok,
        });
        if tx.send(ev).await.is_err() {
            return;
        }
    }
}
