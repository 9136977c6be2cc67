//! [`Middleware`]: wraps an app into another app.
//!
//! A middleware is a factory: given the inner app, it returns the wrapping app, which is an
//! [`App`] like any other. The wrapping app sees the [`Environ`](crate::Environ) first and may
//! change it, calls the inner app (or answers itself), and may change the status, headers and
//! body of the inner answer before returning it (REQ-MW-1).
//!
//! # Writing one
//!
//! A wrapper that only reads or edits passes the server's [`StartResponse`](crate::StartResponse)
//! straight through and edits the returned [`Response`](crate::Response): no extra allocation,
//! no extra work.
//!
//! ```
//! use rwgi::http::{header, HeaderValue};
//! use rwgi::{App, Environ, Error, Middleware, Response, StartResponse};
//!
//! /// Adds `X-Frame-Options: DENY` to every response.
//! #[derive(Clone, Copy, Debug)]
//! struct DenyFraming;
//!
//! #[derive(Debug)]
//! struct DenyFramingApp<A>(A);
//!
//! impl<A: App> Middleware<A> for DenyFraming {
//!     type App = DenyFramingApp<A>;
//!     fn wrap(&self, inner: A) -> DenyFramingApp<A> {
//!         DenyFramingApp(inner)
//!     }
//! }
//!
//! impl<A: App> App for DenyFramingApp<A> {
//!     type Body = A::Body;
//!
//!     async fn call(&self, environ: Environ, start: StartResponse) -> Result<Response<A::Body>, Error> {
//!         let mut response = self.0.call(environ, start).await?;
//!         response.headers_mut().insert("x-frame-options", HeaderValue::from_static("DENY"));
//!         Ok(response)
//!     }
//! }
//! ```
//!
//! Pass inward the callback you received, never one of your own: the server's callback carries
//! the response's extensions, and the lint reports a response made from another callback
//! (REQ-START-1).
//!
//! ```
//! # use rwgi::{App, Environ, Error, Response, StartResponse};
//! # struct Layer<A>(A);
//! # impl<A: App> Layer<A> {
//! async fn wrong(&self, environ: Environ, _start: StartResponse) -> Result<Response<A::Body>, Error> {
//!     self.0.call(environ, StartResponse::new()).await // drops the server's extensions
//! }
//!
//! async fn right(&self, environ: Environ, start: StartResponse) -> Result<Response<A::Body>, Error> {
//!     self.0.call(environ, start).await
//! }
//! # }
//! ```
//!
//! A wrapper that only looks at or edits the request can skip the `async` block altogether and
//! return the inner app's future: it then adds no state and no poll of its own, so the layer
//! costs nothing per request (`BENCHMARKS.md` measures it).
//!
//! ```
//! use std::future::Future;
//! use rwgi::http::HeaderValue;
//! use rwgi::{App, Environ, Error, Response, StartResponse};
//!
//! /// Tags every request with the name of the front end it came through.
//! #[derive(Debug)]
//! struct TagFrontEnd<A>(A);
//!
//! impl<A: App> App for TagFrontEnd<A> {
//!     type Body = A::Body;
//!
//!     fn call(
//!         &self,
//!         mut environ: Environ,
//!         start: StartResponse,
//!     ) -> impl Future<Output = Result<Response<A::Body>, Error>> + Send {
//!         environ.headers_mut().insert("x-front-end", HeaderValue::from_static("edge-1"));
//!         self.0.call(environ, start)
//!     }
//! }
//! ```
//!
//! A wrapper that must answer differently from the inner app (a cache, an auth check) simply
//! does not call it, and uses the `StartResponse` it was given itself.

use crate::App;

/// Wraps an [`App`] of type `A` into another app.
///
/// # Implementer notes
///
/// - Pass every request on unless answering it yourself is the point (REQ-MW-1).
/// - Keep the body streaming: yield each chunk of the inner body as it comes, never collect
///   the whole body first unless that is the middleware's purpose (REQ-MW-2).
/// - When you change the body's length, fix or remove `Content-Length` (REQ-MW-3).
/// - Drop the inner body when yours is dropped, so the inner app's cleanup runs (REQ-MW-4).
///
/// ```
/// use rwgi::middleware::Middleware;
/// use rwgi::App;
///
/// /// Wraps any app in a `Box`: the smallest middleware there is.
/// struct Boxed;
///
/// impl<A: App> Middleware<A> for Boxed {
///     type App = Box<A>;
///     fn wrap(&self, inner: A) -> Box<A> {
///         Box::new(inner)
///     }
/// }
/// # let app = rwgi::app::app_fn(|_, start: rwgi::StartResponse| async move {
/// #     Ok(start.start(Default::default(), Default::default()).body(rwgi::body::Empty))
/// # });
/// let wrapped = Boxed.wrap(app);
/// # let _ = wrapped;
/// ```
pub trait Middleware<A> {
    /// The wrapping app.
    type App: App;

    /// Wraps `inner`.
    fn wrap(&self, inner: A) -> Self::App;
}

impl<A, M: Middleware<A>> Middleware<A> for &M {
    type App = M::App;

    fn wrap(&self, inner: A) -> M::App {
        (**self).wrap(inner)
    }
}

/// The middleware that wraps nothing: `Identity.wrap(app)` is `app`.
///
/// ```
/// use rwgi::middleware::{Identity, Middleware};
/// use rwgi::app::app_fn;
///
/// let app = app_fn(|_, start: rwgi::StartResponse| async move {
///     Ok(start.start(Default::default(), Default::default()).body(rwgi::body::Empty))
/// });
/// let same = Identity.wrap(app);
/// # fn assert_app<A: rwgi::App>(_: &A) {}
/// # assert_app(&same);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Identity;

impl<A: App> Middleware<A> for Identity {
    type App = A;

    fn wrap(&self, inner: A) -> A {
        inner
    }
}

/// Two middleware as one: `Stack::new(inner, outer)` wraps with `inner` first, then `outer`, so
/// `outer` sees each request first. Build reusable stacks with it; wrap single apps with
/// [`AppExt::with`](crate::AppExt::with).
///
/// ```
/// use rwgi::middleware::{Identity, Middleware, Stack};
///
/// let stack = Stack::new(Identity, Stack::new(Identity, Identity));
/// # let app = rwgi::app::app_fn(|_, start: rwgi::StartResponse| async move {
/// #     Ok(start.start(Default::default(), Default::default()).body(rwgi::body::Empty))
/// # });
/// let wrapped = stack.wrap(app);
/// # fn assert_app<A: rwgi::App>(_: &A) {}
/// # assert_app(&wrapped);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Stack<Inner, Outer> {
    inner: Inner,
    outer: Outer,
}

impl<Inner, Outer> Stack<Inner, Outer> {
    /// A stack that applies `inner`, then `outer`.
    pub fn new(inner: Inner, outer: Outer) -> Self {
        Stack { inner, outer }
    }
}

impl<A, Inner, Outer> Middleware<A> for Stack<Inner, Outer>
where
    Inner: Middleware<A>,
    Outer: Middleware<Inner::App>,
{
    type App = Outer::App;

    fn wrap(&self, app: A) -> Outer::App {
        self.outer.wrap(self.inner.wrap(app))
    }
}
