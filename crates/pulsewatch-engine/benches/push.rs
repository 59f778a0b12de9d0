//! Export cost per tick: rendering the metric set of all 58 NAB series and PUTting it to a real
//! Pushgateway on 127.0.0.1 (started here on a free port when `prometheus-pushgateway` is
//! installed). Goal: one tick's push of 58 series ≤ 20 ms. Run with `cargo bench --bench push`.

use testkit::corpus::bench_root as corpus_root;

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use pulsewatch_core::config::{Config, PushgatewayConfig};
use pulsewatch_core::nab::Corpus;
use pulsewatch_engine::engine::core::Core;
use pulsewatch_engine::export::{metrics, pushgateway};
use pulsewatch_engine::sources::replay;
use pulsewatch_engine::sources::source::SourceKind;

struct Killed(std::process::Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn bench(c: &mut Criterion) {
    let Some(root) = corpus_root() else {
        eprintln!("push bench skipped: no NAB corpus at data/nab (run `pulsewatch fetch-nab`)");
        return;
    };
    let corpus = Corpus::load(&root).expect("corpus loads");
    let cfg = Config::default();
    let settings =
        pulsewatch_engine::services::core_settings(&cfg, SourceKind::Nab).expect("settings");
    let mut core = Core::new(settings);
    for s in &corpus.series {
        core.ingest(replay::info(s), &s.points(), false);
    }
    let snap = core.snapshot();
    let mut g = c.benchmark_group("export");
    g.bench_function("render_58_series", |b| {
        b.iter(|| metrics::render(&snap).expect("render"))
    });
    let Some(port) = TcpListener::bind("127.0.0.1:0")
        .ok()
        .and_then(|l| l.local_addr().ok())
        .map(|a| a.port())
    else {
        return;
    };
    let child = Command::new("prometheus-pushgateway")
        .args([
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--persistence.file=".into(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(child) = child else {
        eprintln!("push bench: prometheus-pushgateway not installed; only rendering measured");
        return;
    };
    let _guard = Killed(child);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let pcfg = PushgatewayConfig {
        url: format!("http://127.0.0.1:{port}"),
        ..PushgatewayConfig::default()
    };
    let pusher = pushgateway::Pusher::new(&pcfg, "nab")
        .expect("valid")
        .expect("url set");
    let t0 = Instant::now();
    while rt.block_on(pusher.put(String::new())).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "Pushgateway not ready"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    g.bench_function("render_and_put_58_series", |b| {
        b.iter(|| {
            let body = metrics::render(&snap).expect("render");
            rt.block_on(pusher.put(body)).expect("push succeeds")
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
