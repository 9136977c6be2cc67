//! The server suite, proved both ways: the reference server (`examples/server`) passes it over
//! TCP and over a Unix socket, and small servers that each break one rule fail exactly the
//! check of that rule, with its requirement ID, while the same server without the flaw passes
//! that check.

use rwgi_server as serve;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rwgi_conformance::server_suite::{self, Address, Hosting, ServerHandle, CHECKS};
use rwgi_conformance::{Outcome, Report};
use serve::{Bind, Server};

/// Starts the reference server, embedded, for each configuration the suite asks for.
fn reference(bind: impl Fn() -> Bind) -> impl FnMut(Hosting) -> ServerHandle {
    move |hosting| {
        let bind = bind();
        let (app, root_path) = hosting.into_parts();
        let mut builder = Server::builder()
            .bind(bind.to_string())
            .threads(2)
            .graceful_timeout(Duration::from_millis(500));
        if let Some(root_path) = root_path {
            builder = builder.root_path(&root_path);
        }
        let server = builder.serve(app).expect("the reference server binds");
        let address = match (&bind, server.local_addr()) {
            (_, Some(address)) => Address::Tcp(address),
            (Bind::Unix(path), None) => Address::Unix(path.clone()),
            (_, None) => panic!("a TCP listener without an address"),
        };
        ServerHandle::new(address).on_stop(move || server.shutdown())
    }
}

fn assert_passes(report: &Report) {
    report.assert_ok();
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("JSON");
    let results = json["results"].as_array().expect("a list of results");
    assert_eq!(results.len(), CHECKS.len(), "every check ran once");
    for (result, check) in results.iter().zip(CHECKS) {
        assert_eq!(result["name"], check.name);
        assert_eq!(
            result["requirements"],
            serde_json::json!(check.requirements)
        );
    }
}

#[test]
fn the_reference_server_passes_over_tcp() {
    let report = server_suite::run(reference(|| Bind::Tcp("127.0.0.1:0".into())));
    assert_passes(&report);
    let skipped: Vec<_> = report
        .results()
        .iter()
        .filter(|result| result.outcome == Outcome::Skip)
        .map(|result| result.name)
        .collect();
    assert_eq!(skipped, Vec::<&str>::new(), "{}", report.summary());
}

#[test]
fn the_reference_server_passes_over_a_unix_socket() {
    static SOCKETS: AtomicUsize = AtomicUsize::new(0);
    let report = server_suite::run(reference(|| {
        let n = SOCKETS.fetch_add(1, Ordering::Relaxed);
        let name = format!("rwgi-server-suite-{}-{n}.sock", std::process::id());
        Bind::Unix(std::env::temp_dir().join(name))
    }));
    assert_passes(&report);
    let skipped: Vec<_> = report
        .results()
        .iter()
        .filter(|result| result.outcome == Outcome::Skip)
        .map(|result| (result.name, result.detail.as_str()))
        .collect();
    assert_eq!(
        skipped,
        [(
            "connection_addresses",
            "the server listens on a Unix socket, which has no addresses"
        )]
    );
}

/// A small blocking server over std sockets, built on the crate's server pieces, that gets
/// one thing wrong on purpose.
mod broken {
    use std::io::{self, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::thread;

    use bytes::Bytes;
    use futures_util::StreamExt;
    use rwgi::app::BoxApp;
    use rwgi::body::Body;
    use rwgi::environ::{ConnectionInfo, ServerInfo};
    use rwgi::http::header::{CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
    use rwgi::http::uri::Scheme;
    use rwgi::http::{
        HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri, Version,
    };
    use rwgi::path::percent_decode;
    use rwgi::response::content_length;
    use rwgi::server::prepare;
    use rwgi::{App, Environ, Input, StartResponse};
    use rwgi_conformance::server_suite::{Hosting, ServerHandle};
    use rwgi_conformance::test_client::block_on;

    /// What the server gets wrong.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Flaw {
        /// Nothing: the control.
        None,
        /// Percent-decodes the request target before the app sees it.
        DecodesPath,
        /// Answers `HEAD` like `GET`, body included.
        BodyForHead,
        /// Sends the head as soon as the app returns, before the body's first chunk.
        HeadBeforeFirstChunk,
        /// Keeps every response body until the connection closes.
        KeepsBody,
        /// Sends the app's headers as they are, hop-by-hop ones included.
        PassesHopByHop,
        /// Sends whatever the body yields and ends the response normally, whatever its
        /// `Content-Length` said.
        IgnoresLengthMismatch,
        /// Closes every connection after its first response, without saying so.
        ClosesAfterEachResponse,
        /// Fills in `Host: localhost` when an HTTP/1.1 request has none.
        InventsHost,
        /// Puts the reason for a `500` in its body.
        LeaksErrorDetails,
        /// Ends a chunked body normally when the app's body fails after its first chunk.
        FinishesFailedBody,
    }

    /// The closure the suite starts the server with.
    pub fn start(flaw: Flaw) -> impl FnMut(Hosting) -> ServerHandle {
        move |hosting| {
            let (app, root_path) = hosting.into_parts();
            let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
            let address = listener.local_addr().expect("a bound socket");
            let stopping = Arc::new(AtomicBool::new(false));
            let accepting = Arc::clone(&stopping);
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if accepting.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let (app, root_path) = (app.clone(), root_path.clone());
                    thread::spawn(move || {
                        serve_connection(stream, &app, root_path.as_deref(), flaw);
                    });
                }
            });
            ServerHandle::new(address).on_stop(move || {
                stopping.store(true, Ordering::SeqCst);
                // Wakes the accept loop so that it sees the flag.
                let _ = TcpStream::connect(address);
            })
        }
    }

    fn serve_connection(mut stream: TcpStream, app: &BoxApp, root_path: Option<&str>, flaw: Flaw) {
        let (Ok(local), Ok(peer)) = (stream.local_addr(), stream.peer_addr()) else {
            return;
        };
        let connection = ConnectionInfo::new(Scheme::HTTP)
            .local_addr(local)
            .peer_addr(peer)
            .server(ServerInfo::new("broken/0").multithread(true));
        let mut buffer = Vec::new();
        // The bodies a `KeepsBody` server holds on to.
        let mut kept = Vec::new();
        while let Some(parsed) = read_request(&mut stream, &mut buffer, flaw) {
            let Ok((request, head)) = parsed else {
                let _ = plain(&mut stream, StatusCode::BAD_REQUEST);
                return;
            };
            // The client asked to end the connection after this request (RFC 9112 §9.6).
            let close = request
                .headers()
                .get(CONNECTION)
                .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"close"));
            let Ok(mut environ) = Environ::from_request(request, &connection) else {
                let _ = plain(&mut stream, StatusCode::BAD_REQUEST);
                return;
            };
            if root_path.is_some_and(|root| environ.mount(root).is_err()) {
                if plain(&mut stream, StatusCode::NOT_FOUND).is_err() {
                    return;
                }
                continue;
            }
            let alive = match flaw {
                Flaw::HeadBeforeFirstChunk
                | Flaw::KeepsBody
                | Flaw::PassesHopByHop
                | Flaw::IgnoresLengthMismatch => {
                    let Ok(response) = block_on(app.call(environ, StartResponse::new())) else {
                        return;
                    };
                    let (status, headers, mut body) = response.into_parts();
                    let length = content_length(&headers)
                        .ok()
                        .flatten()
                        .or(body.content_length());
                    let alive = send(
                        &mut stream,
                        head,
                        (status, headers, length),
                        &mut body,
                        flaw,
                    );
                    if flaw == Flaw::KeepsBody {
                        kept.push(body);
                    }
                    alive
                }
                _ => {
                    let prepared = block_on(prepare(app, environ));
                    if let (Flaw::LeaksErrorDetails, Some(failure)) = (flaw, prepared.failure()) {
                        let text = failure.to_string();
                        let _ = write!(
                            stream,
                            "HTTP/1.1 500\r\ncontent-length: {}\r\n\r\n{text}",
                            text.len()
                        );
                        continue;
                    }
                    let length = prepared.content_length();
                    let (status, headers, mut body) = prepared.into_parts();
                    send(
                        &mut stream,
                        head,
                        (status, headers, length),
                        &mut body,
                        flaw,
                    ) && flaw != Flaw::ClosesAfterEachResponse
                }
            };
            if !alive || close {
                return;
            }
        }
    }

    /// The next request on the connection and whether it is a `HEAD`; `None` at the end of the
    /// connection, `Err` for a request the server cannot read.
    fn read_request(
        stream: &mut TcpStream,
        buffer: &mut Vec<u8>,
        flaw: Flaw,
    ) -> Option<Result<(Request<Input>, bool), ()>> {
        let end = loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            fill(stream, buffer).ok()?;
        };
        let mut fields = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Request::new(&mut fields);
        if parsed.parse(&buffer[..end]).is_err() {
            return Some(Err(()));
        }
        let mut method = parsed.method.unwrap_or_default();
        if flaw == Flaw::BodyForHead && method == "HEAD" {
            method = "GET";
        }
        let head = method == "HEAD";
        let target = parsed.path.unwrap_or_default();
        let target = if flaw == Flaw::DecodesPath {
            String::from_utf8_lossy(&percent_decode(target)).into_owned()
        } else {
            target.to_owned()
        };
        let mut request = Request::new(Input::empty());
        let (Ok(method), Ok(uri)) = (Method::from_bytes(method.as_bytes()), Uri::try_from(target))
        else {
            return Some(Err(()));
        };
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        if parsed.version == Some(0) {
            *request.version_mut() = Version::HTTP_10;
        }
        for field in parsed.headers.iter() {
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(field.name.as_bytes()),
                HeaderValue::from_bytes(field.value),
            ) else {
                return Some(Err(()));
            };
            request.headers_mut().append(name, value);
        }
        if flaw == Flaw::InventsHost && !request.headers().contains_key(HOST) {
            request
                .headers_mut()
                .insert(HOST, HeaderValue::from_static("localhost"));
        }
        if request.headers().contains_key(TRANSFER_ENCODING) {
            // Chunked uploads are beyond this server.
            return Some(Err(()));
        }
        let Ok(length) = content_length(request.headers()) else {
            return Some(Err(()));
        };
        let length = usize::try_from(length.unwrap_or(0)).ok()?;
        while buffer.len() < end + length {
            fill(stream, buffer).ok()?;
        }
        let rest = buffer.split_off(end + length);
        let body = buffer.split_off(end);
        *buffer = rest;
        *request.body_mut() = Input::from(body);
        Some(Ok((request, head)))
    }

    fn fill(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> io::Result<()> {
        let mut chunk = [0; 8192];
        match stream.read(&mut chunk)? {
            0 => Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                buffer.extend_from_slice(&chunk[..n]);
                Ok(())
            }
        }
    }

    fn plain(stream: &mut TcpStream, status: StatusCode) -> io::Result<()> {
        write!(
            stream,
            "HTTP/1.1 {}\r\ncontent-length: 0\r\n\r\n",
            status.as_u16()
        )
    }

    /// Writes the head, then the body as it comes; `false` when the connection is done for.
    fn send<B: Body + Unpin>(
        stream: &mut TcpStream,
        head_only: bool,
        (status, headers, length): (StatusCode, HeaderMap, Option<u64>),
        body: &mut B,
        flaw: Flaw,
    ) -> bool {
        let bodiless =
            head_only || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
        let chunked = !bodiless && length.is_none();
        let mut bytes = format!("HTTP/1.1 {}\r\n", status.as_u16()).into_bytes();
        for (name, value) in &headers {
            bytes.extend_from_slice(format!("{name}: ").as_bytes());
            bytes.extend_from_slice(value.as_bytes());
            bytes.extend_from_slice(b"\r\n");
        }
        match length {
            Some(n)
                if !headers.contains_key(CONTENT_LENGTH) && status != StatusCode::NO_CONTENT =>
            {
                bytes.extend_from_slice(format!("content-length: {n}\r\n").as_bytes());
            }
            _ if chunked => bytes.extend_from_slice(b"transfer-encoding: chunked\r\n"),
            _ => {}
        }
        bytes.extend_from_slice(b"\r\n");
        if stream.write_all(&bytes).is_err() {
            return false;
        }
        if bodiless {
            return true;
        }
        loop {
            let chunk: Bytes = match block_on(body.next()) {
                Some(Ok(chunk)) if chunk.is_empty() => continue,
                Some(Ok(chunk)) => chunk,
                Some(Err(_)) if flaw == Flaw::FinishesFailedBody => break,
                // Aborts: the connection closes without ending the body.
                Some(Err(_)) => return false,
                None => break,
            };
            let written = if chunked {
                write!(stream, "{:x}\r\n", chunk.len())
                    .and_then(|()| stream.write_all(&chunk))
                    .and_then(|()| stream.write_all(b"\r\n"))
            } else {
                stream.write_all(&chunk)
            };
            if written.is_err() {
                return false;
            }
        }
        !chunked || stream.write_all(b"0\r\n\r\n").is_ok()
    }
}

use broken::Flaw;

/// Runs `check` against the server with `flaw` and against the same server without it: the
/// control passes, the flawed server fails that check alone, with `detail`.
fn fails_with(flaw: Flaw, check: &str, detail: &str) {
    let control = server_suite::run_checks(broken::start(Flaw::None), &[check]);
    assert!(control.is_ok(), "the control fails:\n{}", control.summary());
    let report = server_suite::run_checks(broken::start(flaw), &[check]);
    let failures: Vec<_> = report.failures().collect();
    assert_eq!(failures.len(), 1, "{}", report.summary());
    assert_eq!(failures[0].name, check);
    assert!(
        failures[0].detail.starts_with(detail),
        "expected a detail starting {detail:?}, got {:?}",
        failures[0].detail
    );
    let requirement = detail.split(':').next().unwrap_or_default();
    assert!(report.failed_requirement(requirement));
}

#[test]
fn a_server_that_decodes_the_path_fails_req_path_1() {
    fails_with(
        Flaw::DecodesPath,
        "vectors_paths",
        "REQ-PATH-1: vector `encoded_slash`: expected the app called with path_info \"/a%2Fb\" \
         (seen \"/a/b\")",
    );
}

#[test]
fn a_server_that_sends_a_body_for_head_fails_req_srv_6() {
    fails_with(
        Flaw::BodyForHead,
        "head_no_body",
        "REQ-SRV-6: expected no body after the head of a HEAD answer of known length, seen \
         \"hello head\"",
    );
}

#[test]
fn a_server_that_sends_the_head_early_fails_req_srv_4() {
    fails_with(
        Flaw::HeadBeforeFirstChunk,
        "nothing_sent_before_first_chunk",
        "REQ-SRV-4: expected nothing sent before the body's first chunk, seen \"HTTP/1.1 200",
    );
}

#[test]
fn a_server_that_keeps_bodies_fails_req_srv_8() {
    fails_with(
        Flaw::KeepsBody,
        "body_dropped_after_completion",
        "REQ-SRV-8: expected the body dropped after a complete response, seen it still alive \
         after 5s",
    );
}

#[test]
fn a_server_that_passes_hop_by_hop_headers_fails_req_srv_5() {
    fails_with(
        Flaw::PassesHopByHop,
        "illegal_head_hop_by_hop",
        "REQ-SRV-5: expected 500 in place of a head that breaks REQ-RESP-2 (the app set \
         `connection`), seen status 200 with a 3-byte body \"hop\"",
    );
}

#[test]
fn a_server_that_ignores_a_length_mismatch_fails_req_srv_7() {
    fails_with(
        Flaw::IgnoresLengthMismatch,
        "content_length_mismatch",
        "REQ-SRV-7: expected the connection aborted when a body announced with \
         Content-Length: 10 yields 12 bytes, seen a complete response: status 200 with a \
         10-byte body \"longer-ext\"",
    );
}

#[test]
fn a_server_that_closes_every_connection_fails_req_srv_3() {
    fails_with(
        Flaw::ClosesAfterEachResponse,
        "keep_alive",
        // Closed cleanly or reset, depending on whether the second request arrived first.
        "REQ-SRV-3: expected the answer \"GET /two \" to a request on a kept-alive connection, \
         seen the connection ",
    );
}

#[test]
fn a_server_that_invents_a_host_fails_req_env_3() {
    fails_with(
        Flaw::InventsHost,
        "vectors_hosts",
        "REQ-ENV-3: vector `host_missing`: expected status 400 without calling the app; seen \
         status 200 after 1 call(s) of the app",
    );
}

#[test]
fn a_server_that_leaks_error_details_fails_req_err_5() {
    fails_with(
        Flaw::LeaksErrorDetails,
        "app_error",
        "REQ-ERR-5: expected no error details in the answer to an app that returns an error, \
         seen the error's message in status 500",
    );
}

#[test]
fn a_server_that_finishes_a_failed_body_fails_req_err_3() {
    fails_with(
        Flaw::FinishesFailedBody,
        "error_after_first_chunk",
        "REQ-ERR-3: expected the connection aborted when a chunked body fails after its first \
         chunk, seen a complete response",
    );
}
