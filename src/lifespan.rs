//! [`Lifespan`]: an app's startup and shutdown, and the state every request shares (spec §14.3).
//!
//! Some work belongs to the life of the app rather than to a request: opening a database pool,
//! warming a cache, flushing buffers on exit. An app describes it as a [`Lifespan`], which the
//! program hands to the server beside the app. A server that supports lifespans
//! (`rwgi-server` does) runs [`startup`](Lifespan::startup) once in each process that serves
//! the app, before the first request; puts a clone of the [`State`](Lifespan::State) it
//! returned in the extensions of every request's environ, where the app finds it by type
//! (REQ-LIFE-2); and runs [`shutdown`](Lifespan::shutdown) once the last request in flight has
//! finished (REQ-LIFE-4). A failed startup stops the server before it serves anything
//! (REQ-LIFE-3).
//!
//! The state reaches the app through every middleware, which passes the environ's extensions
//! on (REQ-EXT-2, REQ-CAP-2). An app finds no state when its server does not support
//! lifespans, or was not given this one: it then falls back, by running its startup itself
//! before it hands the app to the server, or on its first request (REQ-EXT-1).
//!
//! ```
//! use std::sync::Arc;
//! use rwgi::body::{Body, Full};
//! use rwgi::lifespan::Lifespan;
//! use rwgi::{Environ, Error, Response, StartResponse};
//!
//! /// What every request shares: cheap to clone.
//! #[derive(Clone, Debug)]
//! struct Pool(Arc<String>);
//!
//! #[derive(Debug)]
//! struct Database;
//!
//! impl Lifespan for Database {
//!     type State = Pool;
//!
//!     async fn startup(&self) -> Result<Pool, Error> {
//!         Ok(Pool(Arc::new("postgres://db/app".to_owned()))) // connect here
//!     }
//!
//!     async fn shutdown(&self, pool: Pool) -> Result<(), Error> {
//!         drop(pool); // close connections, flush, here
//!         Ok(())
//!     }
//! }
//!
//! async fn handler(environ: Environ, start: StartResponse) -> Result<Response<Full>, Error> {
//!     let text = match environ.extensions().get::<Pool>() {
//!         Some(pool) => format!("using {}\n", pool.0),
//!         // No lifespan support, or not given ours: fall back (REQ-EXT-1).
//!         None => "no pool\n".to_owned(),
//!     };
//!     Ok(start.start(Default::default(), Default::default()).body(Full::new(text)))
//! }
//!
//! // What a server does, through the type-erased form.
//! use rwgi::lifespan::BoxLifespan;
//! use rwgi_conformance::test_client::{block_on, TestRequest};
//!
//! let lifespan = BoxLifespan::new(Database);
//! let running = block_on(lifespan.startup()).expect("startup succeeds");
//! let mut environ = TestRequest::get("/").into_environ();
//! running.provide(&mut environ);
//! let response = block_on(handler(environ, StartResponse::new())).unwrap();
//! assert_eq!(response.body().content_length(), Some(24)); // "using postgres://db/app\n"
//! let fallback = block_on(handler(TestRequest::get("/").into_environ(), StartResponse::new()));
//! assert_eq!(fallback.unwrap().body().content_length(), Some(8)); // "no pool\n"
//! block_on(running.shutdown()).expect("shutdown succeeds");
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::{Environ, Error};

/// The startup and shutdown of an app, and the state its requests share (REQ-LIFE-1..4).
///
/// # Protocol
///
/// A server that supports lifespans calls [`startup`](Lifespan::startup) once per process
/// that serves the app, before it calls the app for any request. When it succeeds, every
/// request's environ carries a clone of the state in its extensions; when it fails (or
/// panics), the server serves nothing, logs the error and exits with a failure status. After
/// a stop, once no request is in flight any more, the server calls
/// [`shutdown`](Lifespan::shutdown) once with the state; its error is logged.
///
/// # Implementer notes
///
/// - Make the state cheap to clone (an `Arc`, or a pool handle that is one): each request
///   gets a clone.
/// - Give the state a type of your own, not a common one like `String` or `Arc<Mutex<..>>`:
///   the app finds it by type among the other extensions.
/// - Do not block: both methods run on the server's executor (REQ-CONC-3).
///
/// ```
/// use rwgi::lifespan::Lifespan;
/// use rwgi::Error;
///
/// #[derive(Clone, Debug)]
/// struct Settings {
///     greeting: &'static str,
/// }
///
/// /// Reads its settings at startup; nothing to do at shutdown (the default).
/// #[derive(Debug)]
/// struct Configure;
///
/// impl Lifespan for Configure {
///     type State = Settings;
///
///     async fn startup(&self) -> Result<Settings, Error> {
///         Ok(Settings { greeting: "hello" })
///     }
/// }
/// # let _ = Configure;
/// ```
pub trait Lifespan: Send + Sync + 'static {
    /// What every request gets a clone of, in its environ's extensions.
    type State: Clone + Send + Sync + 'static;

    /// Prepares the app to serve: opens pools, warms caches.
    ///
    /// # Errors
    ///
    /// When the app cannot serve; the server then stops with this error (REQ-LIFE-3).
    fn startup(&self) -> impl Future<Output = Result<Self::State, Error>> + Send;

    /// Winds the app down once the server stopped and no request is in flight: flushes,
    /// closes. The default does nothing.
    ///
    /// # Errors
    ///
    /// When winding down failed; the server logs it.
    fn shutdown(&self, state: Self::State) -> impl Future<Output = Result<(), Error>> + Send {
        drop(state);
        std::future::ready(Ok(()))
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The object-safe form of [`Lifespan`], behind [`BoxLifespan`].
trait DynLifespan: Send + Sync {
    fn startup_boxed(&self) -> BoxFuture<'static, Result<Running, Error>>;
}

/// A lifespan shared between [`BoxLifespan`] and the [`Running`] state it started.
struct Shared<L>(Arc<L>);

impl<L: Lifespan> DynLifespan for Shared<L> {
    fn startup_boxed(&self) -> BoxFuture<'static, Result<Running, Error>> {
        let lifespan = Arc::clone(&self.0);
        Box::pin(async move {
            let state = lifespan.startup().await?;
            Ok(Running {
                state: Box::new(Started { lifespan, state }),
                shut_down: AtomicBool::new(false),
            })
        })
    }
}

/// Any [`Lifespan`], type-erased: what a server keeps and runs.
///
/// ```
/// use rwgi::lifespan::{BoxLifespan, Lifespan};
/// use rwgi::Error;
///
/// #[derive(Debug)]
/// struct Failing;
///
/// impl Lifespan for Failing {
///     type State = ();
///     async fn startup(&self) -> Result<(), Error> {
///         Err(Error::msg("the database is unreachable"))
///     }
/// }
///
/// let error = rwgi_conformance::test_client::block_on(BoxLifespan::new(Failing).startup()).unwrap_err();
/// assert_eq!(error.to_string(), "the database is unreachable");
/// ```
#[derive(Clone)]
pub struct BoxLifespan {
    inner: Arc<dyn DynLifespan>,
}

impl BoxLifespan {
    /// Erases the type of `lifespan`.
    pub fn new<L: Lifespan>(lifespan: L) -> Self {
        BoxLifespan {
            inner: Arc::new(Shared(Arc::new(lifespan))),
        }
    }

    /// Runs the app's startup; the [`Running`] state it returns provides every request and
    /// shuts down at the end.
    ///
    /// # Errors
    ///
    /// The startup's error, which the server reports before it stops (REQ-LIFE-3).
    pub fn startup(&self) -> impl Future<Output = Result<Running, Error>> + Send + 'static {
        self.inner.startup_boxed()
    }
}

impl<L: Lifespan> From<L> for BoxLifespan {
    fn from(lifespan: L) -> Self {
        BoxLifespan::new(lifespan)
    }
}

impl fmt::Debug for BoxLifespan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoxLifespan").finish_non_exhaustive()
    }
}

/// The object-safe form of a started lifespan's state, behind [`Running`].
trait DynState: Send + Sync {
    fn provide(&self, environ: &mut Environ);
    fn shutdown(&self) -> BoxFuture<'static, Result<(), Error>>;
}

struct Started<L: Lifespan> {
    lifespan: Arc<L>,
    state: L::State,
}

impl<L: Lifespan> DynState for Started<L> {
    fn provide(&self, environ: &mut Environ) {
        environ.extensions_mut().insert(self.state.clone());
    }

    fn shutdown(&self) -> BoxFuture<'static, Result<(), Error>> {
        let lifespan = Arc::clone(&self.lifespan);
        let state = self.state.clone();
        Box::pin(async move { lifespan.shutdown(state).await })
    }
}

/// A lifespan whose startup succeeded: it gives each request the state, and shuts down once.
///
/// See the [module documentation](self) for an example.
pub struct Running {
    state: Box<dyn DynState>,
    shut_down: AtomicBool,
}

impl Running {
    /// Puts a clone of the state in the environ's extensions (REQ-LIFE-2): a server calls it
    /// for every request before it calls the app.
    pub fn provide(&self, environ: &mut Environ) {
        self.state.provide(environ);
    }

    /// Runs the app's shutdown with the state (REQ-LIFE-4): a server calls it after the last
    /// request in flight finished. Only the first call runs it; later ones complete at once.
    ///
    /// It borrows, so that a server can call it while abandoned connections still hold what
    /// they share with it.
    ///
    /// # Errors
    ///
    /// The shutdown's error, for the server's log.
    pub fn shutdown(&self) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        let first = !self.shut_down.swap(true, Ordering::SeqCst);
        let shutdown = first.then(|| self.state.shutdown());
        async move {
            match shutdown {
                Some(shutdown) => shutdown.await,
                None => Ok(()),
            }
        }
    }
}

impl fmt::Debug for Running {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Running").finish_non_exhaustive()
    }
}
