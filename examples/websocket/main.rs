//! The WebSocket example on `rwgi-server`: an echo at `/ws`, spoken by `tokio-tungstenite`
//! after the app takes the server's upgrade offer (spec §14.10), and a page at `/` that talks
//! to it.
//!
//! ```text
//! cargo run --release --example websocket -- --bind 127.0.0.1:8000
//! # then open http://127.0.0.1:8000/ in a browser, or use any WebSocket client on /ws
//! ```

#[path = "../apps/websocket.rs"]
mod websocket;

use std::process::ExitCode;

fn main() -> ExitCode {
    rwgi_server::run(websocket::app())
}
