//! [`App`]: the one entry point that frameworks implement and servers call.
//!
//! An app is called once per request with the [`Environ`] and a [`StartResponse`], and
//! returns a future of its [`Response`]. The trait uses static dispatch (no boxing on the hot
//! path); [`BoxApp`] erases the type where a router needs a collection of different apps, and
//! [`app_fn`] turns a closure into an app.
//!
//! The future borrows the app (`&self`), so a server keeps one app (in an `Arc`, say) and calls
//! it for every request without cloning it first (REQ-APP-2).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::body::{Body, BoxBody};
use crate::middleware::Middleware;
use crate::{Environ, Error, Response, StartResponse};

/// A web application, as a server calls it.
///
/// # Protocol
///
/// The server calls [`call`](App::call) once per request, possibly concurrently from several
/// threads when [`ServerInfo::is_multithread`](crate::environ::ServerInfo::is_multithread)
/// says so (REQ-CONC-1), and drives the returned future to completion or drops it when the
/// client goes away (REQ-CONC-2). Then it sends the response and polls the body.
///
/// # Implementer notes
///
/// - Answer through `start`: the only way to build the [`Response`] to return (REQ-START-1).
/// - Return `Err` when there is no answer to give: the server sends `500 Internal Server Error`
///   (REQ-ERR-2). Nothing has reached the client yet at that point.
/// - Do not block the thread: the future runs on the server's executor. Move blocking work to
///   a thread pool of your own (REQ-CONC-3).
/// - Do not panic. Servers catch panics as a last resort (REQ-ERR-4), but a panic is a bug.
///
/// ```
/// use rwgi::body::Full;
/// use rwgi::http::{HeaderMap, StatusCode};
/// use rwgi::{App, Environ, Error, Response, StartResponse};
///
/// /// Answers every request with the length of its body.
/// struct Measure;
///
/// impl App for Measure {
///     type Body = Full;
///
///     async fn call(&self, mut environ: Environ, start: StartResponse) -> Result<Response<Full>, Error> {
///         let body = environ.input_mut().read_to_end(1 << 20).await.map_err(Error::new)?;
///         let text = format!("{} bytes\n", body.len());
///         Ok(start.start(StatusCode::OK, HeaderMap::new()).body(Full::new(text)))
///     }
/// }
/// # fn assert_app<A: App>(_: &A) {}
/// # assert_app(&Measure);
/// ```
pub trait App: Send + Sync {
    /// The response body type.
    ///
    /// `Unpin` lets servers and middleware hold the body without boxing it; a body built on a
    /// stream that is not `Unpin` is boxed once, with `Box::pin`.
    type Body: Body + Send + Unpin + 'static;

    /// Handles one request.
    ///
    /// # Errors
    ///
    /// When the app has no response to give; the server answers `500`.
    fn call(
        &self,
        environ: Environ,
        start: StartResponse,
    ) -> impl Future<Output = Result<Response<Self::Body>, Error>> + Send;
}

impl<A: App> App for &A {
    type Body = A::Body;

    fn call(
        &self,
        environ: Environ,
        start: StartResponse,
    ) -> impl Future<Output = Result<Response<Self::Body>, Error>> + Send {
        (**self).call(environ, start)
    }
}

impl<A: App> App for Arc<A> {
    type Body = A::Body;

    fn call(
        &self,
        environ: Environ,
        start: StartResponse,
    ) -> impl Future<Output = Result<Response<Self::Body>, Error>> + Send {
        (**self).call(environ, start)
    }
}

impl<A: App> App for Box<A> {
    type Body = A::Body;

    fn call(
        &self,
        environ: Environ,
        start: StartResponse,
    ) -> impl Future<Output = Result<Response<Self::Body>, Error>> + Send {
        (**self).call(environ, start)
    }
}

/// Conveniences for every [`App`].
///
/// ```
/// use rwgi::app::{app_fn, AppExt, BoxApp};
/// use rwgi::middleware::Identity;
///
/// let app = app_fn(|_, start: rwgi::StartResponse| async move {
///     Ok(start.start(Default::default(), Default::default()).body(rwgi::body::Empty))
/// });
/// let boxed: BoxApp = app.with(Identity).boxed();
/// # let _ = boxed;
/// ```
pub trait AppExt: App + Sized {
    /// Wraps this app in `middleware`. Calls chain outward: in
    /// `app.with(a).with(b)`, `b` sees each request first.
    ///
    /// ```
    /// use rwgi::middleware::Identity;
    /// use rwgi::app::{app_fn, AppExt};
    /// use rwgi::body::Empty;
    /// use rwgi::http::{HeaderMap, StatusCode};
    ///
    /// let app = app_fn(|_environ, start: rwgi::StartResponse| async move {
    ///     Ok(start.start(StatusCode::NO_CONTENT, HeaderMap::new()).body(Empty))
    /// });
    /// let wrapped = app.with(Identity).with(Identity);
    /// # fn assert_app<A: rwgi::App>(_: &A) {}
    /// # assert_app(&wrapped);
    /// ```
    fn with<M: Middleware<Self>>(self, middleware: M) -> M::App {
        middleware.wrap(self)
    }

    /// Erases the app's type.
    fn boxed(self) -> BoxApp
    where
        Self: 'static,
    {
        BoxApp::new(self)
    }
}

impl<A: App> AppExt for A {}

type BoxFuture<'a> = Pin<Box<dyn Future<Output = Result<Response<BoxBody>, Error>> + Send + 'a>>;

/// The object-safe form of [`App`], behind [`BoxApp`].
trait DynApp: Send + Sync {
    fn call_boxed(&self, environ: Environ, start: StartResponse) -> BoxFuture<'_>;
}

impl<A: App> DynApp for A {
    fn call_boxed(&self, environ: Environ, start: StartResponse) -> BoxFuture<'_> {
        Box::pin(async move { Ok(self.call(environ, start).await?.map_body(BoxBody::new)) })
    }
}

/// Any app, type-erased: for routers that hold apps of different types, and plugin systems.
///
/// Costs one allocation for the future and one for the body per call; the static form
/// costs none.
///
/// ```
/// use rwgi::app::{app_fn, BoxApp};
/// use rwgi::body::Full;
/// use rwgi::http::{HeaderMap, StatusCode};
///
/// let routes: Vec<(&str, BoxApp)> = vec![
///     ("/a", BoxApp::new(app_fn(|_, start: rwgi::StartResponse| async move {
///         Ok(start.start(StatusCode::OK, HeaderMap::new()).body(Full::new("a")))
///     }))),
///     ("/b", BoxApp::new(app_fn(|_, start: rwgi::StartResponse| async move {
///         Ok(start.start(StatusCode::OK, HeaderMap::new()).body(rwgi::body::Empty))
///     }))),
/// ];
/// assert_eq!(routes.len(), 2);
/// ```
#[derive(Clone)]
pub struct BoxApp {
    inner: Arc<dyn DynApp>,
}

impl BoxApp {
    /// Erases the type of `app`.
    pub fn new<A: App + 'static>(app: A) -> Self {
        BoxApp {
            inner: Arc::new(app),
        }
    }
}

impl fmt::Debug for BoxApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoxApp").finish_non_exhaustive()
    }
}

impl App for BoxApp {
    type Body = BoxBody;

    fn call(
        &self,
        environ: Environ,
        start: StartResponse,
    ) -> impl Future<Output = Result<Response<BoxBody>, Error>> + Send {
        self.inner.call_boxed(environ, start)
    }
}

/// An app made from a closure that returns a future; see [`app_fn`].
///
/// ```
/// use rwgi::app::{app_fn, AppFn};
///
/// let app: AppFn<_> = app_fn(|_, start: rwgi::StartResponse| async move {
///     Ok(start.start(Default::default(), Default::default()).body(rwgi::body::Empty))
/// });
/// let response = rwgi_conformance::test_client::block_on(rwgi_conformance::test_client::TestRequest::get("/").send(&app));
/// assert_eq!(response.status(), 200);
/// ```
#[derive(Clone, Copy)]
pub struct AppFn<F> {
    f: F,
}

/// Turns a closure `Fn(Environ, StartResponse) -> impl Future<Output = Result<Response<B>, Error>>`
/// into an [`App`].
///
/// ```
/// use rwgi::app::app_fn;
/// use rwgi::body::Full;
/// use rwgi::http::{HeaderMap, StatusCode};
/// use rwgi::{Environ, StartResponse};
///
/// let app = app_fn(|environ: Environ, start: StartResponse| async move {
///     let greeting = format!("{} {}", environ.method(), environ.path_info());
///     Ok(start.start(StatusCode::OK, HeaderMap::new()).body(Full::new(greeting)))
/// });
/// # fn assert_app<A: rwgi::App>(_: &A) {}
/// # assert_app(&app);
/// ```
pub fn app_fn<F, Fut, B>(f: F) -> AppFn<F>
where
    F: Fn(Environ, StartResponse) -> Fut + Send + Sync,
    Fut: Future<Output = Result<Response<B>, Error>> + Send,
    B: Body + Send + Unpin + 'static,
{
    AppFn { f }
}

impl<F> fmt::Debug for AppFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppFn").finish_non_exhaustive()
    }
}

impl<F, Fut, B> App for AppFn<F>
where
    F: Fn(Environ, StartResponse) -> Fut + Send + Sync,
    Fut: Future<Output = Result<Response<B>, Error>> + Send,
    B: Body + Send + Unpin + 'static,
{
    type Body = B;

    fn call(
        &self,
        environ: Environ,
        start: StartResponse,
    ) -> impl Future<Output = Result<Response<B>, Error>> + Send {
        (self.f)(environ, start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::Empty;

    #[test]
    fn boxed_and_closure_apps_say_what_they_are() {
        let app = app_fn(|_, start: StartResponse| async move {
            Ok(start
                .start(Default::default(), Default::default())
                .body(Empty))
        });
        assert!(format!("{app:?}").starts_with("AppFn"));
        assert!(format!("{:?}", BoxApp::new(app)).starts_with("BoxApp"));
    }
}
