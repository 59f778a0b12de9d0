//! Real Prometheus, Pushgateway, Alertmanager and node-exporter for integration tests (Debian's
//! packages, installed by .ci/run). Each server runs on a free 127.0.0.1 port with a temp dir and is killed
//! when dropped. A missing binary fails the test under CI (CI=true) and is a plainly printed skip
//! elsewhere.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PROMETHEUS: &[&str] = &["prometheus"];
pub const PUSHGATEWAY: &[&str] = &["prometheus-pushgateway", "pushgateway"];
pub const NODE_EXPORTER: &[&str] = &["prometheus-node-exporter", "node_exporter"];
pub const PROMTOOL: &[&str] = &["promtool"];
pub const VICTORIA_METRICS: &[&str] = &["victoria-metrics", "victoria-metrics-prod"];
pub const ALERTMANAGER: &[&str] = &["prometheus-alertmanager", "alertmanager"];
pub const AMTOOL: &[&str] = &["amtool"];

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The first of `names` on PATH (or in /usr/bin, /usr/sbin).
pub fn find(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.push("/usr/bin".into());
    dirs.push("/usr/sbin".into());
    for n in names {
        for d in &dirs {
            let p = d.join(n);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// [`find`], failing under CI and printing a skip elsewhere.
pub fn require(names: &[&str]) -> Option<PathBuf> {
    if let Some(p) = find(names) {
        return Some(p);
    }
    let msg = format!(
        "{} not installed (apt-get install prometheus prometheus-pushgateway \
         prometheus-alertmanager prometheus-node-exporter victoria-metrics; .ci/run does this)",
        names[0]
    );
    if in_ci() {
        panic!("{msg}, and CI=true");
    }
    eprintln!("SKIPPED: {msg}");
    None
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// A port on 127.0.0.1 that refuses connections, for "service down" tests. A port from
/// [`free_port`] is free only until some other test's server binds it (tests run in parallel,
/// and one such collision turned a "push fails" run into a push to another test's Pushgateway):
/// this one is below 1024, where the kernel never hands out ports for binding port 0, so no
/// test server started through [`free_port`] can take it.
pub fn closed_port() -> u16 {
    (1..1024)
        .find(|&p| {
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], p));
            matches!(
                std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
            )
        })
        .expect("a refused port below 1024 on 127.0.0.1")
}

/// A running server, killed on drop.
pub struct Server {
    pub name: &'static str,
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
    bin: PathBuf,
    args: Vec<String>,
    ready: &'static str,
    /// Basic-auth credentials the readiness check needs (a server behind `--web.config.file`).
    ready_auth: Option<(String, String)>,
}

impl Server {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the server and waits for it to exit.
    pub fn kill(mut self) {
        self.stop();
    }

    /// Starts the server again, on the same port with the same data (e.g. after [`Server::stop`]).
    pub fn restart(&mut self) {
        self.stop();
        self.child = start_child(&self.bin, &self.args, self.dir.path());
        wait_ready(self);
    }

    /// Kills the server (SIGKILL) and waits for it to exit; its port and data stay for [`Server::restart`].
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// GET `url`; `Some(body)` on a 2xx answer.
pub fn http_get(url: &str) -> Option<String> {
    http_get_auth(url, None)
}

/// [`http_get`] with basic-auth credentials.
pub fn http_get_auth(url: &str, auth: Option<(&str, &str)>) -> Option<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let c = crate::http_client()
            .timeout(Duration::from_secs(5))
            .build()
            .ok()?;
        let mut rb = c.get(url);
        if let Some((u, p)) = auth {
            rb = rb.basic_auth(u, Some(p));
        }
        let r = rb.send().await.ok()?;
        if !r.status().is_success() {
            return None;
        }
        r.text().await.ok()
    })
}

/// POSTs a JSON `body` to `url` with an optional bearer token; the HTTP status (0: no answer).
pub fn http_post(url: &str, bearer: Option<&str>, body: &str) -> u16 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let Ok(c) = crate::http_client().timeout(Duration::from_secs(5)).build() else {
            return 0;
        };
        let mut rb = c
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(t) = bearer {
            rb = rb.bearer_auth(t);
        }
        rb.send().await.map_or(0, |r| r.status().as_u16())
    })
}

fn start_child(bin: &Path, args: &[String], dir: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))
        .expect("log file");
    Command::new(bin)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()))
}

/// Starts `bin` and waits until `ready` (a path) answers 2xx.
fn spawn(
    name: &'static str,
    bin: &Path,
    args: &[String],
    port: u16,
    dir: tempfile::TempDir,
    ready: &'static str,
) -> Server {
    let child = start_child(bin, args, dir.path());
    let mut s = Server {
        name,
        port,
        dir,
        child,
        bin: bin.to_path_buf(),
        args: args.to_vec(),
        ready,
        ready_auth: None,
    };
    wait_ready(&mut s);
    s
}

fn wait_ready(s: &mut Server) {
    let url = format!("{}{}", s.url(), s.ready);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(30) {
        if let Ok(Some(status)) = s.child.try_wait() {
            panic!("{} exited with {status}:\n{}", s.name, s.log());
        }
        let ok = match &s.ready_auth {
            None => http_get(&url).is_some(),
            Some((u, p)) => http_get_auth(&url, Some((u, p))).is_some(),
        };
        if ok {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("{} not ready at {url} after 30 s:\n{}", s.name, s.log());
}

/// A Pushgateway with no persistence, on `port` (a free one when `None`).
pub fn pushgateway_on(port: Option<u16>) -> Option<Server> {
    let bin = require(PUSHGATEWAY)?;
    let port = port.unwrap_or_else(free_port);
    let dir = tempfile::tempdir().expect("tempdir");
    let args = vec![
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--persistence.file=".to_string(),
        "--web.enable-admin-api".to_string(),
    ];
    Some(spawn("pushgateway", &bin, &args, port, dir, "/-/ready"))
}

pub fn pushgateway() -> Option<Server> {
    pushgateway_on(None)
}

/// A node-exporter without the systemd collector.
pub fn node_exporter() -> Option<Server> {
    let bin = require(NODE_EXPORTER)?;
    let port = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let args = vec![
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--no-collector.systemd".to_string(),
    ];
    Some(spawn("node-exporter", &bin, &args, port, dir, "/metrics"))
}

/// A Prometheus scraping the given Pushgateway (honor_labels) and node-exporter every second.
pub fn prometheus(pushgateway: Option<u16>, node: Option<u16>) -> Option<Server> {
    prometheus_on(None, pushgateway, node)
}

/// [`prometheus`] on `port` (a free one when `None`), e.g. to restart one on the same port.
pub fn prometheus_on(
    port: Option<u16>,
    pushgateway: Option<u16>,
    node: Option<u16>,
) -> Option<Server> {
    let bin = require(PROMETHEUS)?;
    let port = port.unwrap_or_else(free_port);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg =
        String::from("global: { scrape_interval: 1s, evaluation_interval: 1s }\nscrape_configs:\n");
    if let Some(p) = pushgateway {
        cfg.push_str(&format!(
            "  - job_name: pushgateway\n    honor_labels: true\n    scrape_interval: 1s\n    \
             scrape_timeout: 1s\n    static_configs: [ {{ targets: ['127.0.0.1:{p}'] }} ]\n"
        ));
    }
    if let Some(p) = node {
        cfg.push_str(&format!(
            "  - job_name: node\n    scrape_interval: 1s\n    scrape_timeout: 1s\n    \
             static_configs: [ {{ targets: ['127.0.0.1:{p}'] }} ]\n"
        ));
    }
    std::fs::write(dir.path().join("prometheus.yml"), cfg).expect("write prometheus.yml");
    let args = vec![
        "--config.file=prometheus.yml".to_string(),
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--storage.tsdb.path=data".to_string(),
        "--storage.tsdb.retention.time=100y".to_string(),
    ];
    Some(spawn("prometheus", &bin, &args, port, dir, "/-/ready"))
}

/// Debian's Alertmanager with the config file `config` as it is (e.g. compose/alertmanager.yml),
/// on a free port, with clustering off (no gossip port) and its silences and notification log in
/// a temp dir.
pub fn alertmanager(config: &Path) -> Option<Server> {
    let bin = require(ALERTMANAGER)?;
    let port = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let args = vec![
        format!("--config.file={}", config.display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--storage.path=data".to_string(),
        "--cluster.listen-address=".to_string(),
    ];
    Some(spawn("alertmanager", &bin, &args, port, dir, "/-/ready"))
}

/// The alerts an Alertmanager holds (`GET /api/v2/alerts`: active, silenced and inhibited ones;
/// resolved alerts are left out), optionally filtered by label matchers such as
/// `alertname="PulsewatchAnomaly"`.
pub fn alertmanager_alerts(am: &Server, matchers: &[&str]) -> Vec<serde_json::Value> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let query = matchers.iter().map(|m| ("filter", *m));
        let url = reqwest::Url::parse_with_params(&format!("{}/api/v2/alerts", am.url()), query)
            .expect("Alertmanager URL");
        let r = crate::http_client()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("client")
            .get(url)
            .send()
            .await
            .expect("query the Alertmanager");
        let status = r.status();
        let body = r.text().await.expect("answer body");
        assert!(status.is_success(), "GET /api/v2/alerts: {status}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("/api/v2/alerts: not JSON ({e}): {body}"));
        v.as_array()
            .cloned()
            .unwrap_or_else(|| panic!("/api/v2/alerts: not a list: {body}"))
    })
}

/// A Prometheus that evaluates `rule_files` and sends its alerts to the Alertmanager on port
/// `alertmanager`, with compose/prometheus.yml's scrape jobs under the same names (the rules
/// select on them): `pushgateway` (honor_labels) and, given pulsewatch's `host:port`,
/// `pulsewatch-self` keeping only `pulsewatch_build_info` and `pulsewatch_source_up`. Scrapes
/// and rule evaluations every second.
pub fn prometheus_alerting(
    rule_files: &[&Path],
    alertmanager: u16,
    pushgateway: u16,
    pulsewatch: Option<&str>,
) -> Option<Server> {
    let bin = require(PROMETHEUS)?;
    let port = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    // JSON strings are YAML strings: any path or address quotes safely.
    let quote = |s: &str| serde_json::to_string(s).expect("a JSON string");
    let mut lines = vec![
        "global: { scrape_interval: 1s, evaluation_interval: 1s }".to_string(),
        "rule_files:".to_string(),
    ];
    for f in rule_files {
        lines.push(format!("  - {}", quote(&f.display().to_string())));
    }
    lines.extend([
        "alerting:".to_string(),
        "  alertmanagers:".to_string(),
        format!("    - static_configs: [ {{ targets: ['127.0.0.1:{alertmanager}'] }} ]"),
        "scrape_configs:".to_string(),
        "  - job_name: pushgateway".to_string(),
        "    honor_labels: true".to_string(),
        "    scrape_interval: 1s".to_string(),
        "    scrape_timeout: 1s".to_string(),
        format!("    static_configs: [ {{ targets: ['127.0.0.1:{pushgateway}'] }} ]"),
    ]);
    if let Some(target) = pulsewatch {
        lines.extend([
            "  - job_name: pulsewatch-self".to_string(),
            "    scrape_interval: 1s".to_string(),
            "    scrape_timeout: 1s".to_string(),
            format!("    static_configs: [ {{ targets: [{}] }} ]", quote(target)),
            "    metric_relabel_configs:".to_string(),
            "      - source_labels: [__name__]".to_string(),
            "        regex: 'pulsewatch_(build_info|source_up)'".to_string(),
            "        action: keep".to_string(),
        ]);
    }
    lines.push(String::new());
    std::fs::write(dir.path().join("prometheus.yml"), lines.join("\n"))
        .expect("write prometheus.yml");
    let args = vec![
        "--config.file=prometheus.yml".to_string(),
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--storage.tsdb.path=data".to_string(),
    ];
    Some(spawn("prometheus", &bin, &args, port, dir, "/-/ready"))
}

/// A child process (e.g. the pulsewatch binary under test), killed and reaped when dropped, so
/// a failing assertion stops it too.
pub struct KillOnDrop(pub Child);

impl KillOnDrop {
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// `Some(status)` once the process has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.0.try_wait().ok().flatten()
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What a Prometheus starts with.
pub enum History<'a> {
    None,
    /// OpenMetrics text (e.g. [`crate::exporter::openmetrics_history`]).
    Text(&'a str),
    /// A file of OpenMetrics text, removed once imported.
    File(&'a Path),
}

/// A Prometheus scraping `targets` (`host:port`, job `synth`) every `interval_s` seconds. With a
/// `history` its TSDB starts with those samples as blocks made by
/// `promtool tsdb create-blocks-from openmetrics`.
pub fn prometheus_scraping(
    targets: &[String],
    interval_s: u64,
    history: History<'_>,
) -> Option<Server> {
    let bin = require(PROMETHEUS)?;
    let port = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = match history {
        History::None => None,
        History::Text(text) => {
            let file = dir.path().join("history.om");
            std::fs::write(&file, text).expect("write the OpenMetrics history");
            Some(file)
        }
        History::File(f) => Some(f.to_path_buf()),
    };
    if let Some(file) = file {
        let promtool = require(PROMTOOL)?;
        let out = Command::new(promtool)
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&file)
            .arg(dir.path().join("data"))
            .output()
            .expect("run promtool");
        assert!(
            out.status.success(),
            "promtool create-blocks-from openmetrics failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = std::fs::remove_file(&file);
    }
    let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
    let cfg = format!(
        "global: {{ scrape_interval: {interval_s}s, evaluation_interval: {interval_s}s }}\n\
         scrape_configs:\n  - job_name: synth\n    scrape_timeout: {interval_s}s\n    \
         static_configs: [ {{ targets: [{}] }} ]\n",
        list.join(", ")
    );
    std::fs::write(dir.path().join("prometheus.yml"), cfg).expect("write prometheus.yml");
    let args = vec![
        "--config.file=prometheus.yml".to_string(),
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--storage.tsdb.path=data".to_string(),
        "--storage.tsdb.retention.time=100y".to_string(),
    ];
    Some(spawn("prometheus", &bin, &args, port, dir, "/-/ready"))
}

/// A Prometheus scraping `targets` every second behind basic auth (`--web.config.file`): user
/// `user` with the bcrypt hash `hash` of `password` (which the readiness check uses).
pub fn prometheus_with_basic_auth(
    targets: &[String],
    user: &str,
    hash: &str,
    password: &str,
) -> Option<Server> {
    let bin = require(PROMETHEUS)?;
    let port = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
    let cfg = format!(
        "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\nscrape_configs:\n  - job_name: synth\n    \
         scrape_timeout: 1s\n    static_configs: [ {{ targets: [{}] }} ]\n",
        list.join(", ")
    );
    std::fs::write(dir.path().join("prometheus.yml"), cfg).expect("write prometheus.yml");
    std::fs::write(
        dir.path().join("web.yml"),
        format!("basic_auth_users:\n  {user}: '{hash}'\n"),
    )
    .expect("write web.yml");
    let args = vec![
        "--config.file=prometheus.yml".to_string(),
        "--web.config.file=web.yml".to_string(),
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--storage.tsdb.path=data".to_string(),
    ];
    let child = start_child(&bin, &args, dir.path());
    let mut s = Server {
        name: "prometheus",
        port,
        dir,
        child,
        bin,
        args,
        ready: "/-/ready",
        ready_auth: Some((user.to_string(), password.to_string())),
    };
    wait_ready(&mut s);
    Some(s)
}

/// Debian's VictoriaMetrics single node scraping `targets` (job `synth`) every second, with its
/// default 30 s `-search.latencyOffset` (queries do not see the newest 30 s).
pub fn victoria_metrics(targets: &[String]) -> Option<Server> {
    let bin = require(VICTORIA_METRICS)?;
    let port = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
    let cfg = format!(
        "global: {{ scrape_interval: 1s }}\nscrape_configs:\n  - job_name: synth\n    \
         static_configs: [ {{ targets: [{}] }} ]\n",
        list.join(", ")
    );
    std::fs::write(dir.path().join("scrape.yml"), cfg).expect("write scrape.yml");
    let args = vec![
        "-promscrape.config=scrape.yml".to_string(),
        format!("-httpListenAddr=127.0.0.1:{port}"),
        "-storageDataPath=data".to_string(),
        "-retentionPeriod=100y".to_string(),
    ];
    Some(spawn("victoria-metrics", &bin, &args, port, dir, "/health"))
}

/// A Prometheus with no scrape jobs serving the TSDB at `data` (e.g. backfilled blocks), with a
/// retention long enough for 2013-2015 data.
pub fn prometheus_on_data(data: &Path) -> Option<Server> {
    let bin = require(PROMETHEUS)?;
    let port = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("prometheus.yml"),
        "global: { scrape_interval: 15s }\nscrape_configs: []\n",
    )
    .expect("write prometheus.yml");
    let args = vec![
        "--config.file=prometheus.yml".to_string(),
        format!("--web.listen-address=127.0.0.1:{port}"),
        format!("--storage.tsdb.path={}", data.display()),
        "--storage.tsdb.retention.time=100y".to_string(),
    ];
    Some(spawn("prometheus", &bin, &args, port, dir, "/-/ready"))
}

/// POSTs `form` to Prometheus' HTTP API at `path`; the whole JSON answer, errors included.
pub fn api(prom: &Server, path: &str, form: &[(&str, String)]) -> serde_json::Value {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let r = crate::http_client()
            .build()
            .expect("client")
            .post(format!("{}{path}", prom.url()))
            .form(form)
            .send()
            .await
            .expect("query Prometheus");
        let body = r.text().await.expect("answer body");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body}"))
    })
}

fn result(v: serde_json::Value, expr: &str) -> Vec<serde_json::Value> {
    assert_eq!(v["status"], "success", "{expr}: {v}");
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// `query_range`; the `data.result` array.
pub fn query_range(
    prom: &Server,
    expr: &str,
    start: i64,
    end: i64,
    step: i64,
) -> Vec<serde_json::Value> {
    let form = [
        ("query", expr.to_string()),
        ("start", start.to_string()),
        ("end", end.to_string()),
        ("step", step.to_string()),
    ];
    result(api(prom, "/api/v1/query_range", &form), expr)
}

/// Instant query; the `data.result` array.
pub fn query(prom: &Server, expr: &str) -> Vec<serde_json::Value> {
    result(
        api(prom, "/api/v1/query", &[("query", expr.to_string())]),
        expr,
    )
}

/// The pulsewatch binary at `bin`, run in `dir` with logs and models there, no colour, no
/// backtraces.
pub fn pulsewatch_at(bin: &Path, dir: &Path) -> Command {
    let mut c = Command::new(bin);
    c.current_dir(dir)
        .env_remove("PULSEWATCH_CONFIG")
        .env("PULSEWATCH_LOGGING_DIR", dir.join("logs"))
        .env("PULSEWATCH_RETRAIN_MODEL_DIR", dir.join("models"))
        .env("PULSEWATCH_EVENTS_FILE", dir.join("events.jsonl"))
        .env("NO_COLOR", "1")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null());
    c
}

/// Polls `expr` until it returns at least `n` series (30 s at most).
pub fn wait_for_series(prom: &Server, expr: &str, n: usize) -> Vec<serde_json::Value> {
    let t0 = Instant::now();
    loop {
        let r = query(prom, expr);
        if r.len() >= n {
            return r;
        }
        if t0.elapsed() > Duration::from_secs(30) {
            panic!("{expr}: {} series after 30 s, wanted {n}: {r:?}", r.len());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs `promtool check metrics` on `text`; (success, output).
pub fn promtool_check_metrics(text: &str) -> Option<(bool, String)> {
    use std::io::Write;
    let bin = require(PROMTOOL)?;
    let mut child = Command::new(bin)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool output");
    let msg = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), msg))
}
