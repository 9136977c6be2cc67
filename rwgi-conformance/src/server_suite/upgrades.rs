//! Checks of connection upgrades (§14.10): which requests get an offer, and the connection
//! handed over after a `101`.
//!
//! The probe speaks a made-up protocol, `rwgi-probe`: its handler sends back every byte it
//! reads, upper-cased, and ends the connection after echoing `BYE`. A server that makes no
//! offer for a request that asks for one declares that it does not do upgrades: the checks
//! that need an upgrade skip then.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue, StatusCode};
use rwgi::app::app_fn;
use rwgi::body::{BoxBody, Full};
use rwgi::upgrade::{Upgrade, Upgraded};
use rwgi::{Environ, StartResponse};

use super::client::{preview, Connection, Quiet};
use super::{fail, Checked, Problem, Suite, NOT_OFFERED};

const PROTOCOL: &str = "rwgi-probe";

/// The request that asks for the probe's protocol; `extra` is sent with it, in the same write.
fn asking(target: &str, extra: &[u8]) -> Vec<u8> {
    let mut bytes = format!(
        "GET {target} HTTP/1.1\r\nHost: probe.test\r\nConnection: keep-alive, Upgrade\r\n\
         Upgrade: {PROTOCOL}\r\n\r\n"
    )
    .into_bytes();
    bytes.extend_from_slice(extra);
    bytes
}

/// The probe's handler: echoes, upper-cased, until it echoed `BYE`; sets `ran` when it starts.
async fn echo(mut io: Upgraded, ran: Arc<AtomicBool>) {
    ran.store(true, Ordering::SeqCst);
    let mut seen = Vec::new();
    let mut buf = [0; 1024];
    loop {
        let n = match io.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let upper = buf[..n].to_ascii_uppercase();
        if io.write_all(&upper).await.is_err() {
            return;
        }
        seen.extend_from_slice(&upper);
        if seen.windows(3).any(|w| w == b"BYE") {
            let _ = io.close().await;
            return;
        }
    }
}

/// The probe app: `offer` answers whether the environ held an offer; `/upgrade` takes the
/// offer (answering `no offer` without one); `/broken` takes it but adds a `Content-Length`,
/// which the server must refuse with a `500` (REQ-UPGRADE-2), not run the handler for.
fn upgrade_app(ran: Arc<AtomicBool>) -> impl rwgi::App {
    app_fn(move |mut environ: Environ, start: StartResponse| {
        let ran = Arc::clone(&ran);
        async move {
            let offer = environ.extensions_mut().remove::<Upgrade>();
            let text = match (environ.path_info(), offer) {
                ("/offer", Some(_)) => "offered",
                (_, None) => "no offer",
                (path, Some(offer)) => {
                    let mut headers = HeaderMap::new();
                    if path == "/broken" {
                        headers.insert("content-length", HeaderValue::from_static("0"));
                    }
                    let response = offer.accept(start, PROTOCOL, headers, move |io| echo(io, ran));
                    return Ok(response.map_body(BoxBody::new));
                }
            };
            Ok(start
                .start(StatusCode::OK, HeaderMap::new())
                .body(BoxBody::new(Full::new(text))))
        }
    })
}

/// Sends `request` on a new connection and reads the answer's status and body text.
fn ask(suite: &mut Suite<'_>, id: &str, request: &[u8]) -> Result<(u16, String), Problem> {
    let (response, _) = suite.exchange(request).map_err(|e| fail(id, e))?;
    Ok((
        response.status,
        String::from_utf8_lossy(&response.body).into_owned(),
    ))
}

/// An upgrade is offered only for an HTTP/1.1 request with `Upgrade` and `Connection:
/// upgrade` (REQ-UPGRADE-1).
pub(super) fn upgrade_offered_when_asked(suite: &mut Suite<'_>) -> Checked {
    const ID: &str = "REQ-UPGRADE-1";
    suite.needs_app_in_process("upgrades")?;
    suite
        .probe
        .set(super::probe::in_process_app(upgrade_app(Arc::default())));
    let unasked: [(&str, String); 4] = [
        (
            "a plain GET",
            "GET /offer HTTP/1.1\r\nHost: probe.test\r\n\r\n".into(),
        ),
        (
            "a GET with Upgrade but without Connection: upgrade",
            format!("GET /offer HTTP/1.1\r\nHost: probe.test\r\nUpgrade: {PROTOCOL}\r\n\r\n"),
        ),
        (
            "a GET with Connection: upgrade but without Upgrade",
            "GET /offer HTTP/1.1\r\nHost: probe.test\r\nConnection: upgrade\r\n\r\n".into(),
        ),
        (
            "an HTTP/1.0 GET with both",
            format!(
                "GET /offer HTTP/1.0\r\nHost: probe.test\r\nConnection: upgrade\r\n\
                 Upgrade: {PROTOCOL}\r\n\r\n"
            ),
        ),
    ];
    for (what, request) in unasked {
        let (status, text) = ask(suite, ID, request.as_bytes())?;
        if text == "offered" {
            return Err(fail(
                ID,
                format!("expected no upgrade offer in the environ for {what}, seen one (status {status})"),
            ));
        }
    }
    Ok(())
}

/// After the app's `101` the connection is the handler's: it reads the bytes the client sent
/// after the request (those that came with it too), writes to the client, and the connection
/// closes when it ends; a `101` the server refuses runs no handler (REQ-UPGRADE-3).
pub(super) fn upgrade_hands_over_connection(suite: &mut Suite<'_>) -> Checked {
    const ID: &str = "REQ-UPGRADE-3";
    let ran = Arc::new(AtomicBool::new(false));
    suite.needs_app_in_process("upgrades")?;
    suite
        .probe
        .set(super::probe::in_process_app(upgrade_app(Arc::clone(&ran))));
    let expected = format!(
        "a 101 with Upgrade: {PROTOCOL}, then \"HELLO\" for the \"hello\" sent with the request"
    );
    let mut connection = suite.connect().map_err(|e| fail(ID, e))?;
    connection
        .send(&asking("/upgrade", b"hello"))
        .map_err(|e| fail(ID, format!("the request could not be sent ({e})")))?;
    let response = connection
        .response("GET")
        .map_err(|e| fail(ID, format!("expected {expected}, seen {e}")))?;
    if response.status != 101 && String::from_utf8_lossy(&response.body) == "no offer" {
        return Err(Problem::Skip(format!(
            "{NOT_OFFERED}upgrades: no rwgi::upgrade::Upgrade in the environ of a request that \
             asked for one"
        )));
    }
    let upgrade = response.header("upgrade");
    if response.status != 101 || upgrade.as_deref() != Some(PROTOCOL) {
        return Err(fail(
            ID,
            format!(
                "expected {expected}, seen {} with Upgrade {upgrade:?}",
                response.describe()
            ),
        ));
    }
    read_echo(&mut connection, b"HELLO", &expected)?;
    connection
        .send(b"bye")
        .map_err(|e| fail(ID, format!("\"bye\" could not be sent ({e})")))?;
    read_echo(&mut connection, b"BYE", "\"BYE\" for \"bye\"")?;
    match connection.closed() {
        Ok(()) => {}
        Err(quiet) => {
            return Err(fail(
                ID,
                format!("expected the connection closed once the handler ended, seen {quiet}"),
            ))
        }
    }
    refused_runs_nothing(suite, &ran)
}

/// Reads `echo` off the upgraded connection.
fn read_echo(connection: &mut Connection, echo: &[u8], expected: &str) -> Checked {
    let (bytes, end) = connection.up_to(echo.len());
    if bytes != echo {
        let how = match end {
            Ok(()) => String::new(),
            Err(error) => format!(" ({error})"),
        };
        return Err(fail(
            "REQ-UPGRADE-3",
            format!("expected {expected}, seen {:?}{how}", preview(&bytes)),
        ));
    }
    Ok(())
}

/// A `101` with a `Content-Length` breaks REQ-UPGRADE-2: the server answers `500`, and the
/// handler must not run, neither then nor when the connection ends.
fn refused_runs_nothing(suite: &mut Suite<'_>, ran: &AtomicBool) -> Checked {
    const ID: &str = "REQ-UPGRADE-3";
    ran.store(false, Ordering::SeqCst);
    let mut connection = suite.connect().map_err(|e| fail(ID, e))?;
    connection
        .send(&asking("/broken", b"hello"))
        .map_err(|e| fail(ID, format!("the request could not be sent ({e})")))?;
    let expected =
        "a 500 for a 101 that carries a Content-Length (REQ-UPGRADE-2), and no handler run";
    let response = connection
        .response("GET")
        .map_err(|e| fail(ID, format!("expected {expected}, seen {e}")))?;
    if response.status != 500 {
        return Err(fail(
            ID,
            format!("expected {expected}, seen {}", response.describe()),
        ));
    }
    // Whatever the server does with the connection now, the handler stays unrun; the end of
    // the connection is where a server might still hand it over.
    let quiet = connection.quiet(Duration::from_millis(200));
    drop(connection);
    std::thread::sleep(Duration::from_millis(200));
    if ran.load(Ordering::SeqCst) {
        let sent = match quiet {
            Quiet::Sent(bytes) => format!(" (and sent {:?})", preview(&bytes)),
            _ => String::new(),
        };
        return Err(fail(
            ID,
            format!("expected {expected}, seen the handler run after the 500{sent}"),
        ));
    }
    Ok(())
}
