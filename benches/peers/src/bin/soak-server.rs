//! The soak benchmark's server (`benches/soak.sh`): an rwgi app on `rwgi_server::run`, so the
//! command line, the master and the workers are the shipped ones (`--workers 2`).
//!
//! - `GET /bytes/N/SEED`: `N` bytes of [`rwgi_bench_peers::pattern`] from `SEED`, in 64 KiB
//!   chunks; with `Content-Length` for an even seed, chunked for an odd one.
//! - `POST /upload`: reads the body chunk by chunk and answers `LENGTH SHA256` (hex).
//! - anything else: `hello`.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use rwgi::http::{HeaderMap, StatusCode};
use rwgi::{App, Body, Environ, Error, Response, StartResponse};
use sha2::{Digest, Sha256};

/// The pattern from `seed`, `left` bytes still to go, at offset `at`.
struct Pattern {
    seed: u64,
    at: u64,
    left: u64,
    sized: bool,
}

impl Stream for Pattern {
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let length = this.left.min(64 * 1024);
        if length == 0 {
            return Poll::Ready(None);
        }
        let chunk: Vec<u8> = (this.at..this.at + length)
            .map(|i| rwgi_bench_peers::pattern(this.seed, i))
            .collect();
        this.at += length;
        this.left -= length;
        Poll::Ready(Some(Ok(Bytes::from(chunk))))
    }
}

impl Body for Pattern {
    fn content_length(&self) -> Option<u64> {
        self.sized.then_some(self.left)
    }
}

enum Answer {
    Text(rwgi::body::Full),
    Bytes(Pattern),
}

impl Stream for Answer {
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.get_mut() {
            Answer::Text(body) => Pin::new(body).poll_next(cx),
            Answer::Bytes(body) => Pin::new(body).poll_next(cx),
        }
    }
}

impl Body for Answer {
    fn content_length(&self) -> Option<u64> {
        match self {
            Answer::Text(body) => body.content_length(),
            Answer::Bytes(body) => body.content_length(),
        }
    }
}

struct Soak;

impl App for Soak {
    type Body = Answer;

    async fn call(
        &self,
        mut environ: Environ,
        start: StartResponse,
    ) -> Result<Response<Answer>, Error> {
        let path = environ.path_info().to_owned();
        let body = if path == "/upload" {
            let mut hasher = Sha256::new();
            let mut length: u64 = 0;
            while let Some(chunk) = environ.input_mut().chunk().await {
                let chunk = chunk?;
                length += chunk.len() as u64;
                hasher.update(&chunk);
            }
            Answer::Text(rwgi::body::Full::new(format!(
                "{length} {:x}",
                hasher.finalize()
            )))
        } else if let Some(rest) = path.strip_prefix("/bytes/") {
            let (length, seed) = rest
                .split_once('/')
                .and_then(|(n, s)| Some((n.parse().ok()?, s.parse().ok()?)))
                .ok_or_else(|| Error::msg("bad /bytes path"))?;
            Answer::Bytes(Pattern {
                seed,
                at: 0,
                left: length,
                sized: seed % 2 == 0,
            })
        } else {
            Answer::Text(rwgi::body::Full::new("hello\n"))
        };
        Ok(start.start(StatusCode::OK, HeaderMap::new()).body(body))
    }
}

fn main() -> std::process::ExitCode {
    rwgi_server::run(Soak)
}
