//! The smallest correct hyper server with the protection the others have (hyper's header-read
//! timer) and nothing else: `#[tokio::main]`-style runtime, the accept loop, `service_fn`.
//! Written apart from `raw-hyper` to check that the baseline does not flatter: with
//! `--app typed` it also sets the `content-type` header the other hello servers send.
//! `--header-timer off` leaves the timer out: hyper with no protection at all.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{header, Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

async fn bare(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(
        b"Hello, World!\n",
    ))))
}

async fn typed(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = bare(request).await?;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain"),
    );
    Ok(response)
}

fn main() {
    let options = rwgi_bench_peers::Options::from_args("bare");
    let typed_answer = options.app == "typed";
    let header_timer = options.header_timer;
    rwgi_bench_peers::run(options.workers, async move {
        let listener = TcpListener::bind(&options.bind).await?;
        let mut terminate = signal(SignalKind::terminate())?;
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => accepted?,
                _ = terminate.recv() => return Ok(()),
            };
            tokio::spawn(async move {
                let io = TokioIo::new(stream);
                let mut http = http1::Builder::new();
                http.timer(TokioTimer::new());
                if !header_timer {
                    http.header_read_timeout(None);
                }
                let _ = if typed_answer {
                    http.serve_connection(io, service_fn(typed)).await
                } else {
                    http.serve_connection(io, service_fn(bare)).await
                };
            });
        }
    });
}
