//! HTTPS (the `tls` feature): the rustls server configuration from the `certfile` and `keyfile`
//! settings, and the handshake on each accepted TCP connection.

use std::path::Path;

/// What accepts TLS connections.
#[cfg(feature = "tls")]
#[derive(Clone)]
pub(crate) struct Acceptor(pub(crate) tokio_rustls::TlsAcceptor);

#[cfg(feature = "tls")]
impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acceptor").finish_non_exhaustive()
    }
}

/// What accepts TLS connections; with the feature off, a type with no values.
#[cfg(not(feature = "tls"))]
#[derive(Clone, Debug)]
pub(crate) enum Acceptor {}

/// The acceptor for `certfile` and `keyfile`; `None` when neither is set.
///
/// # Errors
///
/// A one-line message naming the setting: a file that cannot be read or holds no usable
/// certificate or key, one of the two without the other, or a build without the `tls` feature.
pub(crate) fn acceptor(
    certfile: Option<&Path>,
    keyfile: Option<&Path>,
) -> Result<Option<Acceptor>, String> {
    match (certfile, keyfile) {
        (None, None) => Ok(None),
        (Some(_), None) => Err("certfile is set without keyfile (keyfile)".to_owned()),
        (None, Some(_)) => Err("keyfile is set without certfile (certfile)".to_owned()),
        (Some(certfile), Some(keyfile)) => load(certfile, keyfile).map(Some),
    }
}

#[cfg(not(feature = "tls"))]
fn load(_: &Path, _: &Path) -> Result<Acceptor, String> {
    Err("certfile and keyfile need rwgi-server built with its tls feature (certfile)".to_owned())
}

#[cfg(feature = "tls")]
fn load(certfile: &Path, keyfile: &Path) -> Result<Acceptor, String> {
    use std::sync::Arc;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls::{crypto, ServerConfig};

    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(certfile)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|error| format!("cannot read {} (certfile): {error}", certfile.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "cannot read {} (certfile): no PEM certificate in it",
            certfile.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(keyfile)
        .map_err(|error| format!("cannot read {} (keyfile): {error}", keyfile.display()))?;
    let provider = Arc::new(crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("cannot set up TLS (certfile): {error}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|error| {
            format!(
                "{} does not fit {} (keyfile): {error}",
                keyfile.display(),
                certfile.display()
            )
        })?;
    config.alpn_protocols = if cfg!(feature = "http2") {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(Acceptor(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
}
