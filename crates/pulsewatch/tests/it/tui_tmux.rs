//! End-to-end: the real binary in a real terminal (tmux, 80×24) on the NAB replay. Start, switch
//! tabs, press r, resize, quit; then again, ended by SIGTERM. Each time the shell after it must
//! see a restored terminal (canonical mode back on).

use crate::support::corpus;
use crate::support::servers;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]);
        c
    }

    fn start(name: &str, width: u16, height: u16, script: &str) -> Tmux {
        let t = Tmux {
            socket: format!("pulsewatch-test-{}-{name}", std::process::id()),
            session: name.to_string(),
        };
        let ok = t
            .cmd()
            .args([
                "new-session",
                "-d",
                "-s",
                name,
                "-x",
                &width.to_string(),
                "-y",
                &height.to_string(),
                "sh",
                "-c",
                script,
            ])
            .env("TERM", "xterm-256color")
            .status()
            .expect("run tmux");
        assert!(ok.success(), "tmux new-session failed");
        t
    }

    fn capture(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            let ok = self
                .cmd()
                .args(["send-keys", "-t", &self.session, k])
                .status()
                .expect("send-keys");
            assert!(ok.success());
            // Separate presses: an Esc followed at once by a key reads as Alt-key.
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    fn wait_for(&self, what: &str, secs: u64) -> String {
        let t0 = Instant::now();
        loop {
            let screen = self.capture();
            if screen.contains(what) {
                return screen;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(secs),
                "{what:?} not on screen after {secs} s:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

fn have_tmux() -> bool {
    let ok = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("tmux not installed (.ci/run installs it), and CI=true");
        }
        eprintln!("SKIPPED: tmux not installed");
    }
    ok
}

/// The shell script: run pulsewatch (its pid in `pidfile`) with `args` and the environment
/// `env` (after the defaults: NAB at `nab`, push off, logs in `dir/logs`), then report how it
/// ended and whether the terminal is back in canonical mode.
fn script_with(dir: &Path, nab: &Path, args: &str, env: &[(&str, String)]) -> String {
    let bin = env!("CARGO_BIN_EXE_pulsewatch");
    let extra: String = env.iter().map(|(k, v)| format!(" {k}='{v}'")).collect();
    format!(
        "cd {dir} && export PULSEWATCH_DATA_DIR={nab} PULSEWATCH_PUSHGATEWAY_URL= \
         PULSEWATCH_LOGGING_DIR={dir}/logs PULSEWATCH_EVENTS_FILE={dir}/events.jsonl \
         PULSEWATCH_REPLAY_SPEED=50 PULSEWATCH_TUI_TICK=100ms \
         RUST_BACKTRACE=0{extra}; sh -c 'echo $$ > {dir}/pid; exec {bin} {args}'; echo EXITED $?; \
         stty -a | tr ' ;' '\\n\\n' | grep -x -- '-\\{{0,1\\}}icanon' | sed 's/^/MODE /'; sleep 120",
        dir = dir.display(),
        nab = nab.display(),
    )
}

fn script(dir: &Path, nab: &Path) -> String {
    script_with(dir, nab, "", &[])
}

fn kill(sig: &str, dir: &Path) {
    let pid = std::fs::read_to_string(dir.join("pid")).expect("pid file");
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), pid.trim()])
        .status()
        .expect("kill");
    assert!(ok.success());
}

/// Waits until our group on the Pushgateway holds series.
fn wait_for_group(pgw: &servers::Server, when: &str) {
    let t0 = Instant::now();
    while !groups(pgw).contains("pulsewatch_points_ingested_total") {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no group with series on the Pushgateway {when}: {}",
            groups(pgw)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The Pushgateway's groups as JSON text.
fn groups(pgw: &servers::Server) -> String {
    servers::http_get(&format!("{}/api/v1/metrics", pgw.url())).unwrap_or_default()
}

fn nab() -> Option<PathBuf> {
    if !have_tmux() {
        return None;
    }
    corpus::nab_root()
}

#[test]
fn tabs_retrain_resize_and_quit_leave_a_clean_terminal() {
    let Some(nab) = nab() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let t = Tmux::start("ui", 80, 24, &script(dir.path(), &nab));
    let s = t.wait_for("art_daily_no_noise", 30);
    assert!(s.contains("1 Live") && s.contains("3 Test spikes"), "{s}");
    assert!(s.contains("nab ×58"), "{s}");
    t.keys(&["2"]);
    t.wait_for("switch model", 10);
    t.keys(&["3"]);
    t.wait_for("inject at random", 10);
    t.keys(&["1", "j", "r"]);
    t.wait_for("retraining art_daily_perfect_square_wave", 10);
    t.keys(&["?"]);
    t.wait_for("keys (any key closes)", 10);
    t.keys(&["Escape"]);
    // Resize: still a full UI, at the new size.
    let ok = t
        .cmd()
        .args(["resize-window", "-t", "ui", "-x", "120", "-y", "40"])
        .status()
        .expect("resize");
    assert!(ok.success());
    let s = t.wait_for("category", 10);
    assert!(s.lines().any(|l| l.contains("1 Live")), "{s}");
    let ok = t
        .cmd()
        .args(["resize-window", "-t", "ui", "-x", "30", "-y", "8"])
        .status()
        .expect("resize");
    assert!(ok.success());
    std::thread::sleep(Duration::from_millis(500));
    t.keys(&["q"]);
    let s = t.wait_for("MODE", 15);
    assert!(s.contains("EXITED 0"), "{s}");
    assert!(s.contains("MODE icanon"), "terminal left in raw mode:\n{s}");
    assert!(!s.contains("panicked"), "{s}");
}

/// The scores of the Live table's rows on screen (the third-last column), top to bottom.
fn screen_scores(screen: &str) -> Vec<f64> {
    screen
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let n = cols.len();
            (n >= 5)
                .then(|| cols[n - 3].parse::<f64>().ok())
                .flatten()
                .filter(|_| {
                    cols[n - 2].parse::<u64>().is_ok() && cols[n - 1].parse::<u64>().is_ok()
                })
        })
        .collect()
}

#[test]
fn triage_filter_sort_and_an_event_chart_in_the_real_binary() {
    let Some(nab) = nab() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let script = script_with(
        dir.path(),
        &nab,
        "",
        &[("PULSEWATCH_REPLAY_SPEED", "400".into())],
    );
    let t = Tmux::start("triage", 80, 24, &script);
    t.wait_for("art_daily_no_noise", 30);
    // `/` then `nyc`: only matching rows remain, and the header counts them.
    t.keys(&["/", "n", "y", "c"]);
    let s = t.wait_for("1/58 series", 10);
    assert!(s.contains("nyc_taxi"), "{s}");
    assert!(!s.contains("art_daily"), "{s}");
    t.keys(&["Enter", "Escape"]);
    t.wait_for("58/58 series", 10);
    // `s`: highest score first.
    t.keys(&["s"]);
    let s = t.wait_for("sort: score now", 10);
    let scores = screen_scores(&s);
    assert!(scores.len() >= 5, "no table rows read from:\n{s}");
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "not highest first: {scores:?}\n{s}"
    );
    // An event: the Events tab lists it; Enter opens its series' chart at that time.
    t.keys(&["4"]);
    let t0 = Instant::now();
    let s = loop {
        let s = t.capture();
        if s.contains("peak") && s.contains(" chart ") {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no anomaly event after 60 s:\n{s}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(s.contains("4 Events"), "{s}");
    t.keys(&["Enter"]);
    let s = t.wait_for(" · event ", 10);
    assert!(s.contains("Esc returns to the live view"), "{s}");
    t.keys(&["q"]);
    let s = t.wait_for("MODE", 15);
    assert!(s.contains("EXITED 0"), "{s}");
    assert!(s.contains("MODE icanon"), "terminal left in raw mode:\n{s}");
    // The events are kept: the file holds them after quitting.
    let kept = std::fs::read_to_string(dir.path().join("events.jsonl")).expect("events file");
    assert!(kept.lines().count() >= 1, "{kept}");
    assert!(kept.contains("\"detector\":\"pulse\""), "{kept}");
}

#[test]
fn sigterm_sighup_and_sigint_restore_the_terminal_and_delete_our_group() {
    let Some(nab) = nab() else {
        return;
    };
    let Some(pgw) = servers::pushgateway() else {
        return;
    };
    for sig in ["TERM", "HUP", "INT"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let env = [("PULSEWATCH_PUSHGATEWAY_URL", pgw.url())];
        let t = Tmux::start(
            &format!("sig{sig}"),
            160,
            24,
            &script_with(dir.path(), &nab, "", &env),
        );
        t.wait_for("push ok", 30);
        wait_for_group(&pgw, &format!("before SIG{sig}"));
        kill(sig, dir.path());
        let s = t.wait_for("MODE", 15);
        assert!(s.contains("EXITED 0"), "SIG{sig}: {s}");
        assert!(
            s.contains("MODE icanon"),
            "SIG{sig}: terminal left in raw mode:\n{s}"
        );
        let g = groups(&pgw);
        assert!(
            !g.contains("pulsewatch_points_ingested_total"),
            "SIG{sig}: our group is still on the Pushgateway: {g}"
        );
    }
}

/// A panic (a deliberate one, in debug builds only) restores the terminal, exits 101 and leaves
/// its report and backtrace in the log.
#[test]
fn a_panic_restores_the_terminal_and_writes_a_report_to_the_log() {
    let Some(nab) = nab() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [("PULSEWATCH_DEBUG_PANIC", "1".to_string())];
    let t = Tmux::start("panic", 100, 30, &script_with(dir.path(), &nab, "", &env));
    let s = t.wait_for("MODE", 30);
    assert!(s.contains("EXITED 101"), "{s}");
    assert!(s.contains("MODE icanon"), "terminal left in raw mode:\n{s}");
    assert!(
        s.contains("deliberate panic"),
        "no report on the terminal:\n{s}"
    );
    let mut log = String::new();
    for e in std::fs::read_dir(dir.path().join("logs")).expect("log dir") {
        log.push_str(&std::fs::read_to_string(e.expect("entry").path()).unwrap_or_default());
    }
    assert!(log.contains("panic: "), "{log}");
    assert!(log.contains("deliberate panic in the UI loop"), "{log}");
    assert!(
        log.contains("pulsewatch::tui::run"),
        "no backtrace in the log: {log}"
    );
}

/// Pushgateway and Prometheus both killed and restarted while the TUI watches a Prometheus
/// source: the TUI keeps running and answering keys, shows each service DEGRADED with the reason,
/// recovers when they are back, and pushes the latest state again.
#[test]
fn tui_survives_pushgateway_and_prometheus_restarts() {
    if !have_tmux() {
        return;
    }
    let Some(node) = servers::node_exporter() else {
        return;
    };
    let Some(mut pgw) = servers::pushgateway() else {
        return;
    };
    let Some(mut prom) = servers::prometheus(None, Some(node.port)) else {
        return;
    };
    let (pgw_port, prom_port) = (pgw.port, prom.port);
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [
        ("PULSEWATCH_PUSHGATEWAY_URL", pgw.url()),
        ("PULSEWATCH_PUSHGATEWAY_TIMEOUT", "2s".to_string()),
        ("PULSEWATCH_PROMETHEUS_URL", prom.url()),
        ("PULSEWATCH_PROMETHEUS_STEP", "1s".to_string()),
        ("PULSEWATCH_PROMETHEUS_WINDOW", "1m".to_string()),
        ("PULSEWATCH_PROMETHEUS_TIMEOUT", "2s".to_string()),
    ];
    let t = Tmux::start(
        "faults",
        200,
        30,
        &script_with(
            dir.path(),
            Path::new("/nonexistent"),
            "--source prometheus",
            &env,
        ),
    );
    t.wait_for("push ok", 60);
    t.wait_for("source ok", 60);

    pgw.stop();
    let s = t.wait_for("push DEGRADED", 30);
    assert!(s.contains(&format!("127.0.0.1:{pgw_port}")), "{s}");
    // Still answering keys with the Pushgateway down.
    t.keys(&["2"]);
    t.wait_for("switch model", 10);
    t.keys(&["1"]);
    pgw.restart();
    t.wait_for("push ok", 60);
    wait_for_group(&pgw, "after the Pushgateway restart");

    prom.stop();
    let s = t.wait_for("source DEGRADED", 30);
    assert!(s.contains(&format!("127.0.0.1:{prom_port}")), "{s}");
    t.keys(&["3"]);
    t.wait_for("inject at random", 10);
    t.keys(&["1"]);
    prom.restart();
    t.wait_for("source ok", 60);
    t.keys(&["q"]);
    let s = t.wait_for("MODE", 15);
    assert!(s.contains("EXITED 0"), "{s}");
    assert!(s.contains("MODE icanon"), "{s}");
    assert!(!groups(&pgw).contains("pulsewatch_points_ingested_total"));
}

#[test]
fn without_a_terminal_the_tui_refuses_and_suggests_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_pulsewatch"))
        .current_dir(dir.path())
        .env("PULSEWATCH_LOGGING_DIR", dir.path().join("logs"))
        .env("RUST_BACKTRACE", "0")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run pulsewatch");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("stdout is not a terminal") && err.contains("pulsewatch --once"),
        "{err}"
    );
}

/// The TUI with every kind of secret set (environment and files), trace logging and the API on:
/// no screen of any tab, the help, nor any log file shows one.
#[test]
fn secrets_never_reach_the_screen_or_the_logs() {
    let Some(nab) = nab() else {
        return;
    };
    let Some(pgw) = servers::pushgateway() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let secrets = ["pw-S3cr3t-env", "api-S3cr3t-file"];
    let token_file = dir.path().join("api-token");
    std::fs::write(&token_file, format!("{}\n", secrets[1])).expect("write secret file");
    let env = [
        ("PULSEWATCH_PUSHGATEWAY_URL", pgw.url()),
        ("PULSEWATCH_PUSHGATEWAY_USERNAME", "user".to_string()),
        ("PULSEWATCH_PUSHGATEWAY_PASSWORD", secrets[0].to_string()),
        (
            "PULSEWATCH_API_TOKEN_FILE",
            token_file.display().to_string(),
        ),
        ("PULSEWATCH_LOGGING_LEVEL", "trace".to_string()),
    ];
    let args = format!("--listen 127.0.0.1:{}", servers::free_port());
    let t = Tmux::start(
        "secrets",
        200,
        50,
        &script_with(dir.path(), &nab, &args, &env),
    );
    let mut screens = vec![t.wait_for("push ok", 30)];
    for (key, marker) in [
        ("2", "switch model"),
        ("3", "inject at random"),
        ("i", "inject at random"),
        ("?", "keys (any key closes)"),
    ] {
        t.keys(&[key]);
        screens.push(t.wait_for(marker, 10));
    }
    t.keys(&["Escape", "q"]);
    screens.push(t.wait_for("MODE", 15));
    let mut seen = screens.join("\n");
    assert!(seen.contains("EXITED 0"), "{seen}");
    for e in std::fs::read_dir(dir.path().join("logs")).expect("log dir") {
        seen.push_str(&std::fs::read_to_string(e.expect("entry").path()).unwrap_or_default());
    }
    assert!(
        seen.contains("TRACE") || seen.contains("DEBUG"),
        "trace logging was on"
    );
    for s in secrets {
        assert!(!seen.contains(s), "secret {s} on screen or in a log");
    }
}

/// The TUI and `--once` with the default queries (node-exporter CPU, memory, network) against
/// Debian's VictoriaMetrics single node scraping a real node-exporter: the queries answer once
/// VictoriaMetrics' 30 s latency offset has passed, and the TUI shows the series.
#[test]
fn tui_and_once_read_the_default_queries_from_victoria_metrics() {
    if !have_tmux() {
        return;
    }
    let Some(node) = servers::node_exporter() else {
        return;
    };
    let Some(vm) = servers::victoria_metrics(&[format!("127.0.0.1:{}", node.port)]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [
        ("PULSEWATCH_PROMETHEUS_URL", vm.url()),
        ("PULSEWATCH_PROMETHEUS_STEP", "1s".to_string()),
        ("PULSEWATCH_PROMETHEUS_WINDOW", "5m".to_string()),
    ];
    let t = Tmux::start(
        "victoria",
        200,
        30,
        &script_with(
            dir.path(),
            Path::new("/nonexistent"),
            "--source prometheus",
            &env,
        ),
    );
    // Rows show a PromQL series' label values beside its query; the chart title its whole id.
    let s = t.wait_for("3/3 series", 150);
    assert!(
        s.contains("cpu_busy") && s.contains("{instance=\"127.0.0.1:"),
        "{s}"
    );
    assert!(s.contains("source ok"), "{s}");
    t.keys(&["q"]);
    let s = t.wait_for("MODE", 15);
    assert!(s.contains("EXITED 0"), "{s}");
    assert!(s.contains("MODE icanon"), "{s}");

    let mut cmd = servers::pulsewatch(dir.path());
    cmd.args(["--once", "--json", "--source", "prometheus"])
        .env("PULSEWATCH_PUSHGATEWAY_URL", "")
        .envs(env.iter().map(|(k, v)| (*k, v.clone())));
    let doc = servers::once_json(cmd, "default queries against VictoriaMetrics");
    let cats: Vec<&str> = doc["series"]
        .as_array()
        .expect("series")
        .iter()
        .filter_map(|s| s["category"].as_str())
        .collect();
    assert!(
        cats.contains(&"cpu_busy") && cats.contains(&"memory_used"),
        "{cats:?}"
    );
}
