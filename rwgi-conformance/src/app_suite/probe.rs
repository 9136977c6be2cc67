//! The app the middleware suite wraps: it answers every request with a known body and records
//! how the middleware in front of it behaved as its server.

use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use http::header::CONTENT_LENGTH;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use super::driver::{lock, Gate};
use rwgi::body::Body;
use rwgi::lint::{Lint, LintApp, LintBody};
use rwgi::middleware::Middleware;
use rwgi::violation::Violation;
use rwgi::{App, Environ, Error, Response, StartResponse};

/// The probe's answer, in three chunks.
const PARTS: [&str; 3] = ["rwgi ", "probe ", "body\n"];

/// A typed value the suite puts in every environ; the probe looks for it behind the middleware
/// (REQ-EXT-2).
#[derive(Clone, Copy, Debug)]
pub(super) struct Mark;

/// A typed value the probe puts in its response's extensions; the suite looks for it in the
/// middleware's answer (REQ-EXT-2, outward).
#[derive(Clone, Copy, Debug)]
pub(super) struct InnerMark;

/// The field lines the probe answers with besides `Content-Length`, which a middleware must
/// pass on (REQ-MW-1 with REQ-SRV-2); one name twice, so a join or a drop shows.
pub(super) const PROBE_FIELDS: [(&str, &str); 3] = [
    ("content-type", "text/plain"),
    ("x-probe", "one"),
    ("x-probe", "two"),
];

/// What the probe saw.
#[derive(Default)]
pub(super) struct ProbeState {
    /// `script_name + path_info` of the request the suite is sending through the middleware.
    pub(super) sent: Mutex<Option<String>>,
    /// The paths that reached the probe other than as sent, described.
    pub(super) moved: Mutex<Vec<String>>,
    /// Calls that reached the probe.
    pub(super) calls: AtomicUsize,
    /// Calls whose environ had lost the suite's [`Mark`].
    pub(super) unmarked: AtomicUsize,
    /// Probe bodies made.
    pub(super) bodies: AtomicUsize,
    /// Probe bodies not yet dropped.
    pub(super) alive: AtomicUsize,
    /// Of those, how many the suite already reported as leaked.
    pub(super) leaked: AtomicUsize,
    /// When set, the probe's bodies wait here after their first chunk.
    pub(super) gate: Mutex<Option<Arc<Gate>>>,
    /// What the lint in front of the probe saw the middleware do as a server.
    pub(super) seen: Mutex<Vec<Violation>>,
}

/// The app that [`run_middleware`](super::run_middleware) wraps in the middleware under test.
///
/// It reads the whole request body, then answers `200 OK` with `Content-Type`, two `X-Probe`
/// lines, a `Content-Length`, a typed value in its response's extensions, and a body of three
/// chunks. Behind a lint of its own, it checks the middleware in front of it as a server
/// (REQ-MW-1), and it records whether the environ's extensions reached it (REQ-EXT-2), whether
/// the path reached it as sent (REQ-MW-5, REQ-PATH-2) and whether its bodies were dropped
/// (REQ-MW-4).
///
/// ```
/// // The suite builds the probe itself; a middleware author meets it as the `A` of
/// // `Middleware<Probe>` when running the suite:
/// use rwgi_conformance::app_suite::{run_middleware, Probe};
/// use rwgi::middleware::{Identity, Middleware};
///
/// fn wraps_the_probe<M: Middleware<Probe>>(_: &M) {}
/// wraps_the_probe(&Identity);
/// let report = rwgi_conformance::test_client::block_on(run_middleware(&Identity));
/// report.assert_ok();
/// ```
pub struct Probe {
    app: LintApp<ProbeApp>,
}

impl Probe {
    pub(super) fn new(state: &Arc<ProbeState>) -> Self {
        let log = Arc::clone(state);
        let lint = Lint::with_hook(move |violation: &Violation| {
            lock(&log.seen).push(violation.clone());
        });
        Probe {
            app: lint.wrap(ProbeApp {
                state: Arc::clone(state),
            }),
        }
    }
}

impl fmt::Debug for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Probe").finish_non_exhaustive()
    }
}

impl App for Probe {
    type Body = LintBody<ProbeBody>;

    fn call(
        &self,
        environ: Environ,
        start: StartResponse,
    ) -> impl std::future::Future<Output = Result<Response<Self::Body>, Error>> + Send {
        self.app.call(environ, start)
    }
}

struct ProbeApp {
    state: Arc<ProbeState>,
}

impl fmt::Debug for ProbeApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProbeApp").finish_non_exhaustive()
    }
}

impl App for ProbeApp {
    type Body = ProbeBody;

    async fn call(
        &self,
        mut environ: Environ,
        start: StartResponse,
    ) -> Result<Response<ProbeBody>, Error> {
        self.state.calls.fetch_add(1, Ordering::SeqCst);
        if environ.extensions().get::<Mark>().is_none() {
            self.state.unmarked.fetch_add(1, Ordering::SeqCst);
        }
        if let Some(sent) = lock(&self.state.sent).as_deref() {
            let (script_name, path_info) = (environ.script_name(), environ.path_info());
            if format!("{script_name}{path_info}") != sent {
                lock(&self.state.moved).push(format!(
                    "the app behind the middleware got script_name {script_name:?} and path_info \
                     {path_info:?} for the path {sent:?}"
                ));
            }
        }
        while let Some(chunk) = environ.input_mut().chunk().await {
            chunk?;
        }
        let body = ProbeBody::new(&self.state);
        let mut headers = HeaderMap::new();
        for (name, value) in PROBE_FIELDS {
            headers.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.length()));
        let mut response = start.start(StatusCode::OK, headers).body(body);
        response.extensions_mut().insert(InnerMark);
        Ok(response)
    }
}

/// The probe's response body: three chunks, counted alive until dropped.
///
/// ```
/// use rwgi_conformance::app_suite::{Probe, ProbeBody};
/// use rwgi::lint::LintBody;
/// use rwgi::App;
///
/// // The body type a middleware sees from the probe it wraps (linted on its way out).
/// fn body_type<A: App<Body = LintBody<ProbeBody>>>(_: &A) {}
/// # fn check(probe: &Probe) { body_type(probe) }
/// ```
pub struct ProbeBody {
    state: Arc<ProbeState>,
    next: usize,
    gate: Option<Arc<Gate>>,
}

impl ProbeBody {
    fn new(state: &Arc<ProbeState>) -> Self {
        state.bodies.fetch_add(1, Ordering::SeqCst);
        state.alive.fetch_add(1, Ordering::SeqCst);
        ProbeBody {
            state: Arc::clone(state),
            next: 0,
            gate: lock(&state.gate).clone(),
        }
    }

    fn length(&self) -> usize {
        PARTS[self.next..].iter().map(|part| part.len()).sum()
    }
}

impl fmt::Debug for ProbeBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProbeBody")
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl Stream for ProbeBody {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.next > 0 && self.gate.as_ref().is_some_and(|gate| !gate.pass(cx)) {
            return Poll::Pending;
        }
        let Some(part) = PARTS.get(self.next) else {
            return Poll::Ready(None);
        };
        self.next += 1;
        Poll::Ready(Some(Ok(Bytes::from_static(part.as_bytes()))))
    }
}

impl Body for ProbeBody {
    fn content_length(&self) -> Option<u64> {
        Some(self.length() as u64)
    }
}

impl Drop for ProbeBody {
    fn drop(&mut self) {
        self.state.alive.fetch_sub(1, Ordering::SeqCst);
    }
}
