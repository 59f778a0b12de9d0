//! Isolation Forest detector: planted outliers, causality, determinism, fit/cancel and
//! persistence (the seed preset, whose scoring is the replaced system's), and the streaming,
//! calibrated default, on seeded synthetic series (no corpus needed).

use std::sync::atomic::AtomicBool;

use pulsewatch_core::config::IsolationForestConfig;
use pulsewatch_core::detect::iforest::{self, IsolationForest};
use pulsewatch_core::detect::{Detector, FitControl, FitError, FitProgress, Point, Trainable};

const N: usize = 3000;
const SPIKES: [usize; 5] = [1100, 1500, 1900, 2300, 2700];

/// Small seeded generator for test data (SplitMix64 → uniform → Box-Muller).
struct Noise(u64);
impl Noise {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// A noisy sine around level 50 (period 100, amplitude 10, noise σ 1) with spikes of +25 at
/// [`SPIKES`], all after the default 750 training points.
fn series() -> Vec<Point> {
    let mut noise = Noise(2024);
    (0..N)
        .map(|i| {
            let mut v =
                50.0 + 10.0 * (i as f64 * std::f64::consts::TAU / 100.0).sin() + noise.normal();
            if SPIKES.contains(&i) {
                v += 25.0;
            }
            Point {
                timestamp: 1_600_000_000 + 300 * i as i64,
                value: v,
            }
        })
        .collect()
}

fn score(det: &mut dyn Detector, points: &[Point]) -> Vec<f64> {
    points.iter().map(|&p| det.update(p)).collect()
}

fn run(cfg: &IsolationForestConfig, points: &[Point]) -> Vec<f64> {
    score(&mut IsolationForest::new(cfg), points)
}

fn percentile(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// Asserts every spike outscores the 99th percentile of the points whose window holds no spike
/// (the `window` points from a spike on all see it), and returns (lowest spike, that percentile).
fn assert_spikes_stand_out(scores: &[f64], window: usize, train: usize) -> (f64, f64) {
    assert_eq!(scores.len(), N);
    for (i, s) in scores.iter().enumerate() {
        assert!((0.0..=1.0).contains(s), "score {s} at {i} outside [0, 1]");
    }
    assert!(
        scores[..train].iter().all(|&s| s == 0.5),
        "learning phase must score 0.5"
    );
    let others: Vec<f64> = (train..N)
        .filter(|&i| !SPIKES.iter().any(|&p| i >= p && i < p + window))
        .map(|i| scores[i])
        .collect();
    let p99 = percentile(others, 0.99);
    let lowest = SPIKES
        .iter()
        .map(|&i| scores[i])
        .fold(f64::INFINITY, f64::min);
    assert!(
        lowest > p99,
        "spike scores {:?} not all above the 99th percentile {p99} of the others",
        SPIKES.map(|i| scores[i])
    );
    (lowest, p99)
}

fn quiet_fit(det: &mut IsolationForest, history: &[Point]) -> Result<(), FitError> {
    let cancel = AtomicBool::new(false);
    let mut progress = |_: FitProgress| {};
    det.fit(
        history,
        &mut FitControl {
            cancel: &cancel,
            progress: &mut progress,
        },
    )
}

#[test]
fn planted_spikes_score_above_the_99th_percentile() {
    let cfg = IsolationForestConfig::seed_preset();
    let scores = run(&cfg, &series());
    let (lowest, p99) = assert_spikes_stand_out(&scores, cfg.window, cfg.train);
    // With the default threshold the spikes are detections (> 0.5).
    assert!(lowest > 0.5, "lowest spike {lowest}, p99 {p99}");
}

#[test]
fn a_spike_is_explained_by_its_short_path() {
    let cfg = IsolationForestConfig::seed_preset();
    let pts = series();
    let mut det = IsolationForest::new(&cfg);
    let first = SPIKES[0];
    score(&mut det, &pts[..first]);
    let normal = det.explain().expect("a reason once fitted");
    let s = det.update(pts[first]);
    let spike = det.explain().expect("a reason for the spike");
    assert!(s > 0.5, "{s}");
    assert_eq!(spike.signal, "path_length");
    // The spike's path is shorter than for nearly every recent window; an ordinary point's not.
    assert!(spike.excess > 99.0, "{spike:?}");
    assert!(normal.excess < spike.excess, "{normal:?} vs {spike:?}");
    assert!(spike.text.contains("shorter than for"), "{}", spike.text);
}

#[test]
fn learning_phase_is_exactly_train_points() {
    let cfg = IsolationForestConfig::seed_preset();
    let scores = run(&cfg, &series());
    assert!(scores[..cfg.train].iter().all(|&s| s == 0.5));
    assert!(
        scores[cfg.train] != 0.5,
        "scoring starts right after training"
    );
}

#[test]
fn scores_never_depend_on_later_points() {
    let pts = series();
    for cfg in [
        IsolationForestConfig::seed_preset(),
        IsolationForestConfig {
            refit_every: 400,
            train: 500,
            ..IsolationForestConfig::seed_preset()
        },
    ] {
        let full = run(&cfg, &pts);
        for cut in [1, 29, 749, 750, 751, 1101, 1234, 2000, N - 1] {
            let part = run(&cfg, &pts[..cut]);
            assert_eq!(part[..], full[..cut], "cut at {cut}, {cfg:?}");
        }
    }
}

#[test]
fn refitting_uses_later_training_data() {
    // A level shift after training: the shift is flagged either way; fitted once, the new level
    // keeps scoring higher (window values and mean outside the training range), while refitting
    // on the latest points learns it.
    let mut noise = Noise(5);
    let pts: Vec<Point> = (0..3000)
        .map(|i| Point {
            timestamp: i as i64,
            value: if i < 1000 { 0.0 } else { 20.0 } + noise.normal(),
        })
        .collect();
    // The streaming forest's isolation scores (before calibration, which adapts on its own),
    // fitted once at the start or refitted every 250 points.
    let values: Vec<f64> = pts.iter().map(|p| p.value).collect();
    let streaming = IsolationForestConfig::default();
    let once = iforest::raw_scores(
        &IsolationForestConfig {
            refit_every: 0,
            ..streaming.clone()
        },
        &values,
    );
    let refit = iforest::raw_scores(
        &IsolationForestConfig {
            refit_every: 250,
            ..streaming
        },
        &values,
    );
    assert_eq!(
        once[..535].iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        refit[..535].iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    let tail_mean = |s: &[f64]| s[2500..].iter().sum::<f64>() / 500.0;
    // The shift itself is an outlier either way...
    assert!(
        once[1000] > 0.6 && refit[1000] > 0.6,
        "{} {}",
        once[1000],
        refit[1000]
    );
    // ...but only the refitted forest has learnt the new level by the end.
    let (a, b) = (tail_mean(&once), tail_mean(&refit));
    assert!(b < a - 0.05, "tail mean: fit once {a}, refitted {b}");
}

#[test]
fn same_seed_same_scores_other_seed_differs_but_still_detects() {
    let pts = series();
    let cfg = IsolationForestConfig::seed_preset();
    let a = run(&cfg, &pts);
    let b = run(&cfg, &pts);
    assert_eq!(a, b);
    let other = IsolationForestConfig { seed: 7, ..cfg };
    let c = run(&other, &pts);
    assert_ne!(a, c);
    assert_eq!(a[..cfg.train], c[..cfg.train]);
    assert_spikes_stand_out(&c, other.window, other.train);
}

#[test]
fn explicit_fit_equals_the_automatic_fit_and_scores_at_once() {
    let pts = series();
    let cfg = IsolationForestConfig::seed_preset();
    let auto = run(&cfg, &pts);
    let mut det = IsolationForest::new(&cfg);
    assert!(!det.is_fitted());
    quiet_fit(&mut det, &pts[..cfg.train]).expect("fit");
    assert!(det.is_fitted());
    // Fresh detector: the fit history's tail becomes its window, so it scores the next point.
    let rest = score(&mut det, &pts[cfg.train..]);
    assert_eq!(rest[..], auto[cfg.train..]);
    // A longer history is cut to its last `train` points.
    let mut long = IsolationForest::new(&cfg);
    quiet_fit(&mut long, &pts[..cfg.train + 100]).expect("fit");
    let mut ref_det = IsolationForest::new(&cfg);
    quiet_fit(&mut ref_det, &pts[100..cfg.train + 100]).expect("fit");
    assert_eq!(long.save_state(), ref_det.save_state());
}

#[test]
fn fit_reports_progress_per_tree_and_cancel_keeps_the_previous_model() {
    let pts = series();
    let cfg = IsolationForestConfig {
        trees: 37,
        ..IsolationForestConfig::seed_preset()
    };
    let mut det = IsolationForest::new(&cfg);
    let det_dyn: &mut dyn Detector = &mut det;
    assert!(det_dyn.trainable().is_some());

    // Cancel set before the fit: nothing fitted, no progress.
    let cancel = AtomicBool::new(true);
    let mut calls = Vec::new();
    let mut progress = |p: FitProgress| calls.push(p);
    let err = det.fit(
        &pts[..1000],
        &mut FitControl {
            cancel: &cancel,
            progress: &mut progress,
        },
    );
    assert!(matches!(err, Err(FitError::Cancelled)), "{err:?}");
    assert!(!det.is_fitted());
    assert!(calls.is_empty());

    // A normal fit: one progress call per tree, done = 1..=trees.
    let cancel = AtomicBool::new(false);
    let mut progress = |p: FitProgress| calls.push(p);
    det.fit(
        &pts[..1000],
        &mut FitControl {
            cancel: &cancel,
            progress: &mut progress,
        },
    )
    .expect("fit");
    assert!(det.is_fitted());
    assert_eq!(calls.len(), cfg.trees);
    for (k, p) in calls.iter().enumerate() {
        assert_eq!((p.done, p.total, p.loss), (k + 1, cfg.trees, None));
    }
    let before = det.save_state().expect("fitted");

    // Cancelled half way (from the progress callback) on other data: the old model stays.
    let cancel = AtomicBool::new(false);
    let mut seen = 0;
    let mut progress = |p: FitProgress| {
        seen = p.done;
        if p.done == 10 {
            cancel.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    };
    let err = det.fit(
        &pts[1000..2000],
        &mut FitControl {
            cancel: &cancel,
            progress: &mut progress,
        },
    );
    assert!(matches!(err, Err(FitError::Cancelled)), "{err:?}");
    assert_eq!(seen, 10);
    assert!(det.is_fitted());
    assert_eq!(det.save_state().expect("fitted"), before);

    // Too little history is refused, also leaving the model alone.
    let err = quiet_fit(&mut det, &pts[..20]);
    assert!(
        matches!(err, Err(FitError::TooShort { have: 20, need: 45 })),
        "{err:?}"
    );
    assert_eq!(det.save_state().expect("fitted"), before);
}

#[test]
fn saved_state_restores_identical_scores() {
    let pts = series();
    for cfg in [
        IsolationForestConfig::seed_preset(),
        IsolationForestConfig {
            refit_every: 300,
            ..IsolationForestConfig::seed_preset()
        },
    ] {
        let mut a = IsolationForest::new(&cfg);
        assert_eq!(a.save_state(), None, "unfitted detector has no state");
        score(&mut a, &pts[..1000]);
        let bytes = a.save_state().expect("fitted after 1000 points");
        let mut b = IsolationForest::new(&cfg);
        b.load_state(&bytes).expect("load");
        assert!(b.is_fitted());
        let sa = score(&mut a, &pts[1000..]);
        let sb = score(&mut b, &pts[1000..]);
        assert_eq!(sa, sb, "{cfg:?}");
        assert!(sa.iter().any(|&s| s != 0.5));
        // And the restored detector saves the same state again.
        assert_eq!(a.save_state(), b.save_state());
    }
}

#[test]
fn loading_into_a_running_detector_keeps_its_own_recent_values() {
    let pts = series();
    let cfg = IsolationForestConfig::seed_preset();
    // Model fitted on the first 750 points elsewhere, loaded into a detector that has streamed
    // 900 points itself: it goes on exactly like the detector that fitted it.
    let mut trainer = IsolationForest::new(&cfg);
    quiet_fit(&mut trainer, &pts[..cfg.train]).expect("fit");
    let bytes = trainer.save_state().expect("state");
    let mut live = IsolationForest::new(&cfg);
    score(&mut live, &pts[..900]);
    live.load_state(&bytes).expect("load");
    let reference = run(&cfg, &pts);
    assert_eq!(score(&mut live, &pts[900..]), reference[900..]);
}

#[test]
fn bad_states_are_rejected_without_panic() {
    let pts = series();
    let cfg = IsolationForestConfig::seed_preset();
    let mut a = IsolationForest::new(&cfg);
    score(&mut a, &pts[..800]);
    let good = a.save_state().expect("state");

    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("garbage", b"\x00\x01not json at all".to_vec()),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("json null", b"null".to_vec()),
    ];
    // Valid JSON, invalid contents.
    let mut v: serde_json::Value = serde_json::from_slice(&good).expect("json");
    v["next"][0] = serde_json::json!(u32::MAX);
    v["feature"][0] = serde_json::json!(1000);
    cases.push(("bad node", serde_json::to_vec(&v).expect("json")));
    let mut v: serde_json::Value = serde_json::from_slice(&good).expect("json");
    v["roots"][3] = serde_json::json!(1);
    cases.push(("bad roots", serde_json::to_vec(&v).expect("json")));
    let mut v: serde_json::Value = serde_json::from_slice(&good).expect("json");
    v["std"] = serde_json::json!(0);
    cases.push(("zero std", serde_json::to_vec(&v).expect("json")));
    let mut v: serde_json::Value = serde_json::from_slice(&good).expect("json");
    v["format"] = serde_json::json!("lstm-ae");
    cases.push(("other format", serde_json::to_vec(&v).expect("json")));
    // Every single-byte corruption of the header region, too.
    for i in (0..200.min(good.len())).step_by(7) {
        let mut b = good.clone();
        b[i] ^= 0x5a;
        cases.push(("flipped byte", b));
    }
    for (what, bytes) in &cases {
        let mut d = IsolationForest::new(&cfg);
        match d.load_state(bytes) {
            Err(FitError::BadState(_)) => assert!(!d.is_fitted(), "{what}"),
            // A flip that still parses to a consistent state (e.g. inside a number) may load;
            // it must then score without panicking.
            Ok(()) if *what == "flipped byte" => {
                for p in &pts[800..900] {
                    assert!((0.0..=1.0).contains(&d.update(*p)));
                }
            }
            other => panic!("{what}: expected BadState, got {other:?}"),
        }
    }

    // A state from a different window size.
    let other = IsolationForestConfig { window: 20, ..cfg };
    let mut d20 = IsolationForest::new(&other);
    score(&mut d20, &pts[..800]);
    let s20 = d20.save_state().expect("state");
    let mut d30 = IsolationForest::new(&cfg);
    let err = d30.load_state(&s20);
    assert!(matches!(err, Err(FitError::BadState(_))), "{err:?}");
    assert!(!d30.is_fitted());
    // The good state still loads.
    d30.load_state(&good).expect("good state loads");
}

/// A calm or noisy series (level 100, noise σ) with +8σ spikes at [`SPIKES`].
fn scaled(sigma: f64, seed: u64) -> Vec<Point> {
    let mut noise = Noise(seed);
    (0..N)
        .map(|i| {
            let mut v = 100.0 + sigma * noise.normal();
            if SPIKES.contains(&i) {
                v += 8.0 * sigma;
            }
            Point {
                timestamp: 1_600_000_000 + 300 * i as i64,
                value: v,
            }
        })
        .collect()
}

#[test]
fn streaming_one_threshold_flags_spikes_on_calm_and_noisy_series_alike() {
    // The calibrated output does not depend on the series' scale: the same spikes are flagged
    // (output >= 0.5, the flag threshold) on σ 0.01 and σ 50, and few ordinary points are.
    let cfg = IsolationForestConfig::default();
    for sigma in [0.01, 50.0] {
        let pts = scaled(sigma, 7);
        let mut det = IsolationForest::new(&cfg);
        let out = score(&mut det, &pts);
        let caught = SPIKES.iter().filter(|&&i| out[i] >= 0.5).count();
        assert_eq!(
            caught,
            SPIKES.len(),
            "σ {sigma}: {:?}",
            SPIKES.map(|i| out[i])
        );
        let false_flags = (0..N)
            .filter(|&i| out[i] >= 0.5 && !SPIKES.iter().any(|&p| i >= p && i < p + cfg.window))
            .count();
        assert!(
            false_flags <= N / 100,
            "σ {sigma}: {false_flags} false flags"
        );
    }
}

#[test]
fn streaming_learns_first_then_scores_and_says_so() {
    let cfg = IsolationForestConfig::default();
    let pts = scaled(1.0, 3);
    let mut det = IsolationForest::new(&cfg);
    assert!(det.warming_up());
    // The first fit comes once one sub-sample of windows exists (window + sample_size - 1
    // points), then the calibration learns `warmup` scores: all of it scores 0.
    let learning = cfg.window + cfg.sample_size - 1 + cfg.calibration.warmup;
    let out = score(&mut det, &pts[..learning]);
    assert!(out.iter().all(|&s| s == 0.0), "{:?}", &out[learning - 5..]);
    assert!(!det.warming_up());
    let later = score(&mut det, &pts[learning..learning + 200]);
    assert!(later.iter().any(|&s| s > 0.0));
}

#[test]
fn streaming_refits_so_a_level_shift_becomes_normal() {
    // After a lasting shift of +10σ the seed preset (fitted once) scores every point as an
    // outlier for ever; the streaming forest refits on the latest points and stops flagging.
    let mut pts = scaled(1.0, 11);
    for p in &mut pts[1500..] {
        p.value += 10.0;
    }
    let tail = 2600..N;
    let streaming = run(&IsolationForestConfig::default(), &pts);
    let seed = run(&IsolationForestConfig::seed_preset(), &pts);
    let flagged = |s: &[f64]| tail.clone().filter(|&i| s[i] >= 0.5).count();
    assert!(flagged(&seed) > tail.len() / 4, "seed: {}", flagged(&seed));
    assert!(
        flagged(&streaming) < tail.len() / 50,
        "streaming: {}",
        flagged(&streaming)
    );
    // The shift itself is flagged by the streaming forest.
    assert!((1500..1510).any(|i| streaming[i] >= 0.5));
}

#[test]
fn cached_raw_scores_replay_to_the_detectors_output() {
    // What `tune` and `eval --folds` replay equals the detector (as NAB counts and live).
    let cfg = IsolationForestConfig::default();
    let pts = scaled(2.0, 5);
    let values: Vec<f64> = pts.iter().map(|p| p.value).collect();
    let raw = iforest::raw_scores(&cfg, &values);
    for nab in [true, false] {
        let mut det = IsolationForest::new(&cfg);
        if nab {
            det = det.for_nab();
        }
        let direct = score(&mut det, &pts);
        let replayed = pulsewatch_core::detect::calibrate::replay(&raw, cfg.calibration, nab);
        assert_eq!(direct, replayed, "nab {nab}");
    }
}

#[test]
fn streaming_state_carries_the_calibration() {
    // A restored streaming detector continues exactly: forest, recent values and calibration.
    let cfg = IsolationForestConfig::default();
    let pts = scaled(1.0, 13);
    let mut a = IsolationForest::new(&cfg);
    score(&mut a, &pts[..1200]);
    let state = a.save_state().expect("fitted");
    let mut b = IsolationForest::new(&cfg);
    b.load_state(&state).expect("loads");
    assert!(!b.warming_up(), "the calibration's warm-up is restored too");
    assert_eq!(score(&mut a, &pts[1200..]), score(&mut b, &pts[1200..]));
}
