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

/// Runs `fit` with a control that never cancels, returning the progress reports.
fn collecting(
    fit: impl FnOnce(&mut FitControl<'_>) -> Result<(), FitError>,
) -> Result<Vec<FitProgress>, FitError> {
    let cancel = AtomicBool::new(false);
    let mut seen = Vec::new();
    let mut progress = |p: FitProgress| seen.push(p);
    let mut ctl = FitControl {
        cancel: &cancel,
        progress: &mut progress,
    };
    fit(&mut ctl)?;
    Ok(seen)
}

/// Fits `det` on `history`, returning the progress reports.
fn fit(det: &mut LstmAe, history: &[Point]) -> Result<Vec<FitProgress>, FitError> {
    collecting(|ctl| det.fit(history, ctl))
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
    // still ends full, and the model kept reconstructs the sine (median error below a third
    // of the threshold: raw score 0.5 + log10(1/3) / 20).
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
        out[out.len() / 2] < 0.5 + (1.0f64 / 3.0).log10() / 20.0,
        "median raw score {}",
        out[out.len() / 2]
    );
}

// ---- Multivariate mode -------------------------------------------------------------------

mod joint {
    use super::*;
    use pulsewatch_core::detect::lstm::joint::JointLstmAe;

    /// The group's config: calibrated as shipped, sized for a quick debug-profile test.
    fn cfg() -> LstmAeConfig {
        LstmAeConfig {
            sequence: 20,
            hidden: 16,
            epochs: 30,
            batch: 16,
            train: 400,
            ..LstmAeConfig::default()
        }
    }

    /// A smooth quasi-periodic load (three incommensurate sines) at row `t`.
    fn load(t: f64) -> f64 {
        (t / 6.0).sin() + 0.6 * (t / 14.3).sin() + 0.4 * (t / 3.7 + 1.0).sin()
    }

    /// Where the relation breaks, and the rows in which an alarm counts as catching it (80
    /// rows, of the order of a NAB window; the univariate detector's own calibrated output has
    /// an occasional record-driven alarm, which lands elsewhere on this stream).
    const BREAK: usize = 560;
    pub const ANOMALY: std::ops::Range<usize> = BREAK..BREAK + 80;

    /// Rows of (cpu, memory, latency): memory and latency follow the load that cpu is. From
    /// `BREAK` latency stops following: it drifts smoothly (over 40 rows) 13 rows behind
    /// the load and stays there, so each member alone looks as usual (the same curve, in range,
    /// without a jump) while the relation breaks.
    pub fn group(n: usize, seed: u64) -> Vec<[f64; 3]> {
        let mut rng = Lcg(seed);
        let smooth = |u: f64| {
            let u = u.clamp(0.0, 1.0);
            u * u * (3.0 - 2.0 * u)
        };
        (0..n)
            .map(|t| {
                let x = t as f64;
                let into = t.saturating_sub(BREAK) as f64;
                let lag = 13.0 * smooth(into / 40.0);
                let cpu = load(x) + 0.05 * rng.next();
                let memory = 0.6 * load(x) + 0.5 * (x / 40.0).sin() + 0.05 * rng.next();
                let latency = 2.0 * load(x - lag) + 1.0 + 0.05 * rng.next();
                [cpu, memory, latency]
            })
            .collect()
    }

    fn names() -> Vec<String> {
        ["cpu", "memory", "latency"].map(String::from).to_vec()
    }

    /// The planted break is caught by the group's model and named (latency), and missed by the
    /// univariate detector on every member; the group's model does not alarm before it.
    #[test]
    fn a_joint_anomaly_no_member_shows_is_caught_in_multivariate_mode_only() {
        let rows = group(700, 11);
        let mut joint = JointLstmAe::new(&cfg(), names());
        let mut culprit = None;
        let mut scores = Vec::with_capacity(rows.len());
        for (t, r) in rows.iter().enumerate() {
            let s = joint.update(r);
            if ANOMALY.contains(&t) && s >= 0.5 && culprit.is_none() {
                culprit = joint.worst().map(|(n, _)| n.to_string());
                let reason = joint.explain().expect("a reason");
                assert!(reason.text.contains("latency"), "{}", reason.text);
            }
            scores.push(s);
        }
        let inside = ANOMALY.map(|t| scores[t]).fold(0.0, f64::max);
        let before = scores[..BREAK].iter().copied().fold(0.0, f64::max);
        let first = ANOMALY.clone().find(|&t| scores[t] >= 0.5);
        eprintln!(
            "multivariate: max {inside:.3} after the break (first alarm at row {first:?}), {before:.3} before"
        );
        assert!(inside >= 0.5, "multivariate missed it: max {inside:.3}");
        assert_eq!(culprit.as_deref(), Some("latency"));
        assert!(before < 0.5, "multivariate false alarm: max {before:.3}");
        for (c, name) in names().iter().enumerate() {
            let mut solo = LstmAe::new(&cfg());
            let s: Vec<f64> = rows
                .iter()
                .enumerate()
                .map(|(t, r)| {
                    solo.update(Point {
                        timestamp: 1_600_000_000 + 60 * t as i64,
                        value: r[c],
                    })
                })
                .collect();
            let inside = ANOMALY.map(|t| s[t]).fold(0.0, f64::max);
            eprintln!("univariate {name}: max {inside:.3} after the break");
            assert!(inside < 0.5, "univariate {name} caught it: max {inside:.3}");
        }
    }

    /// A row's score depends on that row and earlier ones only; training is deterministic.
    #[test]
    fn joint_scores_are_causal_and_deterministic() {
        // Raw scores (the calibration's warm-up would hold them at 0 here).
        let c = LstmAeConfig {
            epochs: 3,
            train: 200,
            calibrate: false,
            ..cfg()
        };
        let rows = group(320, 12);
        let run = |rows: &[[f64; 3]]| {
            let mut d = JointLstmAe::new(&c, names());
            rows.iter().map(|r| d.update(r)).collect::<Vec<f64>>()
        };
        let full = run(&rows);
        for cut in [199, 200, 201, 260] {
            let mut changed = rows.clone();
            for r in &mut changed[cut..] {
                *r = [9.0, -9.0, 40.0];
            }
            assert_eq!(run(&changed)[..cut], full[..cut], "cut at {cut}");
        }
        assert!(full[250..].iter().any(|&s| s != full[250]));
    }

    /// An explicit fit reports every epoch and honours cancellation, keeping the previous model.
    #[test]
    fn joint_fit_reports_progress_and_cancels() {
        let c = LstmAeConfig { epochs: 3, ..cfg() };
        let flat: Vec<f64> = group(300, 13).into_iter().flatten().collect();
        let mut d = JointLstmAe::new(&c, names());
        let seen = collecting(|ctl| d.fit(&flat, ctl)).expect("fit");
        assert_eq!(seen.last().map(|p| (p.done, p.total)), Some((3, 3)));
        assert!(seen.iter().all(|p| p.loss.is_some_and(f64::is_finite)));
        assert!(d.is_fitted());
        let cancel = AtomicBool::new(true);
        let mut progress = |_: FitProgress| {};
        let mut ctl = FitControl {
            cancel: &cancel,
            progress: &mut progress,
        };
        let mut fresh = JointLstmAe::new(&c, names());
        assert!(matches!(
            fresh.fit(&flat, &mut ctl),
            Err(FitError::Cancelled)
        ));
        assert!(!fresh.is_fitted());
    }

    /// A saved group model restores with its members and scores as the original does once its
    /// window has refilled; bad states are refused with a reason, the original untouched.
    #[test]
    fn joint_state_roundtrips_and_bad_states_are_rejected() {
        let c = LstmAeConfig {
            epochs: 3,
            train: 200,
            calibrate: false,
            ..cfg()
        };
        let rows = group(300, 14);
        let flat: Vec<f64> = rows[..200].iter().flatten().copied().collect();
        let mut d = JointLstmAe::new(&c, names());
        assert!(d.save_state().is_none(), "no state before a fit");
        collecting(|ctl| d.fit(&flat, ctl)).expect("fit");
        let state = d.save_state().expect("state");
        let mut back = JointLstmAe::from_state(&c, &state).expect("restores");
        assert_eq!(back.members(), names().as_slice());
        assert!(back.is_fitted());
        let (a, b): (Vec<f64>, Vec<f64>) = rows[200..]
            .iter()
            .map(|r| (d.update(r), back.update(r)))
            .unzip();
        // The restored model has no window until `sequence` (20) rows came in.
        assert_eq!(a[20..], b[20..]);
        assert!(a[20..].iter().any(|&s| s != a[20]), "scores vary");

        let err = |bytes: &[u8], c: &LstmAeConfig| match JointLstmAe::from_state(c, bytes) {
            Err(FitError::BadState(why)) => why,
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("a bad state was accepted"),
        };
        let mut flipped = state.clone();
        flipped[40] ^= 1;
        assert!(err(&flipped, &c).contains("checksum"));
        assert!(err(&state[..state.len() / 2], &c).contains("checksum"));
        assert!(err(b"PWLSTMAE junk state", &c).contains("magic"));
        let other = LstmAeConfig {
            hidden: 8,
            ..c.clone()
        };
        assert!(err(&state, &other).contains("hidden"));
    }
}
