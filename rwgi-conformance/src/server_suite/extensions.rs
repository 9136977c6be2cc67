//! Checks of the extensions a server may offer (spec §14.3 to §14.8): lifespan, response
//! outcome, disconnect notification, interim responses and flushing the head, trailers. Each
//! check is skipped, with the reason [`NOT_OFFERED`] gives, when the server does not offer its
//! extension: absent means unsupported, and the spec's fallback applies (REQ-CAP-1). A server
//! that offers one is held to it. The checks that look at a handle the server offered need the
//! app in the suite's process, and are skipped, saying so, for a server that runs it in others.

use std::time::{Duration, Instant};

use http::{HeaderMap, StatusCode};

use rwgi::outcome::{Ending, Outcome};

use super::client::Response;
use super::probe::{self, Call, Gate, Offered, Script, Step};
use super::{fail, get, request, runs_elsewhere, Checked, Problem, Suite, IO_TIMEOUT};
use crate::server_suite::NOT_OFFERED;

/// How long the check watches for a callback run a second time, once the response is over.
const SECOND_RUN: Duration = Duration::from_millis(200);

/// The response outcome (spec §14.4): for each way a response ends, the callback registered
/// on the environ's `ResponseFinished` runs exactly once (REQ-OUTCOME-1), told how it ended
/// (REQ-OUTCOME-2).
pub(super) fn response_outcome(suite: &mut Suite<'_>) -> Checked {
    let cases = [
        (
            "a complete response",
            Script::new([Step::data(b"hello")]).with_length(5),
            Ending::Completed,
            Some(5),
        ),
        (
            "a client gone in the middle of the body",
            Script::new([Step::Endless]),
            Ending::ClientGone,
            None,
        ),
        (
            "a body that failed after its first chunk",
            Script::new([Step::data(b"first"), Step::Fail]),
            Ending::Failed,
            Some(5),
        ),
    ];
    for (case, body, ending, bytes) in cases {
        suite
            .probe
            .set(probe::reply(StatusCode::OK, HeaderMap::new(), body));
        let mut connection = suite.connect().map_err(|e| fail("REQ-OUTCOME-1", e))?;
        connection.send(&get("/outcome")).map_err(|e| {
            fail(
                "REQ-OUTCOME-1",
                format!("the request could not be sent: {e}"),
            )
        })?;
        if ending == Ending::ClientGone {
            // The head and a first byte, then the client leaves.
            let _ = connection.head().and_then(|_| connection.next_bytes(1));
            drop(connection);
        } else {
            // Whatever the answer (a failed body aborts it), read it to its end.
            let _ = connection.response("GET");
        }
        let called = suite.probe.wait(IO_TIMEOUT, |calls| !calls.is_empty());
        let Some(call) = called.ok().and_then(|calls| calls.into_iter().next()) else {
            return Err(fail(
                "REQ-OUTCOME-1",
                format!("{case}: the app was not called"),
            ));
        };
        if call.outcomes.is_none() {
            return Err(Problem::Skip(format!(
                "{NOT_OFFERED}the response outcome (`ResponseFinished`)"
            )));
        }
        let ran = |count: usize| {
            move |calls: &[probe::Call]| {
                calls
                    .first()
                    .and_then(|call| call.outcomes.as_ref())
                    .is_some_and(|outcomes| outcomes.len() >= count)
            }
        };
        let outcomes = match suite.probe.wait(IO_TIMEOUT, ran(1)) {
            Ok(calls) => calls[0].outcomes.clone().unwrap_or_default(),
            Err(_) => {
                return Err(fail(
                    "REQ-OUTCOME-1",
                    format!(
                        "after {case}, expected the outcome callback to run once, seen it not \
                         run within {IO_TIMEOUT:?}"
                    ),
                ))
            }
        };
        if suite.probe.wait(SECOND_RUN, ran(2)).is_ok() {
            return Err(fail(
                "REQ-OUTCOME-1",
                format!(
                    "after {case}, expected the outcome callback to run once, seen it run twice"
                ),
            ));
        }
        let seen = &outcomes[0];
        let expected = probe::OutcomeFacts::of(&Outcome::new(
            ending,
            Some(StatusCode::OK),
            bytes.unwrap_or(seen.bytes_sent),
        ));
        if *seen != expected {
            return Err(fail(
                "REQ-OUTCOME-2",
                format!("after {case}, expected the outcome {expected}, seen {seen}"),
            ));
        }
    }
    Ok(())
}

/// The lifespan (spec §14.3): every request carries the state of the startup its process ran
/// (REQ-LIFE-2), and a process runs one startup, not one per connection (REQ-LIFE-1).
pub(super) fn lifespan_state(suite: &mut Suite<'_>) -> Checked {
    suite.probe.set(probe::record());
    // Two requests on one connection, one on another.
    for requests in [2, 1] {
        let mut connection = suite.connect().map_err(|e| fail("REQ-LIFE-2", e))?;
        for _ in 0..requests {
            connection
                .send(&get("/lifespan"))
                .map_err(|e| fail("REQ-LIFE-2", format!("the request could not be sent: {e}")))?;
            connection
                .response("GET")
                .map_err(|e| fail("REQ-LIFE-2", format!("no answer to a request: {e}")))?;
        }
    }
    let calls = suite.probe.calls();
    if calls.iter().all(|call| call.lifespan.is_none()) {
        return Err(Problem::Skip(format!(
            "{NOT_OFFERED}the lifespan the suite handed it (`Hosting::lifespan`)"
        )));
    }
    let states: Vec<_> = calls.iter().map(|call| call.lifespan).collect();
    if let Some(at) = states.iter().position(Option::is_none) {
        return Err(fail(
            "REQ-LIFE-2",
            format!(
                "expected every request to carry the lifespan's state, seen request {} of {} \
                 without it",
                at + 1,
                states.len()
            ),
        ));
    }
    let states: Vec<_> = states.into_iter().flatten().collect();
    for (i, a) in states.iter().enumerate() {
        if let Some(b) = states[i + 1..]
            .iter()
            .find(|b| b.process == a.process && b.startup != a.startup)
        {
            return Err(fail(
                "REQ-LIFE-1",
                format!(
                    "expected one startup per process, seen requests of process {} carry the \
                     states of startups {} and {}",
                    a.process,
                    a.startup + 1,
                    b.startup + 1
                ),
            ));
        }
    }
    Ok(())
}

/// Waits for the first call of the app, and whether the server offered the extension
/// `offered` picks: `Err` with a skip naming `extension` when it did not.
fn first_call(
    suite: &Suite<'_>,
    id: &str,
    extension: &str,
    offered: impl Fn(&Offered) -> bool,
) -> Result<Call, Problem> {
    let calls = suite
        .probe
        .wait(IO_TIMEOUT, |calls| !calls.is_empty())
        .map_err(|_| {
            fail(
                id,
                format!("expected the app called, seen no call after {IO_TIMEOUT:?}"),
            )
        })?;
    let call = calls.into_iter().next().expect("one call");
    if !call.in_suite_process() {
        return Err(runs_elsewhere(extension));
    }
    if offered(&call.seen.offered) {
        Ok(call)
    } else {
        Err(Problem::Skip(format!("{NOT_OFFERED}{extension}")))
    }
}

/// Whether `done` holds within [`IO_TIMEOUT`], looking every few milliseconds: a server
/// completes a `Disconnect` from its own threads, which tell the suite nothing.
fn within_timeout(done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + IO_TIMEOUT;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// A server that offers a `Disconnect` completes it when the client goes away while the app
/// works and while the body waits, and not while the client is there.
pub(super) fn disconnect_notified(suite: &mut Suite<'_>) -> Checked {
    const ID: &str = "REQ-DISC-1";
    const EARLY: &str = "REQ-DISC-2";
    let extension = "disconnect notification (`Disconnect`)";
    let gate = Gate::default();
    let _opener = gate.opener();
    let cases = [
        ("the app works on its answer", true),
        ("the body waits for its next chunk", false),
    ];
    for (case, in_app) in cases {
        if in_app {
            suite.probe.set(probe::echo(Some(&gate)));
        } else {
            let body = Script::new([Step::data(b"x"), Step::Wait(gate.clone())]);
            suite
                .probe
                .set(probe::reply(StatusCode::OK, HeaderMap::new(), body));
        }
        let mut connection = suite.connect().map_err(|e| fail(ID, e))?;
        connection
            .send(&get("/waiting"))
            .map_err(|e| fail(ID, format!("the request could not be sent: {e}")))?;
        if !in_app {
            connection
                .head()
                .and_then(|_| connection.next_bytes(1))
                .map_err(|e| fail(ID, format!("expected the start of the body, seen {e}")))?;
        }
        let call = first_call(suite, ID, extension, |offered| offered.disconnect.is_some())?;
        let disconnect = call.seen.offered.disconnect.expect("offered");
        if disconnect.is_gone() {
            return Err(fail(
                EARLY,
                format!(
                    "expected gone() pending while {case} and the client waits, seen it complete"
                ),
            ));
        }
        drop(connection);
        if !within_timeout(|| disconnect.is_gone()) {
            return Err(fail(
                ID,
                format!(
                    "expected gone() complete once the client went away while {case}, seen it \
                     pending after {IO_TIMEOUT:?}"
                ),
            ));
        }
    }
    // A response delivered whole is no departure, also once the next one on the connection
    // has been answered.
    let body = Script::new([Step::data(b"whole")]);
    suite
        .probe
        .set(probe::reply(StatusCode::OK, HeaderMap::new(), body));
    let mut connection = suite.connect().map_err(|e| fail(ID, e))?;
    for _ in 0..2 {
        connection
            .send(&get("/whole"))
            .map_err(|e| fail(ID, format!("the request could not be sent: {e}")))?;
        connection
            .response("GET")
            .map_err(|e| fail(ID, format!("expected a response, seen {e}")))?;
    }
    let call = first_call(suite, ID, extension, |offered| offered.disconnect.is_some())?;
    if call.seen.offered.disconnect.is_some_and(|d| d.is_gone()) {
        return Err(fail(
            EARLY,
            "expected gone() pending after a response delivered whole to a client still \
             connected, seen it complete",
        ));
    }
    Ok(())
}

/// A server that offers `FlushHead` sends the head of a response that asks for it before
/// the body's first chunk.
pub(super) fn head_flushed(suite: &mut Suite<'_>) -> Checked {
    const ID: &str = "REQ-INTERIM-3";
    let gate = Gate::default();
    let _opener = gate.opener();
    let body = Script::new([Step::Wait(gate.clone()), Step::data(b"late")]);
    suite.probe.set(probe::flushing(body));
    let mut connection = suite.connect().map_err(|e| fail(ID, e))?;
    connection
        .send(&get("/flushed"))
        .map_err(|e| fail(ID, format!("the request could not be sent: {e}")))?;
    first_call(suite, ID, "flushing the head (`FlushHead`)", |offered| {
        offered.flush_head
    })?;
    match connection.head() {
        Ok((200, _)) => Ok(()),
        Ok((status, _)) => Err(fail(
            ID,
            format!("expected the head of the 200 before its first chunk, seen status {status}"),
        )),
        Err(error) => Err(fail(
            ID,
            format!(
                "expected the head before the first chunk of a response with `FlushHead`, seen \
                 {error}"
            ),
        )),
    }
}

/// A server that offers `Interim` sends an interim response the app sent before the final
/// response.
pub(super) fn interim_responses(suite: &mut Suite<'_>) -> Checked {
    const ID: &str = "REQ-INTERIM-2";
    suite.probe.set(probe::hinting());
    let mut connection = suite.connect().map_err(|e| fail(ID, e))?;
    connection
        .send(&get("/hinted"))
        .map_err(|e| fail(ID, format!("the request could not be sent: {e}")))?;
    let response = connection.response("GET");
    first_call(suite, ID, "interim responses (`Interim`)", |offered| {
        offered.interim
    })?;
    let response = response.map_err(|e| fail(ID, format!("expected a response, seen {e}")))?;
    if response.status != 200 || response.interim != [103] {
        return Err(fail(
            ID,
            format!(
                "expected a 103 and then the final 200, seen interim responses {:?} and {}",
                response.interim,
                response.describe()
            ),
        ));
    }
    Ok(())
}

/// The value of the one trailer field `name`, as text.
fn trailer(response: &Response, name: &str) -> Option<String> {
    let mut values = response.trailers.iter().filter(|(n, _)| n == name);
    let (_, value) = values.next()?;
    Some(String::from_utf8_lossy(value).into_owned())
}

/// Hosts `app` and sends it a `GET` with `TE: trailers`: the answer, once the server's offer
/// of trailers is known.
fn trailed(suite: &mut Suite<'_>, id: &str, app: probe::Behavior) -> Result<Response, Problem> {
    suite.probe.set(app);
    let (response, _connection) = suite
        .exchange(&request("GET", "/trailed", "TE: trailers\r\n", b""))
        .map_err(|e| fail(id, e))?;
    first_call(suite, id, "trailers (`Trailers`)", |offered| {
        offered.trailers
    })?;
    Ok(response)
}

/// A server that offers `Trailers` sends a body's announced trailers after its data to an
/// HTTP/1.1 client that takes them, and no field the body did not announce.
pub(super) fn response_trailers(suite: &mut Suite<'_>) -> Checked {
    const ID: &str = "REQ-TRAIL-3";
    let app = probe::trailing(
        &["x-probe-sum"],
        &[("x-probe-sum", "7"), ("x-probe-unannounced", "1")],
    );
    let response = trailed(suite, ID, app)?;
    if !response.is_complete() || response.body != b"trailed\n" {
        return Err(fail(
            ID,
            format!(
                "expected the body whole before its trailers, seen {}",
                response.describe()
            ),
        ));
    }
    if trailer(&response, "x-probe-sum").as_deref() != Some("7") {
        return Err(fail(
            ID,
            format!(
                "expected the trailer `x-probe-sum: 7` after a chunked body, seen trailers {:?} \
                 (chunked: {})",
                response.trailers,
                response.is_chunked()
            ),
        ));
    }
    if trailer(&response, "x-probe-unannounced").is_some() {
        return Err(fail(
            "REQ-TRAIL-1",
            "expected only the announced trailer fields, seen `x-probe-unannounced` too",
        ));
    }
    Ok(())
}

/// A server that offers `Trailers` answers `500` to a body that announces a field no trailer
/// may be.
pub(super) fn illegal_trailer_names(suite: &mut Suite<'_>) -> Checked {
    const ID: &str = "REQ-TRAIL-2";
    let app = probe::trailing(&["content-length"], &[("content-length", "0")]);
    let response = trailed(suite, ID, app)?;
    if response.status != 500 {
        return Err(fail(
            ID,
            format!(
                "expected 500 for a body that announces `content-length` as a trailer, seen {}",
                response.describe()
            ),
        ));
    }
    Ok(())
}

/// A server that offers `Trailers` hands the app the trailer fields of a chunked upload once
/// the input ended.
pub(super) fn request_trailers(suite: &mut Suite<'_>) -> Checked {
    const ID: &str = "REQ-TRAIL-4";
    suite.probe.set(probe::record());
    let upload = request(
        "POST",
        "/upload",
        "Transfer-Encoding: chunked\r\n",
        b"4\r\ndata\r\n0\r\nx-probe-trailer: 9\r\n\r\n",
    );
    let (response, _connection) = suite.exchange(&upload).map_err(|e| fail(ID, e))?;
    first_call(suite, ID, "trailers (`Trailers`)", |offered| {
        offered.trailers
    })?;
    let calls = suite
        .probe
        .wait(IO_TIMEOUT, |calls| {
            calls.first().is_some_and(|c| c.input.is_some())
        })
        .unwrap_or_else(|calls| calls);
    let trailers = calls
        .first()
        .and_then(|call| call.input.as_ref())
        .map(|input| input.trailers.clone());
    let expected = vec![("x-probe-trailer".to_owned(), "9".to_owned())];
    if trailers.as_ref() != Some(&expected) {
        return Err(fail(
            ID,
            format!(
                "expected the app to read the trailer `x-probe-trailer: 9` after the body, seen \
                 {trailers:?} (answer: {})",
                response.describe()
            ),
        ));
    }
    Ok(())
}
