//! App → Service → App: an rwgi app through `AppService` and back through `ServiceApp`
//! behaves like the original, on the server suite's shared vectors (`spec/vectors/`) and every
//! other check of both suites.

mod support;

use rwgi::app::app_fn;
use rwgi::body::{Body, StreamBody};
use rwgi::http::{HeaderMap, StatusCode};
use rwgi::middleware::Middleware;
use rwgi::{App, Environ, Error, StartResponse};
use rwgi_conformance::app_suite::{self, Probe, CHECKS as APP_SUITE_CHECKS};
use rwgi_conformance::server_suite::{self, CHECKS};
use rwgi_conformance::{Outcome, Report};
use rwgi_tower::{AppService, ServiceApp};
use support::{hyper_hosting, rwgi_server_hosting};

/// The app, there and back: served as a tower service, hosted again as an app.
fn round_trip<A: App + 'static>(app: A) -> ServiceApp<AppService<A>> {
    ServiceApp::new(AppService::new(app))
}

/// Every result's name and outcome.
fn outcomes(report: &Report) -> Vec<(&'static str, Outcome)> {
    report
        .results()
        .iter()
        .map(|result| (result.name, result.outcome))
        .collect()
}

/// Asserts that every check in `names` ran, in order, and passed, or was skipped for an
/// extension the server in front does not offer.
fn assert_all_pass(report: &Report, names: &[&str]) {
    report.assert_ok_offered();
    let ran: Vec<&str> = report.results().iter().map(|result| result.name).collect();
    assert_eq!(ran, names, "{report}");
}

fn server_checks() -> Vec<&'static str> {
    CHECKS.iter().map(|check| check.name).collect()
}

#[test]
fn round_tripped_on_rwgi_server_passes_the_server_suite() {
    let report = server_suite::run(rwgi_server_hosting(round_trip));
    assert_all_pass(&report, &server_checks());
    assert!(
        report
            .results()
            .iter()
            .filter(|r| r.name.starts_with("vectors_"))
            .count()
            == 6,
        "the six vector groups ran"
    );
}

#[test]
fn round_tripped_twice_on_hyper_passes_the_server_suite() {
    // hyper → AppService → ServiceApp → AppService → the suite's app. Plain hyper offers none
    // of the optional extensions, and a tower service has no connection to hand over: their
    // checks are skipped, as not offered (spec §14).
    let report = server_suite::run(hyper_hosting(round_trip));
    report.assert_ok_offered();
    let not_offered = [
        "lifespan_state",
        "response_outcome",
        "disconnect_notified",
        "head_flushed",
        "interim_responses",
        "response_trailers",
        "illegal_trailer_names",
        "request_trailers",
        "upgrade_hands_over_connection",
    ];
    let expected: Vec<(&str, Outcome)> = server_checks()
        .into_iter()
        .map(|name| {
            let outcome = if not_offered.contains(&name) {
                Outcome::Skip
            } else {
                Outcome::Pass
            };
            (name, outcome)
        })
        .collect();
    assert_eq!(outcomes(&report), expected, "{report}");
}

/// The round trip as a middleware, so the app suite can check it from both sides.
#[derive(Clone, Copy, Debug)]
struct RoundTrip;

impl Middleware<Probe> for RoundTrip {
    type App = ServiceApp<AppService<Probe>>;

    fn wrap(&self, inner: Probe) -> Self::App {
        round_trip(inner)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_round_trip_passes_the_app_suite_as_a_middleware() {
    let report = app_suite::run_middleware(&RoundTrip).await;
    report.assert_ok_strict();
    // Exactly as the middleware that does nothing: every check passes, in the same order.
    let identity = app_suite::run_middleware(&rwgi::middleware::Identity).await;
    assert_eq!(outcomes(&report), outcomes(&identity), "{report}");
    let names: Vec<&str> = APP_SUITE_CHECKS.iter().map(|check| check.name).collect();
    for (result, name) in report.results().iter().zip(&names) {
        assert_eq!(result.name, *name);
        assert_eq!(
            result.outcome,
            Outcome::Pass,
            "{}: {}",
            result.name,
            result.detail
        );
    }
}

/// A streaming app: `/` answers three chunks of unknown length; `/fail` a body that fails
/// after its first chunk; anything else `404`.
fn streaming() -> impl App {
    app_fn(|environ: Environ, start: StartResponse| async move {
        let chunks: Vec<Result<bytes::Bytes, Error>> = match environ.path_info() {
            "/" => vec![Ok("one ".into()), Ok("two ".into()), Ok("three".into())],
            "/fail" => vec![Ok("half".into()), Err(Error::msg("disk gone"))],
            _ => {
                return Ok(start
                    .start(StatusCode::NOT_FOUND, HeaderMap::new())
                    .body(rwgi::body::BoxBody::new(rwgi::body::Empty)))
            }
        };
        let body = StreamBody::new(futures_util::stream::iter(chunks));
        assert_eq!(body.content_length(), None);
        Ok(start
            .start(StatusCode::OK, HeaderMap::new())
            .body(rwgi::body::BoxBody::new(body)))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_round_trip_reports_like_the_original_in_the_app_suite() {
    let original = app_suite::run(&streaming()).await;
    let there_and_back = app_suite::run(&round_trip(streaming())).await;
    assert_eq!(outcomes(&there_and_back), outcomes(&original));
    for (a, b) in original.results().iter().zip(there_and_back.results()) {
        assert_eq!(a.detail, b.detail, "{}", a.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_round_trip_answers_like_the_original() {
    use rwgi_conformance::test_client::TestRequest;

    for (target, mount) in [
        ("/", ""),
        ("/fail", ""),
        ("/nothing", ""),
        ("/app/", "/app"),
    ] {
        let original = TestRequest::get(target)
            .mount(mount)
            .send(&streaming())
            .await;
        let there_and_back = TestRequest::get(target)
            .mount(mount)
            .send(&round_trip(streaming()))
            .await;
        assert_eq!(there_and_back.status(), original.status(), "{target}");
        assert_eq!(there_and_back.headers(), original.headers(), "{target}");
        assert_eq!(there_and_back.body(), original.body(), "{target}");
        assert_eq!(
            there_and_back.body_error(),
            original.body_error(),
            "{target}"
        );
    }
}

/// The capabilities a server offers in the environ (spec §14.2) reach an app behind the
/// round trip, with a lint on each side checking that the extensions came through whole
/// (REQ-CAP-2, REQ-BRIDGE-6).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_capabilities_cross_the_round_trip() {
    use rwgi::app::AppExt;
    use rwgi::lint::Lint;
    use rwgi::outcome::{Ending, Finisher, Outcome as ServerOutcome, ResponseFinished};
    use rwgi_conformance::test_client::TestRequest;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Debug, PartialEq)]
    struct PoolState(&'static str);

    let told: Arc<Mutex<Option<Ending>>> = Arc::default();
    let heard = Arc::clone(&told);
    let inner = app_fn(move |environ: Environ, start: StartResponse| {
        let heard = Arc::clone(&heard);
        async move {
            let state = environ.extensions().get::<PoolState>().cloned();
            assert_eq!(state, Some(PoolState("pool")));
            let finished = environ.extensions().get::<ResponseFinished>();
            let finished = finished.expect("the outcome handle crossed");
            finished.on_finish(move |outcome| *heard.lock().unwrap() = Some(outcome.ending()));
            Ok(start
                .start(StatusCode::OK, HeaderMap::new())
                .body(rwgi::body::Full::new("through")))
        }
    });
    let app = round_trip(inner.with(Lint::new())).with(Lint::new());
    let (finisher, finished) = Finisher::pair();
    let mut environ = TestRequest::get("/").into_environ();
    environ.extensions_mut().insert(PoolState("pool"));
    environ.extensions_mut().insert(finished);
    let response = app.call(environ, StartResponse::new()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    finisher.finish(ServerOutcome::new(
        Ending::Completed,
        Some(StatusCode::OK),
        7,
    ));
    // The app's callback, registered behind the round trip, heard the server.
    assert_eq!(*told.lock().unwrap(), Some(Ending::Completed));
}
