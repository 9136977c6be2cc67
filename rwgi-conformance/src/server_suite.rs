//! The server suite: hosts probe apps in a server and checks it over real sockets.
//!
//! A server author calls [`run`] from a test with a closure that starts their server hosting
//! the app it is given ([`Hosting`]) and returns a [`ServerHandle`]: the address to connect to
//! and how to stop the server. The suite starts the server once per configuration it needs
//! (plain, and mounted at a root path), hosts its own probe apps in it, talks HTTP/1.1 to it
//! over TCP or a Unix socket, and checks both what the server gives the app and what it sends
//! to the client. Every check names the requirements of `spec/SPEC.md` it covers
//! ([`CHECKS`]); every failure starts with the ID of the requirement broken and says what was
//! expected and what was seen.
//!
//! The suite needs no async runtime: it uses blocking sockets with timeouts, and its probe apps
//! wait on signals the suite gives from its own thread. Every check is bounded in time; a
//! server that passes runs the whole suite in a few seconds.
//!
//! The request→environ cases are data, in `spec/vectors/*.json`, so that implementations in
//! other languages can run the same cases; the checks `vectors_*` run them.
//!
//! A check passes only after it saw what it judges, and is skipped only for a condition the
//! server declared: `connection_addresses` for an [`Address::Unix`], which has no peer
//! address ([`Address::has_socket_addresses`]), and the checks of an extension the server does
//! not offer in the environ ([`NOT_OFFERED`]). Anything the suite could not observe on a TCP
//! server is a failure. [`Report::assert_ok_strict`](crate::Report::assert_ok_strict) refuses
//! every skip; [`Report::assert_ok_offered`](crate::Report::assert_ok_offered) only those of
//! extensions not offered. The checks of optional extensions (spec §14.3 to §14.8) judge a
//! server that offers the extension and skip one that does not: offering none claims nothing
//! (REQ-CAP-1). To have the lifespan checked, hand the server the lifespan
//! [`Hosting::lifespan`] gives.
//!
//! A check that finds a SHOULD requirement not met (REQ-SRV-11: a body that waits for its next
//! chunk holds back the one before) reports a [`Outcome::Warn`](crate::Outcome::Warn), named
//! with the requirement's ID: the report stays ok. A MUST broken in the same check fails it.
//!
//! The suite can watch a server that runs the app in processes of its own (workers) as well
//! as one that runs it in the suite's process: see [`Hosting::probe_channel`] and
//! [`RemoteProbe`]. The probe app then reports what it sees over a side channel on loopback,
//! and the same checks judge the same records.
//!
//! ```no_run
//! # use rwgi::app::BoxApp;
//! # struct MyServer;
//! # impl MyServer {
//! #     fn start(_: std::net::TcpListener, _: BoxApp, _: Option<String>) -> Self { MyServer }
//! #     fn stop(self) {}
//! # }
//! use rwgi_conformance::server_suite::{self, Hosting, ServerHandle};
//!
//! let report = server_suite::run(|hosting: Hosting| {
//!     let (app, root_path) = hosting.into_parts();
//!     let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
//!     let address = listener.local_addr().expect("a bound socket");
//!     let server = MyServer::start(listener, app, root_path);
//!     ServerHandle::new(address).on_stop(move || server.stop())
//! });
//! println!("{}", report.to_json());
//! report.assert_ok();
//! ```

use std::fmt;
use std::io;
use std::net::SocketAddr;
#[cfg(unix)]
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::{Check, Report};
use rwgi::app::BoxApp;
use rwgi::lifespan::BoxLifespan;

mod client;
mod extensions;
mod files;
mod lifecycle;
mod probe;
mod remote;
mod requests;
mod responses;
mod upgrades;
mod vectors;

use client::{Connection, Response};
use probe::{Probe, ProbeApp};
use remote::Channel;
pub use remote::{RemoteProbe, PROBE_CHANNEL_ENV};

/// What the suite asks a server to host: the probe app, when set the root path to mount it at
/// (requests outside it get `404` without calling the app, REQ-PATH-6), and the probe's
/// lifespan, for a server that runs lifespans (spec §14.3; a server that does not ignores it).
///
/// ```
/// use rwgi_conformance::server_suite::{Hosting, ServerHandle};
///
/// /// What a server author's start function does with it.
/// fn start(hosting: Hosting) -> ServerHandle {
///     let mounted_at = hosting.root_path().unwrap_or("").to_owned();
///     let (app, _) = hosting.into_parts();
///     let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
///     let address = listener.local_addr().expect("a bound socket");
///     // ... serve `app` mounted at `mounted_at` on `listener` ...
///     # let _ = (app, mounted_at);
///     ServerHandle::new(address)
/// }
/// # let _ = start;
/// ```
#[derive(Debug)]
pub struct Hosting {
    app: BoxApp,
    root_path: Option<String>,
    lifespan: BoxLifespan,
    channel: Arc<ProbeChannel>,
}

impl Hosting {
    /// The app to serve, for a server in the suite's process.
    pub fn app(&self) -> &BoxApp {
        &self.app
    }

    /// For a server that runs the app in other processes: where a [`RemoteProbe`] hosted in
    /// them reports (`host:port` on loopback), opening the suite's side channel on first use.
    /// Hand it to the server's processes, for example as the variable [`PROBE_CHANNEL_ENV`],
    /// and host [`RemoteProbe::from_env`] there in place of [`Hosting::app`]; the checks are
    /// the same.
    ///
    /// ```no_run
    /// use std::process::Command;
    /// use rwgi_conformance::server_suite::{self, Hosting, ServerHandle, PROBE_CHANNEL_ENV};
    ///
    /// let report = server_suite::run(|hosting: Hosting| {
    ///     let channel = hosting.probe_channel().expect("a side channel on loopback");
    ///     let mut command = Command::new("target/debug/examples/my-probe-server");
    ///     command.env(PROBE_CHANNEL_ENV, channel).args(["--bind", "127.0.0.1:8123"]);
    ///     if let Some(root_path) = hosting.root_path() {
    ///         command.args(["--root-path", root_path]);
    ///     }
    ///     let mut server = command.spawn().expect("the server starts");
    ///     // ... wait until it accepts connections ...
    ///     let address: std::net::SocketAddr = "127.0.0.1:8123".parse().unwrap();
    ///     ServerHandle::new(address).on_stop(move || {
    ///         let _ = server.kill();
    ///         let _ = server.wait();
    ///     })
    /// });
    /// report.assert_ok();
    /// ```
    ///
    /// # Errors
    ///
    /// When no listener can be opened on 127.0.0.1.
    pub fn probe_channel(&self) -> io::Result<String> {
        self.channel.address()
    }

    /// The root path to mount the app at, like `/app`.
    pub fn root_path(&self) -> Option<&str> {
        self.root_path.as_deref()
    }

    /// The app's lifespan, to hand to a server that runs lifespans: the check
    /// `lifespan_state` then holds the server to REQ-LIFE-1 and REQ-LIFE-2.
    ///
    /// ```
    /// use rwgi_conformance::server_suite::Hosting;
    ///
    /// fn start(hosting: Hosting) {
    ///     let lifespan = hosting.lifespan().clone(); // run its startup before serving
    ///     let (app, root_path) = hosting.into_parts();
    ///     # let _ = (lifespan, app, root_path);
    /// }
    /// # let _ = start;
    /// ```
    pub fn lifespan(&self) -> &BoxLifespan {
        &self.lifespan
    }

    /// The app and the root path.
    pub fn into_parts(self) -> (BoxApp, Option<String>) {
        (self.app, self.root_path)
    }
}

/// Where a server accepts connections.
///
/// ```
/// use std::net::SocketAddr;
/// use rwgi_conformance::server_suite::Address;
///
/// let tcp: SocketAddr = "127.0.0.1:8000".parse().unwrap();
/// assert_eq!(Address::from(tcp), Address::Tcp(tcp));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Address {
    /// A TCP address the suite can connect to (not `0.0.0.0`).
    Tcp(SocketAddr),
    /// The path of a Unix domain socket.
    #[cfg(unix)]
    Unix(PathBuf),
}

impl Address {
    /// Whether connections to this address have a peer and a local socket address: a TCP
    /// address says yes, a Unix socket says no. The suite skips `connection_addresses`
    /// (REQ-ENV-10) only on this declaration, never because it failed to read an address.
    ///
    /// ```
    /// use rwgi_conformance::server_suite::Address;
    ///
    /// let tcp: std::net::SocketAddr = "127.0.0.1:8000".parse().unwrap();
    /// assert!(Address::from(tcp).has_socket_addresses());
    /// # #[cfg(unix)]
    /// assert!(!Address::from(std::path::PathBuf::from("/tmp/app.sock")).has_socket_addresses());
    /// ```
    pub fn has_socket_addresses(&self) -> bool {
        match self {
            Address::Tcp(_) => true,
            #[cfg(unix)]
            Address::Unix(_) => false,
        }
    }
}

impl From<SocketAddr> for Address {
    fn from(address: SocketAddr) -> Self {
        Address::Tcp(address)
    }
}

#[cfg(unix)]
impl From<PathBuf> for Address {
    fn from(path: PathBuf) -> Self {
        Address::Unix(path)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp(address) => address.fmt(f),
            #[cfg(unix)]
            Address::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// A server the suite started: where to reach it, and how to stop it. The server is stopped
/// when the handle is dropped.
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// use rwgi_conformance::server_suite::{Address, ServerHandle};
///
/// let stopped = Arc::new(AtomicBool::new(false));
/// let flag = Arc::clone(&stopped);
/// let address: std::net::SocketAddr = "127.0.0.1:8000".parse().unwrap();
/// let handle = ServerHandle::new(address).on_stop(move || flag.store(true, Ordering::SeqCst));
/// assert_eq!(handle.address(), &Address::Tcp(address));
/// drop(handle);
/// assert!(stopped.load(Ordering::SeqCst));
/// ```
pub struct ServerHandle {
    address: Address,
    stop: Option<Box<dyn FnOnce() + Send>>,
}

impl ServerHandle {
    /// A server reachable at `address`, which needs nothing done to stop it (or stops when
    /// something the closure owns is dropped).
    pub fn new(address: impl Into<Address>) -> Self {
        ServerHandle {
            address: address.into(),
            stop: None,
        }
    }

    /// Runs `stop` when the suite is done with the server.
    #[must_use]
    pub fn on_stop(mut self, stop: impl FnOnce() + Send + 'static) -> Self {
        self.stop = Some(Box::new(stop));
        self
    }

    /// Where the server accepts connections.
    pub fn address(&self) -> &Address {
        &self.address
    }
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop();
        }
    }
}

/// How long the suite waits for any one thing: a connection, a response, a call of the app.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// How the reason of a skip begins when the server does not offer the extension a check is
/// about (spec §14.6 to §14.8): absent means unsupported, and the check has nothing to hold
/// the server to. [`Report::assert_ok_offered`](crate::Report::assert_ok_offered) accepts these
/// skips and no other.
///
/// ```
/// use rwgi_conformance::server_suite::NOT_OFFERED;
/// assert_eq!(NOT_OFFERED, "the server does not offer ");
/// ```
pub const NOT_OFFERED: &str = "the server does not offer ";

macro_rules! checks {
    ($($module:ident::$name:ident: [$first:literal $(, $requirement:literal)* $(,)?] $what:literal;)+) => {
        /// Every check of the server suite, in the order [`run`] runs them, with the
        /// requirements each covers (a failure names the one broken first):
        ///
        /// | Check | Requirements | What it does |
        /// |---|---|---|
        $(#[doc = concat!(
            "| `", stringify!($name), "` | ", $first, $(", ", $requirement,)* " | ", $what, " |"
        )])+
        ///
        /// ```
        /// use rwgi_conformance::server_suite::CHECKS;
        ///
        /// let keep_alive = CHECKS.iter().find(|check| check.name == "keep_alive").unwrap();
        /// assert_eq!(keep_alive.requirements, ["REQ-SRV-3"]);
        /// ```
        pub const CHECKS: &[Check] = &[
            $(Check { name: stringify!($name), requirements: &[$first $(, $requirement)*] },)+
        ];

        /// The function behind each entry of [`CHECKS`], at the same index.
        const RUNNERS: &[fn(&mut Suite<'_>) -> Checked] = &[$($module::$name,)+];
    };
}

checks! {
    requests::vectors_paths: [
        "REQ-PATH-1", "REQ-PATH-2", "REQ-PATH-3", "REQ-PATH-4", "REQ-PATH-5", "REQ-PATH-7",
        "REQ-ENV-1", "REQ-ENV-2", "REQ-ENV-5", "REQ-CGI-1", "REQ-APP-3",
    ]
        "The vectors of `spec/vectors/paths.json`: paths and queries reach the app raw, split \
         losslessly and decoded per segment.";
    requests::vectors_targets: [
        "REQ-ENV-6", "REQ-ENV-1", "REQ-ENV-2", "REQ-ENV-4", "REQ-ENV-5", "REQ-ENV-8", "REQ-ENV-14", "REQ-PATH-1",
        "REQ-PATH-5", "REQ-CGI-1", "REQ-APP-3", "REQ-SRV-12",
    ]
        "The vectors of `targets.json`: absolute, authority (`CONNECT`, refused with `501`) and \
         asterisk targets.";
    requests::vectors_hosts: [
        "REQ-ENV-3", "REQ-ENV-1", "REQ-ENV-2", "REQ-ENV-4", "REQ-ENV-11", "REQ-ENV-14", "REQ-CGI-1", "REQ-APP-3",
    ]
        "The vectors of `hosts.json`: the `Host` rules, the server name and port, the HTTP \
         version.";
    requests::vectors_headers: [
        "REQ-ENV-7", "REQ-ENV-1", "REQ-ENV-2", "REQ-ENV-12", "REQ-CGI-1", "REQ-CGI-2", "REQ-CGI-3",
        "REQ-CGI-4",
    ]
        "The vectors of `headers.json`: header fields as received, and their CGI variables.";
    requests::vectors_bodies: [
        "REQ-INPUT-1", "REQ-INPUT-3", "REQ-ENV-2", "REQ-ENV-7", "REQ-ENV-12", "REQ-ENV-13",
        "REQ-CGI-2",
    ]
        "The vectors of `bodies.json`: request bodies, their length and framing, smuggling \
         refused.";
    requests::vectors_mount: ["REQ-PATH-6", "REQ-PATH-2", "REQ-PATH-5", "REQ-APP-3"]
        "The vectors of `mount.json`: a server mounted at `/app`, and `404` outside it.";
    requests::input_large: ["REQ-INPUT-1"]
        "An 8 MiB upload, with `Content-Length` and chunked, reaches the app intact.";
    requests::input_partly_read: ["REQ-INPUT-4"]
        "An app that reads one byte of a 66 KB body: the rest is discarded or the connection \
         closed, and never taken for the next request.";
    requests::input_unread: ["REQ-INPUT-4"]
        "As `input_partly_read`, for an app that does not read the body at all.";
    requests::input_client_gone: ["REQ-INPUT-2"]
        "The client stops sending in the middle of the body: reading it yields an error.";
    requests::input_broken_chunked: ["REQ-INPUT-2"]
        "A chunked body whose coding breaks: reading it yields an error.";
    requests::expect_continue: ["REQ-INPUT-5"]
        "`Expect: 100-continue`: no `100 Continue` before the app polls the body, and one when it \
         does; none at all when the app answers without reading.";
    requests::connection_addresses: ["REQ-ENV-10"]
        "The environ carries the connection's peer and local addresses.";
    responses::response_content_length: ["REQ-SRV-9", "REQ-BODY-1"]
        "A body of known length goes out with `Content-Length`, in order.";
    responses::response_chunked: ["REQ-SRV-9", "REQ-BODY-1"]
        "A body of unknown length goes out chunked to an HTTP/1.1 client, in order.";
    responses::response_close_delimited: ["REQ-SRV-9"]
        "A body of unknown length goes out to an HTTP/1.0 client delimited by closing the \
         connection.";
    responses::status_line_version: ["REQ-SRV-13"]
        "The answer to an HTTP/1.1 request has `HTTP/1.1` in its status line.";
    responses::response_streams: ["REQ-SRV-11", "REQ-BODY-1"]
        "A chunk reaches the client while the body waits for its next one.";
    responses::response_empty_chunks: ["REQ-BODY-3"]
        "Empty chunks neither end a chunked body nor disturb a counted one.";
    responses::head_no_body: ["REQ-SRV-6"]
        "No body goes out for `HEAD`, whatever the app's body.";
    responses::head_content_length: ["REQ-SRV-6", "REQ-RESP-5"]
        "A `HEAD` answer carries the `Content-Length` a `GET` answer would have.";
    responses::no_body_204_304: ["REQ-SRV-6", "REQ-RESP-6", "REQ-RESP-5"]
        "`204` and `304` answers go out without a body; a `304` may carry the `Content-Length` of \
         the `GET` answer.";
    responses::repeated_response_headers: ["REQ-SRV-2"]
        "The app's status and headers go out unchanged, repeated headers as separate lines.";
    responses::illegal_head_hop_by_hop: ["REQ-SRV-5", "REQ-RESP-2"]
        "An app's hop-by-hop header is never sent: the server answers `500`.";
    responses::illegal_head_informational: ["REQ-SRV-5", "REQ-RESP-1"]
        "An app's informational final status is never sent: the server answers `500`.";
    responses::illegal_head_content_length: ["REQ-SRV-5", "REQ-RESP-3", "REQ-RESP-5"]
        "An app's malformed or wrong `Content-Length` is never sent: the server answers `500`.";
    responses::illegal_head_bodiless: ["REQ-SRV-5", "REQ-RESP-4", "REQ-RESP-6"]
        "A `204` with a length or a body, or a `205` or `304` with a body, is never sent: the \
         server answers `500`.";
    responses::error_before_first_chunk: ["REQ-ERR-2", "REQ-SRV-4"]
        "A body that fails before its first non-empty chunk becomes a `500`.";
    responses::nothing_sent_before_first_chunk: ["REQ-SRV-4", "REQ-START-4"]
        "Nothing of the response goes out before the body's first chunk, even once the app has \
         returned its response.";
    responses::error_after_first_chunk: ["REQ-ERR-3"]
        "A body that fails after its first chunk aborts the connection.";
    responses::content_length_mismatch: ["REQ-SRV-7", "REQ-RESP-5"]
        "A body that yields more or fewer bytes than its `Content-Length` aborts the connection.";
    lifecycle::body_dropped_after_completion: ["REQ-SRV-8"]
        "The body is dropped once the response is complete, once it failed, and when it is never \
         sent (`HEAD`), and it is not polled after it ended.";
    lifecycle::body_dropped_on_disconnect: ["REQ-SRV-8", "REQ-CONC-2"]
        "The body is dropped when the client goes away in the middle of it: while it streams, and \
         while it waits for its next chunk.";
    lifecycle::app_dropped_on_disconnect: ["REQ-CONC-2"]
        "The app's future is dropped when the client goes away before the app answered.";
    lifecycle::keep_alive: ["REQ-SRV-3"]
        "A connection serves one request after another, and closes when the client asks.";
    lifecycle::pipelining: ["REQ-SRV-3", "REQ-APP-3"]
        "Requests sent together on one connection are answered in order, one call each.";
    lifecycle::app_error: ["REQ-ERR-2", "REQ-ERR-5"]
        "An app that returns an error gets a `500` without details, and the server goes on.";
    lifecycle::app_panic: ["REQ-ERR-4", "REQ-ERR-2", "REQ-ERR-3", "REQ-ERR-5"]
        "An app or body that panics is an error like any other, and the server goes on serving.";
    lifecycle::multithread_consistent: ["REQ-CONC-1", "REQ-ENV-9"]
        "When two calls run at once on different threads, the environ says `multithread`; every \
         call gets the same `ServerInfo`; when the app is called in more than one process, \
         every process says `multiprocess`.";
    extensions::lifespan_state: ["REQ-LIFE-1", "REQ-LIFE-2"]
        "When the server runs the lifespan the suite hands it (`Hosting::lifespan`), every \
         request carries the state of the one startup its process ran, which completed before \
         the request. Skipped when no request carries a state (spec §14.3).";
    extensions::response_outcome: ["REQ-OUTCOME-1", "REQ-OUTCOME-2"]
        "When the environ carries a `ResponseFinished` handle, its callback runs once per \
         response, told truly how it ended: completed, client gone, body failed. Skipped \
         when the server offers no handle (spec §14.4).";
    extensions::disconnect_notified: ["REQ-DISC-1", "REQ-DISC-2"]
        "A `Disconnect` the server offers completes once the client went away while the app \
         works and while the body waits, and not while the client is there.";
    extensions::head_flushed: ["REQ-INTERIM-3"]
        "With `FlushHead` offered and asked for, the head arrives before the body's first chunk.";
    extensions::interim_responses: ["REQ-INTERIM-2"]
        "With `Interim` offered, a `103` the app sends arrives before the final response.";
    extensions::response_trailers: ["REQ-TRAIL-3", "REQ-TRAIL-1"]
        "With `Trailers` offered, a body's announced trailers follow its chunked data to a client \
         that sent `TE: trailers`, and no field it did not announce.";
    extensions::illegal_trailer_names: ["REQ-TRAIL-2"]
        "With `Trailers` offered, a body that announces `content-length` as a trailer gets a \
         `500`.";
    extensions::request_trailers: ["REQ-TRAIL-4"]
        "With `Trailers` offered, the trailer fields of a chunked upload reach the app after \
         its input.";
    files::file_body_range: ["REQ-FILE-2"]
        "A file body goes out as exactly the bytes of its range, with the range's length as \
         `Content-Length` (also for `HEAD`, and for an empty range), whether or not the server \
         declares file bodies.";
    files::file_body_short: ["REQ-FILE-3"]
        "A file that shrank below its range after the body was made: the response is aborted \
         (before or after its head) or is a `500`, never completed or padded.";
    upgrades::upgrade_offered_when_asked: ["REQ-UPGRADE-1"]
        "No upgrade offer for a request that does not ask for one: no `Upgrade`, no \
         `Connection: upgrade`, or HTTP/1.0.";
    upgrades::upgrade_hands_over_connection: ["REQ-UPGRADE-3"]
        "After the app's `101` its handler gets the connection, with the bytes sent along with \
         the request, and the connection closes when it ends; a `101` refused as a `500` runs no \
         handler. Skipped when the server offers no upgrades (spec §14.10).";
}

/// Runs every check against the server that `start` starts.
///
/// `start` is called once for each server configuration the suite needs (the plain one, and
/// one per root path the vectors mount at); the servers are stopped when the suite is done.
pub fn run<F>(start: F) -> Report
where
    F: FnMut(Hosting) -> ServerHandle,
{
    run_selected(start, |_| true)
}

/// Runs only the checks named in `names`, in the order of [`CHECKS`]: for a server that is
/// being brought up to the spec one area at a time, and for tests of the suite itself.
///
/// # Panics
///
/// When a name is not the name of a check in [`CHECKS`].
pub fn run_checks<F>(start: F, names: &[&str]) -> Report
where
    F: FnMut(Hosting) -> ServerHandle,
{
    for name in names {
        assert!(
            CHECKS.iter().any(|check| check.name == *name),
            "the server suite has no check named {name:?}"
        );
    }
    run_selected(start, |check| names.contains(&check.name))
}

fn run_selected<F>(mut start: F, selected: impl Fn(&Check) -> bool) -> Report
where
    F: FnMut(Hosting) -> ServerHandle,
{
    let probe = Probe::new();
    let mut suite = Suite {
        start: &mut start,
        channel: Arc::new(ProbeChannel {
            probe: probe.clone(),
            open: Mutex::new(None),
        }),
        probe,
        servers: Vec::new(),
    };
    let mut report = Report::default();
    for (check, runner) in CHECKS.iter().zip(RUNNERS) {
        if !selected(check) {
            continue;
        }
        match runner(&mut suite) {
            Ok(()) => report.pass(*check),
            // A SHOULD not met is a warning (REQ-SRV-11, say): reported, but ok.
            Err(Problem::Fail(detail)) => report.not_met(*check, detail),
            Err(Problem::Skip(why)) => report.skip(*check, why),
        }
        suite.probe.clear();
    }
    report
}

/// The state of one run: the servers started so far and the probe they host.
struct Suite<'a> {
    start: &'a mut dyn FnMut(Hosting) -> ServerHandle,
    probe: Probe,
    servers: Vec<(Option<String>, ServerHandle)>,
    /// Closed after the servers are stopped (fields drop in order).
    channel: Arc<ProbeChannel>,
}

/// The side channel of a run, opened when a start function first asks for it.
#[derive(Debug)]
struct ProbeChannel {
    probe: Probe,
    open: Mutex<Option<Channel>>,
}

impl ProbeChannel {
    fn address(&self) -> io::Result<String> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.is_none() {
            *open = Some(Channel::open(&self.probe)?);
        }
        Ok(open
            .as_ref()
            .map(|channel| channel.address().to_string())
            .unwrap_or_default())
    }
}

impl Suite<'_> {
    /// The address of the server mounted at `root_path`, started on first use.
    fn address(&mut self, root_path: Option<&str>) -> Address {
        if let Some((_, server)) = self.servers.iter().find(|(r, _)| r.as_deref() == root_path) {
            return server.address.clone();
        }
        let server = (self.start)(Hosting {
            app: BoxApp::new(ProbeApp::local(&self.probe)),
            root_path: root_path.map(str::to_owned),
            lifespan: BoxLifespan::new(probe::ProbeLifespan::default()),
            channel: Arc::clone(&self.channel),
        });
        let address = server.address.clone();
        self.servers.push((root_path.map(str::to_owned), server));
        address
    }

    /// A new connection to the server mounted at `root_path`.
    fn connect_at(&mut self, root_path: Option<&str>) -> io::Result<Connection> {
        Connection::open(&self.address(root_path), IO_TIMEOUT)
    }

    /// A new connection to the plain server.
    fn connect(&mut self) -> Result<Connection, String> {
        self.connect_at(None)
            .map_err(|error| format!("no connection to the server ({error})"))
    }

    /// Sends `request` on a new connection and reads the answer.
    /// For a check whose app holds what only the suite's process has (a file it made, a flag
    /// it watches): `Err` with a skip saying so when the server runs the app in another
    /// process, found out with one request.
    fn needs_app_in_process(&mut self, check: &str) -> Result<(), Problem> {
        self.probe.set(probe::record());
        let _ = self.exchange(&get("/where"));
        let calls = self.probe.wait(IO_TIMEOUT, |calls| !calls.is_empty());
        match calls {
            Ok(calls) if !calls[0].in_suite_process() => Err(runs_elsewhere(check)),
            _ => Ok(()),
        }
    }

    fn exchange(&mut self, request: &[u8]) -> Result<(Response, Connection), String> {
        let mut connection = self.connect()?;
        connection
            .send(request)
            .map_err(|error| format!("the request could not be sent ({error})"))?;
        let method = request.split(|&b| b == b' ').next().unwrap_or_default();
        let response = connection
            .response(&String::from_utf8_lossy(method))
            .map_err(|error| error.to_string())?;
        Ok((response, connection))
    }
}

/// Why a check did not pass.
enum Problem {
    /// The server broke a requirement; the detail starts with its ID.
    Fail(String),
    /// The check does not apply to this server.
    Skip(String),
}

type Checked = Result<(), Problem>;

/// A failure of `requirement`: `detail` says what was expected and what was seen.
fn fail(requirement: &str, detail: impl fmt::Display) -> Problem {
    Problem::Fail(format!("{requirement}: {detail}"))
}

/// A request with a `Host` header, the extra field lines `fields` (each ending in CRLF), and
/// `body`.
fn request(method: &str, target: &str, fields: &str, body: &[u8]) -> Vec<u8> {
    let mut bytes =
        format!("{method} {target} HTTP/1.1\r\nHost: probe.test\r\n{fields}\r\n").into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A plain `GET`.
/// The skip of a check whose app holds what only the suite's process has (a handle the server
/// offered, a file, a flag), for a server that ran the app in another process.
fn runs_elsewhere(check: &str) -> Problem {
    Problem::Skip(format!(
        "{check}: the app runs in another process, where the suite cannot hold what the \
         check's app needs"
    ))
}

fn get(target: &str) -> Vec<u8> {
    request("GET", target, "", b"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_names_are_unique_and_cite_spec_requirements() {
        let spec = include_str!("../../spec/SPEC.md");
        let mut names = std::collections::BTreeSet::new();
        for check in CHECKS {
            assert!(names.insert(check.name), "{} twice", check.name);
            for requirement in check.requirements {
                assert!(
                    spec.contains(&format!("**{requirement}**")),
                    "{}: {requirement} is not in the spec",
                    check.name
                );
            }
        }
        assert_eq!(CHECKS.len(), RUNNERS.len());
    }

    #[test]
    #[should_panic(expected = "the server suite has no check named \"no_such_check\"")]
    fn unknown_check_names_are_refused() {
        run_checks(
            |_| unreachable!("no server is started for an unknown check"),
            &["no_such_check"],
        );
    }
}
