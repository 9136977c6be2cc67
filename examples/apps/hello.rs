//! The smallest useful app, and a middleware that does nothing, for measuring the contract's
//! own cost.
//!
//! [`Hello`] answers every request with the same static text: no allocation for the body, no
//! look at the request. [`hello_stack`] wraps it in three [`PassThrough`] layers, each a real
//! `async` wrapper as a logging or header-editing middleware would be, so a benchmark of
//! `hello` against `hello-stack` shows what a middleware layer costs.

use bytes::Bytes;
use rwgi::body::Full;
use rwgi::http::header::CONTENT_TYPE;
use rwgi::http::{HeaderMap, HeaderValue, StatusCode};
use rwgi::{App, AppExt, Environ, Error, Middleware, Response, StartResponse};

/// The body of every [`Hello`] answer.
pub const GREETING: &str = "Hello, World!\n";

/// Answers `200 OK`, `content-type: text/plain`, `Hello, World!\n` to every request.
#[derive(Clone, Copy, Debug, Default)]
pub struct Hello;

impl App for Hello {
    type Body = Full;

    async fn call(&self, _environ: Environ, start: StartResponse) -> Result<Response<Full>, Error> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        let body = Full::new(Bytes::from_static(GREETING.as_bytes()));
        Ok(start.start(StatusCode::OK, headers).body(body))
    }
}

/// A middleware that passes every request and answer through unchanged.
#[derive(Clone, Copy, Debug, Default)]
pub struct PassThrough;

/// The app [`PassThrough`] makes: awaits the inner app and returns its answer as is.
#[derive(Clone, Copy, Debug, Default)]
pub struct PassThroughApp<A>(A);

impl<A: App> Middleware<A> for PassThrough {
    type App = PassThroughApp<A>;

    fn wrap(&self, inner: A) -> PassThroughApp<A> {
        PassThroughApp(inner)
    }
}

impl<A: App> App for PassThroughApp<A> {
    type Body = A::Body;

    async fn call(
        &self,
        environ: Environ,
        start: StartResponse,
    ) -> Result<Response<A::Body>, Error> {
        self.0.call(environ, start).await
    }
}

/// [`Hello`] inside three [`PassThrough`] layers: the `hello-stack` app of the server.
pub fn hello_stack() -> impl App {
    Hello.with(PassThrough).with(PassThrough).with(PassThrough)
}
