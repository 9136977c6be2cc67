//! An axum router with tower-http's compression and timeout layers, hosted as an rwgi app
//! through `ServiceApp`: it passes the app suite, and answers real HTTP correctly behind
//! `rwgi-server`.

mod support;

use std::io::Read;
use std::time::{Duration, Instant};

use rwgi::http::StatusCode;
use rwgi_conformance::app_suite::{self, APP_CHECKS};
use rwgi_conformance::Outcome;
use rwgi_tower::ServiceApp;
use support::{big_text, request, router, send, start_rwgi_server, TIMEOUT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_passes_the_app_suite() {
    let app = ServiceApp::new(router());
    let report = app_suite::run(&app).await;
    report.assert_ok_strict();
    let names: Vec<&str> = report.results().iter().map(|result| result.name).collect();
    let expected: Vec<&str> = APP_CHECKS.iter().map(|check| check.name).collect();
    assert_eq!(names, expected, "every app check ran once");
    let skipped: Vec<(&str, &str)> = report
        .results()
        .iter()
        .filter(|result| result.outcome == Outcome::Skip)
        .map(|result| (result.name, result.detail.as_str()))
        .collect();
    assert_eq!(skipped, Vec::<(&str, &str)>::new(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_answers_real_http_behind_rwgi_server() {
    let (address, _stop) = start_rwgi_server(ServiceApp::new(router()), None).await;

    let (answer, _) = send(address, request("GET", "/", &[], "")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.text(), "Hello, world!");
    assert_eq!(answer.header("content-length"), Some("13"));

    let (answer, _) = send(address, request("HEAD", "/", &[], "")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("content-length"), Some("13"));
    assert!(answer.body.is_empty());

    // The upload streams through axum and back.
    let (answer, _) = send(address, request("POST", "/", &[], "echo me, please")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.text(), "echo me, please");

    let (answer, _) = send(address, request("GET", "/missing", &[], "")).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compression_layer_compresses_through_the_bridge() {
    let (address, _stop) = start_rwgi_server(ServiceApp::new(router()), None).await;
    let text = big_text();

    let (plain, _) = send(address, request("GET", "/big", &[], "")).await;
    assert_eq!(plain.status, StatusCode::OK);
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.text(), text);

    let (gzipped, _) = send(
        address,
        request("GET", "/big", &[("accept-encoding", "gzip")], ""),
    )
    .await;
    assert_eq!(gzipped.status, StatusCode::OK);
    assert_eq!(gzipped.header("content-encoding"), Some("gzip"));
    assert!(
        gzipped.body.len() < text.len() / 10,
        "{} bytes compressed from {}",
        gzipped.body.len(),
        text.len()
    );
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(&gzipped.body[..])
        .read_to_string(&mut unzipped)
        .expect("valid gzip");
    assert_eq!(unzipped, text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeout_layer_answers_408_through_the_bridge() {
    let (address, _stop) = start_rwgi_server(ServiceApp::new(router()), None).await;
    let started = Instant::now();
    let (answer, _) = send(address, request("GET", "/slow", &[], "")).await;
    let took = started.elapsed();
    assert_eq!(answer.status, StatusCode::REQUEST_TIMEOUT);
    assert!(answer.body.is_empty());
    assert!(took >= TIMEOUT, "answered after {took:?}");
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_sees_the_peer_the_full_uri_and_the_script_name() {
    let (address, _stop) = start_rwgi_server(ServiceApp::new(router()), None).await;
    let (answer, client) = send(address, request("GET", "/whoami?x=1", &[], "")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.text(),
        format!("peer={client} original=/whoami?x=1 uri=/whoami?x=1 script_name=-")
    );

    // Mounted at a root path: axum routes on PATH_INFO and still sees what the client sent.
    let (address, _stop) = start_rwgi_server(ServiceApp::new(router()), Some("/app".into())).await;
    let (answer, client) = send(address, request("GET", "/app/whoami?x=1", &[], "")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.text(),
        format!("peer={client} original=/app/whoami?x=1 uri=/whoami?x=1 script_name=/app")
    );

    // A router nested in axum under the mount: axum's own NestedPath and OriginalUri.
    let (answer, _) = send(address, request("GET", "/app/nested/inner", &[], "")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.text(),
        "nested_path=/nested original=/app/nested/inner uri=/inner"
    );

    // Outside the root path the server answers without calling the app.
    let (answer, _) = send(address, request("GET", "/whoami", &[], "")).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    let (answer, _) = send(address, request("GET", "/app", &[], "")).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "the mount point itself is `/` to axum"
    );
    assert_eq!(answer.text(), "Hello, world!");
}
