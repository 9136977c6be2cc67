//! An app whose answer is chosen by the fuzzer (status, headers, body chunks, a claimed
//! length) behind the lint with a hook, through `prepare`: the lint reports and never panics,
//! and it changes nothing of what the server is given.
#![no_main]

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rwgi::app::{app_fn, AppExt};
use rwgi::body::{Body, BodyExt};
use rwgi::environ::{ConnectionInfo, Environ};
use rwgi::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use rwgi::lint::Lint;
use rwgi::server::prepare;
use rwgi::{Error, Input, StartResponse};

/// Chunks and a claimed length, both the fuzzer's.
struct Script {
    chunks: Vec<Bytes>,
    claimed: Option<u64>,
}

impl futures_core::Stream for Script {
    type Item = Result<Bytes, Error>;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready((!self.chunks.is_empty()).then(|| Ok(self.chunks.remove(0))))
    }
}

impl Body for Script {
    fn content_length(&self) -> Option<u64> {
        self.claimed
    }
}

fuzz_target!(|input: (u16, Vec<(String, Vec<u8>)>, Vec<Vec<u8>>, Option<u64>, bool)| {
    let (status, fields, chunks, claimed, head) = input;
    let Ok(status) = StatusCode::from_u16(status) else {
        return;
    };
    let mut headers = HeaderMap::new();
    for (name, value) in fields {
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(&value))
        {
            headers.append(name, value);
        }
    }
    let chunks: Vec<Bytes> = chunks.into_iter().map(Bytes::from).collect();
    let app = app_fn(move |_: Environ, start: StartResponse| {
        let response = start.start(status, headers.clone()).body(Script {
            chunks: chunks.clone(),
            claimed,
        });
        async move { Ok(response) }
    });
    let linted = app.with(Lint::with_hook(|_| {}));
    let method = if head { Method::HEAD } else { Method::GET };
    let request = Request::builder()
        .method(method)
        .uri("/")
        .header("host", "h")
        .body(Input::empty())
        .unwrap();
    let environ = Environ::from_request(request, &ConnectionInfo::default()).unwrap();
    futures_executor::block_on(async {
        let (_, _, mut body) = prepare(&linted, environ).await.into_parts();
        while let Some(Ok(_)) = body.chunk().await {}
    });
});
