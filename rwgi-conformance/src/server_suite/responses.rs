//! Checks of what the server sends: framing, bodiless answers, the app's head passed on or
//! refused, and the timing rules of the first chunk.

use http::header::HeaderName;
use http::{HeaderMap, HeaderValue, StatusCode};

use super::client::{preview, Connection, End, Response, WireError};
use super::probe::{self, Gate, Script, Step};
use super::{fail, get, request, Checked, Suite, IO_TIMEOUT};
use crate::facts::HOP_BY_HOP;

/// Header fields from name and value pairs; a name given twice gives two field lines.
fn fields(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.append(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    headers
}

/// `Content-Length` and `Transfer-Encoding` of a response, for failure messages.
fn framing(response: &Response) -> String {
    let text = |name| {
        response
            .values(name)
            .iter()
            .map(|value| String::from_utf8_lossy(value).into_owned())
            .collect::<Vec<_>>()
    };
    format!(
        "Content-Length {:?}, Transfer-Encoding {:?}",
        text("content-length"),
        text("transfer-encoding")
    )
}

/// Hosts an app answering `200` with `body`, sends `request` and reads the answer.
fn fetch(suite: &mut Suite<'_>, body: Script, request: &[u8]) -> Result<Response, String> {
    fetch_with(suite, StatusCode::OK, HeaderMap::new(), body, request)
}

fn fetch_with(
    suite: &mut Suite<'_>,
    status: StatusCode,
    headers: HeaderMap,
    body: Script,
    request: &[u8],
) -> Result<Response, String> {
    suite.probe.set(probe::reply(status, headers, body));
    suite.exchange(request).map(|(response, _)| response)
}

fn three_chunks() -> Script {
    Script::new([
        Step::data(b"first,"),
        Step::data(b"second,"),
        Step::data(b"third"),
    ])
}

const THREE_CHUNKS: &[u8] = b"first,second,third";

/// Requires the answer to `request`, for an app answering with the three chunks as `body`,
/// to carry them in order, complete, framed as `framed` says.
fn framed_as(
    suite: &mut Suite<'_>,
    body: Script,
    request: &[u8],
    expected: &str,
    framed: impl Fn(&Response) -> bool,
) -> Checked {
    const ID: &str = "REQ-SRV-9";
    let expected = format!("the body \"first,second,third\" as {expected}");
    let response = fetch(suite, body, request)
        .map_err(|e| fail(ID, format!("expected {expected}, seen {e}")))?;
    if !(response.is_complete() && response.body == THREE_CHUNKS && framed(&response)) {
        return Err(fail(
            ID,
            format!(
                "expected {expected}, seen {}, {}",
                framing(&response),
                response.describe()
            ),
        ));
    }
    Ok(())
}

/// A body of known length goes out with `Content-Length`, in order.
pub(super) fn response_content_length(suite: &mut Suite<'_>) -> Checked {
    framed_as(
        suite,
        three_chunks().with_length(18),
        &get("/length"),
        "Content-Length: 18",
        |response| {
            response.header("content-length").as_deref() == Some("18") && !response.is_chunked()
        },
    )
}

/// A body of unknown length goes out chunked to an HTTP/1.1 client, in order.
pub(super) fn response_chunked(suite: &mut Suite<'_>) -> Checked {
    framed_as(
        suite,
        three_chunks(),
        &get("/chunked"),
        "a chunked body without Content-Length",
        |response| response.is_chunked() && response.values("content-length").is_empty(),
    )
}

/// A body of unknown length goes out to an HTTP/1.0 client delimited by closing the
/// connection.
pub(super) fn response_close_delimited(suite: &mut Suite<'_>) -> Checked {
    framed_as(
        suite,
        three_chunks(),
        b"GET /old HTTP/1.0\r\nHost: probe.test\r\n\r\n",
        "a body delimited by closing the connection, without Content-Length or chunked coding, \
         for an HTTP/1.0 client",
        |response| !response.is_chunked() && response.values("content-length").is_empty(),
    )
}

/// The answer to an HTTP/1.1 request has `HTTP/1.1` in its status line.
pub(super) fn status_line_version(suite: &mut Suite<'_>) -> Checked {
    const ID: &str = "REQ-SRV-13";
    let expected = "the status line HTTP/1.1 200 in answer to an HTTP/1.1 request";
    let body = Script::new([Step::data(b"version")]).with_length(7);
    let response = fetch(suite, body, &get("/version"))
        .map_err(|e| fail(ID, format!("expected {expected}, seen {e}")))?;
    if response.version != 1 || response.status != 200 {
        return Err(fail(
            ID,
            format!(
                "expected {expected}, seen HTTP/1.{} {}",
                response.version, response.status
            ),
        ));
    }
    Ok(())
}

/// A chunk reaches the client while the body waits for its next one.
pub(super) fn response_streams(suite: &mut Suite<'_>) -> Checked {
    const ID: &str = "REQ-SRV-11";
    let gate = Gate::default();
    let _opener = gate.opener();
    let body = Script::new([
        Step::data(b"early"),
        Step::Wait(gate.clone()),
        Step::data(b"late"),
    ]);
    suite.probe.set(probe::reply(
        StatusCode::OK,
        HeaderMap::new(),
        body.with_length(9),
    ));
    let mut connection = suite.connect().map_err(|e| fail(ID, e))?;
    let expected = "the first chunk sent while the body waits for its second";
    connection
        .send(&get("/stream"))
        .map_err(|e| fail(ID, format!("the request could not be sent: {e}")))?;
    connection
        .head()
        .map_err(|e| fail(ID, format!("expected {expected}, seen {e}")))?;
    expect_bytes(&mut connection, b"early", ID, expected)?;
    gate.open();
    let expected = "the second chunk once the body yields it";
    expect_bytes(&mut connection, b"late", "REQ-BODY-1", expected)
}

/// Requires the next bytes on `connection` to be `want`.
fn expect_bytes(connection: &mut Connection, want: &[u8], id: &str, expected: &str) -> Checked {
    match connection.next_bytes(want.len()) {
        Ok(bytes) if bytes == want => Ok(()),
        Ok(bytes) => Err(fail(
            id,
            format!("expected {expected}, seen {:?}", preview(&bytes)),
        )),
        Err(error) => Err(fail(id, format!("expected {expected}, seen {error}"))),
    }
}

/// Empty chunks neither end a chunked body nor disturb a counted one.
pub(super) fn response_empty_chunks(suite: &mut Suite<'_>) -> Checked {
    const ID: &str = "REQ-BODY-3";
    let body = Script::new([
        Step::data(b"a"),
        Step::Empty,
        Step::data(b"b"),
        Step::Empty,
        Step::Empty,
        Step::data(b"c"),
    ]);
    for (framing, body) in [("unknown", body.clone()), ("known", body.with_length(3))] {
        let expected = format!(
            "the body \"abc\" from chunks a, empty, b, empty, empty, c of {framing} length"
        );
        let response = fetch(suite, body, &get("/empty-chunks"))
            .map_err(|e| fail(ID, format!("expected {expected}, seen {e}")))?;
        if response.body != b"abc" || !response.is_complete() {
            return Err(fail(
                ID,
                format!("expected {expected}, seen {}", response.describe()),
            ));
        }
    }
    Ok(())
}

/// Sends `request` for an app answering `status` with `body` and makes sure nothing follows
/// the head: a second request goes out on the connection, and its answer must come next, so
/// body bytes show up in front of it without waiting for a silence.
fn bodiless(
    suite: &mut Suite<'_>,
    id: &str,
    case: &str,
    (status, headers, body): (StatusCode, HeaderMap, Script),
    request: &[u8],
) -> Checked {
    suite.probe.set(probe::reply(status, headers, body));
    let expected = format!("no body after the head of {case}");
    let (response, mut connection) = suite
        .exchange(request)
        .map_err(|e| fail(id, format!("expected {expected}, seen {e}")))?;
    if response.status != status.as_u16() {
        return Err(fail(
            id,
            format!("expected {expected}, seen status {}", response.status),
        ));
    }
    nothing_before_next_answer(&mut connection, id, &expected)
}

/// Sends a `GET` on `connection` and requires its answer, or the end of the connection, to be
/// the next thing the server sends.
pub(super) fn nothing_before_next_answer(
    connection: &mut Connection,
    id: &str,
    expected: &str,
) -> Checked {
    // A server may close after the answer; then the send may fail, and the read tells.
    let _ = connection.send(&get("/next"));
    match connection.up_to(5) {
        (bytes, Ok(())) if bytes == b"HTTP/" => Ok(()),
        (bytes, Err(WireError::Closed | WireError::Io(_))) if bytes.is_empty() => Ok(()),
        (bytes, Err(WireError::TimedOut)) if bytes.is_empty() => Err(fail(
            id,
            format!("expected {expected}, seen no answer to a next request on the connection"),
        )),
        (bytes, _) => Err(fail(
            id,
            format!(
                "expected {expected}, seen {:?} in front of the answer to a next request",
                preview(&bytes)
            ),
        )),
    }
}

/// No body goes out for `HEAD`, whatever the app's body.
pub(super) fn head_no_body(suite: &mut Suite<'_>) -> Checked {
    const ID: &str = "REQ-SRV-6";
    let head = request("HEAD", "/head", "", b"");
    let known = Script::new([Step::data(b"hello head")]).with_length(10);
    let answer = (StatusCode::OK, HeaderMap::new(), known);
    bodiless(suite, ID, "a HEAD answer of known length", answer, &head)?;
    let answer = (StatusCode::OK, HeaderMap::new(), three_chunks());
    bodiless(suite, ID, "a HEAD answer of unknown length", answer, &head)
}

/// A `HEAD` answer carries the `Content-Length` a `GET` answer would have.
pub(super) fn head_content_length(suite: &mut Suite<'_>) -> Checked {
    const ID: &str = "REQ-SRV-6";
    let head = request("HEAD", "/head", "", b"");
    let cases = [
        (
            "10",
            "a body of 10 bytes",
            HeaderMap::new(),
            Script::new([Step::data(b"hello head")]).with_length(10),
        ),
        (
            "42",
            "an app that describes the GET answer with Content-Length: 42",
            fields(&[("content-length", "42")]),
            Script::new([]).with_length(0),
        ),
    ];
    for (length, case, headers, body) in cases {
        let expected = format!("Content-Length: {length} on the HEAD answer for {case}");
        let response = fetch_with(suite, StatusCode::OK, headers, body, &head)
            .map_err(|e| fail(ID, format!("expected {expected}, seen {e}")))?;
        if response.header("content-length").as_deref() != Some(length) {
            return Err(fail(
                ID,
                format!("expected {expected}, seen {}", framing(&response)),
            ));
        }
    }
    Ok(())
}

/// `204` and `304` answers go out without a body; a `304` may carry the `Content-Length` of
/// the `GET` answer.
pub(super) fn no_body_204_304(suite: &mut Suite<'_>) -> Checked {
    const ID: &str = "REQ-SRV-6";
    let empty = Script::new([]).with_length(0);
    let answer = (StatusCode::NO_CONTENT, HeaderMap::new(), empty.clone());
    bodiless(suite, ID, "a 204 answer", answer, &get("/204"))?;
    let answer = (
        StatusCode::NOT_MODIFIED,
        fields(&[("etag", "\"probe\"")]),
        empty.clone(),
    );
    bodiless(suite, ID, "a 304 answer", answer, &get("/304"))?;
    // A 304 may describe the GET answer it stands for (RFC 9110 §8.6), as servers of static
    // files with ETags do: legal, so neither refused nor followed by a body.
    let answer = (
        StatusCode::NOT_MODIFIED,
        fields(&[("etag", "\"probe\""), ("content-length", "42")]),
        empty,
    );
    bodiless(
        suite,
        "REQ-RESP-5",
        "a 304 answer with the Content-Length: 42 of the GET answer",
        answer,
        &get("/304-length"),
    )
}

/// The app's status and headers go out unchanged, repeated headers as separate lines.
pub(super) fn repeated_response_headers(suite: &mut Suite<'_>) -> Checked {
    const ID: &str = "REQ-SRV-2";
    let mut headers = fields(&[
        ("set-cookie", "a=1"),
        ("x-probe-multi", "one"),
        ("set-cookie", "b=2"),
        ("x-probe-multi", "two"),
    ]);
    headers.insert(
        "x-probe-latin",
        HeaderValue::from_bytes(b"caf\xe9").expect("obs-text is a valid header value"),
    );
    let body = Script::new([Step::data(b"ok")]).with_length(2);
    let expected = "status 203 with the field lines set-cookie: a=1, set-cookie: b=2, \
                    x-probe-multi: one, x-probe-multi: two and x-probe-latin: caf\\xe9, each \
                    sent separately and unchanged";
    let response = fetch_with(
        suite,
        StatusCode::NON_AUTHORITATIVE_INFORMATION,
        headers,
        body,
        &get("/headers"),
    )
    .map_err(|e| fail(ID, format!("expected {expected}, seen {e}")))?;
    let same = response.status == 203
        && response.values("set-cookie") == [&b"a=1"[..], b"b=2"]
        && response.values("x-probe-multi") == [&b"one"[..], b"two"]
        && response.values("x-probe-latin") == [&b"caf\xe9"[..]];
    if !same {
        let lines: Vec<String> = response
            .headers
            .iter()
            .map(|(name, value)| format!("{name}: {}", String::from_utf8_lossy(value)))
            .collect();
        return Err(fail(
            ID,
            format!(
                "expected {expected}, seen status {} with {}",
                response.status,
                lines.join(" | ")
            ),
        ));
    }
    Ok(())
}

/// An answer whose head breaks `rule`, as `what` describes.
struct Illegal {
    rule: &'static str,
    what: String,
    status: StatusCode,
    headers: HeaderMap,
    body: Script,
}

impl Illegal {
    fn new(rule: &'static str, what: impl Into<String>, status: StatusCode) -> Self {
        Illegal {
            rule,
            what: what.into(),
            status,
            headers: HeaderMap::new(),
            body: Script::new([]).with_length(0),
        }
    }

    fn headers(mut self, headers: HeaderMap) -> Self {
        self.headers = headers;
        self
    }

    fn body(mut self, data: &'static [u8]) -> Self {
        self.body = Script::new([Step::data(data)]).with_length(data.len() as u64);
        self
    }
}

/// Hosts an app giving each illegal answer in turn; the server must answer `500` instead.
fn refused(suite: &mut Suite<'_>, cases: impl IntoIterator<Item = Illegal>) -> Checked {
    const ID: &str = "REQ-SRV-5";
    for case in cases {
        let expected = format!(
            "500 in place of a head that breaks {} ({})",
            case.rule, case.what
        );
        let response = fetch_with(
            suite,
            case.status,
            case.headers,
            case.body,
            &get("/illegal"),
        )
        .map_err(|e| fail(ID, format!("expected {expected}, seen {e}")))?;
        if response.status != 500 {
            return Err(fail(
                ID,
                format!("expected {expected}, seen {}", response.describe()),
            ));
        }
    }
    Ok(())
}

fn hop_by_hop_value(name: &str) -> &'static str {
    match name {
        "connection" => "close",
        "keep-alive" => "timeout=5",
        "proxy-authenticate" => "Basic realm=\"probe\"",
        "proxy-authorization" => "Basic cHJvYmU6cHJvYmU=",
        "te" => "trailers",
        "trailer" => "x-probe",
        "transfer-encoding" => "chunked",
        _ => "websocket",
    }
}

/// An app's hop-by-hop header is never sent: the server answers `500`.
pub(super) fn illegal_head_hop_by_hop(suite: &mut Suite<'_>) -> Checked {
    let cases = HOP_BY_HOP.iter().map(|&name| {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(hop_by_hop_value(name)),
        );
        Illegal::new(
            "REQ-RESP-2",
            format!("the app set `{name}`"),
            StatusCode::OK,
        )
        .headers(headers)
        .body(b"hop")
    });
    refused(suite, cases)
}

/// An app's informational final status is never sent: the server answers `500`.
pub(super) fn illegal_head_informational(suite: &mut Suite<'_>) -> Checked {
    let statuses = [
        StatusCode::CONTINUE,
        StatusCode::SWITCHING_PROTOCOLS,
        StatusCode::PROCESSING,
    ];
    let cases = statuses.into_iter().map(|status| {
        let what = format!("the app answered {}", status.as_u16());
        Illegal::new("REQ-RESP-1", what, status)
    });
    refused(suite, cases)
}

/// An app's malformed or wrong `Content-Length` is never sent: the server answers `500`.
pub(super) fn illegal_head_content_length(suite: &mut Suite<'_>) -> Checked {
    let cases = [
        Illegal::new("REQ-RESP-3", "Content-Length: abc", StatusCode::OK)
            .headers(fields(&[("content-length", "abc")])),
        Illegal::new("REQ-RESP-3", "two Content-Length fields", StatusCode::OK)
            .headers(fields(&[("content-length", "3"), ("content-length", "3")])),
        Illegal::new(
            "REQ-RESP-5",
            "Content-Length: 10 on a body of 3 bytes",
            StatusCode::OK,
        )
        .headers(fields(&[("content-length", "10")])),
    ];
    refused(suite, cases.map(|case| case.body(b"abc")))
}

/// A `204` with a length or a body, or a `205` or `304` with a body, is never sent: the server
/// answers `500`.
pub(super) fn illegal_head_bodiless(suite: &mut Suite<'_>) -> Checked {
    let cases = [
        Illegal::new(
            "REQ-RESP-4",
            "a 204 with Content-Length: 0",
            StatusCode::NO_CONTENT,
        )
        .headers(fields(&[("content-length", "0")])),
        Illegal::new("REQ-RESP-6", "a 204 with a body", StatusCode::NO_CONTENT).body(b"x"),
        Illegal::new("REQ-RESP-6", "a 304 with a body", StatusCode::NOT_MODIFIED).body(b"x"),
        Illegal::new("REQ-RESP-6", "a 205 with a body", StatusCode::RESET_CONTENT).body(b"x"),
    ];
    refused(suite, cases)
}

/// A body that fails before its first non-empty chunk becomes a `500`.
pub(super) fn error_before_first_chunk(suite: &mut Suite<'_>) -> Checked {
    const ID: &str = "REQ-ERR-2";
    let cases = [
        (
            "a body that fails at once",
            HeaderMap::new(),
            vec![Step::Fail],
        ),
        (
            "a body that yields an empty chunk, then fails",
            HeaderMap::new(),
            vec![Step::Empty, Step::Fail],
        ),
        (
            "a body announced with Content-Length: 10 that fails at once",
            fields(&[("content-length", "10")]),
            vec![Step::Fail],
        ),
        // The body says its length itself: a server may take that for a body it can frame at
        // once, but it still has nothing to send before the first chunk.
        (
            "a body of known length (10 bytes) that fails at once",
            HeaderMap::new(),
            vec![Step::Fail],
        ),
    ];
    for (case, headers, steps) in cases {
        let expected = format!("500 for {case}");
        let body = match case.contains("known length") {
            true => Script::new(steps).with_length(10),
            false => Script::new(steps),
        };
        let response = fetch_with(suite, StatusCode::OK, headers, body, &get("/fail"))
            .map_err(|e| fail(ID, format!("expected {expected}, seen {e}")))?;
        if response.status != 500 || !response.is_complete() {
            return Err(fail(
                ID,
                format!("expected {expected}, seen {}", response.describe()),
            ));
        }
    }
    Ok(())
}

/// Nothing of the response goes out before the body's first chunk, even once the app has
/// returned its response: the body waits until the app has answered, then fails, so a server
/// that sent the head early has already said `200` where `500` is due (REQ-ERR-2). No window
/// of silence is timed.
pub(super) fn nothing_sent_before_first_chunk(suite: &mut Suite<'_>) -> Checked {
    const ID: &str = "REQ-SRV-4";
    // What the body does once the app has answered, and the answer that is then due (the
    // body of a `500` is the server's own).
    type Case = (&'static str, Step, u16, Option<&'static [u8]>, Option<u64>);
    let cases: [Case; 4] = [
        ("fails", Step::Fail, 500, None, None),
        (
            "yields \"late\"",
            Step::data(b"late"),
            200,
            Some(b"late"),
            None,
        ),
        ("of known length fails", Step::Fail, 500, None, Some(4)),
        (
            "of known length yields \"late\"",
            Step::data(b"late"),
            200,
            Some(b"late"),
            Some(4),
        ),
    ];
    for (then, step, status, body, length) in cases {
        let gate = Gate::default();
        let _opener = gate.opener();
        let script = Script::new([Step::Wait(gate.clone()), step]);
        let script = match length {
            Some(length) => script.with_length(length),
            None => script,
        };
        suite
            .probe
            .set(probe::reply(StatusCode::OK, HeaderMap::new(), script));
        let mut connection = suite.connect().map_err(|e| fail(ID, e))?;
        connection
            .send(&get("/slow"))
            .map_err(|e| fail(ID, format!("the request could not be sent: {e}")))?;
        suite
            .probe
            .wait(IO_TIMEOUT, |calls| {
                calls.first().is_some_and(|call| call.answered)
            })
            .map_err(|_| {
                fail(
                    ID,
                    format!(
                        "expected the app called and answering, seen no answer in {IO_TIMEOUT:?}"
                    ),
                )
            })?;
        gate.open();
        match connection.response("GET") {
            Ok(response)
                if response.status == status && body.map_or(true, |body| response.body == body) => {
            }
            Ok(response) => {
                return Err(fail(
                    ID,
                    format!(
                        "expected nothing sent before the body's first chunk, so status {status} \
                         once the body {then}; seen {}: the head went out when the app called \
                         the callback (REQ-START-4)",
                        response.describe()
                    ),
                ))
            }
            Err(error) => {
                return Err(fail(
                    ID,
                    format!("expected status {status} once the body {then}, seen {error}"),
                ))
            }
        }
        suite.probe.clear();
    }
    Ok(())
}

/// Sends a `GET` for the app the probe runs and requires the server to abort the answer:
/// close the connection before the response is complete. A server that buffers the head with
/// the first chunk may abort before anything went out; that is an abort too.
pub(super) fn expect_abort(suite: &mut Suite<'_>, id: &str, expected: &str) -> Checked {
    let mut connection = suite.connect().map_err(|e| fail(id, e))?;
    connection
        .send(&get("/abort"))
        .map_err(|e| fail(id, format!("the request could not be sent: {e}")))?;
    let response = match connection.response("GET") {
        Ok(response) => response,
        Err(WireError::Closed | WireError::Io(_)) => return Ok(()),
        Err(error) => return Err(fail(id, format!("expected {expected}, seen {error}"))),
    };
    match &response.end {
        End::Cut(WireError::Closed | WireError::Io(_)) => Ok(()),
        End::Complete => Err(fail(
            id,
            format!(
                "expected {expected}, seen a complete response: {}",
                response.describe()
            ),
        )),
        End::Cut(WireError::TimedOut) => Err(fail(
            id,
            format!(
                "expected {expected}, seen the connection left open after {} body bytes",
                response.body.len()
            ),
        )),
        End::Cut(other) => Err(fail(id, format!("expected {expected}, seen {other}"))),
    }
}

/// A body that fails after its first chunk aborts the connection.
pub(super) fn error_after_first_chunk(suite: &mut Suite<'_>) -> Checked {
    const ID: &str = "REQ-ERR-3";
    let steps = || Script::new([Step::data(b"partial"), Step::Fail]);
    let cases = [
        ("a chunked body", HeaderMap::new()),
        (
            "a body announced with Content-Length: 20",
            fields(&[("content-length", "20")]),
        ),
    ];
    for (case, headers) in cases {
        suite
            .probe
            .set(probe::reply(StatusCode::OK, headers, steps()));
        let expected = format!("the connection aborted when {case} fails after its first chunk");
        expect_abort(suite, ID, &expected)?;
    }
    Ok(())
}

/// A body that yields more or fewer bytes than its `Content-Length` aborts the connection.
pub(super) fn content_length_mismatch(suite: &mut Suite<'_>) -> Checked {
    const ID: &str = "REQ-SRV-7";
    let cases = [
        (
            "yields 12 bytes",
            Script::new([Step::data(b"longer"), Step::data(b"-extra")]),
        ),
        ("yields 6 bytes", Script::new([Step::data(b"sixsix")])),
    ];
    for (case, body) in cases {
        let expected =
            format!("the connection aborted when a body announced with Content-Length: 10 {case}");
        let headers = fields(&[("content-length", "10")]);
        suite.probe.set(probe::reply(StatusCode::OK, headers, body));
        expect_abort(suite, ID, &expected)?;
    }
    exact_length_then_more(suite)
}

/// A body that yields exactly its `Content-Length` and then more: the client has a complete
/// answer, so the abort shows as the connection closing instead of serving a next request.
/// A server that stops polling once the announced bytes are out never sees the excess.
fn exact_length_then_more(suite: &mut Suite<'_>) -> Checked {
    const ID: &str = "REQ-SRV-7";
    let expected = "the connection aborted when a body announced with Content-Length: 10 yields \
                    exactly 10 bytes and then 2 more";
    // The head goes out with the first chunk, so the excess can only be answered by an abort.
    let body = Script::new([
        Step::data(b"0123"),
        Step::data(b"456789"),
        Step::data(b"ab"),
    ]);
    let headers = fields(&[("content-length", "10")]);
    suite.probe.set(probe::reply(StatusCode::OK, headers, body));
    let mut connection = suite.connect().map_err(|e| fail(ID, e))?;
    connection
        .send(&get("/abort"))
        .map_err(|e| fail(ID, format!("the request could not be sent: {e}")))?;
    match connection.response("GET").map(|response| response.end) {
        Ok(End::Complete) => {}
        Ok(End::Cut(WireError::Closed | WireError::Io(_)))
        | Err(WireError::Closed | WireError::Io(_)) => return Ok(()),
        Ok(End::Cut(WireError::TimedOut)) => {
            return Err(fail(
                ID,
                format!("expected {expected}, seen the connection left open mid-body"),
            ))
        }
        Ok(End::Cut(error)) | Err(error) => {
            return Err(fail(ID, format!("expected {expected}, seen {error}")))
        }
    }
    // A server may close after the answer; then the send may fail, and the read tells.
    let _ = connection.send(&get("/next"));
    match connection.up_to(5) {
        (bytes, Err(WireError::Closed | WireError::Io(_))) if bytes.is_empty() => Ok(()),
        (bytes, _) => Err(fail(
            ID,
            format!(
                "expected {expected}, seen a complete response and then {:?} on the same \
                 connection: the excess went unnoticed",
                preview(&bytes)
            ),
        )),
    }
}
