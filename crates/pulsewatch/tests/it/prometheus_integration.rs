//! The binary against real servers (Debian's prometheus 2.42, prometheus-pushgateway 1.5.1 and
//! prometheus-node-exporter): `--once` pushes and Prometheus serves the values back with the
//! right labels; the PromQL source reads node-exporter CPU through Prometheus; a dead Pushgateway
//! makes `--once` fail clearly; the long-running mode deletes its group on SIGTERM; everything we
//! expose passes `promtool check metrics`.

use crate::support::corpus;
use crate::support::servers;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use servers::pulsewatch;

fn label<'a>(v: &'a Value, name: &str) -> &'a str {
    v["metric"][name].as_str().unwrap_or("")
}

fn value(v: &Value) -> f64 {
    v["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN)
}

#[test]
fn once_pushes_every_nab_series_and_prometheus_serves_them() {
    let Some(root) = corpus::nab_root() else {
        return;
    };
    let Some(pgw) = servers::pushgateway() else {
        return;
    };
    let Some(prom) = servers::prometheus(Some(pgw.port), None) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    // A capacity threshold on one series: its time to threshold is in the report and exported.
    std::fs::write(
        tmp.path().join("config.toml"),
        "[[forecast.thresholds]]\nseries = \"realKnownCause/nyc_taxi*\"\nabove = 20000\n",
    )
    .expect("write config");
    let mut cmd = pulsewatch(tmp.path());
    cmd.args(["--once", "--json"])
        .env("PULSEWATCH_DATA_DIR", &root)
        .env("PULSEWATCH_PUSHGATEWAY_URL", pgw.url());
    let report = servers::once_json(cmd, "NAB to a Pushgateway");

    // The documented schema.
    assert_eq!(report["schema"], "pulsewatch.once/v1");
    assert_eq!(report["source"], "nab");
    assert_eq!(report["detector"], "pulse");
    assert_eq!(report["totals"]["series"], 58);
    assert_eq!(report["push"]["pushed"], true, "{report}");
    assert_eq!(report["push"]["attempts"], 1);
    assert!(report["push"]["error"].is_null());
    let series = report["series"].as_array().expect("series array");
    assert_eq!(series.len(), 58);
    let total: u64 = series
        .iter()
        .map(|s| s["points"].as_u64().expect("points"))
        .sum();
    assert_eq!(report["totals"]["points"].as_u64(), Some(total));
    let taxi = series
        .iter()
        .find(|s| s["id"] == "realKnownCause/nyc_taxi.csv")
        .expect("nyc_taxi in the report");
    assert_eq!(taxi["points"], 10320);
    assert_eq!(taxi["category"], "realKnownCause");
    for key in ["timestamp", "value", "score", "anomaly"] {
        assert!(!taxi["last"][key].is_null(), "last.{key}: {taxi}");
    }
    for key in ["timestamp", "point", "lower", "upper"] {
        assert!(taxi["forecast"][key].is_number(), "forecast.{key}: {taxi}");
    }
    let cap = &taxi["capacity"];
    assert_eq!(cap["threshold"], 20000.0, "{taxi}");
    assert_eq!(cap["direction"], "above", "{taxi}");
    let eta = |b: &str| cap["eta_seconds"][b].as_f64();
    assert!(
        eta("likely").is_some()
            || cap["summary"]
                .as_str()
                .is_some_and(|s| s.contains("not within")),
        "{cap}"
    );
    if let (Some(e), Some(l)) = (eta("earliest"), eta("likely")) {
        assert!(e <= l, "{cap}");
    }
    let others = series.iter().filter(|s| !s["capacity"].is_null()).count();
    assert_eq!(others, 1, "only nyc_taxi has a threshold");

    // Prometheus scrapes the Pushgateway and serves every series with our labels.
    let scores = servers::wait_for_series(&prom, "pulsewatch_anomaly_score", 58);
    assert_eq!(scores.len(), 58);
    for s in &scores {
        assert_eq!(label(s, "job"), "pulsewatch", "{s}");
        assert_eq!(label(s, "source"), "nab", "{s}");
        assert_eq!(label(s, "detector"), "pulse", "{s}");
        assert!(!label(s, "series").is_empty() && !label(s, "category").is_empty());
        let v = value(s);
        assert!((0.0..=1.0).contains(&v), "score {v}: {s}");
    }
    let mut names: Vec<&str> = scores.iter().map(|s| label(s, "series")).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 58, "series label values are unique");

    let q = |expr: &str| {
        let r = servers::wait_for_series(&prom, expr, 1);
        assert_eq!(r.len(), 1, "{expr}: {r:?}");
        value(&r[0])
    };
    let sel = r#"{series="nyc_taxi",category="realKnownCause"}"#;
    assert_eq!(
        q(&format!("pulsewatch_points_ingested_total{sel}")),
        10320.0
    );
    assert_eq!(
        q(&format!("pulsewatch_point_timestamp_seconds{sel}")),
        taxi["last"]["timestamp"].as_f64().expect("ts")
    );
    assert_eq!(
        q(&format!("pulsewatch_value{sel}")),
        taxi["last"]["value"].as_f64().expect("value")
    );
    let score = q(&format!("pulsewatch_anomaly_score{sel}"));
    assert!((score - taxi["last"]["score"].as_f64().expect("score")).abs() < 1e-12);
    assert_eq!(
        q(&format!("pulsewatch_anomalies_total{sel}")),
        taxi["anomalies"].as_f64().expect("anomalies")
    );
    let lower = q(&format!("pulsewatch_forecast_lower{sel}"));
    let point = q(&format!("pulsewatch_forecast_value{sel}"));
    let upper = q(&format!("pulsewatch_forecast_upper{sel}"));
    assert!(lower <= point && point <= upper, "{lower} {point} {upper}");
    assert_eq!(point, taxi["forecast"]["point"].as_f64().expect("point"));
    // Time to threshold, one gauge per bound, +Inf where the forecast does not cross.
    let etas = servers::wait_for_series(&prom, "pulsewatch_forecast_threshold_eta_seconds", 3);
    assert_eq!(etas.len(), 3, "{etas:?}");
    for e in &etas {
        assert_eq!(label(e, "series"), "nyc_taxi", "{e}");
        let b = label(e, "bound");
        let want = eta(b).unwrap_or(f64::INFINITY);
        assert_eq!(value(e), want, "bound {b}: {e} vs {cap}");
    }
    assert_eq!(
        q("pulsewatch_forecast_threshold{direction=\"above\"}"),
        20000.0
    );
    let info = servers::wait_for_series(&prom, r#"pulsewatch_model_info{series="nyc_taxi"}"#, 1);
    // auto (the default) names its choice and that model's fit; the validation figures, which
    // change every fit, stay out of the label (one series per choice, not per fit).
    let chosen = label(&info[0], "forecast");
    assert!(
        ["snaive: ", "theta: ", "mstl: ", "ets: ", "mean of "]
            .iter()
            .any(|p| chosen.starts_with(p))
            && !chosen.contains("validation"),
        "{info:?}"
    );

    // --once is a batch job: its group stays after it exits.
    let groups = servers::http_get(&format!("{}/api/v1/metrics", pgw.url())).expect("groups");
    assert!(groups.contains(r#""source":"nab""#), "{groups}");

    // What the Pushgateway exposes (our group included) passes promtool.
    let exposed = servers::http_get(&format!("{}/metrics", pgw.url())).expect("pgw /metrics");
    assert!(exposed.contains("pulsewatch_anomaly_score{"));
    if let Some((ok, msg)) = servers::promtool_check_metrics(&exposed) {
        assert!(ok, "promtool check metrics: {msg}");
    }
}

#[test]
fn once_fails_clearly_when_the_pushgateway_is_down() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let port = servers::free_port();
    let t0 = Instant::now();
    let out = pulsewatch(tmp.path())
        .args(["--once", "--source", "host"])
        .env(
            "PULSEWATCH_PUSHGATEWAY_URL",
            format!("http://127.0.0.1:{port}"),
        )
        .env("PULSEWATCH_PUSHGATEWAY_TIMEOUT", "2s")
        .output()
        .expect("run pulsewatch --once");
    assert_eq!(out.status.code(), Some(1), "exit code");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stderr.contains("push failed"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "127.0.0.1:{port}/metrics/job/pulsewatch/source/host"
        )),
        "names the URL: {stderr}"
    );
    assert!(stderr.contains("after 4 attempts"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // The summary is still printed, ending with the failure.
    assert!(
        stdout.contains("cpu_busy") && stdout.contains("push FAILED"),
        "{stdout}"
    );
    // Four attempts, 1 s, 2 s and 4 s apart.
    assert!(t0.elapsed() >= Duration::from_secs(7));
}

/// Polls the log files under `dir/logs` until one contains `what`.
fn wait_for_log(dir: &std::path::Path, what: &str, child: &mut std::process::Child) {
    let t0 = Instant::now();
    loop {
        let mut text = String::new();
        if let Ok(rd) = std::fs::read_dir(dir.join("logs")) {
            for e in rd.flatten() {
                text.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        if text.contains(what) {
            return;
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!("pulsewatch exited ({st}) before logging {what:?}: {text}");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{what:?} not logged: {text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn finish(child: std::process::Child) -> (Option<i32>, Value, String) {
    let out = child.wait_with_output().expect("wait for pulsewatch");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code(), report, stderr)
}

/// `--once` with the Pushgateway down at its first push: it retries, the Pushgateway comes back
/// on the same port, the run succeeds and the group holds its series.
#[test]
fn once_rides_out_a_pushgateway_restart() {
    let Some(mut pgw) = servers::pushgateway() else {
        return;
    };
    pgw.stop();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut child = pulsewatch(tmp.path())
        .args(["--once", "--json", "--source", "host"])
        .env("PULSEWATCH_PUSHGATEWAY_URL", pgw.url())
        .env("PULSEWATCH_PUSHGATEWAY_TIMEOUT", "2s")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pulsewatch --once");
    wait_for_log(tmp.path(), "push failed; retrying", &mut child);
    pgw.restart();
    let (code, report, stderr) = finish(child);
    assert_eq!(code, Some(0), "{stderr}");
    let attempts = report["push"]["attempts"].as_u64().unwrap_or(0);
    assert!((2..=4).contains(&attempts), "{report}");
    assert_eq!(report["push"]["pushed"], true, "{report}");
    let g = servers::http_get(&format!("{}/api/v1/metrics", pgw.url())).expect("groups");
    assert!(g.contains(r#""source":"host""#), "{g}");
    assert!(g.contains("pulsewatch_value"), "{g}");
}

/// `--once --source prometheus` with Prometheus down at its first poll: it retries, Prometheus
/// comes back with its data, the run succeeds with the node-exporter series; and with Prometheus
/// gone for good it exits 1 naming the URL.
#[test]
fn once_rides_out_a_prometheus_restart_and_fails_clearly_without_it() {
    let Some(node) = servers::node_exporter() else {
        return;
    };
    let Some(mut prom) = servers::prometheus(None, Some(node.port)) else {
        return;
    };
    // A few scrapes, so that rate() has samples before and after the restart.
    servers::wait_for_series(
        &prom,
        "count_over_time(node_memory_MemTotal_bytes[1m]) > 3",
        1,
    );
    prom.stop();
    let tmp = tempfile::tempdir().expect("tempdir");
    let url = prom.url();
    let run = || {
        pulsewatch(tmp.path())
            .args(["--once", "--json", "--source", "prometheus"])
            .env("PULSEWATCH_PROMETHEUS_URL", &url)
            .env("PULSEWATCH_PROMETHEUS_STEP", "1s")
            .env("PULSEWATCH_PROMETHEUS_WINDOW", "5m")
            .env("PULSEWATCH_PROMETHEUS_TIMEOUT", "2s")
            .env("PULSEWATCH_PUSHGATEWAY_URL", "")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pulsewatch --once")
    };
    let mut child = run();
    wait_for_log(tmp.path(), "every query failed; retrying", &mut child);
    prom.restart();
    let (code, report, stderr) = finish(child);
    assert_eq!(code, Some(0), "{stderr}");
    let ids: Vec<&str> = report["series"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["id"].as_str()).collect())
        .unwrap_or_default();
    assert!(ids.iter().any(|id| id.starts_with("cpu_busy")), "{report}");
    assert_eq!(report["status"]["healthy"], true, "{report}");

    prom.stop();
    let (code, _, stderr) = finish(run());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("every PromQL query failed after 4 attempts"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("127.0.0.1:{}", prom.port)),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn promql_source_reads_node_exporter_cpu_through_prometheus() {
    let Some(node) = servers::node_exporter() else {
        return;
    };
    let Some(prom) = servers::prometheus(None, Some(node.port)) else {
        return;
    };
    // rate() over [1m] needs two samples: wait until Prometheus has them.
    let t0 = Instant::now();
    loop {
        let r = servers::query(&prom, r#"rate(node_cpu_seconds_total{mode="idle"}[1m])"#);
        if !r.is_empty() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no CPU rate after 30 s"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    std::thread::sleep(Duration::from_secs(2));
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = pulsewatch(tmp.path())
        .args(["--once", "--json", "--source", "prometheus"])
        .env("PULSEWATCH_PROMETHEUS_URL", prom.url())
        .env("PULSEWATCH_PROMETHEUS_STEP", "1s")
        .env("PULSEWATCH_PROMETHEUS_WINDOW", "2m")
        .env("PULSEWATCH_PUSHGATEWAY_URL", "")
        .output()
        .expect("run pulsewatch");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["source"], "prometheus");
    assert!(report["push"].is_null(), "export off");
    assert_eq!(report["source_errors"].as_array().map(Vec::len), Some(0));
    let series = report["series"].as_array().expect("series");
    let cpu = series
        .iter()
        .find(|s| s["category"] == "cpu_busy")
        .unwrap_or_else(|| panic!("a cpu_busy series: {report}"));
    let instance = format!("127.0.0.1:{}", node.port);
    assert_eq!(
        cpu["id"],
        format!("cpu_busy{{instance=\"{instance}\"}}"),
        "{cpu}"
    );
    assert!(cpu["points"].as_u64().expect("points") >= 2, "{cpu}");
    let v = cpu["last"]["value"].as_f64().expect("value");
    assert!((0.0..=1.0).contains(&v), "CPU busy ratio {v}");
    let mem = series
        .iter()
        .find(|s| s["category"] == "memory_used")
        .expect("memory_used");
    let m = mem["last"]["value"].as_f64().expect("value");
    assert!(m > 0.0 && m < 1.0, "memory used ratio {m}");
    assert!(series.iter().any(|s| s["category"] == "network_errors"));

    // A dead Prometheus: every query fails, --once says so and exits non-zero.
    let dead = servers::closed_port();
    let out = pulsewatch(tmp.path())
        .args(["--once", "--source", "prometheus"])
        .env(
            "PULSEWATCH_PROMETHEUS_URL",
            format!("http://127.0.0.1:{dead}"),
        )
        .env("PULSEWATCH_PUSHGATEWAY_URL", "")
        .output()
        .expect("run pulsewatch");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("every PromQL query failed") && stderr.contains("connection failed"),
        "{stderr}"
    );
}

#[test]
fn long_running_replay_deletes_its_group_on_sigterm_and_serves_metrics() {
    let Some(root) = corpus::nab_root() else {
        return;
    };
    let Some(pgw) = servers::pushgateway() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let api_port = servers::free_port();
    let mut child = pulsewatch(tmp.path())
        .args(["--headless", "--listen", &format!("127.0.0.1:{api_port}")])
        .env("PULSEWATCH_DATA_DIR", &root)
        .env("PULSEWATCH_PUSHGATEWAY_URL", pgw.url())
        .env("PULSEWATCH_REPLAY_SPEED", "200")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pulsewatch --headless");
    let groups_url = format!("{}/api/v1/metrics", pgw.url());
    let t0 = Instant::now();
    loop {
        let g = servers::http_get(&groups_url).unwrap_or_default();
        if g.contains("pulsewatch_points_ingested_total") {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no push after 30 s: {g}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Our /metrics serves the same metric set, and it passes promtool.
    let t0 = Instant::now();
    let ours = loop {
        let m = servers::http_get(&format!("http://127.0.0.1:{api_port}/metrics"))
            .expect("GET /metrics");
        if m.matches("pulsewatch_value{").count() == 58 {
            break m;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "not 58 series: {m}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(ours.contains("pulsewatch_anomaly_score{"), "{ours}");
    if let Some((ok, msg)) = servers::promtool_check_metrics(&ours) {
        assert!(ok, "promtool check metrics: {msg}");
    }
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(kill.success());
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no exit 20 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    assert!(status.success(), "exit status {status}: {err}");
    let g = servers::http_get(&groups_url).expect("groups");
    assert!(
        !g.contains("pulsewatch_points_ingested_total"),
        "group still there after exit: {g}"
    );
}

#[test]
fn credentials_never_reach_logs_or_output() {
    let Some(root) = corpus::nab_root() else {
        return;
    };
    let Some(pgw) = servers::pushgateway() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let secrets = [
        "pw-S3cr3t-basic",
        "tok-S3cr3t-bearer",
        "api-S3cr3t-token",
        "pw-S3cr3t-file",
        "api-S3cr3t-file",
    ];
    let pw_file = tmp.path().join("pushgateway-password");
    std::fs::write(&pw_file, format!("{}\n", secrets[3])).expect("write secret file");
    let token_file = tmp.path().join("api-token");
    std::fs::write(&token_file, secrets[4]).expect("write secret file");
    let mut outputs = Vec::new();
    // Basic auth on --once (the Pushgateway ignores it, so the push succeeds), debug logging.
    let out = pulsewatch(tmp.path())
        .args(["--once"])
        .env("PULSEWATCH_DATA_DIR", &root)
        .env("PULSEWATCH_PUSHGATEWAY_URL", pgw.url())
        .env("PULSEWATCH_PUSHGATEWAY_USERNAME", "user")
        .env("PULSEWATCH_PUSHGATEWAY_PASSWORD", secrets[0])
        .env("PULSEWATCH_LOGGING_LEVEL", "trace")
        .output()
        .expect("run --once");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    outputs.push(out);
    // A bearer token and an API token on a failing push.
    let out = pulsewatch(tmp.path())
        .args(["--once", "--source", "host"])
        .env(
            "PULSEWATCH_PUSHGATEWAY_URL",
            format!("http://127.0.0.1:{}", servers::closed_port()),
        )
        .env("PULSEWATCH_PUSHGATEWAY_BEARER_TOKEN", secrets[1])
        .env("PULSEWATCH_API_TOKEN", secrets[2])
        .env("PULSEWATCH_LOGGING_LEVEL", "trace")
        .output()
        .expect("run --once");
    assert_eq!(out.status.code(), Some(1));
    outputs.push(out);
    // print-config shows that secrets are set, not what they are.
    let out = pulsewatch(tmp.path())
        .args(["print-config"])
        .env("PULSEWATCH_PUSHGATEWAY_PASSWORD", secrets[0])
        .env("PULSEWATCH_PUSHGATEWAY_BEARER_TOKEN", secrets[1])
        .env("PULSEWATCH_API_TOKEN", secrets[2])
        .output()
        .expect("run print-config");
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success());
    assert_eq!(printed.matches("\"<hidden>\"").count(), 3, "{printed}");
    outputs.push(out);
    // Secrets from files, long-running with the API: the file's token guards the POSTs.
    let api_port = servers::free_port();
    let mut child = pulsewatch(tmp.path())
        .args(["--headless", "--listen", &format!("127.0.0.1:{api_port}")])
        .env("PULSEWATCH_DATA_DIR", &root)
        .env("PULSEWATCH_PUSHGATEWAY_URL", pgw.url())
        .env("PULSEWATCH_PUSHGATEWAY_USERNAME", "user")
        .env("PULSEWATCH_PUSHGATEWAY_PASSWORD_FILE", &pw_file)
        .env("PULSEWATCH_API_TOKEN_FILE", &token_file)
        .env("PULSEWATCH_LOGGING_LEVEL", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start --headless");
    let retrain = format!("http://127.0.0.1:{api_port}/api/v1/retrain");
    let t0 = Instant::now();
    while servers::http_post(&retrain, None, "{}") == 0 {
        assert!(t0.elapsed() < Duration::from_secs(30), "API not up");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(servers::http_post(&retrain, None, "{}"), 401);
    assert_eq!(servers::http_post(&retrain, Some("wrong"), "{}"), 401);
    assert_eq!(servers::http_post(&retrain, Some(secrets[4]), "{}"), 202);
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
    let _ = child.wait();
    outputs.push(child.wait_with_output().expect("output"));

    let mut seen = String::new();
    for o in &outputs {
        seen.push_str(&String::from_utf8_lossy(&o.stdout));
        seen.push_str(&String::from_utf8_lossy(&o.stderr));
    }
    let logs = tmp.path().join("logs");
    let mut files = 0;
    for entry in std::fs::read_dir(&logs).expect("log dir") {
        let path = entry.expect("entry").path();
        seen.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
        files += 1;
    }
    assert!(files >= 3, "log files written");
    assert!(seen.contains("push failed"), "the runs did log");
    assert!(seen.contains("retrain"), "the API run did log");
    for s in secrets {
        assert!(!seen.contains(s), "secret {s} leaked into logs or output");
    }
}
