//! `rwgi-server`: a production server for [`rwgi`] apps — hyper's HTTP/1.1 on tokio (HTTPS and
//! HTTP/2 behind features), with the command line, settings, processes, signals and logs an
//! operator expects from gunicorn.
//!
//! An app author's whole `main`:
//!
//! ```no_run
//! # mod my_framework {
//! #     pub fn app() -> impl rwgi::App {
//! #         rwgi::app::app_fn(|_, start: rwgi::StartResponse| async move {
//! #             Ok(start.start(rwgi::http::StatusCode::OK, Default::default()).body(rwgi::body::Empty))
//! #         })
//! #     }
//! # }
//! fn main() -> std::process::ExitCode {
//!     rwgi_server::run(my_framework::app())
//! }
//! ```
//!
//! The program then takes gunicorn's settings from flags, `RWGI_*` environment variables and a
//! TOML file (`myapp --bind 0.0.0.0:8000 --workers 4 --config rwgi.toml`); `myapp --help` lists
//! them, and `myapp --check-config` prints the effective ones.
//!
//! To embed a server in another program, or in a test, use [`Server::builder`]: it serves in a
//! background thread of the calling process and returns a [`ServerHandle`] to stop it.
//!
//! # Settings
//!
//! Each setting has a flag, an environment variable and a key in the `--config` file; a flag
//! wins over the environment, which wins over the file, which wins over the default. An
//! unknown key, a bad value, an address that cannot be bound: one line naming the setting on
//! stderr, and exit status 2.
//!
//! | setting (file key) | flag | environment | default | gunicorn |
//! |---|---|---|---|---|
//! | `bind` (repeatable) | `-b`, `--bind` | `RWGI_BIND` (comma-separated) | `127.0.0.1:8000` | `bind` |
//! | `workers` | `-w`, `--workers` | `RWGI_WORKERS` | 1 | `workers` |
//! | `threads` (runtime threads per worker) | `--threads` | `RWGI_THREADS` | CPUs ÷ workers, rounded up | `threads` |
//! | `backlog` | `--backlog` | `RWGI_BACKLOG` | 2048 | `backlog` |
//! | `timeout` (s; a silent worker is replaced) | `-t`, `--timeout` | `RWGI_TIMEOUT` | 30 | `timeout` |
//! | `graceful_timeout` (s) | `--graceful-timeout` | `RWGI_GRACEFUL_TIMEOUT` | 30 | `graceful_timeout` |
//! | `keepalive` (s; 0 disables keep-alive) | `--keepalive` | `RWGI_KEEPALIVE` | 5 | `keepalive` |
//! | `header_timeout` (s to send a request head) | `--header-timeout` | `RWGI_HEADER_TIMEOUT` | 10 | — |
//! | `body_timeout` (s between request-body chunks; 0: none) | `--body-timeout` | `RWGI_BODY_TIMEOUT` | 30 | — |
//! | `min_body_rate` (bytes/s a request body must average while the app waits; 0: none) | `--min-body-rate` | `RWGI_MIN_BODY_RATE` | 240 | — |
//! | `min_body_rate_grace` (s of waiting before `min_body_rate` applies) | `--min-body-rate-grace` | `RWGI_MIN_BODY_RATE_GRACE` | 5 | — |
//! | `write_timeout` (s a response write may stall; 0: none) | `--write-timeout` | `RWGI_WRITE_TIMEOUT` | 30 | — |
//! | `request_timeout` (s for the app to answer, else 503; 0: none) | `--request-timeout` | `RWGI_REQUEST_TIMEOUT` | 0 | — |
//! | `worker_connections` (open at once per worker) | `--worker-connections` | `RWGI_WORKER_CONNECTIONS` | 1000 | `worker_connections` |
//! | `max_requests` (0: no limit) | `--max-requests` | `RWGI_MAX_REQUESTS` | 0 | `max_requests` |
//! | `max_requests_jitter` | `--max-requests-jitter` | `RWGI_MAX_REQUESTS_JITTER` | 0 | `max_requests_jitter` |
//! | `limit_request_line` (bytes; else 414) | `--limit-request-line` | `RWGI_LIMIT_REQUEST_LINE` | 8190 | `limit_request_line` |
//! | `limit_request_fields` (else 431) | `--limit-request-fields` | `RWGI_LIMIT_REQUEST_FIELDS` | 100 | `limit_request_fields` |
//! | `limit_request_field_size` (bytes; else 431) | `--limit-request-field-size` | `RWGI_LIMIT_REQUEST_FIELD_SIZE` | 8190 | `limit_request_field_size` |
//! | `limit_request_body` (bytes; else 413; 0: none) | `--limit-request-body` | `RWGI_LIMIT_REQUEST_BODY` | 0 | — |
//! | `root_path` | `--root-path` | `RWGI_ROOT_PATH` | `/` | `SCRIPT_NAME` env |
//! | `forwarded_allow_ips` (IPs, CIDR ranges, `unix`, `*`) | `--forwarded-allow-ips` | `RWGI_FORWARDED_ALLOW_IPS` (comma-separated) | none | `forwarded_allow_ips` (`127.0.0.1,::1`) |
//! | `forwarded_hops` (trusted proxies in front) | `--forwarded-hops` | `RWGI_FORWARDED_HOPS` | 1 | — |
//! | `forwarded_headers` (`x-forwarded`, `forwarded`) | `--forwarded-headers` | `RWGI_FORWARDED_HEADERS` | `x-forwarded` | — |
//! | `accesslog` (`-`, a path, `off`) | `--accesslog` | `RWGI_ACCESSLOG` | `-` (stdout) | `accesslog` (off) |
//! | `access_log_format` | `--access-log-format` | `RWGI_ACCESS_LOG_FORMAT` | Combined | `access_log_format` |
//! | `errorlog` (`-`, a path) | `--errorlog` | `RWGI_ERRORLOG` | `-` (stderr) | `errorlog` |
//! | `loglevel` | `--loglevel` | `RWGI_LOGLEVEL` | `info` | `loglevel` |
//! | `pidfile` | `-p`, `--pidfile` | `RWGI_PIDFILE` | none | `pidfile` |
//! | `unix_socket_mode` (octal) | `--unix-socket-mode` | `RWGI_UNIX_SOCKET_MODE` | umask | `umask` |
//! | `certfile`, `keyfile` (HTTPS; `tls` feature) | `--certfile`, `--keyfile` | `RWGI_CERTFILE`, `RWGI_KEYFILE` | none | `certfile`, `keyfile` |
//! | `single_process` | `--single-process` | `RWGI_SINGLE_PROCESS` | false | — |
//!
//! `--config FILE` (`-c`, `RWGI_CONFIG`) names the file; `--check-config` validates and prints
//! the effective settings as a file would spell them.
//!
//! # Timeouts and connection limits
//!
//! - `body_timeout`: while the app waits for the next chunk of a request body, the chunk must
//!   arrive within this time, or the read fails with an error that wraps [`InputError`]
//!   ([`InputError::is_timeout`]); the connection closes after the response, since the body was
//!   left unread. The clock runs only while the app waits, and restarts with each chunk, as
//!   nginx's `client_body_timeout` does: it cuts off a client that stops sending, not one that
//!   sends a byte at a time within it.
//! - `min_body_rate` and `min_body_rate_grace`: once the app has waited for a request body for
//!   `min_body_rate_grace` in all, the body must have averaged `min_body_rate` bytes per second
//!   of that waiting, or the read fails with an [`InputError`] (also
//!   [`InputError::is_timeout`], so the app's answer is `408`); this cuts off the client that
//!   dribbles its body a byte at a time, each within `body_timeout` (Kestrel's
//!   `MinRequestBodyDataRate`, with its defaults of 240 bytes/s after 5 s). Only the app's
//!   waiting counts: while the app does not read, the client cannot send, and the clock stops.
//!   An app that takes slow uploads on purpose (a long-lived stream) sets it to 0.
//! - `write_timeout`: a response write that makes no progress for this long (a client that
//!   stopped reading) fails, and the connection is dropped with the response body.
//! - `request_timeout` (off by default): an app that has not returned its response within this
//!   time is dropped, with its request body, and the client gets `503 Service Unavailable` with
//!   `Connection: close`. A response whose head was returned is not limited by it: a stream
//!   that stops is bounded by `write_timeout` only when the client stops reading.
//! - `worker_connections`: a worker with this many connections open stops accepting until one
//!   closes; new connections wait in the kernel's listen queue (`backlog`), and past that the
//!   kernel refuses them.
//!
//! A timer exists only while its operation waits, and only when its setting is on.
//!
//! # Request bodies the client breaks
//!
//! When the client is the cause of a request body's failure, the error the app's read yields
//! wraps an [`InputError`] ([`rwgi::Error::input_error`] finds it; REQ-INPUT-8), whose kind
//! says why: a chunked coding that breaks its framing ([`InputError::is_malformed`]: a size line
//! that is not hexadecimal or overflows, chunk data not followed by CRLF, chunk extensions over
//! hyper's 16 KiB per body, a bare LF in a chunk line or after the last chunk), a body cut short
//! ([`InputError::is_incomplete`]), too slow ([`InputError::is_timeout`]) or too large
//! ([`InputError::is_too_large`]). An app that passes the error on gets `400`, `408` or `413`
//! sent for it rather than `500`, as long as the response has not started, and the connection
//! closes after that answer.
//!
//! # Behind a proxy
//!
//! When `forwarded_allow_ips` lists the proxy in front (`unix` for one that connects over a
//! Unix socket, as nginx does to `bind = "unix:..."`), each request from it is rewritten by
//! [`rwgi_middleware::ProxyHeaders`] before the app sees it: the client's address, the scheme,
//! the host and the prefix the proxy removed (`X-Forwarded-Prefix`, which becomes part of
//! `script_name`) come from the headers the proxy sets, `forwarded_hops` entries from the end
//! of each list. Requests from other peers are left as the socket says, whatever their
//! headers. Nothing is trusted by default (gunicorn trusts `127.0.0.1,::1`): a server that
//! clients can reach directly must not believe them. The access log's `%(h)s` stays the
//! socket's peer. gunicorn's `proxy_allow_ips` is for the PROXY protocol, which this server
//! does not speak.
//!
//! # Access log
//!
//! On by default, to stdout, in gunicorn's default format (the Combined Log Format):
//! `%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"`. The atoms: `h` client
//! address, `l` and `u` `-`, `t` time (UTC), `r` request line, `m` method, `U` path, `q` query,
//! `H` protocol, `s` status, `b` body bytes (`-` for none), `B` body bytes, `f` Referer, `a`
//! User-Agent, `T` seconds, `M` milliseconds, `D` microseconds, `L` seconds with decimals, `p`
//! process id, `e` how the response ended (`-`, `client-gone`, `failed`, `timed-out`), `{name}i` a request
//! header; `%%` is a percent sign. Lines are written off the request path by a writer thread,
//! in batches; when the log cannot keep up, lines are dropped and counted in the error log
//! rather than slowing requests down (the details are in the `log` module's source).
//!
//! # Lifespan, response outcome, limits
//!
//! [`Program::lifespan`] (or [`Builder::lifespan`]) hands the server the app's
//! [`Lifespan`](rwgi::lifespan::Lifespan): each worker process runs its startup before it
//! accepts (so the startup must finish within `timeout`, after which the master takes the
//! worker for stuck), puts a clone of its state in every request's environ, and runs its
//! shutdown after the last request in flight. A startup that fails stops the server: the worker
//! exits with status 3, and the master stops with it (spec §14.3).
//!
//! [`Program::response_outcome`] (or [`Builder::response_outcome`]) puts a
//! [`ResponseFinished`](rwgi::outcome::ResponseFinished) handle in every request's environ;
//! each callback registered on it runs once the response ended, told how (spec §14.4). Off by
//! default: the handle costs an allocation per request.
//!
//! The limits above, where set, are stated in every environ's
//! [`ServerInfo::limits`](rwgi::environ::ServerInfo::limits) (spec §14.5). An app that answers
//! without reading the body gets no `100 Continue` sent for it, and the connection closes after
//! the answer rather than wait for a body the client may never send.
//!
//! # Features
//!
//! - `tls`: HTTPS with rustls on the TCP listeners, from the `certfile` and `keyfile` settings
//!   (or [`Builder::tls`]).
//! - `http2`: HTTP/2 beside HTTP/1.1 on every listener. A connection that opens with the
//!   HTTP/2 preface (prior knowledge, or after ALPN chose `h2` with `tls`) is served HTTP/2;
//!   any other, HTTP/1.1 as without the feature. The wait for the opening bytes is bounded by
//!   the header timeout. An HTTP/2 connection counts as started from its preface: a stop closes
//!   it once its streams are done, and keep-alive after `keepalive` without a new request.
//!   Without the feature, a connection that opens with the HTTP/2 preface gets
//!   `505 HTTP Version Not Supported` and is closed.
//!
//! # Extensions
//!
//! - File bodies (spec §14.9): declared in [`SERVER_INFO`]. A file range an app answers with
//!   is read in chunks of 128 KiB on tokio's blocking pool, one chunk ahead of the socket, with
//!   positional reads; hyper owns the socket (which may be TLS), so there is no `sendfile`. The
//!   head goes out before the first read; a file that comes up short aborts the response.
//! - Upgrades (spec §14.10): an HTTP/1.1 request that asks for one gets an
//!   [`rwgi::upgrade::Upgrade`] offer. After the app's `101`, its handler runs on the
//!   connection, as an [`UpgradedIo`] inside the [`rwgi::upgrade::Upgraded`], in the
//!   connection's own task: it keeps the connection's `worker_connections` slot and its
//!   `write_timeout`, and a graceful stop waits for it up to `graceful_timeout`. No offers on
//!   HTTP/2 (extended `CONNECT` is for later).
//!
//! # Signals
//!
//! `SIGTERM` and `SIGINT` stop gracefully (a second `SIGINT` stops at once), `SIGQUIT` stops at
//! once, `SIGUSR1` reopens the log files. With workers, the master also handles `SIGHUP`
//! (reload), `SIGTTIN` and `SIGTTOU` (one worker more or less).
#![forbid(unsafe_code)]
#![deny(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]

mod arbiter;
mod config;
mod connection_io;
mod deadline;
mod files;
mod framing;
mod hooks;
mod lifespan;
mod listen;
mod log;
mod tls;
mod upgrade;
mod worker;

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rwgi::environ::ServerInfo;
use rwgi::lifespan::BoxLifespan;
use rwgi::App;
use tokio::sync::watch;

pub use hooks::{Ending, Hooks, Outcome, RequestInfo};
pub use listen::{Bind, BindParseError};
pub use rwgi::input::{InputError, InputErrorKind};
pub use upgrade::UpgradedIo;

use config::{ConfigError, Settings};
use listen::{bind_all, Listener};
use log::{AccessLog, Format};
use worker::{ServeConfig, Stop, Stopped};

/// What the server tells apps about itself (REQ-ENV-9): each request may run on any of the
/// runtime's worker threads, and file bodies are read off those threads (§14.9, REQ-FILE-4).
/// This is what a single process (and an embedded [`Server`]) says; a worker process of a
/// master says `multiprocess` too, since copies of the app run, or may start at any time, in the
/// other workers.
///
/// ```
/// assert!(rwgi_server::SERVER_INFO.is_multithread());
/// assert!(!rwgi_server::SERVER_INFO.is_multiprocess());
/// assert!(rwgi_server::SERVER_INFO.has_file_bodies());
/// ```
pub const SERVER_INFO: ServerInfo = ServerInfo::new("rwgi-server/0.1")
    .multithread(true)
    .file_bodies(true);

/// Runs `app` as a server program: reads the settings (flags, `RWGI_*` environment, `--config`
/// file), binds, and serves until told to stop by a signal. Returns the process's exit status:
/// `0` after a clean stop, `2` for unusable settings (with a one-line message on stderr), `1`
/// when serving failed.
///
/// Call it from `main` and return what it returns:
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
/// #   let app = rwgi::app::app_fn(|_, start: rwgi::StartResponse| async move {
/// #       Ok(start.start(rwgi::http::StatusCode::OK, Default::default()).body(rwgi::body::Empty))
/// #   });
///     rwgi_server::run(app)
/// }
/// ```
///
/// It installs the error log as the process's `tracing` subscriber (unless the program set one
/// already). With more than one worker, or without `--single-process`, this process becomes the
/// master and runs the workers as new processes of the same program: `main` must call `run`
/// the same way each time, before doing anything else with side effects.
pub fn run<A: App + 'static>(app: A) -> ExitCode {
    Program::new(app).run()
}

/// As [`run`], with server [`Hooks`].
///
/// ```no_run
/// use std::sync::Arc;
///
/// #[derive(Debug)]
/// struct Announce;
///
/// impl rwgi_server::Hooks for Announce {
///     fn when_ready(&self, addresses: &[String]) {
///         eprintln!("serving on {}", addresses.join(", "));
///     }
/// }
///
/// fn main() -> std::process::ExitCode {
/// #   let app = rwgi::app::app_fn(|_, start: rwgi::StartResponse| async move {
/// #       Ok(start.start(rwgi::http::StatusCode::OK, Default::default()).body(rwgi::body::Empty))
/// #   });
///     rwgi_server::run_with(app, Arc::new(Announce))
/// }
/// ```
pub fn run_with<A: App + 'static>(app: A, hooks: Arc<dyn Hooks>) -> ExitCode {
    Program::new(app).hooks(hooks).run()
}

/// [`run`] with more than the app: [`Hooks`], the app's
/// [`Lifespan`](rwgi::lifespan::Lifespan), the response outcome.
///
/// ```no_run
/// use rwgi::lifespan::Lifespan;
///
/// #[derive(Clone, Debug)]
/// struct Cache(std::sync::Arc<Vec<u8>>);
///
/// #[derive(Debug)]
/// struct Warm;
///
/// impl Lifespan for Warm {
///     type State = Cache;
///     async fn startup(&self) -> Result<Cache, rwgi::Error> {
///         Ok(Cache(std::sync::Arc::new(vec![0; 1024])))
///     }
/// }
///
/// fn main() -> std::process::ExitCode {
/// #   let app = rwgi::app::app_fn(|_, start: rwgi::StartResponse| async move {
/// #       Ok(start.start(rwgi::http::StatusCode::OK, Default::default()).body(rwgi::body::Empty))
/// #   });
///     rwgi_server::Program::new(app).lifespan(Warm).response_outcome().run()
/// }
/// ```
#[derive(Debug)]
#[must_use = "a program does nothing until `run` is called"]
pub struct Program<A> {
    app: A,
    extras: Extras,
}

impl<A: App + 'static> Program<A> {
    /// The program that serves `app`.
    pub fn new(app: A) -> Self {
        Program {
            app,
            extras: Extras::default(),
        }
    }

    /// The server's [`Hooks`].
    pub fn hooks(mut self, hooks: Arc<dyn Hooks>) -> Self {
        self.extras.hooks = Some(hooks);
        self
    }

    /// The app's startup and shutdown (spec §14.3): startup runs in each worker process before
    /// it serves, and its state reaches every request in the environ's extensions; shutdown
    /// runs after the last request in flight. A failed startup stops the server with exit
    /// status 3.
    pub fn lifespan(mut self, lifespan: impl Into<BoxLifespan>) -> Self {
        self.extras.lifespan = Some(lifespan.into());
        self
    }

    /// Offers the response outcome (spec §14.4): every request's environ carries a
    /// [`ResponseFinished`](rwgi::outcome::ResponseFinished) handle. Off unless asked for, so
    /// that apps that do not use it pay nothing per request.
    pub fn response_outcome(mut self) -> Self {
        self.extras.outcome = true;
        self
    }

    /// Runs the program as [`run`] does.
    pub fn run(self) -> ExitCode {
        run_process(self.app, self.extras)
    }
}

/// What a program hands the server beside the app and its settings.
#[derive(Clone, Debug, Default)]
pub(crate) struct Extras {
    pub(crate) hooks: Option<Arc<dyn Hooks>>,
    pub(crate) lifespan: Option<BoxLifespan>,
    /// Whether to offer the response outcome.
    pub(crate) outcome: bool,
}

/// The exit status for settings that cannot be used.
const USAGE: u8 = 2;

fn run_process<A: App + 'static>(app: A, extras: Extras) -> ExitCode {
    let hooks = extras.hooks.clone();
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(ConfigError::Print(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(ConfigError::Invalid(message)) => {
            eprintln!("rwgi-server: {message}");
            return ExitCode::from(USAGE);
        }
    };
    if settings.check_config {
        for name in config::unknown_env_vars() {
            eprintln!("rwgi-server: warning: {name} is not a setting: ignored");
        }
        print!("{}", settings.to_toml());
        return ExitCode::SUCCESS;
    }
    if let Err(message) = log::init_error_log(&settings.errorlog, settings.loglevel) {
        eprintln!("rwgi-server: {message}");
        return ExitCode::from(USAGE);
    }
    match arbiter::role() {
        arbiter::Role::Worker(mut context) => {
            let listeners: io::Result<Vec<Listener>> = context
                .listeners()
                .into_iter()
                .map(Listener::from_inherited)
                .collect();
            let listeners = match listeners {
                Ok(listeners) => listeners,
                Err(error) => {
                    tracing::error!("cannot use the inherited sockets: {error}");
                    return ExitCode::from(arbiter::EXIT_BOOT_FAILED);
                }
            };
            let id = context.worker_id();
            match serve_here(app, &settings, listeners, extras, Some(context), id) {
                Ok(_) => ExitCode::SUCCESS,
                Err(message) => {
                    // The runtime, the access log or the sockets: every worker would fail alike.
                    tracing::error!("worker {id}: {message}");
                    ExitCode::from(arbiter::EXIT_BOOT_FAILED)
                }
            }
        }
        arbiter::Role::Master => {
            for name in config::unknown_env_vars() {
                tracing::warn!("{name} is not a setting: ignored");
            }
            // The workers open the access log; an unusable path is the settings' fault, told
            // here once rather than by every worker failing to start.
            if let Some(target) = &settings.accesslog {
                if let Err(error) = target.open() {
                    eprintln!(
                        "rwgi-server: cannot open {target} (accesslog): {}",
                        log::io_reason(&error)
                    );
                    return ExitCode::from(USAGE);
                }
            }
            if let Err(message) =
                tls::acceptor(settings.certfile.as_deref(), settings.keyfile.as_deref())
            {
                eprintln!("rwgi-server: {message}");
                return ExitCode::from(USAGE);
            }
            if let Some(hooks) = &hooks {
                hooks.on_starting();
            }
            let listeners =
                match bind_all(&settings.bind, settings.backlog, settings.unix_socket_mode) {
                    Ok(listeners) => listeners,
                    Err(error) => {
                        eprintln!("rwgi-server: {error}");
                        return ExitCode::from(USAGE);
                    }
                };
            if !settings.single_process && arbiter::AVAILABLE {
                let hooks = hooks.unwrap_or_else(|| Arc::new(hooks::NoHooks));
                return arbiter::master(settings, listeners, hooks);
            }
            single_process(app, &settings, listeners, extras)
        }
    }
}

/// Serves in this process: the master's start and exit duties and one worker's serving.
fn single_process<A: App + 'static>(
    app: A,
    settings: &Settings,
    listeners: Vec<Listener>,
    extras: Extras,
) -> ExitCode {
    let hooks = extras.hooks.clone();
    if let Some(path) = &settings.pidfile {
        if let Err(error) = std::fs::write(path, format!("{}\n", std::process::id())) {
            eprintln!(
                "rwgi-server: cannot write {} (pidfile): {}",
                path.display(),
                log::io_reason(&error)
            );
            return ExitCode::from(USAGE);
        }
    }
    let addresses: Vec<String> = listeners.iter().map(Listener::describe).collect();
    tracing::info!(
        "rwgi-server {} listening on {} (pid {}, single process)",
        env!("CARGO_PKG_VERSION"),
        addresses.join(", "),
        std::process::id()
    );
    if let Some(hooks) = &hooks {
        hooks.when_ready(&addresses);
    }
    let status = match serve_here(app, settings, listeners, extras, None, 0) {
        Ok(_) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            // The app's startup failed: exit as a worker that cannot boot does (REQ-LIFE-3).
            if message.starts_with(lifespan::STARTUP_FAILED) {
                ExitCode::from(arbiter::EXIT_BOOT_FAILED)
            } else {
                ExitCode::FAILURE
            }
        }
    };
    if let Some(hooks) = &hooks {
        hooks.on_exit();
    }
    if let Some(path) = &settings.pidfile {
        let _ = std::fs::remove_file(path);
    }
    tracing::info!("stopped");
    status
}

/// The serve loop's configuration from the settings.
fn serve_config(settings: &Settings, extras: &Extras) -> Result<ServeConfig, String> {
    let access_log = match &settings.accesslog {
        Some(target) => {
            let format = Format::parse(&settings.access_log_format)
                .map_err(|reason| format!("{reason} (access_log_format)"))?;
            Some(Arc::new(AccessLog::start(target, format)?))
        }
        None => None,
    };
    let jitter = match settings.max_requests_jitter {
        0 => 0,
        jitter => random() % (jitter + 1),
    };
    Ok(ServeConfig {
        root_path: settings.root_path.clone(),
        proxy_headers: settings.proxy_headers(),
        keepalive: settings.keepalive,
        header_timeout: settings.header_timeout,
        body_timeout: settings.body_timeout,
        min_body_rate: settings.min_body_rate,
        min_body_rate_grace: settings.min_body_rate_grace,
        write_timeout: settings.write_timeout,
        request_timeout: settings.request_timeout,
        worker_connections: settings.worker_connections,
        graceful_timeout: settings.graceful_timeout,
        limit_request_line: settings.limit_request_line,
        limit_request_fields: settings.limit_request_fields,
        limit_request_field_size: settings.limit_request_field_size,
        limit_request_body: settings.limit_request_body,
        max_requests: match settings.max_requests {
            0 => 0,
            max => max.saturating_add(jitter),
        },
        access_log,
        hooks: extras.hooks.clone(),
        lifespan: None,
        outcome: extras.outcome,
        tls: tls::acceptor(settings.certfile.as_deref(), settings.keyfile.as_deref())?,
        server: SERVER_INFO,
    })
}

/// A random number, from the standard library's randomly keyed hasher.
fn random() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish()
}

fn runtime(threads: usize) -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("rwgi-worker")
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the runtime: {error}"))
}

/// Serves `app` in this process until a signal stops it: the worker's (or the single
/// process's) part of [`run`].
fn serve_here<A: App + 'static>(
    app: A,
    settings: &Settings,
    listeners: Vec<Listener>,
    extras: Extras,
    context: Option<arbiter::WorkerContext>,
    id: u32,
) -> Result<Stopped, String> {
    let runtime = runtime(settings.threads)?;
    let mut config = serve_config(settings, &extras)?;
    let hooks = extras.hooks;
    // A worker of a master has copies of the app in other processes, or may have at any time
    // (more workers, TTIN, a reload or a recycle overlapping it).
    config.server = SERVER_INFO.multiprocess(context.is_some());
    let access_log = config.access_log.clone();
    let (stop, stopping) = watch::channel(Stop::Running);
    // Before the first heartbeat: a worker whose app cannot start exits as one that cannot
    // boot, and the master stops rather than start it again (REQ-LIFE-3).
    if let Some(lifespan) = &extras.lifespan {
        config.lifespan = Some(runtime.block_on(lifespan::startup(lifespan))?);
    }
    let result = runtime.block_on(async move {
        tokio::spawn(watch_signals(stop, access_log));
        if let Some(context) = &context {
            tokio::spawn(context.heartbeat());
        }
        if let Some(hooks) = &hooks {
            hooks.worker_started(id);
        }
        let result = worker::serve(listeners, app, config, stopping).await;
        if let Some(hooks) = &hooks {
            hooks.worker_exiting(id);
        }
        result
    });
    // Connections abandoned after the graceful timeout end with the runtime.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(Stopped::MaxRequests) => {
            tracing::info!("served max_requests: stopping so that a fresh worker takes over");
            Ok(Stopped::MaxRequests)
        }
        Ok(stopped) => Ok(stopped),
        Err(error) => Err(format!("cannot serve: {error}")),
    }
}

/// Turns signals into stops: `SIGTERM`/`SIGINT` graceful (a second `SIGINT` immediate),
/// `SIGQUIT` immediate; `SIGUSR1` reopens the log files.
async fn watch_signals(stop: watch::Sender<Stop>, access_log: Option<Arc<AccessLog>>) {
    use tokio::signal::unix::{signal, SignalKind};

    let kinds = [
        SignalKind::terminate(),
        SignalKind::interrupt(),
        SignalKind::quit(),
        SignalKind::user_defined1(),
    ];
    let mut streams = Vec::with_capacity(kinds.len());
    for kind in kinds {
        match signal(kind) {
            Ok(stream) => streams.push(stream),
            Err(error) => {
                tracing::error!("cannot watch for signals: {error}");
                // Keep the sender: dropping it would read as a stop.
                std::future::pending::<()>().await;
            }
        }
    }
    let [terminate, interrupt, quit, usr1] = &mut streams[..] else {
        return;
    };
    loop {
        tokio::select! {
            _ = terminate.recv() => {
                tracing::info!("SIGTERM: stopping gracefully");
                stop.send_if_modified(|stop| {
                    let running = *stop == Stop::Running;
                    if running {
                        *stop = Stop::Graceful;
                    }
                    running
                });
            }
            _ = interrupt.recv() => {
                let running = *stop.borrow() == Stop::Running;
                let next = if running { Stop::Graceful } else { Stop::Immediate };
                tracing::info!("SIGINT: stopping {}", if next == Stop::Graceful { "gracefully" } else { "now" });
                stop.send_replace(next);
            }
            _ = quit.recv() => {
                tracing::info!("SIGQUIT: stopping now");
                stop.send_replace(Stop::Immediate);
            }
            _ = usr1.recv() => {
                tracing::info!("SIGUSR1: reopening the log files");
                log::reopen_error_log();
                if let Some(log) = &access_log {
                    log.reopen();
                }
            }
        }
    }
}

/// Why a [`Server::builder`] server could not start: one line naming the setting, like
/// `cannot bind 127.0.0.1:8000 (bind): address in use`.
///
/// ```no_run
/// # let app = || rwgi::app::app_fn(|_, start: rwgi::StartResponse| async move {
/// #     Ok(start.start(rwgi::http::StatusCode::OK, Default::default()).body(rwgi::body::Empty))
/// # });
/// let first = rwgi_server::Server::builder().bind("127.0.0.1:0").serve(app())?;
/// let taken = first.local_addr().unwrap().to_string();
/// let error = rwgi_server::Server::builder().bind(taken.as_str()).serve(app()).unwrap_err();
/// assert_eq!(error.to_string(), format!("cannot bind {taken} (bind): address in use"));
/// # Ok::<(), rwgi_server::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct Error {
    message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl Error {
    fn new(message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
        }
    }
}

/// The server, for embedding: start one with [`Server::builder`] (the example is there).
#[derive(Debug)]
#[non_exhaustive]
pub struct Server;

impl Server {
    /// A builder for a server that runs in this process, with the same defaults as [`run`]
    /// except that the access log is off and nothing reads the command line or the
    /// environment.
    ///
    /// ```no_run
    /// # let app = rwgi::app::app_fn(|_, start: rwgi::StartResponse| async move {
    /// #     Ok(start.start(rwgi::http::StatusCode::OK, Default::default()).body(rwgi::body::Empty))
    /// # });
    /// let server = rwgi_server::Server::builder()
    ///     .bind("127.0.0.1:0")
    ///     .root_path("/app")
    ///     .serve(app)?;
    /// println!("serving on {:?}", server.local_addr());
    /// server.shutdown(); // graceful: requests in flight finish
    /// # Ok::<(), rwgi_server::Error>(())
    /// ```
    pub fn builder() -> Builder {
        let settings = Settings {
            accesslog: None,
            single_process: true,
            ..Settings::default()
        };
        Builder {
            settings,
            binds: Vec::new(),
            accesslog: None,
            extras: Extras::default(),
        }
    }
}

/// Settings for a server embedded in this process; see [`Server::builder`].
///
/// Values are checked by [`Builder::serve`], with the same messages as the command line's.
/// Each method is the setting of the same name (see the [crate docs](crate#settings)).
///
/// ```no_run
/// use std::time::Duration;
/// # let app = rwgi::app::app_fn(|_, start: rwgi::StartResponse| async move {
/// #     Ok(start.start(rwgi::http::StatusCode::OK, Default::default()).body(rwgi::body::Empty))
/// # });
///
/// let server = rwgi_server::Server::builder()
///     .bind("127.0.0.1:8000")
///     .bind("unix:/run/myapp.sock")
///     .unix_socket_mode(0o660)
///     .threads(4)
///     .backlog(1024)
///     .root_path("/app")
///     .keepalive(Duration::from_secs(2))
///     .header_timeout(Duration::from_secs(5))
///     .body_timeout(Duration::from_secs(10))
///     .min_body_rate(1024)
///     .min_body_rate_grace(Duration::from_secs(2))
///     .write_timeout(Duration::from_secs(10))
///     .request_timeout(Duration::from_secs(60))
///     .worker_connections(500)
///     .graceful_timeout(Duration::from_secs(10))
///     .max_requests(0)
///     .limit_request_line(4094)
///     .limit_request_fields(50)
///     .limit_request_field_size(4094)
///     .limit_request_body(1 << 20)
///     .accesslog("/var/log/myapp/access.log")
///     .access_log_format(r#"%(h)s "%(r)s" %(s)s %(D)s"#)
///     .serve(app)?;
/// server.shutdown();
/// # Ok::<(), rwgi_server::Error>(())
/// ```
#[derive(Debug)]
#[must_use = "a builder does nothing until `serve` is called"]
pub struct Builder {
    settings: Settings,
    binds: Vec<String>,
    accesslog: Option<String>,
    extras: Extras,
}

impl Builder {
    /// Adds an address to listen on, spelled as the `bind` setting (see [`Bind`]); the first
    /// call replaces the default `127.0.0.1:8000`.
    pub fn bind(mut self, address: impl Into<String>) -> Self {
        self.binds.push(address.into());
        self
    }

    /// Runtime threads (default: the number of CPUs).
    pub fn threads(mut self, threads: usize) -> Self {
        self.settings.threads = threads;
        self
    }

    /// The listen backlog (default 2048).
    pub fn backlog(mut self, backlog: u32) -> Self {
        self.settings.backlog = backlog;
        self
    }

    /// Mounts the app at `prefix`, like `/app`: it becomes `script_name`, and requests outside
    /// it get `404` (REQ-PATH-6). `/` or `""` means no prefix.
    pub fn root_path(mut self, prefix: &str) -> Self {
        let prefix = prefix.trim_end_matches('/');
        self.settings.root_path = (!prefix.is_empty()).then(|| prefix.to_owned());
        self
    }

    /// How long a graceful stop waits for requests in flight (default 30 s).
    pub fn graceful_timeout(mut self, timeout: Duration) -> Self {
        self.settings.graceful_timeout = timeout;
        self
    }

    /// How long an idle keep-alive connection waits for its next request; zero disables
    /// keep-alive (default 5 s).
    pub fn keepalive(mut self, keepalive: Duration) -> Self {
        self.settings.keepalive = keepalive;
        self
    }

    /// How long a connection may take to send a request head; zero: no limit (default 10 s).
    ///
    /// Counted in whole seconds on the server's clock, which ticks once a second: a connection
    /// that has not sent its first head within the time, rounded up, and at most one second
    /// more, is closed without an answer. Between requests the time counts from the end of the
    /// previous response, and bounds the keep-alive wait when shorter than `keepalive`.
    pub fn header_timeout(mut self, timeout: Duration) -> Self {
        self.settings.header_timeout = timeout;
        self
    }

    /// How long the app may wait for the next request-body chunk before reading fails with an
    /// [`InputError`]; zero: no limit (default 30 s).
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.settings.body_timeout = timeout;
        self
    }

    /// The slowest a request body may arrive, in bytes per second averaged over the time the
    /// app waits for it, once it has waited [`min_body_rate_grace`](Builder::min_body_rate_grace);
    /// slower fails the read with an [`InputError`]; zero: no minimum (default 240).
    pub fn min_body_rate(mut self, bytes_per_second: u64) -> Self {
        self.settings.min_body_rate = bytes_per_second;
        self
    }

    /// How long the app may wait for a request body before
    /// [`min_body_rate`](Builder::min_body_rate) applies (default 5 s).
    pub fn min_body_rate_grace(mut self, grace: Duration) -> Self {
        self.settings.min_body_rate_grace = grace;
        self
    }

    /// How long a response write may make no progress before the connection is dropped; zero:
    /// no limit (default 30 s).
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.settings.write_timeout = timeout;
        self
    }

    /// How long the app has to answer before the server answers `503` and drops the app's
    /// future; zero: no limit (the default).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.settings.request_timeout = timeout;
        self
    }

    /// The most connections served at once (default 1000); past it, the server stops
    /// accepting until one closes.
    pub fn worker_connections(mut self, connections: usize) -> Self {
        self.settings.worker_connections = connections;
        self
    }

    /// Stop after serving this many requests; zero: no limit (the default).
    pub fn max_requests(mut self, requests: u64) -> Self {
        self.settings.max_requests = requests;
        self
    }

    /// The longest request line in bytes (default 8190); longer gets `414`.
    pub fn limit_request_line(mut self, bytes: usize) -> Self {
        self.settings.limit_request_line = bytes;
        self
    }

    /// The most header fields in a request (default 100); more gets `431`.
    pub fn limit_request_fields(mut self, fields: usize) -> Self {
        self.settings.limit_request_fields = fields;
        self
    }

    /// The longest header field in bytes (default 8190); longer gets `431`.
    pub fn limit_request_field_size(mut self, bytes: usize) -> Self {
        self.settings.limit_request_field_size = bytes;
        self
    }

    /// The largest request body in bytes; zero: no limit (the default).
    pub fn limit_request_body(mut self, bytes: u64) -> Self {
        self.settings.limit_request_body = bytes;
        self
    }

    /// The file mode of Unix socket files, like `0o660`.
    pub fn unix_socket_mode(mut self, mode: u32) -> Self {
        self.settings.unix_socket_mode = Some(mode);
        self
    }

    /// Where the access log goes, spelled as the `accesslog` setting: `-` for stdout, a file
    /// path, or `off` (the builder's default).
    pub fn accesslog(mut self, target: impl Into<String>) -> Self {
        self.accesslog = Some(target.into());
        self
    }

    /// The access log's format, with gunicorn's atoms (see the [crate docs](crate)).
    pub fn access_log_format(mut self, format: impl Into<String>) -> Self {
        self.settings.access_log_format = format.into();
        self
    }

    /// HTTPS on the TCP listeners, with this certificate chain and private key (PEM files).
    /// Needs the `tls` feature; without it, [`Builder::serve`] says so.
    pub fn tls(mut self, certfile: impl Into<PathBuf>, keyfile: impl Into<PathBuf>) -> Self {
        self.settings.certfile = Some(certfile.into());
        self.settings.keyfile = Some(keyfile.into());
        self
    }

    /// The server's [`Hooks`]. Called in this process, with worker id `0`.
    pub fn hooks(mut self, hooks: Arc<dyn Hooks>) -> Self {
        self.extras.hooks = Some(hooks);
        self
    }

    /// The app's startup and shutdown (spec §14.3), as [`Program::lifespan`]: startup runs in
    /// [`Builder::serve`], which returns its error; shutdown runs once the server stopped and
    /// the last request in flight finished.
    pub fn lifespan(mut self, lifespan: impl Into<BoxLifespan>) -> Self {
        self.extras.lifespan = Some(lifespan.into());
        self
    }

    /// Offers the response outcome (spec §14.4), as [`Program::response_outcome`].
    pub fn response_outcome(mut self) -> Self {
        self.extras.outcome = true;
        self
    }

    /// Binds every address and starts serving `app` on a runtime in a new thread.
    ///
    /// # Errors
    ///
    /// A setting that is not valid, or an address that cannot be bound, with a one-line
    /// message naming the setting; or the error of the app's startup ([`Builder::lifespan`]),
    /// after which nothing was served.
    pub fn serve<A: App + 'static>(self, app: A) -> Result<ServerHandle, Error> {
        let Builder {
            mut settings,
            binds,
            accesslog,
            extras,
        } = self;
        let hooks = extras.hooks.clone();
        if !binds.is_empty() {
            settings.bind = binds
                .iter()
                .map(|bind| {
                    bind.parse().map_err(|reason: BindParseError| {
                        Error::new(format!("invalid value {bind:?} for bind: {reason}"))
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(target) = accesslog {
            settings.accesslog = match target.as_str() {
                "off" | "none" => None,
                "-" => Some(log::LogTarget::Stdout),
                path => Some(log::LogTarget::File(path.into())),
            };
        }
        if settings.threads == 0 {
            return Err(Error::new(
                "invalid value 0 for threads: expected 1 or more",
            ));
        }
        if settings.worker_connections == 0 {
            return Err(Error::new(
                "invalid value 0 for worker_connections: expected 1 or more",
            ));
        }
        if let Some(hooks) = &hooks {
            hooks.on_starting();
        }
        let listeners = bind_all(&settings.bind, settings.backlog, settings.unix_socket_mode)
            .map_err(|error| Error::new(error.to_string()))?;
        let addresses: Vec<String> = listeners.iter().map(Listener::describe).collect();
        let local_addrs: Vec<SocketAddr> =
            listeners.iter().filter_map(Listener::local_addr).collect();
        let mut config = serve_config(&settings, &extras).map_err(Error::new)?;
        let runtime = runtime(settings.threads).map_err(Error::new)?;
        if let Some(lifespan) = &extras.lifespan {
            config.lifespan = Some(
                runtime
                    .block_on(lifespan::startup(lifespan))
                    .map_err(Error::new)?,
            );
        }
        let (stop, stopping) = watch::channel(Stop::Running);
        if let Some(hooks) = &hooks {
            hooks.when_ready(&addresses);
        }
        let thread = std::thread::Builder::new()
            .name("rwgi-server".to_owned())
            .spawn(move || {
                let result = runtime.block_on(async move {
                    if let Some(hooks) = &config.hooks {
                        hooks.worker_started(0);
                    }
                    let hooks = config.hooks.clone();
                    let result = worker::serve(listeners, app, config, stopping).await;
                    if let Some(hooks) = &hooks {
                        hooks.worker_exiting(0);
                    }
                    result
                });
                if let Err(error) = result {
                    tracing::error!("cannot serve: {error}");
                }
                runtime.shutdown_timeout(Duration::from_secs(1));
                if let Some(hooks) = &hooks {
                    hooks.on_exit();
                }
            })
            .map_err(|error| Error::new(format!("cannot start the server thread: {error}")))?;
        Ok(ServerHandle {
            addresses,
            local_addrs,
            stop,
            thread: Some(thread),
        })
    }
}

/// A running embedded server. Dropping it stops the server gracefully and waits for it.
///
/// ```no_run
/// use std::io::{Read, Write};
/// # let app = rwgi::app::app_fn(|_, start: rwgi::StartResponse| async move {
/// #     Ok(start.start(rwgi::http::StatusCode::OK, Default::default()).body(rwgi::body::Full::new("hi")))
/// # });
///
/// let server = rwgi_server::Server::builder().bind("127.0.0.1:0").serve(app)?;
/// assert!(server.addresses()[0].starts_with("http://127.0.0.1:"));
/// let mut client = std::net::TcpStream::connect(server.local_addr().unwrap()).unwrap();
/// client.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
/// let mut response = String::new();
/// client.read_to_string(&mut response).unwrap();
/// assert!(response.ends_with("hi"));
/// server.shutdown();
/// # Ok::<(), rwgi_server::Error>(())
/// ```
#[derive(Debug)]
pub struct ServerHandle {
    addresses: Vec<String>,
    local_addrs: Vec<SocketAddr>,
    stop: watch::Sender<Stop>,
    thread: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// The first TCP address the server listens on (with the port the system picked for port
    /// `0`); `None` when it listens on Unix sockets only.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addrs.first().copied()
    }

    /// Every listener, described like `http://127.0.0.1:8000` or `unix:/run/app.sock`.
    pub fn addresses(&self) -> &[String] {
        &self.addresses
    }

    /// Starts a graceful stop and returns at once: the listeners close, idle connections close,
    /// and requests in flight finish within the graceful timeout.
    pub fn begin_shutdown(&self) {
        self.stop.send_if_modified(|stop| {
            let modified = *stop == Stop::Running;
            if modified {
                *stop = Stop::Graceful;
            }
            modified
        });
    }

    /// Stops gracefully and waits until the server is gone.
    pub fn shutdown(mut self) {
        self.begin_shutdown();
        self.join();
    }

    /// Stops at once, dropping open connections, and waits until the server is gone.
    pub fn abort(mut self) {
        self.stop.send_replace(Stop::Immediate);
        self.join();
    }

    /// Waits until the server stops by itself (after [`Builder::max_requests`]) or is stopped.
    pub fn wait(mut self) {
        self.join();
    }

    /// Whether the server stopped (after [`Builder::max_requests`], or a stop).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().map_or(true, JoinHandle::is_finished)
    }

    fn join(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.begin_shutdown();
        self.join();
    }
}
