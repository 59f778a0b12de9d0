//! Domain types every layer speaks: points, scored points, series identity, and the names of
//! sources, detectors and forecast models.
//!
//! Every enum-like name parses the same way everywhere (command line, config file, environment,
//! JSON API): [`Named::parse`] trims and ignores ASCII case, and an unknown name gives one error
//! that lists the known ones.

use serde::Serialize;

/// One observation of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Unix seconds.
    pub timestamp: i64,
    pub value: f64,
}

/// One scored observation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ScoredPoint {
    /// Unix seconds (for a replay: the original time of the point).
    pub timestamp: i64,
    pub value: f64,
    /// Anomaly score in [0, 1].
    pub score: f64,
    /// The score reached the threshold.
    pub anomaly: bool,
    /// A spike was injected into this point (Test spikes).
    pub injected: bool,
}

impl ScoredPoint {
    pub fn point(&self) -> Point {
        Point {
            timestamp: self.timestamp,
            value: self.value,
        }
    }
}

/// A closed set of names (sources, detectors, models, themes, ...).
pub trait Named: Sized + Copy + 'static {
    /// What the name is of, for errors ("detector", "forecast model").
    const WHAT: &'static str;
    /// Every value, in the order help texts list them.
    fn all() -> &'static [Self];
    /// The canonical name (config, command line, labels).
    fn name(self) -> &'static str;

    /// Parses a name: surrounding whitespace and ASCII case are ignored.
    fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        Self::all()
            .iter()
            .copied()
            .find(|k| k.name().eq_ignore_ascii_case(t))
            .ok_or_else(|| {
                let names: Vec<&str> = Self::all().iter().map(|k| k.name()).collect();
                format!("unknown {} {s:?}; known: {}", Self::WHAT, names.join(", "))
            })
    }

    /// The known names joined with ", ".
    fn names() -> String {
        let names: Vec<&str> = Self::all().iter().map(|k| k.name()).collect();
        names.join(", ")
    }
}

/// Implements `Display`, `FromStr`, `Serialize` and `Deserialize` through [`Named`].
#[macro_export]
macro_rules! named_serde {
    ($t:ty) => {
        impl ::std::fmt::Display for $t {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str($crate::domain::Named::name(*self))
            }
        }
        impl ::std::str::FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                <$t as $crate::domain::Named>::parse(s)
            }
        }
        impl ::serde::Serialize for $t {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str($crate::domain::Named::name(*self))
            }
        }
        impl<'de> ::serde::Deserialize<'de> for $t {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as ::serde::Deserialize>::deserialize(d)?;
                <$t as $crate::domain::Named>::parse(&s).map_err(::serde::de::Error::custom)
            }
        }
    };
}

/// The kinds of live source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceKind {
    /// The NAB corpus replayed as if live.
    Nab,
    /// PromQL `query_range` polls of a Prometheus server.
    Prometheus,
    /// This machine's CPU, memory and network, read directly.
    Host,
}

impl Named for SourceKind {
    const WHAT: &'static str = "source";
    fn all() -> &'static [Self] {
        &[SourceKind::Nab, SourceKind::Prometheus, SourceKind::Host]
    }
    fn name(self) -> &'static str {
        match self {
            SourceKind::Nab => "nab",
            SourceKind::Prometheus => "prometheus",
            SourceKind::Host => "host",
        }
    }
}

impl SourceKind {
    /// Name in config, on the command line and in the `source` label.
    pub fn name(self) -> &'static str {
        Named::name(self)
    }
}

named_serde!(SourceKind);

/// Identity of one monitored series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeriesInfo {
    /// Unique within the source: the NAB key (`realKnownCause/nyc_taxi.csv`), `<query>{<labels>}`
    /// for PromQL, `<metric>` for the host.
    pub id: String,
    /// Short display name and the `series` label: the NAB file stem, or the id.
    pub name: String,
    /// NAB category, PromQL query name, or `host`.
    pub category: String,
    pub source: SourceKind,
    /// The machine the series belongs to: a PromQL series' `instance` label, the host source's
    /// [`HOST_INSTANCE`]; none for NAB. Series of one instance form a group in the LSTM
    /// autoencoder's multivariate mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

/// The instance of every series the host source reads.
pub const HOST_INSTANCE: &str = "localhost";

/// The detectors this build knows, by their CLI / config name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DetectorKind {
    /// Our default: record envelopes over seven streaming features, with a rest after alarms.
    Pulse,
    /// Constant 0.5: NAB's baseline that never detects at its threshold.
    Null,
    /// Rolling mean and standard deviation; two-sided Gaussian tail probability.
    WindowedGaussian,
    /// Isolation Forest over sliding-window features (the first system we replace).
    IsolationForest,
    /// LSTM autoencoder reconstruction error (the second system we replace; feature `lstm`).
    #[cfg(feature = "lstm")]
    LstmAe,
}

impl Named for DetectorKind {
    const WHAT: &'static str = "detector";
    fn all() -> &'static [Self] {
        &DetectorKind::ALL
    }
    /// Name used on the command line, in config and in NAB results files (no underscores:
    /// NAB derives the detector name from the text before the first `_`).
    fn name(self) -> &'static str {
        match self {
            DetectorKind::Pulse => "pulse",
            DetectorKind::Null => "null",
            DetectorKind::WindowedGaussian => "windowed-gaussian",
            DetectorKind::IsolationForest => "isolation-forest",
            #[cfg(feature = "lstm")]
            DetectorKind::LstmAe => "lstm-ae",
        }
    }
}

impl DetectorKind {
    /// Every detector of this build.
    pub const ALL: [DetectorKind; if cfg!(feature = "lstm") { 5 } else { 4 }] = [
        DetectorKind::Pulse,
        DetectorKind::Null,
        DetectorKind::WindowedGaussian,
        DetectorKind::IsolationForest,
        #[cfg(feature = "lstm")]
        DetectorKind::LstmAe,
    ];

    pub fn name(self) -> &'static str {
        Named::name(self)
    }
}

named_serde!(DetectorKind);

/// The forecasting models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ModelKind {
    /// MSTL decomposition (daily/weekly seasonal components) + AutoETS on the deseasonalised
    /// series.
    Mstl,
    /// Non-seasonal AutoETS (error, trend and damping chosen by AICc).
    Ets,
    /// Prophet (augurs-prophet, with the WebAssembly Stan optimizer or our native one).
    Prophet,
    /// Seasonal naive: the value one season earlier (weekly or daily; the last value without a
    /// season). The floor every other model must clear.
    SeasonalNaive,
    /// Theta with seasonal adjustment and an optimised theta (`forecast::theta`).
    Theta,
    /// Seasonal median: the median of the same slot over the last week's days
    /// (`forecast::model`).
    SeasonalMedian,
    /// Per series, the candidate with the lowest rolling-origin validation error, with a band
    /// from those errors (`forecast::auto`). The default.
    Auto,
}

impl Named for ModelKind {
    const WHAT: &'static str = "forecast model";
    fn all() -> &'static [Self] {
        &ModelKind::ALL
    }
    fn name(self) -> &'static str {
        match self {
            ModelKind::Mstl => "mstl",
            ModelKind::Ets => "ets",
            ModelKind::Prophet => "prophet",
            ModelKind::SeasonalNaive => "snaive",
            ModelKind::Theta => "theta",
            ModelKind::SeasonalMedian => "smedian",
            ModelKind::Auto => "auto",
        }
    }
}

impl ModelKind {
    pub const ALL: [ModelKind; 7] = [
        ModelKind::Mstl,
        ModelKind::Ets,
        ModelKind::Prophet,
        ModelKind::SeasonalNaive,
        ModelKind::SeasonalMedian,
        ModelKind::Theta,
        ModelKind::Auto,
    ];

    pub fn name(self) -> &'static str {
        Named::name(self)
    }
}

named_serde!(ModelKind);

/// A forecast value at one timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Expectation {
    pub timestamp: i64,
    pub point: f64,
    pub lower: f64,
    pub upper: f64,
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_the_same_way_everywhere() {
        assert_eq!(
            "Pulse".parse::<DetectorKind>().ok(),
            Some(DetectorKind::Pulse)
        );
        assert_eq!(" MSTL ".parse::<ModelKind>().ok(), Some(ModelKind::Mstl));
        assert_eq!(
            "PROMETHEUS".parse::<SourceKind>().ok(),
            Some(SourceKind::Prometheus)
        );
        let e = "nope".parse::<DetectorKind>().err().unwrap_or_default();
        assert!(
            e.contains("unknown detector \"nope\"") && e.contains("pulse"),
            "{e}"
        );
        for k in DetectorKind::ALL {
            assert_eq!(k.to_string().parse::<DetectorKind>().ok(), Some(k));
        }
        let j = serde_json::to_string(&ModelKind::Prophet).unwrap_or_default();
        assert_eq!(j, "\"prophet\"");
        let back: Result<ModelKind, _> = serde_json::from_str("\"Ets\"");
        assert_eq!(back.ok(), Some(ModelKind::Ets));
    }
}
