//! The smallest correct hyper server that speaks HTTP/2 as `rwgi-server` does with its `http2`
//! feature: hyper-util's automatic connection builder (HTTP/1.1, or HTTP/2 by prior knowledge
//! on a cleartext connection), with the same protections the measured server sets — the
//! header-read timer and the limit on header fields for HTTP/1.1, the timer and the same header
//! list size for HTTP/2 (`limit_request_fields` × `limit_request_field_size`, 100 × 8190) — and
//! nothing else. It answers every request `Hello, World!\n` as `text/plain`, like the `hello`
//! example app. With `--app hello-h2` it serves HTTP/2 alone, on hyper's HTTP/2 connection with
//! the same settings, telling no protocols apart: the plainest HTTP/2 server hyper makes. Built
//! with `--features h2` (the other peers stay HTTP/1.1-only builds).

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{header, Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = Response::new(Full::new(Bytes::from_static(b"Hello, World!\n")));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain"),
    );
    Ok(response)
}

fn main() {
    let options = rwgi_bench_peers::Options::from_args("hello");
    rwgi_bench_peers::run(options.workers, async move {
        let listener = TcpListener::bind(&options.bind).await?;
        let mut terminate = signal(SignalKind::terminate())?;
        let mut http = auto::Builder::new(TokioExecutor::new());
        http.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10))
            .max_headers(100);
        http.http2()
            .timer(TokioTimer::new())
            .max_header_list_size(100 * 8190);
        // `--app hello-h2`: hyper's HTTP/2 connection alone, with the same settings, for a
        // baseline that does not even tell the protocols apart.
        match options.app.as_str() {
            "hello" => {}
            "hello-h2" => {
                let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
                http2
                    .timer(TokioTimer::new())
                    .max_header_list_size(100 * 8190);
                loop {
                    let (stream, _) = tokio::select! {
                        accepted = listener.accept() => accepted?,
                        _ = terminate.recv() => return Ok(()),
                    };
                    tokio::spawn(http2.serve_connection(TokioIo::new(stream), service_fn(hello)));
                }
            }
            other => {
                eprintln!("no app named {other:?} (hello, hello-h2)");
                std::process::exit(2);
            }
        }
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => accepted?,
                _ = terminate.recv() => return Ok(()),
            };
            let http = http.clone();
            tokio::spawn(async move {
                let _ = http
                    .serve_connection(TokioIo::new(stream), service_fn(hello))
                    .await;
            });
        }
    });
}
