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

/// Credentials sent with every request of a client (Prometheus queries, Pushgateway pushes).
/// Its `Debug` never shows them.
#[derive(Clone, Default)]
pub enum Auth {
    #[default]
    None,
    Basic(String, String),
    Bearer(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::None => "none",
            Auth::Basic(..) => "basic (hidden)",
            Auth::Bearer(_) => "bearer (hidden)",
        })
    }
}

impl Auth {
    /// The credentials of a config section: its `[<section>] bearer_token` (inline or
    /// `_file`), else basic auth when `username` is set. Errors name the key, never a secret.
    pub fn from_config(
        section: &str,
        username: &str,
        password: (&str, &std::path::Path),
        token: (&str, &std::path::Path),
    ) -> Result<Auth, String> {
        use pulsewatch_core::config::secret;
        let token = secret(&format!("[{section}] bearer_token"), token.0, token.1)?;
        let password = secret(&format!("[{section}] password"), password.0, password.1)?;
        Ok(if !token.is_empty() {
            Auth::Bearer(token)
        } else if !username.is_empty() {
            Auth::Basic(username.to_string(), password)
        } else {
            Auth::None
        })
    }

    /// `rb` with the credentials.
    pub fn apply(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Auth::None => rb,
            Auth::Basic(u, p) => rb.basic_auth(u, Some(p)),
            Auth::Bearer(t) => rb.bearer_auth(t),
        }
    }
}

/// `builder` trusting the CA certificates of the PEM file at `path` too; errors name `key`.
pub fn with_ca_file(
    builder: reqwest::ClientBuilder,
    key: &str,
    path: &std::path::Path,
) -> Result<reqwest::ClientBuilder, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{key} {}: {e}", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| format!("{key} {}: not PEM certificates: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{key} {}: no certificate in the file",
            path.display()
        ));
    }
    Ok(certs
        .into_iter()
        .fold(builder, |b, c| b.add_root_certificate(c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed test CA (public, made for this test; its key was thrown away).
    const TEST_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBkTCCATegAwIBAgIUDRJ4KVTTN2O5/n7Rvwov7FbKE5AwCgYIKoZIzj0EAwIw
HTEbMBkGA1UEAwwScHVsc2V3YXRjaCB0ZXN0IENBMCAXDTI2MTIwMjAzNTkxNloY
DzIxMjYxMTA4MDM1OTE2WjAdMRswGQYDVQQDDBJwdWxzZXdhdGNoIHRlc3QgQ0Ew
WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAASWzPn5T88Mme6O3H8Fnkezr5tHysHS
3WiYyXSIvUBQyHd6wHqMt/edy1UbKce1wFbOxN66oDUe439SSFOArPlRo1MwUTAd
BgNVHQ4EFgQUqt1mS7P6nOlDjtBzYRKtMWvS6BAwHwYDVR0jBBgwFoAUqt1mS7P6
nOlDjtBzYRKtMWvS6BAwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBF
AiBQXkPe9TC+HFebfVpB0IOn5zBoTUhIgkkqmNr4YU6e+QIhAOoKulEjoNjDU/TR
GHX3jpUHi+hdNW/mOS1vupDo79HL
-----END CERTIFICATE-----\n";

    #[test]
    fn ca_files_are_read_and_bad_ones_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = dir.path().join("ca.pem");
        std::fs::write(&good, TEST_CA).expect("write");
        let b = with_ca_file(client_builder(), "[prometheus] ca_file", &good).expect("a CA");
        assert!(b.build().is_ok());
        let missing = dir.path().join("missing.pem");
        let e =
            with_ca_file(client_builder(), "[prometheus] ca_file", &missing).expect_err("missing");
        assert!(
            e.starts_with("[prometheus] ca_file") && e.contains("missing.pem"),
            "{e}"
        );
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").expect("write");
        let e = with_ca_file(client_builder(), "[prometheus] ca_file", &junk).expect_err("junk");
        assert!(e.contains("junk.pem"), "{e}");
    }

    #[test]
    fn auth_debug_never_shows_secrets() {
        let a = Auth::Basic("alice".into(), "pw-123".into());
        let b = Auth::Bearer("tok-456".into());
        let shown = format!("{a:?} {b:?}");
        assert!(
            !shown.contains("pw-123") && !shown.contains("tok-456"),
            "{shown}"
        );
    }
}
