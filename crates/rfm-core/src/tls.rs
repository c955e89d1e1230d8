//! The process's TLS crypto provider: ring, for every client (LLM providers, PostgreSQL,
//! Spark Connect). One provider instead of two keeps aws-lc out of the binary.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

/// The provider every TLS client of ours is built with.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring())
}

fn ring() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// Makes ring the process's default provider, which reqwest (built without a provider of its
/// own) looks up when a client is built. Call it before building any `reqwest::Client`;
/// calling it again does nothing.
pub fn install() {
    // Err only when a default is already installed: the first one stays.
    let _ = CryptoProvider::install_default(ring());
}

#[cfg(test)]
mod tests {
    #[test]
    fn installs_once_and_reqwest_builds_a_client() {
        super::install();
        super::install();
        let default = rustls::crypto::CryptoProvider::get_default().expect("installed");
        assert!(!default.cipher_suites.is_empty());
        reqwest::Client::builder()
            .build()
            .expect("a client with the ring provider");
    }
}
