//! Test and benchmark support shared by the pulsewatch crates: where the NAB corpus is
//! ([`corpus`]), real Prometheus / Pushgateway / node-exporter servers on free loopback ports
//! ([`servers`]), an HTTP server that answers with scripted faults ([`http_server`]), and a
//! synthetic exporter of N series ([`exporter`]).

pub mod corpus;
pub mod exporter;
pub mod http_server;
pub mod servers;

/// A reqwest client builder for tests, with ring installed as the rustls provider (reqwest is
/// built without one; `pulsewatch_engine::http` does the same for the program).
pub fn http_client() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}
