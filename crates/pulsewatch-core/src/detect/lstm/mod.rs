//! LSTM autoencoder: the anomaly score of a point is how badly a small sequence autoencoder,
//! trained on the first points of its series, reconstructs that point as the newest value of the
//! latest `sequence` points.
//!
//! # Architecture
//! Encoder LSTM 1→`hidden`; its final hidden state is the input of every step of a decoder LSTM
//! `hidden`→`hidden` (the "repeat vector" of the replaced Keras-style model); a Linear `hidden`→1
//! maps each decoder step to a reconstructed value, oldest first. Both LSTMs are
//! `candle_nn::rnn::LSTM` (single layer, gate order i, f, g, o: PyTorch's layout).
//!
//! # Training
//! On the first `train` points of the stream, or on the latest `train` finite points of the
//! history given to [`Trainable::fit`] (at least `sequence` of them, else `FitError::TooShort`):
//! values are standardised with their own mean and standard deviation (floored at 1e-6) and cut
//! into every window of length `sequence` (stride 1: 476 windows for the defaults). The network is
//! trained with candle's autodiff: MSE between reconstruction and window over all steps, AdamW
//! (`learning_rate`; candle's other defaults, weight decay 0.01), mini-batches of `batch` windows
//! in an order reshuffled every epoch, at most `epochs` epochs. **Early stopping:** with 50
//! windows or more, the latest tenth of them is held back; after each epoch their loss is
//! computed with the plain-Rust forward pass, the best weights so far are kept, an epoch that
//! does not lower it by 0.1 % halves the learning rate, and three such epochs in a row stop
//! training (the progress then jumps to done). The model is the best weights seen. Initial weights and shuffles come from our
//! own SplitMix64 seeded with `seed`, since candle's CPU RNG cannot be seeded: every weight and
//! bias uniform in ±1/√hidden, as PyTorch initialises. Candle's CPU kernels reduce in a fixed
//! order (our matrices are far below gemm's threading threshold), so a seed and a series give
//! bit-identical models and scores on every run and at any `RAYON_NUM_THREADS` (checked by
//! `tests/lstm_ae.rs`, the corpus causality test and repeated corpus runs). Each epoch reports
//! `FitProgress { done: epoch, total: epochs, loss: Some(mean batch loss) }` and logs one
//! `tracing` info line; the cancel flag is checked before every batch. A cancelled (`Cancelled`),
//! diverged or failed (`Failed`) fit leaves the previous model, or the unfitted state, in place.
//!
//! # Scoring
//! The output is the raw score below, calibrated per series by [`super::calibrate`] (the rarity
//! of the raw score among the series' recent ones, `alarm` mapped to 0.5; 0 while training and
//! during the layer's warm-up) unless `calibrate = false`, when it is the raw score itself (0.5
//! while training). A point's error `e` is the squared reconstruction error of the newest standardised value of the
//! window ending at it (the decoder's last output). It is mapped to a log scale,
//! `0.5 + log10(e / threshold) / 20` clamped to [0, 1]: monotone, exactly 0.5 at `threshold`;
//! a non-finite error scores 1. The log scale is for the calibration, which ranks raw scores in
//! 512 equal bins over [0, 1]: under the previous `e / (e + threshold)` every error above 12.5
//! (3.5 standard deviations) fell into the top bin, so on a series whose errors grew after
//! training (most of NAB: the model sees the first points only) the calibration could not tell
//! them apart; a log scale gives every decade 25 bins (NAB figures: `docs/detectors.md`).
//! (The MSE over the whole window was measured too: it smears one odd point over `sequence` scores and scored 0.0 /
//! 0.0 / 0.18 on NAB against 5.3 / 4.2 / 10.2 for the newest step.) Standardised values are
//! clamped to ±1e4, so a flat training stretch (std at the floor) cannot overflow `f32`.
//! Inference does not go through candle: the trained weights are copied into plain `f32` arrays
//! (recurrent matrices transposed so each step is a run of vectorisable AXPYs; the decoder's
//! constant input projection computed once per window; a branch-free rational tanh within 1e-6
//! of the exact one) and the forward pass reuses preallocated buffers, so scoring allocates
//! nothing per point. Unit tests check this forward pass against candle's on the same weights.
//!
//! # Streaming and causality
//! Points 1..=`train` score 0.5 (never flagged) and are buffered; on the `train`-th point the
//! model is fitted on exactly those points (a failed fit is logged and the detector stays at 0.5).
//! Every later point is scored from the model and a ring buffer of the latest `sequence` points:
//! from that point and earlier ones only. Non-finite values score 0.5 and are not stored.
//! After [`Trainable::fit`] or [`Trainable::load_state`] the detector scores with that model at
//! once and never auto-fits. The ring buffer is then seeded from the history's tail (or the
//! saved one) when that is newer than what was fed; if the next point fed is older than that
//! tail (a replay restarting from its first row) the tail is dropped. While the buffer holds
//! fewer than `sequence` points the score is 0.5.
//!
//! # Persistence
//! `save_state` writes a little-endian binary: magic, format version (3), `sequence`, `hidden`,
//! mean, std, the weights, the ring buffer, the calibration layer's state (since version 2;
//! 4.2 KB) and an FNV-1a checksum (56 KB for the defaults). Version 1 states (no calibration)
//! and version 2 states (whose calibration ranked the old `e / (e + threshold)` scores) load
//! with a fresh calibration; a restored version 3 calibration continues where it was saved,
//! unless the detector has scored already.
//! `load_state` rejects, with `FitError::BadState` and without touching the detector, a bad
//! magic, version, checksum or length, non-finite numbers, and a `sequence` or `hidden` other
//! than this detector's. `threshold` is not stored: the current config's is used.
//!
//! # Figures
//! Speed, loss and NAB figures: `docs/detectors.md`.

pub mod joint;

use std::collections::VecDeque;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use candle_core::{DType, Device, Shape, Tensor, Var};
use candle_nn::optim::{AdamW, ParamsAdamW};
use candle_nn::rnn::{LSTM, LSTMConfig, RNN, lstm};
use candle_nn::{Linear, Module, Optimizer, VarBuilder};

use super::calibrate::Calibrator;
use super::{Detector, FitControl, FitError, FitProgress, Point, Reason, Trainable};
use crate::config::LstmAeConfig;
use crate::num::compact;

/// Smallest standard deviation used for standardising, so a flat series does not divide by zero.
const MIN_STD: f64 = 1e-6;
/// Standardised values are clamped to ± this, so the squared error stays finite in `f32`.
const Z_CLAMP: f64 = 1e4;
/// Persisted state: magic bytes and format version.
const MAGIC: &[u8; 8] = b"PWLSTMAE";
const VERSION: u32 = 3;

/// The config with every knob made usable (no zero sizes, positive rates).
#[derive(Debug, Clone)]
struct Params {
    sequence: usize,
    hidden: usize,
    epochs: usize,
    learning_rate: f64,
    batch: usize,
    threshold: f64,
    train: usize,
    seed: u64,
}

impl Params {
    fn new(cfg: &LstmAeConfig) -> Self {
        let sequence = cfg.sequence.max(2);
        let positive = |x: f64, default: f64| if x.is_finite() && x > 0.0 { x } else { default };
        Params {
            sequence,
            hidden: cfg.hidden.max(1),
            epochs: cfg.epochs.max(1),
            learning_rate: positive(cfg.learning_rate, 0.01),
            batch: cfg.batch.max(1),
            threshold: positive(cfg.threshold, f64::MIN_POSITIVE),
            train: cfg.train.max(sequence),
            seed: cfg.seed,
        }
    }
}

/// Trained weights in the layout the plain-Rust forward pass wants. `H` = hidden, `G` = 4·H,
/// `M` = inputs (1 for one series, the group's size in the multivariate mode).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Weights {
    hidden: usize,
    inputs: usize,
    /// Encoder input weights transposed: (M, G).
    enc_wih_t: Vec<f32>,
    /// Encoder recurrent weights transposed: (H, G), row j = column j of `weight_hh`.
    enc_whh_t: Vec<f32>,
    /// Encoder `bias_ih + bias_hh` (G).
    enc_b: Vec<f32>,
    /// Decoder input weights transposed (H, G).
    dec_wih_t: Vec<f32>,
    /// Decoder recurrent weights transposed (H, G).
    dec_whh_t: Vec<f32>,
    /// Decoder `bias_ih + bias_hh` (G).
    dec_b: Vec<f32>,
    /// Output layer (M, H) and its bias (M).
    out_w: Vec<f32>,
    out_b: Vec<f32>,
}

impl Weights {
    fn len_for(hidden: usize, inputs: usize) -> usize {
        let g = 4 * hidden;
        g * inputs + g * hidden + g + g * hidden + g * hidden + g + hidden * inputs + inputs
    }

    fn flatten(&self) -> Vec<f32> {
        let mut v = Vec::with_capacity(Self::len_for(self.hidden, self.inputs));
        for part in [
            &self.enc_wih_t,
            &self.enc_whh_t,
            &self.enc_b,
            &self.dec_wih_t,
            &self.dec_whh_t,
            &self.dec_b,
            &self.out_w,
            &self.out_b,
        ] {
            v.extend_from_slice(part);
        }
        v
    }

    fn unflatten(hidden: usize, inputs: usize, v: &[f32]) -> Option<Self> {
        if v.len() != Self::len_for(hidden, inputs) {
            return None;
        }
        let g = 4 * hidden;
        let mut rest = v;
        let mut take = |n: usize| {
            let (a, b) = rest.split_at(n);
            rest = b;
            a.to_vec()
        };
        let enc_wih_t = take(g * inputs);
        let enc_whh_t = take(g * hidden);
        let enc_b = take(g);
        let dec_wih_t = take(g * hidden);
        let dec_whh_t = take(g * hidden);
        let dec_b = take(g);
        let out_w = take(hidden * inputs);
        let out_b = take(inputs);
        Some(Weights {
            hidden,
            inputs,
            enc_wih_t,
            enc_whh_t,
            enc_b,
            dec_wih_t,
            dec_whh_t,
            dec_b,
            out_w,
            out_b,
        })
    }

    /// Reconstructs the standardised window `z` (steps × inputs, row-major) into `s.recon`.
    fn reconstruct(&self, z: &[f32], s: &mut Scratch) {
        let (hd, m) = (self.hidden, self.inputs);
        let steps = z.len() / m;
        s.resize(hd, steps * m);
        // Encoder from a zero state.
        s.h.fill(0.0);
        s.c.fill(0.0);
        for (t, x) in z.chunks_exact(m).enumerate() {
            s.gates.copy_from_slice(&self.enc_b);
            add_matvec_t(&mut s.gates, &self.enc_wih_t, x);
            if t > 0 {
                add_matvec_t(&mut s.gates, &self.enc_whh_t, &s.h);
            }
            lstm_cell(&s.gates, &mut s.h, &mut s.c);
        }
        // The decoder's input (the encoder's last h) is the same at every step: project it once.
        s.dec_in.copy_from_slice(&self.dec_b);
        add_matvec_t(&mut s.dec_in, &self.dec_wih_t, &s.h);
        s.h.fill(0.0);
        s.c.fill(0.0);
        for t in 0..steps {
            s.gates.copy_from_slice(&s.dec_in);
            if t > 0 {
                add_matvec_t(&mut s.gates, &self.dec_whh_t, &s.h);
            }
            lstm_cell(&s.gates, &mut s.h, &mut s.c);
            let out = &mut s.recon[t * m..(t + 1) * m];
            for ((o, &b), w) in out
                .iter_mut()
                .zip(&self.out_b)
                .zip(self.out_w.chunks_exact(hd))
            {
                *o = b + dot(w, &s.h);
            }
        }
    }
}

/// `out += Wᵀ v` with `wt` stored as (len(v), len(out)) rows: one AXPY per element of `v`.
fn add_matvec_t(out: &mut [f32], wt: &[f32], v: &[f32]) {
    let n = out.len();
    for (row, &vj) in wt.chunks_exact(n).zip(v) {
        for (o, &w) in out.iter_mut().zip(row) {
            *o += w * vj;
        }
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// tanh as a rational function (Eigen's `generic_fast_tanh_float`): branch-free, so the cell
/// loop vectorises; within a few ulp of `f32::tanh` (unit-tested below).
#[inline(always)]
fn fast_tanh(x: f32) -> f32 {
    const CLAMP: f32 = 7.905_311;
    const A1: f32 = 4.893_524_6e-3;
    const A3: f32 = 6.372_619_3e-4;
    const A5: f32 = 1.485_722_4e-5;
    const A7: f32 = 5.122_297e-8;
    const A9: f32 = -8.604_672e-11;
    const A11: f32 = 2.000_188e-13;
    const A13: f32 = -2.760_768_5e-16;
    const B0: f32 = 4.893_525e-3;
    const B2: f32 = 2.268_434_6e-3;
    const B4: f32 = 1.185_347e-4;
    const B6: f32 = 1.198_258_4e-6;
    let x = x.clamp(-CLAMP, CLAMP);
    let x2 = x * x;
    let p = x * (A1 + x2 * (A3 + x2 * (A5 + x2 * (A7 + x2 * (A9 + x2 * (A11 + x2 * A13))))));
    let q = B0 + x2 * (B2 + x2 * (B4 + x2 * B6));
    p / q
}

#[inline(always)]
fn fast_sigmoid(x: f32) -> f32 {
    0.5 + 0.5 * fast_tanh(0.5 * x)
}

/// One LSTM cell update from pre-activations `gates` = [i | f | g | o].
fn lstm_cell(gates: &[f32], h: &mut [f32], c: &mut [f32]) {
    let hd = h.len();
    let (gi, rest) = gates.split_at(hd);
    let (gf, rest) = rest.split_at(hd);
    let (gg, go) = rest.split_at(hd);
    let c = &mut c[..hd];
    let (gf, gg, go) = (&gf[..hd], &gg[..hd], &go[..hd]);
    for j in 0..hd {
        let i = fast_sigmoid(gi[j]);
        let f = fast_sigmoid(gf[j]);
        let g = fast_tanh(gg[j]);
        let o = fast_sigmoid(go[j]);
        c[j] = f * c[j] + i * g;
        h[j] = o * fast_tanh(c[j]);
    }
}

/// Buffers of the forward pass, reused from point to point.
#[derive(Debug, Clone, Default)]
struct Scratch {
    z: Vec<f32>,
    recon: Vec<f32>,
    h: Vec<f32>,
    c: Vec<f32>,
    gates: Vec<f32>,
    dec_in: Vec<f32>,
}

impl Scratch {
    fn resize(&mut self, hidden: usize, sequence: usize) {
        self.recon.resize(sequence, 0.0);
        self.h.resize(hidden, 0.0);
        self.c.resize(hidden, 0.0);
        self.gates.resize(4 * hidden, 0.0);
        self.dec_in.resize(4 * hidden, 0.0);
    }
}

/// A fitted model: standardisation per input and weights.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Model {
    mean: Vec<f64>,
    std: Vec<f64>,
    weights: Weights,
}

impl Model {
    /// Input `c`'s value `v`, standardised.
    fn standardise(&self, c: usize, v: f64) -> f32 {
        ((v - self.mean[c]) / self.std[c]).clamp(-Z_CLAMP, Z_CLAMP) as f32
    }
}

/// SplitMix64: small, seedable, good enough for initialisation and shuffling.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next_f64() * n as f64) as usize % n.max(1)
    }
}

/// The trainable candle network and its variables.
struct Net {
    enc: LSTM,
    dec: LSTM,
    out: Linear,
    vars: Vec<(&'static str, Var)>,
}

const VAR_NAMES: [&str; 10] = [
    "enc.weight_ih_l0",
    "enc.weight_hh_l0",
    "enc.bias_ih_l0",
    "enc.bias_hh_l0",
    "dec.weight_ih_l0",
    "dec.weight_hh_l0",
    "dec.bias_ih_l0",
    "dec.bias_hh_l0",
    "out.weight",
    "out.bias",
];

impl Net {
    /// A network over `inputs` series with weights drawn uniformly in ±1/√hidden from
    /// SplitMix64(`seed`).
    fn new(hidden: usize, inputs: usize, seed: u64, dev: &Device) -> candle_core::Result<Self> {
        let g = 4 * hidden;
        let shapes: [&[usize]; 10] = [
            &[g, inputs],
            &[g, hidden],
            &[g],
            &[g],
            &[g, hidden],
            &[g, hidden],
            &[g],
            &[g],
            &[inputs, hidden],
            &[inputs],
        ];
        let bound = 1.0 / (hidden as f64).sqrt();
        let mut rng = SplitMix64(seed);
        let mut vars = Vec::with_capacity(VAR_NAMES.len());
        for (name, dims) in VAR_NAMES.into_iter().zip(shapes) {
            let shape = Shape::from_dims(dims);
            let data: Vec<f32> = (0..shape.elem_count())
                .map(|_| ((rng.next_f64() * 2.0 - 1.0) * bound) as f32)
                .collect();
            vars.push((name, Var::from_vec(data, shape, dev)?));
        }
        Self::from_vars(hidden, inputs, vars, dev)
    }

    fn from_vars(
        hidden: usize,
        inputs: usize,
        vars: Vec<(&'static str, Var)>,
        dev: &Device,
    ) -> candle_core::Result<Self> {
        let map = vars
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_tensor().clone()))
            .collect();
        let vb = VarBuilder::from_tensors(map, DType::F32, dev);
        let enc = lstm(inputs, hidden, LSTMConfig::default(), vb.pp("enc"))?;
        let dec = lstm(hidden, hidden, LSTMConfig::default(), vb.pp("dec"))?;
        let out = Linear::new(
            vb.pp("out").get((inputs, hidden), "weight")?,
            Some(vb.pp("out").get(inputs, "bias")?),
        );
        Ok(Net {
            enc,
            dec,
            out,
            vars,
        })
    }

    fn var(&self, name: &str) -> candle_core::Result<Vec<f32>> {
        let v = self
            .vars
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| candle_core::Error::Msg(format!("no variable {name}")))?;
        v.1.as_tensor().flatten_all()?.to_vec1::<f32>()
    }

    /// Reconstruction of a batch `x` (B, S, M) as (B, S, M).
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, s, _) = x.dims3()?;
        let enc = self.enc.seq(x)?;
        let code = enc
            .last()
            .ok_or_else(|| candle_core::Error::Msg("empty sequence".into()))?
            .h
            .clone();
        let mut state = self.dec.zero_state(b)?;
        let mut hs = Vec::with_capacity(s);
        for _ in 0..s {
            state = self.dec.step(&code, &state)?;
            hs.push(state.h.clone());
        }
        let hs = Tensor::stack(&hs, 1)?; // (B, S, H)
        self.out.forward(&hs)
    }

    /// The weights in the plain-Rust inference layout.
    fn weights(&self, hidden: usize, inputs: usize) -> candle_core::Result<Weights> {
        let g = 4 * hidden;
        let add = |a: Vec<f32>, b: Vec<f32>| a.iter().zip(&b).map(|(x, y)| x + y).collect();
        Ok(Weights {
            hidden,
            inputs,
            enc_wih_t: transpose(&self.var("enc.weight_ih_l0")?, g, inputs),
            enc_whh_t: transpose(&self.var("enc.weight_hh_l0")?, g, hidden),
            enc_b: add(self.var("enc.bias_ih_l0")?, self.var("enc.bias_hh_l0")?),
            dec_wih_t: transpose(&self.var("dec.weight_ih_l0")?, g, hidden),
            dec_whh_t: transpose(&self.var("dec.weight_hh_l0")?, g, hidden),
            dec_b: add(self.var("dec.bias_ih_l0")?, self.var("dec.bias_hh_l0")?),
            out_w: self.var("out.weight")?,
            out_b: self.var("out.bias")?,
        })
    }
}

/// Row-major (rows, cols) → row-major (cols, rows).
fn transpose(w: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = w[r * cols + c];
        }
    }
    t
}

fn failed(e: candle_core::Error) -> FitError {
    FitError::Failed(e.to_string())
}

/// Mean and standard deviation of input `c` of `rows` (row-major, `m` per row), the deviation
/// floored at [`MIN_STD`].
fn mean_std(rows: &[f64], m: usize, c: usize) -> (f64, f64) {
    let col = || rows.iter().skip(c).step_by(m);
    let n = (rows.len() / m).max(1) as f64;
    let mean = col().sum::<f64>() / n;
    let var = col().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    (mean, var.sqrt().max(MIN_STD))
}

/// One optimiser step on a batch of `b` windows of `s` steps × `m` inputs (`buf`, row-major);
/// the batch loss.
fn train_step(
    net: &Net,
    opt: &mut AdamW,
    buf: &[f32],
    (b, s, m): (usize, usize, usize),
    dev: &Device,
) -> candle_core::Result<f32> {
    let x = Tensor::from_slice(buf, (b, s, m), dev)?;
    let recon = net.forward(&x)?;
    let loss = candle_nn::loss::mse(&recon, &x)?;
    opt.backward_step(&loss)?;
    loss.to_scalar::<f32>()
}

/// Trains a model on `rows` of `m` inputs each (row-major, already finite); see the module docs.
fn train(p: &Params, m: usize, rows: &[f64], ctl: &mut FitControl<'_>) -> Result<Model, FitError> {
    let s = p.sequence;
    let m = m.max(1);
    let n = rows.len() / m;
    if n < s {
        return Err(FitError::TooShort { have: n, need: s });
    }
    let t0 = Instant::now();
    let (mean, std): (Vec<f64>, Vec<f64>) = (0..m).map(|c| mean_std(rows, m, c)).unzip();
    let z: Vec<f32> = rows[..n * m]
        .iter()
        .enumerate()
        .map(|(i, &v)| ((v - mean[i % m]) / std[i % m]).clamp(-Z_CLAMP, Z_CLAMP) as f32)
        .collect();
    let windows = n - s + 1;
    // The latest tenth of the windows is held back to stop on (none for tiny histories).
    let held = if windows >= MIN_WINDOWS_TO_HOLD {
        windows / 10
    } else {
        0
    };
    let fitted = windows - held;
    let dev = Device::Cpu;
    let net = Net::new(p.hidden, m, p.seed, &dev).map_err(failed)?;
    let params = ParamsAdamW {
        lr: p.learning_rate,
        ..ParamsAdamW::default()
    };
    let all: Vec<Var> = net.vars.iter().map(|(_, v)| v.clone()).collect();
    let mut opt = AdamW::new(all, params).map_err(failed)?;
    let mut rng = SplitMix64(p.seed ^ 0x5EED_5EED_5EED_5EED);
    let mut order: Vec<usize> = (0..fitted).collect();
    let mut buf = Vec::with_capacity(p.batch.min(windows) * s * m);
    tracing::info!(
        points = n,
        inputs = m,
        windows,
        sequence = s,
        hidden = p.hidden,
        epochs = p.epochs,
        "lstm-ae fit started"
    );
    let mut lr = p.learning_rate;
    let mut best: Option<(f64, Weights)> = None;
    let mut stale = 0;
    let mut scratch = Scratch::default();
    for epoch in 1..=p.epochs {
        for i in (1..order.len()).rev() {
            let j = rng.below(i + 1);
            order.swap(i, j);
        }
        let (mut sum, mut batches) = (0.0f64, 0usize);
        for chunk in order.chunks(p.batch) {
            if ctl.cancelled() {
                tracing::info!(epoch, "lstm-ae fit cancelled");
                return Err(FitError::Cancelled);
            }
            buf.clear();
            for &w in chunk {
                buf.extend_from_slice(&z[w * m..(w + s) * m]);
            }
            let loss =
                train_step(&net, &mut opt, &buf, (chunk.len(), s, m), &dev).map_err(failed)?;
            sum += f64::from(loss);
            batches += 1;
        }
        let loss = sum / batches.max(1) as f64;
        if !loss.is_finite() {
            return Err(FitError::Failed(format!(
                "training diverged (loss {loss}) in epoch {epoch}"
            )));
        }
        // Early stopping on the held-back windows: keep the best weights; halve the learning
        // rate after an epoch without improvement, stop after PATIENCE of them.
        let mut stop = false;
        let mut held_loss = None;
        if held > 0 {
            let w = net.weights(p.hidden, m).map_err(failed)?;
            let v = window_loss(&w, &z[fitted * m..], s, &mut scratch);
            held_loss = Some(v);
            if best.as_ref().is_none_or(|(b, _)| v < *b * (1.0 - MIN_GAIN)) {
                best = Some((v, w));
                stale = 0;
            } else {
                stale += 1;
                lr *= 0.5;
                opt.set_learning_rate(lr);
                stop = stale >= PATIENCE;
            }
        }
        (ctl.progress)(FitProgress {
            done: if stop { p.epochs } else { epoch },
            total: p.epochs,
            loss: Some(loss),
        });
        tracing::info!(epoch, epochs = p.epochs, loss, held_loss, "lstm-ae epoch");
        if stop {
            tracing::info!(epoch, "lstm-ae fit stopped early");
            break;
        }
    }
    let weights = match best {
        Some((_, w)) => w,
        None => net.weights(p.hidden, m).map_err(failed)?,
    };
    tracing::info!(elapsed = ?t0.elapsed(), "lstm-ae fit done");
    Ok(Model { mean, std, weights })
}

/// [`train`] without progress reports or cancellation: the automatic first fit.
fn train_unattended(p: &Params, m: usize, rows: &[f64]) -> Result<Model, FitError> {
    let cancel = AtomicBool::new(false);
    let mut progress = |_: FitProgress| {};
    let mut ctl = FitControl {
        cancel: &cancel,
        progress: &mut progress,
    };
    train(p, m, rows, &mut ctl)
}

/// The raw scores of a series under `cfg`'s autoencoder (first fit included), NaN where it has
/// no opinion: what [`super::calibrate::replay`] turns into the detector's output, so a search
/// over the calibration constants trains each model once.
pub fn raw_scores(cfg: &LstmAeConfig, timestamps: &[i64], values: &[f64]) -> Vec<f64> {
    let mut d = LstmAe::new(cfg);
    timestamps
        .iter()
        .zip(values)
        .map(|(&timestamp, &value)| d.step(Point { timestamp, value }).unwrap_or(f64::NAN))
        .collect()
}

/// Epochs without improvement on the held-back windows before training stops.
const PATIENCE: usize = 3;
/// Relative fall of the held-back loss that counts as an improvement.
const MIN_GAIN: f64 = 1e-3;
/// Fewest windows for which a tenth is held back to stop on.
const MIN_WINDOWS_TO_HOLD: usize = 50;

/// Mean squared reconstruction error over every window of `s` steps of `z` (steps × inputs,
/// row-major): what training minimises.
fn window_loss(w: &Weights, z: &[f32], s: usize, scratch: &mut Scratch) -> f64 {
    let m = w.inputs;
    let n = (z.len() / m).saturating_sub(s) + 1;
    let mut sum = 0.0f64;
    for k in 0..n {
        let win = &z[k * m..(k + s) * m];
        w.reconstruct(win, scratch);
        sum += win
            .iter()
            .zip(&scratch.recon)
            .map(|(&a, &b)| f64::from(b - a).powi(2))
            .sum::<f64>()
            / (s * m) as f64;
    }
    sum / n.max(1) as f64
}

/// LSTM autoencoder detector; see the module docs.
#[derive(Debug, Clone)]
pub struct LstmAe {
    p: Params,
    /// Values buffered for the automatic first fit.
    pending: Vec<f64>,
    /// Whether the automatic first fit is behind us (done, failed, or superseded by fit/load).
    auto_done: bool,
    /// The latest `sequence` points (timestamp, value), oldest first.
    recent: VecDeque<(i64, f64)>,
    /// `recent` was taken from a fit history or a saved state and nothing has been fed since.
    adopted: bool,
    model: Option<Model>,
    scratch: Scratch,
    /// The latest reconstruction error and the usual error before it (for `explain`).
    last_error: Option<(f64, f64)>,
    /// EWMA of the reconstruction error (outliers capped at 10× the level).
    usual_error: Option<f64>,
    /// The per-series calibration of the raw score (`calibrate = true`).
    calibrator: Option<Calibrator>,
}

/// EWMA rate of the usual reconstruction error, per point.
const USUAL_RATE: f64 = 0.01;

impl LstmAe {
    pub fn new(cfg: &LstmAeConfig) -> Self {
        let p = Params::new(cfg);
        LstmAe {
            pending: Vec::new(),
            auto_done: false,
            recent: VecDeque::with_capacity(p.sequence),
            adopted: false,
            model: None,
            scratch: Scratch::default(),
            last_error: None,
            usual_error: None,
            calibrator: cfg.calibrate.then(|| Calibrator::new(cfg.calibration)),
            p,
        }
    }

    /// Scores as NAB counts: the calibration rests after an alarm ([`Calibrator::for_nab`]).
    pub fn for_nab(mut self) -> Self {
        self.calibrator = self.calibrator.map(Calibrator::for_nab);
        self
    }

    /// One point through the model (buffer, first fit, reconstruction): its raw score
    /// ([`error_score`]), or `None` while there is no opinion (training, a short window, a
    /// non-finite value).
    fn step(&mut self, point: Point) -> Option<f64> {
        if !point.value.is_finite() {
            return None;
        }
        // An adopted tail continues only into later points: a stream that restarts before it (a
        // replay from the first row after a restore) starts from an empty window instead.
        if std::mem::take(&mut self.adopted)
            && self
                .recent
                .back()
                .is_some_and(|&(ts, _)| point.timestamp < ts)
        {
            self.recent.clear();
        }
        self.push_recent(point.timestamp, point.value);
        if !self.auto_done {
            self.pending.push(point.value);
            if self.pending.len() >= self.p.train {
                self.auto_fit();
            }
            return None;
        }
        match self.latest_error() {
            Some(e) => {
                let usual = self.usual_error.unwrap_or(e);
                self.last_error = Some((e, usual));
                if e.is_finite() {
                    let capped = e.min(10.0 * usual.max(1e-12));
                    self.usual_error = Some(usual + (capped - usual) * USUAL_RATE);
                }
                Some(error_score(e, self.p.threshold))
            }
            None => {
                self.last_error = None;
                None
            }
        }
    }

    fn push_recent(&mut self, ts: i64, v: f64) {
        if self.recent.len() == self.p.sequence {
            self.recent.pop_front();
        }
        self.recent.push_back((ts, v));
    }

    /// Takes `tail` (oldest first) as the ring buffer if it is newer than what we hold.
    fn adopt_recent(&mut self, tail: &[(i64, f64)]) {
        let Some(&(last, _)) = tail.last() else {
            return;
        };
        if self.recent.back().is_none_or(|&(ts, _)| last > ts) {
            self.recent.clear();
            let start = tail.len().saturating_sub(self.p.sequence);
            self.recent.extend(&tail[start..]);
            self.adopted = true;
        }
    }

    fn install(&mut self, model: Model) {
        self.model = Some(model);
        self.auto_done = true;
        self.pending = Vec::new();
    }

    fn auto_fit(&mut self) {
        self.auto_done = true;
        let values = std::mem::take(&mut self.pending);
        match train_unattended(&self.p, 1, &values) {
            Ok(m) => self.model = Some(m),
            Err(e) => tracing::warn!(error = %e, "lstm-ae automatic fit failed; scoring 0.5"),
        }
    }

    /// Squared reconstruction error of the newest standardised value, when there is a model and
    /// a full window of `sequence` points.
    fn latest_error(&mut self) -> Option<f64> {
        let model = self.model.as_ref()?;
        if self.recent.len() < self.p.sequence {
            return None;
        }
        self.scratch.z.clear();
        self.scratch
            .z
            .extend(self.recent.iter().map(|&(_, v)| model.standardise(0, v)));
        let z = std::mem::take(&mut self.scratch.z);
        model.weights.reconstruct(&z, &mut self.scratch);
        let k = z.len() - 1;
        let e = f64::from(self.scratch.recon[k]) - f64::from(z[k]);
        self.scratch.z = z;
        Some(e * e)
    }
}

/// Decades of reconstruction error the raw score spans, half below `threshold` and half above:
/// enough for every error the clamp allows (at most 10⁸ = `Z_CLAMP`², against 10¹⁰ times the
/// default `threshold` of 0.025).
const SCORE_DECADES: f64 = 20.0;

/// The raw score of a reconstruction error `e`: 0.5 at `threshold`, rising by 1/20 per decade
/// of error, clamped to [0, 1] (errors from 10⁻¹⁰ to 10¹⁰ times `threshold` stay apart);
/// 0 for no error, 1 for a non-finite one. See the module docs for why a log scale.
pub(super) fn error_score(e: f64, threshold: f64) -> f64 {
    if !e.is_finite() {
        return 1.0;
    }
    if e <= 0.0 {
        return 0.0;
    }
    (0.5 + (e / threshold).log10() / SCORE_DECADES).clamp(0.0, 1.0)
}

impl Detector for LstmAe {
    fn update(&mut self, point: Point) -> f64 {
        let raw = self.step(point);
        match (&mut self.calibrator, raw) {
            (Some(c), Some(r)) => c.score(r),
            (Some(_), None) => 0.0,
            (None, r) => r.unwrap_or(0.5),
        }
    }

    fn warming_up(&self) -> bool {
        self.model.is_none() || self.calibrator.as_ref().is_some_and(Calibrator::warming_up)
    }

    fn explain(&mut self) -> Option<Reason> {
        let (e, usual) = self.last_error?;
        let ratio = e / usual.max(1e-12);
        Some(Reason {
            signal: "reconstruction".into(),
            excess: ratio,
            text: format!(
                "reconstruction error {} is {ratio:.1}x its usual level {}",
                compact(e),
                compact(usual)
            ),
        })
    }

    fn trainable(&mut self) -> Option<&mut dyn Trainable> {
        Some(self)
    }
}

impl Trainable for LstmAe {
    /// Trains on the latest `train` finite points of `history`; seeds the ring buffer with the
    /// history's tail when that is newer than the points fed so far.
    fn fit(&mut self, history: &[Point], ctl: &mut FitControl<'_>) -> Result<(), FitError> {
        let finite: Vec<(i64, f64)> = history
            .iter()
            .filter(|p| p.value.is_finite())
            .map(|p| (p.timestamp, p.value))
            .collect();
        let start = finite.len().saturating_sub(self.p.train);
        let values: Vec<f64> = finite[start..].iter().map(|&(_, v)| v).collect();
        let model = train(&self.p, 1, &values, ctl)?;
        self.install(model);
        self.adopt_recent(&finite);
        Ok(())
    }

    fn is_fitted(&self) -> bool {
        self.model.is_some()
    }

    fn save_state(&self) -> Option<Vec<u8>> {
        let m = self.model.as_ref()?;
        let w = m.weights.flatten();
        let mut b = Vec::with_capacity(64 + 4 * w.len() + 16 * self.recent.len());
        put_header(&mut b, MAGIC, VERSION, &self.p, m.weights.hidden);
        b.extend_from_slice(&m.mean[0].to_le_bytes());
        b.extend_from_slice(&m.std[0].to_le_bytes());
        put_weights(&mut b, &w);
        b.extend_from_slice(&(self.recent.len() as u64).to_le_bytes());
        for &(ts, v) in &self.recent {
            b.extend_from_slice(&ts.to_le_bytes());
            b.extend_from_slice(&v.to_le_bytes());
        }
        put_calibration(&mut b, self.calibrator.as_ref());
        Some(seal(b))
    }

    fn load_state(&mut self, bytes: &[u8]) -> Result<(), FitError> {
        let (model, recent, cal) = decode_state(bytes, &self.p).map_err(FitError::BadState)?;
        // Checked before anything changes; a detector that has scored keeps its own.
        if let Some(c) = &self.calibrator
            && !cal.is_empty()
        {
            let mut probe = c.clone();
            probe.restore(&cal).map_err(FitError::BadState)?;
            self.calibrator = Some(probe);
        }
        self.install(model);
        self.adopt_recent(&recent);
        Ok(())
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Writes a state's magic, format version, sequence length and hidden size.
fn put_header(b: &mut Vec<u8>, magic: &[u8; 8], version: u32, p: &Params, hidden: usize) {
    b.extend_from_slice(magic);
    b.extend_from_slice(&version.to_le_bytes());
    b.extend_from_slice(&(p.sequence as u64).to_le_bytes());
    b.extend_from_slice(&(hidden as u64).to_le_bytes());
}

/// Writes the flattened weights, count first.
fn put_weights(b: &mut Vec<u8>, w: &[f32]) {
    b.extend_from_slice(&(w.len() as u64).to_le_bytes());
    for x in w {
        b.extend_from_slice(&x.to_le_bytes());
    }
}

/// Writes the calibration layer's words, count first (none: an empty list).
fn put_calibration(b: &mut Vec<u8>, cal: Option<&Calibrator>) {
    let words = cal.map(Calibrator::to_words).unwrap_or_default();
    b.extend_from_slice(&(words.len() as u64).to_le_bytes());
    for x in &words {
        b.extend_from_slice(&x.to_le_bytes());
    }
}

/// Appends the checksum that [`Reader::open`] checks.
fn seal(mut b: Vec<u8>) -> Vec<u8> {
    let sum = fnv1a(&b);
    b.extend_from_slice(&sum.to_le_bytes());
    b
}

/// Reads little-endian fields off the front of a byte slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// The fields after `magic` of a sealed state, its checksum checked; `what` names the
    /// kind of state in the error for a wrong magic.
    fn open(bytes: &'a [u8], magic: &[u8; 8], what: &str) -> Result<Self, String> {
        if bytes.len() < magic.len() + 4 + 8 || &bytes[..magic.len()] != magic {
            return Err(format!("not {what} (bad magic)"));
        }
        let (body, sum) = bytes.split_at(bytes.len() - 8);
        let mut sum_bytes = [0u8; 8];
        sum_bytes.copy_from_slice(sum);
        if fnv1a(body) != u64::from_le_bytes(sum_bytes) {
            return Err("checksum mismatch (corrupt state)".into());
        }
        Ok(Reader(&body[magic.len()..]))
    }
}

impl Reader<'_> {
    /// The format version, then the sequence length and hidden size, which must be `p`'s.
    fn header(&mut self, p: &Params) -> Result<u32, String> {
        let version = u32::from_le_bytes(self.take::<4>()?);
        let (sequence, hidden) = (self.u64()?, self.u64()?);
        if sequence != p.sequence as u64 || hidden != p.hidden as u64 {
            return Err(format!(
                "state has sequence {sequence}, hidden {hidden}; this detector has sequence {}, \
                 hidden {}",
                p.sequence, p.hidden
            ));
        }
        Ok(version)
    }
    /// The weights of a model over `inputs` series, count first, all finite.
    fn weights(&mut self, p: &Params, inputs: usize) -> Result<Weights, String> {
        let n = self.count(4)?;
        let mut w = Vec::with_capacity(n);
        for _ in 0..n {
            let x = f32::from_le_bytes(self.take::<4>()?);
            if !x.is_finite() {
                return Err("non-finite weight".into());
            }
            w.push(x);
        }
        Weights::unflatten(p.hidden, inputs, &w).ok_or_else(|| {
            format!(
                "{n} weights, expected {}",
                Weights::len_for(p.hidden, inputs)
            )
        })
    }
    /// The calibration layer's words, count first.
    fn words(&mut self) -> Result<Vec<u64>, String> {
        let c = self.count(8)?;
        let mut cal = Vec::with_capacity(c);
        for _ in 0..c {
            cal.push(self.u64()?);
        }
        Ok(cal)
    }
    /// Nothing may follow the last field.
    fn finish(&self) -> Result<(), String> {
        match self.0.len() {
            0 => Ok(()),
            n => Err(format!("{n} trailing bytes")),
        }
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        if self.0.len() < N {
            return Err("truncated".into());
        }
        let (a, b) = self.0.split_at(N);
        self.0 = b;
        let mut out = [0u8; N];
        out.copy_from_slice(a);
        Ok(out)
    }
    fn u64(&mut self) -> Result<u64, String> {
        self.take::<8>().map(u64::from_le_bytes)
    }
    fn f64(&mut self) -> Result<f64, String> {
        self.take::<8>().map(f64::from_le_bytes)
    }
    /// A count that must fit in what is left, `size` bytes per item.
    fn count(&mut self, size: usize) -> Result<usize, String> {
        let n = self.u64()?;
        match usize::try_from(n) {
            Ok(n) if n.checked_mul(size).is_some_and(|b| b <= self.0.len()) => Ok(n),
            _ => Err(format!("count {n} exceeds the data")),
        }
    }
}

/// The model, the ring buffer and the calibration layer's words (empty: none saved).
type DecodedState = (Model, Vec<(i64, f64)>, Vec<u64>);

fn decode_state(bytes: &[u8], p: &Params) -> Result<DecodedState, String> {
    let mut r = Reader::open(bytes, MAGIC, "an lstm-ae state")?;
    let version = r.header(p)?;
    if !(1..=VERSION).contains(&version) {
        return Err(format!("format version {version}, expected 1 to {VERSION}"));
    }
    let (mean, std) = (r.f64()?, r.f64()?);
    if !mean.is_finite() || !std.is_finite() || std <= 0.0 {
        return Err(format!("bad standardisation (mean {mean}, std {std})"));
    }
    let weights = r.weights(p, 1)?;
    let k = r.count(16)?;
    if k > p.sequence {
        return Err(format!(
            "{k} buffered points, more than sequence {}",
            p.sequence
        ));
    }
    let mut recent = Vec::with_capacity(k);
    for _ in 0..k {
        let ts = i64::from_le_bytes(r.take::<8>()?);
        let v = r.f64()?;
        if !v.is_finite() {
            return Err("non-finite buffered value".into());
        }
        recent.push((ts, v));
    }
    // Version 2 and later: the calibration layer's state (empty when uncalibrated). Version
    // 2's was learnt on the `e / (e + threshold)` raw scores, which the log scale of version 3
    // does not match bin for bin: it is read and dropped, and the calibration starts afresh.
    let mut cal = if version >= 2 { r.words()? } else { Vec::new() };
    if version < 3 {
        cal.clear();
    }
    r.finish()?;
    let (mean, std) = (vec![mean], vec![std]);
    Ok((Model { mean, std, weights }, recent, cal))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wave(n: usize) -> Vec<Point> {
        (0..n)
            .map(|t| Point {
                timestamp: 1_600_000_000 + 60 * t as i64,
                value: 10.0 + (t as f64 * 0.25).sin() + 0.1 * ((t * 7919) % 13) as f64,
            })
            .collect()
    }

    /// The raw score is 0.5 at the threshold and keeps errors many decades apart in the
    /// calibration's 512 bins: under `e / (e + threshold)` every squared error above 12.5 (at
    /// the default threshold) shared the top bin.
    #[test]
    fn raw_score_keeps_large_errors_apart_for_the_calibration() {
        let t = LstmAeConfig::default().threshold;
        assert!((error_score(t, t) - 0.5).abs() < 1e-12);
        let bin = |e: f64| (error_score(e, t) * 512.0).floor() as i64;
        let bins: Vec<i64> = (-9..=9).map(|k| bin(t * 10f64.powi(k))).collect();
        assert!(
            bins.windows(2).all(|w| w[1] >= w[0] + 20),
            "decades share bins: {bins:?}"
        );
        // 3.5 σ and 35 σ of squared error, which the old mapping put in one bin.
        assert!(bin(3.5f64.powi(2)) + 40 < bin(35f64.powi(2)));
        assert_eq!(error_score(0.0, t), 0.0);
        assert_eq!(error_score(f64::NAN, t), 1.0);
        assert_eq!(error_score(f64::INFINITY, t), 1.0);
        assert_eq!(error_score(1e300, t), 1.0);
    }

    /// A calibrated model's state carries its calibration: the restored detector's outputs
    /// equal the original's; version 1 (before calibration was saved) and version 2 (before the
    /// log-scale raw score) states still load, without a calibration.
    #[test]
    fn calibrated_state_roundtrips_and_version_1_loads() {
        let cfg = LstmAeConfig {
            sequence: 10,
            hidden: 4,
            epochs: 2,
            batch: 16,
            train: 120,
            calibration: crate::detect::calibrate::CalibrationParams {
                warmup: 20,
                ..Default::default()
            },
            ..LstmAeConfig::default()
        };
        let pts = wave(400);
        let mut a = LstmAe::new(&cfg);
        for &p in &pts[..300] {
            a.update(p);
        }
        let state = a.save_state().expect("fitted");
        let mut b = LstmAe::new(&cfg);
        b.load_state(&state).expect("loads");
        for &p in &pts[300..] {
            assert_eq!(a.update(p).to_bits(), b.update(p).to_bits());
        }
        // Version 1: no calibration section.
        let (body, _) = state.split_at(state.len() - 8);
        let (m, _, cal) = decode_state(&state, &Params::new(&cfg)).expect("decodes");
        assert!(!cal.is_empty() && m.std[0] > 0.0);
        let mut v1 = body[..body.len() - 8 * (cal.len() + 1)].to_vec();
        v1[MAGIC.len()..MAGIC.len() + 4].copy_from_slice(&1u32.to_le_bytes());
        let sum = fnv1a(&v1);
        v1.extend_from_slice(&sum.to_le_bytes());
        let mut c = LstmAe::new(&cfg);
        c.load_state(&v1).expect("version 1 loads");
        assert!(c.is_fitted());
        // Version 2: its calibration was learnt on the old raw scale and is dropped.
        let mut v2 = body.to_vec();
        v2[MAGIC.len()..MAGIC.len() + 4].copy_from_slice(&2u32.to_le_bytes());
        let sum = fnv1a(&v2);
        v2.extend_from_slice(&sum.to_le_bytes());
        let (_, _, cal) = decode_state(&v2, &Params::new(&cfg)).expect("decodes");
        assert!(cal.is_empty());
        let mut d = LstmAe::new(&cfg);
        d.load_state(&v2).expect("version 2 loads");
        assert!(
            d.is_fitted() && d.warming_up(),
            "fresh calibration warms up again"
        );
    }

    /// The plain-Rust forward pass used for scoring equals candle's on the same weights, for
    /// one series and for a group of three (the multivariate mode).
    #[test]
    fn inference_matches_candle_forward() {
        let (hidden, s, b) = (8, 20, 5);
        let dev = Device::Cpu;
        for m in [1, 3] {
            let net = Net::new(hidden, m, 7, &dev).expect("net");
            let w = net.weights(hidden, m).expect("weights");
            let mut rng = SplitMix64(3);
            let data: Vec<f32> = (0..b * s * m)
                .map(|_| (rng.next_f64() * 4.0 - 2.0) as f32)
                .collect();
            let x = Tensor::from_slice(&data, (b, s, m), &dev).expect("x");
            let recon = net.forward(&x).expect("fwd");
            let recon = recon
                .flatten_from(1)
                .expect("flat")
                .to_vec2::<f32>()
                .expect("vec");
            let mut scratch = Scratch::default();
            let len = s * m;
            for (i, row) in recon.iter().enumerate() {
                w.reconstruct(&data[i * len..(i + 1) * len], &mut scratch);
                assert_eq!(scratch.recon.len(), row.len());
                for (a, c) in scratch.recon.iter().zip(row) {
                    assert!((a - c).abs() < 1e-5, "{m} inputs: {a} vs {c}");
                }
            }
        }
    }

    #[test]
    fn fast_tanh_and_sigmoid_are_accurate() {
        let (mut worst_t, mut worst_s) = (0f32, 0f32);
        for i in -200_000..=200_000 {
            let x = i as f32 * 1e-4;
            worst_t = worst_t.max((fast_tanh(x) - x.tanh()).abs());
            worst_s = worst_s.max((fast_sigmoid(x) - 1.0 / (1.0 + (-x).exp())).abs());
        }
        assert!(
            worst_t < 1e-6 && worst_s < 1e-6,
            "tanh {worst_t}, sigmoid {worst_s}"
        );
        assert_eq!(fast_tanh(1e30), fast_tanh(8.0));
        assert!(fast_tanh(1e30) > 0.999_999 && fast_sigmoid(-1e30) < 1e-6);
    }

    #[test]
    fn weights_roundtrip_through_flatten() {
        let net = Net::new(3, 2, 1, &Device::Cpu).expect("net");
        let w = net.weights(3, 2).expect("weights");
        assert_eq!(Weights::unflatten(3, 2, &w.flatten()), Some(w));
    }
}
