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
        queries: vec![NamedQuery::new("synth", query)],
        shard: None,
        auth: Default::default(),
        headers: Default::default(),
        ca_file: None,
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
            .env(
                "PULSEWATCH_EVENTS_FILE",
                dir.path().join(format!("events{k}.jsonl")),
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

/// bcrypt hash of "pw-for-tests" (Prometheus' web config takes bcrypt hashes).
const TEST_HASH: &str = "$2b$05$y1/WE7rVpvfwmagA7FdohO0yI2/OKbtvRGECAR43TgFvdF5WEnW9e";

#[test]
fn promql_source_reads_a_prometheus_behind_basic_auth_and_names_the_url_on_401() {
    let exp = Exporter::start(5);
    let Some(prom) =
        servers::prometheus_with_basic_auth(&[exp.target()], "alice", TEST_HASH, "pw-for-tests")
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |password: &str| {
        let mut cmd = servers::pulsewatch(dir.path());
        cmd.args(["--once", "--json", "--source", "prometheus"])
            .env("PULSEWATCH_PROMETHEUS_URL", prom.url())
            .env("PULSEWATCH_PROMETHEUS_STEP", "1s")
            .env("PULSEWATCH_PROMETHEUS_WINDOW", "1m")
            .env("PULSEWATCH_PROMETHEUS_USERNAME", "alice")
            .env("PULSEWATCH_PROMETHEUS_PASSWORD", password)
            .env("PULSEWATCH_PUSHGATEWAY_URL", "")
            .env("PULSEWATCH_LOGGING_DIR", dir.path().join("logs"))
            .env(
                "PULSEWATCH_PROMETHEUS_QUERIES",
                "[{name = \"synth\", query = \"synth_load\"}]",
            );
        cmd.output().expect("run pulsewatch")
    };
    // A wrong password: exit 1, one message with the URL and the status, no secret.
    let out = run("wrong-pw-123");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&prom.url()) && stderr.contains("401"),
        "{stderr}"
    );
    assert!(!stderr.contains("wrong-pw-123"), "{stderr}");
    // The right one: the exporter's five series.
    let t0 = Instant::now();
    loop {
        let out = run("pw-for-tests");
        if out.status.code() == Some(0) {
            let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
            assert_eq!(doc["totals"]["series"], 5, "{doc}");
            assert!(!String::from_utf8_lossy(&out.stdout).contains("pw-for-tests"));
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // Nothing in the logs either.
    for entry in std::fs::read_dir(dir.path().join("logs"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        assert!(
            !text.contains("pw-for-tests") && !text.contains("wrong-pw-123"),
            "secret in {}",
            entry.path().display()
        );
    }
}

#[test]
fn once_reads_victoria_metrics_and_exits_2_while_its_latency_offset_hides_the_data() {
    let exp = Exporter::start(4);
    let Some(vm) = servers::victoria_metrics(&[exp.target()]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let run = || {
        let mut cmd = servers::pulsewatch(dir.path());
        cmd.args(["--once", "--json", "--source", "prometheus"])
            .env("PULSEWATCH_PROMETHEUS_URL", vm.url())
            .env("PULSEWATCH_PROMETHEUS_STEP", "1s")
            .env("PULSEWATCH_PROMETHEUS_WINDOW", "5m")
            .env("PULSEWATCH_PUSHGATEWAY_URL", "")
            .env(
                "PULSEWATCH_PROMETHEUS_QUERIES",
                "[{name = \"synth\", query = \"synth_load\"}]",
            );
        cmd.output().expect("run pulsewatch")
    };
    // Fresh data is younger than VictoriaMetrics' 30 s latency offset: nothing to score, exit 2.
    let out = run();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["empty_queries"], serde_json::json!(["synth"]));
    // Once the offset has passed, the same query reads the exporter's four series.
    let t0 = Instant::now();
    loop {
        std::thread::sleep(Duration::from_secs(2));
        let out = run();
        if out.status.code() == Some(0) {
            let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
            assert_eq!(doc["totals"]["series"], 4, "{doc}");
            let ids: Vec<&str> = doc["series"]
                .as_array()
                .expect("series")
                .iter()
                .filter_map(|s| s["id"].as_str())
                .collect();
            assert!(
                ids.iter().all(|id| id.contains("series=\"s00000")),
                "{ids:?}"
            );
            break;
        }
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "VictoriaMetrics never answered with data"
        );
    }
}

#[test]
fn backfill_to_victoria_metrics_reads_back_2014_values_exactly() {
    let Some(root) = crate::support::corpus::nab_root() else {
        return;
    };
    let Some(vm) = servers::victoria_metrics(&[]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let out = servers::pulsewatch(dir.path())
        .args(["backfill", "--series", "nyc_taxi", "--to"])
        .arg(vm.url())
        .arg("--data")
        .arg(&root)
        .output()
        .expect("run backfill");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("sent 10320 samples"));
    let corpus = pulsewatch_core::nab::Corpus::load(&root).expect("corpus");
    let s = corpus
        .series
        .iter()
        .find(|s| s.name == "nyc_taxi")
        .expect("nyc_taxi");
    // Make the import searchable, then read 100 points of 2014 back with query_range.
    let _ = servers::http_get(&format!("{}/internal/force_flush", vm.url()));
    let (from, to) = (s.timestamps[200], s.timestamps[299]);
    let t0 = Instant::now();
    let got = loop {
        let r = servers::api(
            &vm,
            "/api/v1/query_range",
            &[
                ("query", "pulsewatch_value{series=\"nyc_taxi\"}".to_string()),
                ("start", from.to_string()),
                ("end", to.to_string()),
                ("step", "1800".to_string()),
            ],
        );
        let values = r["data"]["result"][0]["values"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if values.len() == 100 {
            break values;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "read back {} points: {r}",
            values.len()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    for (i, v) in got.iter().enumerate() {
        let t = v[0].as_f64().expect("timestamp") as i64;
        let x: f64 = v[1].as_str().and_then(|x| x.parse().ok()).expect("value");
        assert_eq!(t, s.timestamps[200 + i], "timestamp {i}");
        assert_eq!(x, s.values[200 + i], "value at {t}");
    }
}
