//! TLS for every listener and client (rustls 0.23 with ring), from PEM files given by path.
//!
//! - [`TlsFiles`]: a server's certificate chain and key, and optionally the CA whose
//!   certificates clients must present (mTLS) → tonic's [`ServerTlsConfig`], or a
//!   [`rustls::ServerConfig`] / [`TlsAcceptor`] for plain HTTP listeners (ALPN h2 and
//!   http/1.1);
//! - [`ClientTls`]: the CA a client trusts, the name it expects, and its own certificate for
//!   mTLS → tonic's [`ClientTlsConfig`];
//! - [`check_listen`]: a listener on a non-loopback address without TLS is refused unless the
//!   operator said `--insecure-listen` (then logged at warn);
//! - [`ListenArgs`]: the flags both services share (`--tls-cert`, `--tls-key`,
//!   `--tls-client-ca`, `--insecure-listen` and their `JUNHENG_*` variables).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

pub use tokio_rustls::TlsAcceptor;

/// A server's TLS material, by path (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// When set, clients must present a certificate signed by this CA (mTLS).
    pub client_ca: Option<PathBuf>,
}

fn read(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading the {what} {}", path.display()))
}

impl TlsFiles {
    /// tonic's server configuration (gRPC over HTTP/2).
    pub fn server_config(&self) -> anyhow::Result<ServerTlsConfig> {
        let cert = read(&self.cert, "TLS certificate")?;
        let key = read(&self.key, "TLS key")?;
        // Parse here so a bad file is named at start, not at the first handshake.
        self.rustls_config()?;
        let mut config = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
        if let Some(ca) = &self.client_ca {
            config = config.client_ca_root(Certificate::from_pem(read(ca, "client CA")?));
        }
        Ok(config)
    }

    /// A rustls configuration for plain HTTP listeners (ALPN `h2` and `http/1.1`), with the
    /// same client verification as [`TlsFiles::server_config`].
    pub fn rustls_config(&self) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let certs = CertificateDer::pem_slice_iter(&read(&self.cert, "TLS certificate")?)
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("parsing the TLS certificate {}", self.cert.display()))?;
        if certs.is_empty() {
            anyhow::bail!("no certificate in {}", self.cert.display());
        }
        let key = PrivateKeyDer::from_pem_slice(&read(&self.key, "TLS key")?)
            .with_context(|| format!("parsing the TLS key {}", self.key.display()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in CertificateDer::pem_slice_iter(&read(ca, "client CA")?) {
                    roots
                        .add(c.with_context(|| format!("parsing the client CA {}", ca.display()))?)
                        .with_context(|| format!("the client CA {}", ca.display()))?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .with_context(|| format!("the client CA {}", ca.display()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .context("the TLS certificate does not match its key")?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// An acceptor for plain HTTP listeners (see [`TlsFiles::rustls_config`]).
    pub fn acceptor(&self) -> anyhow::Result<TlsAcceptor> {
        Ok(TlsAcceptor::from(self.rustls_config()?))
    }
}

/// What a client trusts and presents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// The CA that signed the server's certificate (PEM); without it, the system's roots
    /// are not used: a TLS client here always names its CA.
    pub ca: Option<PathBuf>,
    /// The name the server's certificate must carry; default: the URL's host.
    pub domain: Option<String>,
    /// The client's own certificate chain for mTLS (PEM), with [`ClientTls::key`].
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl ClientTls {
    /// Whether any TLS setting was given (the client then speaks https).
    pub fn enabled(&self) -> bool {
        self.ca.is_some() || self.domain.is_some() || self.cert.is_some() || self.key.is_some()
    }

    /// tonic's client configuration.
    pub fn config(&self) -> anyhow::Result<ClientTlsConfig> {
        let mut config = ClientTlsConfig::new();
        if let Some(ca) = &self.ca {
            config = config.ca_certificate(Certificate::from_pem(read(ca, "CA certificate")?));
        }
        if let Some(domain) = &self.domain {
            config = config.domain_name(domain.clone());
        }
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                config = config.identity(Identity::from_pem(
                    read(cert, "client certificate")?,
                    read(key, "client key")?,
                ));
            }
            (None, None) => {}
            _ => anyhow::bail!("a client certificate needs its key and the key its certificate"),
        }
        Ok(config)
    }
}

/// Why a listener is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "refusing to serve {what} in plaintext on {addr}, which is not a loopback address: give \
     --tls-cert and --tls-key (JUNHENG_TLS_CERT, JUNHENG_TLS_KEY), or --insecure-listen \
     (JUNHENG_INSECURE_LISTEN=true) when something else encrypts the traffic"
)]
pub struct PlaintextRefused {
    pub what: String,
    pub addr: SocketAddr,
}

/// A listener on `addr` serving `what`: refused when it is plaintext (`tls` false) on a
/// non-loopback address unless `insecure` (then a warning is logged).
pub fn check_listen(
    what: &str,
    addr: SocketAddr,
    tls: bool,
    insecure: bool,
) -> Result<(), PlaintextRefused> {
    if tls || addr.ip().is_loopback() {
        return Ok(());
    }
    if insecure {
        tracing::warn!(%addr, what, "INSECURE LISTEN: serving plaintext on a non-loopback address (--insecure-listen)");
        return Ok(());
    }
    Err(PlaintextRefused {
        what: what.to_string(),
        addr,
    })
}

/// The listening flags both services share.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ListenArgs {
    /// Serve TLS with this certificate chain (PEM, leaf first); needs --tls-key.
    #[arg(long, env = "JUNHENG_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "JUNHENG_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (mTLS; PEM); needs --tls-cert.
    #[arg(long, env = "JUNHENG_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Allow plaintext on a non-loopback address (TLS terminated elsewhere); logged at warn.
    #[arg(long, env = "JUNHENG_INSECURE_LISTEN")]
    pub insecure_listen: bool,
}

impl ListenArgs {
    pub fn files(&self) -> Option<TlsFiles> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: self.tls_client_ca.clone(),
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_off_loopback_needs_the_flag() {
        let lo: SocketAddr = "127.0.0.1:50051".parse().unwrap();
        let lo6: SocketAddr = "[::1]:50051".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:0".parse().unwrap();
        assert!(check_listen("gRPC", lo, false, false).is_ok());
        assert!(check_listen("gRPC", lo6, false, false).is_ok());
        let err = check_listen("gRPC", any, false, false).unwrap_err();
        assert!(err.to_string().contains("--insecure-listen"), "{err}");
        assert!(err.to_string().contains("0.0.0.0:0"), "{err}");
        assert!(check_listen("gRPC", any, true, false).is_ok());
        assert!(check_listen("gRPC", any, false, true).is_ok());
    }

    #[test]
    fn a_client_certificate_needs_its_key() {
        let half = ClientTls {
            cert: Some("c.pem".into()),
            ..ClientTls::default()
        };
        assert!(half.config().is_err());
        assert!(half.enabled());
        assert!(!ClientTls::default().enabled());
    }
}
