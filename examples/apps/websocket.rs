//! A WebSocket echo app (spec §14.10), with `tokio-tungstenite` speaking the protocol.
//!
//! - `GET /ws` with a WebSocket handshake (RFC 6455 §4.2): the app takes the server's upgrade
//!   offer, answering `101` with `Sec-WebSocket-Accept`, and its handler then echoes every text
//!   and binary message back until the client closes. Without an offer (a server that cannot
//!   hand connections over, or HTTP/2), `501 Not Implemented`: the endpoint has nothing else to
//!   offer (REQ-UPGRADE-4). A handshake that is not one (no key, another version) is a `400`.
//! - `GET /`: a page whose script connects to `/ws` (relative to where the app is mounted).
//!
//! The core's [`Upgraded`] has no runtime's traits; [`TokioUpgraded`] adapts it to tokio's
//! `AsyncRead` and `AsyncWrite` in a few lines, which is all `tokio-tungstenite` needs, so the
//! app runs on any rwgi server. (On `rwgi-server` alone, `Upgraded::downcast` to
//! `rwgi_server::UpgradedIo` gives the server's tokio I/O without the adapter.)

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_util::{SinkExt, StreamExt};
use rwgi::app::app_fn;
use rwgi::body::{BoxBody, Full};
use rwgi::http::header::{
    CONTENT_TYPE, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION,
};
use rwgi::http::{HeaderMap, HeaderValue, Method, StatusCode};
use rwgi::upgrade::{Io, Upgrade, Upgraded};
use rwgi::{App, Environ, Error, Response, StartResponse};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// The app.
pub fn app() -> impl App {
    app_fn(answer)
}

async fn answer(mut environ: Environ, start: StartResponse) -> Result<Response<BoxBody>, Error> {
    let offer = environ.extensions_mut().remove::<Upgrade>();
    match (environ.method(), environ.path_info()) {
        (&Method::GET, "/ws") => Ok(handshake(&environ, offer, start)),
        (&Method::GET, "/") => Ok(text(
            start,
            StatusCode::OK,
            "text/html; charset=utf-8",
            PAGE,
        )),
        _ => Ok(text(
            start,
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "Not Found\n",
        )),
    }
}

/// The server side of the opening handshake (RFC 6455 §4.2.2).
fn handshake(environ: &Environ, offer: Option<Upgrade>, start: StartResponse) -> Response<BoxBody> {
    let plain = "text/plain; charset=utf-8";
    let headers = environ.headers();
    let key = headers.get(SEC_WEBSOCKET_KEY);
    let version = headers
        .get(SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes);
    let Some(key) = key.filter(|_| version == Some(b"13")) else {
        return text(
            start,
            StatusCode::BAD_REQUEST,
            plain,
            "expected a WebSocket handshake\n",
        );
    };
    let Some(offer) = offer.filter(|offer| offer.asks_for("websocket")) else {
        // No offer: this server cannot hand the connection over (REQ-UPGRADE-4).
        let why = "this server does not hand connections over to apps\n";
        return text(start, StatusCode::NOT_IMPLEMENTED, plain, why);
    };
    let mut headers = HeaderMap::new();
    let accept = derive_accept_key(key.as_bytes());
    headers.insert(
        SEC_WEBSOCKET_ACCEPT,
        HeaderValue::try_from(accept).expect("base64"),
    );
    offer
        .accept(start, "websocket", headers, echo)
        .map_body(BoxBody::new)
}

/// Runs once the `101` is out: echoes messages until the client closes.
async fn echo(io: Upgraded) {
    let mut socket = WebSocketStream::from_raw_socket(TokioUpgraded(io), Role::Server, None).await;
    while let Some(Ok(message)) = socket.next().await {
        let reply = match message {
            Message::Text(_) | Message::Binary(_) => message,
            // tungstenite answers pings and close frames itself.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            Message::Close(_) => break,
        };
        if socket.send(reply).await.is_err() {
            break;
        }
    }
}

fn text(
    start: StartResponse,
    status: StatusCode,
    content_type: &'static str,
    body: &'static str,
) -> Response<BoxBody> {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    start
        .start(status, headers)
        .body(BoxBody::new(Full::new(body)))
}

/// The core's upgraded connection with tokio's I/O traits.
pub struct TokioUpgraded(pub Upgraded);

impl AsyncRead for TokioUpgraded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = ready!(Pin::new(&mut self.0).poll_read(cx, buf.initialize_unfilled()))?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for TokioUpgraded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}

const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>rwgi WebSocket echo</title>
<p><input id="text" value="hello"> <button id="send">send</button></p>
<pre id="log"></pre>
<script>
const log = (line) => document.getElementById("log").textContent += line + "\n";
const url = new URL("ws", location.href.replace(/\/?$/, "/"));
url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
const socket = new WebSocket(url);
socket.onopen = () => log("open");
socket.onmessage = (event) => log("echo: " + event.data);
socket.onclose = () => log("closed");
document.getElementById("send").onclick = () => socket.send(document.getElementById("text").value);
</script>
"#;
