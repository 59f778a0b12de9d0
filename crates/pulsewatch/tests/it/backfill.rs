//! `pulsewatch backfill` round trip: two NAB series (with pulse scores) → OpenMetrics → promtool
//! blocks → a real Prometheus on that data directory → `query_range` returns every point at its
//! original 2014 time with its value.

use crate::support::corpus;
use crate::support::servers;

use std::process::Command;

use pulsewatch_core::nab::read_series;

#[test]
fn backfilled_series_come_back_from_prometheus_point_for_point() {
    let Some(root) = corpus::nab_root() else {
        return;
    };
    let Some(promtool) = servers::require(servers::PROMTOOL) else {
        return;
    };
    if servers::require(servers::PROMETHEUS).is_none() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("blocks");
    let run = Command::new(env!("CARGO_BIN_EXE_pulsewatch"))
        .current_dir(tmp.path())
        .env("PULSEWATCH_LOGGING_DIR", tmp.path().join("logs"))
        .env("RUST_BACKTRACE", "0")
        .args([
            "backfill",
            "--scores",
            "--series",
            "nyc_taxi,artificialWithAnomaly/art_daily_jumpsup.csv",
        ])
        .arg("--data")
        .arg(&root)
        .arg("--out")
        .arg(&out)
        .arg("--promtool")
        .arg(&promtool)
        .output()
        .expect("run backfill");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // 2 series × (value, score, flag).
    assert!(
        stdout.contains(&format!("wrote {} samples of 2 series", 3 * (10320 + 4032))),
        "{stdout}"
    );
    let om = std::fs::read_to_string(out.join("nab.om")).expect("nab.om");
    assert!(om.ends_with("# EOF\n"));

    let prom = servers::prometheus_on_data(&out).expect("prometheus starts");
    for (key, step) in [
        ("realKnownCause/nyc_taxi.csv", 1800),
        ("artificialWithAnomaly/art_daily_jumpsup.csv", 300),
    ] {
        let s = read_series(&root.join("data").join(key), key).expect("series");
        let first = s.timestamps[0];
        let last = *s.timestamps.last().expect("rows");
        let expr = format!(
            r#"pulsewatch_value{{series="{}",job="nab_backfill"}}"#,
            s.name
        );
        let r = servers::query_range(&prom, &expr, first, last, step);
        assert_eq!(r.len(), 1, "{expr}: {r:?}");
        assert_eq!(r[0]["metric"]["category"], s.category.as_str());
        let values = r[0]["values"].as_array().expect("values");
        assert_eq!(values.len(), s.len(), "{key}: every point");
        for (i, v) in values.iter().enumerate() {
            let t = v[0].as_f64().expect("t") as i64;
            let x: f64 = v[1].as_str().expect("v").parse().expect("number");
            assert_eq!(t, s.timestamps[i], "{key} row {i}");
            assert_eq!(x, s.values[i], "{key} row {i}");
        }
        let sc = servers::query_range(
            &prom,
            &format!(
                r#"pulsewatch_anomaly_score{{series="{}",detector="pulse"}}"#,
                s.name
            ),
            first,
            last,
            step,
        );
        assert_eq!(sc.len(), 1);
        assert_eq!(sc[0]["values"].as_array().map(Vec::len), Some(s.len()));
    }
}
