//! HTTP/2 (the `http2` feature): one listener serves HTTP/2 with prior knowledge and HTTP/1.1,
//! several requests at once on one HTTP/2 connection, with the app seeing `HTTP/2.0`.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rwgi::app::app_fn;
use rwgi::body::Full;
use rwgi::http::{Request, StatusCode};
use rwgi::{Environ, StartResponse};
use rwgi_server::Server;

fn app() -> impl rwgi::App {
    app_fn(|environ: Environ, start: StartResponse| async move {
        // Slow enough that concurrent streams overlap.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let text = format!("{:?} {}", environ.version(), environ.path_info());
        Ok(start
            .start(StatusCode::OK, Default::default())
            .body(Full::new(text)))
    })
}

#[test]
fn http2_and_http1_on_one_listener() {
    let server = Server::builder()
        .bind("127.0.0.1:0")
        .threads(2)
        .serve(app())
        .expect("the server starts");
    let address = server.local_addr().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
        let (sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                .await
                .expect("the HTTP/2 handshake");
        tokio::spawn(connection);
        let started = std::time::Instant::now();
        let requests = (0..8).map(|n| {
            let mut sender = sender.clone();
            async move {
                let request = Request::get(format!("http://127.0.0.1/stream/{n}"))
                    .body(Empty::<Bytes>::new())
                    .unwrap();
                let response = sender.send_request(request).await.expect("a response");
                assert_eq!(response.status(), StatusCode::OK);
                let body = response.into_body().collect().await.unwrap().to_bytes();
                assert_eq!(body, format!("HTTP/2.0 /stream/{n}"));
            }
        });
        let tasks: Vec<_> = requests.map(tokio::spawn).collect();
        for task in tasks {
            task.await.unwrap();
        }
        // Eight requests of 100 ms each, at once on one connection.
        assert!(
            started.elapsed() < Duration::from_millis(700),
            "{:?}",
            started.elapsed()
        );
    });
    // The client's connection ends with its runtime (a graceful stop would wait for it).
    drop(runtime);

    // HTTP/1.1 on the same listener.
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    std::io::Write::write_all(
        &mut stream,
        b"GET /one HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut response = String::new();
    std::io::Read::read_to_string(&mut stream, &mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.ends_with("HTTP/1.1 /one"), "{response}");
    server.shutdown();
}

/// With the `http2` feature, an HTTP/1.1 connection can still be upgraded (§14.10): the
/// auto-detecting HTTP stack hands it over after the app's `101`.
#[test]
fn an_http1_upgrade_still_works_beside_http2() {
    use rwgi::body::BoxBody;
    use rwgi::upgrade::Upgrade;
    use std::io::{Read, Write};

    let app = app_fn(|mut environ: Environ, start: StartResponse| async move {
        let Some(offer) = environ.extensions_mut().remove::<Upgrade>() else {
            return Ok(start
                .start(StatusCode::OK, Default::default())
                .body(BoxBody::new(Full::new("no offer"))));
        };
        let response = offer.accept(start, "echo", Default::default(), |mut io| async move {
            let mut buf = [0; 5];
            if let Ok(n) = io.read(&mut buf).await {
                let _ = io.write_all(&buf[..n]).await;
            }
        });
        Ok(response.map_body(BoxBody::new))
    });
    let server = Server::builder()
        .bind("127.0.0.1:0")
        .accesslog("off")
        .serve(app)
        .expect("the server starts");
    let mut stream = std::net::TcpStream::connect(server.local_addr().unwrap()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\nhello",
        )
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{answer}"
    );
    assert!(answer.ends_with("\r\n\r\nhello"), "{answer}");
    server.shutdown();
}
