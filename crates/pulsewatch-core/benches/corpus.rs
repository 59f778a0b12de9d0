//! Corpus load time and scorer speed on the real NAB corpus (`data/nab`, or PULSEWATCH_DATA_DIR).
//! Run with `cargo bench --bench corpus`. Goal: whole-corpus load well under 200 ms in release.

use testkit::corpus::bench_root as corpus_root;

use criterion::{Criterion, criterion_group, criterion_main};
use pulsewatch_core::eval::scorer::{FileLabels, optimize_threshold};
use pulsewatch_core::nab::Corpus;

fn bench(c: &mut Criterion) {
    let Some(root) = corpus_root() else {
        eprintln!("corpus bench skipped: no NAB corpus at data/nab (run `pulsewatch fetch-nab`)");
        return;
    };
    let mut g = c.benchmark_group("corpus");
    g.sample_size(20);
    g.bench_function("load_58_files", |b| {
        b.iter(|| Corpus::load(&root).expect("corpus loads"))
    });
    let corpus = Corpus::load(&root).expect("corpus loads");
    let profiles = corpus.profiles().expect("profiles");
    let labels = FileLabels::for_corpus(&corpus);
    // Scores: the min-max scaled value, a deterministic stand-in with many distinct thresholds.
    let scores: Vec<Vec<f64>> = corpus
        .series
        .iter()
        .map(|s| {
            let (lo, hi) = s
                .values
                .iter()
                .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
            s.values
                .iter()
                .map(|v| (v - lo) / (hi - lo).max(1e-12))
                .collect()
        })
        .collect();
    let files: Vec<(&FileLabels, &[f64])> = labels
        .iter()
        .zip(&scores)
        .map(|(l, s)| (l, s.as_slice()))
        .collect();
    g.bench_function("optimize_threshold_corpus", |b| {
        b.iter(|| optimize_threshold(&files, &profiles[0].costs))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
