//! The reference server (`examples/server`) over real sockets.
//!
//! Each test starts the server in-process on an ephemeral port, on a tokio runtime of its own
//! in a background thread, and talks HTTP/1.1 to it with exact request bytes. Every read has a
//! timeout, so a misbehaving server fails a test instead of hanging it.

#[allow(dead_code)] // The tests host only some of the shared example apps.
#[path = "../examples/apps/mod.rs"]
mod apps;
use rwgi_server as serve;
mod support {
    pub mod raw_http;
}

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use bytes::Bytes;
use rwgi::body::{BoxBody, Empty, Full, StreamBody};
use rwgi::http::header::CONTENT_LENGTH;
use rwgi::http::{HeaderMap, HeaderValue, StatusCode};
use rwgi::input::ReadError;
use rwgi::{App, Environ, Error, Response, StartResponse};
use serde_json::{json, Value};

use apps::echo::Echo;
use apps::hello::Hello;
use serve::{Bind, Builder, Server, ServerHandle};
use support::raw_http::{Client, Response as RawResponse};

/// How long a test waits for the server to start or stop.
const STARTUP: Duration = Duration::from_secs(10);

/// The server under test, stopped (gracefully) when dropped.
struct TestServer {
    addr: Option<SocketAddr>,
    handle: Option<ServerHandle>,
}

impl TestServer {
    /// Serves `app` on `127.0.0.1:0`.
    fn start<A: App + 'static>(app: A, config: Builder) -> Self {
        Self::start_on(Bind::Tcp("127.0.0.1:0".to_owned()), app, config)
    }

    fn start_on<A: App + 'static>(bind: Bind, app: A, config: Builder) -> Self {
        let handle = config
            .bind(bind.to_string())
            .serve(app)
            .expect("bind the test server");
        TestServer {
            addr: handle.local_addr(),
            handle: Some(handle),
        }
    }

    fn addr(&self) -> SocketAddr {
        self.addr.expect("a TCP server")
    }

    fn connect(&self) -> Client<TcpStream> {
        Client::connect(self.addr())
    }

    /// Triggers the graceful shutdown without waiting for it.
    fn begin_shutdown(&mut self) {
        if let Some(handle) = &self.handle {
            handle.begin_shutdown();
        }
    }

    /// Waits until the server stopped and its runtime is gone.
    fn wait_stopped(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.wait_stopped();
        }
    }
}

fn config() -> Builder {
    Server::builder()
        .threads(2)
        .graceful_timeout(Duration::from_secs(5))
}

/// Counts the calls that reach the app it wraps.
struct Counted<A> {
    calls: Arc<AtomicUsize>,
    app: A,
}

impl<A: App> Counted<A> {
    fn new(app: A) -> (Self, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Counted {
            calls: Arc::clone(&calls),
            app,
        };
        (counted, calls)
    }
}

impl<A: App> App for Counted<A> {
    type Body = A::Body;

    async fn call(
        &self,
        environ: Environ,
        start: StartResponse,
    ) -> Result<Response<A::Body>, Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.app.call(environ, start).await
    }
}

/// The chunks `/large` streams: 64 chunks of 64 KiB, 4 MiB in all, in a pattern that
/// catches lost, repeated and reordered bytes.
const LARGE_CHUNKS: usize = 64;
const LARGE_CHUNK: usize = 64 * 1024;

fn large_byte(index: usize) -> u8 {
    (index % 251) as u8
}

/// A pause between body chunks, long enough that the server flushes what came before.
const PAUSE: Duration = Duration::from_millis(50);

/// How long `/slow` takes to answer.
const SLOW: Duration = Duration::from_millis(300);

/// Answers by path with what the example apps do not do: fail, panic, stream, dawdle.
#[derive(Default)]
struct Probe {
    /// Told what the app saw: that `/slow` started, how reading the `/upload` body went.
    events: Option<mpsc::Sender<String>>,
    /// What `/held` waits for before it answers.
    release: Arc<tokio::sync::Notify>,
}

impl Probe {
    fn with_events() -> (Self, mpsc::Receiver<String>) {
        let (events, received) = mpsc::channel();
        let probe = Probe {
            events: Some(events),
            release: Arc::default(),
        };
        (probe, received)
    }

    fn tell(&self, event: String) {
        if let Some(events) = &self.events {
            events.send(event).unwrap();
        }
    }
}

impl App for Probe {
    type Body = BoxBody;

    async fn call(
        &self,
        mut environ: Environ,
        start: StartResponse,
    ) -> Result<Response<BoxBody>, Error> {
        let mut headers = HeaderMap::new();
        let (status, body) = match environ.path_info() {
            "/no-content" => (StatusCode::NO_CONTENT, BoxBody::new(Empty)),
            "/large" => {
                let chunks = (0..LARGE_CHUNKS).map(|n| {
                    let start = n * LARGE_CHUNK;
                    let bytes: Vec<u8> = (start..start + LARGE_CHUNK).map(large_byte).collect();
                    Ok::<_, Error>(Bytes::from(bytes))
                });
                let stream = futures_util::stream::iter(chunks);
                (StatusCode::OK, BoxBody::new(StreamBody::new(stream)))
            }
            "/error" => return Err(Error::msg("probe fails on purpose")),
            "/panic" => panic!("probe panics on purpose"),
            "/fail-after-first" => {
                let items = vec![
                    Ok(Bytes::from_static(b"first")),
                    Err(Error::msg("probe body fails on purpose")),
                ];
                (StatusCode::OK, paced(items))
            }
            "/short" => {
                headers.insert(CONTENT_LENGTH, HeaderValue::from_static("10"));
                (StatusCode::OK, paced(vec![Ok(Bytes::from_static(b"abcd"))]))
            }
            "/upload" => {
                let input = environ.input_mut();
                let event = match input.read_to_end(1 << 20).await {
                    Ok(body) => format!("read {} bytes", body.len()),
                    Err(ReadError::Body(error)) => format!("body failed: {error}"),
                    Err(error) => format!("unexpected: {error}"),
                };
                self.tell(event);
                (StatusCode::NO_CONTENT, BoxBody::new(Empty))
            }
            "/held" => {
                self.tell("held started".to_owned());
                self.release.notified().await;
                (StatusCode::OK, BoxBody::new(Full::new("finally\n")))
            }
            "/slow" => {
                self.tell("slow started".to_owned());
                tokio::time::sleep(SLOW).await;
                (StatusCode::OK, BoxBody::new(Full::new("finally\n")))
            }
            other => return Err(Error::msg(format!("no probe at {other}"))),
        };
        Ok(start.start(status, headers).body(body))
    }
}

/// A body that waits a [`PAUSE`] before each item and before its end.
fn paced(items: Vec<Result<Bytes, Error>>) -> BoxBody {
    let stream = futures_util::stream::unfold(items.into_iter(), |mut items| async move {
        tokio::time::sleep(PAUSE).await;
        items.next().map(|item| (item, items))
    });
    BoxBody::new(StreamBody::new(Box::pin(stream)))
}

fn json_body(response: &RawResponse) -> Value {
    serde_json::from_slice(&response.body).expect("the echo app answers JSON")
}

/// The exact answer of [`Hello`].
fn assert_hello(response: &RawResponse) {
    response.assert_head(
        200,
        "OK",
        &[("content-type", "text/plain"), ("content-length", "14")],
    );
    assert_eq!(response.body, b"Hello, World!\n");
    assert!(response.complete);
}

const GET_HELLO: &[u8] = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";

#[test]
fn keep_alive_serves_two_requests_on_one_connection() {
    let server = TestServer::start(Hello, config());
    let mut client = server.connect();
    assert_hello(&client.exchange(GET_HELLO));
    assert_hello(&client.exchange(b"GET /again?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n"));
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = TestServer::start(Hello, config());
    let mut client = server.connect();
    client.send(&[GET_HELLO, GET_HELLO].concat());
    assert_hello(&client.read_response(false));
    assert_hello(&client.read_response(false));
}

#[test]
fn chunked_request_body_is_streamed_to_the_app() {
    let server = TestServer::start(Echo, config());
    let mut client = server.connect();
    // One million `a`s in a thousand chunks: the FIPS 180-2 long test vector.
    let mut request = b"POST /upload HTTP/1.1\r\nHost: example.com\r\n\
        Transfer-Encoding: chunked\r\n\r\n"
        .to_vec();
    for _ in 0..1000 {
        request.extend_from_slice(b"3e8\r\n");
        request.extend_from_slice(&[b'a'; 1000]);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let response = client.exchange(&request);
    let expected = json!({
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/upload",
        "QUERY_STRING": "",
        "SERVER_NAME": "example.com",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "example.com",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "body_length": 1_000_000,
        "body_sha256": "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
    });
    // The announced length is the length of the answer expected, not of the bytes the client
    // read by that same length.
    let length = serde_json::to_vec(&expected).unwrap().len().to_string();
    assert!(response.complete, "the whole announced body arrived");
    response.assert_head(
        200,
        "OK",
        &[
            ("content-type", "application/json"),
            ("content-length", &length),
        ],
    );
    assert_eq!(json_body(&response), expected);
    assert_connection_carries_on(&mut client);
}

/// The connection is still usable after a request with a body: the body was consumed whole.
fn assert_connection_carries_on(client: &mut Client<TcpStream>) {
    let response = client.exchange(b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(response.status, 200);
    assert_eq!(json_body(&response)["PATH_INFO"], "/next");
}

#[test]
fn content_length_request_body_reaches_the_app() {
    let server = TestServer::start(Echo, config());
    let mut client = server.connect();
    let response =
        client.exchange(b"PUT /doc HTTP/1.1\r\nHost: h:8080\r\nContent-Length: 3\r\n\r\nabc");
    let body = json_body(&response);
    assert_eq!(body["CONTENT_LENGTH"], "3");
    assert_eq!(body["SERVER_PORT"], "8080");
    assert_eq!(body["body_length"], 3);
    // The FIPS 180-2 "abc" test vector.
    assert_eq!(
        body["body_sha256"],
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn a_request_body_cut_short_reaches_the_app_as_an_error() {
    let (probe, events) = Probe::with_events();
    let server = TestServer::start(probe, config());
    let mut client = server.connect();
    let complete =
        client.exchange(b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc");
    assert_eq!(complete.status, 204);
    assert_eq!(events.recv_timeout(STARTUP).unwrap(), "read 3 bytes");

    client.send(b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc");
    client.shutdown_write();
    let event = events.recv_timeout(STARTUP).unwrap();
    assert!(event.starts_with("body failed: "), "REQ-INPUT-2: {event}");
}

#[test]
fn head_announces_the_length_and_sends_no_body() {
    let server = TestServer::start(Hello, config());
    let mut client = server.connect();
    let response = client.exchange(b"HEAD / HTTP/1.1\r\nHost: example.com\r\n\r\n");
    response.assert_head(
        200,
        "OK",
        &[("content-type", "text/plain"), ("content-length", "14")],
    );
    // Had any body bytes followed the head, this response would not parse.
    assert_hello(&client.exchange(GET_HELLO));
}

#[test]
fn no_content_has_neither_body_nor_length() {
    let server = TestServer::start(Probe::default(), config());
    let mut client = server.connect();
    let response = client.exchange(b"DELETE /no-content HTTP/1.1\r\nHost: h\r\n\r\n");
    response.assert_head(204, "No Content", &[]);
    assert!(response.body.is_empty());
    let response = client.exchange(b"GET /no-content HTTP/1.1\r\nHost: h\r\n\r\n");
    response.assert_head(204, "No Content", &[]);
}

#[test]
fn large_streamed_response_arrives_whole_in_chunks() {
    let server = TestServer::start(Probe::default(), config());
    let mut client = server.connect();
    let response = client.exchange(b"GET /large HTTP/1.1\r\nHost: h\r\n\r\n");
    response.assert_head(200, "OK", &[("transfer-encoding", "chunked")]);
    assert!(response.complete, "the last chunk was sent");
    assert_eq!(response.chunks, Some(vec![LARGE_CHUNK; LARGE_CHUNKS]));
    let expected: Vec<u8> = (0..LARGE_CHUNKS * LARGE_CHUNK).map(large_byte).collect();
    assert!(response.body == expected, "the 4 MiB body differs");
    // The connection stays open for the next request.
    let response = client.exchange(b"GET /no-content HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(response.status, 204);
}

#[test]
fn a_root_path_mounts_the_app_and_hides_everything_else() {
    let (app, calls) = Counted::new(Echo);
    let server = TestServer::start(app, config().root_path("/app"));
    let mut client = server.connect();

    let body = json_body(&client.exchange(b"GET /app/x?q HTTP/1.1\r\nHost: h\r\n\r\n"));
    assert_eq!(
        (
            &body["SCRIPT_NAME"],
            &body["PATH_INFO"],
            &body["QUERY_STRING"]
        ),
        (&json!("/app"), &json!("/x"), &json!("q"))
    );
    let body = json_body(&client.exchange(b"GET /app HTTP/1.1\r\nHost: h\r\n\r\n"));
    assert_eq!(
        (&body["SCRIPT_NAME"], &body["PATH_INFO"]),
        (&json!("/app"), &json!(""))
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    for target in ["/other", "/apple", "/%61pp/x"] {
        let request = format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n");
        let response = client.exchange(request.as_bytes());
        response.assert_head(
            404,
            "Not Found",
            &[
                ("content-type", "text/plain; charset=utf-8"),
                ("content-length", "10"),
            ],
        );
        assert_eq!(response.body, b"Not Found\n", "{target}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2, "the app was not called");
}

#[test]
fn percent_encoded_paths_reach_cgi_variables_as_latin1_strings() {
    let server = TestServer::start(Echo, config());
    let mut client = server.connect();
    for (target, path_info) in [
        ("/caf%C3%A9", "/caf\u{c3}\u{a9}"),
        ("/a%2Fb", "/a/b"),
        ("/%FF", "/\u{ff}"),
        ("/plain%20space", "/plain space"),
        // Raw UTF-8, which hyper lets through, maps byte for byte like its encoded form.
        ("/caf\u{e9}", "/caf\u{c3}\u{a9}"),
    ] {
        let request = format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n");
        let body = json_body(&client.exchange(request.as_bytes()));
        assert_eq!(body["PATH_INFO"], path_info, "{target}");
        assert_eq!(body["SCRIPT_NAME"], "", "{target}");
    }
}

#[test]
fn a_raw_invalid_utf8_byte_in_the_target_is_a_bad_request() {
    let (app, calls) = Counted::new(Echo);
    let server = TestServer::start(app, config());
    let mut client = server.connect();
    // Latin-1 `é` sent raw: hyper's URI parser refuses a target that is not UTF-8.
    let response = client.exchange(b"GET /caf\xe9 HTTP/1.1\r\nHost: h\r\n\r\n");
    response.assert_head(
        400,
        "Bad Request",
        &[("connection", "close"), ("content-length", "0")],
    );
    assert!(response.body.is_empty());
    assert!(client.is_closed(), "hyper closes after a malformed request");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[test]
fn repeated_headers_are_joined_with_commas() {
    let server = TestServer::start(Echo, config());
    let mut client = server.connect();
    let response = client.exchange(
        b"GET / HTTP/1.1\r\nHost: h\r\nAccept: text/html\r\nX-Trace: 1\r\nAccept: */*\r\n\r\n",
    );
    let body = json_body(&response);
    assert_eq!(body["HTTP_ACCEPT"], "text/html,*/*");
    assert_eq!(body["HTTP_X_TRACE"], "1");
}

#[test]
fn http11_without_host_is_a_bad_request_and_skips_the_app() {
    let (app, calls) = Counted::new(Hello);
    let server = TestServer::start(app, config());
    let mut client = server.connect();
    let response = client.exchange(b"GET / HTTP/1.1\r\n\r\n");
    response.assert_head(
        400,
        "Bad Request",
        &[
            ("content-type", "text/plain; charset=utf-8"),
            ("content-length", "12"),
        ],
    );
    assert_eq!(response.body, b"Bad Request\n");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    // The request was well framed, so the connection carries on.
    assert_hello(&client.exchange(GET_HELLO));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn http10_without_host_is_served() {
    let server = TestServer::start(Hello, config());
    let mut client = server.connect();
    let response = client.exchange(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!((response.version, response.status), (0, 200));
    assert_eq!(response.body, b"Hello, World!\n");
}

fn assert_internal_server_error(response: &RawResponse) {
    response.assert_head(
        500,
        "Internal Server Error",
        &[
            ("content-type", "text/plain; charset=utf-8"),
            ("content-length", "22"),
        ],
    );
    assert_eq!(response.body, b"Internal Server Error\n");
}

#[test]
fn an_app_error_becomes_a_500() {
    let server = TestServer::start(Probe::default(), config());
    let mut client = server.connect();
    assert_internal_server_error(&client.exchange(b"GET /error HTTP/1.1\r\nHost: h\r\n\r\n"));
    let response = client.exchange(b"GET /no-content HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(response.status, 204, "the connection carries on");
}

#[test]
fn a_panicking_app_becomes_a_500_and_the_server_keeps_serving() {
    let server = TestServer::start(Probe::default(), config());
    let mut client = server.connect();
    assert_internal_server_error(&client.exchange(b"GET /panic HTTP/1.1\r\nHost: h\r\n\r\n"));
    let response = client.exchange(b"GET /no-content HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(response.status, 204, "same connection");
    let response = server
        .connect()
        .exchange(b"GET /no-content HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(response.status, 204, "new connection");
}

#[test]
fn a_body_failing_after_its_first_chunk_aborts_the_connection() {
    let server = TestServer::start(Probe::default(), config());
    let mut client = server.connect();
    let response = client.exchange(b"GET /fail-after-first HTTP/1.1\r\nHost: h\r\n\r\n");
    response.assert_head(200, "OK", &[("transfer-encoding", "chunked")]);
    assert_eq!(response.chunks, Some(vec![5]));
    assert_eq!(response.body, b"first");
    assert!(
        !response.complete,
        "no last chunk: the response must not look complete"
    );
    assert!(client.is_closed());
}

#[test]
fn a_body_shorter_than_its_content_length_aborts_the_connection() {
    let server = TestServer::start(Probe::default(), config());
    let mut client = server.connect();
    let response = client.exchange(b"GET /short HTTP/1.1\r\nHost: h\r\n\r\n");
    response.assert_head(200, "OK", &[("content-length", "10")]);
    assert_eq!(response.body, b"abcd");
    assert!(!response.complete, "closed before Content-Length bytes");
    assert!(client.is_closed());
}

#[test]
fn graceful_shutdown_lets_an_in_flight_response_finish() {
    let (probe, events) = Probe::with_events();
    let release = Arc::clone(&probe.release);
    // A graceful timeout no loaded machine reaches: the answer must go out because the server
    // waits for it, not because it came in time.
    let mut server = TestServer::start(probe, config().graceful_timeout(Duration::from_secs(120)));
    let addr = server.addr();
    let mut idle = server.connect();
    assert_eq!(
        idle.exchange(b"GET /no-content HTTP/1.1\r\nHost: h\r\n\r\n")
            .status,
        204
    );
    let mut busy = server.connect();
    busy.send(b"GET /held HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(events.recv_timeout(STARTUP).unwrap(), "held started");

    server.begin_shutdown();
    // The idle connection closing shows the server is shutting down; only then may the
    // in-flight answer go out, so no timing decides which comes first.
    assert!(idle.is_closed(), "idle connections close at once");
    release.notify_one();
    let response = busy.read_response(false);
    // The answer says `Connection: close` when the connection saw the stop before the answer
    // was ready. It cannot when the whole answer was made in the poll that read the request,
    // still running when the stop came (a loaded machine shows it): then it goes out as it
    // was, and the connection closes after it all the same.
    let connection = response.header("connection");
    assert!(
        matches!(connection, None | Some("close")),
        "connection: {connection:?}"
    );
    let expected: &[(&str, &str)] = match connection {
        Some(_) => &[("connection", "close"), ("content-length", "8")],
        None => &[("content-length", "8")],
    };
    response.assert_head(200, "OK", expected);
    assert_eq!(response.body, b"finally\n");
    assert!(busy.is_closed(), "closed once the response is done");

    server.wait_stopped();
    assert!(
        TcpStream::connect(addr).is_err(),
        "the listener is closed after shutdown"
    );
}

#[test]
fn unix_sockets_are_served_and_cleaned_up() {
    let path = std::env::temp_dir().join(format!("rwgi-server-test-{}.sock", std::process::id()));
    // A socket file left behind by a server that is gone: it must not stop the new one.
    drop(std::os::unix::net::UnixListener::bind(&path).expect("make a stale socket"));
    assert!(path.exists());

    let mut server = TestServer::start_on(Bind::Unix(path.clone()), Echo, config());
    assert_eq!(server.addr, None);
    let mut client = Client::connect_unix(&path);
    let response = client.exchange(b"GET /over-unix HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(response.status, 200);
    let body = json_body(&response);
    assert_eq!(body["PATH_INFO"], "/over-unix");
    assert_eq!(body["SERVER_NAME"], "localhost");
    assert_eq!(body["SERVER_PORT"], "80");
    assert_eq!(body.get("REMOTE_ADDR"), None, "a Unix peer has no address");

    let in_use = config()
        .bind(format!("unix:{}", path.display()))
        .serve(Echo)
        .expect_err("a live socket is not taken over");
    assert_eq!(
        in_use.to_string(),
        format!("cannot bind unix:{} (bind): address in use", path.display())
    );

    drop(client);
    server.wait_stopped();
    assert!(!path.exists(), "the socket file is removed on shutdown");
}

#[test]
fn a_path_that_is_not_a_socket_is_left_alone() {
    let path: PathBuf =
        std::env::temp_dir().join(format!("rwgi-server-test-{}.txt", std::process::id()));
    std::fs::write(&path, "keep me").unwrap();
    let error = config()
        .bind(format!("unix:{}", path.display()))
        .serve(Echo)
        .expect_err("a regular file is not replaced");
    assert_eq!(
        error.to_string(),
        format!(
            "cannot bind unix:{0} (bind): {0} exists and is not a socket",
            path.display()
        )
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn requests_over_the_limits_are_answered_by_the_server() {
    let (app, calls) = Counted::new(Echo);
    let server = TestServer::start(
        app,
        config()
            .limit_request_line(64)
            .limit_request_field_size(40)
            .limit_request_fields(4)
            .limit_request_body(10),
    );
    let long_target = format!("/{}", "a".repeat(64));
    for (request, status, reason) in [
        (
            format!("GET {long_target} HTTP/1.1\r\nHost: h\r\n\r\n"),
            414,
            "URI Too Long",
        ),
        (
            format!(
                "GET / HTTP/1.1\r\nHost: h\r\nX-Long: {}\r\n\r\n",
                "v".repeat(40)
            ),
            431,
            "Request Header Fields Too Large",
        ),
        (
            // The whole head is within the line limit, one field over the field limit.
            format!("GET / HTTP/1.0\r\nX: {}\r\n\r\n", "v".repeat(38)),
            431,
            "Request Header Fields Too Large",
        ),
        (
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world".to_owned(),
            413,
            "Payload Too Large",
        ),
    ] {
        let mut client = server.connect();
        let response = client.exchange(request.as_bytes());
        assert_eq!(
            (response.status, response.reason.as_str()),
            (status, reason)
        );
        assert_eq!(response.header("connection"), Some("close"));
        assert!(client.is_closed());
    }
    // hyper counts the fields itself, and answers 431 too.
    let mut client = server.connect();
    let response = client
        .exchange(b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n");
    assert_eq!(response.status, 431);
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the app was not called");

    // At the limits, the app answers.
    let mut client = server.connect();
    let response =
        client.exchange(b"POST /ok HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789");
    assert_eq!(response.status, 200);
    assert_eq!(json_body(&response)["body_length"], 10);
    // A chunked body over the limit fails to read: the app sees an error, and passing it on
    // gets the client a 413, not a 500 (REQ-INPUT-8).
    let response = client.exchange(
        b"POST /ok HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n012345\r\n6\r\n678901\r\n0\r\n\r\n",
    );
    assert_eq!(response.status, 413);
    assert_eq!(response.header("connection"), Some("close"));
}

#[test]
fn idle_keep_alive_connections_close_after_keepalive() {
    let server = TestServer::start(Hello, config().keepalive(Duration::from_secs(1)));
    let mut client = server.connect();
    assert_hello(&client.exchange(GET_HELLO));
    let started = std::time::Instant::now();
    assert!(client.is_closed(), "closed once idle");
    let idle = started.elapsed();
    assert!(idle <= Duration::from_secs(3), "closed after {idle:?}");

    // Keep-alive off: every response closes its connection.
    let server = TestServer::start(Hello, config().keepalive(Duration::ZERO));
    let mut client = server.connect();
    let response = client.exchange(GET_HELLO);
    assert_eq!(response.header("connection"), Some("close"));
    assert!(client.is_closed());
}

#[test]
fn framing_that_can_smuggle_a_request_is_refused_and_the_connection_closed() {
    // REQ-ENV-13: the app is never called, and what follows the head is never read as a request.
    let (app, calls) = Counted::new(Hello);
    let server = TestServer::start(app, config());
    for (request, status) in [
        (
            &b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"[..],
            501,
        ),
        (
            &b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"[..],
            400,
        ),
    ] {
        let mut client = server.connect();
        let response = client.exchange(request);
        assert_eq!(response.status, status, "{}", String::from_utf8_lossy(request));
        assert_eq!(response.header("connection"), Some("close"));
        assert!(client.is_closed());
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    // The server goes on serving.
    assert_hello(&server.connect().exchange(GET_HELLO));
}

/// The child half of [`every_failure_is_logged_with_its_error`]: serves the probe, prints its
/// address, and stops when its standard input closes. Run only by that test.
#[test]
#[ignore = "the child process of every_failure_is_logged_with_its_error"]
fn logging_server_child() {
    // An embedded server logs through `tracing`; the program chooses where it goes.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let mut server = TestServer::start(Probe::default(), config());
    println!("listening on {}", server.addr());
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
    server.wait_stopped();
}

/// REQ-SRV-10: each failure turned into a `500` or an abort is logged with its error.
#[test]
fn every_failure_is_logged_with_its_error() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};

    let mut child = Command::new(std::env::current_exe().expect("the test binary"))
        .args([
            "--exact",
            "logging_server_child",
            "--ignored",
            "--nocapture",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the child server starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let addr: SocketAddr = loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).expect("the child's output") > 0,
            "no address"
        );
        if let Some(addr) = line.trim().strip_prefix("listening on ") {
            break addr.parse().expect("an address");
        }
    };
    let mut client = Client::connect(addr);
    let response = client.exchange(b"GET /error HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(response.status, 500);
    let mut client = Client::connect(addr);
    let response = client.exchange(b"GET /fail-after-first HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(!response.complete, "the body's failure aborts the response");
    drop(child.stdin.take());
    let mut log = String::new();
    child
        .stderr
        .take()
        .expect("piped")
        .read_to_string(&mut log)
        .expect("the child's log");
    assert!(child.wait().expect("the child ends").success(), "{log}");
    assert!(
        log.contains(": answered 500: app error: probe fails on purpose\n"),
        "the 500 is not logged with its error:\n{log}"
    );
    assert!(
        log.contains(": response aborted after its head was sent: probe body fails on purpose\n"),
        "the abort is not logged with its error:\n{log}"
    );
}

/// REQ-INPUT-7: the example framework bounds the body it buffers, and over the wire a body
/// past the bound is answered `413` before the app reads it.
#[test]
fn a_buffered_body_past_its_bound_is_413_over_the_wire() {
    use apps::framework::{demo_app, ECHO_LIMIT};

    let server = TestServer::start(demo_app(), config());
    let mut client = server.connect();
    let body = vec![b' '; ECHO_LIMIT + 1];
    let mut request = format!(
        "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    assert_eq!(client.exchange(&request).status, 413);
    let mut client = server.connect();
    let response = client.exchange(
        b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]",
    );
    assert_eq!(response.status, 200, "a body within the bound is served");
}
