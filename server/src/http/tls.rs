//! HTTPS: the certificate and key loaded at start (`--tls-cert`, `--tls-key`) and again on
//! `SIGHUP`, and the handshake before a connection's first request. rustls on the ring provider; the TLS
//! stream is one more client stream for [`crate::conn`].

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use futures_rustls::rustls::pki_types::pem::{self, PemObject as _};
use futures_rustls::rustls::pki_types::ServerName;
use futures_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use futures_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use futures_rustls::rustls::sign::CertifiedKey;
use futures_rustls::rustls::{self, crypto::ring, RootCertStore};
pub(crate) use futures_rustls::{TlsAcceptor, TlsConnector};

/// The first byte of every TLS handshake record; an HTTP request starts with a letter.
pub(crate) const HANDSHAKE_RECORD: u8 = 0x16;

/// The server's certificate and key, as loaded at start (`--tls-cert`, `--tls-key`) and on
/// each `SIGHUP`: a handshake takes whichever is current when it starts, so a reload
/// changes nothing for connections already open.
#[derive(Debug)]
pub(crate) struct Certs {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Certs {
    /// Reads the files again; on any failure the certificate in use stays, and the error
    /// (one line naming the flag and the file) says why.
    pub(crate) fn reload(&self) -> io::Result<()> {
        let loaded = Arc::new(load(&self.cert, &self.key)?);
        match self.current.write() {
            Ok(mut current) => *current = loaded,
            Err(poisoned) => *poisoned.into_inner() = loaded,
        }
        Ok(())
    }
}

impl ResolvesServerCert for Certs {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let current = match self.current.read() {
            Ok(current) => current,
            // Only a panic in `reload`'s assignment could poison it: the value is whole.
            Err(poisoned) => poisoned.into_inner(),
        };
        Some(Arc::clone(&current))
    }
}

/// Loads `cert` (PEM: the server's certificate, then its chain) and `key` (PEM: PKCS#8,
/// PKCS#1 or SEC1), checked to belong together. Every failure is one line naming the flag and
/// the file.
fn load(cert: &Path, key: &Path) -> io::Result<CertifiedKey> {
    let invalid = |flag: &str, path: &Path, why: String| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{flag} {}: {why}", path.display()),
        )
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| invalid("--tls-cert", cert, pem_error(e, "CERTIFICATE")))?;
    if certs.is_empty() {
        return Err(invalid(
            "--tls-cert",
            cert,
            "no CERTIFICATE block in the file".into(),
        ));
    }
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        invalid(
            "--tls-key",
            key,
            pem_error(e, "PRIVATE KEY (or RSA / EC PRIVATE KEY)"),
        )
    })?;
    // Also checks that the key belongs to the certificate.
    CertifiedKey::from_der(certs, private_key, &ring::default_provider()).map_err(|e| {
        invalid(
            "--tls-key",
            key,
            format!("does not fit --tls-cert {}: {e}", cert.display()),
        )
    })
}

/// The acceptor for `cert` and `key`, and the [`Certs`] a `SIGHUP` reloads.
pub(crate) fn acceptor(cert: &Path, key: &Path) -> io::Result<(TlsAcceptor, Arc<Certs>)> {
    let certs = Arc::new(Certs {
        current: RwLock::new(Arc::new(load(cert, key)?)),
        cert: cert.to_owned(),
        key: key.to_owned(),
    });
    let mut config =
        rustls::ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&certs) as Arc<dyn ResolvesServerCert>);
    // HTTP/2 first (browsers then share one connection among all of a page's streams).
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(config)), certs))
}

/// The client side (`ssecast listen`, `publish`): trusts the certificate authorities in
/// `ca`, or else in `SSL_CERT_FILE` or the system bundle.
pub(crate) fn connector(ca: Option<&Path>) -> io::Result<TlsConnector> {
    let env = std::env::var_os("SSL_CERT_FILE").map(std::path::PathBuf::from);
    let path = ca
        .or(env.as_deref())
        .unwrap_or(Path::new("/etc/ssl/certs/ca-certificates.crt"));
    let invalid = |why: String| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("--ca {}: {why}", path.display()),
        )
    };
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| invalid(pem_error(e, "CERTIFICATE")))?;
    let mut roots = RootCertStore::empty();
    let (added, _unusable) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(invalid("no usable CERTIFICATE block in the file".into()));
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The name a server's certificate must carry: a DNS name or an IP address.
pub(crate) fn server_name(host: &str) -> io::Result<ServerName<'static>> {
    // `Url` writes IPv6 hosts in brackets.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{host:?}: {e}")))
}

fn pem_error(e: pem::Error, wanted: &str) -> String {
    match e {
        pem::Error::Io(e) => e.to_string(),
        pem::Error::NoItemsFound => format!("no {wanted} block in the file"),
        e => format!("not a valid PEM file: {e}"),
    }
}
