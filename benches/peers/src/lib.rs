//! What the comparison servers share: command-line flags, the runtime, the accept loop, and
//! the streaming endpoints.
//!
//! Every server here takes the reference server's flags that matter for a benchmark
//! (`--bind ADDR`, `--workers N`, `--app NAME`), runs a tokio multi-thread runtime with `N`
//! workers, and exits cleanly on SIGTERM or SIGINT, so that a profiler running it writes its
//! results.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::{Request, Response};
use sha2::{Digest, Sha256};
use tokio::signal::unix::{signal, SignalKind};

/// The size of the streamed download: 1 GiB.
pub const DOWNLOAD_BYTES: u64 = 1 << 30;

/// The chunk the download is sent in.
const CHUNK: usize = 64 * 1024;

static ZEROS: [u8; CHUNK] = [0; CHUNK];

/// The flags every server takes.
#[derive(Debug)]
pub struct Options {
    /// `--bind host:port`.
    pub bind: String,
    /// `--workers N`: the runtime's worker threads.
    pub workers: usize,
    /// `--app NAME`: what to serve.
    pub app: String,
    /// `--header-timer on|off`: whether the hyper HTTP/1.1 servers arm hyper's header-read
    /// timer (on by default: the protection `rwgi-server` has, by its own clock).
    pub header_timer: bool,
}

impl Options {
    /// Parses the process arguments; exits with a usage message on a bad one.
    pub fn from_args(default_app: &str) -> Options {
        let mut options = Options {
            bind: "127.0.0.1:8000".to_owned(),
            workers: 1,
            app: default_app.to_owned(),
            header_timer: true,
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let value = args.next();
            match (flag.as_str(), value) {
                ("--bind", Some(value)) => options.bind = value,
                ("--workers", Some(value)) => match value.parse() {
                    Ok(workers) if workers > 0 => options.workers = workers,
                    _ => usage(&format!("--workers wants a positive number, got {value:?}")),
                },
                ("--app", Some(value)) => options.app = value,
                ("--header-timer", Some(value)) => match value.as_str() {
                    "on" => options.header_timer = true,
                    "off" => options.header_timer = false,
                    _ => usage(&format!("--header-timer wants on or off, got {value:?}")),
                },
                (flag, _) => usage(&format!("unknown flag or missing value: {flag}")),
            }
        }
        options
    }
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "{problem}\nusage: [--bind host:port] [--workers N] [--app NAME] [--header-timer on|off]"
    );
    std::process::exit(2);
}

/// Runs `server` on a multi-thread runtime with `workers` threads until SIGTERM or SIGINT.
pub fn run<F: Future<Output = std::io::Result<()>>>(workers: usize, server: F) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap_or_else(|error| fail(&format!("cannot start the runtime: {error}")));
    runtime.block_on(async {
        let mut terminate = signal(SignalKind::terminate())
            .unwrap_or_else(|error| fail(&format!("cannot watch SIGTERM: {error}")));
        tokio::select! {
            result = server => if let Err(error) = result { fail(&error.to_string()) },
            _ = terminate.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        }
    });
}

/// Serves HTTP/1.1 on hyper's connection with hyper-util's tokio glue, one task per connection
/// with `TCP_NODELAY`, and hyper's header-read timer unless `--header-timer off`: the hyper
/// peers that serve a tower service. `service_for` makes a connection's service from its local
/// and peer addresses.
pub async fn serve_tower_http1<S, B>(
    options: &Options,
    service_for: impl Fn(Option<SocketAddr>, SocketAddr) -> S,
) -> std::io::Result<()>
where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let listener = tokio::net::TcpListener::bind(&options.bind).await?;
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new());
    if !options.header_timer {
        http.header_read_timeout(None);
    }
    loop {
        let (stream, peer) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(service_for(stream.local_addr().ok(), peer));
        let http = http.clone();
        tokio::spawn(async move {
            let _ = http.serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// Serves `app` on `rwgi-server`, embedded (one process, access log off, `workers` runtime
/// threads), until SIGTERM or Ctrl-C: the rwgi peers' whole `main`.
pub fn serve_rwgi<A: rwgi::App + 'static>(options: &Options, app: A) {
    let handle = rwgi_server::Server::builder()
        .bind(options.bind.clone())
        .threads(options.workers)
        .serve(app)
        .unwrap_or_else(|error| fail(&error.to_string()));
    // The server runs on threads of its own; this one only waits for the signal.
    run(1, std::future::pending());
    handle.shutdown();
}

/// The axum router `--app` names, shared by `axum-hello` (on `axum::serve`), `axum-hyper` (on
/// hyper with its header-read timer) and `axum-bridge` (through `rwgi_tower::ServiceApp` on
/// `rwgi-server`): `hello`, axum's hello world on `GET /`,
/// or `json`, the realistic app: `GET /hello/{name}` answering `{"greeting":"Hello, NAME!"}`
/// as JSON, the route the example framework (`examples/apps/framework.rs`) serves the same way.
pub fn axum_router(app: &str) -> axum::Router {
    use axum::extract::Path;
    use axum::routing::get;
    match app {
        "hello" => axum::Router::new().route("/", get(|| async { "Hello, World!\n" })),
        "json" => axum::Router::new().route(
            "/hello/{name}",
            get(|Path(name): Path<String>| async move {
                axum::Json(serde_json::json!({ "greeting": format!("Hello, {name}!") }))
            }),
        ),
        other => usage(&format!("no axum app named {other:?} (hello, json)")),
    }
}

fn fail(message: &str) -> ! {
    eprintln!("{message}");
    std::process::exit(1);
}

/// `GET /download`: 1 GiB of zeros with a `Content-Length`, in 64 KiB chunks that share one
/// static buffer, so memory stays flat whatever the size.
#[derive(Debug)]
pub struct Download {
    remaining: u64,
}

impl Download {
    /// A fresh 1 GiB download.
    pub fn new() -> Self {
        Download {
            remaining: DOWNLOAD_BYTES,
        }
    }

    /// The bytes still to send.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }
}

impl Default for Download {
    fn default() -> Self {
        Download::new()
    }
}

impl Iterator for Download {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        let length = self.remaining.min(CHUNK as u64) as usize;
        if length == 0 {
            return None;
        }
        self.remaining -= length as u64;
        Some(Bytes::from_static(&ZEROS[..length]))
    }
}

impl Body for Download {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.get_mut().next().map(|chunk| Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// `POST /upload`: reads the body chunk by chunk as it arrives and answers its length and
/// SHA-256 as JSON, as the rwgi `echo` app does.
///
/// # Errors
///
/// hyper's error when the body cannot be read to its end.
pub async fn upload(request: Request<Incoming>) -> Result<Response<String>, hyper::Error> {
    let mut body = request.into_body();
    let mut hasher = Sha256::new();
    let mut length: u64 = 0;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        if let Ok(data) = frame?.into_data() {
            length += data.len() as u64;
            hasher.update(&data);
        }
    }
    let json = format!(
        "{{\"body_length\":{length},\"body_sha256\":\"{:x}\"}}",
        hasher.finalize()
    );
    let mut response = Response::new(json);
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// The soak benchmark's body bytes: byte `index` of the stream from `seed` (catches lost,
/// repeated and reordered bytes, and bodies mixed up between requests).
pub fn pattern(seed: u64, index: u64) -> u8 {
    (index.wrapping_mul(31).wrapping_add(seed.wrapping_mul(7)) % 251) as u8
}
