//! rwgi apps served through `AppService`: on plain hyper the bridge passes the server suite;
//! nested in an axum `Router` served by `axum::serve`, the prefix becomes `SCRIPT_NAME` and the
//! peer comes from axum's `ConnectInfo`.

mod support;

use std::net::SocketAddr;

use rwgi::app::app_fn;
use rwgi::body::Full;
use rwgi::http::{HeaderMap, StatusCode};
use rwgi::{Environ, StartResponse};
use rwgi_conformance::server_suite::{self, CHECKS};
use rwgi_conformance::{Outcome, Report};
use rwgi_tower::AppService;
use support::{hyper_hosting, request, send};

/// Asserts that `report` passed every check of the server suite, in order, with nothing
/// skipped but the checks of the extensions plain hyper does not offer, upgrades among them (a
/// tower service has no connection to hand over).
fn assert_passes_everything(report: &Report) {
    report.assert_ok_offered();
    let names: Vec<&str> = report.results().iter().map(|result| result.name).collect();
    let expected: Vec<&str> = CHECKS.iter().map(|check| check.name).collect();
    assert_eq!(names, expected, "every check ran once");
    let not_passed: Vec<(&str, &str)> = report
        .results()
        .iter()
        .filter(|result| !matches!(result.outcome, Outcome::Pass | Outcome::Skip))
        .map(|result| (result.name, result.detail.as_str()))
        .collect();
    assert_eq!(
        not_passed,
        Vec::<(&str, &str)>::new(),
        "{}",
        report.summary()
    );
}

#[test]
fn an_app_service_on_hyper_passes_the_server_suite() {
    let report = server_suite::run(hyper_hosting(|app| app));
    assert_passes_everything(&report);
}

/// Answers with what the app was given: script name, path info, query and peer.
fn describe() -> impl rwgi::App {
    app_fn(|environ: Environ, start: StartResponse| async move {
        let text = format!(
            "script_name={} path_info={} query={} peer={}",
            environ.script_name(),
            environ.path_info(),
            environ.query_string(),
            environ
                .remote_addr()
                .map_or("-".into(), |peer| peer.to_string()),
        );
        Ok(start
            .start(StatusCode::OK, HeaderMap::new())
            .body(Full::new(text)))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_in_axum_the_prefix_becomes_script_name() {
    let router = axum::Router::new()
        .route("/", axum::routing::get(|| async { "axum's own" }))
        .nest_service("/api/v1", AppService::new(describe()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });

    let (answer, client) = send(
        address,
        request("GET", "/api/v1/users/a%2Fb?page=2", &[], ""),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.text(),
        format!("script_name=/api/v1 path_info=/users/a%2Fb query=page=2 peer={client}")
    );
    let (answer, client) = send(address, request("GET", "/api/v1", &[], "")).await;
    assert_eq!(
        answer.text(),
        format!("script_name=/api/v1 path_info= query= peer={client}")
    );
    let (answer, client) = send(address, request("GET", "/api/v1/", &[], "")).await;
    assert_eq!(
        answer.text(),
        format!("script_name=/api/v1 path_info=/ query= peer={client}")
    );
    let (answer, _) = send(address, request("GET", "/", &[], "")).await;
    assert_eq!(answer.text(), "axum's own");
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_axums_fallback_the_app_sees_the_whole_path() {
    let router = axum::Router::new().fallback_service(AppService::new(describe()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let (answer, _) = send(address, request("GET", "/x/y?z", &[], "")).await;
    assert_eq!(answer.status, StatusCode::OK);
    // Without `into_make_service_with_connect_info` axum knows no peer: neither does the app.
    assert_eq!(answer.text(), "script_name= path_info=/x/y query=z peer=-");
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_app_gets_a_500_that_says_why_in_an_extension() {
    use tower::ServiceExt;

    let failing = app_fn(|_, _: StartResponse| async move {
        Err::<rwgi::Response<rwgi::body::Empty>, _>(rwgi::Error::msg("no database"))
    });
    let panicking = app_fn(|_, _: StartResponse| async move {
        if true {
            panic!("app exploded");
        }
        Ok(StartResponse::new()
            .start(StatusCode::OK, HeaderMap::new())
            .body(rwgi::body::Empty))
    });
    for (app, reason) in [
        (rwgi::app::BoxApp::new(failing), "app error: no database"),
        (
            rwgi::app::BoxApp::new(panicking),
            "app panicked: app exploded",
        ),
    ] {
        let answer = AppService::new(app)
            .oneshot(request("GET", "/", &[], ""))
            .await
            .unwrap_or_else(|error| match error {});
        assert_eq!(answer.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            answer
                .extensions()
                .get::<rwgi_tower::AppFailure>()
                .map(|f| f.message()),
            Some(reason)
        );
    }
    // A request that cannot become an environ: no Host on HTTP/1.1.
    let no_host = rwgi::http::Request::get("/")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let answer = AppService::new(describe())
        .oneshot(no_host)
        .await
        .unwrap_or_else(|error| match error {});
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        answer
            .extensions()
            .get::<rwgi_tower::AppFailure>()
            .map(|f| f.message()),
        Some("answered 400: REQ-ENV-3: HTTP/1.1 request without a Host header")
    );
}

/// The server suite's start function for `axum::serve` with the suite's app as the router's
/// fallback service, both addresses from `into_make_service_with_connect_info::<SocketAddrs>`.
fn axum_serve_hosting(
    hosting: rwgi_conformance::server_suite::Hosting,
) -> rwgi_conformance::server_suite::ServerHandle {
    let (app, root_path) = hosting.into_parts();
    let mut service = AppService::new(app);
    if let Some(root_path) = root_path {
        service = service.root_path(&root_path).expect("a valid root path");
    }
    let router = axum::Router::new().fallback_service(service);
    let runtime = support::runtime();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("a free port");
    let address = listener.local_addr().expect("a bound socket");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    runtime.spawn(async move {
        let make_service = router.into_make_service_with_connect_info::<rwgi_tower::SocketAddrs>();
        axum::serve(listener, make_service)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    rwgi_conformance::server_suite::ServerHandle::new(address).on_stop(move || {
        let _ = stop.send(());
        runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    })
}

#[test]
fn an_app_service_under_axum_serve_passes_the_server_suite() {
    let report = server_suite::run(axum_serve_hosting);
    assert_passes_everything(&report);
}
