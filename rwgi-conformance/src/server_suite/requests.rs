//! Checks of what the server gives the app: the environ (through the vectors), the request
//! body, `Expect: 100-continue`, and the connection's addresses.

use std::io::Write;
use std::net::SocketAddr;
use std::thread;

use super::client::WireError;
use super::probe::{self, checksum, Gate, InputEnd, CHECKSUM_START};
use super::{fail, get, request, vectors, Checked, Problem, Suite, IO_TIMEOUT};

pub(super) fn vectors_paths(suite: &mut Suite<'_>) -> Checked {
    vectors::run_group(suite, "paths")
}

pub(super) fn vectors_targets(suite: &mut Suite<'_>) -> Checked {
    vectors::run_group(suite, "targets")
}

pub(super) fn vectors_hosts(suite: &mut Suite<'_>) -> Checked {
    vectors::run_group(suite, "hosts")
}

pub(super) fn vectors_headers(suite: &mut Suite<'_>) -> Checked {
    vectors::run_group(suite, "headers")
}

pub(super) fn vectors_bodies(suite: &mut Suite<'_>) -> Checked {
    vectors::run_group(suite, "bodies")
}

pub(super) fn vectors_mount(suite: &mut Suite<'_>) -> Checked {
    vectors::run_group(suite, "mount")
}

/// An 8 MiB upload, with `Content-Length` and chunked, reaches the app intact.
pub(super) fn input_large(suite: &mut Suite<'_>) -> Checked {
    const ID: &str = "REQ-INPUT-1";
    const SIZE: usize = 8 << 20;
    let body: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    let sum = checksum(CHECKSUM_START, &body);
    let mut chunked = Vec::with_capacity(SIZE + 4096);
    for piece in body.chunks(100_000) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let uploads = [
        (
            "Content-Length",
            format!("Content-Length: {SIZE}\r\n"),
            &body,
        ),
        (
            "chunked",
            "Transfer-Encoding: chunked\r\n".to_owned(),
            &chunked,
        ),
    ];
    for (framing, fields, bytes) in uploads {
        suite.probe.set(probe::record());
        let expected = format!("the app to read all {SIZE} bytes of a {framing} upload");
        let mut connection = suite
            .connect()
            .map_err(|e| fail(ID, format!("expected {expected}, seen {e}")))?;
        connection
            .send(&request("POST", "/large", &fields, b""))
            .and_then(|()| connection.send(bytes))
            .map_err(|e| {
                fail(
                    ID,
                    format!("expected {expected}, seen the upload fail: {e}"),
                )
            })?;
        let response = connection
            .response("POST")
            .map_err(|e| fail(ID, format!("expected {expected}, seen no answer: {e}")))?;
        let calls = suite.probe.calls();
        match calls.first().and_then(|call| call.input.as_ref()) {
            Some(record)
                if record.end == InputEnd::Complete
                    && record.received == SIZE as u64
                    && record.checksum == sum => {}
            Some(record) => {
                let intact = if record.checksum == sum {
                    "intact"
                } else {
                    "not the bytes sent"
                };
                return Err(fail(
                    ID,
                    format!(
                        "expected {expected}, seen {} bytes ({intact}), ending {:?}",
                        record.received, record.end
                    ),
                ));
            }
            None => {
                return Err(fail(
                    ID,
                    format!(
                        "expected {expected}, seen {} call(s) and {}",
                        calls.len(),
                        response.describe()
                    ),
                ))
            }
        }
    }
    Ok(())
}

/// An app that reads one byte of a 66 KB body: the rest is discarded or the connection
/// closed, and never taken for the next request.
pub(super) fn input_partly_read(suite: &mut Suite<'_>) -> Checked {
    leftover(suite, Some(1))
}

/// The same for an app that does not read the body at all.
pub(super) fn input_unread(suite: &mut Suite<'_>) -> Checked {
    leftover(suite, None)
}

fn leftover(suite: &mut Suite<'_>, read: Option<u64>) -> Checked {
    const ID: &str = "REQ-INPUT-4";
    let what = if read.is_some() {
        "read partly"
    } else {
        "left unread"
    };
    suite.probe.set(probe::partial(read));
    // A body made of requests: a server that takes unread bytes for the next request calls
    // the app for /smuggled.
    let body = get("/smuggled").repeat(1500);
    let mut bytes = request(
        "POST",
        "/first",
        &format!("Content-Length: {}\r\n", body.len()),
        &body,
    );
    bytes.extend_from_slice(&get("/second"));
    let mut connection = suite.connect().map_err(|e| fail(ID, e))?;
    let mut writer = connection
        .writer()
        .map_err(|e| fail(ID, format!("no second handle on the connection: {e}")))?;
    // Sent from another thread so that answers are read while the body is still going out:
    // a server may answer first and close. A failed write is that close, which is allowed.
    let sender = thread::spawn(move || {
        let _ = writer.write_all(&bytes);
    });
    let first = connection.response("POST");
    let second = connection.response("GET");
    drop(connection);
    let _ = sender.join();
    let calls = suite.probe.calls();
    if let Some(call) = calls
        .iter()
        .find(|call| !["/first", "/second"].contains(&call.seen.path_info.as_str()))
    {
        return Err(fail(
            ID,
            format!(
                "expected the body the app {what} to be discarded or the connection closed, \
                 seen the app called for {:?}: body bytes were taken for a request",
                call.seen.path_info
            ),
        ));
    }
    match first {
        Ok(response) if response.status == 200 && response.is_complete() => {}
        Ok(response) => {
            return Err(fail(
                ID,
                format!(
                    "expected the app's 200 for a request whose body it {what}, seen {}",
                    response.describe()
                ),
            ))
        }
        Err(error) => {
            return Err(fail(
                ID,
                format!("expected the app's 200 for a request whose body it {what}, seen {error}"),
            ))
        }
    }
    let answered_second = calls.iter().any(|call| call.seen.path_info == "/second");
    match second {
        Ok(response) if response.status == 200 && answered_second => Ok(()),
        Err(WireError::Closed | WireError::Io(_)) => Ok(()),
        Ok(response) => Err(fail(
            ID,
            format!(
                "expected the next request on the connection answered by the app, or the \
                 connection closed, after a body the app {what}; seen {}",
                response.describe()
            ),
        )),
        Err(error) => Err(fail(
            ID,
            format!(
                "expected the next request on the connection answered, or the connection \
                 closed, after a body the app {what}; seen {error}"
            ),
        )),
    }
}

/// The client stops sending in the middle of the body: reading it yields an error.
pub(super) fn input_client_gone(suite: &mut Suite<'_>) -> Checked {
    let bytes = request("POST", "/upload", "Content-Length: 1000\r\n", &[b'x'; 100]);
    cut_upload(
        suite,
        &bytes,
        true,
        "when the client stops sending after 100 of 1000 bytes",
    )
}

/// A chunked body whose coding breaks: reading it yields an error.
pub(super) fn input_broken_chunked(suite: &mut Suite<'_>) -> Checked {
    let bytes = request(
        "POST",
        "/upload",
        "Transfer-Encoding: chunked\r\n",
        b"5\r\nhello\r\nzz\r\n",
    );
    cut_upload(
        suite,
        &bytes,
        false,
        "when the chunked coding breaks after 5 bytes",
    )
}

fn cut_upload(suite: &mut Suite<'_>, bytes: &[u8], finish: bool, when: &str) -> Checked {
    const ID: &str = "REQ-INPUT-2";
    suite.probe.set(probe::record());
    let mut connection = suite.connect().map_err(|e| fail(ID, e))?;
    connection
        .send(bytes)
        .map_err(|e| fail(ID, format!("the request could not be sent: {e}")))?;
    if finish {
        connection
            .finish_sending()
            .map_err(|e| fail(ID, format!("could not stop sending: {e}")))?;
    }
    let settled = suite.probe.wait(IO_TIMEOUT, |calls| {
        calls
            .first()
            .is_some_and(|call| call.input.is_some() || call.abandoned)
    });
    match settled {
        Ok(calls) => match &calls[0].input {
            Some(record) if record.end == InputEnd::Complete => Err(fail(
                ID,
                format!(
                    "expected the body to yield an error {when}, seen it end normally after {} \
                     bytes",
                    record.received
                ),
            )),
            // An error, or the app's future dropped before the body ended.
            _ => Ok(()),
        },
        // A server that reads the body before calling the app refuses the request itself.
        Err(calls) if calls.is_empty() => match connection.response("POST") {
            Ok(response) if response.status >= 400 => Ok(()),
            Err(WireError::Closed | WireError::Io(_)) => Ok(()),
            Ok(response) => Err(fail(
                ID,
                format!(
                    "expected an error {when}, seen {} without a call of the app",
                    response.describe()
                ),
            )),
            Err(error) => Err(fail(
                ID,
                format!("expected an error {when}, seen no call of the app and {error}"),
            )),
        },
        Err(_) => Err(fail(
            ID,
            format!(
                "expected the body to yield an error {when}, seen the app still reading after \
                 {IO_TIMEOUT:?}"
            ),
        )),
    }
}

/// `Expect: 100-continue`: no `100 Continue` before the app polls the body, and one when it
/// does; none at all when the app answers without reading.
pub(super) fn expect_continue(suite: &mut Suite<'_>) -> Checked {
    const ID: &str = "REQ-INPUT-5";
    let expecting = request(
        "POST",
        "/upload",
        "Content-Length: 5\r\nExpect: 100-continue\r\n",
        b"",
    );
    suite.probe.set(probe::partial(None));
    let expected = "the app's answer without 100 Continue when the app does not read the body";
    match suite.exchange(&expecting) {
        Ok((response, _)) if response.status == 200 && response.interim.is_empty() => {}
        Ok((response, _)) => {
            return Err(fail(
                ID,
                format!(
                    "expected {expected}, seen the interim statuses {:?} and {}",
                    response.interim,
                    response.describe()
                ),
            ))
        }
        Err(error) => return Err(fail(ID, format!("expected {expected}, seen {error}"))),
    }
    let gate = Gate::default();
    let _opener = gate.opener();
    suite.probe.set(probe::echo(Some(&gate)));
    let mut connection = suite.connect().map_err(|e| fail(ID, e))?;
    connection
        .send(&expecting)
        .map_err(|e| fail(ID, format!("the request could not be sent: {e}")))?;
    suite
        .probe
        .wait(IO_TIMEOUT, |calls| !calls.is_empty())
        .map_err(|_| {
            fail(
                ID,
                format!(
                    "expected the app called while the client waits for 100 Continue, seen no \
                     call in {IO_TIMEOUT:?}"
                ),
            )
        })?;
    // No window of silence is timed here: the first exchange, where the app answers without
    // polling, already shows any 100 Continue sent before the app polls.
    gate.open();
    match connection.head() {
        Ok((100, _)) => {}
        Ok((status, _)) => {
            return Err(fail(
                ID,
                format!("expected 100 Continue once the app polled the body, seen status {status}"),
            ))
        }
        Err(error) => {
            return Err(fail(
                ID,
                format!("expected 100 Continue once the app polled the body, seen {error}"),
            ))
        }
    }
    connection.send(b"hello").map_err(|e| {
        fail(
            ID,
            format!("the body could not be sent after 100 Continue: {e}"),
        )
    })?;
    match connection.response("POST") {
        Ok(response) if response.status == 200 && response.body == b"POST /upload hello" => Ok(()),
        Ok(response) => Err(fail(
            ID,
            format!(
                "expected the app's answer \"POST /upload hello\" after 100 Continue, seen {}",
                response.describe()
            ),
        )),
        Err(error) => Err(fail(
            ID,
            format!("expected the app's answer after 100 Continue, seen {error}"),
        )),
    }
}

/// The environ carries the connection's peer and local addresses.
pub(super) fn connection_addresses(suite: &mut Suite<'_>) -> Checked {
    const ID: &str = "REQ-ENV-10";
    suite.probe.set(probe::record());
    let target = suite.address(None);
    if !target.has_socket_addresses() {
        return Err(Problem::Skip(format!(
            "the server declared a Unix socket ({target}), which has no peer or local address"
        )));
    }
    let mut connection = suite.connect().map_err(|e| fail(ID, e))?;
    let (server, client) = connection.addresses();
    if server.is_none() || client.is_none() {
        return Err(fail(
            ID,
            format!(
                "expected a TCP connection to {target} with a peer and a local address, seen \
                 the connection without them (reset or closed at once)"
            ),
        ));
    }
    connection
        .send(&get("/addresses"))
        .map_err(|e| fail(ID, format!("the request could not be sent: {e}")))?;
    connection
        .response("GET")
        .map_err(|e| fail(ID, format!("expected an answer, seen {e}")))?;
    let calls = suite.probe.calls();
    let Some(call) = calls.first() else {
        return Err(fail(ID, "expected the app called, seen no call"));
    };
    if call.seen.remote_addr != client || call.seen.local_addr != server {
        return Err(fail(
            ID,
            format!(
                "expected the peer address {} and the local address {} in the environ, seen {} \
                 and {}",
                address(client),
                address(server),
                address(call.seen.remote_addr),
                address(call.seen.local_addr)
            ),
        ));
    }
    Ok(())
}

fn address(address: Option<SocketAddr>) -> String {
    address.map_or_else(|| "none".to_owned(), |address| address.to_string())
}
