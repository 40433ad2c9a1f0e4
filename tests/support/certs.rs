//! Certificates for TLS tests, made fresh in each test with rcgen (ring): a CA, a server
//! certificate for `localhost` and 127.0.0.1 signed by it, a client certificate signed by it,
//! and a second CA that signed nothing the servers use.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// PEM files under a private directory, removed on drop.
pub struct Certs {
    pub dir: PathBuf,
    /// The CA that signed the server and client certificates.
    pub ca: PathBuf,
    /// A CA that signed nothing here (a client trusting it must fail).
    pub other_ca: PathBuf,
    /// The server's certificate (SAN `localhost`, `127.0.0.1`) and key.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// A client certificate signed by [`Certs::ca`] and its key (mTLS).
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A client certificate signed by [`Certs::other_ca`] and its key.
    pub stranger_cert: PathBuf,
    pub stranger_key: PathBuf,
}

fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).expect("CA certificate");
    (cert.pem(), Issuer::new(params, key))
}

fn leaf(names: &[&str], issuer: &Issuer<'_, KeyPair>) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("params");
    params.distinguished_name.push(DnType::CommonName, names[0]);
    let cert = params.signed_by(&key, issuer).expect("signed certificate");
    (cert.pem(), key.serialize_pem())
}

impl Certs {
    pub fn new() -> Certs {
        let dir = std::env::temp_dir().join(format!("jh-certs-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("cert dir");
        let write = |name: &str, pem: &str| -> PathBuf {
            let p = dir.join(name);
            std::fs::write(&p, pem).expect("write pem");
            p
        };
        let (ca_pem, issuer) = ca("junheng test CA");
        let (other_pem, other) = ca("some other CA");
        let (server_cert, server_key) = leaf(&["localhost", "127.0.0.1"], &issuer);
        let (client_cert, client_key) = leaf(&["scheduler.junheng.test"], &issuer);
        let (stranger_cert, stranger_key) = leaf(&["stranger.test"], &other);
        Certs {
            ca: write("ca.pem", &ca_pem),
            other_ca: write("other-ca.pem", &other_pem),
            server_cert: write("server.pem", &server_cert),
            server_key: write("server.key", &server_key),
            client_cert: write("client.pem", &client_cert),
            client_key: write("client.key", &client_key),
            stranger_cert: write("stranger.pem", &stranger_cert),
            stranger_key: write("stranger.key", &stranger_key),
            dir,
        }
    }

    /// The server's files, with `client_ca` when clients must present a certificate.
    pub fn server(&self, mtls: bool) -> junheng_edge::tls::TlsFiles {
        junheng_edge::tls::TlsFiles {
            cert: self.server_cert.clone(),
            key: self.server_key.clone(),
            client_ca: mtls.then(|| self.ca.clone()),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        Path::new(&self.dir).join(name)
    }
}

impl Default for Certs {
    fn default() -> Self {
        Certs::new()
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
