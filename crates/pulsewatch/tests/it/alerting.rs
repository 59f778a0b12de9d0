//! compose/alerts.yml: `promtool check rules`, its unit tests (`promtool test rules
//! compose/alerts.test.yml`, which must also fail on a wrong expectation), the file's conventions
//! (severity, summary, description; every rule tested firing and not firing), and the rules end
//! to end: the real binary replaying a small corpus and pushing to a real Pushgateway, a real
//! Prometheus evaluating compose/alerts.yml verbatim every second and a real Alertmanager
//! configured by compose/alertmanager.yml. A spike injected through the API must fire
//! PulsewatchAnomaly in Alertmanager for that series only, with its labels and an exact summary,
//! and the alert must resolve about a minute later.

use crate::support::servers;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use yaml_rust2::{Yaml, YamlLoader};

fn compose_dir() -> PathBuf {
    testkit::corpus::repo_root().join("compose")
}

fn load_yaml(path: &Path) -> Yaml {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut docs = YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()));
    assert_eq!(docs.len(), 1, "{}: one YAML document", path.display());
    docs.remove(0)
}

/// Runs promtool with `args`; (success, stdout + stderr).
fn promtool(bin: &Path, args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new(bin)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Every rule of compose/alerts.yml (alerting rules only: the file has no recording rules).
fn rules() -> Vec<Yaml> {
    let doc = load_yaml(&compose_dir().join("alerts.yml"));
    let groups = doc["groups"].as_vec().expect("groups");
    assert!(!groups.is_empty(), "alerts.yml: no groups");
    groups
        .iter()
        .flat_map(|g| g["rules"].as_vec().expect("rules").clone())
        .collect()
}

#[test]
fn alert_rules_pass_promtool_check_rules() {
    let Some(bin) = servers::require(servers::PROMTOOL) else {
        return;
    };
    let n = rules().len();
    let (ok, out) = promtool(&bin, &["check", "rules", "alerts.yml"], &compose_dir());
    assert!(ok, "promtool check rules compose/alerts.yml:\n{out}");
    assert!(
        out.contains(&format!("SUCCESS: {n} rules found")),
        "promtool found another number of rules than the {n} in the file:\n{out}"
    );
}

#[test]
fn alert_rules_have_severity_summary_description_and_unit_tests_firing_and_not() {
    let mut names = BTreeSet::new();
    for r in rules() {
        let name = r["alert"]
            .as_str()
            .unwrap_or_else(|| panic!("a rule that is not an alert: {r:?}"));
        assert!(names.insert(name.to_string()), "alert {name} defined twice");
        assert!(name.starts_with("Pulsewatch"), "{name}: not Pulsewatch*");
        let severity = r["labels"]["severity"].as_str().unwrap_or_default();
        assert!(
            ["warning", "critical"].contains(&severity),
            "{name}: severity {severity:?}, want warning or critical"
        );
        for a in ["summary", "description"] {
            assert!(
                r["annotations"][a]
                    .as_str()
                    .is_some_and(|t| t.trim().len() > 20),
                "{name}: no {a} annotation"
            );
        }
        assert!(
            r["annotations"]["description"]
                .as_str()
                .is_some_and(|d| d.contains("Runbook:")),
            "{name}: the description has no runbook"
        );
    }

    // Which alerts the unit tests expect firing and which not, at some evaluation time.
    let tests = load_yaml(&compose_dir().join("alerts.test.yml"));
    assert_eq!(
        tests["rule_files"],
        Yaml::Array(vec![Yaml::String("alerts.yml".into())]),
        "alerts.test.yml tests compose/alerts.yml"
    );
    let mut firing: BTreeMap<String, usize> = BTreeMap::new();
    let mut quiet: BTreeMap<String, usize> = BTreeMap::new();
    for t in tests["tests"].as_vec().expect("tests") {
        for c in t["alert_rule_test"].as_vec().into_iter().flatten() {
            let name = c["alertname"].as_str().expect("alertname").to_string();
            assert!(names.contains(&name), "a test of unknown alert {name}");
            let exp = c["exp_alerts"].as_vec().expect("exp_alerts");
            if exp.is_empty() {
                *quiet.entry(name).or_default() += 1;
                continue;
            }
            for e in exp {
                assert!(
                    e["exp_annotations"]["summary"].as_str().is_some()
                        && e["exp_annotations"]["description"].as_str().is_some(),
                    "{name}: a firing case without its exact summary and description"
                );
                assert!(
                    e["exp_labels"]["severity"].as_str().is_some(),
                    "{name}: a firing case without its labels"
                );
            }
            *firing.entry(name).or_default() += 1;
        }
    }
    for name in &names {
        assert!(
            firing.contains_key(name),
            "{name}: no unit test where it fires"
        );
        assert!(
            quiet.contains_key(name),
            "{name}: no unit test where it does not fire"
        );
    }
}

#[test]
fn alert_rules_pass_their_promtool_unit_tests_and_a_wrong_expectation_fails() {
    let Some(bin) = servers::require(servers::PROMTOOL) else {
        return;
    };
    let (ok, out) = promtool(&bin, &["test", "rules", "alerts.test.yml"], &compose_dir());
    assert!(ok, "promtool test rules compose/alerts.test.yml:\n{out}");
    assert!(out.contains("SUCCESS"), "{out}");

    // The same tests with one expected summary off by one digit must fail, naming the alert:
    // promtool compares the expanded annotations, not just the alert names.
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        compose_dir().join("alerts.yml"),
        tmp.path().join("alerts.yml"),
    )
    .expect("copy alerts.yml");
    let tests = std::fs::read_to_string(compose_dir().join("alerts.test.yml"))
        .expect("read alerts.test.yml");
    let right = "value 26288, expected 23697.1 to 25899";
    assert!(
        tests.contains(right),
        "alerts.test.yml no longer has {right:?}"
    );
    std::fs::write(
        tmp.path().join("alerts.test.yml"),
        tests.replacen(right, "value 26289, expected 23697.1 to 25899", 1),
    )
    .expect("write the altered tests");
    let (ok, out) = promtool(&bin, &["test", "rules", "alerts.test.yml"], tmp.path());
    assert!(!ok, "a wrong expected summary passed:\n{out}");
    assert!(
        out.contains("FAILED") && out.contains("alertname: PulsewatchAnomaly"),
        "{out}"
    );
}

/// The replayed corpus: two daily sines with a little noise, 30 days of five-minute points, one
/// to spike and one as the control. pulse flags a few points while it learns the first days of
/// the rhythm and nothing after that (the test does not rely on this: it counts).
const SPIKED: &str = "synthetic/sine_spiked.csv";
const CONTROL: &str = "synthetic/sine_control.csv";
const DAYS: u64 = 30;
/// Points a series must have had before the spike: four days, past pulse's learning period and
/// the flags of its first days.
const WARM: u64 = 1152;

fn sine_corpus(root: &Path) {
    let data = root.join("data/synthetic");
    std::fs::create_dir_all(&data).expect("create the corpus");
    std::fs::create_dir_all(root.join("labels")).expect("create labels/");
    for (file, phase) in [(SPIKED, 0.0), (CONTROL, 1.0)] {
        let mut csv = String::from("timestamp,value\n");
        for i in 0..DAYS * 288 {
            let m = 5 * i;
            let noise = ((i * 7919) % 101) as f64 / 100.0 - 0.5;
            let v =
                50.0 + 10.0 * (2.0 * std::f64::consts::PI * i as f64 / 288.0 + phase).sin() + noise;
            csv.push_str(&format!(
                "2015-01-{:02} {:02}:{:02}:00,{v:.3}\n",
                1 + m / 1440,
                (m % 1440) / 60,
                m % 60
            ));
        }
        let name = file.rsplit('/').next().expect("file name");
        std::fs::write(data.join(name), csv).expect("write a series");
    }
    std::fs::write(
        root.join("labels/combined_windows.json"),
        format!(r#"{{"{SPIKED}": [], "{CONTROL}": []}}"#),
    )
    .expect("write the labels file");
}

/// Polls `f` every 200 ms until it returns `Some`, at most `secs` seconds.
fn poll<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "timed out after {secs} s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn get_json(url: &str) -> Option<Value> {
    servers::http_get(url).and_then(|b| serde_json::from_str(&b).ok())
}

/// Go's `printf "%.6g"`, as the alert's summary formats numbers.
fn go_g6(x: f64) -> String {
    fn trim(s: &str) -> &str {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.')
        } else {
            s
        }
    }
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let sci = format!("{x:.5e}");
    let (mantissa, exp) = sci.split_once('e').expect("an exponent");
    let exp: i32 = exp.parse().expect("an integer exponent");
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.abs())
    } else {
        let decimals = (5 - exp).max(0) as usize;
        trim(&format!("{x:.decimals$}")).to_string()
    }
}

#[test]
fn go_g6_formats_like_go() {
    for (x, want) in [
        (26288.0, "26288"),
        (23697.1, "23697.1"),
        (0.0123456789, "0.0123457"),
        (57.123456, "57.1235"),
        (-3.5, "-3.5"),
        (1234567.0, "1.23457e+06"),
        (0.00001234, "1.234e-05"),
        (150.0, "150"),
    ] {
        assert_eq!(go_g6(x), want, "{x}");
    }
}

/// An instant query at `time` (RFC 3339); the first result's value and labels.
fn value_at(prom: &servers::Server, expr: &str, time: &str) -> Option<(f64, Value)> {
    let r = servers::api(
        prom,
        "/api/v1/query",
        &[("query", expr.to_string()), ("time", time.to_string())],
    );
    assert_eq!(r["status"], "success", "{expr} at {time}: {r}");
    let first = r["data"]["result"].as_array()?.first()?.clone();
    let v = first["value"][1].as_str()?.parse().ok()?;
    Some((v, first["metric"].clone()))
}

/// Prometheus' `GET /api/v1/rules`: every rule group with each rule's health and state.
fn rules_api(prom: &servers::Server) -> Value {
    let r = get_json(&format!("{}/api/v1/rules", prom.url())).expect("GET /api/v1/rules");
    assert_eq!(r["status"], "success", "{r}");
    r
}

fn anomaly_alerts_for(am: &servers::Server, series: &str) -> Vec<Value> {
    servers::alertmanager_alerts(am, &["alertname=\"PulsewatchAnomaly\""])
        .into_iter()
        .filter(|a| a["labels"]["series"] == series)
        .collect()
}

#[test]
fn an_injected_spike_fires_the_anomaly_alert_in_alertmanager_and_it_resolves() {
    let t_start = Instant::now();
    let rules_file = compose_dir().join("alerts.yml");
    let Some(pgw) = servers::pushgateway() else {
        return;
    };
    let Some(am) = servers::alertmanager(&compose_dir().join("alertmanager.yml")) else {
        return;
    };
    let api_port = servers::free_port();
    let api = format!("http://127.0.0.1:{api_port}");
    let tmp = tempfile::tempdir().expect("tempdir");
    let corpus = tmp.path().join("corpus");
    sine_corpus(&corpus);
    // 60 points a second per series: four days of points in 20 s; the 30 days last longer than
    // the test. No loop (a restarted series would learn again).
    let log = std::fs::File::create(tmp.path().join("pulsewatch.log")).expect("log file");
    let mut child = servers::KillOnDrop(
        servers::pulsewatch(tmp.path())
            .args(["--headless", "--listen", &format!("127.0.0.1:{api_port}")])
            .env("PULSEWATCH_DATA_DIR", &corpus)
            .env("PULSEWATCH_PUSHGATEWAY_URL", pgw.url())
            .env("PULSEWATCH_REPLAY_SPEED", "60")
            .env("PULSEWATCH_REPLAY_LOOP_AT_END", "false")
            // A day of points passes every 4.8 s: refit often, so the latest point stays within
            // the forecast's horizon and the summary has a band to name.
            .env("PULSEWATCH_FORECAST_REFRESH", "2s")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start pulsewatch --headless"),
    );
    let log_text =
        || std::fs::read_to_string(tmp.path().join("pulsewatch.log")).unwrap_or_default();

    // Warmed up: both series past the detector's learning. Prometheus starts only then, so what
    // was flagged while learning is already in the counters at its first scrape and is no
    // increase; from here on, every flagged point is.
    let warm = poll(&format!("both series past {WARM} points"), 60, || {
        if let Some(status) = child.exited() {
            panic!("pulsewatch exited with {status}:\n{}", log_text());
        }
        let v = get_json(&format!("{api}/api/v1/series"))?;
        let list = v["series"].as_array()?.clone();
        let ready = list.len() == 2
            && list.iter().all(|s| s["ingested"].as_u64() >= Some(WARM))
            && list
                .iter()
                .any(|s| s["id"] == SPIKED && s["forecast"].is_object());
        ready.then_some(list)
    });
    let flagged_while_learning = |id: &str| {
        warm.iter()
            .find(|s| s["id"] == id)
            .and_then(|s| s["anomalies"].as_u64())
            .unwrap_or_else(|| panic!("{id} not in {warm:?}"))
    };
    let (spiked_before, control_before) = (
        flagged_while_learning(SPIKED),
        flagged_while_learning(CONTROL),
    );
    let status = get_json(&format!("{api}/api/v1/status")).expect("GET /api/v1/status");
    let detector = status["detector"].as_str().expect("detector").to_string();
    let Some(prom) = servers::prometheus_alerting(
        &[&rules_file],
        am.port,
        pgw.port,
        Some(&format!("127.0.0.1:{api_port}")),
    ) else {
        return;
    };

    // Prometheus has scraped both counters twice (so a rise shows as an increase) and
    // pulsewatch itself, and every rule evaluates without error.
    poll("two scrapes of both counters", 30, || {
        let r = servers::query(
            &prom,
            "count_over_time(pulsewatch_anomalies_total{job=\"pulsewatch\", source=\"nab\", \
             category=\"synthetic\"}[1m]) >= 2",
        );
        (r.len() == 2).then_some(())
    });
    poll("up{job=\"pulsewatch-self\"} == 1", 30, || {
        (servers::query(&prom, "up{job=\"pulsewatch-self\"} == 1").len() == 1).then_some(())
    });
    let rule_count = rules().len();
    let groups = poll("every rule evaluated", 30, || {
        let r = rules_api(&prom);
        let groups = r["data"]["groups"].as_array()?.clone();
        let evaluated = groups
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .filter(|r| {
                r["lastEvaluation"]
                    .as_str()
                    .is_some_and(|t| !t.starts_with("0001"))
            })
            .count();
        (evaluated == rule_count).then_some(groups)
    });
    for g in &groups {
        for r in g["rules"].as_array().expect("rules") {
            assert_eq!(
                r["health"], "ok",
                "rule {} does not evaluate: {r}",
                r["name"]
            );
        }
    }
    assert!(
        anomaly_alerts_for(&am, "sine_spiked").is_empty(),
        "an anomaly alert before the spike"
    );

    // The spike.
    let t_spike = Instant::now();
    let code = servers::http_post(
        &format!("{api}/api/v1/spike"),
        None,
        &format!(r#"{{"series": "{SPIKED}", "magnitude": 6}}"#),
    );
    assert_eq!(code, 202, "POST /api/v1/spike");

    // Flagged: the injected point is marked and anomalous.
    let point = poll("the injected point", 20, || {
        let v = get_json(&format!("{api}/api/v1/points?series={SPIKED}&limit=200"))?;
        v["points"]
            .as_array()?
            .iter()
            .find(|p| p["injected"] == true)
            .cloned()
    });
    assert_eq!(
        point["anomaly"], true,
        "the injected spike was not flagged: {point}"
    );

    // Pushed: the Pushgateway serves the risen counter.
    poll("the counter at 1 in the Pushgateway", 20, || {
        let text = servers::http_get(&format!("{}/metrics", pgw.url()))?;
        text.lines()
            .any(|l| {
                l.starts_with("pulsewatch_anomalies_total{")
                    && l.contains("series=\"sine_spiked\"")
                    && l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) >= Some(1.0)
            })
            .then_some(())
    });

    // Fires in Alertmanager.
    let alert = poll(
        "PulsewatchAnomaly for sine_spiked in Alertmanager",
        60,
        || anomaly_alerts_for(&am, "sine_spiked").into_iter().next(),
    );
    let fire_secs = t_spike.elapsed().as_secs_f64();
    let labels = &alert["labels"];
    for (k, v) in [
        ("alertname", "PulsewatchAnomaly"),
        ("series", "sine_spiked"),
        ("category", "synthetic"),
        ("detector", detector.as_str()),
        ("source", "nab"),
        ("job", "pulsewatch"),
        ("severity", "warning"),
    ] {
        assert_eq!(labels[k], v, "label {k}: {alert}");
    }
    assert_eq!(alert["status"]["state"], "active", "{alert}");
    assert_eq!(alert["receivers"][0]["name"], "default", "{alert}");

    // The summary, exactly: the value and band Prometheus had when the rule first fired (the
    // alert's startsAt is that evaluation's time; Prometheus resends, with annotations expanded
    // again, only after a minute).
    let starts = alert["startsAt"].as_str().expect("startsAt");
    let sel = "{job=\"pulsewatch\", source=\"nab\", series=\"sine_spiked\"}";
    let (value, _) = value_at(&prom, &format!("pulsewatch_value{sel}"), starts)
        .unwrap_or_else(|| panic!("no pulsewatch_value at {starts}"));
    let lower = value_at(&prom, &format!("pulsewatch_forecast_lower{sel}"), starts);
    let upper = value_at(&prom, &format!("pulsewatch_forecast_upper{sel}"), starts);
    let band = match (lower, upper) {
        (Some((lo, m)), Some((hi, _))) => format!(
            "expected {} to {} ({} forecast band)",
            go_g6(lo),
            go_g6(hi),
            m["model"].as_str().unwrap_or_default()
        ),
        _ => "no forecast band".to_string(),
    };
    let want = format!(
        "Anomaly on sine_spiked (synthetic, {detector}): value {}, {band}",
        go_g6(value)
    );
    assert_eq!(alert["annotations"]["summary"], want, "{alert}");
    let description = alert["annotations"]["description"]
        .as_str()
        .unwrap_or_default();
    let (flagged, _) = value_at(
        &prom,
        "pulsewatch_anomalies_total{series=\"sine_spiked\"}",
        starts,
    )
    .expect("the counter when the alert fired");
    assert!(flagged >= (spiked_before + 1) as f64, "{flagged}");
    let want = format!(
        "The {detector} detector flagged points of sine_spiked (category synthetic, source nab) \
         in the last minute; {flagged} flagged since pulsewatch started. Runbook: "
    );
    assert!(
        description.starts_with(&want),
        "{description}\nwant {want}..."
    );

    // Only the spiked series, and none of the health alerts: pulsewatch, its pushes and the
    // Pushgateway are fine, and the rule group's selectors find their series.
    assert!(
        anomaly_alerts_for(&am, "sine_control").is_empty(),
        "an anomaly alert for the control series"
    );
    let others: Vec<Value> = servers::alertmanager_alerts(&am, &[])
        .into_iter()
        .filter(|a| a["labels"]["alertname"] != "PulsewatchAnomaly")
        .collect();
    assert!(others.is_empty(), "unexpected alerts: {others:?}");
    let r = rules_api(&prom);
    for g in r["data"]["groups"].as_array().expect("groups") {
        if g["name"] != "pulsewatch-health" {
            continue;
        }
        for rule in g["rules"].as_array().expect("rules") {
            assert_eq!(rule["state"], "inactive", "{}: {rule}", rule["name"]);
        }
    }

    // Resolves: gone from Alertmanager's active alerts once the rise has left the 1m window.
    let t_fire = Instant::now();
    poll("PulsewatchAnomaly for sine_spiked to resolve", 120, || {
        if let Some(status) = child.exited() {
            panic!("pulsewatch exited with {status}:\n{}", log_text());
        }
        anomaly_alerts_for(&am, "sine_spiked")
            .is_empty()
            .then_some(())
    });
    let resolve_secs = t_fire.elapsed().as_secs_f64();
    assert!(
        resolve_secs > 40.0,
        "resolved {resolve_secs:.1} s after firing: the 1m window should hold it about a minute"
    );
    // Nothing else fired meanwhile: the control series has no new flagged point.
    assert!(anomaly_alerts_for(&am, "sine_control").is_empty());
    let now = get_json(&format!("{api}/api/v1/series")).expect("GET /api/v1/series");
    let count = |id: &str| {
        now["series"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["id"] == id)
            .and_then(|s| s["anomalies"].as_u64())
    };
    // Live, pulse keeps flagging alarm-strength points during the rest after an alarm (the
    // spike's echo in its short windows, and the same time of day one day later that the daily
    // profile learnt a little of): the spike and up to ten more flagged points.
    let spiked = count(SPIKED).expect("the spiked series");
    assert!(
        (spiked_before + 1..=spiked_before + 11).contains(&spiked),
        "{spiked_before} flagged before the spike, {spiked} after: {now}"
    );
    assert_eq!(count(CONTROL), Some(control_before), "{now}");
    eprintln!(
        "alerting: fired {fire_secs:.1} s after the spike, resolved {resolve_secs:.1} s after \
         firing ({:.1} s after the spike); test took {:.1} s",
        t_spike.elapsed().as_secs_f64(),
        t_start.elapsed().as_secs_f64()
    );
    drop(child);
    drop(prom);
    drop(am);
    drop(pgw);
}
