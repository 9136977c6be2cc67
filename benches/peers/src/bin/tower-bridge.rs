//! The smallest tower service (a hand-written `Service` answering `Hello, World!\n` with a
//! `Full` body and `content-type: text/plain`) hosted through `rwgi_tower::ServiceApp` on the
//! reference server's serve loop: next to `rwgi-hello`, which answers the same with an rwgi
//! app, it isolates what the Service → App bridge itself costs.

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response};
use rwgi_bench_peers::Options;
use rwgi_tower::{InputBody, ServiceApp};

#[derive(Clone, Copy)]
struct Hello;

impl tower_service::Service<Request<InputBody>> for Hello {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<InputBody>) -> Self::Future {
        let mut response = Response::new(Full::new(Bytes::from_static(b"Hello, World!\n")));
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        ready(Ok(response))
    }
}

fn main() {
    let options = Options::from_args("hello");
    rwgi_bench_peers::serve_rwgi(&options, ServiceApp::new(Hello));
}
