//! HTTP/2 (the `http2` feature): one listener serves HTTP/2 with prior knowledge and HTTP/1.1,
//! several requests at once on one HTTP/2 connection, with the app seeing `HTTP/2.0`; trailers
//! both ways, and a reset stream taken as the client gone.

#[allow(dead_code)] // Included for its app alone.
#[path = "../../examples/apps/checksum.rs"]
mod checksum;

use std::convert::Infallible;
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rwgi::app::app_fn;
use rwgi::body::{Full, StreamBody as RwgiStream};
use rwgi::disconnect::Disconnect;
use rwgi::http::{HeaderMap, HeaderValue, Request, StatusCode};
use rwgi::interim::FlushHead;
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
    with_http2(address, |sender| async move {
        let started = std::time::Instant::now();
        let requests = (0..8).map(|n| {
            let mut sender = sender.clone();
            async move {
                let request = Request::get(format!("http://127.0.0.1/stream/{n}"))
                    .body(frames(Vec::new()))
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
    // The client's connection ended with its runtime (a graceful stop would wait for it).

    // HTTP/1.1 on the same listener.
    let response = http1_answer(
        address,
        &[b"GET /one HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"],
    );
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.ends_with("HTTP/1.1 /one"), "{response}");
    server.shutdown();
}

#[test]
fn an_idle_http2_connection_waits_for_keepalive_not_the_header_timeout() {
    // Between its streams an HTTP/2 connection is idle, not late with a head: the header
    // timeout, which bounds an HTTP/1.1 connection's wait for its next head, does not close it.
    let server = Server::builder()
        .bind("127.0.0.1:0")
        .threads(2)
        .header_timeout(Duration::from_millis(500))
        .keepalive(Duration::from_secs(30))
        .serve(app())
        .expect("the server starts");
    let address = server.local_addr().unwrap();
    with_http2(address, |mut sender| async move {
        for n in 0..2 {
            if n == 1 {
                tokio::time::sleep(Duration::from_millis(2500)).await;
            }
            let request = Request::get(format!("http://127.0.0.1/idle/{n}"))
                .body(frames(Vec::new()))
                .unwrap();
            let response = sender
                .send_request(request)
                .await
                .expect("a response on the same connection");
            assert_eq!(response.status(), StatusCode::OK);
        }
    });
    server.shutdown();
}

/// A client connection to `address` that gives up on a read after 10 s and sends each write
/// at once.
fn connect(address: std::net::SocketAddr) -> std::net::TcpStream {
    let stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Writes `pieces` 100 ms apart, so that each arrives in a read of its own.
fn send_in_pieces(stream: &mut std::net::TcpStream, pieces: &[&[u8]]) {
    for (n, piece) in pieces.iter().enumerate() {
        if n > 0 {
            std::thread::sleep(Duration::from_millis(100));
        }
        std::io::Write::write_all(stream, piece).unwrap();
    }
}

/// The answer to an HTTP/1.1 request sent in `pieces` on a connection of its own, read to the
/// connection's end.
fn http1_answer(address: std::net::SocketAddr, pieces: &[&[u8]]) -> String {
    let mut stream = connect(address);
    send_in_pieces(&mut stream, pieces);
    let mut response = String::new();
    std::io::Read::read_to_string(&mut stream, &mut response).unwrap();
    response
}

/// A request body of frames given up front.
type Frames =
    StreamBody<futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

/// Runs `client` with an HTTP/2 connection to `address`, on a runtime of its own, which ends
/// with the connection.
fn with_http2<F, Fut>(address: std::net::SocketAddr, client: F)
where
    F: FnOnce(SendRequest<Frames>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
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
        client(sender).await;
    });
}

/// A request body of these frames.
fn frames(frames: Vec<Frame<Bytes>>) -> Frames {
    let frames: Vec<Result<Frame<Bytes>, Infallible>> = frames.into_iter().map(Ok).collect();
    StreamBody::new(futures_util::stream::iter(frames))
}

#[test]
fn trailers_go_both_ways_over_http2() {
    let server = Server::builder()
        .bind("127.0.0.1:0")
        .threads(2)
        .serve(checksum::Checksum)
        .expect("the server starts");
    with_http2(server.local_addr().unwrap(), |mut sender| async move {
        let mut trailers = HeaderMap::new();
        trailers.insert("x-checksum", HeaderValue::from_static("42"));
        let body = frames(vec![
            Frame::data(Bytes::from_static(b"abc")),
            Frame::trailers(trailers),
        ]);
        let request = Request::post("http://127.0.0.1/sum").body(body).unwrap();
        let response = sender.send_request(request).await.expect("a response");
        assert_eq!(response.status(), StatusCode::OK);
        let collected = response
            .into_body()
            .collect()
            .await
            .expect("the whole body");
        let trailers = collected
            .trailers()
            .cloned()
            .expect("REQ-TRAIL-3: trailers");
        assert_eq!(
            trailers["x-sha256"],
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(trailers["x-upload-checksum"], "42", "REQ-TRAIL-4");
        assert_eq!(collected.to_bytes(), "abc");
    });
    server.shutdown();
}

#[test]
fn a_reset_stream_is_the_client_gone_and_its_head_came_first() {
    let (handles, received) = mpsc::channel::<Disconnect>();
    let handles = std::sync::Mutex::new(handles);
    let app = app_fn(move |environ: Environ, start: StartResponse| {
        let disconnect = environ.extension::<Disconnect>().cloned();
        let _ = handles
            .lock()
            .unwrap()
            .send(disconnect.expect("REQ-DISC-1: offered"));
        async move {
            let never =
                RwgiStream::new(futures_util::stream::pending::<Result<Bytes, rwgi::Error>>());
            let mut response = start.start(StatusCode::OK, HeaderMap::new()).body(never);
            response.extensions_mut().insert(FlushHead::new());
            Ok(response)
        }
    });
    let server = Server::builder()
        .bind("127.0.0.1:0")
        .threads(2)
        .serve(app)
        .expect("the server starts");
    with_http2(server.local_addr().unwrap(), |mut sender| async move {
        let request = Request::get("http://127.0.0.1/events")
            .body(frames(Vec::new()))
            .unwrap();
        // The head arrives although the body never yields (REQ-INTERIM-3).
        let response = sender.send_request(request).await.expect("a response");
        assert_eq!(response.status(), StatusCode::OK);
        let disconnect = received.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(!disconnect.is_gone(), "REQ-DISC-2: the stream is open");
        // Dropping the response resets the stream; the connection stays open.
        drop(response);
        tokio::time::timeout(Duration::from_secs(5), disconnect.gone())
            .await
            .expect("REQ-DISC-1: the reset stream was not noticed within 5 s");
        // The connection carries on.
        let request = Request::get("http://127.0.0.1/again")
            .body(frames(Vec::new()))
            .unwrap();
        let response = sender
            .send_request(request)
            .await
            .expect("another response");
        assert_eq!(response.status(), StatusCode::OK);
        // The next stream's handle is its own: the reset of the first is not its departure.
        let next = received.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(!next.is_gone(), "REQ-DISC-2: the new stream is open");
    });
    server.shutdown();
}

#[test]
fn a_raw_http2_preface_is_answered_with_settings() {
    // The bytes a client with prior knowledge opens with, sent by hand: the connection preface
    // and an empty SETTINGS frame. An HTTP/1-only build answers them with 505 (see
    // tests/robustness.rs); this one speaks HTTP/2.
    use std::io::{Read, Write};

    let server = Server::builder()
        .bind("127.0.0.1:0")
        .threads(1)
        .serve(app())
        .expect("the server starts");
    let mut stream = connect(server.local_addr().unwrap());
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .unwrap();
    // The server's first frame is its SETTINGS (RFC 9113 §3.4): a 9-byte header, type 0x4, on
    // stream 0, not an acknowledgement.
    let mut header = [0; 9];
    stream.read_exact(&mut header).unwrap();
    assert_eq!(header[3], 0x4, "frame type: {header:?}");
    assert_eq!(header[4] & 0x1, 0, "flags: {header:?}");
    assert_eq!(&header[5..9], &[0, 0, 0, 0], "stream: {header:?}");
    drop(stream);
    server.shutdown();
}

/// The preface may come in pieces, as TCP allows: the server reads until it has the whole of
/// it, and an HTTP/1.1 request that starts like it (`PRI * HTTP/1.1`, a valid request line)
/// or arrives a byte at a time is still HTTP/1.1, none of its bytes lost.
#[test]
fn the_opening_bytes_may_come_in_pieces() {
    use std::io::Read;

    let server = Server::builder()
        .bind("127.0.0.1:0")
        .threads(1)
        .serve(app())
        .expect("the server starts");
    let address = server.local_addr().unwrap();

    let mut http2 = connect(address);
    send_in_pieces(
        &mut http2,
        &[
            b"PRI * HT",
            b"TP/2.0\r\n\r\nSM",
            b"\r\n\r\n\0\0\0\x04\0\0\0\0\0",
        ],
    );
    let mut header = [0; 9];
    http2.read_exact(&mut header).unwrap();
    assert_eq!(header[3], 0x4, "a SETTINGS frame: {header:?}");
    drop(http2);

    let answer = |pieces: &[&[u8]]| http1_answer(address, pieces);
    let close = b"\r\nHost: h\r\nConnection: close\r\n\r\n";
    let response = answer(&[b"G", b"ET /pieces HTTP/1.1", close]);
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.ends_with("HTTP/1.1 /pieces"), "{response}");
    // Like the preface up to its version: an HTTP/1.1 request, refused as one (an asterisk
    // target is for OPTIONS alone, REQ-ENV-6), not taken for HTTP/2.
    let response = answer(&[b"PRI * HTTP/", b"1.1", close]);
    assert!(response.starts_with("HTTP/1.1 400 "), "{response}");
    server.shutdown();
}

/// A connection that does not show which protocol it speaks within the header timeout (nothing
/// at all, or part of the preface) is closed, as an HTTP/1.1 head that does not come in time.
#[test]
fn the_opening_bytes_must_come_within_the_header_timeout() {
    use std::io::{Read, Write};

    let server = Server::builder()
        .bind("127.0.0.1:0")
        .threads(1)
        .header_timeout(Duration::from_millis(300))
        .serve(app())
        .expect("the server starts");
    for opening in [&b""[..], b"PRI * HTTP/2.0\r\n"] {
        let mut stream = connect(server.local_addr().unwrap());
        stream.write_all(opening).unwrap();
        let started = std::time::Instant::now();
        let mut rest = Vec::new();
        let closed = stream.read_to_end(&mut rest);
        assert!(closed.is_ok() && rest.is_empty(), "{closed:?} {rest:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
    server.shutdown();
}

/// With the `http2` feature, an HTTP/1.1 connection can still be upgraded (§14.10): it is
/// served as without the feature, and handed over after the app's `101`.
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
    let mut stream = connect(server.local_addr().unwrap());
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
