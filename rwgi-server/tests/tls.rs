//! HTTPS (the `tls` feature): an embedded server with `certfile` and `keyfile` answers over TLS,
//! tells the app the scheme is `https`, and refuses a certificate without its key.
//!
//! The fixtures are a test CA (`tests/fixtures/ca.crt`) and a certificate it signed for
//! `localhost` and `127.0.0.1` with its key; they are valid until 2126.

use std::path::PathBuf;
use std::sync::Arc;

use rwgi::app::app_fn;
use rwgi::body::Full;
use rwgi::http::StatusCode;
use rwgi::{Environ, StartResponse};
use rwgi_server::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{crypto, ClientConfig, RootCertStore};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn app() -> impl rwgi::App {
    app_fn(|environ: Environ, start: StartResponse| async move {
        let text = format!("{} {}", environ.url_scheme(), environ.path_info());
        Ok(start
            .start(StatusCode::OK, Default::default())
            .body(Full::new(text)))
    })
}

/// A client that trusts the test CA, offering `alpn` protocols.
fn connector(alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(fixture("ca.crt")).unwrap())
        .unwrap();
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Runs a client on a runtime of its own, which ends with it (and its connections with it: a
/// graceful stop would wait for them).
fn client<T>(client: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(client)
}

fn serve_tls() -> rwgi_server::ServerHandle {
    Server::builder()
        .bind("127.0.0.1:0")
        .threads(1)
        .tls(fixture("localhost.crt"), fixture("localhost.key"))
        .serve(app())
        .expect("the server starts")
}

#[test]
fn https_is_served_with_certfile_and_keyfile() {
    let server = serve_tls();
    let address = server.local_addr().unwrap();
    let connector = connector(&[]);
    let response = client(async {
        let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let mut tls = connector.connect(name, tcp).await.expect("the handshake");
        tls.write_all(b"GET /secret HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = Vec::new();
        let _ = tls.read_to_end(&mut response).await;
        String::from_utf8(response).unwrap()
    });
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.ends_with("\r\n\r\nhttps /secret"), "{response}");

    // Plain HTTP on the TLS port gets no answer.
    let mut plain = std::net::TcpStream::connect(address).unwrap();
    std::io::Write::write_all(&mut plain, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    plain
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = std::io::Read::read_to_end(&mut plain, &mut answer);
    assert!(!answer.starts_with(b"HTTP/1.1 200"));
    server.shutdown();
}

/// With the `http2` feature, a client that negotiates `h2` (ALPN) is served HTTP/2 over TLS.
#[cfg(feature = "http2")]
#[test]
fn http2_is_negotiated_over_tls() {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let server = serve_tls();
    let address = server.local_addr().unwrap();
    client(async {
        let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let tls = connector(&[b"h2", b"http/1.1"])
            .connect(name, tcp)
            .await
            .expect("the handshake");
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .expect("the HTTP/2 handshake");
        tokio::spawn(connection);
        let request = rwgi::http::Request::get("https://localhost/two")
            .body(Empty::<bytes::Bytes>::new())
            .unwrap();
        let response = sender.send_request(request).await.expect("a response");
        assert_eq!(response.version(), rwgi::http::Version::HTTP_2);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "https /two");
    });
    server.shutdown();
}

#[test]
fn a_certificate_needs_its_key() {
    let error = Server::builder()
        .bind("127.0.0.1:0")
        .tls(fixture("localhost.crt"), fixture("missing.key"))
        .serve(app())
        .unwrap_err();
    assert!(
        error.to_string().starts_with(&format!(
            "cannot read {} (keyfile): ",
            fixture("missing.key").display()
        )),
        "{error}"
    );
}
