//! Checks of the life of requests and connections: bodies and futures dropped, keep-alive and
//! pipelining, failing and panicking apps, and concurrency.

use http::{HeaderMap, StatusCode};

use super::client::Response;
use super::probe::{self, Call, Gate, Script, Step, SECRET};
use super::responses::expect_abort;
use super::{fail, get, request, Checked, Suite, IO_TIMEOUT};

/// Waits for the first call to meet `done`; `Err` with the failure of `id` when it does not.
fn settle(
    suite: &Suite<'_>,
    id: &str,
    expected: &str,
    seen: &str,
    done: impl Fn(&Call) -> bool,
) -> Checked {
    suite
        .probe
        .wait(IO_TIMEOUT, |calls| calls.first().is_some_and(&done))
        .map(drop)
        .map_err(|calls| {
            let seen = if calls.is_empty() {
                "no call of the app"
            } else {
                seen
            };
            fail(
                id,
                format!("expected {expected}, seen {seen} after {IO_TIMEOUT:?}"),
            )
        })
}

/// The body is dropped once the response is complete, once it failed, and when it is never
/// sent (`HEAD`), and it is not polled after it ended.
pub(super) fn body_dropped_after_completion(suite: &mut Suite<'_>) -> Checked {
    const ID: &str = "REQ-SRV-8";
    let cases = [
        (
            "a complete response",
            "GET",
            Script::new([Step::data(b"done")]),
        ),
        (
            // A server may stop polling once the body says it is at its end; it must still
            // drop it.
            "a complete response of known length",
            "GET",
            Script::new([Step::data(b"done")]).with_length(4),
        ),
        (
            "a body that failed",
            "GET",
            Script::new([Step::data(b"x"), Step::Fail]),
        ),
        (
            "a HEAD answer",
            "HEAD",
            Script::new([Step::data(b"x")]).with_length(1),
        ),
    ];
    for (case, method, body) in cases {
        suite
            .probe
            .set(probe::reply(StatusCode::OK, HeaderMap::new(), body));
        let mut connection = suite.connect().map_err(|e| fail(ID, e))?;
        connection
            .send(&request(method, "/done", "", b""))
            .map_err(|e| fail(ID, format!("the request could not be sent: {e}")))?;
        // Whatever the answer (a failed body aborts it), the connection stays open meanwhile:
        // the body must go with the response, not with the connection.
        let _ = connection.response(method);
        let expected = format!("the body dropped after {case}");
        settle(suite, ID, &expected, "it still alive", |call| {
            call.body_dropped
        })?;
        if suite.probe.calls()[0].polled_after_end {
            return Err(fail(
                ID,
                format!("expected no poll of the body after it ended ({case}), seen one"),
            ));
        }
    }
    Ok(())
}

/// The body is dropped when the client goes away in the middle of it: while it streams, and
/// while it waits for its next chunk.
pub(super) fn body_dropped_on_disconnect(suite: &mut Suite<'_>) -> Checked {
    const ID: &str = "REQ-SRV-8";
    let gate = Gate::default();
    let _opener = gate.opener();
    let cases = [
        ("streams without end", Script::new([Step::Endless])),
        (
            "waits for its next chunk",
            Script::new([Step::data(b"x"), Step::Wait(gate.clone())]),
        ),
    ];
    for (case, body) in cases {
        suite
            .probe
            .set(probe::reply(StatusCode::OK, HeaderMap::new(), body));
        let mut connection = suite.connect().map_err(|e| fail(ID, e))?;
        connection
            .send(&get("/endless"))
            .map_err(|e| fail(ID, format!("the request could not be sent: {e}")))?;
        connection
            .head()
            .and_then(|_| connection.next_bytes(1))
            .map_err(|e| {
                fail(
                    ID,
                    format!("expected the start of a body that {case}, seen {e}"),
                )
            })?;
        drop(connection);
        let expected = format!("the body dropped once the client went away while the body {case}");
        settle(suite, ID, &expected, "it still alive", |call| {
            call.body_dropped
        })?;
    }
    Ok(())
}

/// The app's future is dropped when the client goes away before the app answered.
pub(super) fn app_dropped_on_disconnect(suite: &mut Suite<'_>) -> Checked {
    const ID: &str = "REQ-CONC-2";
    let gate = Gate::default();
    let _opener = gate.opener();
    suite.probe.set(probe::echo(Some(&gate)));
    let mut connection = suite.connect().map_err(|e| fail(ID, e))?;
    connection
        .send(&get("/waiting"))
        .map_err(|e| fail(ID, format!("the request could not be sent: {e}")))?;
    settle(suite, ID, "the app called", "no call", |_| true)?;
    drop(connection);
    settle(
        suite,
        ID,
        "the app's future dropped once the client went away",
        "it still pending",
        |call| call.abandoned,
    )
}

fn echoed(response: &Result<Response, super::client::WireError>, body: &[u8]) -> bool {
    matches!(response, Ok(r) if r.status == 200 && r.is_complete() && r.body == body)
}

fn describe(response: &Result<Response, super::client::WireError>) -> String {
    match response {
        Ok(response) => response.describe(),
        Err(error) => error.to_string(),
    }
}

/// A connection serves one request after another, and closes when the client asks.
pub(super) fn keep_alive(suite: &mut Suite<'_>) -> Checked {
    const ID: &str = "REQ-SRV-3";
    suite.probe.set(probe::echo(None));
    let mut connection = suite.connect().map_err(|e| fail(ID, e))?;
    for path in ["/one", "/two"] {
        connection
            .send(&get(path))
            .map_err(|e| fail(ID, format!("expected the connection kept alive, seen {e}")))?;
        let response = connection.response("GET");
        let body = format!("GET {path} ");
        if !echoed(&response, body.as_bytes()) {
            return Err(fail(
                ID,
                format!(
                    "expected the answer {body:?} to a request on a kept-alive connection, seen \
                     {}",
                    describe(&response)
                ),
            ));
        }
    }
    let mut connection = suite.connect().map_err(|e| fail(ID, e))?;
    connection
        .send(&request("GET", "/close", "Connection: close\r\n", b""))
        .map_err(|e| fail(ID, format!("the request could not be sent: {e}")))?;
    let response = connection.response("GET");
    if !echoed(&response, b"GET /close ") {
        return Err(fail(
            ID,
            format!(
                "expected the answer to a request with Connection: close, seen {}",
                describe(&response)
            ),
        ));
    }
    connection.closed().map_err(|seen| {
        fail(
            ID,
            format!(
                "expected the connection closed after answering a request with Connection: \
                 close, seen {seen}"
            ),
        )
    })
}

/// Requests sent together on one connection are answered in order, one call each.
pub(super) fn pipelining(suite: &mut Suite<'_>) -> Checked {
    const ID: &str = "REQ-SRV-3";
    suite.probe.set(probe::echo(None));
    let mut bytes = get("/p1");
    bytes.extend(request("POST", "/p2", "Content-Length: 4\r\n", b"data"));
    bytes.extend(get("/p3"));
    let mut connection = suite.connect().map_err(|e| fail(ID, e))?;
    connection
        .send(&bytes)
        .map_err(|e| fail(ID, format!("the requests could not be sent: {e}")))?;
    for (method, body) in [
        ("GET", &b"GET /p1 "[..]),
        ("POST", b"POST /p2 data"),
        ("GET", b"GET /p3 "),
    ] {
        let response = connection.response(method);
        if !echoed(&response, body) {
            return Err(fail(
                ID,
                format!(
                    "expected the pipelined answers GET /p1, POST /p2 data, GET /p3 in order; \
                     where {:?} was due, seen {}",
                    String::from_utf8_lossy(body),
                    describe(&response)
                ),
            ));
        }
    }
    let calls = suite.probe.calls().len();
    if calls != 3 {
        return Err(fail(
            "REQ-APP-3",
            format!("expected one call of the app per request, 3 in all, seen {calls}"),
        ));
    }
    Ok(())
}

/// Requires that the answer to `case` carries none of the details of the error behind it.
fn no_details(case: &str, response: &Response) -> Checked {
    let secret = SECRET.as_bytes();
    let contains = |bytes: &[u8]| bytes.windows(secret.len()).any(|w| w == secret);
    let leaked =
        contains(&response.body) || response.headers.iter().any(|(_, value)| contains(value));
    if leaked {
        return Err(fail(
            "REQ-ERR-5",
            format!(
                "expected no error details in the answer to {case}, seen the error's message in \
                 {}",
                response.describe()
            ),
        ));
    }
    Ok(())
}

/// Requires a `500` without details for `case`.
fn internal_error(suite: &mut Suite<'_>, id: &str, case: &str, app: probe::Behavior) -> Checked {
    suite.probe.set(app);
    let (response, _) = suite
        .exchange(&get("/error"))
        .map_err(|e| fail(id, format!("expected 500 for {case}, seen {e}")))?;
    if response.status != 500 || !response.is_complete() {
        return Err(fail(
            id,
            format!("expected 500 for {case}, seen {}", response.describe()),
        ));
    }
    no_details(case, &response)
}

/// Requires that the server still answers a plain request.
fn still_serving(suite: &mut Suite<'_>, id: &str, after: &str) -> Checked {
    suite.probe.set(probe::echo(None));
    let response = suite.exchange(&get("/after")).map(|(response, _)| response);
    match response {
        Ok(response) if response.status == 200 => Ok(()),
        other => Err(fail(
            id,
            format!(
                "expected the server to go on serving after {after}, seen {}",
                match other {
                    Ok(response) => response.describe(),
                    Err(error) => error,
                }
            ),
        )),
    }
}

/// An app that returns an error gets a `500` without details, and the server goes on.
pub(super) fn app_error(suite: &mut Suite<'_>) -> Checked {
    const ID: &str = "REQ-ERR-2";
    internal_error(
        suite,
        ID,
        "an app that returns an error",
        probe::failing(false),
    )?;
    still_serving(suite, ID, "an app error")
}

/// An app or body that panics is an error like any other, and the server goes on serving.
pub(super) fn app_panic(suite: &mut Suite<'_>) -> Checked {
    const ID: &str = "REQ-ERR-4";
    internal_error(suite, ID, "an app that panics", probe::failing(true))?;
    let body = Script::new([Step::Panic]);
    let app = probe::reply(StatusCode::OK, HeaderMap::new(), body);
    internal_error(suite, ID, "a body that panics before its first chunk", app)?;
    let body = Script::new([Step::data(b"partial"), Step::Panic]);
    suite
        .probe
        .set(probe::reply(StatusCode::OK, HeaderMap::new(), body));
    let expected = "the connection aborted when the body panics after its first chunk";
    expect_abort(suite, ID, expected)?;
    still_serving(suite, ID, "panics")
}

/// When two calls run at once on different threads, the environ says `multithread`; and
/// every call gets the same `ServerInfo`. The first call is held open while the second request
/// arrives, so a server that can overlap calls does; one that serializes them shows that too.
pub(super) fn multithread_consistent(suite: &mut Suite<'_>) -> Checked {
    const ID: &str = "REQ-CONC-1";
    let gate = Gate::default();
    let opener = gate.opener();
    suite.probe.set(probe::echo(Some(&gate)));
    let mut connections = Vec::new();
    let mut overlapped = true;
    for (n, path) in ["/one", "/two"].into_iter().enumerate() {
        let mut connection = suite.connect().map_err(|e| fail(ID, e))?;
        connection
            .send(&get(path))
            .map_err(|e| fail(ID, format!("the request could not be sent: {e}")))?;
        connections.push((path, connection));
        // The first call must be in the app before the second request goes out; the second
        // gets a bounded wait, since a server may serialize calls.
        let limit = if n == 0 { IO_TIMEOUT } else { IO_TIMEOUT / 2 };
        let held = suite.probe.wait(limit, |calls| {
            calls.iter().filter(|call| call.in_app()).count() > n
        });
        if held.is_err() {
            if n == 0 {
                return Err(fail(
                    ID,
                    format!("expected the app called for {path}, seen no call in {limit:?}"),
                ));
            }
            overlapped = false;
        }
    }
    let at_once: Vec<_> = suite
        .probe
        .calls()
        .into_iter()
        .filter(|call| call.in_app())
        .collect();
    drop(opener);
    for (path, connection) in &mut connections {
        let response = connection.response("GET");
        if !echoed(&response, format!("GET {path} ").as_bytes()) {
            return Err(fail(
                ID,
                format!(
                    "expected both requests answered, seen {} for {path}",
                    describe(&response)
                ),
            ));
        }
    }
    let calls = suite.probe.calls();
    let [first, second, ..] = &calls[..] else {
        return Err(fail(
            "REQ-APP-3",
            format!(
                "expected one call of the app per request, 2 in all, seen {}",
                calls.len()
            ),
        ));
    };
    if first.seen.server != second.seen.server {
        return Err(fail(
            "REQ-ENV-9",
            format!(
                "expected the same ServerInfo in every call, seen {:?} then {:?}",
                first.seen.server, second.seen.server
            ),
        ));
    }
    // A server that ran the second call only after the first ended judged itself serial:
    // any multithread value is true of it. Calls in two processes say nothing of threads.
    let on_two_threads = overlapped
        && at_once.len() >= 2
        && at_once[0].place.process == at_once[1].place.process
        && at_once[0].place.thread != at_once[1].place.thread;
    if on_two_threads && !at_once.iter().all(|call| call.seen.server.multithread) {
        return Err(fail(
            ID,
            "expected ServerInfo::multithread to be true, since two calls ran at once on \
             different threads; seen false",
        ));
    }
    multiprocess_told(suite)
}

/// How many more requests [`multiprocess_told`] sends, on new connections, to meet the
/// server's other processes.
const MORE_PROCESSES: usize = 64;

/// When the app was called in more than one process during the run, every process must have
/// told it `multiprocess` (REQ-ENV-9). A few more requests go out first, so that a server with
/// several processes shows them even when this check runs alone.
fn multiprocess_told(suite: &mut Suite<'_>) -> Checked {
    const ID: &str = "REQ-ENV-9";
    suite.probe.set(probe::echo(None));
    for _ in 0..MORE_PROCESSES {
        if suite.probe.processes().len() > 1 {
            break;
        }
        suite
            .exchange(&get("/process"))
            .map_err(|e| fail(ID, format!("expected an answer, seen {e}")))?;
    }
    let processes = suite.probe.processes();
    if processes.len() < 2 {
        return Ok(());
    }
    if let Some((process, _)) = processes.iter().find(|(_, facts)| !facts.multiprocess) {
        return Err(fail(
            ID,
            format!(
                "expected ServerInfo::multiprocess to be true, since the app was called in {} \
                 processes ({}); seen false in process {process}",
                processes.len(),
                processes
                    .keys()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    Ok(())
}
