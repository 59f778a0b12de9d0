//! PromQL live source: polls Prometheus' `query_range` API with a list of named queries. Every
//! result series (label set) becomes a monitored series `<name>{<labels>}`; label sets are
//! re-discovered on every poll (new ones appear, vanished ones are marked stale). Every failure
//! (unreachable server, timeout, 4xx/5xx, bad PromQL, non-JSON) becomes the source's status
//! message; the task keeps polling.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::sync::mpsc;

pub use pulsewatch_core::prom::{QuerySeries, parse_query_range, series_id};

use super::source::{SourceEvent, SourceKind, SourceStatus, unix_now};
use pulsewatch_core::config::{NamedQuery, PrometheusConfig};

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

impl PromSettings {
    pub fn from_config(c: &PrometheusConfig) -> Result<Self, String> {
        c.validate()?;
        let url = c.url.trim_end_matches('/').to_string();
        Ok(PromSettings {
            url,
            step: c.step.0,
            window: c.window.0,
            timeout: c.timeout.0,
            queries: c.queries.clone(),
        })
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
/// One poll of every query as source events (the one-shot read of `--once`): while every query
/// fails it tries `attempts` times, `first_backoff` apart and doubling. Returns the events and
/// the errors of the queries that still failed; an error when all of them did.
pub async fn read_once(
    client: &PromClient,
    attempts: u32,
    first_backoff: Duration,
) -> Result<(Vec<SourceEvent>, Vec<String>), String> {
    let n = client.settings().queries.len();
    let mut delay = first_backoff;
    let mut attempt = 0;
    let poll = loop {
        attempt += 1;
        let mut poller = Poller::default();
        let poll = poller.poll(client, unix_now()).await;
        if poll.errors.len() < n || attempt >= attempts {
            break poll;
        }
        tracing::warn!(target: "pulsewatch::ingest", errors = ?poll.errors, attempt, "every query failed; retrying");
        tokio::time::sleep(delay).await;
        delay *= 2;
    };
    if poll.errors.len() == n {
        return Err(format!(
            "every PromQL query failed after {attempt} attempts: {}",
            poll.errors.join("; ")
        ));
    }
    let found = poll.series.len();
    let mut out = vec![SourceEvent::Status(SourceStatus {
        source: SourceKind::Prometheus,
        target: client.settings().url.clone(),
        healthy: poll.errors.is_empty(),
        message: if poll.errors.is_empty() {
            format!("{n} queries, {found} series")
        } else {
            poll.errors.join("; ")
        },
        last_ok: unix_now(),
    })];
    for qs in poll.series {
        out.push(SourceEvent::Points {
            info: qs.info,
            points: qs.points,
            restart: false,
        });
    }
    Ok((out, poll.errors))
}

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
