//! Test and benchmark support shared by the pulsewatch crates: where the NAB corpus is
//! ([`corpus`]), real Prometheus / Pushgateway / node-exporter servers on free loopback ports
//! ([`servers`]), and an HTTP server that answers with scripted faults ([`http_server`]).

pub mod corpus;
pub mod http_server;
pub mod servers;
