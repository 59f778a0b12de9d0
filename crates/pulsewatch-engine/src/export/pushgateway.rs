//! Pushgateway export.
//!
//! **Grouping key**: `job=<[pushgateway] job>` plus `source=<nab|prometheus|host>`, one group per
//! running source. Each push is a `PUT` of the whole metric set of one snapshot, so:
//! * a group always holds one consistent tick (values, scores and forecasts from the same
//!   snapshot), in one request (all 58 NAB series per push);
//! * a series that vanished from the source disappears from the group on the next push (`PUT`
//!   replaces the group; `POST` would keep stale families);
//! * `DELETE` of exactly our groups on exit removes everything we pushed and nothing else.
//!
//! Two pulsewatch instances that push the same source to one Pushgateway must use different
//! `job`s. Label values that are not plain `[A-Za-z0-9_.-]` go in the `@base64` form.
//!
//! The background [`spawn`] task pushes the latest snapshot whenever a new one is published
//! (coalescing: a slow Pushgateway sees fewer, newer pushes, never a queue), retries with
//! exponential backoff while the Pushgateway is down, and pushes the latest state once it is
//! back. Scoring and the UI never wait for it; its [`PushStatus`] is published on a watch
//! channel. Credentials are never logged or shown (`Debug` hides them).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::metrics;
use crate::engine::state::Snapshot;
use crate::sources::source::unix_now;
use pulsewatch_core::config::PushgatewayConfig;

/// First delay after a failed push; doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(250);
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

use crate::http::Auth;

pub use pulsewatch_core::prom::group_url;

/// Why a push failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct PushError(pub String);

/// A client for one group on one Pushgateway.
#[derive(Clone)]
pub struct Pusher {
    http: reqwest::Client,
    url: String,
    auth: Auth,
    /// `[pushgateway] url` is the built-in default (nobody pointed it anywhere).
    unconfigured: bool,
}

impl fmt::Debug for Pusher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pusher")
            .field("url", &self.url)
            .field("auth", &self.auth)
            .finish()
    }
}

impl Pusher {
    /// A pusher for the group `job=<cfg.job>,source=<source>`; `None` when `[pushgateway] url`
    /// is empty (export off).
    /// The group of this instance: with a shard, its grouping key has `shard="k/n"` too, so
    /// the shards of one fleet push side by side and one stopping deletes only its own group.
    pub fn for_shard(mut self, shard: Option<pulsewatch_core::shard::Shard>) -> Self {
        if let Some(sh) = shard {
            self.url.push_str(&pulsewatch_core::prom::key_segment(
                "shard",
                &sh.to_string(),
            ));
        }
        self
    }

    pub fn new(cfg: &PushgatewayConfig, source: &str) -> Result<Option<Self>, String> {
        cfg.validate()?;
        let base = cfg.url.trim();
        if base.is_empty() {
            return Ok(None);
        }
        let auth = Auth::from_config(
            "pushgateway",
            &cfg.username,
            (&cfg.password, &cfg.password_file),
            (&cfg.bearer_token, &cfg.bearer_token_file),
        )?;
        let http = crate::http::client_builder()
            .timeout(cfg.timeout.0)
            .connect_timeout(cfg.timeout.0)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Some(Pusher {
            http,
            url: group_url(base, &cfg.job, &[("source", source)]),
            auth,
            unconfigured: base == PushgatewayConfig::default().url,
        }))
    }

    /// The group's URL (no credentials in it).
    pub fn url(&self) -> &str {
        &self.url
    }

    fn request(&self, method: reqwest::Method) -> reqwest::RequestBuilder {
        self.auth.apply(self.http.request(method, &self.url))
    }

    async fn send(&self, rb: reqwest::RequestBuilder, what: &str) -> Result<(), PushError> {
        let resp = rb.send().await.map_err(|e| {
            let why = if e.is_timeout() {
                "timed out".to_string()
            } else if e.is_connect() {
                "connection failed (is the Pushgateway running?)".to_string()
            } else {
                e.to_string()
            };
            PushError(format!("{what} {}: {why}", self.url))
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let body = resp.text().await.unwrap_or_default();
        let body: String = body.trim().chars().take(200).collect();
        Err(PushError(format!(
            "{what} {}: HTTP {status}{}{body}",
            self.url,
            if body.is_empty() { "" } else { ": " }
        )))
    }

    /// Replaces the group with `body` (text exposition format). One attempt.
    pub async fn put(&self, body: String) -> Result<(), PushError> {
        let rb = self
            .request(reqwest::Method::PUT)
            .header(reqwest::header::CONTENT_TYPE, metrics::CONTENT_TYPE)
            .body(body);
        self.send(rb, "PUT").await
    }

    /// [`Pusher::put`] with up to `attempts` tries, `first_delay` apart and doubling after each
    /// (at most [`MAX_BACKOFF`]). Returns the number of attempts made, or the last error.
    pub async fn put_with_retries(
        &self,
        body: String,
        attempts: u32,
        first_delay: Duration,
    ) -> Result<u32, PushError> {
        let mut delay = first_delay;
        let mut n = 0;
        loop {
            n += 1;
            match self.put(body.clone()).await {
                Ok(()) => return Ok(n),
                Err(e) if n >= attempts.max(1) => {
                    return Err(PushError(format!("{e} (after {n} attempts)")));
                }
                Err(e) => {
                    tracing::warn!(target: "pulsewatch", error = %e, attempt = n, "push failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Deletes the group (everything we pushed to it).
    pub async fn delete(&self) -> Result<(), PushError> {
        self.send(self.request(reqwest::Method::DELETE), "DELETE")
            .await
    }
}

/// The exporter's health, for the UI and logs.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct PushStatus {
    /// The group URL.
    pub url: String,
    /// The latest push succeeded.
    pub ok: bool,
    /// No push attempted yet.
    pub idle: bool,
    /// The latest error ("" when ok).
    pub error: String,
    pub pushes: u64,
    pub failures: u64,
    /// Unix seconds of the latest successful push (0 = never).
    pub last_ok: i64,
    /// Duration of the latest successful push, in seconds.
    pub last_seconds: f64,
    /// Snapshot version of the latest successful push.
    pub last_version: u64,
    /// Pushing to the built-in default URL, which nobody configured: while no push has worked,
    /// front-ends say "none at URL" rather than reporting a fault.
    pub unconfigured: bool,
}

impl PushStatus {
    /// The Pushgateway's base URL (the group URL without `/metrics/...`).
    pub fn base_url(&self) -> &str {
        self.url.split("/metrics/").next().unwrap_or(&self.url)
    }

    /// An unconfigured default Pushgateway that has never answered: not a fault.
    pub fn absent_default(&self) -> bool {
        self.unconfigured && !self.ok && self.pushes == 0
    }
}

/// A running push task.
pub struct PushTask {
    pub status: watch::Receiver<PushStatus>,
    pusher: Pusher,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl PushTask {
    /// Stops pushing, then deletes the group when `delete` (bounded by the client timeout).
    /// Returns the delete's result, if one was made.
    pub async fn stop(self, delete: bool) -> Option<Result<(), PushError>> {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        if !delete {
            return None;
        }
        let res = self.pusher.delete().await;
        match &res {
            Ok(()) => {
                tracing::info!(target: "pulsewatch", url = %self.pusher.url(), "deleted our Pushgateway group")
            }
            Err(e) => {
                tracing::warn!(target: "pulsewatch", error = %e, "cannot delete our Pushgateway group")
            }
        }
        Some(res)
    }
}

/// Starts pushing every new snapshot of `snapshots` with `pusher`.
pub fn spawn(pusher: Pusher, mut snapshots: watch::Receiver<Arc<Snapshot>>) -> PushTask {
    let (status_tx, status_rx) = watch::channel(PushStatus {
        url: pusher.url().to_string(),
        idle: true,
        unconfigured: pusher.unconfigured,
        ..PushStatus::default()
    });
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let handle = pusher.clone();
    let task = tokio::spawn(async move {
        let mut backoff: Option<Duration> = None;
        snapshots.mark_changed();
        loop {
            if let Some(d) = backoff {
                tokio::select! {
                    _ = tokio::time::sleep(d) => {}
                    _ = stop_rx.changed() => break,
                }
            } else {
                tokio::select! {
                    r = snapshots.changed() => if r.is_err() { break },
                    _ = stop_rx.changed() => break,
                }
            }
            let snap = snapshots.borrow_and_update().clone();
            let body = match metrics::render(&snap) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(target: "pulsewatch", error = %e, "cannot render metrics");
                    continue;
                }
            };
            let t0 = Instant::now();
            // A push in flight is finished (bounded by the client timeout), never dropped: a
            // dropped PUT can still reach the Pushgateway after the DELETE that follows a stop,
            // and bring the group back.
            let res = pusher.put(body).await;
            let was_ok = status_tx.borrow().ok || status_tx.borrow().idle;
            match res {
                Ok(()) => {
                    if backoff.is_some() {
                        tracing::info!(target: "pulsewatch", url = %pusher.url(), "Pushgateway reachable again; pushing resumed");
                    }
                    backoff = None;
                    status_tx.send_modify(|s| {
                        s.ok = true;
                        s.idle = false;
                        s.error.clear();
                        s.pushes += 1;
                        s.last_ok = unix_now();
                        s.last_seconds = t0.elapsed().as_secs_f64();
                        s.last_version = snap.version;
                    });
                }
                Err(e) => {
                    if was_ok {
                        tracing::warn!(target: "pulsewatch", error = %e, "push failed; retrying with backoff");
                    }
                    backoff = Some(backoff.map_or(FIRST_BACKOFF, |d| (d * 2).min(MAX_BACKOFF)));
                    status_tx.send_modify(|s| {
                        s.ok = false;
                        s.idle = false;
                        s.error = e.0;
                        s.failures += 1;
                    });
                }
            }
        }
    });
    PushTask {
        status: status_rx,
        pusher: handle,
        stop: stop_tx,
        task,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping_key_uses_base64_only_where_needed() {
        assert_eq!(
            group_url("http://pg:9091/", "pulsewatch", &[("source", "nab")]),
            "http://pg:9091/metrics/job/pulsewatch/source/nab"
        );
        // A slash (and anything else outside [A-Za-z0-9_.-]) goes in the @base64 form.
        assert_eq!(
            group_url(
                "http://pg",
                "a/b",
                &[("file", "data/realKnownCause/nyc_taxi.csv")]
            ),
            "http://pg/metrics/job@base64/YS9i/file@base64/ZGF0YS9yZWFsS25vd25DYXVzZS9ueWNfdGF4aS5jc3Y="
        );
        assert_eq!(
            group_url("http://pg", "j", &[("x", "")]),
            "http://pg/metrics/job/j/x@base64/="
        );
        // Dot-segments would vanish from the path when the URL is parsed (found by fuzzing).
        assert_eq!(
            group_url("http://pg", "..", &[("x", ".")]),
            "http://pg/metrics/job@base64/Li4=/x@base64/Lg=="
        );
        assert_eq!(
            group_url("http://pg", "a..b", &[("x", ".a")]),
            "http://pg/metrics/job/a..b/x/.a"
        );
    }

    #[test]
    fn credentials_never_show_in_debug_output() {
        let cfg = PushgatewayConfig {
            username: "user".into(),
            password: "hunter2".into(),
            ..PushgatewayConfig::default()
        };
        let p = Pusher::new(&cfg, "nab").expect("valid").expect("url set");
        let dbg = format!("{p:?}");
        assert!(
            !dbg.contains("hunter2") && dbg.contains("basic (hidden)"),
            "{dbg}"
        );
        let cfg = PushgatewayConfig {
            bearer_token: "tok-123".into(),
            ..PushgatewayConfig::default()
        };
        let p = Pusher::new(&cfg, "nab").expect("valid").expect("url set");
        assert!(!format!("{p:?}").contains("tok-123"));
    }

    #[test]
    fn bad_urls_are_config_errors_and_empty_url_turns_export_off() {
        let off = PushgatewayConfig {
            url: String::new(),
            ..PushgatewayConfig::default()
        };
        assert!(Pusher::new(&off, "nab").expect("valid").is_none());
        for bad in ["not a url", "ftp://x:1"] {
            let cfg = PushgatewayConfig {
                url: bad.into(),
                ..PushgatewayConfig::default()
            };
            let e = Pusher::new(&cfg, "nab").expect_err("invalid");
            assert!(e.contains("[pushgateway] url") && e.contains(bad), "{e}");
        }
    }
}
