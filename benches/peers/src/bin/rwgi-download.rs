//! The reference server's serve loop (the `rwgi-server` crate) hosting
//! an rwgi app that streams the same 1 GiB download as raw hyper's `GET /download`.
//!
//! The reference server has no app that streams a large response, so the load benchmark
//! measures its download path through this program; everything between the socket and the
//! app is the shipped server code.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use rwgi::http::{HeaderMap, StatusCode};
use rwgi::{App, Body, Environ, Error, Response, StartResponse};
use rwgi_bench_peers::{Download, Options};

/// [`Download`] as an rwgi body with its exact length.
struct DownloadBody(Download);

impl Stream for DownloadBody {
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(self.get_mut().0.next().map(Ok))
    }
}

impl Body for DownloadBody {
    fn content_length(&self) -> Option<u64> {
        Some(self.0.remaining())
    }
}

/// Answers every request with the 1 GiB download.
struct DownloadApp;

impl App for DownloadApp {
    type Body = DownloadBody;

    async fn call(
        &self,
        _environ: Environ,
        start: StartResponse,
    ) -> Result<Response<DownloadBody>, Error> {
        Ok(start
            .start(StatusCode::OK, HeaderMap::new())
            .body(DownloadBody(Download::new())))
    }
}

fn main() {
    let options = Options::from_args("download");
    rwgi_bench_peers::serve_rwgi(&options, DownloadApp);
}
