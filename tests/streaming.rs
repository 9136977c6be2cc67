//! The streaming extensions on the reference server, over real sockets: disconnect
//! notification (§14.6), flushing the head (§14.7) and trailers both ways (§14.8), with the
//! example apps `events` and `checksum`.

#[allow(dead_code)] // The tests host only some of the shared example apps.
#[path = "../examples/apps/mod.rs"]
mod apps;
#[allow(dead_code)] // The tests use only part of the raw client.
mod support {
    pub mod raw_http;
}

use std::net::TcpStream;
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use rwgi::app::app_fn;
use rwgi::body::{Empty, Full};
use rwgi::disconnect::Disconnect;
use rwgi::http::{HeaderMap, HeaderName, StatusCode};
use rwgi::trailers::WithTrailers;
use rwgi::{App, Environ, StartResponse};
use rwgi_server::{Server, ServerHandle};

use apps::checksum::Checksum;
use apps::events::Events;
use support::raw_http::Client;

/// The bound within which an app must learn that its client went away: generous, since the
/// machine may be busy; the server notices in milliseconds.
const NOTICE: Duration = Duration::from_secs(5);

fn serve<A: App + 'static>(app: A) -> ServerHandle {
    Server::builder()
        .bind("127.0.0.1:0")
        .threads(2)
        .graceful_timeout(Duration::from_millis(200))
        .serve(app)
        .expect("the server starts")
}

fn connect(server: &ServerHandle) -> Client<TcpStream> {
    Client::connect(server.local_addr().expect("a TCP server"))
}

/// Waits up to [`NOTICE`] for `done`.
fn within_notice(done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + NOTICE;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    done()
}

#[test]
fn an_event_stream_opens_at_once_and_its_app_learns_of_the_disconnect() {
    // A period far longer than any read timeout: only a flushed head can arrive in time.
    let events = Events::new(Duration::from_secs(3600));
    let server = serve(events.clone());
    let mut client = connect(&server);
    client.send(b"GET /events HTTP/1.1\r\nHost: h\r\n\r\n");
    let head = client.read_head_only();
    assert_eq!(head.status, 200, "REQ-INTERIM-3");
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    assert_eq!(head.header("transfer-encoding"), Some("chunked"));
    assert_eq!(
        events.departures(),
        0,
        "REQ-DISC-2: the client is still there"
    );
    drop(client);
    assert!(
        within_notice(|| events.departures() == 1),
        "REQ-DISC-1: the producer did not learn of the departure within {NOTICE:?}"
    );
    server.shutdown();
}

#[test]
fn events_arrive_in_order() {
    let server = serve(Events::new(Duration::from_millis(20)));
    let mut client = connect(&server);
    client.send(b"GET /events HTTP/1.1\r\nHost: h\r\n\r\n");
    client.read_head_only();
    let mut received = Vec::new();
    while !String::from_utf8_lossy(&received).contains("data: 3\n\n") {
        received.extend(client.read_some());
    }
    let text = String::from_utf8_lossy(&received);
    let one = text.find("data: 1\n").expect("the first event");
    let two = text.find("data: 2\n").expect("the second event");
    assert!(one < two, "{text}");
    server.shutdown();
}

/// An app that hands its request's `Disconnect` (if offered) to the test, then answers at once
/// or never.
fn watched(handles: mpsc::Sender<Option<Disconnect>>, answer_at_once: bool) -> impl App {
    let handles = Mutex::new(handles);
    app_fn(move |environ: Environ, start: StartResponse| {
        let disconnect = environ.extension::<Disconnect>().cloned();
        let _ = handles.lock().unwrap().send(disconnect);
        async move {
            if !answer_at_once {
                std::future::pending::<()>().await;
            }
            Ok(start
                .start(StatusCode::OK, HeaderMap::new())
                .body(Full::new("done")))
        }
    })
}

#[test]
fn a_client_gone_while_the_app_works_completes_gone() {
    let (handles, received) = mpsc::channel();
    let server = serve(watched(handles, false));
    let mut client = connect(&server);
    client.send(b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\n");
    let disconnect = received
        .recv_timeout(NOTICE)
        .expect("the app was called")
        .expect("REQ-DISC-1: the server offers a Disconnect");
    assert!(
        !disconnect.is_gone(),
        "REQ-DISC-2: the client is still there"
    );
    drop(client);
    // Awaited from a thread of its own, as a task the app started would.
    let waiter = std::thread::spawn(move || futures_executor::block_on(disconnect.gone()));
    assert!(
        within_notice(|| waiter.is_finished()),
        "REQ-DISC-1: gone() did not complete within {NOTICE:?}"
    );
    server.shutdown();
}

#[test]
fn a_complete_response_is_no_departure() {
    let (handles, received) = mpsc::channel();
    let server = serve(watched(handles, true));
    let mut client = connect(&server);
    let response = client.exchange(b"GET /quick HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(response.body, b"done");
    let disconnect = received.recv_timeout(NOTICE).unwrap().unwrap();
    // The next request on the connection is answered too: nothing cut the first one short.
    let response = client.exchange(b"GET /again HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(response.body, b"done");
    assert!(!disconnect.is_gone(), "REQ-DISC-2");
    server.shutdown();
}

const UPLOAD_SHA256: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

#[test]
fn response_trailers_follow_a_chunked_body_when_the_client_takes_them() {
    let server = serve(Checksum);
    let mut client = connect(&server);
    let response = client
        .exchange(b"POST /sum HTTP/1.1\r\nHost: h\r\nTE: trailers\r\nContent-Length: 3\r\n\r\nabc");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"abc");
    assert!(response.complete);
    assert_eq!(response.header("transfer-encoding"), Some("chunked"));
    assert_eq!(
        response.header("trailer"),
        Some("x-sha256, x-upload-checksum")
    );
    assert_eq!(
        response.trailers,
        [("x-sha256".to_owned(), UPLOAD_SHA256.as_bytes().to_vec())],
        "REQ-TRAIL-3"
    );

    // Without `TE: trailers`, HTTP/1.1 carries none; the body is whole all the same.
    let response =
        client.exchange(b"POST /sum HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc");
    assert_eq!(response.body, b"abc");
    assert!(response.complete);
    assert!(response.trailers.is_empty(), "{:?}", response.trailers);
    server.shutdown();
}

#[test]
fn request_trailers_reach_the_app_after_its_input() {
    let server = serve(Checksum);
    let mut client = connect(&server);
    let response = client.exchange(
        b"POST /sum HTTP/1.1\r\nHost: h\r\nTE: trailers\r\nTransfer-Encoding: chunked\r\n\r\n\
          3\r\nabc\r\n0\r\nx-checksum: 42\r\n\r\n",
    );
    assert_eq!(response.body, b"abc");
    assert_eq!(
        response.trailers,
        [
            ("x-sha256".to_owned(), UPLOAD_SHA256.as_bytes().to_vec()),
            ("x-upload-checksum".to_owned(), b"42".to_vec()),
        ],
        "REQ-TRAIL-4"
    );
    server.shutdown();
}

#[test]
fn a_trailer_that_may_not_be_one_is_a_500() {
    let app = app_fn(|_: Environ, start: StartResponse| async move {
        let names = vec![HeaderName::from_static("content-type")];
        let body = WithTrailers::new(Empty, names, Box::pin(async { Ok(HeaderMap::new()) }));
        Ok(start.start(StatusCode::OK, HeaderMap::new()).body(body))
    });
    let server = serve(app);
    let response = connect(&server).exchange(b"GET / HTTP/1.1\r\nHost: h\r\nTE: trailers\r\n\r\n");
    assert_eq!(response.status, 500, "REQ-TRAIL-2");
    server.shutdown();
}
