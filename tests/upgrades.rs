//! Upgrades (spec §14.10) over real sockets through `rwgi-server`: the WebSocket example
//! (`examples/apps/websocket.rs`) with a real WebSocket client (`tokio-tungstenite`'s), several
//! at once beside ordinary requests, and what an upgraded connection is to the server: a slot
//! of `worker_connections`, and a connection a graceful stop waits for.

#[path = "../examples/apps/websocket.rs"]
mod websocket;
#[allow(dead_code)] // The tests use a part of the shared client.
mod support {
    pub mod raw_http;
}

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rwgi::app::app_fn;
use rwgi::body::BoxBody;
use rwgi::http::{HeaderMap, StatusCode};
use rwgi::upgrade::Upgrade;
use rwgi::{Environ, StartResponse};
use rwgi_server::{Server, ServerHandle, UpgradedIo};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

fn serve_example(builder: rwgi_server::Builder) -> (ServerHandle, SocketAddr) {
    let server = builder
        .bind("127.0.0.1:0")
        .threads(2)
        .accesslog("off")
        .serve(websocket::app())
        .expect("the server binds");
    let address = server.local_addr().expect("a TCP address");
    (server, address)
}

async fn open(address: SocketAddr) -> Socket {
    let (socket, response) = connect_async(format!("ws://{address}/ws"))
        .await
        .expect("the WebSocket handshake");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    socket
}

async fn echoes(socket: &mut Socket, message: Message) {
    socket.send(message.clone()).await.expect("send");
    let reply = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .expect("an echo in time")
        .expect("an echo")
        .expect("a message");
    assert_eq!(reply, message);
}

#[tokio::test]
async fn a_websocket_client_talks_to_the_example_through_rwgi_server() {
    let (server, address) = serve_example(Server::builder());
    let mut socket = open(address).await;
    echoes(&mut socket, Message::text("hello")).await;
    echoes(&mut socket, Message::binary(vec![0, 1, 2, 255])).await;
    // A message far larger than one read: the handler streams it, tungstenite reassembles it.
    let large: String = "rwgi ".repeat(400_000);
    echoes(&mut socket, Message::text(large)).await;
    socket.close(None).await.expect("close");
    // The server answers the close and ends the connection.
    let rest = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(_)) = socket.next().await {}
    })
    .await;
    assert!(rest.is_ok(), "the connection did not end after the close");
    server.shutdown();
}

#[tokio::test]
async fn many_websockets_at_once_beside_ordinary_requests() {
    let (server, address) = serve_example(Server::builder());
    let mut sockets = Vec::new();
    for _ in 0..20 {
        sockets.push(open(address).await);
    }
    // Ordinary requests on other connections meanwhile.
    let page = tokio::task::spawn_blocking(move || get(address, "/"))
        .await
        .unwrap();
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    for (i, socket) in sockets.iter_mut().enumerate() {
        echoes(socket, Message::text(format!("socket {i}"))).await;
    }
    // Gone clients end their handlers, so the stop does not wait for its timeout.
    drop(sockets);
    server.shutdown();
}

#[tokio::test]
async fn the_endpoint_answers_as_usual_without_an_upgrade() {
    let (server, address) = serve_example(Server::builder());
    let answers = tokio::task::spawn_blocking(move || {
        [
            // A plain GET: no handshake.
            get(address, "/ws"),
            // The handshake without Connection: upgrade: no offer, so no 101.
            raw(
                address,
                "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nConnection: close\r\n\r\n",
            ),
            // HTTP/1.0 cannot upgrade.
            raw(
                address,
                "GET /ws HTTP/1.0\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\
                 Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            ),
        ]
    })
    .await
    .unwrap();
    assert!(answers[0].starts_with("HTTP/1.1 400 "), "{}", answers[0]);
    assert!(answers[1].starts_with("HTTP/1.1 501 "), "{}", answers[1]);
    assert!(answers[2].starts_with("HTTP/1.0 501 "), "{}", answers[2]);
    server.shutdown();
}

#[tokio::test]
async fn an_upgraded_connection_keeps_its_worker_connection_slot() {
    let (server, address) = serve_example(Server::builder().worker_connections(1));
    let mut socket = open(address).await;
    // The one slot is the WebSocket's: another connection waits in the listen queue.
    let waiting = std::thread::spawn(move || get(address, "/"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "a second connection was served");
    echoes(&mut socket, Message::text("still here")).await;
    socket.close(None).await.expect("close");
    while let Some(Ok(_)) = socket.next().await {}
    let page = tokio::task::spawn_blocking(move || waiting.join().unwrap())
        .await
        .unwrap();
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    server.shutdown();
}

#[tokio::test]
async fn a_graceful_stop_waits_for_an_upgraded_connection_up_to_its_timeout() {
    let (server, address) =
        serve_example(Server::builder().graceful_timeout(Duration::from_millis(800)));
    let mut socket = open(address).await;
    let started = Instant::now();
    server.begin_shutdown();
    // Still served during the graceful timeout...
    tokio::time::sleep(Duration::from_millis(200)).await;
    echoes(&mut socket, Message::text("during the stop")).await;
    // ...and dropped after it.
    let stopped = tokio::task::spawn_blocking(move || server.shutdown());
    tokio::time::timeout(Duration::from_secs(10), stopped)
        .await
        .expect("the server stops")
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(700));
    let ended = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .expect("the connection ends");
    assert!(!matches!(ended, Some(Ok(Message::Text(_)))), "{ended:?}");
}

#[tokio::test]
async fn a_handler_on_rwgi_server_may_take_the_servers_own_io_back() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = app_fn(|mut environ: Environ, start: StartResponse| async move {
        let offer = environ
            .extensions_mut()
            .remove::<Upgrade>()
            .expect("an offer");
        let response = offer.accept(start, "raw", HeaderMap::new(), |io| async move {
            let mut io = io.downcast::<UpgradedIo>().expect("rwgi-server's I/O");
            let mut buf = [0; 5];
            io.read_exact(&mut buf).await.unwrap();
            io.write_all(&buf.to_ascii_uppercase()).await.unwrap();
        });
        Ok(response.map_body(BoxBody::new))
    });
    let server = Server::builder()
        .bind("127.0.0.1:0")
        .accesslog("off")
        .serve(app)
        .unwrap();
    let address = server.local_addr().unwrap();
    let answer = tokio::task::spawn_blocking(move || {
        raw(
            address,
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: raw\r\n\r\nhello",
        )
    })
    .await
    .unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{answer}"
    );
    assert!(
        answer.to_ascii_lowercase().contains("\r\nupgrade: raw\r\n"),
        "{answer}"
    );
    assert!(answer.ends_with("\r\n\r\nHELLO"), "{answer}");
    server.shutdown();
}

/// `GET target` on a connection of its own; the whole answer as text.
fn get(address: SocketAddr, target: &str) -> String {
    raw(
        address,
        &format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    )
}

/// Sends `request` and reads until the server closes the connection.
fn raw(address: SocketAddr, request: &str) -> String {
    let mut client = support::raw_http::Client::connect(address);
    client.send(request.as_bytes());
    String::from_utf8_lossy(&client.read_to_end()).into_owned()
}
