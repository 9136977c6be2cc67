//! The `App` and `Middleware` contracts as a server and a middleware author rely on them:
//! futures are `Send`, boxed apps behave like static ones, stacks apply in the documented order.

use std::sync::{Arc, Mutex};

use rwgi::app::{app_fn, BoxApp};
use rwgi::body::{BoxBody, Full};
use rwgi::http::{HeaderMap, HeaderValue, StatusCode};
use rwgi::middleware::{Identity, Stack};
use rwgi::{App, AppExt, Environ, Error, Middleware, Response, StartResponse};
use rwgi_conformance::test_client::{block_on, TestRequest};

fn hello() -> impl App<Body = Full> + Clone {
    app_fn(|environ: Environ, start: StartResponse| async move {
        let text = format!("{} {}", environ.method(), environ.path_info());
        Ok(start
            .start(StatusCode::OK, HeaderMap::new())
            .body(Full::new(text)))
    })
}

/// Records its name on the way in, and appends it to `x-trail` on the way out.
#[derive(Clone)]
struct Trail {
    name: &'static str,
    seen: Arc<Mutex<Vec<&'static str>>>,
}

struct TrailApp<A> {
    trail: Trail,
    inner: A,
}

impl<A: App> Middleware<A> for Trail {
    type App = TrailApp<A>;
    fn wrap(&self, inner: A) -> TrailApp<A> {
        TrailApp {
            trail: self.clone(),
            inner,
        }
    }
}

impl<A: App> App for TrailApp<A> {
    type Body = A::Body;

    async fn call(
        &self,
        environ: Environ,
        start: StartResponse,
    ) -> Result<Response<A::Body>, Error> {
        self.trail.seen.lock().unwrap().push(self.trail.name);
        let mut response = self.inner.call(environ, start).await?;
        response
            .headers_mut()
            .append("x-trail", HeaderValue::from_static(self.trail.name));
        Ok(response)
    }
}

fn assert_send<T: Send>(_: &T) {}
fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn app_futures_are_send_so_servers_can_spawn_them() {
    let app = hello();
    let future = app.call(TestRequest::get("/").into_environ(), StartResponse::new());
    assert_send(&future);
    let boxed = app.clone().boxed();
    let future = boxed.call(TestRequest::get("/").into_environ(), StartResponse::new());
    assert_send(&future);
    assert_send_sync::<BoxApp>();
    assert_send_sync::<rwgi::Environ>();
    assert_send_sync::<rwgi::Input>();
}

#[test]
fn a_future_holding_a_borrow_of_the_environ_across_an_await_is_send() {
    let app = app_fn(|environ: Environ, start: StartResponse| async move {
        let path = environ.path_info();
        std::future::ready(()).await;
        let text = path.to_owned();
        Ok(start
            .start(StatusCode::OK, HeaderMap::new())
            .body(Full::new(text)))
    });
    assert_send(&app.call(TestRequest::get("/p").into_environ(), StartResponse::new()));
    assert_eq!(block_on(TestRequest::get("/p").send(&app)).text(), "/p");
}

#[test]
fn boxed_and_shared_apps_answer_like_the_app() {
    let direct = block_on(TestRequest::get("/x").send(&hello()));
    let boxed = block_on(TestRequest::get("/x").send(&BoxApp::new(hello())));
    let shared = block_on(TestRequest::get("/x").send(&Arc::new(hello())));
    let borrowed = block_on(TestRequest::get("/x").send(&&hello()));
    for response in [&boxed, &shared, &borrowed] {
        assert_eq!(response.status(), direct.status());
        assert_eq!(response.body(), direct.body());
    }
    assert_eq!(direct.text(), "GET /x");
}

#[test]
fn stacks_apply_inner_first_so_the_outer_sees_requests_first() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let trail = |name| Trail {
        name,
        seen: seen.clone(),
    };
    let app = hello()
        .with(Stack::new(trail("inner"), trail("outer")))
        .with(Identity);
    let response = block_on(TestRequest::get("/").send(&app));
    assert_eq!(*seen.lock().unwrap(), ["outer", "inner"]);
    let trail: Vec<_> = response.headers().get_all("x-trail").iter().collect();
    assert_eq!(trail, ["inner", "outer"], "responses unwind inside out");
}

#[test]
fn an_app_error_becomes_a_500_with_nothing_leaked() {
    let failing = app_fn(|_: Environ, _: StartResponse| async move {
        Err::<Response<BoxBody>, _>(Error::msg("database password is hunter2"))
    });
    let response = block_on(TestRequest::get("/").send(&failing));
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(response.text(), "Internal Server Error\n");
    assert_eq!(
        response.failure(),
        Some("app error: database password is hunter2")
    );
}

#[test]
fn server_info_builders_set_what_the_getters_report() {
    use rwgi::environ::ServerInfo;

    let plain = ServerInfo::new("plain/1");
    assert_eq!(plain.software(), "plain/1");
    assert!(!plain.is_multithread() && !plain.is_multiprocess() && !plain.is_run_once());
    let every = ServerInfo::new("every/1")
        .multithread(true)
        .multiprocess(true)
        .run_once(true);
    assert!(every.is_multithread() && every.is_multiprocess() && every.is_run_once());
    // Each builder sets its own flag only, and can take it back.
    let once = ServerInfo::new("cgi/1").run_once(true);
    assert!(once.is_run_once() && !once.is_multithread() && !once.is_multiprocess());
    let forked = ServerInfo::new("prefork/1").multiprocess(true);
    assert!(forked.is_multiprocess() && !forked.is_multithread() && !forked.is_run_once());
    assert!(!every.run_once(false).is_run_once());
}

#[test]
fn set_status_changes_only_the_status() {
    let mut headers = HeaderMap::new();
    headers.insert("x-kept", HeaderValue::from_static("yes"));
    let mut response = StartResponse::new()
        .start(StatusCode::OK, headers)
        .body(Full::new("body"));
    response.set_status(StatusCode::NOT_FOUND);
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.headers()["x-kept"], "yes");
    let (status, _, body) = response.into_parts();
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(rwgi::body::Body::content_length(&body), Some(4));
}
