//! The engine and its exporters in-process, against real servers where they matter: a replay
//! keeps scoring while the Pushgateway is killed and resumes pushing when it is back; stopping
//! deletes our group; the PromQL source re-discovers label sets and reports bad PromQL and
//! non-JSON answers as status; the JSON API and /metrics over HTTP.

use crate::support::corpus;
use crate::support::servers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use pulsewatch_core::config::{Config, NamedQuery, PushgatewayConfig};
use pulsewatch_core::detect::{DetectorKind, Point};
use pulsewatch_core::nab::Corpus;
use pulsewatch_engine::engine::core::CoreSettings;
use pulsewatch_engine::engine::state::{Snapshot, TrainState};
use pulsewatch_engine::engine::{self, Control, EngineSettings, SourceSpec};
use pulsewatch_engine::export::api::{self, ApiState};
use pulsewatch_engine::export::{metrics, pushgateway};
use pulsewatch_engine::sources::promql::{Poller, PromClient, PromSettings};
use pulsewatch_engine::sources::replay::ReplayControl;
use pulsewatch_engine::sources::source::{SeriesInfo, SourceEvent, SourceKind, unix_now};
use serde_json::Value;
use tokio::sync::mpsc;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn settings(source: SourceKind, forecast: bool) -> EngineSettings {
    let cfg = Config::default();
    EngineSettings {
        core: CoreSettings {
            source,
            detector: DetectorKind::Pulse,
            detector_cfg: cfg.detector.clone(),
            threshold: 0.5,
            history: 500,
            store: None,
            events_keep: 1000,
        },
        forecast: forecast.then(|| {
            pulsewatch_core::forecast::ForecastSettings::from_config(&cfg.forecast)
                .expect("forecast")
        }),
        retrain_interval: Duration::ZERO,
        replay: ReplayControl {
            paused: false,
            speed: 200.0,
        },
        events_file: None,
        auto_choices_file: None,
    }
}

async fn wait_until<F: FnMut() -> bool>(what: &str, secs: u64, mut f: F) {
    let t0 = Instant::now();
    while !f() {
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "timed out after {secs} s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn pgw_config(url: &str) -> PushgatewayConfig {
    PushgatewayConfig {
        url: url.to_string(),
        timeout: pulsewatch_core::config::HumanDuration::secs(2),
        ..PushgatewayConfig::default()
    }
}

/// `pulsewatch_points_ingested_total` summed over our group, from the Pushgateway's JSON API.
async fn pushed_points(url: &str) -> Option<f64> {
    let body = reqwest::get(format!("{url}/api/v1/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let v: Value = serde_json::from_str(&body).ok()?;
    let mut total = None;
    for g in v["data"].as_array()? {
        if g["labels"]["job"] != "pulsewatch" {
            continue;
        }
        if let Some(fam) = g["pulsewatch_points_ingested_total"]["metrics"].as_array() {
            total = Some(
                fam.iter()
                    .filter_map(|m| m["value"].as_str()?.parse::<f64>().ok())
                    .sum(),
            );
        }
    }
    total
}

#[test]
fn replay_keeps_scoring_while_the_pushgateway_is_down_and_resumes_when_it_is_back() {
    let Some(root) = corpus::nab_root() else {
        return;
    };
    let Some(pgw) = servers::pushgateway() else {
        return;
    };
    let port = pgw.port;
    let url = pgw.url();
    let corpus = Corpus::load(&root).expect("corpus");
    let series: Vec<_> = corpus.series.into_iter().take(6).collect();
    rt().block_on(async move {
        let eng = engine::spawn(
            settings(SourceKind::Nab, false),
            SourceSpec::Replay {
                series: Arc::new(series),
                target: "nab".into(),
                loop_at_end: true,
            },
        )
        .expect("engine");
        let pusher = pushgateway::Pusher::new(&pgw_config(&url), "nab")
            .expect("pusher")
            .expect("url set");
        assert_eq!(
            pusher.url(),
            format!("{url}/metrics/job/pulsewatch/source/nab")
        );
        let task = pushgateway::spawn(pusher, eng.subscribe());
        let status = task.status.clone();

        let mut first = 0.0;
        let t0 = Instant::now();
        while first <= 0.0 {
            first = pushed_points(&url).await.unwrap_or(0.0);
            assert!(t0.elapsed() < Duration::from_secs(20), "no push arrived");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // Kill the Pushgateway: pushes fail, scoring goes on.
        pgw.kill();
        wait_until("a failed push", 20, || status.borrow().failures > 0).await;
        let down_at = eng.latest().ingested();
        {
            let s = status.borrow();
            assert!(!s.ok && s.error.contains("connection failed"), "{s:?}");
        }
        wait_until("scoring to go on while the Pushgateway is down", 20, || {
            eng.latest().ingested() > down_at + 500
        })
        .await;

        // Back on the same port: the latest state is pushed without a restart of ours.
        let pgw2 = tokio::task::spawn_blocking(move || servers::pushgateway_on(Some(port)))
            .await
            .expect("join")
            .expect("pushgateway restarts");
        let url2 = pgw2.url();
        let t0 = Instant::now();
        loop {
            if let Some(n) = pushed_points(&url2).await
                && n > down_at as f64
            {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(40),
                "pushing did not resume: {:?}",
                *status.borrow()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(status.borrow().ok);

        // Stopping with delete removes our group (and only our group).
        eng.shutdown().await;
        let deleted = task.stop(true).await;
        assert_eq!(deleted, Some(Ok(())));
        assert_eq!(pushed_points(&url2).await, None, "group deleted");
        drop(pgw2);
    });
}

#[test]
fn promql_source_rediscovers_label_sets_and_reports_errors() {
    let Some(pgw) = servers::pushgateway() else {
        return;
    };
    let Some(prom) = servers::prometheus(Some(pgw.port), None) else {
        return;
    };
    rt().block_on(async {
        let http = testkit::http_client().build().expect("client");
        let push = |group: &'static str, v: f64| {
            let http = http.clone();
            let url = format!("{}/metrics/job/disc/g/{group}", pgw.url());
            async move {
                let r = http
                    .put(url)
                    .body(format!("# TYPE disc_value gauge\ndisc_value {v}\n"))
                    .send()
                    .await
                    .expect("push");
                assert!(r.status().is_success());
            }
        };
        push("a", 1.0).await;
        push("b", 2.0).await;
        let mk = |query: &str| PromSettings {
            url: prom.url(),
            step: Duration::from_secs(1),
            window: Duration::from_secs(60),
            timeout: Duration::from_secs(5),
            queries: vec![NamedQuery::new("disc", query)],
            shard: None,
            auth: Default::default(),
            headers: Default::default(),
            ca_file: None,
        };
        let client = PromClient::new(mk("disc_value")).expect("client");
        let mut poller = Poller::default();
        let mut ids: Vec<String> = Vec::new();
        let t0 = Instant::now();
        while ids.len() < 2 {
            assert!(t0.elapsed() < Duration::from_secs(20), "found {ids:?}");
            tokio::time::sleep(Duration::from_millis(500)).await;
            let poll = poller.poll(&client, unix_now()).await;
            assert!(poll.errors.is_empty(), "{:?}", poll.errors);
            for s in poll.series {
                assert_eq!(s.info.category, "disc");
                if !ids.contains(&s.info.id) {
                    ids.push(s.info.id);
                }
            }
        }
        ids.sort();
        assert_eq!(
            ids,
            vec![
                r#"disc{g="a",job="disc"}"#.to_string(),
                r#"disc{g="b",job="disc"}"#.to_string()
            ]
        );
        // A new label set appears without a restart; a deleted one is reported as vanished.
        push("c", 3.0).await;
        let del = http
            .delete(format!("{}/metrics/job/disc/g/a", pgw.url()))
            .send()
            .await
            .expect("delete");
        assert!(del.status().is_success());
        let mut appeared = false;
        let mut vanished = Vec::new();
        let t0 = Instant::now();
        while !appeared || vanished.is_empty() {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "appeared {appeared}, vanished {vanished:?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
            let poll = poller.poll(&client, unix_now()).await;
            appeared |= poll.series.iter().any(|s| s.info.id.contains(r#"g="c""#));
            vanished.extend(poll.vanished);
        }
        assert_eq!(vanished, vec![r#"disc{g="a",job="disc"}"#]);

        // Bad PromQL: the server's error, named by query, not a crash.
        let bad = PromClient::new(mk("rate(disc_value[1m]")).expect("client");
        let poll = Poller::default().poll(&bad, unix_now()).await;
        assert_eq!(poll.errors.len(), 1);
        let e = &poll.errors[0];
        assert!(
            e.contains("\"disc\"") && e.contains("400") && e.contains("bad_data"),
            "{e}"
        );

        // Not Prometheus (the Pushgateway answers 404 in plain text): a clear message.
        let mut s = mk("disc_value");
        s.url = pgw.url();
        let notprom = PromClient::new(s).expect("client");
        let poll = Poller::default().poll(&notprom, unix_now()).await;
        assert!(
            poll.errors[0].contains("not a Prometheus JSON answer"),
            "{:?}",
            poll.errors
        );

        // Through the engine: the source's status carries the message.
        let mut s = mk("rate(disc_value[1m]");
        s.url = prom.url();
        let eng = engine::spawn(
            settings(SourceKind::Prometheus, false),
            SourceSpec::Prometheus(Box::new(PromClient::new(s).expect("client"))),
        )
        .expect("engine");
        let mut rx = eng.subscribe();
        let snap =
            tokio::time::timeout(Duration::from_secs(20), rx.wait_for(|s| s.status.is_some()))
                .await
                .expect("a status in time")
                .expect("engine alive")
                .clone();
        let st = snap.status.as_ref().expect("status");
        assert!(!st.healthy && st.message.contains("bad_data"), "{st:?}");
        eng.shutdown().await;
    });
}

fn info(id: &str) -> SeriesInfo {
    SeriesInfo {
        id: id.into(),
        name: id.into(),
        category: "test".into(),
        source: SourceKind::Host,
        instance: None,
    }
}

async fn send_points(tx: &mpsc::Sender<SourceEvent>, id: &str, from: i64, n: i64) {
    let points = (from..from + n)
        .map(|i| Point {
            timestamp: 1_700_000_000 + i * 60,
            value: 10.0 + (i as f64 * 0.7).sin(),
        })
        .collect();
    tx.send(SourceEvent::Points {
        info: info(id),
        points,
        restart: false,
    })
    .await
    .expect("engine alive");
}

/// The JSON API of `eng` on a free loopback port (POSTs need `token` when given).
async fn serve_api(
    eng: &engine::EngineHandle,
    token: Option<&str>,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let state = ApiState {
        snapshots: eng.subscribe(),
        controller: eng.controller(),
        token: token.map(Arc::from),
        push: None,
    };
    api::serve(
        "127.0.0.1:0".parse().expect("addr"),
        state,
        std::future::pending(),
    )
    .await
    .expect("serve")
}

#[test]
fn json_api_and_metrics_over_http() {
    rt().block_on(async {
        let (tx, rx) = mpsc::channel(64);
        let eng = engine::spawn(settings(SourceKind::Host, true), SourceSpec::Channel(rx))
            .expect("engine");
        send_points(&tx, "cpu_busy", 0, 400).await;
        send_points(&tx, "memory_used", 0, 400).await;
        let mut snaps = eng.subscribe();
        tokio::time::timeout(
            Duration::from_secs(30),
            snaps.wait_for(|s| {
                s.series.len() == 2
                    && s.series.iter().all(|v| {
                        v.ingested == 400
                            && v.forecast.as_ref().is_some_and(|f| f.forecast.is_some())
                    })
            }),
        )
        .await
        .expect("scored and forecast in time")
        .expect("engine alive");

        let (addr, server) = serve_api(&eng, Some("s3cret")).await;
        let base = format!("http://{addr}");
        let http = testkit::http_client().build().expect("client");
        let get = |path: &str| {
            let http = http.clone();
            let url = format!("{base}{path}");
            async move {
                let r = http.get(url).send().await.expect("GET");
                let code = r.status().as_u16();
                let body = r.text().await.expect("body");
                (code, body)
            }
        };
        let json = |s: &str| -> Value { serde_json::from_str(s).expect("JSON body") };

        let (code, body) = get("/api/v1/series").await;
        assert_eq!(code, 200);
        let v = json(&body);
        let list = v["series"].as_array().expect("series");
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["id"], "cpu_busy");
        assert_eq!(list[0]["ingested"], 400);
        assert!(list[0]["last"]["score"].is_number());
        assert!(list[0]["forecast"]["upper"].is_number(), "{}", list[0]);

        let (code, body) = get("/api/v1/points?series=cpu_busy&limit=5").await;
        assert_eq!(code, 200);
        let pts = json(&body)["points"].as_array().cloned().expect("points");
        assert_eq!(pts.len(), 5);
        assert_eq!(pts[4]["timestamp"], 1_700_000_000 + 399 * 60);

        let (code, body) = get("/api/v1/forecast?series=memory_used").await;
        assert_eq!(code, 200);
        let f = json(&body);
        let n = f["forecast"]["point"].as_array().map(Vec::len).unwrap_or(0);
        assert!(n > 0, "{f}");
        assert_eq!(f["forecast"]["lower"].as_array().map(Vec::len), Some(n));
        // The default model says what it chose and why (here: too short to validate).
        assert_eq!(f["forecast"]["model"], "auto", "{f}");
        let why = f["forecast"]["why"].as_str().unwrap_or_default();
        assert!(
            why.starts_with("validation MAE") || why.starts_with("no validation origin"),
            "{f}"
        );

        let (code, body) = get("/api/v1/points?series=nope").await;
        assert_eq!(code, 404);
        assert!(json(&body)["error"].as_str().expect("error").contains("nope"));
        let (code, _) = get("/api/v1/points").await;
        assert_eq!(code, 400);
        let (code, _) = get("/api/v2/anything").await;
        assert_eq!(code, 404);

        let (code, body) = get("/api/v1/status").await;
        assert_eq!(code, 200);
        assert_eq!(json(&body)["series"], 2);

        let (code, body) = get("/metrics").await;
        assert_eq!(code, 200);
        assert!(body.contains(
            r#"pulsewatch_points_ingested_total{category="test",series="cpu_busy",source="host"} 400"#
        ));
        if let Some((ok, msg)) = servers::promtool_check_metrics(&body) {
            assert!(ok, "promtool: {msg}");
        }

        // POSTs need the token.
        let post = |path: &str, body: &str, token: Option<&str>| {
            let mut rb = http.post(format!("{base}{path}")).body(body.to_string());
            if let Some(t) = token {
                rb = rb.bearer_auth(t);
            }
            async move {
                let r = rb.send().await.expect("POST");
                (r.status().as_u16(), r.text().await.expect("body"))
            }
        };
        let (code, _) = post("/api/v1/retrain", "", None).await;
        assert_eq!(code, 401);
        let (code, _) = post("/api/v1/retrain", "", Some("wrong")).await;
        assert_eq!(code, 401);
        let (code, body) = post("/api/v1/retrain", "{\"series\":\"nope\"}", Some("s3cret")).await;
        assert_eq!(code, 404, "{body}");
        let (code, body) = post("/api/v1/retrain", "{\"serie\":1}", Some("s3cret")).await;
        assert_eq!(code, 400, "{body}");
        let (code, body) =
            post("/api/v1/retrain", "{\"series\":\"cpu_busy\"}", Some("s3cret")).await;
        assert_eq!(code, 202, "{body}");
        tokio::time::timeout(
            Duration::from_secs(20),
            snaps.wait_for(|s| {
                s.get("cpu_busy")
                    .is_some_and(|v| matches!(v.training, Some(TrainState::Finished { .. })))
            }),
        )
        .await
        .expect("retrain finished")
        .expect("engine alive");

        // A spike through the API lands on the next point, marked and flagged.
        let (code, body) = post(
            "/api/v1/spike",
            "{\"series\":\"cpu_busy\",\"magnitude\":12}",
            Some("s3cret"),
        )
        .await;
        assert_eq!(code, 202, "{body}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        send_points(&tx, "cpu_busy", 400, 1).await;
        let snap: Arc<Snapshot> = tokio::time::timeout(
            Duration::from_secs(10),
            snaps.wait_for(|s| s.get("cpu_busy").is_some_and(|v| v.ingested == 401)),
        )
        .await
        .expect("point scored")
        .expect("engine alive")
        .clone();
        let last = snap.get("cpu_busy").and_then(|v| v.last()).expect("last");
        assert!(last.injected && last.anomaly, "{last:?}");
        eng.send(Control::Pause);
        server.abort();
        eng.shutdown().await;
    });
}

#[test]
fn metrics_with_promql_series_names_pass_promtool() {
    // Series ids with quotes, braces and slashes, as the PromQL source makes them.
    rt().block_on(async {
        let (tx, rx) = mpsc::channel(8);
        let eng = engine::spawn(
            settings(SourceKind::Prometheus, false),
            SourceSpec::Channel(rx),
        )
        .expect("engine");
        for id in [
            r#"cpu_busy{instance="10.0.0.1:9100"}"#,
            r#"disk{path="/var/lib",instance="a\"b"}"#,
        ] {
            send_points(&tx, id, 0, 20).await;
        }
        let mut snaps = eng.subscribe();
        let snap = tokio::time::timeout(
            Duration::from_secs(10),
            snaps.wait_for(|s| s.series.len() == 2),
        )
        .await
        .expect("in time")
        .expect("alive")
        .clone();
        let text = metrics::render(&snap).expect("render");
        assert!(
            text.contains(r#"series="disk{path=\"/var/lib\",instance=\"a\\\"b\"}""#),
            "{text}"
        );
        if let Some((ok, msg)) = servers::promtool_check_metrics(&text) {
            assert!(ok, "promtool: {msg}\n{text}");
        }
        eng.shutdown().await;
    });
}

/// Points of a wave with spikes at the given offsets, each higher than the one before (`pulse`
/// flags new records): +50, +120, +190, ...
fn spiked(from: i64, n: i64, spikes: &[i64]) -> Vec<Point> {
    (from..from + n)
        .map(|i| {
            let k = spikes.iter().position(|&s| s == i);
            Point {
                timestamp: 1_700_000_000 + i * 60,
                value: 10.0 + (i as f64 * 0.7).sin() + k.map_or(0.0, |k| 50.0 + 70.0 * k as f64),
            }
        })
        .collect()
}

#[test]
fn anomaly_events_survive_a_restart_and_the_api_lists_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("state/events.jsonl");
    let with_file = || {
        let mut s = settings(SourceKind::Host, false);
        s.events_file = Some(file.clone());
        s
    };
    rt().block_on(async {
        // First run: two spikes on "a", one on "b" → three events; "b" ends flagged (a running
        // event, closed and kept when the engine stops).
        let (tx, rx) = mpsc::channel(64);
        let eng = engine::spawn(with_file(), SourceSpec::Channel(rx)).expect("engine");
        for (id, spikes) in [("a", vec![300, 480]), ("b", vec![499])] {
            tx.send(SourceEvent::Points {
                info: info(id),
                points: spiked(0, 500, &spikes),
                restart: false,
            })
            .await
            .expect("engine alive");
        }
        let mut snaps = eng.subscribe();
        wait_until("two closed events and one running", 10, || {
            let s = snaps.borrow_and_update().clone();
            s.events.len() == 2 && s.events_newest_first().len() == 3
        })
        .await;
        let s = eng.latest();
        let newest = s.events_newest_first();
        assert_eq!(newest[0].series, "b");
        assert!(newest[0].open);
        assert_eq!(
            newest.iter().map(|e| e.peak_timestamp).collect::<Vec<_>>(),
            [499, 480, 300].map(|i| 1_700_000_000 + i * 60)
        );
        for e in &newest {
            assert!(e.peak_value > 55.0, "{e:?}");
            assert_eq!(e.detector, "pulse");
            let signal = e.reason.as_ref().map(|r| r.signal.as_str());
            // A spike is a new level, a new step, and (on a short, calm series whose
            // level-shift envelope is still narrow) the strongest level-shift evidence.
            assert!(
                matches!(signal, Some("level" | "step" | "level_shift")),
                "{e:?}"
            );
        }
        // The API over HTTP: newest first, `series`, `since` (seconds or RFC 3339), `limit`.
        let (addr, server) = serve_api(&eng, None).await;
        let http = testkit::http_client().build().expect("client");
        let get = |q: String| {
            let http = http.clone();
            async move {
                let r = http
                    .get(format!("http://{addr}/api/v1/anomalies{q}"))
                    .send()
                    .await
                    .expect("GET");
                let code = r.status().as_u16();
                let body = r.bytes().await.expect("body");
                (code, serde_json::from_slice::<Value>(&body).expect("JSON"))
            }
        };
        let (code, all) = get(String::new()).await;
        assert_eq!(code, 200);
        assert_eq!(all["events"].as_array().map(Vec::len), Some(3), "{all}");
        assert_eq!(all["events"][0]["series"], "b");
        assert_eq!(all["events"][0]["open"], true);
        assert!(
            all["events"][0]["reason"]["text"]
                .as_str()
                .is_some_and(|t| t.contains("above"))
        );
        let (_, a) = get("?series=a&limit=1".into()).await;
        assert_eq!(a["matching"], 2);
        assert_eq!(a["events"].as_array().map(Vec::len), Some(1));
        assert_eq!(a["events"][0]["peak_timestamp"], 1_700_000_000 + 480 * 60);
        let since = 1_700_000_000 + 350 * 60;
        let (_, recent) = get(format!("?since={since}")).await;
        assert_eq!(recent["matching"], 2, "{recent}");
        let (_, rfc) = get("?since=2023-11-14T22:13:20Z".into()).await;
        assert_eq!(rfc["matching"], 3, "{rfc}");
        let (code, bad) = get("?since=yesterday".into()).await;
        assert_eq!(code, 400);
        assert!(
            bad["error"].as_str().is_some_and(|e| e.contains("since")),
            "{bad}"
        );
        let (code, _) = get("?series=nope".into()).await;
        assert_eq!(code, 404);
        server.abort();
        eng.shutdown().await;
        drop(tx);

        // The file holds all three, the running one closed.
        let text = std::fs::read_to_string(&file).expect("events file");
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(!text.contains("\"open\":true"), "{text}");

        // Second run on the same file: the events are back before any point arrives.
        let (_tx2, rx2) = mpsc::channel(64);
        let eng = engine::spawn(with_file(), SourceSpec::Channel(rx2)).expect("engine");
        let s = eng.latest();
        assert_eq!(s.events.len(), 3);
        assert!(s.events_warning.is_none());
        assert_eq!(s.events_newest_first()[0].series, "b");
        eng.shutdown().await;

        // A damaged file is reported, kept aside, and a new one started with what was readable.
        let mut damaged = std::fs::read_to_string(&file).expect("read");
        damaged.push_str("{\"series\": \"cut short");
        std::fs::write(&file, &damaged).expect("damage");
        let (_tx3, rx3) = mpsc::channel(64);
        let eng = engine::spawn(with_file(), SourceSpec::Channel(rx3)).expect("engine");
        let s = eng.latest();
        assert_eq!(s.events.len(), 3);
        let w = s.events_warning.clone().expect("a warning");
        assert!(w.contains("line 4") && w.contains("kept aside"), "{w}");
        eng.shutdown().await;
        let aside: Vec<_> = std::fs::read_dir(file.parent().expect("dir"))
            .expect("ls")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1);
        assert_eq!(
            std::fs::read_to_string(aside[0].path()).expect("aside"),
            damaged
        );
    });
}

/// Daily waves (five-minute steps, a little deterministic noise) named `ids`, `hours` long.
fn daily_series(ids: &[&str], hours: i64) -> Vec<SourceEvent> {
    let step = 300;
    let t0 = 1_700_006_400;
    let n = hours * 3600 / step;
    ids.iter()
        .enumerate()
        .map(|(k, id)| SourceEvent::Points {
            info: SeriesInfo {
                id: (*id).into(),
                name: (*id).into(),
                category: "c".into(),
                source: SourceKind::Nab,
                instance: None,
            },
            points: (0..n)
                .map(|i| {
                    let t = t0 + i * step;
                    let day = 2.0 * std::f64::consts::PI * (t % 86_400) as f64 / 86_400.0;
                    Point {
                        timestamp: t,
                        value: 10.0 * (k + 1) as f64 * (1.0 + day.sin())
                            + ((i * 7919 + k as i64) % 17) as f64 / 17.0,
                    }
                })
                .collect(),
            restart: false,
        })
        .collect()
}

/// Two batch configurations (two cron lines, different series) sharing one model folder keep
/// each other's `auto` choices: a run of the one carries the other's over while they could
/// still be reused, so the other's next run reuses them instead of validating again; choices a
/// horizon older than the run's own are dropped (the series is gone, or they would be validated
/// again anyway).
#[test]
fn batch_runs_of_two_configurations_sharing_a_model_folder_keep_each_other_s_choices() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("models").join(engine::choices::FILE);
    let mut s = settings(SourceKind::Nab, true);
    s.core.history = 5000;
    s.auto_choices_file = Some(file.clone());
    let saved = || -> Value {
        serde_json::from_str(&std::fs::read_to_string(&file).expect("choices file")).expect("json")
    };
    let validated = |id: &str| saved()["choices"][id]["validated_end"].as_i64();
    // Configuration one (series a, b), then configuration two (series x), a few hours apart.
    engine::run_batch(&s, daily_series(&["a", "b"], 6 * 24)).expect("one");
    let a1 = validated("a").expect("a validated");
    engine::run_batch(&s, daily_series(&["x"], 6 * 24 + 3)).expect("two");
    assert!(validated("x").is_some(), "{}", saved());
    assert_eq!(validated("a"), Some(a1), "two's run dropped one's choices");
    assert!(validated("b").is_some());
    // One again, two hours later: its choices are reused (not validated again), and two's kept.
    engine::run_batch(&s, daily_series(&["a", "b"], 6 * 24 + 2)).expect("one again");
    assert_eq!(validated("a"), Some(a1));
    let x = validated("x").expect("x kept");
    // Two, two days later: one's choices are a horizon older than its own and are dropped.
    engine::run_batch(&s, daily_series(&["x"], 8 * 24 + 3)).expect("two later");
    assert!(validated("x").is_some_and(|e| e > x));
    assert_eq!(validated("a"), None, "{}", saved());
}

/// Batch mode (`--once`) keeps `auto`'s validated choices in a file between runs: a run with
/// less than a horizon of new data reuses them (the validation time stays), one a day later
/// validates again; a corrupt file or one made for another interval width is not used (and is
/// replaced), and the run still forecasts.
#[test]
fn batch_runs_keep_auto_s_choices_between_runs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("models").join(engine::choices::FILE);
    let mut s = settings(SourceKind::Nab, true);
    s.core.history = 5000;
    s.auto_choices_file = Some(file.clone());
    let events = |hours: i64| daily_series(&["a", "b"], hours);
    let saved = || -> Value {
        serde_json::from_str(&std::fs::read_to_string(&file).expect("choices file")).expect("json")
    };
    let validated = |v: &Value, id: &str| v["choices"][id]["validated_end"].as_i64();
    let forecasts = |snap: &Snapshot| {
        ["a", "b"].iter().all(|id| {
            snap.get(id)
                .is_some_and(|v| v.forecast.as_ref().is_some_and(|f| f.forecast.is_some()))
        })
    };

    let bands = |snap: &Snapshot, id: &str| {
        let f = snap.get(id)?.forecast.as_ref()?.forecast.clone()?;
        Some((f.point.clone(), f.lower.clone(), f.upper.clone()))
    };
    // Six days: validated and saved.
    let snap = engine::run_batch(&s, events(6 * 24)).expect("run 1");
    assert!(forecasts(&snap));
    let first = saved();
    // The same data again: the saved choice and band give the very same forecast (every
    // number survives the file exactly).
    let again = engine::run_batch(&s, events(6 * 24)).expect("run 1 again");
    for id in ["a", "b"] {
        assert!(bands(&snap, id).is_some());
        assert_eq!(bands(&again, id), bands(&snap, id), "series {id}");
    }
    assert_eq!(first["format"], "pulsewatch.auto-choices/v1");
    let end1 = validated(&first, "a").expect("a validated");
    assert!(validated(&first, "b").is_some(), "{first}");
    // Two hours later: the saved choices are reused, not validated again.
    let snap = engine::run_batch(&s, events(6 * 24 + 2)).expect("run 2");
    assert!(forecasts(&snap));
    assert_eq!(validated(&saved(), "a"), Some(end1));
    // A day later: validated again.
    engine::run_batch(&s, events(7 * 24 + 2)).expect("run 3");
    let end3 = validated(&saved(), "a").expect("a");
    assert!(end3 >= end1 + 86_400, "{end3} vs {end1}");
    // A corrupt file is not used, and is replaced by this run's choices.
    std::fs::write(&file, "not json").expect("write");
    let snap = engine::run_batch(&s, events(7 * 24 + 3)).expect("run 4");
    assert!(forecasts(&snap));
    assert!(validated(&saved(), "a").is_some_and(|e| e > end3));
    // Another interval width: validated afresh.
    let before = validated(&saved(), "a");
    s.forecast.as_mut().expect("forecast").interval_width = 0.8;
    engine::run_batch(&s, events(7 * 24 + 4)).expect("run 5");
    let fifth = saved();
    assert_eq!(fifth["interval_width"], 0.8);
    assert!(validated(&fifth, "a") > before);
}
