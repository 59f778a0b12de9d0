//! Scoring throughput of the streaming detectors over the whole NAB corpus on one core, excluding
//! file I/O (the corpus is loaded once, outside the measurement). Goal for `pulse`: >= 1,000,000
//! points/s. Run with `cargo bench --bench detectors`.

use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pulsewatch_core::config::DetectorConfig;
use pulsewatch_core::detect::{DetectorKind, score_series};
use pulsewatch_core::nab::Corpus;

fn bench(c: &mut Criterion) {
    let root = std::env::var_os("PULSEWATCH_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| testkit::corpus::repo_root().join("data/nab"));
    let Ok(corpus) = Corpus::load(&root) else {
        eprintln!(
            "detectors bench skipped: no NAB corpus at {}",
            root.display()
        );
        return;
    };
    let cfg = DetectorConfig::default();
    let mut g = c.benchmark_group("score_corpus_one_core");
    g.sample_size(10);
    g.throughput(Throughput::Elements(corpus.total_rows() as u64));
    for kind in [DetectorKind::Pulse, DetectorKind::WindowedGaussian] {
        g.bench_function(kind.name(), |b| {
            b.iter(|| {
                for s in &corpus.series {
                    let mut d = kind.build(&cfg);
                    std::hint::black_box(score_series(d.as_mut(), &s.timestamps, &s.values));
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
