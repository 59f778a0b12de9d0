//! The deployment files: compose/docker-compose.yml (services, pinned images, ports, paths that
//! exist), compose/prometheus.yml (`promtool check config`, which also checks the alerting rules
//! it loads; the rules' own tests are in `alerting`), compose/alertmanager.yml (`amtool
//! check-config`), Grafana's provisioning and grafana/dashboards/*.json (structure, the
//! provisioned datasource uid, `promtool check rules` on every panel and annotation query), and
//! every dashboard query against a real Prometheus fed by `pulsewatch --once` through a real
//! Pushgateway: each must return data.
//!
//! Needs the dev-dependency `yaml-rust2`. No Docker and no Grafana: neither runs here.

use crate::support::corpus;
use crate::support::servers;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use yaml_rust2::{Yaml, YamlLoader};

/// The compose services, the image each must come from (None: built here) and the port each
/// publishes on the host (the same port inside the container).
const SERVICES: [(&str, Option<&str>, Option<u16>); 6] = [
    ("prometheus", Some("prom/prometheus:"), Some(9090)),
    ("pushgateway", Some("prom/pushgateway:"), Some(9091)),
    ("alertmanager", Some("prom/alertmanager:"), Some(9093)),
    ("node-exporter", Some("prom/node-exporter:"), None),
    ("grafana", Some("grafana/grafana:"), Some(3000)),
    ("pulsewatch", None, Some(9185)),
];

/// Grafana macros and the values the checks put in their place.
const MACROS: [(&str, &str); 3] = [
    ("$__rate_interval", "1m"),
    ("$__interval", "15s"),
    ("$__range", "1h"),
];

fn repo() -> PathBuf {
    testkit::corpus::repo_root()
}

fn compose_dir() -> PathBuf {
    repo().join("compose")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn load_yaml(path: &Path) -> Yaml {
    let text = read(path);
    let mut docs = YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()));
    assert_eq!(docs.len(), 1, "{}: one YAML document", path.display());
    docs.remove(0)
}

fn compose() -> Yaml {
    load_yaml(&compose_dir().join("docker-compose.yml"))
}

fn service<'a>(doc: &'a Yaml, name: &str) -> &'a Yaml {
    let s = &doc["services"][name];
    assert!(
        s.as_hash().is_some(),
        "docker-compose.yml: no service {name:?}"
    );
    s
}

/// A list of strings (`[a, b]`), or a single string as a one-element list.
fn strings(y: &Yaml) -> Vec<String> {
    match y {
        Yaml::Array(a) => a
            .iter()
            .map(|v| match v {
                Yaml::String(s) | Yaml::Real(s) => s.clone(),
                Yaml::Integer(i) => i.to_string(),
                other => panic!("expected a string, got {other:?}"),
            })
            .collect(),
        Yaml::String(s) => vec![s.clone()],
        Yaml::BadValue | Yaml::Null => Vec::new(),
        other => panic!("expected a list of strings, got {other:?}"),
    }
}

/// A service's `environment`, as a map (`KEY: value`) or a list (`KEY=value`).
fn environment(svc: &Yaml) -> Vec<(String, String)> {
    match &svc["environment"] {
        Yaml::Hash(h) => h
            .iter()
            .map(|(k, v)| {
                let key = k.as_str().expect("environment key").to_string();
                let value = match v {
                    Yaml::String(s) | Yaml::Real(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    Yaml::Null => String::new(),
                    other => panic!("environment {key}: unexpected {other:?}"),
                };
                (key, value)
            })
            .collect(),
        other => strings(other)
            .into_iter()
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
                (k.to_string(), v.to_string())
            })
            .collect(),
    }
}

/// A service's bind mounts and named volumes: (source, target).
fn volumes(svc: &Yaml) -> Vec<(String, String)> {
    let Some(list) = svc["volumes"].as_vec() else {
        return Vec::new();
    };
    list.iter()
        .map(|v| match v {
            Yaml::String(s) => {
                let mut parts = s.splitn(3, ':');
                let src = parts.next().unwrap_or_default().to_string();
                let dst = parts
                    .next()
                    .unwrap_or_else(|| panic!("volume {s:?} has no target"))
                    .to_string();
                (src, dst)
            }
            Yaml::Hash(_) => (
                v["source"].as_str().unwrap_or_default().to_string(),
                v["target"]
                    .as_str()
                    .unwrap_or_else(|| panic!("volume {v:?} has no target"))
                    .to_string(),
            ),
            other => panic!("unexpected volume {other:?}"),
        })
        .collect()
}

fn is_host_path(src: &str) -> bool {
    src.starts_with('.') || src.starts_with('/') || src.starts_with('~')
}

#[test]
fn compose_services_use_pinned_images_the_documented_ports_and_existing_paths() {
    let doc = compose();
    let dir = compose_dir();
    let named: HashSet<String> = doc["volumes"]
        .as_hash()
        .map(|h| {
            h.keys()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();

    for (name, image_prefix, port) in SERVICES {
        let svc = service(&doc, name);
        if let Some(prefix) = image_prefix {
            let image = svc["image"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: no image"));
            assert!(
                image.starts_with(prefix),
                "{name}: image {image:?}, want {prefix}<tag>"
            );
            let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or_default();
            assert!(
                !tag.is_empty() && !tag.contains('/') && tag != "latest",
                "{name}: image {image:?} is not pinned to a tag"
            );
        }
        if let Some(port) = port {
            let published: Vec<(u16, u16)> = strings(&svc["ports"])
                .iter()
                .map(|p| {
                    let p = p.trim_end_matches("/tcp");
                    let mut it = p.rsplit(':');
                    let container = it.next().and_then(|c| c.parse().ok());
                    let host = it.next().and_then(|h| h.parse().ok());
                    match (host, container) {
                        (Some(h), Some(c)) => (h, c),
                        _ => panic!("{name}: cannot read port {p:?} as [IP:]HOST:CONTAINER"),
                    }
                })
                .collect();
            assert!(
                published.contains(&(port, port)),
                "{name}: port {port} not published as {port}:{port}: {published:?}"
            );
        }
        for (src, dst) in volumes(svc) {
            if is_host_path(&src) {
                let p = if src.starts_with('/') {
                    PathBuf::from(&src)
                } else {
                    dir.join(&src)
                };
                assert!(
                    p.exists(),
                    "{name}: volume source {src} ({}) does not exist",
                    p.display()
                );
            } else {
                assert!(
                    named.contains(&src),
                    "{name}: named volume {src:?} (for {dst}) is not declared under volumes:"
                );
            }
        }
    }

    // Every service that builds: context and Dockerfile exist, and what the Dockerfile COPYs
    // from the context too.
    let services = doc["services"].as_hash().expect("services");
    for (k, svc) in services {
        let name = k.as_str().expect("service name");
        if let Some(image) = svc["image"].as_str() {
            assert!(
                image.contains(':') && !image.ends_with(":latest"),
                "{name}: image {image:?} is not pinned"
            );
        }
        let build = &svc["build"];
        if build.is_badvalue() {
            assert!(
                svc["image"].as_str().is_some(),
                "{name}: neither image nor build"
            );
            continue;
        }
        let context = dir.join(build["context"].as_str().or(build.as_str()).unwrap_or("."));
        assert!(
            context.is_dir(),
            "{name}: build context {} missing",
            context.display()
        );
        let dockerfile = context.join(build["dockerfile"].as_str().unwrap_or("Dockerfile"));
        assert!(
            dockerfile.is_file(),
            "{name}: {} missing",
            dockerfile.display()
        );
        for line in read(&dockerfile).lines() {
            let Some(rest) = line.trim().strip_prefix("COPY ") else {
                continue;
            };
            let args: Vec<&str> = rest.split_whitespace().collect();
            if args.iter().any(|a| a.starts_with("--from")) {
                continue;
            }
            let paths: Vec<&str> = args.into_iter().filter(|a| !a.starts_with("--")).collect();
            for src in &paths[..paths.len().saturating_sub(1)] {
                assert!(
                    context.join(src).exists(),
                    "{name}: {} copies {src}, which is not in the build context",
                    dockerfile.display()
                );
            }
        }
    }

    // Top-level configs (if any) point at existing files.
    if let Some(configs) = doc["configs"].as_hash() {
        for (k, c) in configs {
            if let Some(file) = c["file"].as_str() {
                assert!(dir.join(file).exists(), "config {k:?}: {file} missing");
            }
        }
    }

    // The Rust builder matches the crate's rust-version.
    let manifest = read(&repo().join("Cargo.toml"));
    let rust_version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .map(|v| v.trim_matches('"'))
        .expect("rust-version in Cargo.toml");
    let dockerfile = read(&dir.join("Dockerfile"));
    assert!(
        dockerfile.contains(&format!("FROM rust:{rust_version}-bookworm AS builder")),
        "compose/Dockerfile builder is not rust:{rust_version}-bookworm"
    );
    assert!(dockerfile.contains("cargo build --release --locked"));
    assert!(dockerfile.contains("FROM debian:bookworm-slim"));
    assert!(
        dockerfile
            .lines()
            .any(|l| l.trim_start().starts_with("USER ")
                && !l.contains("root")
                && !l.contains(" 0")),
        "the runtime image runs as a non-root user"
    );

    // The mounts the rest of the stack relies on.
    let mounts = |name: &str| volumes(service(&doc, name));
    for (svc, src, dst) in [
        (
            "prometheus",
            "./prometheus.yml",
            "/etc/prometheus/prometheus.yml",
        ),
        // Next to prometheus.yml: its `rule_files: [alerts.yml]` is relative to it.
        ("prometheus", "./alerts.yml", "/etc/prometheus/alerts.yml"),
        (
            "alertmanager",
            "./alertmanager.yml",
            "/etc/alertmanager/alertmanager.yml",
        ),
    ] {
        assert!(
            mounts(svc).contains(&(src.into(), dst.into())),
            "{svc} mounts {src} at {dst}: {:?}",
            mounts(svc)
        );
    }
    let am = strings(&service(&doc, "alertmanager")["command"]);
    assert!(
        am.contains(&"--config.file=/etc/alertmanager/alertmanager.yml".to_string()),
        "alertmanager reads the mounted config: {am:?}"
    );
    assert!(
        volumes(service(&doc, "alertmanager"))
            .iter()
            .any(|(src, dst)| !is_host_path(src) && am.contains(&format!("--storage.path={dst}"))),
        "alertmanager keeps its silences in a volume: {am:?}"
    );
    let grafana = mounts("grafana");
    for (src, dst) in [
        ("../grafana/provisioning", "/etc/grafana/provisioning"),
        ("../grafana/dashboards", "/var/lib/grafana/dashboards"),
    ] {
        assert!(
            grafana.contains(&(src.into(), dst.into())),
            "grafana mounts {src} at {dst}: {grafana:?}"
        );
    }

    // pulsewatch: long-running headless replay; the batch alternative in the `once` profile.
    let pw = service(&doc, "pulsewatch");
    let cmd = strings(&pw["command"]).join(" ");
    assert!(
        cmd.contains("--headless") && cmd.contains("--listen 0.0.0.0:9185"),
        "{cmd}"
    );
    let env = environment(pw);
    assert!(
        env.contains(&(
            "PULSEWATCH_PUSHGATEWAY_URL".into(),
            "http://pushgateway:9091".into()
        )),
        "{env:?}"
    );
    assert!(
        env.contains(&("PULSEWATCH_DATA_DIR".into(), "/data/nab".into())),
        "{env:?}"
    );
    assert!(
        volumes(pw).iter().any(|(_, dst)| dst == "/data/nab"),
        "the corpus lives in a volume"
    );
    // The anomaly events file (the XDG state folder of the image's user) outlives the container,
    // and the image creates that folder for its user (a named volume takes the owner from it).
    let state = "/var/lib/pulsewatch/.local/state/pulsewatch";
    assert!(
        volumes(pw)
            .iter()
            .any(|(src, dst)| dst == state && !is_host_path(src)),
        "the events file lives in a named volume: {:?}",
        volumes(pw)
    );
    let dockerfile = read(&compose_dir().join("Dockerfile"));
    assert!(
        dockerfile.contains(&format!("mkdir -p /data/nab {state}"))
            && dockerfile.contains("chown -R pulsewatch:pulsewatch /var/lib/pulsewatch/.local"),
        "the Dockerfile creates {state} for the pulsewatch user"
    );
    let once = service(&doc, "pulsewatch-once");
    assert!(strings(&once["profiles"]).contains(&"once".to_string()));
    assert!(strings(&once["command"]).contains(&"--once".to_string()));

    // The `shards` profile: k/2 for every k, same queries, each its own instance.
    let mut shards = Vec::new();
    for k in 0..2 {
        let svc = service(&doc, &format!("pulsewatch-shard-{k}"));
        assert!(strings(&svc["profiles"]).contains(&"shards".to_string()));
        let env = environment(svc);
        assert!(
            env.contains(&("PULSEWATCH_SOURCE_KIND".into(), "prometheus".into())),
            "{env:?}"
        );
        let shard = env
            .iter()
            .find(|(k, _)| k == "PULSEWATCH_SOURCE_SHARD")
            .map(|(_, v)| v.clone())
            .expect("a shard");
        shards.push(shard);
    }
    assert_eq!(shards, vec!["0/2".to_string(), "1/2".to_string()]);
}

/// The environment compose gives pulsewatch is accepted by its config loader (an unknown
/// PULSEWATCH_* key is an error) and lands where it should.
#[test]
fn compose_environment_is_a_valid_pulsewatch_config() {
    let doc = compose();
    for name in [
        "pulsewatch",
        "pulsewatch-once",
        "pulsewatch-shard-0",
        "pulsewatch-shard-1",
    ] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let out = Command::new(env!("CARGO_BIN_EXE_pulsewatch"))
            .arg("print-config")
            .current_dir(tmp.path())
            .env_remove("PULSEWATCH_CONFIG")
            .envs(environment(service(&doc, name)))
            .stdin(Stdio::null())
            .output()
            .expect("run pulsewatch print-config");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {stderr}");
        assert!(
            stdout.contains(r#"url = "http://pushgateway:9091""#),
            "{name}: {stdout}"
        );
        if let Some(k) = name.strip_prefix("pulsewatch-shard-") {
            assert!(
                stdout.contains(&format!("shard = \"{k}/2\"")),
                "{name}: {stdout}"
            );
            assert!(
                stdout.contains(r#"kind = "prometheus""#),
                "{name}: {stdout}"
            );
        } else {
            assert!(stdout.contains(r#"dir = "/data/nab""#), "{name}: {stdout}");
        }
    }
}

#[test]
fn prometheus_config_passes_promtool_and_scrapes_the_stack() {
    let path = compose_dir().join("prometheus.yml");
    let cfg = load_yaml(&path);
    let doc = compose();
    let jobs = cfg["scrape_configs"].as_vec().expect("scrape_configs");
    // The alerting rules: files next to prometheus.yml, each mounted next to it in the container.
    let rule_files = strings(&cfg["rule_files"]);
    assert!(
        rule_files.contains(&"alerts.yml".to_string()),
        "rule_files: {rule_files:?}"
    );
    let prom_mounts = volumes(service(&doc, "prometheus"));
    for f in &rule_files {
        assert!(
            compose_dir().join(f).is_file(),
            "rule file {f} is not in compose/"
        );
        assert!(
            prom_mounts.iter().any(
                |(src, dst)| src == &format!("./{f}") && dst == &format!("/etc/prometheus/{f}")
            ),
            "rule file {f} is not mounted next to prometheus.yml: {prom_mounts:?}"
        );
    }
    // Alerts go to the compose Alertmanager.
    let alertmanagers: Vec<String> = cfg["alerting"]["alertmanagers"]
        .as_vec()
        .expect("alerting.alertmanagers")
        .iter()
        .flat_map(|a| a["static_configs"].as_vec().cloned().unwrap_or_default())
        .flat_map(|sc| strings(&sc["targets"]))
        .collect();
    assert_eq!(alertmanagers, vec!["alertmanager:9093".to_string()]);
    assert!(doc["services"]["alertmanager"].as_hash().is_some());
    let job = |name: &str| {
        jobs.iter()
            .find(|j| j["job_name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("no scrape job {name}"))
    };
    // Keeps the pushed job/source labels.
    assert_eq!(job("pushgateway")["honor_labels"].as_bool(), Some(true));
    // Same metric names as the Pushgateway: must not take over the pushed labels.
    assert_ne!(job("pulsewatch-self")["honor_labels"].as_bool(), Some(true));
    job("prometheus");
    // Every target is a compose service (or Prometheus itself) on its port.
    for j in jobs {
        for sc in j["static_configs"].as_vec().expect("static_configs") {
            for t in strings(&sc["targets"]) {
                let (host, port) = t.rsplit_once(':').expect("host:port target");
                assert!(port.parse::<u16>().is_ok(), "target {t}");
                assert!(
                    host == "localhost" || doc["services"][host].as_hash().is_some(),
                    "target {t}: {host} is not a compose service"
                );
            }
        }
    }
    for (svc, target) in [
        ("pushgateway", "pushgateway:9091"),
        ("pulsewatch-self", "pulsewatch:9185"),
        ("node", "node-exporter:9100"),
        ("alertmanager", "alertmanager:9093"),
    ] {
        let targets: Vec<String> = job(svc)["static_configs"]
            .as_vec()
            .expect("static_configs")
            .iter()
            .flat_map(|sc| strings(&sc["targets"]))
            .collect();
        assert!(targets.contains(&target.to_string()), "{svc}: {targets:?}");
    }

    let Some(promtool) = servers::require(servers::PROMTOOL) else {
        return;
    };
    let out = Command::new(promtool)
        .arg("check")
        .arg("config")
        .arg(&path)
        .output()
        .expect("run promtool check config");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool check config {}:\n{text}",
        path.display()
    );
    // It followed rule_files and checked the rules too.
    assert!(
        text.contains(&format!("SUCCESS: {} rule files found", rule_files.len()))
            && text.contains("alerts.yml"),
        "{text}"
    );
}

#[test]
fn alertmanager_config_passes_amtool_and_routes_every_alert() {
    let path = compose_dir().join("alertmanager.yml");
    let cfg = load_yaml(&path);
    let receivers: Vec<&str> = cfg["receivers"]
        .as_vec()
        .expect("receivers")
        .iter()
        .map(|r| r["name"].as_str().expect("receiver name"))
        .collect();
    let root = cfg["route"]["receiver"].as_str().expect("route.receiver");
    assert!(receivers.contains(&root), "{root} not in {receivers:?}");
    for r in cfg["route"]["routes"].as_vec().into_iter().flatten() {
        let name = r["receiver"].as_str().unwrap_or(root);
        assert!(receivers.contains(&name), "{name} not in {receivers:?}");
    }

    let Some(amtool) = servers::require(servers::AMTOOL) else {
        return;
    };
    let run = |args: &[&str]| {
        let out = Command::new(&amtool)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run amtool");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let file = path.display().to_string();
    let (ok, text) = run(&["check-config", &file]);
    assert!(ok, "amtool check-config {file}:\n{text}");
    assert!(text.contains("SUCCESS"), "{text}");
    // Both severities reach a receiver of the file.
    for severity in ["warning", "critical"] {
        let (ok, text) = run(&[
            "config",
            "routes",
            "test",
            &format!("--config.file={file}"),
            "alertname=PulsewatchAnomaly",
            &format!("severity={severity}"),
        ]);
        assert!(ok, "amtool config routes test: {text}");
        let got = text
            .lines()
            .find(|l| !l.starts_with("Warning"))
            .unwrap_or_default()
            .trim();
        assert!(
            receivers.contains(&got),
            "severity={severity} routes to {got:?}, not one of {receivers:?}"
        );
    }
}

/// The provisioned datasource's uid.
fn datasource_uid() -> String {
    let ds = load_yaml(&repo().join("grafana/provisioning/datasources/prometheus.yaml"));
    let list = ds["datasources"].as_vec().expect("datasources");
    assert_eq!(list.len(), 1, "one datasource");
    let d = &list[0];
    assert_eq!(d["type"].as_str(), Some("prometheus"));
    assert_eq!(d["url"].as_str(), Some("http://prometheus:9090"));
    assert_eq!(d["isDefault"].as_bool(), Some(true));
    d["uid"].as_str().expect("datasource uid").to_string()
}

struct Dashboard {
    file: PathBuf,
    json: Value,
}

fn dashboards() -> Vec<Dashboard> {
    let dir = repo().join("grafana/dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no dashboards in {}", dir.display());
    files
        .into_iter()
        .map(|file| {
            let json = serde_json::from_str(&read(&file))
                .unwrap_or_else(|e| panic!("{}: invalid JSON: {e}", file.display()));
            Dashboard { file, json }
        })
        .collect()
}

/// Every panel, rows' nested panels included.
fn panels(v: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in v["panels"].as_array().into_iter().flatten() {
        out.push(p);
        out.extend(panels(p));
    }
    out
}

struct Query {
    panel: String,
    ref_id: String,
    expr: String,
}

/// Every target's expr with Grafana's macros and the dashboard's variables (as `.*`) filled in.
fn queries(d: &Dashboard) -> Vec<Query> {
    let mut vars: Vec<String> = d.json["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str().map(str::to_string))
        .collect();
    vars.sort_by_key(|v| std::cmp::Reverse(v.len()));
    let fill = |expr: &str| {
        let mut expr = expr.to_string();
        for (m, v) in MACROS {
            expr = expr.replace(m, v);
        }
        for name in &vars {
            for form in [
                format!("${{{name}}}"),
                format!("[[{name}]]"),
                format!("${name}"),
            ] {
                expr = expr.replace(&form, ".*");
            }
        }
        expr
    };
    let mut out = Vec::new();
    for p in panels(&d.json) {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push(Query {
                panel: p["title"].as_str().unwrap_or("?").to_string(),
                ref_id: t["refId"].as_str().unwrap_or("?").to_string(),
                expr: fill(t["expr"].as_str().unwrap_or_default()),
            });
        }
    }
    for a in prometheus_annotations(d) {
        out.push(Query {
            panel: format!("annotation {}", a["name"].as_str().unwrap_or("?")),
            ref_id: "annotation".to_string(),
            expr: fill(a["expr"].as_str().unwrap_or_default()),
        });
    }
    out
}

/// The dashboard's annotation queries other than Grafana's built-in one.
fn prometheus_annotations(d: &Dashboard) -> Vec<&Value> {
    d.json["annotations"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["builtIn"].as_u64() != Some(1))
        .collect()
}

#[test]
fn grafana_provisioning_matches_the_compose_mounts_and_the_dashboards() {
    let uid = datasource_uid();
    let prov = load_yaml(&repo().join("grafana/provisioning/dashboards/pulsewatch.yaml"));
    let providers = prov["providers"].as_vec().expect("providers");
    assert!(!providers.is_empty());
    let grafana_mounts = volumes(service(&compose(), "grafana"));
    for p in providers {
        assert_eq!(p["type"].as_str(), Some("file"));
        let path = p["options"]["path"].as_str().expect("provider path");
        assert!(
            grafana_mounts.iter().any(|(_, dst)| dst == path),
            "provider path {path} is not mounted into grafana: {grafana_mounts:?}"
        );
    }
    for d in dashboards() {
        let f = d.file.display();
        for p in panels(&d.json) {
            let title = p["title"].as_str().unwrap_or("?");
            for t in p["targets"].as_array().into_iter().flatten() {
                assert_eq!(
                    t["datasource"]["uid"].as_str(),
                    Some(uid.as_str()),
                    "{f}: panel {title:?} target {}: datasource {}",
                    t["refId"],
                    t["datasource"]
                );
                assert_eq!(t["datasource"]["type"], "prometheus", "{f}: {title}");
            }
        }
        for a in prometheus_annotations(&d) {
            assert_eq!(
                a["datasource"]["uid"].as_str(),
                Some(uid.as_str()),
                "{f}: annotation {}: datasource {}",
                a["name"],
                a["datasource"]
            );
        }
        for v in d.json["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if v["type"] == "query" {
                assert_eq!(
                    v["datasource"]["uid"].as_str(),
                    Some(uid.as_str()),
                    "{f}: variable {}",
                    v["name"]
                );
            }
        }
    }
}

#[test]
fn dashboards_are_well_formed() {
    for d in dashboards() {
        let f = d.file.display();
        let j = &d.json;
        let uid = j["uid"].as_str().unwrap_or_default();
        assert!(
            (8..=40).contains(&uid.len()),
            "{f}: uid {uid:?} must be 8-40 chars"
        );
        assert!(
            j["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{f}: title"
        );
        assert!(j["schemaVersion"].is_u64(), "{f}: schemaVersion");
        let vars: Vec<&str> = j["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["name"].as_str())
            .collect();
        for v in ["series", "source"] {
            assert!(vars.contains(&v), "{f}: no ${v} variable: {vars:?}");
        }
        let mut ids = HashSet::new();
        let all = panels(j);
        assert!(!all.is_empty(), "{f}: no panels");
        for p in all {
            let title = p["title"].as_str().unwrap_or("?");
            let id = p["id"]
                .as_u64()
                .unwrap_or_else(|| panic!("{f}: panel {title:?} has no id"));
            assert!(ids.insert(id), "{f}: panel id {id} used twice ({title:?})");
            let g = &p["gridPos"];
            let (x, w, h) = (g["x"].as_u64(), g["w"].as_u64(), g["h"].as_u64());
            let (Some(x), Some(w), Some(h)) = (x, w, h) else {
                panic!("{f}: panel {title:?} gridPos {g}");
            };
            assert!(
                (1..=24).contains(&w) && x + w <= 24 && h > 0 && g["y"].is_u64(),
                "{f}: panel {title:?} gridPos {g} outside the 24 columns"
            );
            if p["type"] == "row" {
                continue;
            }
            let targets = p["targets"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            assert!(!targets.is_empty(), "{f}: panel {title:?} has no targets");
            let mut refs = HashSet::new();
            for t in targets {
                let r = t["refId"].as_str().unwrap_or_default();
                assert!(!r.is_empty(), "{f}: panel {title:?}: target without refId");
                assert!(refs.insert(r), "{f}: panel {title:?}: refId {r} used twice");
                assert_eq!(
                    t["datasource"]["uid"], "prometheus",
                    "{f}: panel {title:?} {r}"
                );
                assert!(
                    t["expr"].as_str().is_some_and(|e| !e.trim().is_empty()),
                    "{f}: panel {title:?} {r}: no expr"
                );
            }
        }
        // Annotation queries: on the datasource, with an expr, shown on panels that exist.
        let panel_ids: HashSet<u64> = panels(j).iter().filter_map(|p| p["id"].as_u64()).collect();
        let annotations = prometheus_annotations(&d);
        assert!(
            annotations.iter().any(|a| a["expr"]
                .as_str()
                .is_some_and(|e| e.contains("pulsewatch_anomalies_total"))),
            "{f}: no anomaly annotation"
        );
        for a in annotations {
            let name = a["name"].as_str().unwrap_or("?");
            assert_eq!(
                a["datasource"]["type"], "prometheus",
                "{f}: annotation {name}"
            );
            assert_eq!(
                a["datasource"]["uid"], "prometheus",
                "{f}: annotation {name}"
            );
            assert!(
                a["expr"].as_str().is_some_and(|e| !e.trim().is_empty()),
                "{f}: annotation {name}: no expr"
            );
            assert!(
                a["expr"].as_str().is_some_and(|e| e.contains("$series")),
                "{f}: annotation {name} ignores the series filter"
            );
            for id in a["filter"]["ids"].as_array().into_iter().flatten() {
                let id = id.as_u64().unwrap_or_default();
                assert!(
                    panel_ids.contains(&id),
                    "{f}: annotation {name} is shown on panel {id}, which does not exist"
                );
            }
        }
        for q in queries(&d) {
            assert!(
                !q.expr.contains('$'),
                "{f}: panel {:?} {}: unknown variable left in {}",
                q.panel,
                q.ref_id,
                q.expr
            );
        }
    }
}

#[test]
fn dashboard_queries_pass_promtool_check_rules() {
    let Some(promtool) = servers::require(servers::PROMTOOL) else {
        return;
    };
    let mut rules = Vec::new();
    for d in dashboards() {
        for q in queries(&d) {
            rules.push(json!({
                "record": format!("dashboard:q{}:{}", rules.len(), q.ref_id.to_lowercase()),
                "expr": q.expr,
            }));
        }
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("dashboard_rules.yml");
    // JSON is YAML: promtool reads it as a rules file.
    let text =
        serde_json::to_string_pretty(&json!({"groups": [{"name": "dashboards", "rules": rules}]}))
            .expect("rules JSON");
    std::fs::write(&path, text).expect("write the rules file");
    let out = Command::new(promtool)
        .args(["check", "rules"])
        .arg(&path)
        .output()
        .expect("run promtool check rules");
    assert!(
        out.status.success(),
        "promtool check rules:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A one-series corpus whose last point is a spike: 3,000 points of a daily sine (5-min steps)
/// and 500.0 at the end, which the default detector flags (without `spike`: the first 2,999
/// points only). Right after the NAB --once push no series' latest point is flagged (a replay
/// ends on normal data), so the anomaly-marker query would rightly be empty; this gives it a real
/// flagged point to show.
fn spike_corpus(root: &Path, spike: bool) {
    let data = root.join("data/synthetic");
    std::fs::create_dir_all(&data).expect("create the synthetic corpus");
    std::fs::create_dir_all(root.join("labels")).expect("create labels/");
    let mut csv = String::from("timestamp,value\n");
    for i in 0..if spike { 3000u64 } else { 2999 } {
        let m = 5 * i;
        let noise = ((i * 7919) % 101) as f64 / 100.0 - 0.5;
        let v = if i == 2999 {
            500.0
        } else {
            50.0 + 10.0 * (2.0 * std::f64::consts::PI * i as f64 / 288.0).sin() + noise
        };
        csv.push_str(&format!(
            "2015-01-{:02} {:02}:{:02}:00,{v:.3}\n",
            1 + m / 1440,
            (m % 1440) / 60,
            m % 60
        ));
    }
    std::fs::write(data.join("spike_at_end.csv"), csv).expect("write the spike series");
    std::fs::write(
        root.join("labels/combined_windows.json"),
        r#"{"synthetic/spike_at_end.csv": []}"#,
    )
    .expect("write the labels file");
}

/// The whole `query_range` answer at a 1 s step (errors included: this test collects every
/// failing query with its panel before failing).
fn query_range(prom: &servers::Server, expr: &str, start: f64, end: f64) -> Value {
    let form = [
        ("query", expr.to_string()),
        ("start", format!("{start:.3}")),
        ("end", format!("{end:.3}")),
        ("step", "1s".to_string()),
    ];
    servers::api(prom, "/api/v1/query_range", &form)
}

#[test]
fn dashboard_queries_return_data_after_a_once_push() {
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
    let out = servers::pulsewatch(tmp.path())
        .arg("--once")
        .env("PULSEWATCH_DATA_DIR", &root)
        .env("PULSEWATCH_PUSHGATEWAY_URL", pgw.url())
        .output()
        .expect("run pulsewatch --once");
    assert!(
        out.status.success(),
        "--once failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The spike series goes to its own group (job pulsewatch-spike), beside the corpus'. First
    // without the spike, then with it: Prometheus sees that series' counter rise by one between
    // two scrapes, as in a live replay. The anomaly annotation and the "Most anomalous series"
    // table show increases, which a single push of constant counters does not have.
    let spike = tmp.path().join("spike");
    let run_spike = |with_spike: bool| {
        spike_corpus(&spike, with_spike);
        let mut cmd = servers::pulsewatch(tmp.path());
        cmd.args(["--once", "--json"])
            .env("PULSEWATCH_DATA_DIR", &spike)
            .env("PULSEWATCH_PUSHGATEWAY_URL", pgw.url())
            .env("PULSEWATCH_PUSHGATEWAY_JOB", "pulsewatch-spike");
        servers::once_json(cmd, "spike corpus")
    };
    let before = run_spike(false);
    assert_eq!(
        before["series"][0]["last"]["anomaly"], false,
        "the sine ends on a normal point: {before}"
    );
    servers::wait_for_series(
        &prom,
        "pulsewatch_anomalies_total{job=\"pulsewatch-spike\"}",
        1,
    );
    let report = run_spike(true);
    assert_eq!(
        report["series"][0]["last"]["anomaly"], true,
        "the spike is flagged: {report}"
    );
    assert_eq!(
        report["series"][0]["anomalies"].as_u64(),
        before["series"][0]["anomalies"].as_u64().map(|n| n + 1),
        "the spike adds one flagged point: {before} / {report}"
    );

    servers::wait_for_series(&prom, "pulsewatch_anomaly_score", 58);
    servers::wait_for_series(&prom, "pulsewatch_anomaly_flag == 1", 1);
    // rate() needs two scrapes in its window.
    servers::wait_for_series(&prom, "rate(pulsewatch_anomalies_total[1m])", 58);
    servers::wait_for_series(
        &prom,
        "increase(pulsewatch_anomalies_total{job=\"pulsewatch-spike\"}[1m]) > 0",
        1,
    );

    let end = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64();
    let start = end - 120.0;
    let mut failures = Vec::new();
    for d in dashboards() {
        for q in queries(&d) {
            let r = query_range(&prom, &q.expr, start, end);
            let what = format!(
                "{}: panel {:?} target {}: {}",
                d.file.display(),
                q.panel,
                q.ref_id,
                q.expr
            );
            if r["status"] != "success" {
                failures.push(format!("{what}: {} {}", r["errorType"], r["error"]));
            } else if r["data"]["result"].as_array().is_none_or(Vec::is_empty) {
                failures.push(format!("{what}: empty result"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} dashboard queries failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
