//! Honesty rule: detectors are causal. For every detector, cutting a series after row t leaves the
//! scores of rows <= t unchanged.

use testkit::corpus;

use pulsewatch_core::config::DetectorConfig;
use pulsewatch_core::detect::{DetectorKind, score_series};
use pulsewatch_core::nab::Corpus;

#[test]
fn truncating_a_series_never_changes_earlier_scores() {
    let Some(root) = corpus::nab_root() else {
        return;
    };
    let c = Corpus::load(&root).expect("corpus");
    // Small models for the detectors that train: causality is about structure, not size.
    let mut cfg = DetectorConfig::default();
    cfg.lstm_ae.epochs = 2;
    cfg.lstm_ae.hidden = 8;
    cfg.lstm_ae.sequence = 16;
    cfg.lstm_ae.train = 300;
    cfg.isolation_forest.trees = 20;
    cfg.isolation_forest.train = 300;
    let picks = [
        "realKnownCause/nyc_taxi.csv",
        "artificialWithAnomaly/art_daily_jumpsup.csv",
        "realAWSCloudwatch/ec2_cpu_utilization_825cc2.csv",
        "realTweets/Twitter_volume_AAPL.csv",
    ];
    for kind in DetectorKind::ALL {
        for key in picks {
            let s = c.series.iter().find(|s| s.key == key).expect(key);
            let full = score_series(kind.build(&cfg).as_mut(), &s.timestamps, &s.values);
            for cut in [1, 400, s.len() / 2, s.len() - 1] {
                let part = score_series(
                    kind.build(&cfg).as_mut(),
                    &s.timestamps[..cut],
                    &s.values[..cut],
                );
                assert_eq!(part[..], full[..cut], "{kind} {key} cut at {cut}");
            }
        }
    }
}
