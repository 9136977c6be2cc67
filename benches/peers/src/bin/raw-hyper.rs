//! Raw hyper: the baseline every other server is measured against.
//!
//! `--app hello` (default): a `service_fn` answering `200`, `content-type: text/plain`,
//! `Hello, World!\n` to every request, as rwgi's hello app does. `--app stream`:
//! `GET /download` streams 1 GiB, `POST /upload` hashes the body it receives.
//!
//! The connection setup is the reference server's (one task per connection, `TCP_NODELAY`,
//! hyper's HTTP/1 with the tokio timer), so that only the gateway differs.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{header, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use rwgi_bench_peers::{upload, Download, Options};
use tokio::net::TcpListener;

async fn hello(_request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = Response::new(Full::new(Bytes::from_static(b"Hello, World!\n")));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain"),
    );
    Ok(response)
}

type Streamed = UnsyncBoxBody<Bytes, hyper::Error>;

async fn stream(request: Request<Incoming>) -> Result<Response<Streamed>, hyper::Error> {
    match request.uri().path() {
        "/download" => Ok(Response::new(
            Download::new()
                .map_err(|never| match never {})
                .boxed_unsync(),
        )),
        "/upload" => Ok(upload(request).await?.map(|text| {
            Full::new(Bytes::from(text))
                .map_err(|never| match never {})
                .boxed_unsync()
        })),
        _ => {
            let mut response = Response::new(
                Full::new(Bytes::from_static(b"Not Found\n"))
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            );
            *response.status_mut() = StatusCode::NOT_FOUND;
            Ok(response)
        }
    }
}

async fn serve(options: Options) -> std::io::Result<()> {
    let listener = TcpListener::bind(&options.bind).await?;
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new());
    let streaming = match options.app.as_str() {
        "hello" => false,
        "stream" => true,
        other => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("unknown app {other:?}: hello or stream"),
            ))
        }
    };
    loop {
        let (stream_, _) = listener.accept().await?;
        stream_.set_nodelay(true)?;
        let io = TokioIo::new(stream_);
        let http = http.clone();
        tokio::spawn(async move {
            // A client that goes away mid-request is not the server's problem.
            let _ = if streaming {
                http.serve_connection(io, service_fn(stream)).await
            } else {
                http.serve_connection(io, service_fn(hello)).await
            };
        });
    }
}

fn main() {
    let options = Options::from_args("hello");
    rwgi_bench_peers::run(options.workers, serve(options));
}
