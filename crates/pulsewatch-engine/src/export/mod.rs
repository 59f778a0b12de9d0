//! Export: the metric set ([`metrics`]), pushed to a Pushgateway ([`pushgateway`]) and served on
//! `/metrics` beside a small JSON API ([`api`]). Every exporter reads engine snapshots; none of
//! them can slow the engine down. History with its original timestamps goes to Prometheus as
//! TSDB blocks instead ([`backfill`]).

pub mod api;
pub mod backfill;
pub mod metrics;
pub mod pushgateway;
