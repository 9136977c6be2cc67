//! Each middleware passes the app suite: the access log as middleware (`run_middleware`, every
//! middleware check), the URL map as the app it is, mounting apps at several prefixes.

use rwgi::app::app_fn;
use rwgi::body::Full;
use rwgi::http::StatusCode;
use rwgi::{AppExt, Environ, StartResponse};
use rwgi_conformance::app_suite::{run_blocking, run_middleware};
use rwgi_conformance::test_client::block_on;
use rwgi_middleware::{AccessLog, UrlMap};

fn hello() -> impl rwgi::App + Clone {
    app_fn(|_: Environ, start: StartResponse| async move {
        Ok(start
            .start(StatusCode::OK, Default::default())
            .body(Full::new("Hello, World!\n")))
    })
}

#[test]
fn access_log_passes_as_middleware() {
    block_on(run_middleware(&AccessLog::with_sink(|_| {}))).assert_ok_strict();
}

#[test]
fn an_app_behind_the_access_log_passes() {
    run_blocking(&hello().with(AccessLog::with_sink(|_| {}))).assert_ok_strict();
}

#[test]
fn url_map_passes_with_and_without_a_root_app() {
    let app = UrlMap::new()
        .mount("/mnt/app", hello())
        .mount("/api", hello())
        .mount("", hello());
    run_blocking(&app).assert_ok_strict();
    run_blocking(&UrlMap::new().mount("/mnt", hello())).assert_ok_strict();
}

#[test]
fn proxy_headers_pass_as_middleware() {
    use rwgi_middleware::ProxyHeaders;
    // Trusting every peer, so the middleware rewrites every environ the suite sends.
    block_on(run_middleware(&ProxyHeaders::new("*".parse().unwrap()))).assert_ok_strict();
}
