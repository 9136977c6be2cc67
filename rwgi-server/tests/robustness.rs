//! Timeouts, connection limits and faults over real sockets.
//!
//! Each test starts a server in this process on an ephemeral port, makes one client misbehave
//! (or the app), checks the server's exact answer or the aborted connection and what the app
//! saw, and then serves a request on a second connection. Waits poll a condition against a
//! deadline; every read has a timeout, so a server that hangs fails a test instead of hanging
//! it.

#[path = "../../tests/support/raw_http.rs"]
#[allow(dead_code)] // Not every helper of the shared client is used here.
mod raw_http;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rwgi::body::{BoxBody, Empty, Full, StreamBody};
use rwgi::http::{HeaderMap, StatusCode};
use rwgi::{App, Environ, Error, Response, StartResponse};
use rwgi_server::{Builder, InputError, InputErrorKind, Server, ServerHandle};

use raw_http::Client;

/// The longest any condition is waited for.
const DEADLINE: Duration = Duration::from_secs(10);

/// Counts its own drops: put one in an app's future or a body's state to see it go.
struct DropGuard(Arc<AtomicUsize>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// What the app saw, and the drops it counts.
#[derive(Default)]
struct Counters {
    /// App futures dropped (finished or not).
    calls_dropped: Arc<AtomicUsize>,
    /// Response bodies dropped.
    bodies_dropped: Arc<AtomicUsize>,
}

/// Answers by path with the behaviours under test.
struct Faulty {
    counters: Arc<Counters>,
    /// What `/upload` saw when reading its body.
    events: mpsc::Sender<String>,
}

/// An endless body of 64 KiB chunks that counts its drop.
fn endless(guard: DropGuard) -> BoxBody {
    let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
    let stream = futures_util::stream::unfold(guard, move |guard| {
        let chunk = chunk.clone();
        async move { Some((Ok::<_, Error>(chunk), guard)) }
    });
    BoxBody::new(StreamBody::new(Box::pin(stream)))
}

impl App for Faulty {
    type Body = BoxBody;

    async fn call(
        &self,
        mut environ: Environ,
        start: StartResponse,
    ) -> Result<Response<BoxBody>, Error> {
        let _alive = DropGuard(Arc::clone(&self.counters.calls_dropped));
        let (status, body) = match environ.path_info() {
            "/hello" => (StatusCode::OK, BoxBody::new(Full::new("hello\n"))),
            "/upload" => {
                let input = environ.input_mut();
                let mut total = 0;
                let event = loop {
                    match input.chunk().await {
                        None => break format!("read {total} bytes"),
                        Some(Ok(chunk)) => total += chunk.len(),
                        Some(Err(error)) => break describe(&error, total),
                    }
                };
                let status = if event.starts_with("timeout") {
                    StatusCode::REQUEST_TIMEOUT
                } else if event.starts_with("too large") {
                    StatusCode::PAYLOAD_TOO_LARGE
                } else {
                    StatusCode::OK
                };
                let _ = self.events.send(event.clone());
                (status, BoxBody::new(Full::new(event)))
            }
            // Passes a body error on, for the server to answer.
            "/pass-on" => {
                let input = environ.input_mut();
                let mut total = 0;
                while let Some(chunk) = input.chunk().await {
                    match chunk {
                        Ok(chunk) => total += chunk.len(),
                        Err(error) => {
                            let _ = self.events.send(describe(&error, total));
                            return Err(error);
                        }
                    }
                }
                let _ = self.events.send(format!("read {total} bytes"));
                (StatusCode::OK, BoxBody::new(Full::new("read\n")))
            }
            // Reports the framing headers it sees, and the body's length.
            "/framing" => {
                let header = |name: &str| {
                    let values: Vec<_> = environ.headers().get_all(name).iter().collect();
                    format!("{name}: {values:?}")
                };
                let seen = format!(
                    "{}, {}",
                    header("content-length"),
                    header("transfer-encoding")
                );
                let body = environ.input_mut().read_to_end(1 << 20).await;
                let _ = self.events.send(format!("{seen}, body {body:?}"));
                (StatusCode::OK, BoxBody::new(Full::new("framing\n")))
            }
            "/endless" => (
                StatusCode::OK,
                endless(DropGuard(Arc::clone(&self.counters.bodies_dropped))),
            ),
            "/never" => std::future::pending().await,
            "/late" => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                (StatusCode::OK, BoxBody::new(Full::new("late\n")))
            }
            "/slow" => {
                let _ = self.events.send("slow started".to_owned());
                tokio::time::sleep(Duration::from_millis(400)).await;
                (StatusCode::OK, BoxBody::new(Full::new("slow\n")))
            }
            "/panic" => panic!("the app panics on purpose"),
            "/panic-in-body" | "/fail-in-body" => {
                let panics = environ.path_info() == "/panic-in-body";
                let guard = DropGuard(Arc::clone(&self.counters.bodies_dropped));
                let stream = futures_util::stream::unfold(0, move |n| {
                    let _guard = &guard;
                    async move {
                        if n > 0 {
                            // Long enough for the head and the first chunk to go out.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        match n {
                            0 => Some((Ok(Bytes::from_static(b"first chunk\n")), 1)),
                            _ if panics => panic!("the body panics on purpose"),
                            _ => Some((Err(Error::msg("the body fails on purpose")), 2)),
                        }
                    }
                });
                (
                    StatusCode::OK,
                    BoxBody::new(StreamBody::new(Box::pin(stream))),
                )
            }
            _ => (StatusCode::NOT_FOUND, BoxBody::new(Empty)),
        };
        Ok(start.start(status, HeaderMap::new()).body(body))
    }
}

/// What reading a body gave, by the kind of [`InputError`] the server put in the error.
fn describe(error: &Error, total: usize) -> String {
    let Some(input) = error.input_error() else {
        return format!("failed after {total} bytes: {error}");
    };
    let kind = match input.kind() {
        InputErrorKind::Malformed => "malformed",
        InputErrorKind::Incomplete => "incomplete",
        InputErrorKind::TimedOut => "timeout",
        InputErrorKind::TooLarge => "too large",
        other => panic!("a new kind of input error: {other:?}"),
    };
    // The same error, found by type as `rwgi_server` exports it.
    assert!(error.downcast_ref::<InputError>().is_some());
    format!("{kind} after {total} bytes: {input}")
}

struct Fixture {
    handle: Option<ServerHandle>,
    addr: SocketAddr,
    counters: Arc<Counters>,
    events: mpsc::Receiver<String>,
}

impl Fixture {
    fn start(config: Builder) -> Fixture {
        let counters = Arc::new(Counters::default());
        let (events, received) = mpsc::channel();
        let app = Faulty {
            counters: Arc::clone(&counters),
            events,
        };
        let handle = config
            .bind("127.0.0.1:0")
            .serve(app)
            .expect("the test server starts");
        Fixture {
            addr: handle.local_addr().unwrap(),
            handle: Some(handle),
            counters,
            events: received,
        }
    }

    fn connect(&self) -> Client<TcpStream> {
        Client::connect(self.addr)
    }

    /// A raw socket, for clients that misbehave.
    fn socket(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).expect("connect");
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        stream.set_write_timeout(Some(DEADLINE)).unwrap();
        stream
    }

    /// A request on a connection of its own is answered: the server is still serving.
    #[track_caller]
    fn assert_serving(&self) {
        let mut client = self.connect();
        let response =
            client.exchange(b"GET /hello HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"hello\n");
    }

    fn event(&self) -> String {
        self.events
            .recv_timeout(DEADLINE)
            .expect("the app reports what it saw")
    }

    fn calls_dropped(&self) -> usize {
        self.counters.calls_dropped.load(Ordering::SeqCst)
    }

    fn bodies_dropped(&self) -> usize {
        self.counters.bodies_dropped.load(Ordering::SeqCst)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            if std::thread::panicking() {
                handle.abort();
            } else {
                handle.shutdown();
            }
        }
    }
}

fn config() -> Builder {
    Server::builder()
        .threads(2)
        .graceful_timeout(Duration::from_secs(5))
}

/// Polls `condition` until it holds, failing the test after [`DEADLINE`].
#[track_caller]
fn wait_until(what: &str, mut condition: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < DEADLINE, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
    started.elapsed()
}

/// Writes a byte to `stream` every `every`, from a thread of its own, until a write fails (the
/// server closed the connection) or `bound` has passed.
fn dribble(stream: &TcpStream, every: Duration, bound: Duration) -> std::thread::JoinHandle<()> {
    let mut stream = stream.try_clone().unwrap();
    let started = Instant::now();
    std::thread::spawn(move || {
        while started.elapsed() < bound && stream.write_all(b"x").is_ok() {
            std::thread::sleep(every);
        }
    })
}

/// Sends a request head a byte every 100 ms (each within any per-read bound, the whole never
/// done in time) until writing fails, the server having closed the connection, or 4 s have
/// passed; then reads until the connection closes. What came back, and how long it all took.
fn dribble_head(stream: &mut TcpStream) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    for byte in b"GET /hello HTTP/1.1\r\nHost: h\r\nX-Slow: ".iter().cycle() {
        if stream.write_all(&[*byte]).is_err() || started.elapsed() > Duration::from_secs(4) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    (read_until_closed(stream), started.elapsed())
}

/// Reads until the server closes the connection (or resets it); the bytes received.
fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buffer = [0; 64 * 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return received,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(error) if error.kind() == ErrorKind::ConnectionReset => return received,
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => panic!("the connection did not close: {error}"),
        }
    }
}

// ---- Timeouts ----

#[test]
fn body_timeout_fails_a_stalled_body_with_a_typed_error() {
    let server = Fixture::start(config().body_timeout(Duration::from_millis(500)));
    let mut stream = server.socket();
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc")
        .unwrap();
    let started = Instant::now();
    let event = server.event();
    let waited = started.elapsed();
    assert_eq!(
        event,
        "timeout after 3 bytes: no request body bytes arrived for 500ms (body_timeout)"
    );
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    // The app's answer goes out, and the connection closes: its body was left unread.
    let response = String::from_utf8(read_until_closed(&mut stream)).unwrap();
    assert!(response.starts_with("HTTP/1.1 408 "), "{response}");
    server.assert_serving();

    // A body dribbled a byte at a time with pauses shorter than the timeout is read whole.
    let mut stream = server.socket();
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n")
        .unwrap();
    for byte in b"12345" {
        std::thread::sleep(Duration::from_millis(100));
        stream.write_all(&[*byte]).unwrap();
    }
    assert_eq!(server.event(), "read 5 bytes");
}

#[test]
fn header_timeout_closes_a_connection_that_dribbles_its_head() {
    let server = Fixture::start(config().header_timeout(Duration::from_millis(500)));
    let mut stream = server.socket();
    let (received, waited) = dribble_head(&mut stream);
    assert!(waited < Duration::from_secs(4), "{waited:?}");
    // Closed without an answer, as nginx closes on its `client_header_timeout`.
    assert!(
        received.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&received)
    );
    assert_eq!(server.calls_dropped(), 0, "the app was not called");
    server.assert_serving();
}

#[test]
fn header_timeout_bounds_a_later_head_when_keepalive_is_longer() {
    let server = Fixture::start(
        config()
            .header_timeout(Duration::from_millis(500))
            .keepalive(Duration::from_secs(30)),
    );
    let mut stream = server.socket();
    stream
        .write_all(b"GET /hello HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    let mut received = Vec::new();
    while !received.ends_with(b"hello\n") {
        let mut buffer = [0; 1024];
        let n = stream.read(&mut buffer).unwrap();
        assert_ne!(n, 0, "the first request is answered");
        received.extend_from_slice(&buffer[..n]);
    }
    // The next head, dribbled: keep-alive would leave the connection open for 30 s.
    let (rest, waited) = dribble_head(&mut stream);
    assert!(waited < Duration::from_secs(4), "{waited:?}");
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    server.assert_serving();
}

#[test]
fn body_timeout_zero_waits_as_long_as_the_client_does() {
    let server = Fixture::start(config().body_timeout(Duration::ZERO));
    let mut stream = server.socket();
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nab")
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    stream.write_all(b"cd").unwrap();
    assert_eq!(server.event(), "read 4 bytes");
}

#[test]
fn a_chunked_body_over_the_limit_is_a_typed_error_and_a_declared_one_is_413() {
    let server = Fixture::start(config().limit_request_body(10));
    let mut client = server.connect();
    let response = client.exchange(
        b"POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
          6\r\n012345\r\n6\r\n678901\r\n0\r\n\r\n",
    );
    assert_eq!(response.status, 413);
    assert_eq!(
        server.event(),
        "too large after 6 bytes: the request body is over 10 bytes (limit_request_body)"
    );
    // A declared length over the limit never reaches the app.
    let before = server.calls_dropped();
    let mut client = server.connect();
    let response =
        client.exchange(b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n");
    assert_eq!(response.status, 413);
    assert_eq!(response.header("connection"), Some("close"));
    assert_eq!(server.calls_dropped(), before, "the app was not called");
    server.assert_serving();
}

#[test]
fn min_body_rate_cuts_off_a_body_dribbled_within_body_timeout() {
    let server = Fixture::start(
        config()
            .body_timeout(Duration::from_secs(5))
            .min_body_rate(100)
            .min_body_rate_grace(Duration::from_millis(500)),
    );
    // A byte every 100 ms: each well within body_timeout, 10 bytes/s in all. The app passes
    // the error on, and the server answers for it.
    let mut stream = server.socket();
    stream
        .write_all(b"POST /pass-on HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    let writer = dribble(&stream, Duration::from_millis(100), Duration::from_secs(5));
    let event = server.event();
    let waited = started.elapsed();
    assert!(
        event.starts_with("timeout after ")
            && event.contains(
                " bytes: the request body arrived slower than 100 bytes/s (min_body_rate): "
            ),
        "{event}"
    );
    // Cut off once the grace period is over: after 0.5 s of waiting, not 5 s of silence.
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    let response = String::from_utf8(read_until_closed(&mut stream)).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{response}"
    );
    assert!(response.contains("\r\nconnection: close\r\n"), "{response}");
    assert!(
        response.ends_with("\r\n\r\nRequest Timeout\n"),
        "{response}"
    );
    writer.join().unwrap();

    // A body faster than the minimum is read whole, however long it takes.
    let mut stream = server.socket();
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 1500\r\n\r\n")
        .unwrap();
    for _ in 0..15 {
        std::thread::sleep(Duration::from_millis(100));
        stream.write_all(&[b'y'; 100]).unwrap();
    }
    assert_eq!(server.event(), "read 1500 bytes");
    server.assert_serving();
}

#[test]
fn under_the_defaults_a_body_dribbled_a_byte_a_second_is_cut_off() {
    // body_timeout 30 s never fires for it; min_body_rate (240 bytes/s after 5 s) does.
    let server = Fixture::start(config());
    let mut stream = server.socket();
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    let writer = dribble(&stream, Duration::from_secs(1), Duration::from_secs(15));
    let event = server
        .events
        .recv_timeout(Duration::from_secs(15))
        .expect("the app's read fails");
    let waited = started.elapsed();
    assert!(
        event
            .contains(" bytes: the request body arrived slower than 240 bytes/s (min_body_rate): "),
        "{event}"
    );
    assert!(
        waited >= Duration::from_millis(4500) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
    let response = String::from_utf8(read_until_closed(&mut stream)).unwrap();
    assert!(response.starts_with("HTTP/1.1 408 "), "{response}");
    writer.join().unwrap();
}

#[test]
fn write_timeout_drops_a_connection_whose_client_stopped_reading() {
    let server = Fixture::start(config().write_timeout(Duration::from_millis(500)));
    let mut stream = server.socket();
    stream
        .write_all(b"GET /endless HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    // The client reads nothing: the socket buffers fill, writes stall, and the server gives up.
    let waited = wait_until("the stalled response body is dropped", || {
        server.bodies_dropped() == 1
    });
    assert!(waited < Duration::from_secs(8), "{waited:?}");
    assert_eq!(server.calls_dropped(), 1);
    // What was buffered arrives, then the connection ends.
    let received = read_until_closed(&mut stream);
    assert!(received.starts_with(b"HTTP/1.1 200 OK\r\n"));
    server.assert_serving();
}

#[test]
fn a_slow_reader_within_write_timeout_gets_everything() {
    let server = Fixture::start(config().write_timeout(Duration::from_millis(500)));
    let mut stream = server.socket();
    stream
        .write_all(b"GET /endless HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    // Reading 16 MiB with pauses shorter than the timeout keeps the response going.
    let mut buffer = vec![0; 1 << 20];
    let mut total = 0;
    while total < 16 << 20 {
        total += stream.read(&mut buffer).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(server.bodies_dropped(), 0, "still streaming");
    drop(stream);
    wait_until("the body is dropped once the client leaves", || {
        server.bodies_dropped() == 1
    });
    server.assert_serving();
}

#[test]
fn request_timeout_answers_503_and_drops_the_app() {
    let server = Fixture::start(config().request_timeout(Duration::from_millis(300)));
    let mut client = server.connect();
    let started = Instant::now();
    let response = client.exchange(b"GET /never HTTP/1.1\r\nHost: h\r\n\r\n");
    let waited = started.elapsed();
    response.assert_head(
        503,
        "Service Unavailable",
        &[
            ("content-type", "text/plain; charset=utf-8"),
            ("content-length", "20"),
            ("connection", "close"),
        ],
    );
    assert_eq!(response.body, b"Service Unavailable\n");
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert!(client.is_closed());
    wait_until("the app's future is dropped", || {
        server.calls_dropped() == 1
    });
    // An app that answers in time is not affected.
    let mut client = server.connect();
    let response = client.exchange(b"GET /late HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, &b"late\n"[..])
    );
    server.assert_serving();
}

#[test]
fn worker_connections_stops_accepting_until_one_closes() {
    let server = Fixture::start(
        config()
            .worker_connections(2)
            .keepalive(Duration::from_secs(30)),
    );
    let mut first = server.connect();
    let mut second = server.connect();
    for client in [&mut first, &mut second] {
        let response = client.exchange(b"GET /hello HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(response.status, 200);
    }
    // A third connection is queued by the kernel, not served.
    let mut third = server.socket();
    third
        .write_all(b"GET /hello HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        .unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buffer = [0; 1024];
    let error = third
        .read(&mut buffer)
        .expect_err("no answer past the limit");
    assert!(
        matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{error}"
    );
    // Once one closes, the queued connection is accepted and answered.
    drop(first);
    third.set_read_timeout(Some(DEADLINE)).unwrap();
    let response = String::from_utf8(read_until_closed(&mut third)).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.ends_with("hello\n"));
    // The kept connection still works.
    let response = second.exchange(b"GET /hello HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(response.status, 200);
}

#[test]
fn zero_worker_connections_is_refused() {
    let error = config()
        .worker_connections(0)
        .bind("127.0.0.1:0")
        .serve(rwgi::app::app_fn(|_, start: StartResponse| async move {
            Ok(start.start(StatusCode::OK, HeaderMap::new()).body(Empty))
        }))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid value 0 for worker_connections: expected 1 or more"
    );
}

// ---- Framing ----

/// Chunked bodies that break their framing after a head that is fine (REQ-INPUT-8): what each
/// is, the bytes after the head, and how many body bytes come before the break.
fn broken_chunked_bodies() -> Vec<(&'static str, Vec<u8>, usize)> {
    let mut long_extension = b"3;".to_vec();
    long_extension.resize(2 + 16 * 1024, b'x');
    long_extension.extend_from_slice(b"\r\nabc\r\n0\r\n\r\n");
    vec![
        (
            "a size line that is not hexadecimal",
            b"zz\r\nabc\r\n0\r\n\r\n".to_vec(),
            0,
        ),
        (
            "a size that overflows 64 bits",
            b"f0000000000000003\r\nabc\r\n0\r\n\r\n".to_vec(),
            0,
        ),
        (
            "chunk data not followed by CRLF",
            b"3\r\nabcX\r\n0\r\n\r\n".to_vec(),
            3,
        ),
        ("chunk extensions over 16 KiB", long_extension, 0),
        (
            "a bare LF ending a size line",
            b"3\nabc\r\n0\r\n\r\n".to_vec(),
            0,
        ),
        (
            "a bare LF ending a chunk extension",
            b"3;name=value\nabc\r\n0\r\n\r\n".to_vec(),
            0,
        ),
        (
            "a bare LF after chunk data",
            b"3\r\nabc\n0\r\n\r\n".to_vec(),
            3,
        ),
        (
            "a bare LF ending the last chunk's line",
            b"3\r\nabc\r\n0\n\r\n".to_vec(),
            3,
        ),
        // hyper reads on to the next CRLF CRLF as the trailer section: the request a lenient
        // front end would see next is swallowed, and the server refuses the body.
        (
            "a bare LF after the last chunk",
            b"3\r\nabc\r\n0\r\n\nGET /hello HTTP/1.1\r\nHost: h\r\n\r\n".to_vec(),
            3,
        ),
    ]
}

#[test]
fn a_chunked_body_that_breaks_its_framing_is_the_clients_error_and_answered_400() {
    let server = Fixture::start(config());
    for (calls, (what, body, before)) in broken_chunked_bodies().into_iter().enumerate() {
        let mut stream = server.socket();
        let mut request =
            b"POST /pass-on HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        request.extend_from_slice(&body);
        // A request after the body, which must never be read as one.
        request.extend_from_slice(b"GET /hello HTTP/1.1\r\nHost: h\r\n\r\n");
        stream.write_all(&request).unwrap();
        // The app's read fails with a typed error it can tell from a server fault.
        let event = server.event();
        let expected =
            format!("malformed after {before} bytes: the request body's framing is broken: ");
        assert!(event.starts_with(&expected), "{what}: {event}");
        // The app passed the error on: the server answers 400, not 500, and closes.
        let response = String::from_utf8(read_until_closed(&mut stream)).unwrap();
        assert!(
            response.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{what}: {response}"
        );
        assert!(
            response.contains("\r\nconnection: close\r\n"),
            "{what}: {response}"
        );
        assert!(
            response.ends_with("\r\n\r\nBad Request\n"),
            "{what}: {response}"
        );
        assert_eq!(
            response.matches("HTTP/1.1 ").count(),
            1,
            "{what}: {response}"
        );
        wait_until("the app's future is dropped", || {
            server.calls_dropped() == calls + 1
        });
    }
    // Nothing after a broken body was taken for a request.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(server.calls_dropped(), broken_chunked_bodies().len());
    server.assert_serving();
}

/// The two orders of a request head with both `Content-Length` and `Transfer-Encoding`, with a
/// chunked body.
const BOTH: [&str; 2] = [
    "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n\
     5\r\nhello\r\n0\r\n\r\n",
    "POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\ncontent-length: 5\r\n\r\n\
     5\r\nhello\r\n0\r\n\r\n",
];

/// Bytes a body may carry that look like the framing under test.
const DECOY: &str = "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";

/// Requests the server serves with `200`, framed every way hyper takes, and how many body bytes
/// `/upload` reads from each (`None`: not an upload).
fn valid_requests() -> Vec<(String, Option<usize>)> {
    let smuggled = "0\r\n\r\nPOST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\
                    Transfer-Encoding: chunked\r\n\r\n";
    vec![
        (
            "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello".to_owned(),
            Some(5),
        ),
        (
            format!(
                "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n{DECOY}",
                DECOY.len()
            ),
            Some(DECOY.len()),
        ),
        ("GET /hello HTTP/1.1\r\nHost: h\r\n\r\n".to_owned(), None),
        (
            format!(
                "POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
                 5;name=\"a;b\"\r\nhello\r\n{:x} ; ext\r\n{DECOY}\r\n0\r\n\
                 X-Trailer: {DECOY:?}\r\nX-Other: 1\r\n\r\n",
                DECOY.len()
            ),
            Some(5 + DECOY.len()),
        ),
        (
            format!(
                "POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
                 {:X}\r\n{smuggled}\r\n0\r\n\r\n",
                smuggled.len()
            ),
            Some(smuggled.len()),
        ),
    ]
}

/// How a test client writes a request stream.
#[derive(Clone, Copy, Debug)]
enum Writes {
    /// All of it at once.
    One,
    /// A byte per write.
    Bytes,
    /// Pieces of 1 to 13 bytes, a millisecond apart, so that the server reads them apart.
    Odd,
}

/// Writes `bytes` to `stream` from a thread of its own, as `writes` says; write errors after
/// the server closed the connection are expected.
fn write_in(stream: &TcpStream, bytes: Vec<u8>, writes: Writes) -> std::thread::JoinHandle<()> {
    let mut stream = stream.try_clone().unwrap();
    stream.set_nodelay(true).unwrap();
    std::thread::spawn(move || {
        let sizes: Box<dyn Iterator<Item = usize>> = match writes {
            Writes::One => Box::new(std::iter::once(bytes.len())),
            Writes::Bytes => Box::new(std::iter::repeat(1)),
            Writes::Odd => Box::new((1..=13).cycle()),
        };
        let mut rest = &bytes[..];
        for size in sizes {
            if rest.is_empty() {
                break;
            }
            let (piece, after) = rest.split_at(size.min(rest.len()));
            if stream.write_all(piece).is_err() {
                break;
            }
            rest = after;
            if matches!(writes, Writes::Odd) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    })
}

/// The status codes of the responses in `received`, in order.
fn statuses(received: &[u8]) -> Vec<u16> {
    let text = String::from_utf8_lossy(received);
    text.match_indices("HTTP/1.1 ")
        .filter_map(|(at, _)| text.get(at + 9..at + 12)?.parse().ok())
        .collect()
}

#[test]
fn content_length_beside_transfer_encoding_is_refused_with_400_and_the_connection_closed() {
    // hyper removes the Content-Length of such a head (either order) and reads the body as
    // chunked; the server's framing tracker sees both fields and refuses it (REQ-ENV-13).
    let server = Fixture::start(config());
    for both in BOTH {
        let mut stream = server.socket();
        let request = format!("{both}GET /hello HTTP/1.1\r\nHost: h\r\n\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let response = String::from_utf8(read_until_closed(&mut stream)).unwrap();
        assert!(
            response.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{both:?}: {response}"
        );
        assert!(response.contains("\r\nconnection: close\r\n"), "{response}");
        assert!(response.ends_with("\r\n\r\nBad Request\n"), "{response}");
        assert_eq!(
            statuses(response.as_bytes()),
            [400],
            "nothing after it was served"
        );
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(server.calls_dropped(), 0, "the app was never called");
    server.assert_serving();
}

#[test]
fn a_pipelined_stream_is_served_up_to_the_head_with_both_fields_in_any_split() {
    let server = Fixture::start(config());
    let valid = valid_requests();
    let mut calls = 0;
    for writes in [Writes::One, Writes::Bytes, Writes::Odd] {
        for (order, both) in BOTH.into_iter().enumerate() {
            // The refused request first, in the middle, last; and none at all.
            for at in [Some(0), Some(2), Some(valid.len()), None] {
                let before = &valid[..at.unwrap_or(valid.len())];
                let mut stream: Vec<u8> = Vec::new();
                for (request, _) in before {
                    stream.extend_from_slice(request.as_bytes());
                }
                if at.is_some() {
                    stream.extend_from_slice(both.as_bytes());
                }
                // Served only if the refusal were missed. Written whole only: after the close,
                // bytes still coming make the server's side reset the connection.
                if at.is_none() || matches!(writes, Writes::One) {
                    for (request, _) in &valid[..2] {
                        stream.extend_from_slice(request.as_bytes());
                    }
                    stream.extend_from_slice(
                        b"GET /hello HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
                    );
                }
                let case = format!("{writes:?}, order {order}, refused at {at:?}");
                let mut socket = server.socket();
                let writer = write_in(&socket, stream, writes);
                let received = read_until_closed(&mut socket);
                writer.join().unwrap();
                let mut expected = vec![200; before.len()];
                match at {
                    Some(_) => expected.push(400),
                    // The two after it and the closing request.
                    None => expected.extend([200; 3]),
                }
                assert_eq!(statuses(&received), expected, "{case}");
                let served = if at.is_some() { before } else { &valid[..] };
                let served = served
                    .iter()
                    .chain(if at.is_some() { &[][..] } else { &valid[..2] });
                for (_, read) in served {
                    if let Some(read) = read {
                        assert_eq!(server.event(), format!("read {read} bytes"), "{case}");
                    }
                }
                calls += before.len() + if at.is_some() { 0 } else { 3 };
                wait_until("the app's futures are dropped", || {
                    server.calls_dropped() == calls
                });
            }
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        server.calls_dropped(),
        calls,
        "the refused requests never reached the app"
    );
    assert!(
        server.events.try_recv().is_err(),
        "no upload after a refusal"
    );
    server.assert_serving();
}

#[cfg(not(feature = "http2"))]
#[test]
fn an_http2_preface_on_an_http1_only_listener_gets_505_and_a_close() {
    // With the `http2` feature the same bytes are served: tests/http2.rs.
    let server = Fixture::start(config());
    let mut stream = server.socket();
    // The connection preface and an empty SETTINGS frame, as a client with prior knowledge
    // opens a connection.
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .unwrap();
    let response = String::from_utf8(read_until_closed(&mut stream)).unwrap();
    assert_eq!(
        response,
        "HTTP/1.1 505 HTTP Version Not Supported\r\nconnection: close\r\n\
         content-type: text/plain; charset=utf-8\r\ncontent-length: 27\r\n\r\n\
         HTTP Version Not Supported\n"
    );
    assert_eq!(server.calls_dropped(), 0, "the app was not called");
    server.assert_serving();
}

// ---- Faults ----

#[test]
fn an_app_that_panics_before_answering_gets_a_500() {
    let server = Fixture::start(config());
    let mut client = server.connect();
    let response = client.exchange(b"GET /panic HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(response.status, 500);
    assert!(response.complete);
    wait_until("the app's future is dropped", || {
        server.calls_dropped() == 1
    });
    // The connection carries on, and so does the server.
    let response = client.exchange(b"GET /hello HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(response.status, 200);
    server.assert_serving();
}

#[test]
fn a_body_that_panics_or_fails_after_the_head_aborts_its_connection() {
    let server = Fixture::start(config());
    for (dropped, path) in [(1, "/panic-in-body"), (2, "/fail-in-body")] {
        let mut client = server.connect();
        let request = format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n");
        let response = client.exchange(request.as_bytes());
        assert_eq!(response.status, 200, "{path}: the head went out first");
        assert_eq!(response.body, b"first chunk\n", "{path}");
        assert!(!response.complete, "{path}: the chunked body has no end");
        assert!(client.is_closed(), "{path}");
        wait_until("the body is dropped", || server.bodies_dropped() == dropped);
        server.assert_serving();
    }
}

#[test]
fn a_client_gone_mid_upload_ends_the_apps_read_with_an_error() {
    let server = Fixture::start(config());
    let mut stream = server.socket();
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n")
        .unwrap();
    stream.write_all(&[b'u'; 1000]).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    drop(stream);
    let event = server.event();
    assert!(
        event.starts_with("incomplete after 1000 bytes: the request body ended early: "),
        "the app sees an error, not a short body: {event}"
    );
    wait_until("the app's future is dropped", || {
        server.calls_dropped() == 1
    });
    server.assert_serving();
}

#[test]
fn a_client_gone_mid_download_drops_the_body() {
    let server = Fixture::start(config());
    let mut stream = server.socket();
    stream
        .write_all(b"GET /endless HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    let mut buffer = vec![0; 256 * 1024];
    let mut total = 0;
    while total < 1 << 20 {
        total += stream.read(&mut buffer).unwrap();
    }
    drop(stream);
    let waited = wait_until("the body is dropped", || server.bodies_dropped() == 1);
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert_eq!(server.calls_dropped(), 1);
    server.assert_serving();
}

#[test]
fn a_graceful_stop_finishes_requests_in_flight_on_every_connection() {
    let mut server = Fixture::start(config());
    let mut clients: Vec<Client<TcpStream>> = (0..2).map(|_| server.connect()).collect();
    for client in &mut clients {
        client.send(b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\n");
    }
    for _ in &clients {
        assert_eq!(server.event(), "slow started");
    }
    let handle = server.handle.take().unwrap();
    handle.begin_shutdown();
    for client in &mut clients {
        let response = client.read_response(false);
        assert_eq!(
            (response.status, response.body.as_slice()),
            (200, &b"slow\n"[..])
        );
        assert_eq!(response.header("connection"), Some("close"));
        assert!(client.is_closed());
    }
    handle.shutdown();
    assert_eq!(server.calls_dropped(), 2);
    assert!(
        TcpStream::connect(server.addr).is_err(),
        "the listener is closed"
    );
}

// ---- Connection storm ----

#[test]
fn a_storm_of_connections_is_accepted_and_a_new_one_still_answered() {
    const STORM: usize = 500;
    let server = Fixture::start(config().keepalive(Duration::from_secs(30)));
    let started = Instant::now();
    let mut storm: Vec<Client<TcpStream>> = (0..STORM).map(|_| server.connect()).collect();
    let connected = started.elapsed();
    // A request on a new connection while the storm is accepted and held.
    let probe = Instant::now();
    server.assert_serving();
    let probe = probe.elapsed();
    assert!(probe < Duration::from_secs(5), "{probe:?}");
    // Every storm connection is served.
    for client in &mut storm {
        client.send(b"GET /hello HTTP/1.1\r\nHost: h\r\n\r\n");
    }
    for client in &mut storm {
        let response = client.read_response(false);
        assert_eq!(
            (response.status, response.body.as_slice()),
            (200, &b"hello\n"[..])
        );
    }
    let answered = started.elapsed();
    assert!(answered < Duration::from_secs(30), "{answered:?}");
    // With the storm open and idle, a new connection is answered at once.
    let probe_idle = Instant::now();
    server.assert_serving();
    let probe_idle = probe_idle.elapsed();
    assert!(probe_idle < Duration::from_secs(5), "{probe_idle:?}");
    eprintln!(
        "storm of {STORM}: connected in {connected:?}, all answered after {answered:?}; \
         a new connection answered in {probe:?} during the storm, {probe_idle:?} after"
    );
}

#[test]
fn a_head_over_the_total_bound_gets_431_without_the_app() {
    // Within the per-field limits (100 fields of 8190 bytes), over hyper's read buffer (about
    // 400 KiB): the total head is bounded too.
    let server = Fixture::start(config());
    let mut stream = server.socket();
    let mut request = b"GET /hello HTTP/1.1\r\nHost: h\r\n".to_vec();
    for n in 0..90 {
        request.extend_from_slice(format!("X-Field-{n:02}: {}\r\n", "v".repeat(8000)).as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    // The server may stop reading once it has seen enough.
    let _ = stream.write_all(&request);
    let response = String::from_utf8_lossy(&read_until_closed(&mut stream)).into_owned();
    assert!(response.starts_with("HTTP/1.1 431 "), "{response}");
    assert_eq!(server.calls_dropped(), 0, "the app was not called");
    server.assert_serving();
}

// ---- A short soak (benches/soak.sh is the long one) ----

#[test]
fn a_short_mixed_soak_leaves_no_app_future_or_body_behind() {
    let server = Fixture::start(config());
    let addr = server.addr;
    let until = Instant::now() + Duration::from_secs(4);
    let workers: Vec<_> = (0..4u64)
        .map(|worker| {
            std::thread::spawn(move || {
                let (mut calls, mut endless) = (0usize, 0usize);
                let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ worker;
                let mut next = move || {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state
                };
                while Instant::now() < until {
                    match next() % 5 {
                        // Keep-alive: several requests on one connection.
                        0 => {
                            let mut client = Client::connect(addr);
                            for _ in 0..(1 + next() % 5) {
                                let response = client
                                    .exchange(b"GET /hello HTTP/1.1\r\nHost: h\r\n\r\n");
                                assert_eq!(response.status, 200);
                                calls += 1;
                            }
                        }
                        // An upload whose length the app reports.
                        1 => {
                            let length = next() % (256 * 1024);
                            let mut client = Client::connect(addr);
                            let mut request = format!(
                                "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: {length}\r\n\r\n"
                            )
                            .into_bytes();
                            request.resize(request.len() + length as usize, b'u');
                            let response = client.exchange(&request);
                            assert_eq!(response.status, 200);
                            assert_eq!(response.body, format!("read {length} bytes").as_bytes());
                            calls += 1;
                        }
                        // Vanishing mid-upload.
                        2 => {
                            let mut stream = TcpStream::connect(addr).unwrap();
                            stream
                                .write_all(b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\nabc")
                                .unwrap();
                            calls += 1;
                        }
                        // Vanishing mid-download.
                        3 => {
                            let mut stream = TcpStream::connect(addr).unwrap();
                            stream.set_read_timeout(Some(DEADLINE)).unwrap();
                            stream
                                .write_all(b"GET /endless HTTP/1.1\r\nHost: h\r\n\r\n")
                                .unwrap();
                            let mut buffer = vec![0; 64 * 1024];
                            let mut total = 0;
                            while total < 256 * 1024 {
                                total += stream.read(&mut buffer).unwrap();
                            }
                            calls += 1;
                            endless += 1;
                        }
                        // A request on a new connection.
                        _ => {
                            let mut client = Client::connect(addr);
                            let response = client.exchange(
                                b"GET /hello HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
                            );
                            assert_eq!(response.status, 200);
                            calls += 1;
                        }
                    }
                }
                (calls, endless)
            })
        })
        .collect();
    let (mut calls, mut endless) = (0, 0);
    for worker in workers {
        let (c, e) = worker.join().expect("a soak client failed");
        calls += c;
        endless += e;
    }
    wait_until("every app future is dropped", || {
        server.calls_dropped() == calls
    });
    wait_until("every endless body is dropped", || {
        server.bodies_dropped() == endless
    });
    eprintln!("short soak: {calls} app calls, {endless} downloads abandoned, all dropped");
    server.assert_serving();
}
