//! The one place HTTP clients are made.
//!
//! reqwest is built with `rustls-no-provider` and rustls with ring: ring builds in a fraction of
//! aws-lc-sys's time and serves a monitoring client (TLS 1.2/1.3 to Prometheus, Pushgateway and
//! the NAB mirror) as well. The cost is that reqwest panics in `Client::build` when no process
//! crypto provider is installed, so every client comes from [`client_builder`], which installs
//! ring first (once; a provider the host installed earlier is kept).

/// Makes ring the process's rustls crypto provider unless one is installed already.
pub fn install_crypto_provider() {
    // `Err` means a provider is installed already, which is all we need.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A reqwest client builder with the crypto provider in place.
pub fn client_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder()
}
