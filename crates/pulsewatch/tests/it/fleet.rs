//! The PromQL source at fleet scale, against a real Prometheus scraping the synthetic exporter
//! (`testkit::exporter`): incremental polling (nothing handed out twice, later polls read only
//! what is new, a Prometheus restart ridden out) and `--once` over queries that find nothing.

use crate::support::servers;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use pulsewatch_core::config::NamedQuery;
use pulsewatch_engine::sources::promql::{
    LATE_STEPS, Poll, Poller, PromClient, PromSettings, STALE_STEPS,
};
use pulsewatch_engine::sources::source::unix_now;
use testkit::exporter::{self, Exporter};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn client(url: &str, query: &str) -> PromClient {
    PromClient::new(PromSettings {
        url: url.to_string(),
        step: Duration::from_secs(1),
        window: Duration::from_secs(300),
        timeout: Duration::from_secs(5),
        queries: vec![NamedQuery {
            name: "synth".into(),
            query: query.into(),
        }],
        shard: None,
    })
    .expect("client")
}

#[test]
fn incremental_polls_read_only_new_points_and_survive_a_prometheus_restart() {
    const N: usize = 40;
    let exp = Exporter::start(N);
    // Two minutes of history as TSDB blocks, then live scrapes every second.
    let now = unix_now();
    let history = exporter::openmetrics_history(&exp, N, now - 180, now - 60, 1);
    let Some(mut prom) =
        servers::prometheus_scraping(&[exp.target()], 1, servers::History::Text(&history))
    else {
        return;
    };
    let c = client(&prom.url(), exporter::METRIC);
    let rt = rt();
    let mut poller = Poller::default();
    let mut seen: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let record = |seen: &mut BTreeMap<String, Vec<i64>>, poll: &Poll| {
        for s in &poll.series {
            seen.entry(s.info.id.clone())
                .or_default()
                .extend(s.points.iter().map(|p| p.timestamp));
        }
    };
    // Wait for the first scrapes, then poll every second.
    let t0 = Instant::now();
    let first = loop {
        let p = rt.block_on(poller.poll(&c, unix_now()));
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        if poller.live() == N {
            break p;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "live {}",
            poller.live()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    record(&mut seen, &first);
    // The first read holds the backfilled history (about 120 points a series).
    let per_series = first.points_read / N;
    assert!(
        per_series >= 100,
        "first read: {per_series} points a series"
    );
    let mut later_reads = Vec::new();
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(1100));
        let p = rt.block_on(poller.poll(&c, unix_now()));
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        later_reads.push(p.points_read);
        record(&mut seen, &p);
    }
    // Later polls read a few steps a series, not the window.
    let bound = N * (LATE_STEPS + STALE_STEPS + 4) as usize;
    assert!(
        later_reads.iter().all(|&r| r <= bound),
        "later polls read {later_reads:?} points (bound {bound})"
    );

    // Prometheus goes away: the polls fail and say so; it comes back on the same data.
    prom.stop();
    let down = rt.block_on(poller.poll(&c, unix_now()));
    assert_eq!(down.errors.len(), 1, "{:?}", down.errors);
    assert!(down.errors[0].contains(&prom.url()), "{}", down.errors[0]);
    prom.restart();
    let t0 = Instant::now();
    let before: usize = seen.values().map(Vec::len).sum();
    loop {
        std::thread::sleep(Duration::from_millis(1000));
        let p = rt.block_on(poller.poll(&c, unix_now()));
        record(&mut seen, &p);
        let after: usize = seen.values().map(Vec::len).sum();
        if p.errors.is_empty() && after >= before + 3 * N {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(40),
            "no new points after the restart: {:?}",
            p.errors
        );
    }

    // Every series, every point once, in time order.
    assert_eq!(seen.len(), N);
    for (id, ts) in &seen {
        assert!(
            ts.windows(2).all(|w| w[0] < w[1]),
            "{id}: a timestamp handed out twice or out of order: {ts:?}"
        );
        assert!(ts.len() >= 120, "{id}: {} points", ts.len());
    }
    drop(exp);
}

#[test]
fn once_exits_2_when_no_query_returns_a_series() {
    let exp = Exporter::start(3);
    let Some(prom) = servers::prometheus_scraping(&[exp.target()], 1, servers::History::None)
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |query: &str| {
        let mut cmd = servers::pulsewatch(dir.path());
        cmd.args(["--once", "--json", "--source", "prometheus"])
            .env("PULSEWATCH_PROMETHEUS_URL", prom.url())
            .env("PULSEWATCH_PUSHGATEWAY_URL", "")
            .env(
                "PULSEWATCH_PROMETHEUS_QUERIES",
                format!("[{{name = \"synth\", query = \"{query}\"}}]"),
            );
        cmd.output().expect("run pulsewatch")
    };
    let out = run("synth_load{series=\\\"nope\\\"}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains("no query returned a series") && stderr.contains("synth"),
        "{stderr}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["empty_queries"], serde_json::json!(["synth"]));
    assert_eq!(doc["exit_code"], 2);
    assert!(
        doc["status"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no series from \"synth\"")),
        "{}",
        doc["status"]
    );
    // The same query once the exporter's series are scraped: exit 0 with three series.
    let t0 = Instant::now();
    loop {
        let out = run("synth_load");
        if out.status.code() == Some(0) {
            let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
            assert_eq!(doc["totals"]["series"], 3);
            assert_eq!(doc["exit_code"], 0);
            break;
        }
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "never found the series"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn pushed_shards(pgw: &servers::Server) -> Vec<String> {
    let text = servers::http_get(&format!("{}/metrics", pgw.url())).unwrap_or_default();
    let mut shards: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("pulsewatch_value{"))
        .filter_map(|l| l.split("shard=\"").nth(1))
        .filter_map(|r| r.split('"').next())
        .map(str::to_string)
        .collect();
    shards.sort();
    shards.dedup();
    shards
}

#[test]
fn two_shards_cover_every_series_once_and_keep_their_own_groups() {
    const N: usize = 40;
    let exp = Exporter::start(N);
    let Some(prom) = servers::prometheus_scraping(&[exp.target()], 1, servers::History::None)
    else {
        return;
    };
    let Some(pgw) = servers::pushgateway() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let base = |cmd: &mut std::process::Command| {
        cmd.env("PULSEWATCH_PROMETHEUS_URL", prom.url())
            .env("PULSEWATCH_PROMETHEUS_STEP", "1s")
            .env("PULSEWATCH_PROMETHEUS_WINDOW", "1m")
            .env(
                "PULSEWATCH_PROMETHEUS_QUERIES",
                "[{name = \"synth\", query = \"synth_load\"}]",
            );
    };
    // Wait for every series to be scraped.
    let t0 = Instant::now();
    while servers::query(&prom, exporter::METRIC).len() < N {
        assert!(t0.elapsed() < Duration::from_secs(30), "series not scraped");
        std::thread::sleep(Duration::from_millis(300));
    }
    // A range query ends on a whole second (the step): let the first samples fall before it.
    std::thread::sleep(Duration::from_secs(2));
    let mut ids = Vec::new();
    for k in 0..2 {
        let mut cmd = servers::pulsewatch(dir.path());
        cmd.args(["--once", "--json", "--source", "prometheus", "--shard"])
            .arg(format!("{k}/2"))
            .env("PULSEWATCH_PUSHGATEWAY_URL", "");
        base(&mut cmd);
        let out = cmd.output().expect("run a shard");
        assert!(
            out.status.success(),
            "shard {k}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        let mine: Vec<String> = doc["series"]
            .as_array()
            .expect("series")
            .iter()
            .filter_map(|s| s["id"].as_str().map(str::to_string))
            .collect();
        assert!(
            !mine.is_empty() && mine.len() < N,
            "shard {k}: {}",
            mine.len()
        );
        ids.push(mine);
    }
    let mut all: Vec<String> = ids.concat();
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!(before, all.len(), "a series in both shards");
    assert_eq!(all.len(), N, "every series in one shard");

    // Two long-running shards push side by side; stopping one deletes only its group.
    let mut children = Vec::new();
    for k in 0..2 {
        let mut cmd = servers::pulsewatch(dir.path());
        cmd.args(["--headless", "--source", "prometheus", "--shard"])
            .arg(format!("{k}/2"))
            .env("PULSEWATCH_PUSHGATEWAY_URL", pgw.url())
            .env(
                "PULSEWATCH_LOGGING_DIR",
                dir.path().join(format!("logs{k}")),
            )
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        base(&mut cmd);
        children.push(cmd.spawn().expect("start a shard"));
    }
    let t0 = Instant::now();
    while pushed_shards(&pgw) != ["0/2", "1/2"] {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "groups: {:?}",
            pushed_shards(&pgw)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let first = children.remove(0);
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &first.id().to_string()])
        .status();
    let mut first = first;
    let _ = first.wait();
    let t0 = Instant::now();
    while pushed_shards(&pgw) != ["1/2"] {
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "groups after stopping shard 0: {:?}",
            pushed_shards(&pgw)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
}
