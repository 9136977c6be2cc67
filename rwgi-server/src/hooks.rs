//! Server hooks (see [`Hooks`]).

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use rwgi::http::{Method, StatusCode, Uri, Version};

/// Code the server calls at points of its life and of each request, the Rust form of
/// gunicorn's server hooks; every method defaults to doing nothing.
///
/// Implement the ones you need. Which process calls each one:
///
/// | method | process | gunicorn's name |
/// |---|---|---|
/// | [`on_starting`](Hooks::on_starting) | master, once, before binding | `on_starting` |
/// | [`when_ready`](Hooks::when_ready) | master (or the single process), once the sockets are bound | `when_ready` |
/// | [`on_reload`](Hooks::on_reload) | master, on `SIGHUP` | `on_reload` |
/// | [`worker_spawned`](Hooks::worker_spawned) | master, after starting a worker | `post_fork` |
/// | [`worker_started`](Hooks::worker_started) | worker, before it accepts | `post_worker_init` |
/// | [`before_request`](Hooks::before_request) | worker, before the app is called | `pre_request` |
/// | [`after_request`](Hooks::after_request) | worker, once the response ended | `post_request` |
/// | [`worker_exiting`](Hooks::worker_exiting) | worker, after it stopped serving | `worker_exit` (worker side) |
/// | [`worker_exited`](Hooks::worker_exited) | master, after a worker ended | `child_exit` |
/// | [`worker_aborted`](Hooks::worker_aborted) | master, after killing a worker that stopped responding | `worker_abort` |
/// | [`on_exit`](Hooks::on_exit) | master (or the single process), last | `on_exit` |
///
/// In single-process mode (and with [`Server::builder`](crate::Server::builder)) the one
/// process is both: it calls the master's start and exit hooks and the worker's hooks, with
/// worker id `0`, and never calls `worker_spawned`, `worker_exited` or `worker_aborted`.
///
/// Hooks run on the server's own threads: the per-request ones on the runtime's threads, in
/// the middle of serving. They must be quick, must not block (send slow work elsewhere) and
/// must not panic: `after_request` runs while the server drops the response.
/// A server without hooks pays nothing per request for them.
///
/// ```no_run
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
/// use rwgi_server::{Hooks, Outcome, RequestInfo};
///
/// #[derive(Debug, Default)]
/// struct SlowRequests {
///     count: AtomicU64,
/// }
///
/// impl Hooks for SlowRequests {
///     fn after_request(&self, request: &RequestInfo<'_>, outcome: &Outcome) {
///         if outcome.duration().as_millis() > 500 {
///             self.count.fetch_add(1, Ordering::Relaxed);
///             eprintln!("slow: {} {}", request.method(), request.target());
///         }
///     }
/// }
///
/// fn main() -> std::process::ExitCode {
/// #   let app = rwgi::app::app_fn(|_, start: rwgi::StartResponse| async move {
/// #       Ok(start.start(rwgi::http::StatusCode::OK, Default::default()).body(rwgi::body::Empty))
/// #   });
///     rwgi_server::run_with(app, Arc::new(SlowRequests::default()))
/// }
/// ```
///
/// Set with [`Builder::hooks`](crate::Builder::hooks) or [`run_with`](crate::run_with).
pub trait Hooks: Send + Sync + fmt::Debug + 'static {
    /// The master process starts, before it binds any socket (gunicorn: `on_starting`).
    fn on_starting(&self) {}

    /// The sockets are bound and the server is about to accept (gunicorn: `when_ready`).
    /// `addresses` describes each listener, like `http://127.0.0.1:8000` or `unix:/run/a.sock`.
    fn when_ready(&self, addresses: &[String]) {
        let _ = addresses;
    }

    /// The master re-read its settings on `SIGHUP` and is replacing its workers (gunicorn:
    /// `on_reload`).
    fn on_reload(&self) {}

    /// The master started worker `worker_id` as process `pid` (gunicorn: `post_fork`).
    fn worker_spawned(&self, worker_id: u32, pid: u32) {
        let _ = (worker_id, pid);
    }

    /// In the worker: its runtime is up and it is about to accept connections (gunicorn:
    /// `post_worker_init`).
    fn worker_started(&self, worker_id: u32) {
        let _ = worker_id;
    }

    /// In the worker: it stopped serving (shut down, reached `max_requests`, or was told to
    /// quit) and is about to exit (gunicorn: `worker_exit`).
    fn worker_exiting(&self, worker_id: u32) {
        let _ = worker_id;
    }

    /// In the master: worker `worker_id` (process `pid`) ended (gunicorn: `child_exit`).
    fn worker_exited(&self, worker_id: u32, pid: u32) {
        let _ = (worker_id, pid);
    }

    /// In the master: worker `worker_id` (process `pid`) stopped responding for `timeout` and
    /// was killed; a new one replaces it (gunicorn: `worker_abort`, which runs in the worker).
    fn worker_aborted(&self, worker_id: u32, pid: u32) {
        let _ = (worker_id, pid);
    }

    /// In the worker: a request arrived and is about to reach the app (gunicorn:
    /// `pre_request`). Not called for requests the server answers itself (`400`, `404` outside
    /// `root_path`, `413`).
    fn before_request(&self, request: &RequestInfo<'_>) {
        let _ = request;
    }

    /// In the worker: the response to a request ended, however it ended (gunicorn:
    /// `post_request`). Called for every request, including those the server answered
    /// itself.
    fn after_request(&self, request: &RequestInfo<'_>, outcome: &Outcome) {
        let _ = (request, outcome);
    }

    /// The server stopped; the last call, in the master or the single process (gunicorn:
    /// `on_exit`).
    fn on_exit(&self) {}
}

/// The hooks of a server that has none.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct NoHooks;

impl Hooks for NoHooks {}

/// A request, as [`Hooks::before_request`] and [`Hooks::after_request`] see it.
///
/// ```
/// use rwgi_server::{Hooks, RequestInfo};
///
/// #[derive(Debug)]
/// struct LogPosts;
///
/// impl Hooks for LogPosts {
///     fn before_request(&self, request: &RequestInfo<'_>) {
///         if request.method() == rwgi::http::Method::POST {
///             eprintln!("POST {} from {:?} ({:?})", request.target(), request.peer(), request.version());
///         }
///     }
/// }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct RequestInfo<'a> {
    pub(crate) method: &'a Method,
    pub(crate) target: &'a Uri,
    pub(crate) version: Version,
    pub(crate) peer: Option<SocketAddr>,
}

impl<'a> RequestInfo<'a> {
    /// The request method.
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The request target as received (path and query, percent-encoded).
    pub fn target(&self) -> &'a Uri {
        self.target
    }

    /// The HTTP version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The client's address; `None` over a Unix socket.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }
}

/// How a response ended, for [`Hooks::after_request`].
///
/// ```
/// use rwgi_server::{Ending, Hooks, Outcome, RequestInfo};
///
/// #[derive(Debug)]
/// struct Failures;
///
/// impl Hooks for Failures {
///     fn after_request(&self, request: &RequestInfo<'_>, outcome: &Outcome) {
///         let failed = outcome.ending() == Ending::Failed
///             || outcome.status().is_some_and(|status| status.is_server_error());
///         if failed {
///             eprintln!("{} failed after {:?}, {} bytes", request.target(), outcome.duration(), outcome.bytes_sent());
///         }
///     }
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub(crate) status: Option<StatusCode>,
    pub(crate) sent: u64,
    pub(crate) duration: Duration,
    pub(crate) ending: Ending,
}

impl Outcome {
    /// The status sent; `None` when the client left before the app answered.
    pub fn status(&self) -> Option<StatusCode> {
        self.status
    }

    /// Body bytes sent.
    pub fn bytes_sent(&self) -> u64 {
        self.sent
    }

    /// From the request's arrival to the end of its response.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// Whether the response went out whole.
    pub fn ending(&self) -> Ending {
        self.ending
    }
}

/// How a response ended (see [`Outcome`] for an example): the same [`Ending`](rwgi::outcome::Ending)
/// that apps receive through the response outcome extension (spec §14.4).
pub use rwgi::outcome::Ending;
