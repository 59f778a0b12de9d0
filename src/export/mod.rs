//! Export: the metric set ([`metrics`]), pushed to a Pushgateway ([`pushgateway`]) and served on
//! `/metrics` beside a small JSON API ([`api`]). Every exporter reads engine snapshots; none of
//! them can slow the engine down.

pub mod api;
pub mod metrics;
pub mod pushgateway;
