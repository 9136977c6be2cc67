//! The server suite, proved both ways: the reference server (`examples/server`) passes it over
//! TCP (strictly) and over a Unix socket (with the one declared skip), and peers that each break
//! one rule fail exactly the check of that rule, with its requirement ID, while the same peer
//! without the flaw passes that check. The peers are a small blocking server with one flaw, or,
//! for what that server cannot do even without a flaw, a proxy with one fault in front of the
//! reference server. `tests/spec.rs` lists which test proves each check able to fail.

use rwgi_server as serve;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rwgi::app::BoxApp;
use rwgi_conformance::server_suite::{self, Address, Hosting, ServerHandle, CHECKS};
use rwgi_conformance::{Outcome, Report};
use serve::{Bind, Server};

/// Starts the reference server, embedded, for each configuration the suite asks for.
fn reference(bind: impl Fn() -> Bind) -> impl FnMut(Hosting) -> ServerHandle {
    reference_hosting(bind, |app| app)
}

/// [`reference`], hosting `wrap` of the app the suite gives.
fn reference_hosting(
    bind: impl Fn() -> Bind,
    wrap: impl Fn(BoxApp) -> BoxApp,
) -> impl FnMut(Hosting) -> ServerHandle {
    move |hosting| {
        let bind = bind();
        let lifespan = hosting.lifespan().clone();
        let (app, root_path) = hosting.into_parts();
        let app = wrap(app);
        let mut builder = Server::builder()
            .bind(bind.to_string())
            .threads(2)
            .graceful_timeout(Duration::from_millis(500))
            .lifespan(lifespan)
            .response_outcome();
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
    assert_eq!(report.with_outcome(Outcome::NotObserved).count(), 0);
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

/// The checks of the one extension the reference server does not offer: hyper cannot send
/// interim responses.
const NOT_OFFERED: &[&str] = &["interim_responses"];

#[test]
fn the_reference_server_passes_over_tcp() {
    let report = server_suite::run(reference(|| Bind::Tcp("127.0.0.1:0".into())));
    assert_passes(&report);
    report.assert_ok_offered();
    let skipped: Vec<_> = report.skips().map(|skip| skip.name).collect();
    assert_eq!(skipped, NOT_OFFERED, "{report}");
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
    // The skips the suite allows, on the conditions the server declared: Address::Unix, and
    // an extension not offered.
    let skipped: Vec<_> = report
        .skips()
        .filter(|skip| !NOT_OFFERED.contains(&skip.name))
        .collect();
    assert_eq!(skipped.len(), 1, "{report}");
    assert_eq!(skipped[0].name, "connection_addresses");
    let why = &skipped[0].detail;
    assert!(
        why.starts_with("the server declared a Unix socket (unix:")
            && why.ends_with("), which has no peer or local address"),
        "{why}"
    );
    assert!(!report.is_ok_strict());
    assert!(report
        .summary()
        .contains(&format!("skipped connection_addresses: {why}\n")));
}

/// A small blocking server over std sockets, built on the crate's server pieces, that gets
/// one thing wrong on purpose.
mod broken {
    use std::io::{self, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::thread;
    use std::time::Duration;

    use bytes::Bytes;
    use futures_util::StreamExt;
    use rwgi::app::BoxApp;
    use rwgi::body::{Body, BoxBody, Full, StreamBody};
    use rwgi::environ::{ConnectionInfo, ServerInfo};
    use rwgi::file::{FileBody, FileRange};
    use rwgi::http::header::{CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING, UPGRADE};
    use rwgi::http::uri::Scheme;
    use rwgi::http::{
        HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri, Version,
    };
    use rwgi::interim::{Interim, InterimError, SendInterim};
    use rwgi::lifespan::Running;
    use rwgi::outcome::{Ending, Finisher};
    use rwgi::path::percent_decode;
    use rwgi::response::{check_head, content_length, is_bodiless};
    use rwgi::server::prepare;
    use rwgi::upgrade::{asks_for_upgrade, offer, Acceptance, Handler, Io, Switching, Upgraded};
    use rwgi::{App, Environ, Input, StartResponse};
    use rwgi_conformance::server_suite::{Hosting, ServerHandle};
    use rwgi_conformance::test_client::block_on;
    use std::pin::Pin;
    use std::task::{Context, Poll};

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
        /// Stops polling a body once it says it is at its end, and forgets it there.
        ForgetsEndedBody,
        /// Sends the app's headers as they are, hop-by-hop ones included.
        PassesHopByHop,
        /// Sends whatever the body yields and ends the response normally, whatever its
        /// `Content-Length` said.
        IgnoresLengthMismatch,
        /// Closes every connection after its first response, without saying so.
        ClosesAfterEachResponse,
        /// Fills in `Host: localhost` when an HTTP/1.1 request has none.
        InventsHost,
        /// Gives the app the `Host` header it received even when an absolute-form target names
        /// another host.
        KeepsReceivedHost,
        /// Puts the reason for a `500` in its body.
        LeaksErrorDetails,
        /// Ends a chunked body normally when the app's body fails after its first chunk.
        FinishesFailedBody,
        /// Says `multithread = false` while it calls the app from a thread per connection.
        ClaimsSingleThread,
        /// Gives the app the local address as the peer's and the peer's as the local one.
        SwapsAddresses,
        /// Resets every connection once the client has sent something.
        ResetsEveryConnection,
        /// Throws away whatever follows a request in the same read: pipelined requests.
        DropsPipelined,
        /// Calls the app without catching its panics: the connection's thread dies.
        LetsPanicsThrough,
        /// Collects the whole body before sending any of it.
        BuffersBody,
        /// Fills a body the client stopped sending with zeros and calls the app.
        PadsShortBody,
        /// Takes a chunked body for an empty one.
        TreatsChunkedAsEmpty,
        /// Leaves the request body in the stream, to be read as the next request.
        LeavesBodyInStream,
        /// Sends every body chunked, even of known length.
        ChunksEverything,
        /// Sends a body of unknown length to an HTTP/1.1 client unframed, closing after it.
        ClosesInsteadOfChunking,
        /// Sends an empty chunk as a chunk of size zero, which ends a chunked body.
        SendsEmptyChunks,
        /// Leaves `Content-Length` off a `HEAD` answer.
        DropsLengthOnHead,
        /// Frames `204` and `304` answers as chunked bodies (a last chunk follows the head).
        FramesBodiless,
        /// Joins repeated response headers into one comma-separated line.
        JoinsRepeatedHeaders,
        /// Checks the app's head except for this header, which it sends.
        PassesHeader(&'static str),
        /// Turns an absolute-form target into origin form, losing its authority.
        RewritesAbsoluteForm,
        /// Keeps only the last of repeated request headers.
        DropsRepeatedHeaders,
        /// Serves the app at `/` whatever root path it was given.
        IgnoresRootPath,
        /// Percent-decodes the query before the app sees it.
        DecodesQuery,
        /// Adds `X-Forwarded-Proto: http` to every request.
        AddsForwardedHeader,
        /// Ends the response after the body's first chunk.
        StopsAfterFirstChunk,
        /// Calls the app twice per request, sending the second answer.
        CallsTwice,
        /// Turns `_` in request header names into `-`.
        RewritesUnderscores,
        /// Leaves out the request's `Content-Type`.
        DropsContentType,
        /// Answers `200` where it should answer `400`.
        AnswersBadRequestsWith200,
        /// Gives each connection a `ServerInfo` of its own.
        VariesServerInfo,
        /// Answers `501` to a method it does not know instead of calling the app.
        RefusesUnknownMethods,
        /// Tells the app every request is HTTP/1.1.
        ReportsHttp11,
        /// Calls the app for `CONNECT` as for any method.
        CallsAppForConnect,
        /// Leaves the peer address out of the environ.
        HidesPeer,
        /// Writes `HTTP/1.0` in the status line of every answer.
        AnswersAsHttp10,
        /// Refuses a `304` that carries a `Content-Length` with `500`.
        RefusesLengthOn304,
        /// Checks the app's head, but judges a `205` as a `200`, so its body goes out.
        AllowsBodyOn205,
        /// Waits for the first chunk of a body of unknown length, but sends the head at once
        /// for a body that states its own length.
        HeadEarlyForKnownLength,
        /// Ends the response once `Content-Length` bytes are out, without polling the body
        /// again.
        StopsAtLength,
        /// Offers the response outcome, and reports every response completed, however it
        /// ended.
        ReportsEveryOutcomeCompleted,
        /// Offers the response outcome, and never reports one.
        ForgetsOutcome,
        /// Runs the app's startup once per connection.
        StartsAppPerConnection,
        /// Gives the lifespan's state to the first request of each connection only.
        ForgetsStateAfterFirstRequest,
        /// Offers interim responses and never sends them.
        DropsInterim,
        /// Sends the length of a file range from the file's start, whatever its offset.
        SendsFileFromStart,
        /// Fills a file range whose file ends early with zeros, ending the response normally.
        PadsShortFile,
        /// Puts an upgrade offer in every environ, asked for or not.
        OffersUpgradeUnasked,
        /// Hands the upgraded connection over without the bytes that came with the request.
        DropsBytesAfterUpgradeRequest,
        /// Runs the handler of an app that took the upgrade offer even when it answers `500`
        /// because the app's `101` broke a rule.
        RunsRefusedUpgrade,
    }

    /// The interim responses an app sent, to go out before the final head (REQ-INTERIM-2).
    #[derive(Default)]
    struct Hints {
        queued: std::sync::Mutex<Vec<(StatusCode, HeaderMap)>>,
        closed: AtomicBool,
    }

    impl SendInterim for Hints {
        fn send(&self, status: StatusCode, headers: HeaderMap) -> Result<(), InterimError> {
            if self.closed.load(Ordering::SeqCst) {
                return Err(InterimError::Closed);
            }
            self.queued.lock().unwrap().push((status, headers));
            Ok(())
        }
    }

    /// Writes the interim responses queued so far, and refuses any later one.
    fn send_hints(stream: &mut TcpStream, hints: &Hints, flaw: Flaw) -> io::Result<()> {
        hints.closed.store(true, Ordering::SeqCst);
        let queued = std::mem::take(&mut *hints.queued.lock().unwrap());
        if flaw == Flaw::DropsInterim {
            return Ok(());
        }
        for (status, headers) in queued {
            let mut bytes = format!("HTTP/1.1 {}\r\n", status.as_u16()).into_bytes();
            for (name, value) in &headers {
                bytes.extend_from_slice(format!("{name}: ").as_bytes());
                bytes.extend_from_slice(value.as_bytes());
                bytes.extend_from_slice(b"\r\n");
            }
            bytes.extend_from_slice(b"\r\n");
            stream.write_all(&bytes)?;
        }
        Ok(())
    }

    /// The closure the suite starts the server with.
    pub fn start(flaw: Flaw) -> impl FnMut(Hosting) -> ServerHandle {
        move |hosting| {
            // This server runs the app's lifespan (spec §14.3): its startup once, here.
            let lifespan = hosting.lifespan().clone();
            let running = Arc::new(block_on(lifespan.startup()).expect("the probe's startup"));
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
                    if flaw == Flaw::ResetsEveryConnection {
                        thread::spawn(move || {
                            // Closing with unread bytes makes the kernel send a reset.
                            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                            let _ = stream.peek(&mut [0; 1]);
                        });
                        continue;
                    }
                    let (app, root_path) = (app.clone(), root_path.clone());
                    let running = if flaw == Flaw::StartsAppPerConnection {
                        Arc::new(block_on(lifespan.startup()).expect("the probe's startup"))
                    } else {
                        Arc::clone(&running)
                    };
                    thread::spawn(move || {
                        serve_connection(stream, &app, root_path.as_deref(), &running, flaw);
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

    /// The server's name; a `VariesServerInfo` server alternates between two.
    fn software(flaw: Flaw) -> &'static str {
        static CONNECTIONS: AtomicUsize = AtomicUsize::new(0);
        match flaw {
            Flaw::VariesServerInfo if CONNECTIONS.fetch_add(1, Ordering::SeqCst) % 2 == 1 => {
                "broken/1"
            }
            _ => "broken/0",
        }
    }

    fn serve_connection(
        mut stream: TcpStream,
        app: &BoxApp,
        root_path: Option<&str>,
        running: &Running,
        flaw: Flaw,
    ) {
        let (Ok(local), Ok(peer)) = (stream.local_addr(), stream.peer_addr()) else {
            return;
        };
        let (local, peer) = if flaw == Flaw::SwapsAddresses {
            (peer, local)
        } else {
            (local, peer)
        };
        let connection = ConnectionInfo::new(Scheme::HTTP).local_addr(local);
        let connection = match flaw {
            Flaw::HidesPeer => connection,
            _ => connection.peer_addr(peer),
        };
        // File bodies are read on this connection's own thread, never an async one (§14.9).
        let connection = connection.server(
            ServerInfo::new(software(flaw))
                .multithread(flaw != Flaw::ClaimsSingleThread)
                .file_bodies(true),
        );
        let mut buffer = Vec::new();
        // The bodies a `KeepsBody` server holds on to.
        let mut kept = Vec::new();
        let mut first = true;
        while let Some(parsed) = read_request(&mut stream, &mut buffer, flaw) {
            let refused = if flaw == Flaw::AnswersBadRequestsWith200 {
                StatusCode::OK
            } else {
                StatusCode::BAD_REQUEST
            };
            let Ok((mut request, head)) = parsed else {
                let _ = plain(&mut stream, refused);
                return;
            };
            // Upgrades (§14.10): an offer for a request that asks for one.
            let asking = if flaw == Flaw::OffersUpgradeUnasked {
                let mut asking = HeaderMap::new();
                asking.insert(CONNECTION, HeaderValue::from_static("upgrade"));
                asking.insert(UPGRADE, HeaderValue::from_static("rwgi-probe"));
                asking
            } else {
                request.headers().clone()
            };
            let acceptance = offer(request.method(), Version::HTTP_11, &asking)
                .filter(|_| {
                    flaw == Flaw::OffersUpgradeUnasked
                        || asks_for_upgrade(request.method(), request.version(), request.headers())
                })
                .map(|(upgrade, acceptance)| {
                    request.extensions_mut().insert(upgrade);
                    acceptance
                });
            if flaw == Flaw::RefusesUnknownMethods && request.method().as_str() == "PURGE" {
                let _ = plain(&mut stream, StatusCode::NOT_IMPLEMENTED);
                return;
            }
            if flaw == Flaw::CallsTwice {
                let mut copy = Request::new(Input::empty());
                *copy.method_mut() = request.method().clone();
                *copy.uri_mut() = request.uri().clone();
                *copy.version_mut() = request.version();
                *copy.headers_mut() = request.headers().clone();
                if let Ok(environ) = Environ::from_request(copy, &connection) {
                    drop(block_on(prepare(app, environ)));
                }
            }
            // The client asked to end the connection after this request (RFC 9112 §9.6).
            let close = request
                .headers()
                .get(CONNECTION)
                .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"close"));
            let received_host = (flaw == Flaw::KeepsReceivedHost)
                .then(|| request.headers().get(HOST).cloned())
                .flatten();
            let Ok(mut environ) = Environ::from_request(request, &connection) else {
                let _ = plain(&mut stream, refused);
                return;
            };
            if let Some(host) = received_host {
                environ.headers_mut().insert(HOST, host);
            }
            if first || flaw != Flaw::ForgetsStateAfterFirstRequest {
                running.provide(&mut environ);
            }
            first = false;
            if environ.method() == Method::CONNECT && flaw != Flaw::CallsAppForConnect {
                // No tunnel to offer (REQ-SRV-12); the connection cannot carry on.
                let _ = plain(&mut stream, StatusCode::NOT_IMPLEMENTED);
                return;
            }
            let root_path = root_path.filter(|_| flaw != Flaw::IgnoresRootPath);
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
                | Flaw::PassesHeader(_)
                | Flaw::LetsPanicsThrough
                | Flaw::IgnoresLengthMismatch
                | Flaw::RefusesLengthOn304
                | Flaw::AllowsBodyOn205
                | Flaw::HeadEarlyForKnownLength
                | Flaw::StopsAtLength
                | Flaw::RunsRefusedUpgrade => {
                    let Ok(response) = block_on(app.call(environ, StartResponse::new())) else {
                        return;
                    };
                    if flaw == Flaw::RunsRefusedUpgrade {
                        // Takes the handler of any answer that took the offer, checked or not.
                        if let Some(switching) = response.extensions().get::<Switching>() {
                            switching.confirm();
                        }
                        let handler = acceptance.as_ref().and_then(Acceptance::take_handler);
                        let refused = response.check(&Method::GET).is_err();
                        if refused && plain(&mut stream, StatusCode::INTERNAL_SERVER_ERROR).is_err()
                        {
                            return;
                        }
                        if let Some(handler) = handler {
                            if !refused {
                                let (status, headers, mut body) = response.into_parts();
                                send(&mut stream, head, (status, headers, None), &mut body, flaw);
                            }
                            hand_over(&stream, std::mem::take(&mut buffer), handler);
                            return;
                        }
                        if refused {
                            continue;
                        }
                    }
                    let (status, headers, mut body) = response.into_parts();
                    // The head this server judges, when it judges one.
                    let judged = match flaw {
                        Flaw::PassesHeader(passed) => {
                            let mut checked = headers.clone();
                            checked.remove(passed);
                            Some((status, checked))
                        }
                        Flaw::AllowsBodyOn205 if status == StatusCode::RESET_CONTENT => {
                            Some((StatusCode::OK, headers.clone()))
                        }
                        Flaw::AllowsBodyOn205 => Some((status, headers.clone())),
                        _ => None,
                    };
                    let method = if head { Method::HEAD } else { Method::GET };
                    let length = body.content_length();
                    let refused = judged.is_some_and(|(status, checked)| {
                        check_head(&method, status, &checked, length).is_err()
                            || (is_bodiless(status) && length.is_some_and(|n| n > 0))
                    }) || (flaw == Flaw::RefusesLengthOn304
                        && status == StatusCode::NOT_MODIFIED
                        && headers.contains_key(CONTENT_LENGTH));
                    if refused {
                        if plain(&mut stream, StatusCode::INTERNAL_SERVER_ERROR).is_err() {
                            return;
                        }
                        continue;
                    }
                    if flaw == Flaw::HeadEarlyForKnownLength && body.content_length().is_none() {
                        // As a conforming server: nothing goes out before the first chunk.
                        let first = loop {
                            match block_on(body.next()) {
                                Some(Ok(chunk)) if chunk.is_empty() => continue,
                                Some(Ok(chunk)) => break Some(chunk),
                                Some(Err(_)) => break None,
                                None => break Some(Bytes::new()),
                            }
                        };
                        let Some(first) = first else {
                            if plain(&mut stream, StatusCode::INTERNAL_SERVER_ERROR).is_err() {
                                return;
                            }
                            continue;
                        };
                        let length = content_length(&headers).ok().flatten();
                        let rest = futures_util::stream::iter([Ok(first)]).chain(body);
                        let alive = send(
                            &mut stream,
                            head,
                            (status, headers, length),
                            &mut StreamBody::new(rest),
                            flaw,
                        );
                        if !alive || close {
                            return;
                        }
                        continue;
                    }
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
                    let hints = Arc::new(Hints::default());
                    let mut environ = environ;
                    if environ.version() == Version::HTTP_11 {
                        environ
                            .extensions_mut()
                            .insert(Interim::new(Arc::clone(&hints)));
                    }
                    // This server offers the response outcome (spec §14.4).
                    let (finisher, finished) = Finisher::pair();
                    environ.extensions_mut().insert(finished);
                    let prepared = block_on(prepare(app, environ));
                    if send_hints(&mut stream, &hints, flaw).is_err() {
                        return;
                    }
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
                    let switching = prepared.status() == StatusCode::SWITCHING_PROTOCOLS;
                    let (status, headers, mut body) = prepared.into_parts();
                    match flaw {
                        Flaw::SendsFileFromStart => body.map_file(|range| {
                            let (file, _, len) = range.into_parts();
                            BoxBody::new(FileBody::new(FileRange::new(file, 0, len).unwrap()))
                        }),
                        Flaw::PadsShortFile => body.map_file(|range| {
                            let mut bytes = vec![0; range.len() as usize];
                            let mut filled = 0;
                            while let Ok(n @ 1..) =
                                range.read_at(&mut bytes[filled..], range.offset() + filled as u64)
                            {
                                filled += n;
                            }
                            BoxBody::new(Full::new(bytes))
                        }),
                        // Otherwise a file body reads its file itself, on this thread.
                        _ => {}
                    }
                    if switching {
                        // The head, then the connection is the app's handler's (REQ-UPGRADE-3).
                        if !send(&mut stream, head, (status, headers, None), &mut body, flaw) {
                            return;
                        }
                        if let Some(handler) =
                            acceptance.as_ref().and_then(Acceptance::take_handler)
                        {
                            let buffered = if flaw == Flaw::DropsBytesAfterUpgradeRequest {
                                Vec::new()
                            } else {
                                std::mem::take(&mut buffer)
                            };
                            hand_over(&stream, buffered, handler);
                        }
                        return;
                    }
                    let mut body = StopsAtEnd {
                        body,
                        at_end: flaw == Flaw::ForgetsEndedBody,
                        sent: 0,
                        failed: false,
                    };
                    let alive = send(
                        &mut stream,
                        head,
                        (status, headers, length),
                        &mut body,
                        flaw,
                    );
                    let ending = match (body.failed, alive) {
                        _ if flaw == Flaw::ReportsEveryOutcomeCompleted => Ending::Completed,
                        (true, _) => Ending::Failed,
                        (false, true) => Ending::Completed,
                        (false, false) => Ending::ClientGone,
                    };
                    let outcome = rwgi::outcome::Outcome::new(ending, Some(status), body.sent);
                    if flaw == Flaw::ForgetsOutcome {
                        std::mem::forget(finisher);
                    } else {
                        finisher.finish(outcome);
                    }
                    if body.at_end {
                        std::mem::forget(body);
                    }
                    alive && flaw != Flaw::ClosesAfterEachResponse
                }
            };
            if !alive || close {
                return;
            }
        }
    }

    /// Runs an upgrade handler on the connection, reading first what came after the request.
    fn hand_over(stream: &TcpStream, buffered: Vec<u8>, handler: Handler) {
        let Ok(stream) = stream.try_clone() else {
            return;
        };
        let _ = block_on(handler.run(Upgraded::new(Blocking { stream, buffered })));
    }

    /// The connection as an upgraded I/O: blocking reads and writes, on the connection's thread.
    struct Blocking {
        stream: TcpStream,
        buffered: Vec<u8>,
    }

    impl Io for Blocking {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            if !self.buffered.is_empty() {
                let n = buf.len().min(self.buffered.len());
                buf[..n].copy_from_slice(&self.buffered[..n]);
                self.buffered.drain(..n);
                return Poll::Ready(Ok(n));
            }
            Poll::Ready(self.stream.read(buf))
        }

        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(self.stream.write(buf))
        }

        fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(self.stream.flush())
        }

        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(self.stream.shutdown(std::net::Shutdown::Write))
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
        let mut target = parsed.path.unwrap_or_default();
        if flaw == Flaw::RewritesAbsoluteForm {
            if let Some(rest) = target.split_once("://").map(|(_, rest)| rest) {
                target = rest.find('/').map_or("/", |slash| &rest[slash..]);
            }
        }
        let target = match (flaw, target.split_once('?')) {
            (Flaw::DecodesPath, _) => String::from_utf8_lossy(&percent_decode(target)).into_owned(),
            (Flaw::DecodesQuery, Some((path, query))) => {
                format!("{path}?{}", String::from_utf8_lossy(&percent_decode(query)))
            }
            _ => target.to_owned(),
        };
        let mut request = Request::new(Input::empty());
        let (Ok(method), Ok(uri)) = (Method::from_bytes(method.as_bytes()), Uri::try_from(target))
        else {
            return Some(Err(()));
        };
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        if parsed.version == Some(0) && flaw != Flaw::ReportsHttp11 {
            *request.version_mut() = Version::HTTP_10;
        }
        for field in parsed.headers.iter() {
            let name = match flaw {
                Flaw::RewritesUnderscores => field.name.replace('_', "-"),
                _ => field.name.to_owned(),
            };
            if flaw == Flaw::DropsContentType && name.eq_ignore_ascii_case("content-type") {
                continue;
            }
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(field.value),
            ) else {
                return Some(Err(()));
            };
            if flaw == Flaw::DropsRepeatedHeaders {
                request.headers_mut().insert(name, value);
            } else {
                request.headers_mut().append(name, value);
            }
        }
        if flaw == Flaw::AddsForwardedHeader {
            request
                .headers_mut()
                .append("x-forwarded-proto", HeaderValue::from_static("http"));
        }
        if flaw == Flaw::InventsHost && !request.headers().contains_key(HOST) {
            request
                .headers_mut()
                .insert(HOST, HeaderValue::from_static("localhost"));
        }
        let chunked = request.headers().contains_key(TRANSFER_ENCODING);
        if chunked && flaw != Flaw::TreatsChunkedAsEmpty {
            // Chunked uploads are beyond this server.
            return Some(Err(()));
        }
        let Ok(length) = content_length(request.headers()) else {
            return Some(Err(()));
        };
        let length = if chunked || flaw == Flaw::LeavesBodyInStream {
            0
        } else {
            usize::try_from(length.unwrap_or(0)).ok()?
        };
        while buffer.len() < end + length {
            if fill(stream, buffer).is_err() {
                if flaw != Flaw::PadsShortBody {
                    return None;
                }
                buffer.resize(end + length, 0);
            }
        }
        let rest = buffer.split_off(end + length);
        let body = buffer.split_off(end);
        *buffer = if flaw == Flaw::DropsPipelined {
            Vec::new()
        } else {
            rest
        };
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
    /// A prepared body that, when `at_end`, ends as soon as it says it is at its end, without
    /// the poll that would drop the app's body.
    struct StopsAtEnd<B> {
        body: rwgi::server::ResponseBody<B>,
        at_end: bool,
        /// The body bytes yielded, and whether the body failed: what the outcome reports.
        sent: u64,
        failed: bool,
    }

    impl<B: Body + Unpin> futures_core::Stream for StopsAtEnd<B> {
        type Item = Result<Bytes, rwgi::Error>;

        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            if self.at_end && self.body.is_end_stream() {
                return std::task::Poll::Ready(None);
            }
            let polled = std::pin::Pin::new(&mut self.body).poll_next(cx);
            match &polled {
                std::task::Poll::Ready(Some(Ok(chunk))) => self.sent += chunk.len() as u64,
                std::task::Poll::Ready(Some(Err(_))) => self.failed = true,
                _ => {}
            }
            polled
        }
    }

    impl<B: Body + Unpin> Body for StopsAtEnd<B> {
        fn content_length(&self) -> Option<u64> {
            self.body.content_length()
        }
    }

    fn send<B: Body + Unpin>(
        stream: &mut TcpStream,
        head_only: bool,
        (status, headers, length): (StatusCode, HeaderMap, Option<u64>),
        body: &mut B,
        flaw: Flaw,
    ) -> bool {
        let no_content = status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
            || status == StatusCode::SWITCHING_PROTOCOLS;
        let framed_anyway = no_content && flaw == Flaw::FramesBodiless;
        let bodiless = head_only || (no_content && !framed_anyway);
        let length = match flaw {
            Flaw::ChunksEverything if !bodiless => None,
            Flaw::DropsLengthOnHead if head_only => None,
            Flaw::FramesBodiless if framed_anyway => None,
            _ => length,
        };
        let chunked = !bodiless && length.is_none() && flaw != Flaw::ClosesInsteadOfChunking;
        let minor = u8::from(flaw != Flaw::AnswersAsHttp10);
        let mut bytes = format!("HTTP/1.{minor} {}\r\n", status.as_u16()).into_bytes();
        let mut written: Vec<&HeaderName> = Vec::new();
        for (name, value) in &headers {
            if flaw == Flaw::JoinsRepeatedHeaders {
                if written.contains(&name) {
                    continue;
                }
                written.push(name);
                let values: Vec<&[u8]> =
                    headers.get_all(name).iter().map(|v| v.as_bytes()).collect();
                bytes.extend_from_slice(format!("{name}: ").as_bytes());
                bytes.extend_from_slice(&values.join(&b", "[..]));
                bytes.extend_from_slice(b"\r\n");
                continue;
            }
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
        if flaw != Flaw::BuffersBody && stream.write_all(&bytes).is_err() {
            return false;
        }
        if bodiless {
            return flaw != Flaw::BuffersBody || stream.write_all(&bytes).is_ok();
        }
        // What a `BuffersBody` server holds back until the body ends.
        let mut held = bytes;
        let held_back = flaw == Flaw::BuffersBody;
        let mut sent = 0u64;
        let stream = &mut HoldBack {
            stream,
            held: held_back.then_some(&mut held),
        };
        loop {
            let chunk: Bytes = match block_on(body.next()) {
                Some(Ok(chunk))
                    if chunk.is_empty() && flaw == Flaw::SendsEmptyChunks && chunked =>
                {
                    if stream.write_all(b"0\r\n\r\n").is_err() {
                        return false;
                    }
                    continue;
                }
                Some(Ok(chunk)) if chunk.is_empty() => continue,
                Some(Ok(chunk)) => chunk,
                Some(Err(_)) if flaw == Flaw::FinishesFailedBody => break,
                // Aborts: the connection closes without ending the body.
                Some(Err(_)) => return false,
                None if flaw == Flaw::StopsAtLength && length.is_some_and(|n| sent < n) => {
                    return false
                }
                None => break,
            };
            if flaw == Flaw::StopsAtLength && length.is_some_and(|n| sent + chunk.len() as u64 > n)
            {
                // More than announced in one chunk: this server notices that.
                return false;
            }
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
            sent += chunk.len() as u64;
            if flaw == Flaw::StopsAtLength && length.is_some_and(|n| sent >= n) {
                // The announced bytes are out; this server never looks for more.
                break;
            }
            if flaw == Flaw::StopsAfterFirstChunk {
                // The response looks ended to this server; the connection goes with it.
                let _ = stream.flush();
                return false;
            }
        }
        let ended = !chunked || stream.write_all(b"0\r\n\r\n").is_ok();
        let sent = match stream.held.take() {
            Some(held) => stream.stream.write_all(held).is_ok(),
            None => true,
        };
        ended && sent && flaw != Flaw::ClosesInsteadOfChunking
    }

    /// The connection, or a buffer in front of it for a server that holds the body back.
    struct HoldBack<'a> {
        stream: &'a mut TcpStream,
        held: Option<&'a mut Vec<u8>>,
    }

    impl Write for HoldBack<'_> {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            match &mut self.held {
                Some(held) => {
                    held.extend_from_slice(bytes);
                    Ok(bytes.len())
                }
                None => self.stream.write(bytes),
            }
        }

        fn flush(&mut self) -> io::Result<()> {
            self.stream.flush()
        }
    }
}

use broken::Flaw;

/// A TCP proxy in front of the reference server that changes the bytes in one way: for the
/// checks a small blocking server cannot pass even without a flaw (chunked uploads,
/// `Expect: 100-continue`, HTTP/1.0 framing, noticing a client gone while the app waits).
mod proxy {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::thread;

    use rwgi_conformance::server_suite::{Address, Hosting, ServerHandle};
    use rwgi_server::Bind;

    /// What the proxy changes.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Fault {
        /// Nothing: the control.
        None,
        /// Answers `100 Continue` itself as soon as a request expects it.
        EarlyContinue,
        /// Flips the lowest bit of the first body byte of each connection's first request.
        CorruptsFirstBodyByte,
        /// Forwards an HTTP/1.0 request as HTTP/1.1, so the answer is framed for 1.1.
        UpgradesVersion,
        /// Keeps the connection to the server open when the client goes away.
        HoldsUpstreamOpen,
        /// Blanks out a `gzip` transfer coding before `chunked`, so the server takes the still
        /// coded body for a plain chunked one (what a lenient front end does).
        HidesTransferCoding,
    }

    pub fn start(fault: Fault) -> impl FnMut(Hosting) -> ServerHandle {
        let mut reference = super::reference(|| Bind::Tcp("127.0.0.1:0".into()));
        move |hosting| {
            let server = reference(hosting);
            let Address::Tcp(upstream) = server.address().clone() else {
                panic!("the reference server was bound to TCP");
            };
            let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
            let address = listener.local_addr().expect("a bound socket");
            let stopping = Arc::new(AtomicBool::new(false));
            let held = Arc::new(Mutex::new(Vec::new()));
            let (accepting, holder) = (Arc::clone(&stopping), Arc::clone(&held));
            thread::spawn(move || {
                for client in listener.incoming() {
                    if accepting.load(Ordering::SeqCst) {
                        return;
                    }
                    let (Ok(client), Ok(server)) = (client, TcpStream::connect(upstream)) else {
                        continue;
                    };
                    let holder = Arc::clone(&holder);
                    thread::spawn(move || relay(client, server, fault, &holder));
                }
            });
            ServerHandle::new(address).on_stop(move || {
                stopping.store(true, Ordering::SeqCst);
                let _ = TcpStream::connect(address);
                held.lock().expect("not poisoned").clear();
                drop(server);
            })
        }
    }

    fn relay(client: TcpStream, server: TcpStream, fault: Fault, held: &Mutex<Vec<TcpStream>>) {
        let (Ok(mut to_client), Ok(mut from_server)) = (client.try_clone(), server.try_clone())
        else {
            return;
        };
        let answers = thread::spawn(move || {
            let mut buffer = [0; 16384];
            while let Ok(n @ 1..) = from_server.read(&mut buffer) {
                if to_client.write_all(&buffer[..n]).is_err() {
                    return;
                }
            }
            let _ = to_client.shutdown(Shutdown::Write);
        });
        let (mut from_client, mut to_server) = (client, server);
        let mut head = Vec::new();
        // Where the first request's head ends, once seen; then whether its body was touched.
        let mut body_at: Option<usize> = None;
        let mut flipped = false;
        let mut buffer = [0; 16384];
        while let Ok(n @ 1..) = from_client.read(&mut buffer) {
            let bytes = &mut buffer[..n];
            let offset = head.len();
            if body_at.is_none() {
                head.extend_from_slice(bytes);
                if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                    body_at = Some(end + 4);
                    let text = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
                    if fault == Fault::EarlyContinue && text.contains("expect: 100-continue") {
                        let _ = from_client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
                    }
                    if fault == Fault::HidesTransferCoding {
                        if let Some(at) = text.find("transfer-encoding: gzip,") {
                            // Spaces where `gzip,` was: the same length, and only white space
                            // before `chunked`. `at` counts from the head's start.
                            let start = (at + 19).saturating_sub(offset);
                            for byte in bytes.iter_mut().skip(start).take(5) {
                                *byte = b' ';
                            }
                        }
                    }
                    if fault == Fault::UpgradesVersion {
                        if let Some(at) = text
                            .find(" http/1.0\r\n")
                            .or_else(|| text.ends_with(" http/1.0").then(|| text.len() - 9))
                        {
                            // `at` counts from the head's start; the digit may be in this read.
                            if let Some(digit) = (at + 8).checked_sub(offset) {
                                if let Some(byte) = bytes.get_mut(digit) {
                                    *byte = b'1';
                                }
                            }
                        }
                    }
                }
            }
            if let (Some(at), Fault::CorruptsFirstBodyByte, false) = (body_at, fault, flipped) {
                if let Some(byte) = bytes.get_mut(at.saturating_sub(offset)) {
                    *byte ^= 1;
                    flipped = true;
                }
            }
            if to_server.write_all(bytes).is_err() {
                break;
            }
        }
        if fault == Fault::HoldsUpstreamOpen {
            held.lock().expect("not poisoned").push(to_server);
        } else {
            let _ = to_server.shutdown(Shutdown::Write);
        }
        let _ = answers.join();
    }
}

use proxy::Fault;

/// [`fails_with`] for a fault of the proxy in front of the reference server.
fn proxied_fails_with(fault: Fault, check: &str, detail: &str) {
    let control = server_suite::run_checks(proxy::start(Fault::None), &[check]);
    assert!(
        control.is_ok_strict(),
        "the control fails:\n{}",
        control.summary()
    );
    let report = server_suite::run_checks(proxy::start(fault), &[check]);
    assert_failed_alone(&report, check, detail);
}

/// The reference server hosting the probe behind a layer that breaks one extension the
/// server offers, while the server still offers it: for the extension checks, which a small
/// blocking server cannot pass even without a flaw.
mod wrapped {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use bytes::Bytes;
    use rwgi::app::BoxApp;
    use rwgi::body::{Body, BoxBody};
    use rwgi::disconnect::Departure;
    use rwgi::http::{HeaderMap, HeaderName};
    use rwgi::interim::FlushHead;
    use rwgi::{App, Environ, Error, Input, Response, StartResponse};
    use rwgi_conformance::server_suite::{Hosting, ServerHandle};
    use rwgi_server::Bind;

    /// What the layer breaks.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Wrap {
        /// Nothing: the control.
        None,
        /// Hands the app a `Disconnect` that never completes.
        NeverNotifies,
        /// Hands the app a `Disconnect` that completed before the app ran.
        NotifiesAtOnce,
        /// Removes the app's `FlushHead` from its response.
        IgnoresFlush,
        /// Announces the body's trailers and then yields none.
        DropsTrailers,
        /// Announces a trailer field the body did not, so that it goes out too.
        SendsUnannounced,
        /// Hides the body's trailer names from the server.
        HidesTrailerNames,
        /// Gives the app a request body without its trailers.
        HidesRequestTrailers,
    }

    pub fn start(wrap: Wrap) -> impl FnMut(Hosting) -> ServerHandle {
        super::reference_hosting(
            || Bind::Tcp("127.0.0.1:0".into()),
            move |inner| BoxApp::new(Flawed { inner, wrap }),
        )
    }

    struct Flawed {
        inner: BoxApp,
        wrap: Wrap,
    }

    impl App for Flawed {
        type Body = BoxBody;

        async fn call(
            &self,
            mut environ: Environ,
            start: StartResponse,
        ) -> Result<Response<BoxBody>, Error> {
            let departure = Departure::new();
            match self.wrap {
                Wrap::NeverNotifies => {
                    environ.extensions_mut().insert(departure.disconnect());
                }
                Wrap::NotifiesAtOnce => {
                    departure.client_gone();
                    environ.extensions_mut().insert(departure.disconnect());
                }
                Wrap::HidesRequestTrailers => {
                    let input = environ.take_input();
                    environ.set_input(Input::from_body(Altered::forwarding(input, false)));
                }
                _ => {}
            }
            let mut response = self.inner.call(environ, start).await?;
            if self.wrap == Wrap::IgnoresFlush {
                response.extensions_mut().remove::<FlushHead>();
            }
            let wrap = self.wrap;
            Ok(response.map_body(|body| match wrap {
                Wrap::DropsTrailers => BoxBody::new(Altered::forwarding(body, false)),
                Wrap::SendsUnannounced => {
                    let mut names = body.trailer_names().to_vec();
                    names.push(HeaderName::from_static("x-probe-unannounced"));
                    BoxBody::new(Altered {
                        body,
                        names: Some(names),
                        trailers: true,
                    })
                }
                Wrap::HidesTrailerNames => BoxBody::new(Altered {
                    body,
                    names: Some(Vec::new()),
                    trailers: false,
                }),
                _ => body,
            }))
        }
    }

    /// A body with its trailer names replaced (`Some`) or passed on, and its trailers passed
    /// on or dropped.
    struct Altered<B> {
        body: B,
        names: Option<Vec<HeaderName>>,
        trailers: bool,
    }

    impl<B> Altered<B> {
        fn forwarding(body: B, trailers: bool) -> Self {
            Altered {
                body,
                names: None,
                trailers,
            }
        }
    }

    impl<B: Body + Unpin> futures_core::Stream for Altered<B> {
        type Item = Result<Bytes, Error>;

        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            Pin::new(&mut self.body).poll_next(cx)
        }
    }

    impl<B: Body + Unpin> Body for Altered<B> {
        fn content_length(&self) -> Option<u64> {
            self.body.content_length()
        }

        fn trailer_names(&self) -> &[HeaderName] {
            self.names
                .as_deref()
                .unwrap_or_else(|| self.body.trailer_names())
        }

        fn poll_trailers(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Result<Option<HeaderMap>, Error>> {
            if self.trailers {
                Pin::new(&mut self.body).poll_trailers(cx)
            } else {
                Poll::Ready(Ok(None))
            }
        }
    }
}

use wrapped::Wrap;

/// [`fails_with`] for a layer in front of the app on the reference server that breaks one of
/// the extensions the server offers.
fn wrapped_fails_with(wrap: Wrap, check: &str, detail: &str) {
    let control = server_suite::run_checks(wrapped::start(Wrap::None), &[check]);
    assert!(
        control.is_ok_strict(),
        "the control fails:\n{}",
        control.summary()
    );
    let report = server_suite::run_checks(wrapped::start(wrap), &[check]);
    assert_failed_alone(&report, check, detail);
}

/// Runs `check` against the server with `flaw` and against the same server without it: the
/// control passes, the flawed server fails that check alone, with `detail`.
fn fails_with(flaw: Flaw, check: &str, detail: &str) {
    assert_failed_alone(&control_then(flaw, check), check, detail);
}

/// Runs `check` against the blocking server without a flaw (it must pass), then with `flaw`;
/// returns the second report.
fn control_then(flaw: Flaw, check: &str) -> Report {
    let control = server_suite::run_checks(broken::start(Flaw::None), &[check]);
    assert!(
        control.is_ok_strict(),
        "the control fails:\n{}",
        control.summary()
    );
    server_suite::run_checks(broken::start(flaw), &[check])
}

/// As [`fails_with`], for a `flaw` that breaks a SHOULD: the check must warn with a detail that
/// starts with `detail` (whose first word is that requirement), and the report stay ok.
fn warns_with(flaw: Flaw, check: &str, detail: &str) {
    let report = control_then(flaw, check);
    let requirement = assert_alone(&report, check, Outcome::Warn, detail);
    assert!(rwgi_conformance::is_should(requirement), "{requirement}");
    assert_eq!(report.warned_requirements(), [requirement]);
    assert!(
        report.is_ok(),
        "a SHOULD not met leaves the report ok:\n{report}"
    );
    assert!(!report.is_ok_strict());
}

/// Requires `report` to hold exactly one result, the failure of `check` with a detail that
/// starts with `detail` (whose first word is the requirement broken).
fn assert_failed_alone(report: &Report, check: &str, detail: &str) {
    let requirement = assert_alone(report, check, Outcome::Fail, detail);
    assert!(!report.is_ok(), "{report}");
    assert!(report.failed_requirement(requirement));
}

/// Requires `report` to hold exactly one result, of `check` with `outcome` and a detail that
/// starts with `detail`; returns the requirement the detail names first.
fn assert_alone<'a>(report: &Report, check: &str, outcome: Outcome, detail: &'a str) -> &'a str {
    assert_eq!(report.results().len(), 1, "{report}");
    let result = &report.results()[0];
    assert_eq!((result.name, result.outcome), (check, outcome), "{report}");
    assert!(
        result.detail.starts_with(detail),
        "expected a detail starting {detail:?}, got {:?}",
        result.detail
    );
    detail.split(':').next().unwrap_or_default()
}

#[test]
fn a_server_that_decodes_the_path_fails_req_path_1() {
    fails_with(
        Flaw::DecodesPath,
        "vectors_paths",
        "REQ-PATH-1: vector `encoded_slash`: expected the app called with path_info \"/a%2Fb\" \
         (seen \"/a/b\")",
    );
    // Decoding before the server splits the path also breaks per-segment and single decoding.
    let report = server_suite::run_checks(broken::start(Flaw::DecodesPath), &["vectors_paths"]);
    let detail = &report.results()[0].detail;
    for expected in [
        "; REQ-PATH-4: vector `segments_with_encoded_slashes`: expected ",
        "; REQ-PATH-3: vector `decoded_exactly_once`: expected ",
    ] {
        assert!(detail.contains(expected), "{expected} not in {detail}");
    }
}

#[test]
fn a_server_that_sends_a_body_for_head_fails_req_srv_6() {
    fails_with(
        Flaw::BodyForHead,
        "head_no_body",
        "REQ-SRV-6: expected no body after the head of a HEAD answer of known length, seen \
         \"hello\" in front of the answer to a next request",
    );
}

#[test]
fn a_server_that_sends_the_head_early_fails_req_srv_4() {
    fails_with(
        Flaw::HeadBeforeFirstChunk,
        "nothing_sent_before_first_chunk",
        "REQ-SRV-4: expected nothing sent before the body's first chunk, so status 500 once the \
         body fails; seen status 200",
    );
    let report = server_suite::run_checks(
        broken::start(Flaw::HeadBeforeFirstChunk),
        &["nothing_sent_before_first_chunk"],
    );
    let detail = &report.results()[0].detail;
    assert!(
        detail.ends_with(": the head went out when the app called the callback (REQ-START-4)"),
        "{detail}"
    );
}

#[test]
fn a_server_that_forgets_a_body_it_stopped_polling_fails_req_srv_8() {
    fails_with(
        Flaw::ForgetsEndedBody,
        "body_dropped_after_completion",
        "REQ-SRV-8: expected the body dropped after a complete response of known length, seen \
         it still alive after 5s",
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
fn a_server_that_keeps_the_received_host_fails_req_env_14() {
    fails_with(
        Flaw::KeepsReceivedHost,
        "vectors_targets",
        "REQ-ENV-14: vector `absolute_form_overrides_host`: expected the app called with header \
         host",
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

#[test]
fn a_server_that_claims_one_thread_while_using_many_fails_req_conc_1_every_time() {
    for _ in 0..3 {
        fails_with(
            Flaw::ClaimsSingleThread,
            "multithread_consistent",
            "REQ-CONC-1: expected ServerInfo::multithread to be true, since two calls ran at once \
             on different threads; seen false",
        );
    }
}

#[test]
fn a_server_that_swaps_the_addresses_fails_req_env_10() {
    fails_with(
        Flaw::SwapsAddresses,
        "connection_addresses",
        "REQ-ENV-10: expected the peer address 127.0.0.1:",
    );
}

#[test]
fn a_server_that_resets_every_connection_fails_req_env_10_every_time() {
    // Whether the reset comes before or after the client reads the addresses, never a skip.
    for _ in 0..3 {
        let report = server_suite::run_checks(
            broken::start(Flaw::ResetsEveryConnection),
            &["connection_addresses"],
        );
        assert_failed_alone(&report, "connection_addresses", "REQ-ENV-10: expected ");
        assert_eq!(report.skips().count(), 0);
    }
    let report = server_suite::run_checks(
        broken::start(Flaw::ResetsEveryConnection),
        &["keep_alive", "app_error", "vectors_paths"],
    );
    assert_eq!(report.failures().count(), 3, "{report}");
}

#[test]
fn a_server_that_drops_pipelined_requests_fails_req_srv_3() {
    fails_with(
        Flaw::DropsPipelined,
        "pipelining",
        "REQ-SRV-3: expected the pipelined answers GET /p1, POST /p2 data, GET /p3 in order; \
         where \"POST /p2 data\" was due, seen ",
    );
}

#[test]
fn a_server_that_lets_panics_through_fails_req_err_4() {
    fails_with(
        Flaw::LetsPanicsThrough,
        "app_panic",
        "REQ-ERR-4: expected 500 for an app that panics, seen the connection was closed",
    );
}

/// REQ-SRV-11 is a SHOULD: a server that holds a chunk back is warned, by ID, and passes.
#[test]
fn a_server_that_buffers_the_body_warns_req_srv_11() {
    warns_with(
        Flaw::BuffersBody,
        "response_streams",
        "REQ-SRV-11: expected the first chunk sent while the body waits for its second, seen \
         nothing arrived before the timeout",
    );
}

#[test]
fn a_server_that_pads_a_short_upload_fails_req_input_2() {
    fails_with(
        Flaw::PadsShortBody,
        "input_client_gone",
        "REQ-INPUT-2: expected the body to yield an error when the client stops sending after \
         100 of 1000 bytes, seen it end normally after 1000 bytes",
    );
}

#[test]
fn a_server_that_takes_a_broken_chunked_body_for_an_empty_one_fails_req_input_2() {
    fails_with(
        Flaw::TreatsChunkedAsEmpty,
        "input_broken_chunked",
        "REQ-INPUT-2: expected the body to yield an error when the chunked coding breaks after 5 \
         bytes, seen it end normally after 0 bytes",
    );
}

#[test]
fn a_server_that_reads_a_partly_read_body_as_requests_fails_req_input_4() {
    fails_with(
        Flaw::LeavesBodyInStream,
        "input_partly_read",
        "REQ-INPUT-4: expected the body the app read partly to be discarded or the connection \
         closed, seen the app called for \"/smuggled\"",
    );
}

#[test]
fn a_server_that_reads_an_unread_body_as_requests_fails_req_input_4() {
    fails_with(
        Flaw::LeavesBodyInStream,
        "input_unread",
        "REQ-INPUT-4: expected the body the app left unread to be discarded or the connection \
         closed, seen the app called for \"/smuggled\"",
    );
}

#[test]
fn a_server_that_chunks_a_body_of_known_length_fails_req_srv_9() {
    fails_with(
        Flaw::ChunksEverything,
        "response_content_length",
        "REQ-SRV-9: expected the body \"first,second,third\" as Content-Length: 18, seen \
         Content-Length [], Transfer-Encoding [\"chunked\"]",
    );
}

#[test]
fn a_server_that_does_not_chunk_for_http_1_1_fails_req_srv_9() {
    fails_with(
        Flaw::ClosesInsteadOfChunking,
        "response_chunked",
        "REQ-SRV-9: expected the body \"first,second,third\" as a chunked body without \
         Content-Length, seen Content-Length [], Transfer-Encoding []",
    );
}

#[test]
fn a_server_that_sends_empty_chunks_fails_req_body_3() {
    fails_with(
        Flaw::SendsEmptyChunks,
        "response_empty_chunks",
        "REQ-BODY-3: expected the body \"abc\" from chunks a, empty, b, empty, empty, c of \
         unknown length, seen status 200 with a 1-byte body \"a\"",
    );
}

#[test]
fn a_server_that_leaves_content_length_off_head_answers_fails_req_srv_6() {
    fails_with(
        Flaw::DropsLengthOnHead,
        "head_content_length",
        "REQ-SRV-6: expected Content-Length: 10 on the HEAD answer for a body of 10 bytes, seen \
         Content-Length [], Transfer-Encoding []",
    );
}

#[test]
fn a_server_that_frames_a_204_fails_req_srv_6() {
    fails_with(
        Flaw::FramesBodiless,
        "no_body_204_304",
        "REQ-SRV-6: expected no body after the head of a 204 answer, seen \"0\\r\\n\\r\\n\" in \
         front of the answer to a next request",
    );
}

#[test]
fn a_server_that_joins_repeated_headers_fails_req_srv_2() {
    fails_with(
        Flaw::JoinsRepeatedHeaders,
        "repeated_response_headers",
        "REQ-SRV-2: expected status 203 with the field lines set-cookie: a=1, set-cookie: b=2",
    );
}

/// The hop-by-hop header names, written out from RFC 9110 §7.6.1 and PEP 3333 rather than
/// taken from the code under test.
const HOP_BY_HOP_NAMES: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

#[test]
fn a_server_that_passes_any_one_hop_by_hop_header_fails_req_srv_5() {
    for name in HOP_BY_HOP_NAMES {
        let report = server_suite::run_checks(
            broken::start(Flaw::PassesHeader(name)),
            &["illegal_head_hop_by_hop"],
        );
        assert_failed_alone(
            &report,
            "illegal_head_hop_by_hop",
            &format!(
                "REQ-SRV-5: expected 500 in place of a head that breaks REQ-RESP-2 (the app set \
                 `{name}`), seen "
            ),
        );
    }
}

#[test]
fn a_server_that_sends_an_informational_final_status_fails_req_srv_5() {
    fails_with(
        Flaw::PassesHopByHop,
        "illegal_head_informational",
        "REQ-SRV-5: expected 500 in place of a head that breaks REQ-RESP-1 (the app answered \
         100), seen ",
    );
}

#[test]
fn a_server_that_sends_a_malformed_content_length_fails_req_srv_5() {
    fails_with(
        Flaw::PassesHopByHop,
        "illegal_head_content_length",
        "REQ-SRV-5: expected 500 in place of a head that breaks REQ-RESP-3 (Content-Length: \
         abc), seen ",
    );
}

#[test]
fn a_server_that_sends_a_204_with_a_length_fails_req_srv_5() {
    fails_with(
        Flaw::PassesHopByHop,
        "illegal_head_bodiless",
        "REQ-SRV-5: expected 500 in place of a head that breaks REQ-RESP-4 (a 204 with \
         Content-Length: 0), seen status 204",
    );
}

#[test]
fn a_server_that_sends_the_head_before_a_failing_body_fails_req_err_2() {
    fails_with(
        Flaw::HeadBeforeFirstChunk,
        "error_before_first_chunk",
        "REQ-ERR-2: expected 500 for a body that fails at once, seen status 200",
    );
}

#[test]
fn a_proxy_that_hides_a_client_gone_fails_req_srv_8_on_disconnect() {
    proxied_fails_with(
        Fault::HoldsUpstreamOpen,
        "body_dropped_on_disconnect",
        "REQ-SRV-8: expected the body dropped once the client went away while the body streams \
         without end, seen it still alive after 5s",
    );
}

#[test]
fn a_server_that_rewrites_absolute_form_fails_req_env_4() {
    fails_with(
        Flaw::RewritesAbsoluteForm,
        "vectors_targets",
        "REQ-ENV-4: vector `absolute_form_overrides_host`: expected the app called with \
         server_name \"target.example\" (seen \"other.example\")",
    );
    // The scheme of an https absolute-form target is lost with its authority.
    let report = server_suite::run_checks(
        broken::start(Flaw::RewritesAbsoluteForm),
        &["vectors_targets"],
    );
    let detail = &report.results()[0].detail;
    assert!(
        detail.contains("; REQ-ENV-8: vector `absolute_form_https`: expected the app called with "),
        "{detail}"
    );
}

#[test]
fn a_server_that_drops_repeated_request_headers_fails_req_env_7() {
    fails_with(
        Flaw::DropsRepeatedHeaders,
        "vectors_headers",
        "REQ-ENV-7: vector `repeated_header`: expected the app called with header accept \
         Some([\"text/html\", \"*/*\"]) (seen Some([\"*/*\"]))",
    );
}

#[test]
fn a_server_that_ignores_the_root_path_fails_req_path_6() {
    fails_with(
        Flaw::IgnoresRootPath,
        "vectors_mount",
        "REQ-PATH-6: vector `mount_prefix`: expected the app called with script_name \"/app\" \
         (seen \"\")",
    );
}

#[test]
fn a_proxy_that_answers_100_continue_itself_fails_req_input_5() {
    proxied_fails_with(
        Fault::EarlyContinue,
        "expect_continue",
        "REQ-INPUT-5: expected the app's answer without 100 Continue when the app does not read \
         the body, seen the interim statuses [100]",
    );
}

#[test]
fn a_proxy_that_corrupts_an_upload_fails_req_input_1() {
    proxied_fails_with(
        Fault::CorruptsFirstBodyByte,
        "input_large",
        "REQ-INPUT-1: expected the app to read all 8388608 bytes of a Content-Length upload, seen \
         8388608 bytes (not the bytes sent)",
    );
}

#[test]
fn a_proxy_that_corrupts_request_bodies_fails_the_body_vectors_with_req_input_1() {
    proxied_fails_with(
        Fault::CorruptsFirstBodyByte,
        "vectors_bodies",
        "REQ-INPUT-1: vector `content_length`: expected the app called with input \"name=rwgi\" \
         (seen \"oame=rwgi\")",
    );
}

#[test]
fn a_proxy_that_hides_a_transfer_coding_fails_req_env_13() {
    proxied_fails_with(
        Fault::HidesTransferCoding,
        "vectors_bodies",
        "REQ-ENV-13: vector `transfer_coding_other_than_chunked`: expected status 501 without \
         calling the app",
    );
}

#[test]
fn a_proxy_that_answers_http_1_0_as_1_1_fails_req_srv_9() {
    proxied_fails_with(
        Fault::UpgradesVersion,
        "response_close_delimited",
        "REQ-SRV-9: expected the body \"first,second,third\" as a body delimited by closing the \
         connection, without Content-Length or chunked coding, for an HTTP/1.0 client, seen \
         Content-Length [], Transfer-Encoding [\"chunked\"]",
    );
}

#[test]
fn a_proxy_that_hides_a_client_gone_fails_req_conc_2() {
    proxied_fails_with(
        Fault::HoldsUpstreamOpen,
        "app_dropped_on_disconnect",
        "REQ-CONC-2: expected the app's future dropped once the client went away, seen it still \
         pending after 5s",
    );
}

#[test]
fn a_server_that_decodes_the_query_fails_req_env_5() {
    fails_with(
        Flaw::DecodesQuery,
        "vectors_paths",
        "REQ-ENV-5: vector `query_string_raw`: expected ",
    );
}

#[test]
fn a_server_that_adds_a_header_fails_req_env_12() {
    let report = server_suite::run_checks(
        broken::start(Flaw::AddsForwardedHeader),
        &["vectors_headers"],
    );
    // Every header vector breaks; the one about added headers names REQ-ENV-12.
    assert_failed_alone(
        &report,
        "vectors_headers",
        "REQ-ENV-7: vector `names_lower_cased`",
    );
    let detail = &report.results()[0].detail;
    assert!(
        detail.contains(
            "; REQ-ENV-12: vector `headers_as_sent`: expected the app called with header \
             x-forwarded-proto None (seen Some([\"http\"]))"
        ),
        "{detail}"
    );
}

#[test]
fn a_server_that_stops_after_the_first_chunk_fails_req_body_1() {
    fails_with(
        Flaw::StopsAfterFirstChunk,
        "response_streams",
        "REQ-BODY-1: expected the second chunk once the body yields it, seen ",
    );
}

#[test]
fn a_server_that_calls_the_app_twice_fails_req_app_3() {
    fails_with(
        Flaw::CallsTwice,
        "pipelining",
        "REQ-APP-3: expected one call of the app per request, 3 in all, seen 6",
    );
}

#[test]
fn a_server_that_rewrites_underscores_fails_req_env_7() {
    // The header the server changed is what breaks, before the CGI variable that follows it.
    let report = server_suite::run_checks(
        broken::start(Flaw::RewritesUnderscores),
        &["vectors_headers"],
    );
    assert_failed_alone(
        &report,
        "vectors_headers",
        "REQ-ENV-7: vector `underscore_twin`: expected the app called with header \
         x-forwarded-for Some([\"10.0.0.1\"]) (seen Some([\"10.0.0.1\", \"6.6.6.6\"]))",
    );
}

#[test]
fn a_server_that_drops_content_type_fails_req_env_7() {
    fails_with(
        Flaw::DropsContentType,
        "vectors_headers",
        "REQ-ENV-7: vector `content_type`: expected the app called with header content-type \
         Some([\"text/plain; charset=utf-8\"]) (seen None), CGI CONTENT_TYPE",
    );
}

#[test]
fn a_server_that_answers_bad_targets_with_200_fails_req_env_6_and_req_env_2() {
    let report = server_suite::run_checks(
        broken::start(Flaw::AnswersBadRequestsWith200),
        &["vectors_targets"],
    );
    assert_failed_alone(
        &report,
        "vectors_targets",
        "REQ-ENV-6: vector `asterisk_get`",
    );
    let detail = &report.results()[0].detail;
    assert!(
        detail.contains("; REQ-ENV-2: vector `empty_target`: expected status 400"),
        "{detail}"
    );
}

#[test]
fn a_server_that_answers_a_raw_non_utf8_target_with_200_fails_req_path_7() {
    let report = server_suite::run_checks(
        broken::start(Flaw::AnswersBadRequestsWith200),
        &["vectors_paths"],
    );
    assert_failed_alone(
        &report,
        "vectors_paths",
        "REQ-PATH-7: vector `raw_non_utf8`: expected status 400",
    );
}

#[test]
fn a_server_that_varies_its_server_info_fails_req_env_9() {
    fails_with(
        Flaw::VariesServerInfo,
        "multithread_consistent",
        "REQ-ENV-9: expected the same ServerInfo in every call, seen ",
    );
}

#[test]
fn a_server_that_refuses_unknown_methods_fails_req_env_1() {
    fails_with(
        Flaw::RefusesUnknownMethods,
        "vectors_targets",
        "REQ-ENV-1: vector `extension_method`: expected ",
    );
}

#[test]
fn a_server_that_calls_every_request_http_1_1_fails_req_env_11() {
    let report = server_suite::run_checks(broken::start(Flaw::ReportsHttp11), &["vectors_hosts"]);
    // An HTTP/1.1 request without Host is refused, so the first vector to break is about Host.
    assert_failed_alone(
        &report,
        "vectors_hosts",
        "REQ-ENV-4: vector `http10_without_host`",
    );
    let detail = &report.results()[0].detail;
    assert!(
        detail.contains(
            "; REQ-ENV-11: vector `http10_with_host`: expected the app called with version \
             \"HTTP/1.0\" (seen \"HTTP/1.1\")"
        ),
        "{detail}"
    );
}

#[test]
fn a_server_that_answers_as_http_1_0_fails_req_srv_13() {
    fails_with(
        Flaw::AnswersAsHttp10,
        "status_line_version",
        "REQ-SRV-13: expected the status line HTTP/1.1 200 in answer to an HTTP/1.1 request, \
         seen HTTP/1.0 200",
    );
}

#[test]
fn a_server_that_refuses_a_304_with_the_get_length_fails_req_resp_5() {
    fails_with(
        Flaw::RefusesLengthOn304,
        "no_body_204_304",
        "REQ-RESP-5: expected no body after the head of a 304 answer with the Content-Length: 42 \
         of the GET answer, seen status 500",
    );
}

#[test]
fn a_server_that_sends_a_body_for_205_fails_req_srv_5() {
    fails_with(
        Flaw::AllowsBodyOn205,
        "illegal_head_bodiless",
        "REQ-SRV-5: expected 500 in place of a head that breaks REQ-RESP-6 (a 205 with a body), \
         seen status 205",
    );
}

#[test]
fn a_server_that_sends_the_head_early_for_a_known_length_fails_req_err_2() {
    fails_with(
        Flaw::HeadEarlyForKnownLength,
        "error_before_first_chunk",
        "REQ-ERR-2: expected 500 for a body of known length (10 bytes) that fails at once, seen \
         status 200",
    );
}

#[test]
fn a_server_that_sends_the_head_early_for_a_known_length_fails_req_srv_4() {
    fails_with(
        Flaw::HeadEarlyForKnownLength,
        "nothing_sent_before_first_chunk",
        "REQ-SRV-4: expected nothing sent before the body's first chunk, so status 500 once the \
         body of known length fails; seen status 200",
    );
}

#[test]
fn a_server_that_stops_at_the_announced_length_fails_req_srv_7() {
    fails_with(
        Flaw::StopsAtLength,
        "content_length_mismatch",
        "REQ-SRV-7: expected the connection aborted when a body announced with Content-Length: 10 \
         yields exactly 10 bytes and then 2 more, seen a complete response and then \"HTTP/\" on \
         the same connection: the excess went unnoticed",
    );
}

#[test]
fn a_server_that_hides_the_peer_address_fails_req_env_10_once() {
    fails_with(
        Flaw::HidesPeer,
        "connection_addresses",
        "REQ-ENV-10: expected the peer address 127.0.0.1:",
    );
    let report =
        server_suite::run_checks(broken::start(Flaw::HidesPeer), &["connection_addresses"]);
    assert!(
        report.results()[0]
            .detail
            .contains(" in the environ, seen none and 127.0.0.1:"),
        "{report}"
    );
    // The vectors leave the address's presence to that one check (the body vectors need
    // chunked uploads, which are beyond this server even without a flaw).
    let vectors: Vec<&str> = CHECKS
        .iter()
        .map(|check| check.name)
        .filter(|name| name.starts_with("vectors_") && *name != "vectors_bodies")
        .collect();
    let report = server_suite::run_checks(broken::start(Flaw::HidesPeer), &vectors);
    assert_eq!(report.results().len(), 5, "{report}");
    assert!(report.is_ok_strict(), "{report}");
}

#[test]
fn a_server_that_calls_the_app_for_connect_fails_req_srv_12() {
    fails_with(
        Flaw::CallsAppForConnect,
        "vectors_targets",
        "REQ-SRV-12: vector `authority_form_connect`: expected status 501 without calling the \
         app; seen status 501 after 1 call(s) of the app",
    );
}

#[test]
fn a_server_that_reports_every_outcome_completed_fails_req_outcome_2() {
    fails_with(
        Flaw::ReportsEveryOutcomeCompleted,
        "response_outcome",
        "REQ-OUTCOME-2: after a client gone in the middle of the body, expected the outcome \
         client-gone with status Some(200) after ",
    );
}

#[test]
fn a_server_that_sends_a_file_range_from_the_start_of_the_file_fails_req_file_2() {
    fails_with(
        Flaw::SendsFileFromStart,
        "file_body_range",
        "REQ-FILE-2: expected the 200000 bytes from 1000 of a 300000-byte file for GET /range, \
         with Content-Length: 200000, seen status 200 with Content-Length Some(\"200000\") and \
         200000 body bytes, differing from byte 0 on",
    );
}

#[test]
fn a_server_that_never_completes_gone_fails_req_disc_1() {
    wrapped_fails_with(
        Wrap::NeverNotifies,
        "disconnect_notified",
        "REQ-DISC-1: expected gone() complete once the client went away while the app works on \
         its answer, seen it pending after 5s",
    );
}

#[test]
fn a_server_that_completes_gone_while_the_client_waits_fails_req_disc_2() {
    wrapped_fails_with(
        Wrap::NotifiesAtOnce,
        "disconnect_notified",
        "REQ-DISC-2: expected gone() pending while the app works on its answer and the client \
         waits, seen it complete",
    );
}

#[test]
fn a_server_that_ignores_flush_head_fails_req_interim_3() {
    wrapped_fails_with(
        Wrap::IgnoresFlush,
        "head_flushed",
        "REQ-INTERIM-3: expected the head before the first chunk of a response with `FlushHead`, \
         seen ",
    );
}

#[test]
fn a_server_that_drops_interim_responses_fails_req_interim_2() {
    fails_with(
        Flaw::DropsInterim,
        "interim_responses",
        "REQ-INTERIM-2: expected a 103 and then the final 200, seen interim responses [] and \
         status 200",
    );
}

#[test]
fn a_server_that_pads_a_file_that_shrank_fails_req_file_3() {
    fails_with(
        Flaw::PadsShortFile,
        "file_body_short",
        "REQ-FILE-3: expected a response cut short (or a 500) for a file body of 300000 bytes whose \
         file shrank to 30000, seen status 200 with a 300000-byte body ",
    );
}

#[test]
fn a_server_without_the_outcome_skips_the_outcome_check_without_claiming_it() {
    // Not asked for the outcome, the reference server offers no handle: nothing is claimed.
    let report = server_suite::run_checks(
        |hosting: Hosting| {
            let (app, _) = hosting.into_parts();
            let server = Server::builder()
                .bind("127.0.0.1:0")
                .threads(1)
                .serve(app)
                .expect("the reference server binds");
            let address = server.local_addr().expect("a TCP address");
            ServerHandle::new(address).on_stop(move || server.shutdown())
        },
        &["response_outcome"],
    );
    let result = &report.results()[0];
    assert_eq!(result.outcome, Outcome::Skip, "{}", report.summary());
    assert!(
        result.detail.starts_with(server_suite::NOT_OFFERED),
        "{}",
        result.detail
    );
}

#[test]
fn a_server_that_never_reports_the_outcome_fails_req_outcome_1() {
    fails_with(
        Flaw::ForgetsOutcome,
        "response_outcome",
        "REQ-OUTCOME-1: after a complete response, expected the outcome callback to run once, \
         seen it not run within 5s",
    );
}

#[test]
fn a_server_that_offers_upgrades_unasked_fails_req_upgrade_1() {
    fails_with(
        Flaw::OffersUpgradeUnasked,
        "upgrade_offered_when_asked",
        "REQ-UPGRADE-1: expected no upgrade offer in the environ for a plain GET, seen one",
    );
}

#[test]
fn a_server_that_drops_response_trailers_fails_req_trail_3() {
    wrapped_fails_with(
        Wrap::DropsTrailers,
        "response_trailers",
        "REQ-TRAIL-3: expected the trailer `x-probe-sum: 7` after a chunked body, seen trailers \
         [] (chunked: true)",
    );
}

#[test]
fn a_server_that_starts_the_app_per_connection_fails_req_life_1() {
    fails_with(
        Flaw::StartsAppPerConnection,
        "lifespan_state",
        "REQ-LIFE-1: expected one startup per process, seen requests of process ",
    );
}

#[test]
fn a_server_that_drops_the_bytes_sent_with_the_upgrade_request_fails_req_upgrade_3() {
    fails_with(
        Flaw::DropsBytesAfterUpgradeRequest,
        "upgrade_hands_over_connection",
        "REQ-UPGRADE-3: expected a 101 with Upgrade: rwgi-probe, then \"HELLO\" for the \"hello\" \
         sent with the request, seen \"\" (nothing arrived before the timeout)",
    );
}

#[test]
fn a_server_that_sends_unannounced_trailers_fails_req_trail_1() {
    wrapped_fails_with(
        Wrap::SendsUnannounced,
        "response_trailers",
        "REQ-TRAIL-1: expected only the announced trailer fields, seen `x-probe-unannounced` too",
    );
}

#[test]
fn a_server_that_forgets_the_lifespan_state_fails_req_life_2() {
    fails_with(
        Flaw::ForgetsStateAfterFirstRequest,
        "lifespan_state",
        "REQ-LIFE-2: expected every request to carry the lifespan's state, seen request 2 of 3 \
         without it",
    );
}

#[test]
fn a_server_that_accepts_any_trailer_name_fails_req_trail_2() {
    wrapped_fails_with(
        Wrap::HidesTrailerNames,
        "illegal_trailer_names",
        "REQ-TRAIL-2: expected 500 for a body that announces `content-length` as a trailer, seen \
         status 200",
    );
}

#[test]
fn a_server_that_drops_request_trailers_fails_req_trail_4() {
    wrapped_fails_with(
        Wrap::HidesRequestTrailers,
        "request_trailers",
        "REQ-TRAIL-4: expected the app to read the trailer `x-probe-trailer: 9` after the body, \
         seen Some([])",
    );
}

#[test]
fn a_server_that_runs_the_handler_of_a_refused_101_fails_req_upgrade_3() {
    fails_with(
        Flaw::RunsRefusedUpgrade,
        "upgrade_hands_over_connection",
        "REQ-UPGRADE-3: expected a 500 for a 101 that carries a Content-Length (REQ-UPGRADE-2), \
         and no handler run, seen the handler run after the 500",
    );
}
