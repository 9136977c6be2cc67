//! The app suite against every example app and middleware, which must pass it, and against
//! deliberately broken apps, one per family of rules, which must fail it under the right check
//! and requirement.

// Each test uses a few of the example apps; the rest are dead code in this crate.
#[path = "support/answers.rs"]
mod answers;
#[allow(dead_code)]
#[path = "../examples/apps/mod.rs"]
mod apps;

use std::collections::BTreeSet;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use answers::{chunks, one_header, ShortRange, TempFile};
use apps::echo::Echo;
use apps::framework::demo_app;
use apps::hello::{hello_stack, Hello, PassThrough};
use bytes::Bytes;
use futures_core::Stream;
use rwgi::app::{app_fn, AppExt};
use rwgi::body::{Body, Either, Empty, Full};
use rwgi::file::FileBody;
use rwgi::http::{header, HeaderMap, HeaderValue, StatusCode};
use rwgi::lint::LintBody;
use rwgi::upgrade::Upgrade;
use rwgi::{App, Environ, Error, Middleware, StartResponse};
use rwgi_conformance::app_suite::{
    self, run_blocking, run_middleware, run_with_time_limit, Probe, ProbeBody, APP_CHECKS, CHECKS,
    MIDDLEWARE_CHECKS,
};
use rwgi_conformance::test_client::block_on;
use rwgi_conformance::{Outcome, Report};
use rwgi_middleware::access_log::AccessLog;
use rwgi_middleware::url_map::UrlMap;

/// The outcome of the check named `name`.
fn outcome<'a>(report: &'a Report, name: &str) -> (&'a Outcome, &'a str) {
    let result = report
        .results()
        .iter()
        .find(|result| result.name == name)
        .unwrap_or_else(|| panic!("no check named {name} in\n{report}"));
    (&result.outcome, &result.detail)
}

/// Asserts that exactly the checks in `failed` failed, each with a detail that starts with
/// `requirement`.
fn assert_fails(report: &Report, requirement: &str, failed: &[&str]) {
    let names: BTreeSet<&str> = report.failures().map(|result| result.name).collect();
    assert_eq!(names, failed.iter().copied().collect(), "\n{report}");
    for result in report.failures() {
        assert!(
            result.detail.starts_with(&format!("{requirement}: ")),
            "{}: {}",
            result.name,
            result.detail
        );
    }
    assert!(report.failed_requirement(requirement));
}

fn assert_complete(report: &Report) {
    let names: Vec<&str> = report.results().iter().map(|result| result.name).collect();
    let expected: Vec<&str> = APP_CHECKS.iter().map(|check| check.name).collect();
    assert_eq!(names, expected);
}

fn text_headers() -> HeaderMap {
    one_header(header::CONTENT_TYPE, "text/plain")
}

#[test]
fn hello_passes() {
    let report = run_blocking(&Hello);
    assert_complete(&report);
    report.assert_ok_strict();
    assert!(
        report.results().iter().all(|r| r.outcome == Outcome::Pass),
        "{report}"
    );
}

#[test]
fn hello_behind_pass_through_middleware_passes() {
    let report = run_blocking(&hello_stack());
    report.assert_ok_strict();
    assert_eq!(
        report
            .results()
            .iter()
            .filter(|r| r.outcome == Outcome::Skip)
            .count(),
        0,
        "{report}"
    );
}

#[test]
fn echo_passes_and_its_buffering_is_not_observable_as_streaming() {
    let report = run_blocking(&Echo);
    report.assert_ok_strict();
    // Judged on the bodies it read to their end; the held-back upload is a note on the pass.
    let (outcome, detail) = outcome(&report, "body_streams_lazily");
    assert_eq!(*outcome, Outcome::Pass);
    assert_eq!(
        detail,
        "note: REQ-BODY-6: the held-back upload could not show streaming: the app reads the whole request body before it answers"
    );
    // Echo answers a failed upload with Err; under that fault it is no REQ-APP-4 note.
    assert_eq!(*outcome_of(&report, "answers_every_request"), Outcome::Pass);
}

fn outcome_of<'a>(report: &'a Report, name: &str) -> &'a Outcome {
    outcome(report, name).0
}

#[test]
fn framework_demo_app_passes() {
    let report = run_blocking(&demo_app());
    report.assert_ok_strict();
    assert_eq!(*outcome_of(&report, "answers_every_request"), Outcome::Pass);
}

#[test]
fn access_log_middleware_passes() {
    let report = run_blocking(&Hello.with(AccessLog::with_sink(|_| {})));
    report.assert_ok_strict();
    let report = run_blocking(&Echo.with(AccessLog::with_sink(|_| {})));
    report.assert_ok_strict();
}

#[test]
fn url_map_middleware_passes() {
    let app = UrlMap::new()
        .mount("/mnt/app", Hello)
        .mount("/api", demo_app())
        .mount("", Echo);
    run_blocking(&app).assert_ok_strict();
    // Nothing mounted at the root: most requests get the map's own 404.
    run_blocking(&UrlMap::new().mount("/mnt", Hello)).assert_ok_strict();
}

#[test]
fn an_app_that_streams_its_request_body_back_passes_the_streaming_check() {
    let app = app_fn(|mut environ: Environ, start: StartResponse| async move {
        let input = environ.take_input();
        Ok(start.start(StatusCode::OK, HeaderMap::new()).body(input))
    });
    let report = run_blocking(&app);
    report.assert_ok_strict();
    assert_eq!(
        *outcome_of(&report, "body_streams_lazily"),
        Outcome::Pass,
        "{report}"
    );
}

#[test]
fn the_suite_runs_on_tokio_too() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let app = app_fn(|_, start: StartResponse| async move {
        tokio::time::sleep(Duration::from_millis(1)).await;
        Ok(start
            .start(StatusCode::OK, text_headers())
            .body(Full::new("late")))
    });
    let report = runtime.block_on(app_suite::run(&app));
    report.assert_ok_strict();
}

#[test]
fn hop_by_hop_header_fails_resp_2() {
    let app = app_fn(|_, start: StartResponse| async move {
        let mut headers = text_headers();
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        Ok(start.start(StatusCode::OK, headers).body(Full::new("hi")))
    });
    let report = run_blocking(&app);
    assert_fails(&report, "REQ-RESP-2", &["no_hop_by_hop_headers"]);
    let (_, detail) = outcome(&report, "no_hop_by_hop_headers");
    assert!(
        detail.starts_with("REQ-RESP-2: apps must not set the hop-by-hop header `connection` (request: GET /); and "),
        "{detail}"
    );
}

#[test]
fn informational_final_status_fails_resp_1() {
    let app = app_fn(|_, start: StartResponse| async move {
        Ok(start
            .start(StatusCode::CONTINUE, HeaderMap::new())
            .body(Empty))
    });
    let report = run_blocking(&app);
    assert_fails(&report, "REQ-RESP-1", &["final_status_not_informational"]);
}

#[test]
fn two_content_lengths_fail_resp_3() {
    let app = app_fn(|_, start: StartResponse| async move {
        let mut headers = HeaderMap::new();
        headers.append(header::CONTENT_LENGTH, HeaderValue::from(2));
        headers.append(header::CONTENT_LENGTH, HeaderValue::from(2));
        Ok(start.start(StatusCode::OK, headers).body(Full::new("hi")))
    });
    assert_fails(
        &run_blocking(&app),
        "REQ-RESP-3",
        &["content_length_well_formed"],
    );
}

#[test]
fn content_length_on_204_fails_resp_4() {
    let app = app_fn(|_, start: StartResponse| async move {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
        Ok(start.start(StatusCode::NO_CONTENT, headers).body(Empty))
    });
    assert_fails(
        &run_blocking(&app),
        "REQ-RESP-4",
        &["no_content_length_on_204"],
    );
}

#[test]
fn content_length_mismatch_fails_resp_5() {
    let app = app_fn(|_, start: StartResponse| async move {
        let mut headers = text_headers();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(10));
        Ok(start
            .start(StatusCode::OK, headers)
            .body(chunks(&["hel", "lo"])))
    });
    let report = run_blocking(&app);
    assert_fails(
        &report,
        "REQ-RESP-5",
        &[
            "content_length_matches_body",
            "slow_reader",
            "stalled_write",
        ],
    );
    let (_, detail) = outcome(&report, "slow_reader");
    assert_eq!(
        detail,
        "REQ-RESP-5: the body ended after 5 bytes, 5 short of the 10 of its Content-Length (request: GET /); and 1 more"
    );
}

#[test]
fn content_length_mismatch_of_a_known_length_is_caught_on_the_head() {
    let app = app_fn(|_, start: StartResponse| async move {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(3));
        Ok(start.start(StatusCode::OK, headers).body(Full::new("four")))
    });
    let report = run_blocking(&app);
    let (_, detail) = outcome(&report, "content_length_matches_body");
    assert!(
        detail.starts_with(
            "REQ-RESP-5: Content-Length is 3 but the body has 4 bytes (request: GET /)"
        ),
        "{detail}"
    );
}

/// Yields "hello" but claims 100 bytes.
struct Liar(Option<Bytes>);

impl Stream for Liar {
    type Item = Result<Bytes, Error>;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(self.0.take().map(Ok))
    }
}

impl Body for Liar {
    fn content_length(&self) -> Option<u64> {
        Some(100)
    }
}

#[test]
fn lying_content_length_fails_body_4() {
    let app = app_fn(|_, start: StartResponse| async move {
        Ok(start
            .start(StatusCode::OK, text_headers())
            .body(Liar(Some(Bytes::from_static(b"hello")))))
    });
    let report = run_blocking(&app);
    assert_fails(
        &report,
        "REQ-BODY-4",
        &["body_length_exact", "slow_reader", "stalled_write"],
    );
}

/// Yields "x", ends, and then yields again when polled after its end.
#[derive(Default)]
struct Unfused(u8);

impl Stream for Unfused {
    type Item = Result<Bytes, Error>;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0 += 1;
        Poll::Ready(match self.0 {
            2 => None,
            _ => Some(Ok(Bytes::from_static(b"x"))),
        })
    }
}

impl Body for Unfused {}

#[test]
fn a_body_that_misbehaves_after_its_end_passes_since_no_caller_polls_it_then() {
    // REQ-BODY-2 is the caller's duty: neither the suite nor the lint polls a body after its
    // end, so a body that yields again, or panics (as `unfold` does), is not at fault.
    let unfused = app_fn(|_, start: StartResponse| async move {
        Ok(start
            .start(StatusCode::OK, text_headers())
            .body(Unfused::default()))
    });
    run_blocking(&unfused).assert_ok_strict();
    let unfold = app_fn(|_, start: StartResponse| async move {
        let stream = futures_util::stream::unfold(0u8, |n| async move {
            (n < 2).then(|| (Ok::<_, Error>(Bytes::from_static(b"ab")), n + 1))
        });
        Ok(start
            .start(StatusCode::OK, text_headers())
            .body(rwgi::body::BoxBody::new(rwgi::body::StreamBody::new(
                Box::pin(stream),
            ))))
    });
    run_blocking(&unfold).assert_ok_strict();
}

#[test]
fn body_for_204_fails_resp_6() {
    let app = app_fn(|_, start: StartResponse| async move {
        Ok(start
            .start(StatusCode::NO_CONTENT, HeaderMap::new())
            .body(chunks(&["surprise"])))
    });
    let report = run_blocking(&app);
    assert_fails(&report, "REQ-RESP-6", &["bodiless_status_empty_body"]);
    let (_, detail) = outcome(&report, "bodiless_status_empty_body");
    assert!(
        detail.starts_with("REQ-RESP-6: a 204 response must have an empty body, got a chunk of 8 bytes (request: GET /)"),
        "{detail}"
    );
}

#[test]
fn reading_input_after_its_end_fails_input_6() {
    let app = app_fn(|mut environ: Environ, start: StartResponse| async move {
        let _ = environ.input_mut().read_to_end(8 << 20).await;
        let _ = environ.input_mut().chunk().await;
        Ok(start
            .start(StatusCode::OK, text_headers())
            .body(Full::new("read")))
    });
    let report = run_blocking(&app);
    assert_fails(
        &report,
        "REQ-INPUT-6",
        &["no_input_poll_after_end", "client_gone_during_upload"],
    );
    let (_, detail) = outcome(&report, "client_gone_during_upload");
    assert_eq!(
        detail,
        "REQ-INPUT-6: the app polled the request body again after it failed (request: POST / of 256 KiB, client gone at byte 100000)"
    );
}

#[test]
fn panicking_app_fails_err_4() {
    let app = app_fn(|environ: Environ, start: StartResponse| async move {
        if environ.path_info() == "/" {
            panic!("boom at the root");
        }
        Ok(start
            .start(StatusCode::OK, text_headers())
            .body(Full::new("fine")))
    });
    let report = run_blocking(&app);
    assert_fails(
        &report,
        "REQ-APP-5",
        &[
            "no_panic",
            "slow_reader",
            "stalled_write",
            "client_gone_during_upload",
            "client_gone_during_download",
            "client_gone_before_response",
        ],
    );
    let (_, detail) = outcome(&report, "no_panic");
    assert!(
        detail.starts_with("REQ-APP-5: the app's future panicked (boom at the root); expected an Err instead (request: GET /); and "),
        "{detail}"
    );
}

/// Two chunks; panics when dropped before the second was taken.
struct FragileBody(u8);

impl Stream for FragileBody {
    type Item = Result<Bytes, Error>;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0 += 1;
        Poll::Ready((self.0 <= 2).then(|| Ok(Bytes::from_static(b"part"))))
    }
}

impl Body for FragileBody {}

impl Drop for FragileBody {
    fn drop(&mut self) {
        if self.0 < 2 && !std::thread::panicking() {
            panic!("dropped before the end");
        }
    }
}

#[test]
fn body_panicking_when_the_client_goes_away_fails_conc_2() {
    let app = app_fn(|_, start: StartResponse| async move {
        Ok(start
            .start(StatusCode::OK, text_headers())
            .body(FragileBody(0)))
    });
    let report = run_blocking(&app);
    let failed: BTreeSet<&str> = report.failures().map(|r| r.name).collect();
    assert_eq!(
        failed,
        BTreeSet::from([
            "no_panic",
            "client_gone_during_download",
            "client_gone_before_response"
        ]),
        "{report}"
    );
    let (_, detail) = outcome(&report, "client_gone_during_download");
    assert_eq!(
        detail,
        "REQ-CONC-2: dropping the body after 4 bytes, when the client went away panicked (dropped before the end); expected it to clean up quietly (request: GET /); and 1 more"
    );
    // A HEAD answer's body is dropped unpolled, as servers do: a panic there is REQ-APP-5.
    let (_, detail) = outcome(&report, "no_panic");
    assert_eq!(
        detail,
        "REQ-APP-5: dropping the body panicked (dropped before the end); expected it to clean up quietly (request: HEAD /)"
    );
}

#[test]
fn an_app_that_never_answers_fails_app_4() {
    let app = app_fn(|_: Environ, _: StartResponse| {
        std::future::pending::<Result<rwgi::Response<Empty>, Error>>()
    });
    let report = block_on(run_with_time_limit(&app, Duration::from_millis(20)));
    let (outcome, detail) = outcome(&report, "answers_every_request");
    assert_eq!(*outcome, Outcome::Fail);
    assert!(
        detail.starts_with("REQ-APP-4: the app's future was pending and not woken for 20ms; expected it to make progress (request: GET /)"),
        "{detail}"
    );
}

/// Never yields and never wakes whoever polls it.
struct Stuck;

impl Stream for Stuck {
    type Item = Result<Bytes, Error>;
    fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Pending
    }
}

impl Body for Stuck {}

#[test]
fn a_body_that_stalls_fails_body_6() {
    let app = app_fn(|_, start: StartResponse| async move {
        Ok(start.start(StatusCode::OK, text_headers()).body(Stuck))
    });
    let report = block_on(run_with_time_limit(&app, Duration::from_millis(20)));
    let (outcome, detail) = outcome(&report, "body_streams_lazily");
    assert_eq!(*outcome, Outcome::Fail);
    assert!(
        detail.starts_with("REQ-BODY-6: the body was pending and not woken for 20ms; expected it to make progress (request: GET /)"),
        "{detail}"
    );
}

#[test]
fn calling_start_then_returning_err_breaks_only_app_4_and_judges_nothing_else() {
    // Calling the callback sends nothing (REQ-START-4) and an Err becomes a 500 (REQ-ERR-2):
    // no MUST is broken. REQ-APP-4, a SHOULD, is; and with no response to look at, the
    // response checks observed nothing, so the report is red.
    let app = app_fn(|_, start: StartResponse| async move {
        let _started = start.start(StatusCode::OK, text_headers());
        Err::<rwgi::Response<Empty>, _>(Error::msg("changed my mind"))
    });
    let report = run_blocking(&app);
    assert!(!report.is_ok(), "{report}");
    let failed: Vec<_> = report.failures().map(|r| r.name).collect();
    assert_eq!(failed, ["answers_every_request"]);
    assert_eq!(report.failed_requirements(), ["REQ-APP-4"]);
    let (_, detail) = outcome(&report, "answers_every_request");
    assert_eq!(
        detail,
        "REQ-APP-4 (SHOULD): GET /: the app returned Err (changed my mind) where a response such as 404 or 405 was possible; and 16 more"
    );
}

/// The checks of `report` with `outcome`.
fn names_with(report: &Report, wanted: Outcome) -> Vec<&'static str> {
    report
        .with_outcome(wanted)
        .map(|result| result.name)
        .collect()
}

#[test]
fn an_app_that_fails_every_request_gets_a_red_report() {
    let app = app_fn(|_, _: StartResponse| async move {
        Err::<rwgi::Response<Empty>, _>(Error::msg("down for maintenance"))
    });
    for _ in 0..3 {
        let report = run_blocking(&app);
        assert!(!report.is_ok() && !report.is_ok_strict(), "{report}");
        assert_eq!(names_with(&report, Outcome::Skip), Vec::<&str>::new());
        assert_eq!(
            names_with(&report, Outcome::NotObserved),
            [
                "final_status_not_informational",
                "no_hop_by_hop_headers",
                "content_length_well_formed",
                "no_content_length_on_204",
                "content_length_matches_body",
                "bodiless_status_empty_body",
                "answers_through_its_callback",
                "body_length_exact",
                "body_streams_lazily",
                "slow_reader",
                "stalled_write",
                "client_gone_during_download",
                "file_body_exact",
                "upgrade_taken_right",
            ],
            "{report}"
        );
        for result in report.with_outcome(Outcome::NotObserved) {
            assert_eq!(result.judged, 0);
            assert!(
                result.detail.starts_with("observed nothing: "),
                "{result:?}"
            );
        }
        // What the app did show is judged: it never panics, and it reads no input after its end.
        assert_eq!(outcome(&report, "no_panic").0, &Outcome::Pass);
        // The battery, three network faults on two requests, the failed upload, and the
        // client gone before the answer twice.
        let no_panic = report.results().iter().find(|r| r.name == "no_panic");
        assert_eq!(no_panic.map(|r| r.judged), Some(17 + 3 * 2 + 1 + 2));
    }
}

#[test]
#[should_panic(expected = "observed nothing (not ok): final_status_not_informational")]
fn assert_ok_refuses_an_app_that_fails_every_request() {
    let app = app_fn(|_, _: StartResponse| async move {
        Err::<rwgi::Response<Empty>, _>(Error::msg("down for maintenance"))
    });
    run_blocking(&app).assert_ok_strict();
}

#[test]
fn answering_through_a_start_response_of_ones_own_fails_start_1() {
    let app = app_fn(|_, given: StartResponse| async move {
        drop(given);
        let own = StartResponse::new();
        Ok(own
            .start(StatusCode::OK, text_headers())
            .body(Full::new("mine")))
    });
    let report = run_blocking(&app);
    assert_fails(&report, "REQ-START-1", &["answers_through_its_callback"]);
    let (_, detail) = outcome(&report, "answers_through_its_callback");
    assert!(
        detail.starts_with(
            "REQ-START-1: the response was not made from the callback this call received"
        ),
        "{detail}"
    );
}

#[test]
fn the_report_serializes_with_requirement_ids() {
    let report = run_blocking(&Hello);
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    let results = json["results"].as_array().unwrap();
    assert_eq!(results.len(), APP_CHECKS.len());
    assert_eq!(results[0]["name"], "final_status_not_informational");
    assert_eq!(results[0]["requirements"][0], "REQ-RESP-1");
    assert_eq!(results[0]["outcome"], "pass");
}

#[test]
fn every_check_names_known_requirements() {
    assert_eq!(APP_CHECKS.len() + MIDDLEWARE_CHECKS.len(), CHECKS.len());
    let mut names = BTreeSet::new();
    for check in CHECKS {
        assert!(names.insert(check.name), "duplicate check {}", check.name);
        assert!(!check.requirements.is_empty(), "{}", check.name);
        for requirement in check.requirements {
            assert!(
                requirement.starts_with("REQ-"),
                "{}: {requirement}",
                check.name
            );
        }
    }
}

// ---- middleware ---------------------------------------------------------------------------

/// What the probe answers with, as the middleware receives it.
type Inner = rwgi::Response<LintBody<ProbeBody>>;

/// A middleware made of two functions: one edits the environ, one the inner answer.
#[derive(Clone)]
struct Layer<E, R>(E, R);

struct LayerApp<E, R> {
    inner: Probe,
    edit: E,
    map: R,
}

impl<E, R, B> Middleware<Probe> for Layer<E, R>
where
    E: Fn(&mut Environ) + Clone + Send + Sync,
    R: Fn(Inner) -> rwgi::Response<B> + Clone + Send + Sync,
    B: Body + Send + Unpin + 'static,
{
    type App = LayerApp<E, R>;

    fn wrap(&self, inner: Probe) -> LayerApp<E, R> {
        LayerApp {
            inner,
            edit: self.0.clone(),
            map: self.1.clone(),
        }
    }
}

impl<E, R, B> App for LayerApp<E, R>
where
    E: Fn(&mut Environ) + Clone + Send + Sync,
    R: Fn(Inner) -> rwgi::Response<B> + Clone + Send + Sync,
    B: Body + Send + Unpin + 'static,
{
    type Body = B;

    async fn call(
        &self,
        mut environ: Environ,
        start: StartResponse,
    ) -> Result<rwgi::Response<B>, Error> {
        (self.edit)(&mut environ);
        let response = self.inner.call(environ, start).await?;
        Ok((self.map)(response))
    }
}

fn run_layer<E, R, B>(edit: E, map: R) -> Report
where
    E: Fn(&mut Environ) + Clone + Send + Sync,
    R: Fn(Inner) -> rwgi::Response<B> + Clone + Send + Sync,
    B: Body + Send + Unpin + 'static,
{
    block_on(run_middleware(&Layer(edit, map)))
}

fn assert_middleware_complete(report: &Report) {
    let names: Vec<&str> = report.results().iter().map(|result| result.name).collect();
    let expected: Vec<&str> = APP_CHECKS
        .iter()
        .chain(MIDDLEWARE_CHECKS)
        .map(|check| check.name)
        .collect();
    assert_eq!(names, expected);
}

#[test]
fn access_log_passes_as_middleware() {
    let report = block_on(run_middleware(&AccessLog::with_sink(|_| {})));
    assert_middleware_complete(&report);
    report.assert_ok_strict();
    for check in MIDDLEWARE_CHECKS {
        assert_eq!(*outcome_of(&report, check.name), Outcome::Pass, "{report}");
    }
}

#[test]
fn pass_through_and_identity_pass_as_middleware() {
    block_on(run_middleware(&PassThrough)).assert_ok_strict();
    block_on(run_middleware(&rwgi::middleware::Identity)).assert_ok_strict();
}

#[test]
fn a_middleware_that_changes_nothing_passes() {
    let report = run_layer(|_| {}, |response| response);
    report.assert_ok_strict();
    assert_eq!(
        *outcome_of(&report, "middleware_serves_inner_app"),
        Outcome::Pass
    );
}

/// Collects the whole inner body before yielding it as one chunk.
struct Buffered<B> {
    inner: B,
    collected: Vec<u8>,
    done: bool,
}

impl<B: Body + Unpin> Stream for Buffered<B> {
    type Item = Result<Bytes, Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        while !self.done {
            match Pin::new(&mut self.inner).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => self.collected.extend_from_slice(&chunk),
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error))),
                Poll::Ready(None) => {
                    self.done = true;
                    let all = std::mem::take(&mut self.collected);
                    return Poll::Ready((!all.is_empty()).then(|| Ok(Bytes::from(all))));
                }
            }
        }
        Poll::Ready(None)
    }
}

impl<B: Body + Unpin> Body for Buffered<B> {}

#[test]
fn a_middleware_that_collects_the_body_fails_mw_2() {
    let report = run_layer(
        |_| {},
        |response: Inner| {
            response.map_body(|inner| Buffered {
                inner,
                collected: Vec::new(),
                done: false,
            })
        },
    );
    assert_fails(&report, "REQ-MW-2", &["middleware_streams_inner_body"]);
    let (_, detail) = outcome(&report, "middleware_streams_inner_body");
    assert_eq!(
        detail,
        "REQ-MW-2: the middleware's body waited for the inner body's second chunk before yielding the first; expected at least one yield per inner chunk (request: GET / with the inner body held back after its first chunk)"
    );
}

/// Adds a byte at the end of the inner body.
struct Appending<B> {
    inner: B,
    ended: bool,
    tail: Option<Bytes>,
}

impl<B: Body + Unpin> Stream for Appending<B> {
    type Item = Result<Bytes, Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(self.tail.take().map(Ok));
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(None) => {
                self.ended = true;
                Poll::Ready(self.tail.take().map(Ok))
            }
            other => other,
        }
    }
}

impl<B: Body + Unpin> Body for Appending<B> {}

#[test]
fn a_middleware_that_changes_the_length_without_fixing_content_length_fails_mw_3() {
    let report = run_layer(
        |_| {},
        |response: Inner| {
            response.map_body(|inner| Appending {
                inner,
                ended: false,
                tail: Some(Bytes::from_static(b"!")),
            })
        },
    );
    // Under the faults the broken length is filed under the fault's own check.
    let failed: BTreeSet<&str> = report.failures().map(|r| r.name).collect();
    assert_eq!(
        failed,
        BTreeSet::from([
            "middleware_fixes_content_length",
            "slow_reader",
            "stalled_write"
        ]),
        "{report}"
    );
    for fault in ["slow_reader", "stalled_write"] {
        assert!(
            outcome(&report, fault).1.starts_with("REQ-RESP-5: "),
            "{report}"
        );
    }
    let (_, detail) = outcome(&report, "middleware_fixes_content_length");
    assert!(
        detail.starts_with("REQ-MW-3: the middleware changed the body without fixing Content-Length: REQ-RESP-5: the body yielded 17 bytes, more than the 16 of its Content-Length (request: GET /); and "),
        "{detail}"
    );
}

/// Forwards the inner body but never drops it.
struct Leaking<B>(std::mem::ManuallyDrop<B>);

impl<B: Body + Unpin> Stream for Leaking<B> {
    type Item = Result<Bytes, Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut *self.0).poll_next(cx)
    }
}

impl<B: Body + Unpin> Body for Leaking<B> {
    fn content_length(&self) -> Option<u64> {
        self.0.content_length()
    }
}

#[test]
fn a_middleware_that_keeps_the_inner_body_alive_fails_mw_4() {
    let report = run_layer(
        |_| {},
        |response: Inner| response.map_body(|inner| Leaking(std::mem::ManuallyDrop::new(inner))),
    );
    assert_fails(&report, "REQ-MW-4", &["middleware_drops_inner_body"]);
    let (_, detail) = outcome(&report, "middleware_drops_inner_body");
    assert!(
        detail.starts_with("REQ-MW-4: the inner app's body was still alive after the middleware's answer was dropped (request: GET /); and "),
        "{detail}"
    );
}

#[test]
fn a_middleware_that_drops_extensions_fails_ext_2() {
    let report = run_layer(
        |environ: &mut Environ| *environ.extensions_mut() = rwgi::http::Extensions::new(),
        |response| response,
    );
    assert_fails(&report, "REQ-EXT-2", &["middleware_passes_extensions"]);
    let (_, detail) = outcome(&report, "middleware_passes_extensions");
    assert!(
        detail.starts_with("REQ-EXT-2: a typed value in the environ's extensions did not reach the app behind the middleware (REQ-MW-5: a middleware passes the extensions on) (request: GET /)"),
        "{detail}"
    );
}

#[test]
fn a_middleware_that_breaks_server_rules_toward_its_app_fails_mw_1() {
    // Removing Content-Length leaves a request body whose declared length no header backs.
    let report = run_layer(
        |environ: &mut Environ| {
            environ.headers_mut().remove(header::CONTENT_LENGTH);
        },
        |response| response,
    );
    assert_fails(&report, "REQ-MW-1", &["middleware_serves_inner_app"]);
    let (_, detail) = outcome(&report, "middleware_serves_inner_app");
    assert!(
        detail.starts_with("REQ-MW-1: toward the app it wraps, the middleware broke REQ-INPUT-3: Input::content_length() must be Some(0) for a request without a body, got Some(19) (request: POST / with a small form); and "),
        "{detail}"
    );
}

/// Answers `DELETE` itself with `403`; passes everything else on.
struct NoDeletes;

struct NoDeletesApp(Probe);

impl Middleware<Probe> for NoDeletes {
    type App = NoDeletesApp;

    fn wrap(&self, inner: Probe) -> NoDeletesApp {
        NoDeletesApp(inner)
    }
}

impl App for NoDeletesApp {
    type Body = Either<LintBody<ProbeBody>, Empty>;

    async fn call(
        &self,
        environ: Environ,
        start: StartResponse,
    ) -> Result<rwgi::Response<Self::Body>, Error> {
        if environ.method() == rwgi::http::Method::DELETE {
            return Ok(start
                .start(StatusCode::FORBIDDEN, HeaderMap::new())
                .body(Either::Right(Empty)));
        }
        Ok(self.0.call(environ, start).await?.map_body(Either::Left))
    }
}

#[test]
fn a_middleware_answering_some_requests_itself_gets_a_note() {
    let report = block_on(run_middleware(&NoDeletes));
    report.assert_ok_strict();
    let (outcome, detail) = outcome(&report, "middleware_serves_inner_app");
    assert_eq!(*outcome, Outcome::Pass);
    assert_eq!(
        detail,
        "note: REQ-MW-1: the middleware answered DELETE / itself"
    );
}

/// Answers every request itself with `200 OK` and never calls the app it wraps.
struct NeverInward;

struct NeverInwardApp;

impl Middleware<Probe> for NeverInward {
    type App = NeverInwardApp;

    fn wrap(&self, _: Probe) -> NeverInwardApp {
        NeverInwardApp
    }
}

impl App for NeverInwardApp {
    type Body = Full;

    async fn call(&self, _: Environ, start: StartResponse) -> Result<rwgi::Response<Full>, Error> {
        Ok(start
            .start(StatusCode::OK, text_headers())
            .body(Full::new("not you")))
    }
}

#[test]
fn a_middleware_that_never_calls_inward_gets_a_red_report() {
    for _ in 0..3 {
        let report = block_on(run_middleware(&NeverInward));
        assert!(!report.is_ok(), "{report}");
        assert_eq!(report.failures().count(), 0, "{report}");
        assert_eq!(
            names_with(&report, Outcome::NotObserved),
            MIDDLEWARE_CHECKS.iter().map(|c| c.name).collect::<Vec<_>>(),
            "{report}"
        );
        for name in [
            "middleware_drops_inner_body",
            "middleware_passes_extensions",
            "middleware_fixes_content_length",
        ] {
            let (_, detail) = outcome(&report, name);
            assert_eq!(
                detail,
                "observed nothing: the middleware never called the app it wraps"
            );
        }
    }
}

#[test]
#[should_panic(expected = "observed nothing (not ok): middleware_serves_inner_app")]
fn assert_ok_refuses_a_middleware_that_never_calls_inward() {
    block_on(run_middleware(&NeverInward)).assert_ok_strict();
}

/// Polls the inner body once more after it ended, as a sloppy wrapper might.
struct Repolling<B>(B);

impl<B: Body + Unpin> Stream for Repolling<B> {
    type Item = Result<Bytes, Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match Pin::new(&mut self.0).poll_next(cx) {
            Poll::Ready(None) => Pin::new(&mut self.0).poll_next(cx),
            other => other,
        }
    }
}

impl<B: Body + Unpin> Body for Repolling<B> {
    fn content_length(&self) -> Option<u64> {
        self.0.content_length()
    }
}

#[test]
fn a_middleware_that_polls_the_inner_body_after_its_end_fails_mw_1() {
    let report = run_layer(|_| {}, |response: Inner| response.map_body(Repolling));
    assert_fails(&report, "REQ-MW-1", &["middleware_serves_inner_app"]);
    let (_, detail) = outcome(&report, "middleware_serves_inner_app");
    assert!(
        detail.starts_with("REQ-MW-1: toward the app it wraps, the middleware broke REQ-BODY-2: the response body was polled again after it ended; its caller must stop polling and drop it (request: GET /); and "),
        "{detail}"
    );
}

#[test]
fn a_middleware_that_drops_a_prefix_from_the_path_fails_path_2() {
    // Rebuilds the environ from a shortened target instead of mounting: the prefix is gone from
    // `path_info` and never reaches `script_name`.
    let report = run_layer(
        |environ: &mut Environ| {
            let Some(rest) = environ.path_info().strip_prefix("/rwgi-suite") else {
                return;
            };
            let rest = rest.to_owned();
            let mut request = rwgi::http::Request::new(environ.take_input());
            *request.uri_mut() = rest.parse().expect("a path");
            *request.method_mut() = environ.method().clone();
            *request.version_mut() = environ.version();
            *request.headers_mut() = environ.headers().clone();
            *request.extensions_mut() = std::mem::take(environ.extensions_mut());
            let connection = environ.connection().clone();
            *environ = Environ::from_request(request, &connection).expect("a valid target");
        },
        |response| response,
    );
    assert_fails(&report, "REQ-PATH-2", &["middleware_keeps_the_path"]);
    let (_, detail) = outcome(&report, "middleware_keeps_the_path");
    assert!(
        detail.starts_with(
            "REQ-PATH-2: the app behind the middleware got script_name \"\" and path_info \
             \"/no/such/path\" for the path \"/rwgi-suite/no/such/path\" (REQ-MW-5: "
        ),
        "{detail}"
    );
}

#[test]
fn a_middleware_that_keeps_only_the_last_of_repeated_headers_fails_srv_2() {
    let report = run_layer(
        |_: &mut Environ| {},
        |mut response| {
            let last = response
                .headers()
                .get_all("x-probe")
                .iter()
                .next_back()
                .cloned();
            if let Some(last) = last {
                response.headers_mut().insert("x-probe", last);
            }
            response
        },
    );
    assert_fails(&report, "REQ-SRV-2", &["middleware_passes_inner_head"]);
    let (_, detail) = outcome(&report, "middleware_passes_inner_head");
    assert!(
        detail.starts_with(
            "REQ-SRV-2: the middleware's answer changed the inner app's head: x-probe [\"one\", \
             \"two\"] (seen [\"two\"]) (REQ-MW-1: "
        ),
        "{detail}"
    );
}

/// Calls the app it wraps with a callback of its own and answers through the server's with the
/// inner status, headers and body, leaving the inner response's extensions behind.
struct Reanswers;

struct ReanswersApp(Probe);

impl Middleware<Probe> for Reanswers {
    type App = ReanswersApp;

    fn wrap(&self, inner: Probe) -> ReanswersApp {
        ReanswersApp(inner)
    }
}

impl App for ReanswersApp {
    type Body = LintBody<ProbeBody>;

    async fn call(
        &self,
        environ: Environ,
        start: StartResponse,
    ) -> Result<rwgi::Response<Self::Body>, Error> {
        let inner = self.0.call(environ, StartResponse::new()).await?;
        let (status, headers, body) = inner.into_parts();
        Ok(start.start(status, headers).body(body))
    }
}

#[test]
fn a_middleware_that_loses_the_response_extensions_fails_ext_2() {
    let report = block_on(run_middleware(&Reanswers));
    assert_fails(&report, "REQ-EXT-2", &["middleware_passes_extensions"]);
    let (_, detail) = outcome(&report, "middleware_passes_extensions");
    assert!(
        detail.starts_with(
            "REQ-EXT-2: a typed value in the inner app's response extensions did not reach the \
             server through the middleware (response extensions travel outward) (request: GET /)"
        ),
        "{detail}"
    );
}

// ---- extensions: file bodies (§14.9) and upgrades (§14.10) ----------------------------------

/// Answers every request with the file at `path`, and takes an offer to upgrade to
/// `protocol` with a handler that echoes until the client closes.
fn files_and_upgrades(path: std::path::PathBuf, protocol: &'static str) -> impl App {
    app_fn(move |mut environ: Environ, start: StartResponse| {
        let path = path.clone();
        async move {
            if let Some(offer) = environ.extensions_mut().remove::<Upgrade>() {
                let response =
                    offer.accept(start, protocol, HeaderMap::new(), |mut io| async move {
                        let mut buf = [0; 64];
                        while let Ok(n @ 1..) = io.read(&mut buf).await {
                            if io.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    });
                return Ok(response.map_body(Either::Left));
            }
            let body = FileBody::open(path)?;
            Ok(start
                .start(StatusCode::OK, text_headers())
                .body(Either::Right(body)))
        }
    })
}

#[test]
fn an_app_with_file_bodies_and_upgrades_passes() {
    let file = TempFile::new("passes", b"hello from a file\n");
    let report = run_blocking(&files_and_upgrades(file.0.clone(), "rwgi-suite"));
    report.assert_ok_strict();
    assert_complete(&report);
}

#[test]
fn a_file_range_that_is_not_the_body_fails_file_1() {
    let file = TempFile::new("short-range", b"abcdef");
    let path = file.0.clone();
    let app = app_fn(move |_, start: StartResponse| {
        let body = ShortRange::new(path.clone());
        async move { Ok(start.start(StatusCode::OK, text_headers()).body(body)) }
    });
    let report = run_blocking(&app);
    assert_fails(&report, "REQ-FILE-1", &["file_body_exact"]);
    let (_, detail) = outcome(&report, "file_body_exact");
    assert!(
        detail.starts_with(
            "REQ-FILE-1: take_file() handed out a range of 2 bytes; content_length() said \
             Some(6) before (expected Some(2)) and Some(0) after (expected Some(0)) (request: GET /)"
        ),
        "{detail}"
    );
}

#[test]
fn a_101_to_a_protocol_the_request_did_not_ask_for_fails_upgrade_2() {
    let file = TempFile::new("wrong-protocol", b"hello\n");
    let report = run_blocking(&files_and_upgrades(file.0.clone(), "h2c"));
    assert_fails(&report, "REQ-UPGRADE-2", &["upgrade_taken_right"]);
    let (_, detail) = outcome(&report, "upgrade_taken_right");
    assert_eq!(
        detail,
        "REQ-UPGRADE-2: a 101 switches to a protocol the client asked for (rwgi-suite), got \
         Upgrade: \"h2c\" (request: GET / asking to upgrade to rwgi-suite)"
    );
}
