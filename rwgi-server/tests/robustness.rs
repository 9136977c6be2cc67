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
use rwgi_server::{Builder, InputError, Server, ServerHandle};

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
                        Some(Err(error)) => {
                            break match error.downcast_ref::<InputError>() {
                                Some(error) if error.is_timeout() => {
                                    format!("timeout after {total} bytes: {error}")
                                }
                                Some(error) if error.is_too_large() => {
                                    format!("too large after {total} bytes: {error}")
                                }
                                _ => format!("failed after {total} bytes: {error}"),
                            }
                        }
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
    let started = Instant::now();
    // A byte every 100 ms: each within any per-read bound, the whole head never done in time.
    // Writing fails once the server has closed the connection; stop after 2 s at the latest.
    for byte in b"GET /hello HTTP/1.1\r\nHost: h\r\nX-Slow: ".iter().cycle() {
        if stream.write_all(&[*byte]).is_err() || started.elapsed() > Duration::from_secs(2) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let received = read_until_closed(&mut stream);
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert!(
        received.is_empty() || received.starts_with(b"HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&received)
    );
    assert_eq!(server.calls_dropped(), 0, "the app was not called");
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
        event.starts_with("failed after 1000 bytes: "),
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
