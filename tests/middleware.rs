//! The example middleware (`examples/apps/access_log.rs`, `examples/apps/url_map.rs`) driven
//! in-process, alone and stacked.

// The test uses the framework, the access log and the URL map; the other example apps are
// dead code here.
#[allow(dead_code)]
#[path = "../examples/apps/mod.rs"]
mod apps;

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use apps::framework::demo_app;
use bytes::Bytes;
use futures_core::Stream;
use futures_util::task::noop_waker_ref;
use rwgi::app::app_fn;
use rwgi::body::{Body, Full};
use rwgi::http::{HeaderMap, Method, StatusCode};
use rwgi::{App, AppExt, Environ, Error, StartResponse};
use rwgi_conformance::test_client::{block_on, TestRequest, TestResponse};
use rwgi_middleware::access_log::{AccessLog, Outcome, Record};
use rwgi_middleware::url_map::UrlMap;

/// An access log that keeps its records, with their durations zeroed so they compare exactly.
fn recording() -> (AccessLog, Arc<Mutex<Vec<Record>>>) {
    let records = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&records);
    let log = AccessLog::with_sink(move |record: &Record| {
        let record = Record {
            duration: Duration::ZERO,
            ..record.clone()
        };
        sink.lock().unwrap().push(record);
    });
    (log, records)
}

fn record(method: Method, target: &str, status: u16, bytes: u64, outcome: Outcome) -> Record {
    Record {
        method,
        target: target.to_owned(),
        status: StatusCode::from_u16(status).unwrap(),
        bytes_sent: bytes,
        duration: Duration::ZERO,
        outcome,
    }
}

#[derive(Default)]
struct GateState {
    chunks: VecDeque<Result<Bytes, Error>>,
    ended: bool,
    dropped: bool,
    waker: Option<Waker>,
}

/// The test's end of a body that yields exactly what the test releases, when it releases it.
#[derive(Clone, Default)]
struct Gate(Arc<Mutex<GateState>>);

impl Gate {
    fn release(&self, chunk: Result<Bytes, Error>) {
        let mut state = self.0.lock().unwrap();
        state.chunks.push_back(chunk);
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
    }

    fn end(&self) {
        let mut state = self.0.lock().unwrap();
        state.ended = true;
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
    }

    fn body_dropped(&self) -> bool {
        self.0.lock().unwrap().dropped
    }

    /// An app answering `200` with a body fed through this gate.
    fn app(&self) -> impl App {
        let gate = self.clone();
        app_fn(move |_: Environ, start: StartResponse| {
            let body = GateBody(gate.clone());
            async move { Ok(start.start(StatusCode::OK, HeaderMap::new()).body(body)) }
        })
    }
}

struct GateBody(Gate);

impl Stream for GateBody {
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut state = self.0 .0.lock().unwrap();
        if let Some(chunk) = state.chunks.pop_front() {
            return Poll::Ready(Some(chunk));
        }
        if state.ended {
            return Poll::Ready(None);
        }
        state.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Body for GateBody {}

impl Drop for GateBody {
    fn drop(&mut self) {
        self.0 .0.lock().unwrap().dropped = true;
    }
}

fn poll<B: Body + Unpin>(body: &mut B) -> Poll<Option<Result<Bytes, Error>>> {
    Pin::new(body).poll_next(&mut Context::from_waker(noop_waker_ref()))
}

#[test]
fn access_log_records_status_and_bytes_once() {
    let (log, records) = recording();
    let app = demo_app().with(log);

    let response = block_on(TestRequest::get("/hello/x?lang=en").send(&app));
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text(), r#"{"greeting":"Hello, x!"}"#);
    let expected = record(Method::GET, "/hello/x?lang=en", 200, 24, Outcome::Complete);
    assert_eq!(*records.lock().unwrap(), [expected]);

    let response = block_on(TestRequest::get("/nope").send(&app));
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let expected = record(Method::GET, "/nope", 404, 21, Outcome::Complete);
    assert_eq!(records.lock().unwrap()[1..], [expected]);
}

#[test]
fn access_log_keeps_the_inner_content_length() {
    let (log, _) = recording();
    let app = demo_app().with(log);
    let environ = TestRequest::get("/users/1").into_environ();
    let response = block_on(app.call(environ, StartResponse::new())).unwrap();
    let json = r#"{"id":1,"links":{"self":"/users/1"},"name":"user 1"}"#;
    assert_eq!(response.body().content_length(), Some(json.len() as u64));

    let (log, _) = recording();
    let environ = TestRequest::get("/").into_environ();
    let response = block_on(
        Gate::default()
            .app()
            .with(log)
            .call(environ, StartResponse::new()),
    );
    assert_eq!(response.unwrap().body().content_length(), None);
}

#[test]
fn access_log_counts_bodiless_answers_as_complete() {
    let (log, records) = recording();
    let app = demo_app().with(log);

    let response = block_on(TestRequest::head("/hello/x").send(&app));
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.body().is_empty());
    let response = block_on(TestRequest::new(Method::DELETE, "/users/3").send(&app));
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    assert_eq!(
        *records.lock().unwrap(),
        [
            record(Method::HEAD, "/hello/x", 200, 0, Outcome::Complete),
            record(Method::DELETE, "/users/3", 204, 0, Outcome::Complete),
        ]
    );
}

#[test]
fn access_log_streams_chunk_by_chunk() {
    let gate = Gate::default();
    let (log, records) = recording();
    let app = gate.app().with(log);
    let environ = TestRequest::get("/stream").into_environ();
    let response = block_on(app.call(environ, StartResponse::new())).unwrap();
    let (_, _, mut body) = response.into_parts();

    // Each chunk comes out as soon as the inner body yields it (REQ-MW-2).
    assert!(poll(&mut body).is_pending());
    gate.release(Ok(Bytes::from("first ")));
    assert!(matches!(poll(&mut body), Poll::Ready(Some(Ok(chunk))) if chunk == "first "));
    assert!(poll(&mut body).is_pending());
    gate.release(Ok(Bytes::from("second")));
    assert!(matches!(poll(&mut body), Poll::Ready(Some(Ok(chunk))) if chunk == "second"));
    assert!(records.lock().unwrap().is_empty(), "not over yet");

    gate.end();
    assert!(matches!(poll(&mut body), Poll::Ready(None)));
    let expected = record(Method::GET, "/stream", 200, 12, Outcome::Complete);
    assert_eq!(*records.lock().unwrap(), [expected]);

    drop(body);
    assert!(gate.body_dropped());
    assert_eq!(records.lock().unwrap().len(), 1, "recorded once");
}

#[test]
fn access_log_records_a_body_dropped_early() {
    let gate = Gate::default();
    let durations = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&durations);
    let log = AccessLog::with_sink(move |record: &Record| {
        sink.lock()
            .unwrap()
            .push((record.outcome, record.bytes_sent, record.duration));
    });
    let app = gate.app().with(log);
    let environ = TestRequest::get("/").into_environ();
    let response = block_on(app.call(environ, StartResponse::new())).unwrap();
    let (_, _, mut body) = response.into_parts();
    gate.release(Ok(Bytes::from("partial")));
    assert!(poll(&mut body).is_ready());
    std::thread::sleep(Duration::from_millis(20));

    // The client went away: the server drops the body (REQ-SRV-8).
    drop(body);
    assert!(
        gate.body_dropped(),
        "the inner body is dropped too (REQ-MW-4)"
    );
    let durations = durations.lock().unwrap();
    assert_eq!(durations.len(), 1);
    let (outcome, bytes, duration) = durations[0];
    assert_eq!((outcome, bytes), (Outcome::Dropped, 7));
    assert!(duration >= Duration::from_millis(20), "timed to the drop");
}

#[test]
fn access_log_records_failures() {
    let gate = Gate::default();
    let (log, records) = recording();
    let app = gate.app().with(log);
    gate.release(Ok(Bytes::from("ab")));
    gate.release(Err(Error::msg("disk gone")));
    let response = block_on(TestRequest::get("/f").send(&app));
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.body(), "ab");
    assert_eq!(response.body_error(), Some("disk gone"));

    let failing = app_fn(|_: Environ, _: StartResponse| async {
        Err::<rwgi::Response<Full>, _>(Error::msg("no answer"))
    });
    let response = block_on(TestRequest::post("/g").send(&failing.with(recording_into(&records))));
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(response.failure(), Some("app error: no answer"));

    assert_eq!(
        *records.lock().unwrap(),
        [
            record(Method::GET, "/f", 200, 2, Outcome::Failed),
            record(Method::POST, "/g", 500, 0, Outcome::Failed),
        ]
    );
}

/// With a server's response outcome in the environ (spec §14.4), the access log records what
/// the server reports, once: here a request the server gave up waiting for, and one whose
/// client left before the app answered.
#[test]
fn access_log_records_the_servers_outcome_when_offered() {
    use rwgi::outcome::{Ending, Finisher, Outcome as ServerOutcome};

    let (log, records) = recording();
    let app = app_fn(|_: Environ, start: StartResponse| async move {
        Ok(start
            .start(StatusCode::OK, HeaderMap::new())
            .body(Full::new("hello")))
    })
    .with(log);
    let (finisher, finished) = Finisher::pair();
    let mut environ = TestRequest::get("/slow").into_environ();
    environ.extensions_mut().insert(finished);
    let response = block_on(app.call(environ, StartResponse::new())).unwrap();
    // The body ends and is dropped: the server's word is still to come.
    drop(response);
    assert!(records.lock().unwrap().is_empty());
    finisher.finish(ServerOutcome::new(
        Ending::TimedOut,
        Some(StatusCode::SERVICE_UNAVAILABLE),
        20,
    ));

    // The app is still waiting when the client leaves: its future is dropped.
    let waiting = app_fn(|_: Environ, _: StartResponse| async {
        std::future::pending::<Result<rwgi::Response<Full>, Error>>().await
    })
    .with(recording_into(&records));
    let (finisher, finished) = Finisher::pair();
    let mut environ = TestRequest::get("/gone").into_environ();
    environ.extensions_mut().insert(finished);
    let mut call = Box::pin(waiting.call(environ, StartResponse::new()));
    let mut cx = Context::from_waker(noop_waker_ref());
    assert!(std::future::Future::poll(call.as_mut(), &mut cx).is_pending());
    drop(call);
    finisher.finish(ServerOutcome::new(Ending::ClientGone, None, 0));

    assert_eq!(
        *records.lock().unwrap(),
        [
            record(Method::GET, "/slow", 503, 20, Outcome::Failed),
            record(Method::GET, "/gone", 499, 0, Outcome::Dropped),
        ]
    );
}

/// A second access log writing into the same list as one from [`recording`].
fn recording_into(records: &Arc<Mutex<Vec<Record>>>) -> AccessLog {
    let sink = Arc::clone(records);
    AccessLog::with_sink(move |record: &Record| {
        let record = Record {
            duration: Duration::ZERO,
            ..record.clone()
        };
        sink.lock().unwrap().push(record);
    })
}

#[test]
fn record_display_is_one_line() {
    let mut record = record(Method::GET, "/a?b", 200, 13, Outcome::Complete);
    record.duration = Duration::from_micros(1250);
    assert_eq!(record.to_string(), "GET /a?b 200 13 1.250ms");
    record.outcome = Outcome::Dropped;
    assert_eq!(record.to_string(), "GET /a?b 200 13 1.250ms dropped");
    record.outcome = Outcome::Failed;
    assert_eq!(record.to_string(), "GET /a?b 200 13 1.250ms failed");
}

/// An app that answers with where it was mounted: `script_name|path_info|query`.
fn whereami(name: &'static str) -> impl App {
    app_fn(move |environ: Environ, start: StartResponse| {
        let text = format!(
            "{name}:{}|{}|{}",
            environ.script_name(),
            environ.path_info(),
            environ.query_string()
        );
        async move {
            Ok(start
                .start(StatusCode::OK, HeaderMap::new())
                .body(Full::new(text)))
        }
    })
}

fn assert_not_found(response: &TestResponse) {
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.headers().len(), 2);
    assert_eq!(
        response.header("content-length"),
        Some(&*response.body().len().to_string())
    );
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(response.text(), "Not Found\n");
}

#[test]
fn url_map_picks_the_longest_prefix_at_segment_boundaries() {
    let map = UrlMap::new()
        .mount("/api", whereami("api"))
        .mount("/api/v1", whereami("v1"));
    let get = |target: &str| block_on(TestRequest::get(target).send(&map));

    assert_eq!(get("/api/v1/users?x=1").text(), "v1:/api/v1|/users|x=1");
    assert_eq!(get("/api/v1").text(), "v1:/api/v1||");
    assert_eq!(get("/api/v10").text(), "api:/api|/v10|");
    assert_eq!(get("/api/").text(), "api:/api|/|");
    assert_eq!(get("/api").text(), "api:/api||");
    assert_eq!(get("/api/v1%2Fx").text(), "api:/api|/v1%2Fx|");
    assert_not_found(&get("/apix"));
    assert_not_found(&get("/%61pi/v1"));
    assert_not_found(&get("/API"));
    assert_not_found(&get("/"));
}

#[test]
fn url_map_root_mount_takes_the_rest_and_remounting_replaces() {
    let map = UrlMap::new()
        .mount("", whereami("root"))
        .mount("/a", whereami("old"))
        .mount("/a", whereami("new"));
    let get = |target: &str| block_on(TestRequest::get(target).send(&map)).text();
    assert_eq!(get("/a/b"), "new:/a|/b|");
    assert_eq!(get("/ab"), "root:|/ab|");
    assert_eq!(get("/"), "root:|/|");
}

#[test]
fn url_map_composes_with_an_outer_mount() {
    let map = UrlMap::new().mount("/api", whereami("api"));
    let response = block_on(TestRequest::get("/site/api/x").mount("/site").send(&map));
    assert_eq!(response.text(), "api:/site/api|/x|");
    let response = block_on(TestRequest::get("/api/x").mount("/api").send(&map));
    assert_not_found(&response);
}

#[test]
#[should_panic(expected = "REQ-PATH-5")]
fn url_map_refuses_a_prefix_ending_with_a_slash() {
    let _ = UrlMap::new().mount("/api/", whereami("api"));
}

#[test]
fn middleware_stacks_with_app_ext_with() {
    let (inner, records) = recording();
    let outer = recording_into(&records);
    let app = UrlMap::new()
        .mount("/api", demo_app())
        .with(inner)
        .with(outer);

    let response = block_on(TestRequest::get("/api/users/3").send(&app));
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.text(),
        r#"{"id":3,"links":{"self":"/api/users/3"},"name":"user 3"}"#
    );
    // Each log sees the whole target; the inner body ends first, so its record comes first.
    let expected = record(Method::GET, "/api/users/3", 200, 56, Outcome::Complete);
    assert_eq!(*records.lock().unwrap(), [expected.clone(), expected]);

    let response = block_on(TestRequest::get("/other").send(&app));
    assert_not_found(&response);
    assert_eq!(records.lock().unwrap().len(), 4);
    let expected = record(Method::GET, "/other", 404, 10, Outcome::Complete);
    assert_eq!(records.lock().unwrap()[2..], [expected.clone(), expected]);
}
