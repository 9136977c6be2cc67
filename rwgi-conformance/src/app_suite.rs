//! The app suite: drives an app with a battery of requests and checks what it does.
//!
//! A framework author calls [`run`] (or [`run_blocking`]) with their app from a test:
//!
//! ```
//! use rwgi::app::app_fn;
//! use rwgi::body::Full;
//! use rwgi_conformance::app_suite;
//! use rwgi::http::{HeaderMap, StatusCode};
//!
//! let app = app_fn(|_, start: rwgi::StartResponse| async move {
//!     Ok(start.start(StatusCode::OK, HeaderMap::new()).body(Full::new("hello")))
//! });
//! app_suite::run_blocking(&app).assert_ok();
//! ```
//!
//! A driver built into the suite plays the server: it calls the app directly, in process, with
//! each request of the battery, and polls the answer as a server would. The app runs wrapped in
//! the [`Lint`] middleware, which checks every response head and body; the driver adds what only
//! a server sees: panics, stalls, and the faults of real networks.
//!
//! # The battery
//!
//! `GET /`, a `GET` of a path the app cannot know, `HEAD /`, `OPTIONS *`, `DELETE /`, and `POST`
//! with an empty body, a small form, a chunked body of unknown length, a 4 MiB body in 64 KiB
//! chunks, and a slow body (every chunk preceded by `Pending`); a request under a mount prefix
//! (`script_name` not empty); odd paths (`%2F`, `%FF`, `//`) and a raw query; a request with
//! a hundred headers, some repeated; and a `GET /` that asks to upgrade to `rwgi-suite`, with an
//! upgrade offer in its environ. The failure of a rule check names the request that broke the
//! rule.
//!
//! The driver declares file bodies (§14.9): it takes the file range out of a body that has one
//! and reads it itself.
//!
//! # Fault injection
//!
//! Each fault is a check of its own: a slow reader (the body polled with pauses), a stalled
//! write (one long pause after the first chunk), a client gone in the middle of the upload (the
//! request body fails at byte 100 000), a client gone in the middle of the download (the body
//! dropped after its first chunk), and a client gone before the answer (the app's future
//! dropped while it waits for the request body). A fault check reports the rules listed with it
//! that broke under the fault; other rules broken there count for their own rule check.
//!
//! # Middleware
//!
//! [`run_middleware`] runs the same battery through a middleware wrapped around a [`Probe`], an
//! app the suite controls, and checks the middleware in both of its roles: as an app toward the
//! driver (every check above) and as a server toward the probe ([`MIDDLEWARE_CHECKS`]).
//!
//! [`CHECKS`] tables every check with its requirements.
//!
//! # Verdicts
//!
//! Every check counts the exchanges it judged: a response head for the head rules, a body read
//! to its end for the body rules, a fault that really happened for a fault check, a request
//! that reached the app behind a middleware for the middleware checks. A check with a broken
//! rule fails; a check that judged nothing is [`Outcome::NotObserved`], which is never ok (an
//! app that answers `Err` to every request, or a middleware that never calls inward, gets a red
//! report); the rest pass, with any note in their detail. The app suite never skips.
//!
//! # Decisions
//!
//! - A panic of the app or its body fails `no_panic` under REQ-APP-5: servers turn it into an
//!   error as a last resort, and an app that relies on that has a bug. A panic while being
//!   dropped after a client went away breaks REQ-CONC-2.
//! - REQ-APP-4 is a SHOULD, and the suite holds apps to it: an app that answers `Err` where a
//!   response was possible fails `answers_every_request`, naming the request, as does an app
//!   that never answers (its future is pending and not woken within the time limit).
//! - REQ-BODY-6 is judged on every body read to its end (a body that waits for chunks that
//!   never come stalls, and fails), and, where it can be seen, with a chunked request body held
//!   back after its first chunk: a body that yields while the rest is held back streams. When
//!   the app reads the whole request before answering, or its body waits for the rest before
//!   yielding anything, that case is a note on the pass: both are allowed when the output
//!   depends on the whole input, which the suite cannot tell.
//! - Calling the callback and then returning `Err` is allowed: calling the callback sends
//!   nothing (REQ-START-4) and an `Err` becomes a `500` (REQ-ERR-2). Answering through a
//!   `StartResponse` the app made itself fails `answers_through_its_callback` (REQ-START-1): the
//!   response would lose what the server put in the callback. The rest of callback misuse that
//!   the types allow is in what the callback is given, which the REQ-RESP-* checks cover.
//! - An app's body need not stay ended when polled after its end: not polling it then is the
//!   caller's duty (REQ-BODY-2), which the middleware checks hold a middleware to.
//! - A `HEAD` answer's body is dropped unpolled, as servers do (REQ-SRV-6), so an app may
//!   produce one.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HeaderMap, Method, StatusCode, Version};

use super::{Check, Outcome, Report};
use crate::facts;
use crate::test_client::{block_on, TestRequest};
use rwgi::body::Body;
use rwgi::file::FileRange;
use rwgi::lint::{Lint, LintApp};
use rwgi::middleware::Middleware;
use rwgi::upgrade::{offer, Handler, Switching, Upgraded};
use rwgi::violation::Violation;
use rwgi::{App, Environ, Input, StartResponse};

mod driver;
mod probe;

use driver::{drive, drop_caught, lock, next_chunk, poll_once, Gate, Sleep, Stop, Upload};
use probe::{InnerMark, Mark, ProbeState, PROBE_FIELDS};
pub use probe::{Probe, ProbeBody};

const FINAL_STATUS: Check = rule("final_status_not_informational", &["REQ-RESP-1"]);
const HOP_BY_HOP: Check = rule("no_hop_by_hop_headers", &["REQ-RESP-2"]);
const LENGTH_FORM: Check = rule("content_length_well_formed", &["REQ-RESP-3"]);
const NO_LENGTH_ON_204: Check = rule("no_content_length_on_204", &["REQ-RESP-4"]);
const LENGTH_MATCHES: Check = rule("content_length_matches_body", &["REQ-RESP-5"]);
const BODILESS: Check = rule("bodiless_status_empty_body", &["REQ-RESP-6"]);
const OWN_CALLBACK: Check = rule("answers_through_its_callback", &["REQ-START-1"]);
const LENGTH_EXACT: Check = rule("body_length_exact", &["REQ-BODY-4"]);
const LAZY: Check = rule("body_streams_lazily", &["REQ-BODY-6"]);
const NO_READ_AFTER_END: Check = rule("no_input_poll_after_end", &["REQ-INPUT-6"]);
const NO_PANIC: Check = rule("no_panic", &["REQ-APP-5"]);
const ANSWERS: Check = rule("answers_every_request", &["REQ-APP-4"]);
const SLOW_READER: Check = rule("slow_reader", &["REQ-RESP-5", "REQ-BODY-4", "REQ-APP-5"]);
const STALLED_WRITE: Check = rule("stalled_write", &["REQ-RESP-5", "REQ-BODY-4", "REQ-APP-5"]);
const GONE_UPLOAD: Check = rule("client_gone_during_upload", &["REQ-INPUT-6", "REQ-APP-5"]);
const GONE_DOWNLOAD: Check = rule("client_gone_during_download", &["REQ-CONC-2", "REQ-APP-5"]);
const GONE_BEFORE: Check = rule("client_gone_before_response", &["REQ-CONC-2", "REQ-APP-5"]);
const FILE_EXACT: Check = rule("file_body_exact", &["REQ-FILE-1"]);
const UPGRADE_TAKEN: Check = rule("upgrade_taken_right", &["REQ-UPGRADE-2"]);
const MW_SERVES: Check = rule("middleware_serves_inner_app", &["REQ-MW-1"]);
const MW_STREAMS: Check = rule("middleware_streams_inner_body", &["REQ-MW-2"]);
const MW_LENGTH: Check = rule(
    "middleware_fixes_content_length",
    &["REQ-MW-3", "REQ-RESP-5"],
);
const MW_DROPS: Check = rule("middleware_drops_inner_body", &["REQ-MW-4"]);
const MW_EXTENSIONS: Check = rule("middleware_passes_extensions", &["REQ-EXT-2", "REQ-MW-5"]);
const MW_PATH: Check = rule("middleware_keeps_the_path", &["REQ-MW-5", "REQ-PATH-2"]);
const MW_HEAD: Check = rule("middleware_passes_inner_head", &["REQ-MW-1", "REQ-SRV-2"]);

const fn rule(name: &'static str, requirements: &'static [&'static str]) -> Check {
    Check { name, requirements }
}

/// The checks [`run`] reports: everything an app does toward its server.
pub const APP_CHECKS: &[Check] = &[
    FINAL_STATUS,
    HOP_BY_HOP,
    LENGTH_FORM,
    NO_LENGTH_ON_204,
    LENGTH_MATCHES,
    BODILESS,
    OWN_CALLBACK,
    LENGTH_EXACT,
    LAZY,
    NO_READ_AFTER_END,
    NO_PANIC,
    ANSWERS,
    SLOW_READER,
    STALLED_WRITE,
    GONE_UPLOAD,
    GONE_DOWNLOAD,
    GONE_BEFORE,
    FILE_EXACT,
    UPGRADE_TAKEN,
];

/// The checks [`run_middleware`] adds: what a middleware does toward the app it wraps.
pub const MIDDLEWARE_CHECKS: &[Check] = &[
    MW_SERVES,
    MW_STREAMS,
    MW_LENGTH,
    MW_DROPS,
    MW_EXTENSIONS,
    MW_PATH,
    MW_HEAD,
];

/// Every check of the app suite, in the order of the report: [`APP_CHECKS`], then
/// [`MIDDLEWARE_CHECKS`], with the requirements each covers (a failure names the one broken
/// first):
///
/// | Check | Requirements | What it judges |
/// |---|---|---|
/// | `final_status_not_informational` | REQ-RESP-1 | No response's final status is informational (1xx). |
/// | `no_hop_by_hop_headers` | REQ-RESP-2 | No response sets a hop-by-hop header. |
/// | `content_length_well_formed` | REQ-RESP-3 | At most one `Content-Length`, a decimal number. |
/// | `no_content_length_on_204` | REQ-RESP-4 | No `Content-Length` on a `204`. |
/// | `content_length_matches_body` | REQ-RESP-5 | Every body yields exactly its `Content-Length` (not held for `HEAD` and `304`). |
/// | `bodiless_status_empty_body` | REQ-RESP-6 | `204`, `205` and `304` answers have empty bodies. |
/// | `answers_through_its_callback` | REQ-START-1 | The answer comes from the callback the call received. |
/// | `body_length_exact` | REQ-BODY-4 | `Body::content_length`, when known, is what the body still yields. |
/// | `body_streams_lazily` | REQ-BODY-6 | A body yields what it has without waiting for later chunks. |
/// | `no_input_poll_after_end` | REQ-INPUT-6 | The request body is not polled after it ended or failed. |
/// | `no_panic` | REQ-APP-5 | Neither the app nor its body panics, also when dropped early. |
/// | `answers_every_request` | REQ-APP-4 | Every request of the battery gets a response, not an `Err`. |
/// | `slow_reader` | REQ-RESP-5, REQ-BODY-4, REQ-APP-5 | The body read with pauses before every poll stays correct. |
/// | `stalled_write` | REQ-RESP-5, REQ-BODY-4, REQ-APP-5 | The body read with one long pause after its first chunk stays correct. |
/// | `client_gone_during_upload` | REQ-INPUT-6, REQ-APP-5 | The request body fails at byte 100 000: the app copes. |
/// | `client_gone_during_download` | REQ-CONC-2, REQ-APP-5 | The body dropped after its first chunk: no panic. |
/// | `client_gone_before_response` | REQ-CONC-2, REQ-APP-5 | The app's future dropped while it waits: no panic. |
/// | `file_body_exact` | REQ-FILE-1 | A file range a body hands out (the driver declares file bodies and takes them) is what the body would have yielded, and the file holds it. |
/// | `upgrade_taken_right` | REQ-UPGRADE-2 | Offered an upgrade, the app answers as usual or takes the offer with `Upgrade::accept`: a `101` naming a protocol the request asked for, whose handler then runs on a closed connection without panicking. |
/// | `middleware_serves_inner_app` | REQ-MW-1 | Toward the app it wraps, the middleware keeps every server rule and passes requests on. |
/// | `middleware_streams_inner_body` | REQ-MW-2 | The middleware's body yields at least once per inner chunk. |
/// | `middleware_fixes_content_length` | REQ-MW-3, REQ-RESP-5 | A middleware that changes the body fixes `Content-Length`. |
/// | `middleware_drops_inner_body` | REQ-MW-4 | Dropping the middleware's body drops the inner one. |
/// | `middleware_passes_extensions` | REQ-EXT-2, REQ-MW-5 | Extensions travel inward in the environ and outward in the response. |
/// | `middleware_keeps_the_path` | REQ-MW-5, REQ-PATH-2 | The inner `script_name + path_info` is the path sent. |
/// | `middleware_passes_inner_head` | REQ-MW-1, REQ-SRV-2 | The inner status and header lines come out unchanged. |
///
/// ```
/// use rwgi_conformance::app_suite::CHECKS;
///
/// let no_panic = CHECKS.iter().find(|check| check.name == "no_panic").unwrap();
/// assert_eq!(no_panic.requirements, ["REQ-APP-5"]);
/// ```
pub const CHECKS: &[Check] = &ALL_CHECKS;

const ALL_CHECKS: [Check; APP_CHECKS.len() + MIDDLEWARE_CHECKS.len()] = {
    let mut all = [FINAL_STATUS; APP_CHECKS.len() + MIDDLEWARE_CHECKS.len()];
    let mut i = 0;
    while i < all.len() {
        all[i] = if i < APP_CHECKS.len() {
            APP_CHECKS[i]
        } else {
            MIDDLEWARE_CHECKS[i - APP_CHECKS.len()]
        };
        i += 1;
    }
    all
};

/// How long the suite waits for an app or body that is pending before it calls it stalled,
/// in [`run`].
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(10);

/// Runs the suite against `app` and reports every check of [`APP_CHECKS`].
///
/// The suite needs no particular async runtime: await it in a `#[tokio::test]` when the app
/// needs Tokio, or use [`run_blocking`].
pub async fn run<A: App>(app: &A) -> Report {
    run_with_time_limit(app, DEFAULT_TIME_LIMIT).await
}

/// [`run`], on the current thread.
///
/// ```
/// use rwgi::app::app_fn;
/// use rwgi::http::{HeaderMap, StatusCode};
///
/// let no_content = app_fn(|_, start: rwgi::StartResponse| async move {
///     Ok(start.start(StatusCode::NO_CONTENT, HeaderMap::new()).body(rwgi::body::Empty))
/// });
/// let report = rwgi_conformance::app_suite::run_blocking(&no_content);
/// // Nothing broken, but a body without a first chunk cannot show a stall or a client gone
/// // in the middle of a download: those checks observed nothing, so the report is not ok.
/// assert_eq!(report.failures().count(), 0);
/// assert!(!report.is_ok(), "{report}");
///
/// let hello = app_fn(|_, start: rwgi::StartResponse| async move {
///     Ok(start.start(StatusCode::OK, HeaderMap::new()).body(rwgi::body::Full::new("hello")))
/// });
/// rwgi_conformance::app_suite::run_blocking(&hello).assert_ok_strict();
/// ```
pub fn run_blocking<A: App>(app: &A) -> Report {
    block_on(run(app))
}

/// [`run`], calling an app or a body stalled when it is pending and not woken for `limit`.
pub async fn run_with_time_limit<A: App>(app: &A, limit: Duration) -> Report {
    run_suite(app, limit, None).await
}

/// Runs the suite against a middleware: wraps a [`Probe`] app in it, runs every app check on
/// the result, and checks what the middleware does as a server to the probe
/// ([`MIDDLEWARE_CHECKS`]).
///
/// ```
/// use rwgi_conformance::app_suite;
/// use rwgi::middleware::Identity;
///
/// let report = rwgi_conformance::test_client::block_on(app_suite::run_middleware(&Identity));
/// report.assert_ok();
/// ```
///
/// The middleware checks:
/// - `middleware_serves_inner_app` (REQ-MW-1): toward the probe, the middleware keeps every
///   rule a server keeps that the lint checks; a request it answers itself is a note.
/// - `middleware_streams_inner_body` (REQ-MW-2): with the probe's body held back after its
///   first chunk, the middleware's body yields before the rest comes.
/// - `middleware_fixes_content_length` (REQ-MW-3): the probe's `Content-Length` is exact, so a
///   mismatch in the middleware's answer is the middleware's.
/// - `middleware_drops_inner_body` (REQ-MW-4): when its body is dropped, the probe's is too.
/// - `middleware_passes_extensions` (REQ-EXT-2, REQ-MW-5): a typed value the suite puts in
///   the environ's extensions reaches the probe, and one the probe puts in its response's
///   extensions reaches the suite.
/// - `middleware_keeps_the_path` (REQ-MW-5, REQ-PATH-2): the probe's `script_name +
///   path_info` is the path of the request the suite sent: a prefix is moved into
///   `script_name` (`Environ::mount`), never dropped.
/// - `middleware_passes_inner_head` (REQ-MW-1, REQ-SRV-2): the middleware's answer keeps the
///   probe's status and its `Content-Type` and two `X-Probe` lines as they were (headers it
///   adds are its own; `Content-Length` is REQ-MW-3's).
pub async fn run_middleware<M: Middleware<Probe>>(middleware: &M) -> Report {
    let state = Arc::new(ProbeState::default());
    let app = middleware.wrap(Probe::new(&state));
    run_suite(&app, DEFAULT_TIME_LIMIT, Some(&state)).await
}

async fn run_suite<A: App>(app: &A, limit: Duration, probe: Option<&Arc<ProbeState>>) -> Report {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let lint = Lint::with_hook(move |violation: &Violation| {
        lock(&log).push(violation.clone());
    });
    let driver = Driver {
        app: lint.wrap(app),
        seen,
        limit,
        probe,
    };
    // Behind a middleware, a wrong Content-Length is the middleware's: the probe's is exact.
    // A check that shares a requirement with one before it gets only what that one does not.
    let owners: &[Check] = if probe.is_some() {
        &[MW_LENGTH, MW_EXTENSIONS, MW_SERVES, MW_PATH, MW_HEAD]
    } else {
        &[]
    };
    let mut tally = Tally {
        verdicts: CHECKS.iter().map(|_| Verdict::default()).collect(),
    };
    for (label, request) in battery() {
        let found = driver.exchange(label, request, Network::Fast, false).await;
        tally.settle(label, None, owners, found);
    }
    for (check, label, request, network) in faults() {
        let found = driver.exchange(label, request, network, true).await;
        tally.settle(label, Some(check), owners, found);
    }
    let found = driver.streams_lazily().await;
    tally.settle(STREAMING_LABEL, None, owners, found);
    if let Some(probe) = probe {
        let found = driver.middleware_streams(probe).await;
        tally.settle(
            "GET / with the inner body held back after its first chunk",
            None,
            owners,
            found,
        );
        tally.into_report(CHECKS, Some(probe))
    } else {
        tally.into_report(APP_CHECKS, None)
    }
}

/// The network conditions of one exchange: how the driver reads the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Network {
    /// Reads the body as fast as it comes.
    Fast,
    /// Pauses before every poll of the body.
    SlowReader,
    /// Pauses once, after the first chunk.
    StalledWrite,
    /// Drops the body after its first chunk.
    GoneDuringDownload,
    /// Polls the app's future once, then drops it (or its answer).
    GoneBeforeResponse,
}

const SLOW_READER_PAUSE: Duration = Duration::from_millis(2);
const STALL: Duration = Duration::from_millis(100);
const KIB: u64 = 1024;
const STREAMING_LABEL: &str = "POST / with a chunked body held back after its first chunk";
const UPGRADE_LABEL: &str = "GET / asking to upgrade to rwgi-suite";

/// A `POST /` whose body is `upload`, chunked when its length is not declared.
fn post(upload: Upload) -> TestRequest {
    let chunked = upload.content_length().is_none();
    let request = TestRequest::post("/").body(Input::from_body(upload));
    if chunked {
        request.header("transfer-encoding", "chunked")
    } else {
        request
    }
}

/// The requests every app is sent, with the label a failure names.
fn battery() -> Vec<(&'static str, TestRequest)> {
    let mut many = TestRequest::get("/");
    for i in 0..100 {
        many = many.header(&format!("x-rwgi-suite-{i}"), "value");
    }
    for value in ["text/html", "application/json;q=0.9", "*/*;q=0.1"] {
        many = many.header("accept", value);
    }
    vec![
        ("GET /", TestRequest::get("/")),
        (
            "GET of an unknown path",
            TestRequest::get("/rwgi-suite/no/such/path"),
        ),
        ("HEAD /", TestRequest::head("/")),
        ("OPTIONS *", TestRequest::new(Method::OPTIONS, "*")),
        ("DELETE /", TestRequest::new(Method::DELETE, "/")),
        (
            "POST / with an empty body",
            TestRequest::post("/").header("content-length", "0"),
        ),
        (
            "POST / with a small form",
            TestRequest::post("/")
                .header("content-type", "application/x-www-form-urlencoded")
                .body("name=rwgi&suite=app"),
        ),
        (
            "POST / with a chunked body of unknown length",
            post(Upload::new(3000, 1000, false)),
        ),
        (
            "POST / with a 4 MiB body in 64 KiB chunks",
            post(Upload::new(4096 * KIB, 64 * KIB, true)),
        ),
        (
            "POST / with a slow body",
            post(Upload::new(16 * KIB, 4 * KIB, true).slow()),
        ),
        (
            "GET /mnt/app/x mounted at /mnt/app",
            TestRequest::get("/mnt/app/x").mount("/mnt/app"),
        ),
        ("GET /files/a%2Fb/%FF", TestRequest::get("/files/a%2Fb/%FF")),
        (
            "GET //double//slashes/",
            TestRequest::get("//double//slashes/"),
        ),
        (
            "GET /search?q=a%2Fb&q=%FF&flag",
            TestRequest::get("/search?q=a%2Fb&q=%FF&flag"),
        ),
        (
            "GET / over HTTP/1.0",
            TestRequest::get("/").version(Version::HTTP_10),
        ),
        ("GET / with 103 headers, some repeated", many),
        (
            UPGRADE_LABEL,
            TestRequest::get("/")
                .header("connection", "upgrade")
                .header("upgrade", "rwgi-suite"),
        ),
    ]
}

/// The fault-injection exchanges, each with the check it counts for.
fn faults() -> Vec<(Check, &'static str, TestRequest, Network)> {
    let upload = || post(Upload::new(256 * KIB, 16 * KIB, true));
    let mut faults = Vec::new();
    for (check, network) in [
        (SLOW_READER, Network::SlowReader),
        (STALLED_WRITE, Network::StalledWrite),
        (GONE_DOWNLOAD, Network::GoneDuringDownload),
    ] {
        faults.push((check, "GET /", TestRequest::get("/"), network));
        faults.push((
            check,
            "POST / with 256 KiB in 16 KiB chunks",
            upload(),
            network,
        ));
    }
    faults.push((
        GONE_UPLOAD,
        "POST / of 256 KiB, client gone at byte 100000",
        post(Upload::new(256 * KIB, 16 * KIB, true).gone_at(100_000)),
        Network::Fast,
    ));
    faults.push((
        GONE_BEFORE,
        "GET /",
        TestRequest::get("/"),
        Network::GoneBeforeResponse,
    ));
    faults.push((
        GONE_BEFORE,
        "POST / with a slow body",
        post(Upload::new(16 * KIB, 4 * KIB, true).slow()),
        Network::GoneBeforeResponse,
    ));
    faults
}

/// Reads all of `range` as a server would send it: the bytes read, and a REQ-FILE-1 violation
/// when the file holds fewer than the range says.
fn read_range(range: &FileRange, found: &mut Found) -> usize {
    let mut buf = vec![0; 64 * 1024];
    let mut read = 0u64;
    while read < range.len() {
        let want = usize::try_from(range.len() - read).map_or(buf.len(), |n| n.min(buf.len()));
        match range.read_at(&mut buf[..want], range.offset() + read) {
            Ok(0) => {
                found.violations.push(Violation::new(
                    "REQ-FILE-1",
                    format!(
                        "take_file() handed out a range of {} bytes, but the file ended after {read} of them",
                        range.len()
                    ),
                ));
                break;
            }
            Ok(n) => read += n as u64,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => {
                found.violations.push(Violation::new(
                    "REQ-FILE-1",
                    format!(
                        "the file range of {} bytes could not be read: {error}",
                        range.len()
                    ),
                ));
                break;
            }
        }
    }
    usize::try_from(read).unwrap_or(usize::MAX)
}

/// What one exchange showed: rules broken, notes for checks that are not failures, and the
/// checks that had something to judge.
#[derive(Debug, Default)]
struct Found {
    violations: Vec<Violation>,
    /// What the suite's own reading of the response broke, by the facts written out in
    /// [`facts`](crate::facts): counted where the lint (which shares `rwgi`'s helpers with
    /// servers) saw nothing under the same requirement.
    by_facts: Vec<Violation>,
    notes: Vec<(Check, String)>,
    judged: Vec<Check>,
}

/// The checks a response head lets the suite judge.
const ON_HEAD: &[Check] = &[
    FINAL_STATUS,
    OWN_CALLBACK,
    HOP_BY_HOP,
    LENGTH_FORM,
    NO_LENGTH_ON_204,
    ANSWERS,
    NO_PANIC,
];

/// The checks a body read to its end lets the suite judge.
const ON_BODY_END: &[Check] = &[
    LENGTH_MATCHES,
    BODILESS,
    LENGTH_EXACT,
    LAZY,
    NO_READ_AFTER_END,
    FILE_EXACT,
];

impl Found {
    fn judge(&mut self, checks: &[Check]) {
        self.judged.extend_from_slice(checks);
    }

    fn panicked(&mut self, what: &str, message: &str) {
        self.violations.push(Violation::new(
            "REQ-APP-5",
            format!("{what} panicked ({message}); expected an Err instead"),
        ));
    }

    /// Drops `value` as a server does, recording a panic under `requirement`.
    fn drop_value<T>(&mut self, what: &str, value: T, requirement: &'static str) {
        if let Err(message) = drop_caught(value) {
            self.violations.push(Violation::new(
                requirement,
                format!("dropping {what} panicked ({message}); expected it to clean up quietly"),
            ));
        }
    }
}

/// The server side of the suite: the linted app and the lint's findings.
struct Driver<'a, A> {
    app: LintApp<&'a A>,
    seen: Arc<Mutex<Vec<Violation>>>,
    limit: Duration,
    /// In middleware mode, what the app behind the middleware saw.
    probe: Option<&'a Arc<ProbeState>>,
}

impl<A: App> Driver<'_, A> {
    /// Sends one request and reads the answer under `network`; `faulted` when the request or the
    /// network breaks on purpose.
    async fn exchange(
        &self,
        label: &str,
        request: TestRequest,
        network: Network,
        faulted: bool,
    ) -> Found {
        let before = self.probe_counts();
        let mut environ = self.environ(request);
        let method = environ.method().clone();
        // Upgrades (§14.10): the driver offers one when the request asks.
        let offered = offer(environ.method(), environ.version(), environ.headers()).map(
            |(upgrade, acceptance)| {
                let asked: Vec<String> = upgrade.protocols().map(str::to_owned).collect();
                environ.extensions_mut().insert(upgrade);
                (asked, acceptance)
            },
        );
        let mut found = Found::default();
        let mut call = Box::pin(self.app.call(environ, StartResponse::new()));

        if network == Network::GoneBeforeResponse {
            // One poll lets the app start, and wait for the request body if it reads it.
            match poll_once(call.as_mut()).await {
                Err(message) => found.panicked("the app", &message),
                Ok(answer) => found.drop_value(
                    "the answer of a client that went away",
                    answer,
                    "REQ-CONC-2",
                ),
            }
            found.drop_value(
                "the app's future when the client went away",
                call,
                "REQ-CONC-2",
            );
            found.judge(&[GONE_BEFORE, NO_PANIC]);
            return self.finish(found, before, None);
        }

        let answer = drive(call.as_mut(), self.limit, None).await;
        found.drop_value("the app's future", call, "REQ-APP-5");
        match answer {
            Ok(Ok(response)) => {
                found.judge(ON_HEAD);
                // Under a fault the inner answer may rightly become the middleware's own error
                // answer (a body failing before its first chunk is a 500 to any server).
                if !faulted && self.probe_counts().0 > before.0 {
                    self.inner_answer_passed(&response, &mut found);
                }
                // A 101 that takes the offer is judged by the facts of a 101; its handler runs
                // once the head passed (as `prepare` lets it through).
                let switching = response
                    .extensions()
                    .get::<Switching>()
                    .filter(|_| response.status() == StatusCode::SWITCHING_PROTOCOLS)
                    .cloned();
                let switch = match (&offered, switching) {
                    (Some((asked, acceptance)), Some(switching)) => {
                        let asked: Vec<&str> = asked.iter().map(String::as_str).collect();
                        found
                            .by_facts
                            .extend(facts::check_switching_head(response.headers(), &asked));
                        response.check(&method).is_ok().then(|| {
                            switching.confirm();
                            acceptance.take_handler()
                        })
                    }
                    _ => {
                        found
                            .by_facts
                            .extend(facts::check_head(response.status(), response.headers()));
                        None
                    }
                };
                if offered.is_some() {
                    found.judge(&[UPGRADE_TAKEN]);
                }
                let (status, headers, body) = response.into_parts();
                if method == Method::HEAD {
                    // Servers drop a HEAD answer's body unpolled (REQ-SRV-6).
                    found.drop_value("the body", body, "REQ-APP-5");
                } else {
                    self.read_body(body, (status, &headers), network, &mut found)
                        .await;
                }
                if let Some(Some(handler)) = switch {
                    self.run_handler(handler, &mut found).await;
                }
            }
            Ok(Err(error)) => {
                found.judge(&[NO_PANIC, NO_READ_AFTER_END]);
                found.notes.push((
                    ANSWERS,
                    format!("REQ-APP-4 (SHOULD): {label}: the app returned Err ({error}) where a response such as 404 or 405 was possible"),
                ));
            }
            Err(stop) => self.stopped(&mut found, "the app's future", stop, "REQ-APP-4"),
        }
        self.finish(found, before, Some(label))
    }

    async fn read_body(
        &self,
        mut body: <LintApp<&A> as App>::Body,
        (status, headers): (StatusCode, &HeaderMap),
        network: Network,
        found: &mut Found,
    ) {
        let mut produced = 0;
        let mut stalled = false;
        // REQ-BODY-4 judged here too: what the body announced before its first poll.
        let mut announced = body.content_length();
        // A file body hands its range to the driver, which reads it itself (REQ-FILE-1: the
        // lint checks the range against the body's length, which then judges it alone).
        if let Some(range) = Pin::new(&mut body).take_file() {
            produced = read_range(&range, found);
            announced = None;
        }
        loop {
            match network {
                Network::SlowReader => Sleep::new(SLOW_READER_PAUSE).await,
                Network::StalledWrite if produced > 0 && !stalled => {
                    stalled = true;
                    Sleep::new(STALL).await;
                }
                Network::GoneDuringDownload if produced > 0 => {
                    let what =
                        format!("the body after {produced} bytes, when the client went away");
                    found.drop_value(&what, body, "REQ-CONC-2");
                    found.judge(&[GONE_DOWNLOAD, NO_PANIC]);
                    return;
                }
                _ => {}
            }
            match next_chunk(&mut body, self.limit, None).await {
                Ok(Some(Ok(chunk))) => produced += chunk.len(),
                // A failing body is the app's way to abort a response (REQ-ERR-3).
                Ok(Some(Err(_))) => break,
                Ok(None) => {
                    let produced = produced as u64;
                    found
                        .by_facts
                        .extend(facts::check_body_end(status, headers, produced));
                    if let Some(announced) = announced.filter(|&n| n != produced) {
                        found.by_facts.push(Violation::new(
                            "REQ-BODY-4",
                            format!("content_length() announced {announced} bytes before the first poll, then the body yielded {produced}"),
                        ));
                    }
                    found.judge(ON_BODY_END);
                    match network {
                        Network::SlowReader => found.judge(&[SLOW_READER]),
                        Network::StalledWrite if stalled => found.judge(&[STALLED_WRITE]),
                        _ => {}
                    }
                    break;
                }
                Err(stop) => {
                    self.stopped(found, "the body", stop, "REQ-BODY-6");
                    break;
                }
            }
        }
        found.drop_value("the body", body, "REQ-APP-5");
    }

    /// Runs an upgrade handler on a connection the client closed at once: it must end, or at
    /// least not panic (REQ-APP-5).
    async fn run_handler(&self, handler: Handler, found: &mut Found) {
        let mut run = Box::pin(handler.run(Upgraded::new(driver::Closed)));
        match drive(run.as_mut(), self.limit, None).await {
            Ok(Ok(())) | Err(Stop::Stalled | Stop::Gated) => {}
            Ok(Err(error)) => found.panicked("the upgrade handler", &error.to_string()),
            Err(Stop::Panicked(message)) => found.panicked("the upgrade handler", &message),
        }
        found.drop_value("the upgrade handler", run, "REQ-APP-5");
    }

    /// REQ-BODY-6, where it can be seen: the request body is held back after its first chunk.
    async fn streams_lazily(&self) -> Found {
        let before = self.probe_counts();
        let gate = Arc::new(Gate::default());
        let request = post(Upload::new(32 * KIB, 16 * KIB, false).gated(Arc::clone(&gate)));
        let mut found = Found::default();
        let mut not_observable = None;
        let mut call = Box::pin(self.app.call(self.environ(request), StartResponse::new()));
        let answer = loop {
            let gated = gate.is_closed().then_some(&*gate);
            match drive(call.as_mut(), self.limit, gated).await {
                Err(Stop::Gated) => {
                    not_observable = Some("the app reads the whole request body before it answers");
                    gate.open();
                }
                Ok(answer) => break Some(answer),
                Err(stop) => {
                    self.stopped(&mut found, "the app's future", stop, "REQ-APP-4");
                    break None;
                }
            }
        };
        found.drop_value("the app's future", call, "REQ-APP-5");
        if let Some(Err(_)) = answer {
            not_observable = Some("the app answered Err");
        }
        if let Some(Ok(response)) = answer {
            let (_, _, body) = response.into_parts();
            if self.read_gated(body, &gate, &mut found).await {
                not_observable.get_or_insert(
                    "the body waited for the whole request body before its first chunk, which is allowed when its output depends on all of it",
                );
            }
        }
        gate.open();
        match not_observable {
            Some(why) => found.notes.push((
                LAZY,
                format!("REQ-BODY-6: the held-back upload could not show streaming: {why}"),
            )),
            None => found.judge(&[LAZY]),
        }
        self.finish(found, before, None)
    }

    /// REQ-MW-2: the probe's body is held back after its first chunk; the middleware's body
    /// must yield before the rest comes.
    async fn middleware_streams(&self, probe: &ProbeState) -> Found {
        let gate = Arc::new(Gate::default());
        *lock(&probe.gate) = Some(Arc::clone(&gate));
        let before = self.probe_counts();
        let served = before.0;
        let mut found = Found::default();
        let environ = self.environ(TestRequest::get("/"));
        let mut call = Box::pin(self.app.call(environ, StartResponse::new()));
        let answer = drive(call.as_mut(), self.limit, None).await;
        found.drop_value("the app's future", call, "REQ-APP-5");
        let not_observable = match answer {
            Ok(Ok(response)) if probe.calls.load(Ordering::SeqCst) == served => {
                found.drop_value("the answer", response, "REQ-APP-5");
                Some("the middleware answered GET / itself")
            }
            Ok(Ok(response)) => {
                let (_, _, body) = response.into_parts();
                if self.read_gated(body, &gate, &mut found).await {
                    found.violations.push(Violation::new(
                        "REQ-MW-2",
                        "the middleware's body waited for the inner body's second chunk before yielding the first; expected at least one yield per inner chunk",
                    ));
                }
                found.judge(&[MW_STREAMS]);
                None
            }
            Ok(Err(_)) => Some("the middleware answered Err"),
            Err(stop) => {
                self.stopped(&mut found, "the app's future", stop, "REQ-APP-4");
                None
            }
        };
        gate.open();
        *lock(&probe.gate) = None;
        if let Some(why) = not_observable {
            found
                .notes
                .push((MW_STREAMS, format!("REQ-MW-2: not observable: {why}")));
        }
        self.finish(found, before, None)
    }

    /// Reads `body` to its end while `gate` holds back what it depends on; whether it waited
    /// at the gate before yielding its first bytes.
    async fn read_gated(
        &self,
        mut body: <LintApp<&A> as App>::Body,
        gate: &Gate,
        found: &mut Found,
    ) -> bool {
        let mut waited = false;
        loop {
            let gated = gate.is_closed().then_some(gate);
            match next_chunk(&mut body, self.limit, gated).await {
                Ok(Some(Ok(chunk))) if !chunk.is_empty() => gate.open(),
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_)) | None) => break,
                Err(Stop::Gated) => {
                    waited = true;
                    gate.open();
                }
                Err(stop) => {
                    self.stopped(found, "the body", stop, "REQ-BODY-6");
                    break;
                }
            }
        }
        found.drop_value("the body", body, "REQ-APP-5");
        waited
    }

    /// The environ of `request`, marked for the probe in middleware mode.
    fn environ(&self, request: TestRequest) -> Environ {
        let mut environ = request.into_environ();
        // The driver takes file bodies' ranges and reads them itself (§14.9).
        let server = environ.server().clone().file_bodies(true);
        environ.set_connection(environ.connection().clone().server(server));
        if let Some(probe) = self.probe {
            environ.extensions_mut().insert(Mark);
            let sent = format!("{}{}", environ.script_name(), environ.path_info());
            *lock(&probe.sent) = Some(sent);
        }
        environ
    }

    /// In middleware mode, with the probe called: whether the middleware's answer kept the
    /// probe's status, field lines (REQ-MW-1 with REQ-SRV-2; `Content-Length` is REQ-MW-3's)
    /// and response extensions (REQ-EXT-2).
    fn inner_answer_passed<B: Body>(&self, response: &rwgi::Response<B>, found: &mut Found) {
        if response.extensions().get::<InnerMark>().is_none() {
            found.violations.push(Violation::new(
                "REQ-EXT-2",
                "a typed value in the inner app's response extensions did not reach the server through the middleware (response extensions travel outward)",
            ));
        }
        let lines = |name: &str| -> Vec<String> {
            response
                .headers()
                .get_all(name)
                .iter()
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
                .collect()
        };
        let expected = |name: &str| -> Vec<String> {
            PROBE_FIELDS
                .iter()
                .filter(|(n, _)| *n == name)
                .map(|(_, value)| (*value).to_owned())
                .collect()
        };
        let mut changed: Vec<String> = ["content-type", "x-probe"]
            .into_iter()
            .filter(|name| lines(name) != expected(name))
            .map(|name| format!("{name} {:?} (seen {:?})", expected(name), lines(name)))
            .collect();
        if response.status() != StatusCode::OK {
            let seen = response.status().as_u16();
            changed.insert(0, format!("status 200 (seen {seen})"));
        }
        if !changed.is_empty() {
            found.violations.push(Violation::new(
                "REQ-SRV-2",
                format!(
                    "the middleware's answer changed the inner app's head: {} (REQ-MW-1: toward its server a middleware passes the inner status and field lines on)",
                    changed.join(", ")
                ),
            ));
        }
        found.judge(&[MW_HEAD]);
    }

    /// How many requests reached the probe so far, and how many bodies it made.
    fn probe_counts(&self) -> (usize, usize) {
        self.probe.map_or((0, 0), |probe| {
            (
                probe.calls.load(Ordering::SeqCst),
                probe.bodies.load(Ordering::SeqCst),
            )
        })
    }

    fn stopped(&self, found: &mut Found, what: &str, stop: Stop, stall: &'static str) {
        match stop {
            Stop::Panicked(message) => found.panicked(what, &message),
            Stop::Stalled | Stop::Gated => found.violations.push(Violation::new(
                stall,
                format!(
                    "{what} was pending and not woken for {:?}; expected it to make progress",
                    self.limit
                ),
            )),
        }
    }

    /// Adds what the lint saw during the exchange and, in middleware mode, what the probe saw
    /// and which middleware checks the exchange let the suite judge; `before` is
    /// [`probe_counts`](Self::probe_counts) at its start, and `label` names the request when a
    /// request the middleware answers itself deserves a note.
    fn finish(&self, mut found: Found, before: (usize, usize), label: Option<&str>) -> Found {
        let lint: Vec<Violation> = lock(&self.seen).drain(..).collect();
        for violation in std::mem::take(&mut found.by_facts) {
            if !lint
                .iter()
                .any(|seen| seen.requirement() == violation.requirement())
            {
                found.violations.push(violation);
            }
        }
        found.violations.extend(lint);
        let Some(probe) = self.probe else {
            return found;
        };
        for violation in lock(&probe.seen).drain(..) {
            if violation.requirement() == "REQ-CAP-2" {
                // The probe's lint saw the environ's extensions lost; the suite's own mark
                // (`unmarked`, below) reports it, as REQ-EXT-2.
                continue;
            }
            found.violations.push(Violation::new(
                "REQ-MW-1",
                format!("toward the app it wraps, the middleware broke {violation}"),
            ));
        }
        if probe.unmarked.swap(0, Ordering::SeqCst) > 0 {
            found.violations.push(Violation::new(
                "REQ-EXT-2",
                "a typed value in the environ's extensions did not reach the app behind the middleware (REQ-MW-5: a middleware passes the extensions on)",
            ));
        }
        let alive = probe.alive.load(Ordering::SeqCst);
        if alive > probe.leaked.swap(alive, Ordering::SeqCst) {
            found.violations.push(Violation::new(
                "REQ-MW-4",
                "the inner app's body was still alive after the middleware's answer was dropped",
            ));
        }
        for moved in lock(&probe.moved).drain(..) {
            found.violations.push(Violation::new(
                "REQ-PATH-2",
                format!("{moved} (REQ-MW-5: a middleware changes the path only with Environ::mount, which moves a prefix into script_name)"),
            ));
        }
        let (calls, bodies) = self.probe_counts();
        if calls > before.0 {
            found.judge(&[MW_SERVES, MW_EXTENSIONS, MW_PATH]);
            if found.judged.contains(&LENGTH_MATCHES) {
                found.judge(&[MW_LENGTH]);
            }
        } else if let Some(label) = label {
            found.notes.push((
                MW_SERVES,
                format!("REQ-MW-1: the middleware answered {label} itself"),
            ));
        }
        if bodies > before.1 {
            // The answer and every body are dropped by now: the drop check saw its case.
            found.judge(&[MW_DROPS]);
        }
        found
    }
}

#[derive(Debug, Default)]
struct Verdict {
    failures: Vec<String>,
    note: Option<String>,
    /// How many exchanges showed what the check judges.
    judged: usize,
}

/// The verdicts so far, one per entry of [`CHECKS`].
struct Tally {
    verdicts: Vec<Verdict>,
}

impl Tally {
    /// Files what one exchange showed: each violation under `fault`, else under the first of
    /// `owners`, when that check lists its requirement, else under the rule check of its
    /// requirement.
    fn settle(&mut self, label: &str, fault: Option<Check>, owners: &[Check], found: Found) {
        for violation in found.violations {
            let requirement = violation.requirement();
            let check = fault
                .iter()
                .chain(owners)
                .copied()
                .filter(|check| check.requirements.contains(&requirement))
                .chain(
                    CHECKS
                        .iter()
                        .copied()
                        .filter(|check| check.requirements == [requirement]),
                )
                .next()
                // Only the lint's server-side rules have no check here, and the driver is the
                // server: one of them firing is a bug in this suite.
                .unwrap_or_else(|| panic!("app suite bug: its driver broke {violation} ({label})"));
            // Behind a middleware, a wrong length is the middleware's: name its rule first.
            let failure = if check == MW_LENGTH && fault.is_none() {
                format!("REQ-MW-3: the middleware changed the body without fixing Content-Length: {violation} (request: {label})")
            } else {
                format!("{violation} (request: {label})")
            };
            self.verdict(check).failures.push(failure);
        }
        let mut judged = found.judged;
        // The upload failed under the app, which answered (reading the body is up to it).
        if fault == Some(GONE_UPLOAD) && judged.contains(&NO_PANIC) {
            judged.push(GONE_UPLOAD);
        }
        judged.sort_unstable_by_key(|check| check.name);
        judged.dedup();
        for check in judged {
            self.verdict(check).judged += 1;
        }
        // Under a fault, an `Err` is the expected answer, not a broken REQ-APP-4.
        for (check, note) in found.notes.into_iter().filter(|_| fault.is_none()) {
            let verdict = self.verdict(check);
            if check == ANSWERS {
                verdict.judged += 1;
                verdict.failures.push(note);
            } else {
                verdict.note.get_or_insert(note);
            }
        }
    }

    fn verdict(&mut self, check: Check) -> &mut Verdict {
        let index = CHECKS
            .iter()
            .position(|known| known.name == check.name)
            .unwrap_or_else(|| panic!("app suite bug: {} is not in CHECKS", check.name));
        &mut self.verdicts[index]
    }

    /// The report of the checks in `reported`, a part of [`CHECKS`]: a check with a failure
    /// fails, one that judged no exchange is not observed (never a pass), the rest pass with
    /// their notes.
    fn into_report(self, reported: &[Check], probe: Option<&ProbeState>) -> Report {
        let mut report = Report::default();
        let never_called = probe.is_some_and(|probe| probe.calls.load(Ordering::SeqCst) == 0);
        let verdicts = CHECKS.iter().zip(self.verdicts);
        for (check, verdict) in verdicts.filter(|(check, _)| reported.contains(check)) {
            let Verdict {
                failures,
                note,
                judged,
            } = verdict;
            let mut failures = failures.into_iter();
            let (outcome, detail) = match (failures.next(), judged) {
                (Some(first), _) if failures.len() == 0 => (Outcome::Fail, first),
                (Some(first), _) => (
                    Outcome::Fail,
                    format!("{first}; and {} more", failures.len()),
                ),
                (None, 0) => {
                    let why = if never_called && MIDDLEWARE_CHECKS.contains(check) {
                        "the middleware never called the app it wraps".to_owned()
                    } else {
                        "no request got an answer this check could judge (answered Err, stalled or panicked)".to_owned()
                    };
                    let why = match note {
                        Some(note) => format!("{why}; {note}"),
                        None => why,
                    };
                    (Outcome::NotObserved, format!("observed nothing: {why}"))
                }
                (None, _) => (
                    Outcome::Pass,
                    note.map_or_else(String::new, |note| format!("note: {note}")),
                ),
            };
            report.record(*check, outcome, judged, detail);
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::CHECKS;

    /// The rows of the table in the documentation of [`CHECKS`]: name and requirements.
    fn documented() -> Vec<(String, Vec<String>)> {
        include_str!("app_suite.rs")
            .lines()
            .filter_map(|line| line.strip_prefix("/// | `"))
            .filter_map(|row| {
                let (name, rest) = row.split_once("` | ")?;
                let (ids, _) = rest.split_once(" | ")?;
                Some((
                    name.to_owned(),
                    ids.split(", ").map(str::to_owned).collect(),
                ))
            })
            .collect()
    }

    #[test]
    fn the_documented_table_lists_every_check_with_its_requirements() {
        let expected: Vec<(String, Vec<String>)> = CHECKS
            .iter()
            .map(|check| {
                let ids = check.requirements.iter().map(|id| (*id).to_owned());
                (check.name.to_owned(), ids.collect())
            })
            .collect();
        let rows: Vec<String> = expected
            .iter()
            .map(|(name, ids)| format!("/// | `{name}` | {} | … |", ids.join(", ")))
            .collect();
        assert_eq!(
            documented(),
            expected,
            "the table in the docs of CHECKS must list, in order:\n{}",
            rows.join("\n")
        );
    }
}
