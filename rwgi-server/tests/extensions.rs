//! The extensions of spec §14.2–14.5 on an embedded server, over real sockets: the app's
//! lifespan, the response outcome in each way a response can end, the limits the app can read,
//! an upload refused before it is sent, and the server's capabilities reaching an app behind
//! every middleware of the workspace.

#[path = "../../tests/support/raw_http.rs"]
#[allow(dead_code)] // Not every helper of the shared client is used here.
mod raw_http;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rwgi::app::AppExt;
use rwgi::body::{BoxBody, Full, StreamBody};
use rwgi::http::{HeaderMap, StatusCode};
use rwgi::lifespan::Lifespan;
use rwgi::lint::Lint;
use rwgi::outcome::{Outcome, ResponseFinished};
use rwgi::{App, Environ, Error, Response, StartResponse};
use rwgi_middleware::{AccessLog, ProxyHeaders, UrlMap};
use rwgi_server::{Builder, Server};

use raw_http::Client;

/// What happened, in order, across the server's threads.
#[derive(Clone, Debug, Default)]
struct Events(Arc<Mutex<Vec<String>>>);

impl Events {
    fn push(&self, event: impl Into<String>) {
        self.0.lock().unwrap().push(event.into());
    }

    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// Waits until `done` holds for the events, for at most ten seconds; returns them.
    fn wait_until(&self, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let events = self.all();
            if done(&events) || Instant::now() > deadline {
                return events;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The state the test lifespan hands to every request: a request counter.
#[derive(Clone, Debug)]
struct Counter(Arc<AtomicUsize>);

#[derive(Debug)]
struct Recorded {
    events: Events,
    /// `Some(reason)`: the startup fails with it.
    fails: Option<&'static str>,
}

impl Lifespan for Recorded {
    type State = Counter;

    async fn startup(&self) -> Result<Counter, Error> {
        self.events.push("startup");
        match self.fails {
            Some("panic") => panic!("boom"),
            Some(reason) => Err(Error::msg(reason)),
            None => Ok(Counter(Arc::default())),
        }
    }

    async fn shutdown(&self, counter: Counter) -> Result<(), Error> {
        self.events.push(format!(
            "shutdown after {}",
            counter.0.load(Ordering::SeqCst)
        ));
        Ok(())
    }
}

/// The app under test; every path is one behaviour. Paths ending in `/outcome-...` register
/// an outcome callback that records `path: ending status bytes`.
#[derive(Clone, Debug)]
struct Probe {
    events: Events,
}

impl App for Probe {
    type Body = BoxBody;

    async fn call(
        &self,
        mut environ: Environ,
        start: StartResponse,
    ) -> Result<Response<BoxBody>, Error> {
        let path = environ.path_info().to_owned();
        if let Some(finished) = environ.extensions().get::<ResponseFinished>() {
            let events = self.events.clone();
            let path = path.clone();
            finished.on_finish(move |outcome: &Outcome| {
                events.push(format!(
                    "{path}: {} {:?} {}",
                    outcome.ending(),
                    outcome.status().map(|status| status.as_u16()),
                    outcome.bytes_sent()
                ));
            });
        }
        let body = match path.as_str() {
            "/count" => {
                let counter = environ.extensions().get::<Counter>().expect("the state");
                let count = counter.0.fetch_add(1, Ordering::SeqCst) + 1;
                BoxBody::new(Full::new(count.to_string()))
            }
            "/slow" => {
                self.events.push("slow started");
                tokio::time::sleep(Duration::from_millis(300)).await;
                self.events.push("slow answered");
                BoxBody::new(Full::new("slow"))
            }
            "/complete" => BoxBody::new(Full::new("hello")),
            "/error" => return Err(Error::msg("fails on purpose")),
            "/fail" => BoxBody::new(StreamBody::new(futures_util::stream::iter([
                Ok(Bytes::from_static(b"first")),
                Err(Error::msg("fails on purpose")),
            ]))),
            "/download" => {
                let first =
                    futures_util::stream::iter([Ok::<_, Error>(Bytes::from(vec![b'x'; 1 << 16]))]);
                let never = futures_util::stream::pending();
                BoxBody::new(StreamBody::new(futures_util::StreamExt::chain(
                    first, never,
                )))
            }
            "/never" => {
                self.events.push("never started");
                std::future::pending().await
            }
            "/handle" => {
                let offered = environ.extensions().get::<ResponseFinished>().is_some();
                BoxBody::new(Full::new(if offered { "offered" } else { "absent" }))
            }
            "/limits" => {
                let text = match environ.server().limits() {
                    Some(limits) => format!(
                        "body {:?} line {:?} fields {:?} field {:?} header {:?} read {:?} write {:?} answer {:?}",
                        limits.body(),
                        limits.request_line(),
                        limits.header_fields(),
                        limits.header_field(),
                        limits.header_timeout(),
                        limits.body_timeout(),
                        limits.write_timeout(),
                        limits.request_timeout()
                    ),
                    None => "none".to_owned(),
                };
                BoxBody::new(Full::new(text))
            }
            "/upload" => {
                // The app's own quota, below the server's limit: refused before reading, so
                // the client never sends the body (REQ-LIMIT-2).
                let declared = environ.input().content_length().unwrap_or(u64::MAX);
                if declared > 100 {
                    return Ok(start
                        .start(StatusCode::PAYLOAD_TOO_LARGE, HeaderMap::new())
                        .body(BoxBody::new(Full::new("over the quota"))));
                }
                let body = environ
                    .input_mut()
                    .read_to_end(100)
                    .await
                    .map_err(Error::new)?;
                BoxBody::new(Full::new(body))
            }
            "/capabilities" => {
                let found = [
                    environ.extensions().get::<Counter>().is_some(),
                    environ.extensions().get::<ResponseFinished>().is_some(),
                    environ.server().limits().is_some(),
                ];
                BoxBody::new(Full::new(format!("{found:?}")))
            }
            other => return Err(Error::msg(format!("no probe at {other}"))),
        };
        Ok(start.start(StatusCode::OK, HeaderMap::new()).body(body))
    }
}

/// A server on a free port of loopback, with one runtime thread.
fn builder() -> Builder {
    Server::builder().bind("127.0.0.1:0").threads(1)
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n").into_bytes()
}

fn exchange(address: SocketAddr, path: &str) -> raw_http::Response {
    Client::connect(address).exchange(&get(path))
}

#[test]
fn the_lifespan_starts_before_serving_and_shuts_down_after_the_last_request() {
    let events = Events::default();
    let probe = Probe {
        events: events.clone(),
    };
    let server = builder()
        .lifespan(Recorded {
            events: events.clone(),
            fails: None,
        })
        .serve(probe)
        .unwrap();
    // `serve` returns once the startup succeeded (REQ-LIFE-1).
    assert_eq!(events.all(), ["startup"]);
    let address = server.local_addr().unwrap();
    // Every request gets the one state (REQ-LIFE-2).
    assert_eq!(exchange(address, "/count").body, b"1");
    assert_eq!(exchange(address, "/count").body, b"2");
    // A request in flight when the stop comes finishes before the shutdown (REQ-LIFE-4).
    let slow = std::thread::spawn(move || exchange(address, "/slow"));
    events.wait_until(|events| events.iter().any(|event| event == "slow started"));
    server.shutdown();
    assert_eq!(slow.join().unwrap().body, b"slow");
    assert_eq!(
        events.all(),
        [
            "startup",
            "slow started",
            "slow answered",
            "shutdown after 2"
        ]
    );
}

#[test]
fn a_failing_startup_is_what_serve_returns_and_nothing_is_served() {
    for (fails, expected) in [
        (
            "no database",
            "the app's startup failed: no database".to_owned(),
        ),
        (
            "panic",
            "the app's startup failed: it panicked: boom".to_owned(),
        ),
    ] {
        let events = Events::default();
        let error = builder()
            .lifespan(Recorded {
                events: events.clone(),
                fails: Some(fails),
            })
            .serve(Probe {
                events: events.clone(),
            })
            .unwrap_err();
        assert_eq!(error.to_string(), expected);
        assert_eq!(events.all(), ["startup"], "no request, no shutdown");
    }
}

/// A server offering the response outcome, with a short `request_timeout`.
fn outcome_server(events: &Events) -> rwgi_server::ServerHandle {
    builder()
        .request_timeout(Duration::from_secs(1))
        .response_outcome()
        .serve(Probe {
            events: events.clone(),
        })
        .unwrap()
}

/// The outcome events, waited for until `count` arrived, sorted.
fn outcomes(events: &Events, count: usize) -> Vec<String> {
    let is_outcome = |event: &String| event.contains(": ");
    let mut outcomes: Vec<String> = events
        .wait_until(|events| events.iter().filter(|e| is_outcome(e)).count() >= count)
        .into_iter()
        .filter(is_outcome)
        .collect();
    outcomes.sort();
    outcomes
}

#[test]
fn the_outcome_runs_once_when_the_response_completes_or_the_app_fails() {
    let events = Events::default();
    let server = outcome_server(&events);
    let address = server.local_addr().unwrap();
    let response = exchange(address, "/complete");
    assert_eq!(response.body, b"hello");
    assert_eq!(outcomes(&events, 1), ["/complete: completed Some(200) 5"]);
    // An app's error becomes the server's 500, sent whole.
    assert_eq!(exchange(address, "/error").status, 500);
    server.shutdown();
    // Exactly once each: nothing more after the server stopped.
    assert_eq!(
        outcomes(&events, 2),
        [
            "/complete: completed Some(200) 5",
            "/error: completed Some(500) 22"
        ]
    );
}

/// The one outcome reported for the request `client` makes: after the server stopped, so that
/// a second report would show.
fn the_one_outcome(client: impl FnOnce(SocketAddr, &Events)) -> String {
    let events = Events::default();
    let server = outcome_server(&events);
    client(server.local_addr().unwrap(), &events);
    outcomes(&events, 1);
    server.shutdown();
    let outcomes = outcomes(&events, 1);
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    outcomes.into_iter().next().unwrap_or_default()
}

#[test]
fn the_outcome_runs_once_when_the_client_vanishes_mid_download() {
    let outcome = the_one_outcome(|address, _| {
        let mut client = std::net::TcpStream::connect(address).unwrap();
        std::io::Write::write_all(&mut client, &get("/download")).unwrap();
        // Read the head and some of the body, then go away.
        let mut some = [0u8; 1024];
        std::io::Read::read_exact(&mut client, &mut some).unwrap();
    });
    assert!(
        outcome.starts_with("/download: client-gone Some(200) "),
        "{outcome}"
    );
}

#[test]
fn the_outcome_runs_once_when_the_body_fails_midway() {
    let outcome = the_one_outcome(|address, _| {
        // The connection is aborted (REQ-ERR-3), perhaps before the head went out.
        let mut client = Client::connect(address);
        client.send(&get("/fail"));
        let received = String::from_utf8_lossy(&client.read_to_end()).into_owned();
        assert!(!received.contains("0\r\n\r\n"), "{received}");
    });
    assert_eq!(outcome, "/fail: failed Some(200) 5");
}

#[test]
fn the_outcome_runs_once_when_the_client_leaves_before_the_answer() {
    let outcome = the_one_outcome(|address, events| {
        let mut client = Client::connect(address);
        client.send(&get("/never"));
        events.wait_until(|events| events.iter().any(|event| event == "never started"));
        // The app's future is dropped (REQ-CONC-2); nothing was sent.
    });
    assert_eq!(outcome, "/never: client-gone None 0");
}

#[test]
fn the_outcome_runs_once_when_the_request_times_out() {
    let outcome = the_one_outcome(|address, _| {
        assert_eq!(exchange(address, "/never").status, 503);
    });
    assert_eq!(outcome, "/never: timed-out Some(503) 20");
}

#[test]
fn without_the_outcome_asked_for_no_handle_is_offered() {
    let events = Events::default();
    let server = builder()
        .serve(Probe {
            events: events.clone(),
        })
        .unwrap();
    let address = server.local_addr().unwrap();
    assert_eq!(exchange(address, "/handle").body, b"absent");
    server.shutdown();
    let server = outcome_server(&events);
    assert_eq!(
        exchange(server.local_addr().unwrap(), "/handle").body,
        b"offered"
    );
}

#[test]
fn the_app_reads_the_limits_the_server_enforces() {
    let events = Events::default();
    let server = builder()
        .limit_request_body(1000)
        .limit_request_line(4094)
        .limit_request_fields(50)
        .limit_request_field_size(2000)
        .header_timeout(Duration::from_secs(5))
        .body_timeout(Duration::from_secs(7))
        .write_timeout(Duration::ZERO)
        .serve(Probe { events })
        .unwrap();
    let address = server.local_addr().unwrap();
    let text = String::from_utf8(exchange(address, "/limits").body).unwrap();
    assert_eq!(
        text,
        "body Some(1000) line Some(4094) fields Some(50) field Some(2000) header Some(5s) \
         read Some(7s) write None answer None"
    );
    // The stated body limit is the one enforced: one byte more is refused (REQ-LIMIT-1).
    let over = Client::connect(address)
        .exchange(b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 1001\r\n\r\n");
    assert_eq!(over.status, 413);
    server.shutdown();
}

#[test]
fn an_upload_refused_before_it_is_sent_gets_its_final_status_without_100_continue() {
    let events = Events::default();
    let server = builder()
        .limit_request_body(1000)
        .serve(Probe { events })
        .unwrap();
    let address = server.local_addr().unwrap();
    let expect = |length: usize| {
        format!(
            "POST /upload HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\
             Content-Length: {length}\r\n\r\n"
        )
        .into_bytes()
    };
    // Refused by the app, which never reads: the first status line is the final one, and the
    // connection closes rather than wait for a body the client will not send (REQ-LIMIT-2).
    let mut client = Client::connect(address);
    let refused = client.exchange(&expect(500));
    assert_eq!(refused.status, 413);
    assert_eq!(refused.body, b"over the quota");
    assert!(client.is_closed(), "the unread body is not waited for");
    // Refused by the server, over its own limit, before the app is called.
    let mut client = Client::connect(address);
    let refused = client.exchange(&expect(5000));
    assert_eq!(refused.status, 413);
    assert!(client.is_closed());
    // Accepted: the app reads, so the server sends 100 Continue first, then the answer.
    let mut client = Client::connect(address);
    client.send(&expect(5));
    let interim = client.read_response(false);
    assert_eq!(interim.status, 100);
    client.send(b"hello");
    let answer = client.read_response(false);
    assert_eq!(
        (answer.status, answer.body.as_slice()),
        (200, &b"hello"[..])
    );
    server.shutdown();
}

#[test]
fn the_servers_capabilities_reach_an_app_behind_every_middleware_of_the_workspace() {
    let events = Events::default();
    let probe = Probe {
        events: events.clone(),
    };
    // Two lints around the rest check on every request that the environ's extensions came
    // through (REQ-CAP-2); a violation would panic, and the answer would be a 500.
    let app = UrlMap::new()
        .mount("/mounted", probe.with(Lint::new()))
        .with(ProxyHeaders::new("*".parse().unwrap()))
        .with(AccessLog::with_sink(|_| {}))
        .with(Lint::new());
    let server = builder()
        .lifespan(Recorded {
            events,
            fails: None,
        })
        .response_outcome()
        .serve(app)
        .unwrap();
    let response = exchange(server.local_addr().unwrap(), "/mounted/capabilities");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"[true, true, true]");
    server.shutdown();
}
