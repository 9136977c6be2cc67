//! The lint middleware on live traffic: each rule it checks is caught with its requirement ID,
//! toward the app behind it and toward the "server" in front of it (hand-made environs and
//! request bodies that lie), in hook mode and in panic mode; and clean traffic raises nothing.

#[path = "support/answers.rs"]
mod answers;

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use answers::{chunks, one_header, ShortRange, TempFile};
use bytes::Bytes;
use futures_core::Stream;
use futures_util::StreamExt;
use rwgi::app::{app_fn, AppExt};
use rwgi::body::{Body, BoxBody, Empty, Full, StreamBody};
use rwgi::environ::{ConnectionInfo, Environ};
use rwgi::file::{FileBody, FileRange};
use rwgi::http::{header, HeaderMap, Method, Request, StatusCode, Version};
use rwgi::lint::{Lint, RULES};
use rwgi::upgrade::{offer, Acceptance, Upgrade};
use rwgi::violation::Violation;
use rwgi::{App, Error, Input, Response, StartResponse};
use rwgi_conformance::test_client::{block_on, TestRequest, TestResponse};

/// A lint in hook mode and what it collected.
fn collecting() -> (Lint, Arc<Mutex<Vec<Violation>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let lint = Lint::with_hook(move |violation| log.lock().unwrap().push(violation.clone()));
    (lint, seen)
}

/// Sends `request` through a collecting lint around `app`; the violations, as `ID: message`.
fn violations<A: App>(app: A, request: TestRequest) -> Vec<String> {
    let (lint, seen) = collecting();
    let linted = app.with(lint);
    block_on(request.send(&linted));
    let seen = seen.lock().unwrap();
    seen.iter().map(ToString::to_string).collect()
}

fn ok<B: Body>(start: StartResponse, headers: HeaderMap, body: B) -> Result<Response<B>, Error> {
    Ok(start.start(StatusCode::OK, headers).body(body))
}

/// Reads the whole request body, then answers with its length.
fn reader() -> impl App {
    app_fn(|mut environ: Environ, start: StartResponse| async move {
        let mut length = 0;
        while let Some(chunk) = environ.input_mut().chunk().await {
            match chunk {
                Ok(chunk) => length += chunk.len(),
                Err(_) => break,
            }
        }
        ok(start, HeaderMap::new(), Full::new(length.to_string()))
    })
}

// ---- toward the app -------------------------------------------------------------------------

#[test]
fn informational_status_is_resp_1() {
    let app = app_fn(|_, start: StartResponse| async move {
        Ok(start
            .start(StatusCode::EARLY_HINTS, HeaderMap::new())
            .body(Empty))
    });
    assert_eq!(
        violations(app, TestRequest::get("/")),
        ["REQ-RESP-1: the final status must not be 1xx, got 103"]
    );
}

#[test]
fn hop_by_hop_header_is_resp_2() {
    let app = app_fn(|_, start: StartResponse| async move {
        ok(
            start,
            one_header(header::TRANSFER_ENCODING, "chunked"),
            Full::new("x"),
        )
    });
    assert_eq!(
        violations(app, TestRequest::get("/")),
        ["REQ-RESP-2: apps must not set the hop-by-hop header `transfer-encoding`"]
    );
}

#[test]
fn malformed_content_length_is_resp_3_and_reported_once() {
    let app = app_fn(|_, start: StartResponse| async move {
        ok(
            start,
            one_header(header::CONTENT_LENGTH, "0x2"),
            chunks(&["hi"]),
        )
    });
    assert_eq!(
        violations(app, TestRequest::get("/")),
        ["REQ-RESP-3: Content-Length must be a decimal number, got \"0x2\""]
    );
}

#[test]
fn content_length_on_204_is_resp_4() {
    let app = app_fn(|_, start: StartResponse| async move {
        Ok(start
            .start(
                StatusCode::NO_CONTENT,
                one_header(header::CONTENT_LENGTH, "0"),
            )
            .body(Empty))
    });
    assert_eq!(
        violations(app, TestRequest::get("/")),
        ["REQ-RESP-4: a 204 response must not have a Content-Length"]
    );
}

#[test]
fn streamed_body_longer_than_content_length_is_resp_5_once() {
    let app = app_fn(|_, start: StartResponse| async move {
        ok(
            start,
            one_header(header::CONTENT_LENGTH, "3"),
            chunks(&["ab", "cd", "ef"]),
        )
    });
    assert_eq!(
        violations(app, TestRequest::get("/")),
        ["REQ-RESP-5: the body yielded 4 bytes, more than the 3 of its Content-Length"]
    );
}

#[test]
fn streamed_body_shorter_than_content_length_is_resp_5() {
    let app = app_fn(|_, start: StartResponse| async move {
        ok(
            start,
            one_header(header::CONTENT_LENGTH, "9"),
            chunks(&["ab", "cd"]),
        )
    });
    assert_eq!(
        violations(app, TestRequest::get("/")),
        ["REQ-RESP-5: the body ended after 4 bytes, 5 short of the 9 of its Content-Length"]
    );
}

#[test]
fn head_and_304_may_describe_the_get_answer() {
    let app = app_fn(|environ: Environ, start: StartResponse| async move {
        let status = match environ.path_info() {
            "/cached" => StatusCode::NOT_MODIFIED,
            _ => StatusCode::OK,
        };
        Ok(start
            .start(status, one_header(header::CONTENT_LENGTH, "1000"))
            .body(Empty))
    });
    let linted = (&app).with(Lint::new());
    let head = block_on(TestRequest::head("/").send(&linted));
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.header("content-length"), Some("1000"));
    let cached = block_on(TestRequest::get("/cached").send(&linted));
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(cached.body(), "");

    // Even a caller that polls those bodies to their end hears nothing about the length.
    let (lint, seen) = collecting();
    let linted = app.with(lint);
    for request in [TestRequest::head("/"), TestRequest::get("/cached")] {
        let environ = request.into_environ();
        block_on(async {
            let response = linted.call(environ, StartResponse::new()).await.unwrap();
            let (_, _, mut body) = response.into_parts();
            assert!(body.next().await.is_none());
        });
    }
    assert!(
        seen.lock().unwrap().is_empty(),
        "{:?}",
        seen.lock().unwrap()
    );
}

#[test]
fn body_for_304_is_resp_6_on_the_head() {
    let app = app_fn(|_, start: StartResponse| async move {
        Ok(start
            .start(StatusCode::NOT_MODIFIED, HeaderMap::new())
            .body(Full::new("stale")))
    });
    assert_eq!(
        violations(app, TestRequest::get("/")),
        ["REQ-RESP-6: a 304 response must have an empty body, got one of 5 bytes"]
    );
}

#[test]
fn body_for_205_is_resp_6() {
    let app = app_fn(|_, start: StartResponse| async move {
        Ok(start
            .start(StatusCode::RESET_CONTENT, HeaderMap::new())
            .body(Full::new("form")))
    });
    assert_eq!(
        violations(app, TestRequest::get("/")),
        ["REQ-RESP-6: a 205 response must have an empty body, got one of 4 bytes"]
    );
}

#[test]
fn streamed_bytes_for_204_are_resp_6_and_empty_chunks_are_not() {
    let app = app_fn(|environ: Environ, start: StartResponse| async move {
        let parts: &[&str] = match environ.path_info() {
            "/bytes" => &["", "x"],
            _ => &[""],
        };
        Ok(start
            .start(StatusCode::NO_CONTENT, HeaderMap::new())
            .body(chunks(parts)))
    });
    assert_eq!(
        serve(app, TestRequest::get("/bytes").into_environ()),
        ["REQ-RESP-6: a 204 response must have an empty body, got a chunk of 1 bytes"]
    );
    assert_eq!(
        serve(app, TestRequest::get("/empty").into_environ()),
        Vec::<String>::new()
    );
}

#[test]
fn the_body_debug_form_shows_the_count() {
    let app = app_fn(|_, start: StartResponse| async move {
        ok(
            start,
            one_header(header::CONTENT_LENGTH, "4"),
            Full::new("four"),
        )
    });
    let linted = app.with(Lint::new());
    block_on(async {
        let response = linted
            .call(TestRequest::get("/").into_environ(), StartResponse::new())
            .await
            .unwrap();
        let (_, _, mut body) = response.into_parts();
        assert_eq!(
            format!("{body:?}"),
            "LintBody { produced: 0, declared: Some(4), state: Streaming, .. }"
        );
        body.next().await.unwrap().unwrap();
        assert!(body.next().await.is_none());
        assert_eq!(
            format!("{body:?}"),
            "LintBody { produced: 4, declared: Some(4), state: Ended, .. }"
        );
    });
}

/// Yields "abc" and then says it has more.
struct Liar(bool);

impl Stream for Liar {
    type Item = Result<Bytes, Error>;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let first = !std::mem::replace(&mut self.0, true);
        Poll::Ready(first.then(|| Ok(Bytes::from_static(b"abc"))))
    }
}

impl Body for Liar {
    fn content_length(&self) -> Option<u64> {
        Some(if self.0 { 2 } else { 3 })
    }
}

#[test]
fn wrong_content_length_is_body_4() {
    let app =
        app_fn(|_, start: StartResponse| async move { ok(start, HeaderMap::new(), Liar(false)) });
    assert_eq!(
        violations(app, TestRequest::get("/")),
        ["REQ-BODY-4: content_length() announced 3 bytes in all, then 2 more after 3"]
    );
}

/// Ends, then yields an error when polled again.
struct Unfused(u8);

impl Stream for Unfused {
    type Item = Result<Bytes, Error>;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0 += 1;
        Poll::Ready((self.0 > 1).then(|| Err(Error::msg("polled after the end"))))
    }
}

impl Body for Unfused {}

#[test]
fn a_body_that_misbehaves_after_its_end_is_never_polled_then() {
    // REQ-BODY-2 is the caller's: the lint polls the app's body only when its own caller does,
    // so a body that fails when polled after its end passes through untouched.
    let app =
        app_fn(|_, start: StartResponse| async move { ok(start, HeaderMap::new(), Unfused(0)) });
    let (lint, seen) = collecting();
    let response = block_on(TestRequest::get("/").send(&app.with(lint)));
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.body_error(), None);
    assert!(
        seen.lock().unwrap().is_empty(),
        "{:?}",
        seen.lock().unwrap()
    );
}

#[test]
fn ordinary_streams_pass_through_the_lint_unchanged() {
    // `unfold` panics when polled after its end; `iter` and a channel end cleanly. Behind the
    // lint each must reach the client whole, with no violation and no body error.
    fn unfold_body() -> BoxBody {
        let stream = futures_util::stream::unfold(0u8, |n| async move {
            (n < 3).then(|| (Ok::<_, Error>(Bytes::from(vec![b'a' + n; 2])), n + 1))
        });
        BoxBody::new(StreamBody::new(Box::pin(stream)))
    }
    fn iter_body() -> BoxBody {
        let chunks = ["aa", "bb", "cc"].map(|c| Ok::<_, Error>(Bytes::from_static(c.as_bytes())));
        BoxBody::new(StreamBody::new(futures_util::stream::iter(chunks)))
    }
    fn channel_body() -> BoxBody {
        let (mut tx, rx) = futures_channel::mpsc::channel::<Result<Bytes, Error>>(4);
        for chunk in ["aa", "bb", "cc"] {
            tx.try_send(Ok(Bytes::from_static(chunk.as_bytes())))
                .unwrap();
        }
        drop(tx);
        BoxBody::new(StreamBody::new(rx))
    }
    for (name, make) in [
        ("unfold", unfold_body as fn() -> BoxBody),
        ("iter", iter_body),
        ("channel", channel_body),
    ] {
        let app =
            app_fn(
                move |_, start: StartResponse| async move { ok(start, HeaderMap::new(), make()) },
            );
        let (lint, seen) = collecting();
        let response = block_on(TestRequest::get("/").send(&app.with(lint)));
        assert_eq!(response.body_error(), None, "{name}");
        assert_eq!(response.body(), "aabbcc", "{name}");
        assert!(
            seen.lock().unwrap().is_empty(),
            "{name}: {:?}",
            seen.lock().unwrap()
        );
    }
}

#[test]
fn answering_through_a_callback_of_ones_own_is_start_1() {
    let forged = app_fn(|_, given: StartResponse| async move {
        drop(given);
        ok(StartResponse::new(), HeaderMap::new(), Empty)
    });
    assert_eq!(
        violations(forged, TestRequest::get("/")),
        ["REQ-START-1: the response was not made from the callback this call received (a callback made with StartResponse::new, or extensions replaced on the way out)"]
    );
    let honest =
        app_fn(|_, start: StartResponse| async move { ok(start, HeaderMap::new(), Empty) });
    assert!(violations(honest, TestRequest::get("/")).is_empty());
}

#[test]
fn polling_the_request_body_after_its_end_is_input_6() {
    let app = app_fn(|mut environ: Environ, start: StartResponse| async move {
        let body = environ
            .input_mut()
            .read_to_end(100)
            .await
            .map_err(Error::new)?;
        let again = environ.input_mut().chunk().await;
        assert!(
            again.is_none(),
            "the lint keeps the server's stream out of it"
        );
        ok(start, HeaderMap::new(), Full::new(body))
    });
    assert_eq!(
        violations(app, TestRequest::post("/").body("payload")),
        ["REQ-INPUT-6: the app polled the request body again after it ended"]
    );
}

#[test]
fn an_app_answering_with_its_request_body_is_not_blamed_for_the_lints_probe() {
    let app = app_fn(|mut environ: Environ, start: StartResponse| async move {
        let input = environ.take_input();
        ok(start, HeaderMap::new(), input)
    });
    let (lint, seen) = collecting();
    let response = block_on(TestRequest::post("/").body("mirror").send(&app.with(lint)));
    assert_eq!(response.body(), "mirror");
    assert_eq!(*seen.lock().unwrap(), []);
}

#[test]
fn debug_names_the_reaction() {
    assert_eq!(format!("{:?}", Lint::new()), "Lint { reaction: Panic }");
    assert_eq!(format!("{:?}", collecting().0), "Lint { reaction: Hook }");
}

#[test]
fn panic_mode_panics_with_the_requirement_id() {
    let app = app_fn(|_, start: StartResponse| async move {
        ok(start, one_header(header::UPGRADE, "websocket"), Empty)
    });
    let linted = app.with(Lint::new());
    let environ = TestRequest::get("/").into_environ();
    let panic = catch_unwind(AssertUnwindSafe(|| {
        block_on(linted.call(environ, StartResponse::new()))
    }))
    .unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    assert_eq!(
        message,
        "rwgi lint: REQ-RESP-2: apps must not set the hop-by-hop header `upgrade`"
    );
    // Behind a server, which catches the panic, the answer becomes a 500.
    let response: TestResponse = block_on(TestRequest::get("/").send(&linted));
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        response.failure(),
        Some("app panicked: rwgi lint: REQ-RESP-2: apps must not set the hop-by-hop header `upgrade`")
    );
}

// ---- toward the server ----------------------------------------------------------------------

/// A request body as a broken server might deliver it: `declared` bytes announced, `parts`
/// yielded, then the end.
struct ServerBody {
    declared: Option<u64>,
    parts: Vec<&'static str>,
}

impl Stream for ServerBody {
    type Item = Result<Bytes, Error>;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(
            (!self.parts.is_empty())
                .then(|| Ok(Bytes::from_static(self.parts.remove(0).as_bytes()))),
        )
    }
}

impl Body for ServerBody {
    fn content_length(&self) -> Option<u64> {
        self.declared
    }
}

/// An environ made by hand, as a server builds it.
fn environ(request: rwgi::http::request::Builder, input: Input) -> Environ {
    let request = request.header("host", "example.com").body(input).unwrap();
    Environ::from_request(request, &ConnectionInfo::default()).unwrap()
}

/// Calls the linted `app` with a hand-made environ and reads the whole answer.
fn serve<A: App>(app: A, environ: Environ) -> Vec<String> {
    let (lint, seen) = collecting();
    let linted = app.with(lint);
    block_on(async {
        let response = linted.call(environ, StartResponse::new()).await.unwrap();
        let (_, _, mut body) = response.into_parts();
        while body.next().await.is_some() {}
    });
    let seen = seen.lock().unwrap();
    seen.iter().map(ToString::to_string).collect()
}

#[test]
fn request_body_longer_than_declared_is_input_1() {
    let input = Input::from_body(ServerBody {
        declared: Some(3),
        parts: vec!["abc", "de"],
    });
    let environ = environ(Request::post("/").header("content-length", "3"), input);
    assert_eq!(
        serve(reader(), environ),
        ["REQ-INPUT-1: the request body declared 3 bytes but yielded 5"]
    );
}

#[test]
fn request_body_ending_short_without_an_error_is_input_2() {
    let input = Input::from_body(ServerBody {
        declared: Some(10),
        parts: vec!["abc"],
    });
    let environ = environ(Request::post("/").header("content-length", "10"), input);
    assert_eq!(
        serve(reader(), environ),
        ["REQ-INPUT-2: a request body cut short must end with an error; it declared 10 bytes and ended after 3"]
    );
}

#[test]
fn declared_length_disagreeing_with_the_headers_is_input_3() {
    let unknown = || {
        Input::from_body(ServerBody {
            declared: None,
            parts: vec!["abc"],
        })
    };
    let with_length = environ(Request::post("/").header("content-length", "3"), unknown());
    assert_eq!(
        serve(reader(), with_length),
        ["REQ-INPUT-3: Input::content_length() must be Some(3) for the Content-Length header, got None"]
    );
    let without_framing = environ(Request::post("/"), unknown());
    assert_eq!(
        serve(reader(), without_framing),
        ["REQ-INPUT-3: Input::content_length() must be Some(0) for a request without a body, got None"]
    );
    // HTTP/2 frames a body without any header: an unknown length is then no violation.
    let http2 = environ(Request::post("/").version(Version::HTTP_2), unknown());
    assert_eq!(serve(reader(), http2), Vec::<String>::new());
    let chunked = environ(
        Request::post("/").header("transfer-encoding", "chunked"),
        Input::from("abc"),
    );
    assert_eq!(
        serve(reader(), chunked),
        ["REQ-INPUT-3: Input::content_length() must be None for a chunked body, got Some(3)"]
    );
}

/// A middleware that buffers the request body and puts the buffer back with `set_input`.
struct Buffering<A>(A);

impl<A: App> App for Buffering<A> {
    type Body = A::Body;

    async fn call(
        &self,
        mut environ: Environ,
        start: StartResponse,
    ) -> Result<Response<A::Body>, Error> {
        let whole = environ
            .input_mut()
            .read_to_end(1 << 20)
            .await
            .map_err(Error::new)?;
        environ.set_input(Input::from(whole));
        self.0.call(environ, start).await
    }
}

#[test]
fn a_middleware_that_buffers_a_chunked_body_keeps_input_3_with_set_input() {
    // REQ-MW-6: the buffered length is known, so `set_input` declares it and drops the
    // transfer coding; the lint between the middleware and the app finds the two in step.
    let chunked = environ(
        Request::post("/").header("transfer-encoding", "chunked"),
        Input::from_body(ServerBody {
            declared: None,
            parts: vec!["ab", "c"],
        }),
    );
    let (lint, seen) = collecting();
    let app = Buffering(reader().with(lint));
    let response = block_on(async {
        let response = app.call(chunked, StartResponse::new()).await.unwrap();
        let (_, _, mut body) = response.into_parts();
        body.next().await.unwrap().unwrap()
    });
    assert_eq!(response, "3");
    assert!(
        seen.lock().unwrap().is_empty(),
        "{:?}",
        seen.lock().unwrap()
    );
}

#[test]
fn cgi_style_header_names_and_padded_values_are_env_7() {
    let cgi = environ(
        Request::get("/").header("http_user_agent", "curl"),
        Input::empty(),
    );
    assert_eq!(
        serve(reader(), cgi),
        ["REQ-ENV-7: headers must reach the app under their own names, got the CGI-style name `http_user_agent`"]
    );
    let padded = environ(
        Request::get("/").header("accept", "text/html "),
        Input::empty(),
    );
    assert_eq!(
        serve(reader(), padded),
        ["REQ-ENV-7: the value of `accept` must not keep surrounding white space, got \"text/html \""]
    );
}

#[test]
fn polling_an_ended_body_again_is_body_2() {
    let (lint, seen) = collecting();
    let linted = reader().with(lint);
    let environ = TestRequest::get("/").into_environ();
    block_on(async {
        let response = linted.call(environ, StartResponse::new()).await.unwrap();
        let (_, _, mut body) = response.into_parts();
        assert_eq!(body.next().await.unwrap().unwrap(), "0");
        assert!(body.next().await.is_none());
        assert!(body.next().await.is_none(), "the lint's body stays ended");
        assert!(body.next().await.is_none());
    });
    let seen: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        seen,
        ["REQ-BODY-2: the response body was polled again after it ended; its caller must stop polling and drop it"]
    );
}

#[test]
fn clean_traffic_raises_nothing() {
    let echo = app_fn(|mut environ: Environ, start: StartResponse| async move {
        let status = if environ.method() == Method::HEAD {
            StatusCode::NO_CONTENT
        } else {
            StatusCode::OK
        };
        let text = format!("{} {}", environ.script_name(), environ.path_info());
        let _ = environ.input_mut().read_to_end(1 << 20).await;
        let body = if status == StatusCode::NO_CONTENT {
            Full::new("")
        } else {
            Full::new(text)
        };
        Ok(start.start(status, HeaderMap::new()).body(body))
    });
    let linted = echo.with(Lint::new());
    let requests = [
        TestRequest::get("/"),
        TestRequest::get("/a%2Fb/%FF//c/?q=%2F&x"),
        TestRequest::head("/"),
        TestRequest::new(Method::OPTIONS, "*"),
        TestRequest::new(Method::CONNECT, "example.com:443"),
        TestRequest::get("http://example.com?x=1"),
        TestRequest::get("/api/v1/x").mount("/api/v1"),
        TestRequest::get("/").version(Version::HTTP_10),
        TestRequest::post("/").body("form=1"),
        TestRequest::post("/")
            .header("transfer-encoding", "chunked")
            .body(Input::from_body(StreamBody::new(
                futures_util::stream::iter(vec![Ok::<_, Error>(Bytes::from_static(b"chunk"))]),
            ))),
    ];
    for request in requests {
        let target = format!("{request:?}");
        let response = block_on(request.send(&linted));
        assert_eq!(response.failure(), None, "{target}");
        assert_eq!(response.body_error(), None, "{target}");
    }
}

#[test]
fn rules_are_unique_requirement_ids() {
    let unique: BTreeSet<&str> = RULES.iter().copied().collect();
    assert_eq!(unique.len(), RULES.len());
    assert!(RULES.iter().all(|rule| rule.starts_with("REQ-")));
    for rule in [
        "REQ-ENV-7",
        "REQ-INPUT-1",
        "REQ-INPUT-2",
        "REQ-INPUT-3",
        "REQ-INPUT-6",
        "REQ-RESP-1",
        "REQ-RESP-2",
        "REQ-RESP-3",
        "REQ-RESP-4",
        "REQ-RESP-5",
        "REQ-RESP-6",
        "REQ-BODY-2",
        "REQ-BODY-4",
        "REQ-START-1",
        "REQ-FILE-1",
        "REQ-UPGRADE-1",
        "REQ-UPGRADE-2",
    ] {
        assert!(RULES.contains(&rule), "{rule}");
    }
}

#[test]
fn nested_lints_do_not_blame_each_other() {
    let (inner, inner_seen) = collecting();
    let (outer, outer_seen) = collecting();
    let app = app_fn(|mut environ: Environ, start: StartResponse| async move {
        let input = environ.take_input();
        ok(start, HeaderMap::new(), input)
    });
    let linted = app.with(inner).with(outer);
    let response = block_on(TestRequest::post("/").body("twice").send(&linted));
    assert_eq!(response.body(), "twice");
    assert_eq!(*inner_seen.lock().unwrap(), []);
    assert_eq!(*outer_seen.lock().unwrap(), []);
}

/// A middleware that edits the environ's extensions on the way in with `edit`.
struct EditsExtensions<A, F>(A, F);

impl<A: App, F: Fn(&mut rwgi::http::Extensions) + Send + Sync> App for EditsExtensions<A, F> {
    type Body = A::Body;

    fn call(
        &self,
        mut environ: Environ,
        start: StartResponse,
    ) -> impl std::future::Future<Output = Result<Response<A::Body>, Error>> + Send {
        (self.1)(environ.extensions_mut());
        self.0.call(environ, start)
    }
}

#[test]
fn a_middleware_between_two_lints_that_replaces_the_extensions_is_cap_2() {
    let run = |edit: fn(&mut rwgi::http::Extensions)| {
        let (inner, inner_seen) = collecting();
        let (outer, outer_seen) = collecting();
        let app =
            app_fn(|_, start: StartResponse| async move { ok(start, HeaderMap::new(), Empty) })
                .with(inner);
        let sandwiched = EditsExtensions(app, edit).with(outer);
        block_on(TestRequest::get("/").send(&sandwiched));
        assert_eq!(*outer_seen.lock().unwrap(), []);
        let seen = inner_seen.lock().unwrap();
        seen.iter().map(ToString::to_string).collect::<Vec<_>>()
    };
    assert_eq!(
        run(|extensions| *extensions = rwgi::http::Extensions::new()),
        ["REQ-CAP-2: the environ's extensions were replaced or cleared on the way in, losing the capabilities the server offered (a middleware removes one only on purpose, by its type)"]
    );
    assert_eq!(run(rwgi::http::Extensions::clear).len(), 1);
    // Adding one, or removing one by its type, is passing the rest on.
    assert!(run(|extensions| {
        extensions.insert(7u8);
        extensions.remove::<u16>();
    })
    .is_empty());
}

// ---- extensions: file bodies (§14.9) and upgrades (§14.10) ----------------------------------

#[test]
fn a_file_range_shorter_than_the_body_is_file_1() {
    let file = TempFile::new("short-range", b"abcdef");
    let path = file.0.clone();
    let app = app_fn(move |_, start: StartResponse| {
        let body = ShortRange::new(path.clone());
        async move { ok(start, HeaderMap::new(), body) }
    });
    assert_eq!(
        violations(app, TestRequest::get("/")),
        [
            "REQ-FILE-1: take_file() handed out a range of 2 bytes; content_length() said Some(6) \
          before (expected Some(2)) and Some(0) after (expected Some(0))"
        ]
    );
}

#[test]
fn a_file_body_passes_through_the_lint_as_a_file() {
    let file = TempFile::new("passes", b"0123456789");
    let path = file.0.clone();
    let app = app_fn(move |_, start: StartResponse| {
        let path = path.clone();
        async move {
            let range = FileRange::new(std::fs::File::open(path)?, 2, 5)?;
            ok(start, HeaderMap::new(), FileBody::new(range))
        }
    });
    let (lint, seen) = collecting();
    let linted = app.with(lint);
    let prepared = block_on(rwgi::server::prepare(
        &linted,
        TestRequest::get("/").into_environ(),
    ));
    assert_eq!(prepared.content_length(), Some(5));
    let (_, _, mut body) = prepared.into_parts();
    assert!(body.is_file(), "the lint hid the file from the server");
    let range = Pin::new(&mut body).take_file().unwrap();
    assert_eq!((range.offset(), range.len()), (2, 5));
    assert_eq!(*seen.lock().unwrap(), []);
}

/// The headers of a request that asks to upgrade to `echo`.
fn asking_for_echo(builder: rwgi::http::request::Builder) -> rwgi::http::request::Builder {
    builder
        .header("connection", "upgrade")
        .header("upgrade", "echo")
}

/// An environ for `builder`, with the offer a server makes when the request asks for one.
fn offered(builder: rwgi::http::request::Builder) -> (Environ, Option<Acceptance>) {
    let mut environ = environ(builder, Input::empty());
    let offer = offer(&Method::GET, Version::HTTP_11, &{
        let mut asking = HeaderMap::new();
        asking.insert(header::CONNECTION, "upgrade".parse().unwrap());
        asking.insert(header::UPGRADE, "echo".parse().unwrap());
        asking
    });
    let (upgrade, acceptance) = offer.unwrap();
    environ.extensions_mut().insert(upgrade);
    (environ, Some(acceptance))
}

/// Takes the offer with `protocol`, or answers `200` without one.
fn switcher(protocol: &'static str) -> impl App {
    app_fn(
        move |mut environ: Environ, start: StartResponse| async move {
            Ok(match environ.extensions_mut().remove::<Upgrade>() {
                Some(offer) => offer
                    .accept(start, protocol, HeaderMap::new(), |_| async {})
                    .map_body(BoxBody::new),
                None => start
                    .start(StatusCode::OK, HeaderMap::new())
                    .body(BoxBody::new(Empty)),
            })
        },
    )
}

#[test]
fn an_upgrade_offer_for_a_request_that_did_not_ask_is_upgrade_1() {
    // The offer a broken server puts in every environ.
    let (environ, _) = offered(Request::get("/"));
    assert_eq!(
        serve(switcher("echo"), environ),
        [
            "REQ-UPGRADE-1: an upgrade offer only comes with an HTTP/1.1 request with Upgrade \
             and Connection: upgrade, got one for an HTTP/1.1 request without an Upgrade header",
            // The app that took it answered a request that did not ask with a 101.
            "REQ-RESP-1: a 101 answers only a request that asked for an upgrade and came with \
             an offer (REQ-UPGRADE-1); this one did not",
        ]
    );
    let (environ, _) = offered(asking_for_echo(Request::get("/")));
    assert_eq!(serve(switcher("echo"), environ), Vec::<String>::new());
}

#[test]
fn a_101_switching_to_a_protocol_not_asked_for_is_upgrade_2() {
    let (environ, _) = offered(asking_for_echo(Request::get("/")));
    assert_eq!(
        serve(switcher("h2c"), environ),
        ["REQ-UPGRADE-2: a 101 switches to a protocol the client asked for (echo), got Upgrade: \"h2c\""]
    );
    // An offer kept from another request does not make a 101 right for this one.
    let kept = Mutex::new(offered(asking_for_echo(Request::get("/"))).0);
    let stale = app_fn(move |_, start: StartResponse| {
        let offer = kept.lock().unwrap().extensions_mut().remove::<Upgrade>();
        async move {
            let offer = offer.expect("the kept offer");
            Ok(offer.accept(start, "echo", HeaderMap::new(), |_| async {}))
        }
    });
    assert_eq!(
        violations(stale, TestRequest::get("/")),
        [
            "REQ-RESP-1: a 101 answers only a request that asked for an upgrade and came with an \
          offer (REQ-UPGRADE-1); this one did not"
        ]
    );
    // A 101 made by hand, without an offer, is a 1xx final status.
    let by_hand = app_fn(|_, start: StartResponse| async move {
        Ok(start
            .start(StatusCode::SWITCHING_PROTOCOLS, HeaderMap::new())
            .body(Empty))
    });
    assert_eq!(
        violations(by_hand, TestRequest::get("/")),
        [
            "REQ-RESP-1: the final status must not be 1xx, got 101 (a 101 only takes an upgrade \
          offer, with Upgrade::accept)"
        ]
    );
}
