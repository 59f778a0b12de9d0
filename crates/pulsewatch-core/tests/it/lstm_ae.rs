//! LSTM autoencoder detector: training, scoring, causality, cancellation and persistence, on a
//! small config so the suite stays quick in the debug profile.

use std::sync::atomic::{AtomicBool, Ordering};

use pulsewatch_core::config::LstmAeConfig;
use pulsewatch_core::detect::lstm::LstmAe;
use pulsewatch_core::detect::{Detector, FitControl, FitError, FitProgress, Point, Trainable};

/// Small and quick; batch 16 gives 18 optimiser steps per epoch on 300 points, enough for the
/// loss to fall clearly within 3 epochs.
/// A small, quick model whose output is its own raw score (the calibrated output is tested at
/// the end of this file).
fn small() -> LstmAeConfig {
    LstmAeConfig {
        sequence: 20,
        hidden: 8,
        epochs: 3,
        batch: 16,
        train: 300,
        calibrate: false,
        ..LstmAeConfig::default()
    }
}

/// Uniform noise in [-1, 1) from a fixed-seed LCG.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
}

/// A noisy sine of period 25 around 10, one point a minute.
fn sine(n: usize, seed: u64) -> Vec<Point> {
    let mut rng = Lcg(seed);
    (0..n)
        .map(|t| Point {
            timestamp: 1_600_000_000 + 60 * t as i64,
            value: 10.0 + 2.0 * (t as f64 * std::f64::consts::TAU / 25.0).sin() + 0.2 * rng.next(),
        })
        .collect()
}

fn feed(det: &mut LstmAe, pts: &[Point]) -> Vec<f64> {
    pts.iter().map(|&p| det.update(p)).collect()
}

/// Fits `det` on `history`, returning the progress reports.
fn fit(det: &mut LstmAe, history: &[Point]) -> Result<Vec<FitProgress>, FitError> {
    let cancel = AtomicBool::new(false);
    let mut seen = Vec::new();
    let mut progress = |p: FitProgress| seen.push(p);
    let mut ctl = FitControl {
        cancel: &cancel,
        progress: &mut progress,
    };
    det.fit(history, &mut ctl)?;
    Ok(seen)
}

#[test]
fn training_reduces_the_loss_and_reports_every_epoch() {
    let cfg = small();
    let mut det = LstmAe::new(&cfg);
    let seen = fit(&mut det, &sine(300, 1)).expect("fit");
    let done: Vec<usize> = seen.iter().map(|p| p.done).collect();
    assert_eq!(done, (1..=cfg.epochs).collect::<Vec<_>>());
    assert!(seen.iter().all(|p| p.total == cfg.epochs));
    let losses: Vec<f64> = seen
        .iter()
        .map(|p| p.loss.expect("loss reported"))
        .collect();
    eprintln!("losses per epoch: {losses:?}");
    assert!(
        losses.iter().all(|l| l.is_finite() && *l >= 0.0),
        "{losses:?}"
    );
    assert!(
        losses[0] > losses[losses.len() - 1],
        "loss did not fall: {losses:?}"
    );
    assert!(det.is_fitted());
}

#[test]
fn streaming_returns_half_until_trained_then_flags_a_planted_spike_and_shift() {
    let cfg = small();
    let pts = sine(800, 2);
    let mut det = LstmAe::new(&cfg);
    let mut scores = feed(&mut det, &pts[..600]);
    assert!(
        scores[..cfg.train].iter().all(|&s| s == 0.5),
        "flagged while learning"
    );
    assert!(det.is_fitted());
    // Normal points after training: the reference distribution.
    let mut normal: Vec<f64> = scores[cfg.train..].to_vec();
    normal.sort_by(f64::total_cmp);
    let p99 = normal[(normal.len() as f64 * 0.99) as usize - 1];
    // A spike of 8 amplitudes at row 600.
    let mut spike = pts[600];
    spike.value += 16.0;
    let s_spike = det.update(spike);
    scores.push(s_spike);
    assert!(s_spike > p99, "spike {s_spike} <= p99 {p99}");
    // The reason: the reconstruction error, many times its usual level.
    let why = det.explain().expect("a reason once trained");
    assert_eq!(why.signal, "reconstruction");
    assert!(why.excess > 5.0, "{why:?}");
    assert!(why.text.contains("its usual level"), "{}", why.text);
    // Let the spike leave the window, then shift the level by 3 amplitudes.
    scores.extend(feed(&mut det, &pts[601..650]));
    let shifted: Vec<Point> = pts[650..660]
        .iter()
        .map(|p| Point {
            value: p.value + 6.0,
            ..*p
        })
        .collect();
    let s_shift = feed(&mut det, &shifted);
    eprintln!("p99 {p99}, spike {s_spike}, shift {:?}", &s_shift[..3]);
    assert!(s_shift[0] > p99, "level shift {} <= p99 {p99}", s_shift[0]);
    scores.extend(s_shift);
    assert!(
        scores.iter().all(|s| (0.0..=1.0).contains(s)),
        "score out of [0, 1]"
    );
}

#[test]
fn scores_are_causal_and_training_is_deterministic() {
    let cfg = small();
    let pts = sine(450, 3);
    let full = feed(&mut LstmAe::new(&cfg), &pts);
    // Fresh detectors fed prefixes (each trains again on the same 300 points).
    for cut in [1, 299, 300, 301, 400] {
        let part = feed(&mut LstmAe::new(&cfg), &pts[..cut]);
        assert_eq!(part[..], full[..cut], "cut at {cut}");
    }
    // And a clone taken mid-stream continues exactly like the original.
    let mut a = LstmAe::new(&cfg);
    let mut first = feed(&mut a, &pts[..350]);
    let mut b = a.clone();
    first.extend(feed(&mut b, &pts[350..]));
    assert_eq!(first, full);
    // Scores after training are not constant (the test would be vacuous otherwise).
    assert!(full[300..].iter().any(|&s| s != full[300]));
}

#[test]
fn cancelled_fit_keeps_the_previous_state() {
    let cfg = small();
    let history = sine(300, 4);
    let mut det = LstmAe::new(&cfg);
    // Cancelled before anything: stays unfitted.
    let cancel = AtomicBool::new(true);
    let mut calls = 0;
    let mut progress = |_: FitProgress| calls += 1;
    let mut ctl = FitControl {
        cancel: &cancel,
        progress: &mut progress,
    };
    assert!(matches!(
        det.fit(&history, &mut ctl),
        Err(FitError::Cancelled)
    ));
    assert_eq!(calls, 0);
    assert!(!det.is_fitted());
    assert!(det.save_state().is_none());

    // Fitted, then a second fit cancelled after its first epoch: the first model stays.
    fit(&mut det, &history).expect("fit");
    let before = det.save_state().expect("state");
    let cancel = AtomicBool::new(false);
    let mut progress = |p: FitProgress| {
        if p.done == 1 {
            cancel.store(true, Ordering::Relaxed);
        }
    };
    let mut ctl = FitControl {
        cancel: &cancel,
        progress: &mut progress,
    };
    let other = sine(300, 5);
    assert!(matches!(
        det.fit(&other, &mut ctl),
        Err(FitError::Cancelled)
    ));
    assert_eq!(det.save_state().expect("state"), before);
}

#[test]
fn explicit_fit_scores_at_once_and_short_history_is_rejected() {
    let cfg = small();
    let pts = sine(400, 6);
    let mut det = LstmAe::new(&cfg);
    assert!(matches!(
        fit(&mut det, &pts[..cfg.sequence - 1]),
        Err(FitError::TooShort { .. })
    ));
    fit(&mut det, &pts[..300]).expect("fit");
    let next = feed(&mut det, &pts[300..310]);
    assert!(
        next.iter().all(|&s| s != 0.5 && (0.0..1.0).contains(&s)),
        "{next:?}"
    );
}

#[test]
fn state_roundtrips_and_bad_states_are_rejected() {
    let cfg = small();
    let pts = sine(500, 7);
    let mut det = LstmAe::new(&cfg);
    feed(&mut det, &pts[..350]);
    let state = det.save_state().expect("fitted");

    let mut restored = LstmAe::new(&cfg);
    restored.load_state(&state).expect("load");
    assert!(restored.is_fitted());
    let a = feed(&mut det, &pts[350..]);
    let b = feed(&mut restored, &pts[350..]);
    assert_eq!(a, b);
    assert!(a.iter().any(|&s| s != 0.5));

    let bad = |bytes: &[u8], c: &LstmAeConfig| {
        let mut d = LstmAe::new(c);
        let r = d.load_state(bytes);
        assert!(matches!(r, Err(FitError::BadState(_))), "{r:?}");
        assert!(!d.is_fitted());
    };
    // Corrupt bytes: a flipped bit in the weights, truncation, garbage, nothing.
    let mut flipped = state.clone();
    flipped[state.len() / 2] ^= 0x10;
    bad(&flipped, &cfg);
    bad(&state[..state.len() - 1], &cfg);
    bad(&state[..40], &cfg);
    bad(b"not a model at all", &cfg);
    bad(&[], &cfg);
    // Incompatible parameters.
    bad(
        &state,
        &LstmAeConfig {
            hidden: 4,
            ..cfg.clone()
        },
    );
    bad(
        &state,
        &LstmAeConfig {
            sequence: 30,
            ..cfg.clone()
        },
    );
}

#[test]
fn a_replay_from_before_the_saved_window_starts_with_an_empty_window() {
    let cfg = small();
    let pts = sine(400, 8);
    let mut det = LstmAe::new(&cfg);
    fit(&mut det, &pts[..300]).expect("fit");
    let state = det.save_state().expect("fitted");
    // Continuing after the history: scored at once from the saved window.
    let mut cont = LstmAe::new(&cfg);
    cont.load_state(&state).expect("load");
    assert_ne!(cont.update(pts[300]), 0.5);
    // Replaying from the first row: 0.5 until a window of new points exists, then scores.
    let mut replay = LstmAe::new(&cfg);
    replay.load_state(&state).expect("load");
    let s = feed(&mut replay, &pts[..cfg.sequence + 5]);
    assert!(s[..cfg.sequence - 1].iter().all(|&x| x == 0.5), "{s:?}");
    assert!(s[cfg.sequence - 1..].iter().all(|&x| x != 0.5), "{s:?}");
}

#[test]
fn calibrated_output_flags_a_spike_and_replays_from_cached_raw_scores() {
    let cfg = LstmAeConfig {
        calibrate: true,
        ..small()
    };
    let mut pts = sine(1200, 9);
    pts[1000].value += 16.0;
    let mut det = LstmAe::new(&cfg);
    assert!(det.warming_up());
    let out = feed(&mut det, &pts);
    // Training, then the calibration's warm-up: nothing scores.
    let scoring = cfg.train + cfg.sequence.saturating_sub(cfg.train) + cfg.calibration.warmup;
    assert!(out[..scoring].iter().all(|&s| s == 0.0));
    assert!(!det.warming_up());
    assert!(out[1000] >= 0.5, "spike {}", out[1000]);
    let false_flags = (scoring..1200)
        .filter(|&i| out[i] >= 0.5 && !(1000..1000 + cfg.sequence).contains(&i))
        .count();
    assert!(false_flags <= 8, "{false_flags} false flags");
    // What `tune` and `eval --folds` replay is the detector, live and as NAB counts.
    let ts: Vec<i64> = pts.iter().map(|p| p.timestamp).collect();
    let vs: Vec<f64> = pts.iter().map(|p| p.value).collect();
    let raw = pulsewatch_core::detect::lstm::raw_scores(&cfg, &ts, &vs);
    let live = pulsewatch_core::detect::calibrate::replay(&raw, cfg.calibration, false);
    assert_eq!(live, out);
    let mut nab = LstmAe::new(&cfg).for_nab();
    let nab_out = feed(&mut nab, &pts);
    assert_eq!(
        pulsewatch_core::detect::calibrate::replay(&raw, cfg.calibration, true),
        nab_out
    );
}

#[test]
fn training_stops_early_on_the_held_back_windows_and_keeps_the_best() {
    // Far more epochs than a small sine needs: the held-back tenth stops it, the progress bar
    // still ends full, and the model kept reconstructs the sine (median raw score well below
    // the 0.5 of an error at the threshold).
    let cfg = LstmAeConfig {
        epochs: 300,
        ..small()
    };
    let mut det = LstmAe::new(&cfg);
    let pts = sine(400, 4);
    let seen = fit(&mut det, &pts[..300]).expect("fit");
    assert!(seen.len() < 300, "ran all {} epochs", seen.len());
    let last = seen.last().expect("progress");
    assert_eq!((last.done, last.total), (300, 300));
    let mut out = feed(&mut det, &pts[300..]);
    out.sort_by(f64::total_cmp);
    assert!(
        out[out.len() / 2] < 0.25,
        "median raw score {}",
        out[out.len() / 2]
    );
}
