//! Checks of the extensions a server may offer (spec §14): each holds a server that offers
//! the extension to its rules, and passes one that does not offer it, which claims nothing
//! (REQ-EXT-1).

use std::time::Duration;

use http::{HeaderMap, StatusCode};
use rwgi::outcome::{Ending, Outcome};

use super::probe::{self, Script, Step};
use super::{fail, get, Checked, Suite, IO_TIMEOUT};

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
            // No handle in the environ: the server does not offer the outcome.
            return Ok(());
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
        // No request carries a state: the server runs no lifespan.
        return Ok(());
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
