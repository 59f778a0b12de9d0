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
use pulsewatch_core::shard::Shard;

use crate::http::Auth;

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
    /// Take only this shard's series (`[source] shard`).
    pub shard: Option<Shard>,
    /// Credentials sent with every query (never shown by `Debug`).
    pub auth: Auth,
    /// Extra headers on every query (values marked sensitive: `Debug` hides them).
    pub headers: reqwest::header::HeaderMap,
    /// CA certificates to trust besides the system's.
    pub ca_file: Option<std::path::PathBuf>,
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
            shard: None,
            auth: Auth::from_config(
                "prometheus",
                &c.username,
                (&c.password, &c.password_file),
                (&c.bearer_token, &c.bearer_token_file),
            )?,
            headers: headers(&c.headers)?,
            ca_file: (!c.ca_file.as_os_str().is_empty()).then(|| c.ca_file.clone()),
        })
    }
}

/// `[prometheus.headers]` as a header map, values marked sensitive.
fn headers(
    h: &std::collections::BTreeMap<String, String>,
) -> Result<reqwest::header::HeaderMap, String> {
    use reqwest::header::{HeaderName, HeaderValue};
    let mut map = reqwest::header::HeaderMap::new();
    for (name, value) in h {
        let n = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("[prometheus.headers] {name:?} is not an HTTP header name"))?;
        let mut v = HeaderValue::from_str(value).map_err(|_| {
            format!("[prometheus.headers] {name}: the value is not a valid HTTP header value")
        })?;
        v.set_sensitive(true);
        map.insert(n, v);
    }
    Ok(map)
}

/// A client for one Prometheus server.
#[derive(Debug, Clone)]
pub struct PromClient {
    http: reqwest::Client,
    settings: PromSettings,
}

impl PromClient {
    pub fn new(settings: PromSettings) -> Result<Self, String> {
        let mut builder = crate::http::client_builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .default_headers(settings.headers.clone());
        if let Some(ca) = &settings.ca_file {
            builder = crate::http::with_ca_file(builder, "[prometheus] ca_file", ca)?;
        }
        let http = builder
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
            .settings
            .auth
            .apply(self.http.post(&url))
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

/// Points one request may ask for (series × steps), so that a long first read of thousands of
/// series comes as several answers of bounded size rather than one huge one.
pub const MAX_READ_POINTS: usize = 250_000;
/// Steps of the first slice of a long read (before the number of series is known).
const FIRST_SLICE_STEPS: i64 = 60;
/// Prometheus refuses more than 11,000 points per series in one query.
const MAX_SLICE_STEPS: i64 = 11_000;

/// `query_range` over `[start, end]` in adjacent slices of at most [`MAX_READ_POINTS`] (after a
/// first slice of 60 steps tells how many series there are), merged per series in time order.
async fn read_range(
    client: &PromClient,
    q: &NamedQuery,
    start: i64,
    end: i64,
    step: i64,
) -> Result<Vec<QuerySeries>, String> {
    if (end - start) / step <= FIRST_SLICE_STEPS {
        return client.query_range(q, start, end).await;
    }
    let mut merged: Vec<QuerySeries> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut from = start;
    let mut steps = FIRST_SLICE_STEPS;
    while from <= end {
        let to = (from + (steps - 1) * step).min(end);
        let part = client.query_range(q, from, to).await?;
        let series = part.len();
        for qs in part {
            match index.get(&qs.info.id) {
                Some(&i) => merged[i].points.extend(qs.points),
                None => {
                    index.insert(qs.info.id.clone(), merged.len());
                    merged.push(qs);
                }
            }
        }
        let per = (MAX_READ_POINTS / series.max(1)) as i64;
        steps = per.clamp(FIRST_SLICE_STEPS, MAX_SLICE_STEPS);
        from = to + step;
    }
    Ok(merged)
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
    /// Queries that answered with no series at all (names).
    pub empty: Vec<String>,
    /// Points the answers carried in all (new or already seen): what the poll read.
    pub points_read: usize,
}

/// Steps re-read before the oldest live series' newest point, for samples that reach the
/// server late (a slow scrape, a remote-write backlog).
pub const LATE_STEPS: i64 = 2;

/// One series the poller has seen.
#[derive(Debug, Clone, Copy)]
struct Seen {
    /// Index of the query that returned it.
    query: usize,
    /// Newest timestamp handed out (nothing at or before it is handed out again).
    last: i64,
    stale: bool,
}

/// The poller's memory: per series the newest timestamp handed out, per query where the next
/// poll starts.
///
/// The first poll of a query reads the whole window. Later polls read only from
/// [`LATE_STEPS`] steps before the oldest newest-point among the query's live series (never
/// before the window), so a poll reads what is new, not the window again: the points per poll
/// depend on the step and the number of series, not on the window. Points at or before a
/// series' newest timestamp are dropped (nothing is scored twice), whatever the server answers:
/// overlapping reads, a restarted server answering from an empty head, or a backfill of older
/// blocks. A query that returned no live series reads its whole window again next time (new
/// series, or a server that had no data yet). A series that appears later starts with what
/// its first answer holds.
#[derive(Debug, Default)]
pub struct Poller {
    seen: HashMap<String, Seen>,
    /// Per query: the start of the next read (`None`: the whole window).
    cursor: Vec<Option<i64>>,
}

impl Poller {
    /// Polls every query, ending at `now` (unix seconds, aligned down to the step).
    pub async fn poll(&mut self, client: &PromClient, now: i64) -> Poll {
        let s = client.settings();
        let step = s.step.as_secs().max(1) as i64;
        let end = now - now.rem_euclid(step);
        let window_start =
            end.saturating_sub(i64::try_from(s.window.as_secs()).unwrap_or(i64::MAX));
        self.cursor.resize(s.queries.len(), None);
        let mut out = Poll::default();
        for (qi, q) in s.queries.iter().enumerate() {
            let start = match self.cursor[qi] {
                Some(c) => (c - LATE_STEPS * step).clamp(window_start, end),
                None => window_start,
            };
            match read_range(client, q, start, end, step).await {
                Ok(found) => {
                    let mut owned = 0;
                    let mut present = HashSet::new();
                    for mut qs in found {
                        out.points_read += qs.points.len();
                        // Another shard's series: not ours to score.
                        if s.shard.is_some_and(|sh| !sh.owns(&qs.info.id)) {
                            continue;
                        }
                        owned += 1;
                        // A series whose newest sample is older than three steps has gone (a
                        // full-window read still returns its earlier samples).
                        let live = qs
                            .points
                            .last()
                            .is_some_and(|p| p.timestamp >= end - STALE_STEPS * step);
                        let seen = self.seen.get(&qs.info.id).copied();
                        if let Some(seen) = seen {
                            qs.points.retain(|p| p.timestamp > seen.last);
                        }
                        // Query answers are in time order; keep them strictly increasing.
                        let mut prev = i64::MIN;
                        qs.points.retain(|p| {
                            let keep = p.timestamp > prev;
                            prev = prev.max(p.timestamp);
                            keep
                        });
                        let last = qs
                            .points
                            .last()
                            .map(|p| p.timestamp)
                            .or(seen.map(|s| s.last))
                            .unwrap_or(i64::MIN);
                        let entry = Seen {
                            query: qi,
                            last,
                            stale: seen.is_some_and(|s| s.stale) && !live,
                        };
                        self.seen.insert(qs.info.id.clone(), entry);
                        if live {
                            present.insert(qs.info.id.clone());
                        }
                        if !qs.points.is_empty() || seen.is_none() {
                            out.series.push(qs);
                        }
                    }
                    if owned == 0 {
                        out.empty.push(q.name.clone());
                    }
                    let mut oldest_live: Option<i64> = None;
                    for (id, seen) in self.seen.iter_mut() {
                        if seen.query != qi {
                            continue;
                        }
                        if present.contains(id) {
                            oldest_live = Some(oldest_live.map_or(seen.last, |o| o.min(seen.last)));
                        } else if !seen.stale {
                            seen.stale = true;
                            out.vanished.push(id.clone());
                        }
                    }
                    self.cursor[qi] = oldest_live;
                }
                Err(e) => out.errors.push(e),
            }
        }
        out.vanished.sort();
        out
    }

    /// Series currently live (seen and not stale).
    pub fn live(&self) -> usize {
        self.seen.values().filter(|s| !s.stale).count()
    }

    /// Where the next poll of query `i` starts reading (`None`: the whole window).
    pub fn cursor(&self, i: usize) -> Option<i64> {
        self.cursor.get(i).copied().flatten()
    }
}

/// Runs the source: a poll every step, until the engine goes away.
/// What the one-shot read of `--once` found.
#[derive(Debug, Default)]
pub struct OnceRead {
    /// The source events a live run would have sent (status first).
    pub events: Vec<SourceEvent>,
    /// Errors of the queries that still failed.
    pub errors: Vec<String>,
    /// Queries that answered with no series.
    pub empty: Vec<String>,
}

/// The status line of a poll: queries, series, failures and queries that found nothing.
fn status_message(n: usize, live: usize, poll: &Poll) -> String {
    let mut msg = if poll.errors.is_empty() {
        format!("{n} queries, {live} series")
    } else {
        format!(
            "{} of {n} queries failed: {}",
            poll.errors.len(),
            poll.errors.join("; ")
        )
    };
    if !poll.empty.is_empty() {
        let names: Vec<String> = poll.empty.iter().map(|q| format!("{q:?}")).collect();
        msg.push_str(&format!("; no series from {}", names.join(", ")));
    }
    msg
}

/// One poll of every query as source events (the one-shot read of `--once`): while every query
/// fails it tries `attempts` times, `first_backoff` apart and doubling. An error when all of
/// them failed.
pub async fn read_once(
    client: &PromClient,
    attempts: u32,
    first_backoff: Duration,
) -> Result<OnceRead, String> {
    let n = client.settings().queries.len();
    let mut delay = first_backoff;
    let mut attempt = 0;
    let (poll, live, seconds) = loop {
        attempt += 1;
        let mut poller = Poller::default();
        let t = std::time::Instant::now();
        let poll = poller.poll(client, unix_now()).await;
        if poll.errors.len() < n || attempt >= attempts {
            break (poll, poller.live(), t.elapsed().as_secs_f64());
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
    let mut events = vec![SourceEvent::Status(SourceStatus {
        source: SourceKind::Prometheus,
        target: client.settings().url.clone(),
        healthy: poll.errors.is_empty() && poll.empty.is_empty(),
        message: status_message(n, live, &poll),
        last_ok: unix_now(),
        poll_seconds: Some(seconds),
    })];
    let Poll {
        series,
        errors,
        empty,
        ..
    } = poll;
    for qs in series {
        events.push(SourceEvent::Points {
            info: qs.info,
            points: qs.points,
            restart: false,
        });
    }
    Ok(OnceRead {
        events,
        errors,
        empty,
    })
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
        let t = std::time::Instant::now();
        let mut poll = poller.poll(&client, unix_now()).await;
        let seconds = t.elapsed().as_secs_f64();
        for qs in std::mem::take(&mut poll.series) {
            let ev = SourceEvent::Points {
                info: qs.info,
                points: qs.points,
                restart: false,
            };
            if tx.send(ev).await.is_err() {
                return;
            }
        }
        for id in std::mem::take(&mut poll.vanished) {
            if tx.send(SourceEvent::Stale { id }).await.is_err() {
                return;
            }
        }
        let n = client.settings().queries.len();
        let healthy = poll.errors.is_empty();
        if poll.errors.len() < n {
            last_ok = unix_now();
        }
        let message = status_message(n, poller.live(), &poll);
        if !healthy {
            tracing::warn!(target: "pulsewatch::ingest", source = "prometheus", "{message}");
        }
        let ev = SourceEvent::Status(SourceStatus {
            source: SourceKind::Prometheus,
            target: target.clone(),
            healthy,
            message,
            last_ok,
            poll_seconds: Some(seconds),
        });
        if tx.send(ev).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use testkit::http_server::TestServer;

    const PATH: &str = "api/v1/query_range";

    fn answer(series: &[(&str, &[i64])]) -> String {
        let result: Vec<String> = series
            .iter()
            .map(|(name, ts)| {
                let values: Vec<String> = ts.iter().map(|t| format!("[{t},\"{t}\"]")).collect();
                format!(
                    r#"{{"metric":{{"__name__":"m","s":"{name}"}},"values":[{}]}}"#,
                    values.join(",")
                )
            })
            .collect();
        format!(
            r#"{{"status":"success","data":{{"resultType":"matrix","result":[{}]}}}}"#,
            result.join(",")
        )
    }

    fn form(body: &str, key: &str) -> i64 {
        body.split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{key} in {body}"))
    }

    fn points(poll: &Poll, s: &str) -> Vec<i64> {
        poll.series
            .iter()
            .find(|q| q.info.id.contains(&format!("s=\"{s}\"")))
            .map(|q| q.points.iter().map(|p| p.timestamp).collect())
            .unwrap_or_default()
    }

    #[test]
    fn later_polls_read_only_what_is_new_and_nothing_is_handed_out_twice() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join(PATH);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("dirs");
        let server = TestServer::serve_dir(dir.path());
        let client = PromClient::new(PromSettings {
            url: server.base_url(),
            step: Duration::from_secs(10),
            window: Duration::from_secs(600),
            timeout: Duration::from_secs(5),
            queries: vec![NamedQuery::new("q", "m")],
            shard: None,
            auth: Default::default(),
            headers: Default::default(),
            ca_file: None,
        })
        .expect("client");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let mut poller = Poller::default();
        let poll = |poller: &mut Poller, ans: String, now: i64| {
            std::fs::write(&file, ans).expect("write the answer");
            rt.block_on(poller.poll(&client, now))
        };

        // First poll: the whole window. b is one step behind a (its scrape is late).
        let p = poll(
            &mut poller,
            answer(&[
                ("a", &[1000, 1010, 1020, 1030, 1040, 1050, 1060]),
                ("b", &[1000, 1010, 1020, 1030, 1040, 1050]),
            ]),
            1065,
        );
        assert_eq!(points(&p, "a").len(), 7);
        assert_eq!(points(&p, "b").len(), 6);
        let bodies = server.bodies(PATH);
        assert_eq!(
            (form(&bodies[0], "start"), form(&bodies[0], "end")),
            (460, 1060)
        );

        // Second poll starts LATE_STEPS before b's newest point; the overlap is dropped, b's
        // late sample at 1060 is taken.
        let p = poll(
            &mut poller,
            answer(&[
                ("a", &[1040, 1050, 1060, 1070, 1080, 1080]),
                ("b", &[1040, 1050, 1060, 1070, 1080]),
            ]),
            1085,
        );
        let bodies = server.bodies(PATH);
        assert_eq!(form(&bodies[1], "start"), 1050 - LATE_STEPS * 10);
        assert_eq!(
            points(&p, "a"),
            vec![1070, 1080],
            "overlap and a duplicate dropped"
        );
        assert_eq!(points(&p, "b"), vec![1060, 1070, 1080]);
        assert!(p.vanished.is_empty() && p.empty.is_empty());
        assert_eq!(poller.cursor(0), Some(1080));

        // A restarted server with an empty head: the query finds nothing, the series are stale
        // and the next poll reads the whole window again.
        let p = poll(&mut poller, answer(&[]), 1095);
        assert_eq!(p.empty, vec!["q".to_string()]);
        assert_eq!(p.vanished.len(), 2);
        assert_eq!(poller.cursor(0), None);
        assert_eq!(poller.live(), 0);

        // It answers again with old and new samples (a backfill, or data kept on disk): only
        // what is newer than what was handed out comes through, and a is live again.
        let p = poll(
            &mut poller,
            answer(&[("a", &[1000, 1060, 1080, 1090, 1100])]),
            1105,
        );
        let bodies = server.bodies(PATH);
        assert_eq!(form(&bodies[3], "start"), 1100 - 600);
        assert_eq!(points(&p, "a"), vec![1090, 1100]);
        assert_eq!(poller.live(), 1);
        assert_eq!(p.points_read, 5);
    }

    #[test]
    fn credentials_and_extra_headers_go_with_every_query_and_never_into_debug() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join(PATH);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("dirs");
        std::fs::write(&file, answer(&[("a", &[1000, 1010])])).expect("answer");
        let server = TestServer::serve_dir(dir.path());
        let cfg = PrometheusConfig {
            url: server.base_url(),
            bearer_token: "tok-123-secret".into(),
            headers: [("X-Scope-OrgID".to_string(), "tenant-a".to_string())].into(),
            // One request per query (no slicing).
            window: pulsewatch_core::config::HumanDuration::secs(600),
            ..PrometheusConfig::default()
        };
        let settings = PromSettings::from_config(&cfg).expect("settings");
        let shown = format!("{settings:?}");
        assert!(
            !shown.contains("tok-123-secret") && !shown.contains("tenant-a"),
            "{shown}"
        );
        let client = PromClient::new(settings).expect("client");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let poll = rt.block_on(Poller::default().poll(&client, 1015));
        assert!(poll.errors.is_empty(), "{:?}", poll.errors);
        let heads = server.heads(PATH);
        assert_eq!(heads.len(), cfg.queries.len());
        for h in &heads {
            let h = h.to_ascii_lowercase();
            assert!(h.contains("x-scope-orgid: tenant-a"), "{h}");
            assert!(h.contains("authorization: bearer tok-123-secret"), "{h}");
        }
        // Both kinds of credentials at once, or a header that cannot be sent: errors naming the key.
        let both = PrometheusConfig {
            username: "u".into(),
            ..cfg.clone()
        };
        let e = both.validate().expect_err("both");
        assert!(
            e.contains("[prometheus] bearer_token") && !e.contains("tok-123"),
            "{e}"
        );
        let bad = PrometheusConfig {
            headers: [("bad header".to_string(), "x".to_string())].into(),
            ..PrometheusConfig::default()
        };
        assert!(
            bad.validate()
                .expect_err("bad")
                .contains("[prometheus.headers]")
        );
    }
}
