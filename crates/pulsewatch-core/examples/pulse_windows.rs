//! Where `pulse` parameter sets catch and miss NAB's windows, side by side: each set is scored
//! over the corpus (as NAB counts it) at its own corpus-optimal standard-profile threshold; the
//! output has one line per scored window (the first detection's place in the window, 0 = its
//! first row, or `MISS` with the highest score in it), one line per file with its
//! false-positive rows, and, for the last set, a tally of detected rows by the feature that set
//! their strength (`TALLY <feature> TP|FP <rows>`). `--alarms` also prints every detected row of
//! the last set. The figures of `docs/detectors.md` ("Where the prior with the value weight
//! loses") come from this.
//!
//! Run with `cargo run --release -p pulsewatch-core --example pulse_windows -- [--alarms] SET...`
//! where SET is `shipped`, `prior` or a config file with a `[detector.pulse]` block
//! (`PULSEWATCH_DATA_DIR` or `data/nab` for the corpus).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pulsewatch_core::config::Config;
use pulsewatch_core::detect::Detector;
use pulsewatch_core::detect::pulse::{Pulse, PulseParams};
use pulsewatch_core::domain::Point;
use pulsewatch_core::eval::scorer::{FileLabels, normalize, optimize_threshold};
use pulsewatch_core::eval::tune::pulse_scorer;
use pulsewatch_core::nab::Corpus;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn params(arg: &str) -> Res<PulseParams> {
    match arg {
        "shipped" => Ok(PulseParams::default()),
        "prior" => Ok(PulseParams::prior()),
        path => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
            Ok(Config::from_toml(&text, Path::new(path))?.detector.pulse)
        }
    }
}

fn in_window(l: &FileLabels, r: usize) -> bool {
    l.windows.iter().any(|&(a, b)| a <= r && r <= b)
}

fn main() -> Res<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let alarms = args.iter().any(|a| a == "--alarms");
    args.retain(|a| a != "--alarms");
    if args.is_empty() {
        return Err("usage: pulse_windows [--alarms] shipped|prior|CONFIG...".into());
    }
    let root =
        std::env::var_os("PULSEWATCH_DATA_DIR").map_or(PathBuf::from("data/nab"), PathBuf::from);
    let corpus = Corpus::load(&root)?;
    let labels = FileLabels::for_corpus(&corpus);
    let profiles = corpus.profiles()?;
    let costs = profiles
        .iter()
        .find(|p| p.name == "standard")
        .ok_or("no standard profile")?
        .costs;
    let windows: usize = labels.iter().map(FileLabels::scored_windows).sum();
    let (null, perfect) = (-(windows as f64) * costs.fn_, windows as f64 * costs.tp);
    let idx: Vec<usize> = (0..corpus.series.len()).collect();
    let mut sets = Vec::new();
    for a in &args {
        let p = params(a)?;
        let score = pulse_scorer(&corpus);
        let scores = pulsewatch_core::par::map(&idx, |&i| score(&p, i))
            .map_err(|e| format!("file {}: {}", e.index, e.message))?;
        let files: Vec<_> = labels
            .iter()
            .zip(&scores)
            .map(|(l, s)| (l, s.as_slice()))
            .collect();
        let t = optimize_threshold(&files, &costs);
        println!(
            "SET {a}: threshold {:.4}, standard {:.2}",
            t.threshold,
            normalize(t.score, null, perfect)
        );
        sets.push((p, scores, t.threshold));
    }
    for (i, l) in labels.iter().enumerate() {
        let key = &corpus.series[i].key;
        for (k, &(a, b)) in l.windows.iter().enumerate() {
            if !l.scored_window(k) {
                continue;
            }
            let mut row = format!("{key} w{k} [{a},{b}]");
            for (_, scores, th) in &sets {
                let rows = a.max(l.probation)..=b;
                match rows.clone().find(|&r| scores[i][r] >= *th) {
                    Some(r) => row += &format!("  {:.2}", (r - a) as f64 / (b - a + 1) as f64),
                    None => {
                        let top = rows.map(|r| scores[i][r]).fold(0.0, f64::max);
                        row += &format!("  MISS({top:.3})");
                    }
                }
            }
            println!("{row}");
        }
        let mut fps = String::new();
        for (_, scores, th) in &sets {
            let n = (l.probation..l.n)
                .filter(|&r| scores[i][r] >= *th && !in_window(l, r))
                .count();
            fps += &format!(" {n}");
        }
        println!("{key} FP{fps}");
    }
    let (p, _, th) = sets.last().ok_or("no set")?;
    let mut tally = BTreeMap::<(String, &str), usize>::new();
    for (i, l) in labels.iter().enumerate() {
        let s = &corpus.series[i];
        let mut d = Pulse::with_params(*p).for_nab();
        for (r, (&timestamp, &value)) in s.timestamps.iter().zip(&s.values).enumerate() {
            let score = d.update(Point { timestamp, value });
            if r < l.probation || score < *th {
                continue;
            }
            let signal = d.explain().map(|x| x.signal).unwrap_or_default();
            let kind = if in_window(l, r) { "TP" } else { "FP" };
            if alarms {
                println!("ALARM {} {r} {kind} {signal} {score:.3}", s.key);
            }
            *tally.entry((signal, kind)).or_default() += 1;
        }
    }
    for ((signal, kind), n) in tally {
        println!("TALLY {signal} {kind} {n}");
    }
    Ok(())
}
