//! The hooks of an embedded server (`Server::builder`): each fires once where it should, and
//! `after_request` tells how each response ended, for the app's answers and the server's own.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rwgi::body::{BoxBody, Full, StreamBody};
use rwgi::http::{HeaderMap, StatusCode};
use rwgi::{App, Environ, Error, Response, StartResponse};
use rwgi_server::{Hooks, Outcome, RequestInfo, Server};

#[derive(Debug, Default)]
struct Recorder {
    calls: Mutex<Vec<String>>,
}

impl Recorder {
    fn push(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    /// Waits until `count` calls were recorded.
    fn wait_for(&self, count: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let calls = self.calls();
            if calls.len() >= count || Instant::now() > deadline {
                return calls;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Hooks for Recorder {
    fn on_starting(&self) {
        self.push("on_starting".into());
    }
    fn when_ready(&self, addresses: &[String]) {
        self.push(format!("when_ready {}", addresses.len()));
    }
    fn worker_started(&self, worker_id: u32) {
        self.push(format!("worker_started {worker_id}"));
    }
    fn before_request(&self, request: &RequestInfo<'_>) {
        self.push(format!("before {} {}", request.method(), request.target()));
    }
    fn after_request(&self, request: &RequestInfo<'_>, outcome: &Outcome) {
        assert!(outcome.duration() < Duration::from_secs(10));
        assert!(request.peer().is_some());
        self.push(format!(
            "after {} {} {:?} {:?} {}",
            request.method(),
            request.target(),
            outcome.status().map(|status| status.as_u16()),
            outcome.ending(),
            outcome.bytes_sent()
        ));
    }
    fn worker_exiting(&self, worker_id: u32) {
        self.push(format!("worker_exiting {worker_id}"));
    }
    fn on_exit(&self) {
        self.push("on_exit".into());
    }
}

/// `/ok` answers, `/fail` fails after its first chunk, `/stall` sends a chunk and then waits.
struct Probe;

impl App for Probe {
    type Body = BoxBody;

    async fn call(
        &self,
        environ: Environ,
        start: StartResponse,
    ) -> Result<Response<BoxBody>, Error> {
        let body = match environ.path_info() {
            "/ok" => BoxBody::new(Full::new("ok")),
            "/fail" => BoxBody::new(StreamBody::new(futures_util::stream::iter([
                Ok(Bytes::from_static(b"first")),
                Err(Error::msg("fails on purpose")),
            ]))),
            "/stall" => {
                let first =
                    futures_util::stream::iter([Ok::<_, Error>(Bytes::from_static(b"first"))]);
                let never = futures_util::stream::pending();
                BoxBody::new(StreamBody::new(futures_util::StreamExt::chain(
                    first, never,
                )))
            }
            other => return Err(Error::msg(format!("no probe at {other}"))),
        };
        Ok(start.start(StatusCode::OK, HeaderMap::new()).body(body))
    }
}

/// Sends `request` and reads until the server closes or `read_for` passes.
fn send(address: SocketAddr, request: &str, read_for: Duration) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(read_for)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

#[test]
fn hooks_fire_once_each_and_after_request_tells_how_responses_ended() {
    let recorder = Arc::new(Recorder::default());
    let server = Server::builder()
        .bind("127.0.0.1:0")
        .threads(1)
        .root_path("/app")
        .hooks(recorder.clone())
        .serve(Probe)
        .unwrap();
    let address = server.local_addr().unwrap();
    // Both before `serve` returns; `worker_started` comes from the server's thread.
    assert_eq!(recorder.calls()[..2], ["on_starting", "when_ready 1"]);
    let close = "Host: h\r\nConnection: close\r\n\r\n";
    let long = Duration::from_secs(10);

    let ok = send(address, &format!("GET /app/ok HTTP/1.1\r\n{close}"), long);
    assert!(ok.starts_with("HTTP/1.1 200 OK"), "{ok}");
    let calls = recorder.wait_for(5);
    assert_eq!(
        calls[2..],
        [
            "worker_started 0",
            "before GET /app/ok",
            "after GET /app/ok Some(200) Completed 2"
        ]
    );

    send(address, &format!("GET /app/fail HTTP/1.1\r\n{close}"), long);
    // The client reads the head and the first chunk, then leaves.
    send(
        address,
        &format!("GET /app/stall HTTP/1.1\r\n{close}"),
        Duration::from_millis(300),
    );
    // The server's own answers: no before_request, but an after_request.
    let not_found = send(address, &format!("GET /other HTTP/1.1\r\n{close}"), long);
    assert!(not_found.starts_with("HTTP/1.1 404"), "{not_found}");
    let bad = send(
        address,
        "GET /app/ok HTTP/1.1\r\nConnection: close\r\n\r\n",
        long,
    );
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");

    let calls = recorder.wait_for(11);
    let mut rest = calls[5..].to_vec();
    // The stalled response ends when the server notices the client left, after later ones.
    rest.sort();
    assert_eq!(
        rest,
        [
            "after GET /app/fail Some(200) Failed 5",
            "after GET /app/ok Some(400) Completed 12",
            "after GET /app/stall Some(200) ClientGone 5",
            "after GET /other Some(404) Completed 10",
            "before GET /app/fail",
            "before GET /app/stall",
        ]
    );

    server.shutdown();
    let calls = recorder.calls();
    assert_eq!(calls[11..], ["worker_exiting 0", "on_exit"]);
    for hook in ["on_starting", "when_ready 1", "worker_started 0", "on_exit"] {
        assert_eq!(
            calls.iter().filter(|call| *call == hook).count(),
            1,
            "{hook}"
        );
    }
}

#[test]
fn a_server_without_hooks_serves_the_same() {
    let server = Server::builder()
        .bind("127.0.0.1:0")
        .threads(1)
        .serve(Probe)
        .unwrap();
    let ok = send(
        server.local_addr().unwrap(),
        "GET /ok HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    );
    assert!(ok.ends_with("\r\n\r\nok"), "{ok}");
    server.shutdown();
}
