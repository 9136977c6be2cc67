//! In-process benchmarks: time and heap allocations per request of each step of rwgi's path,
//! next to the hand-written hyper `service_fn` that does the same job.
//!
//! `cargo bench --bench inprocess`. Allocations are counted by divan's `AllocProfiler`, the
//! global allocator of this binary. Instruction counts come from the `instructions` bench.
//! See BENCHMARKS.md for the figures and how to read them.

mod common;

use bytes::Bytes;
use divan::{black_box, AllocProfiler, Bencher};
use http_body_util::Empty;
use rwgi::{AppExt, Input};

use common::{Forward, Hello, PassThrough};

#[global_allocator]
static ALLOC: AllocProfiler = AllocProfiler::system();

fn main() {
    divan::main();
}

/// `Environ::from_request`: the request already parsed, as hyper hands it over.
mod environ {
    use super::*;

    #[divan::bench]
    fn small(bencher: Bencher<'_, '_>) {
        let connection = common::connection();
        bencher
            .with_inputs(|| common::small_request(Input::empty()))
            .bench_local_values(|request| common::environ(request, &connection));
    }

    #[divan::bench]
    fn header_heavy(bencher: Bencher<'_, '_>) {
        let connection = common::connection();
        bencher
            .with_inputs(|| common::header_heavy_request(Input::empty()))
            .bench_local_values(|request| common::environ(request, &connection));
    }
}

/// One app call through the `StartResponse` callback and its one-chunk body read to the end.
mod app {
    use super::*;

    fn bench_app<A: rwgi::App>(bencher: Bencher<'_, '_>, app: A) {
        let connection = common::connection();
        bencher
            .with_inputs(|| common::environ(common::small_request(Input::empty()), &connection))
            .bench_local_values(|environ| common::call_app(&app, environ));
    }

    #[divan::bench]
    fn hello(bencher: Bencher<'_, '_>) {
        bench_app(bencher, Hello);
    }

    #[divan::bench]
    fn hello_stack3(bencher: Bencher<'_, '_>) {
        bench_app(bencher, common::hello_stack());
    }

    #[divan::bench]
    fn hello_one_pass_through(bencher: Bencher<'_, '_>) {
        bench_app(bencher, Hello.with(PassThrough));
    }

    #[divan::bench]
    fn hello_one_forward(bencher: Bencher<'_, '_>) {
        bench_app(bencher, Hello.with(Forward));
    }

    #[divan::bench]
    fn hello_lint(bencher: Bencher<'_, '_>) {
        bench_app(bencher, common::hello_lint());
    }
}

/// The whole in-process path of one request: a hyper `Request` in, the response body polled
/// to its end, as hyper's connection task drives a service. Only the sockets and the HTTP/1
/// codec are missing, and they are the same for every case.
mod request {
    use super::*;

    fn bench_service<S, B>(bencher: Bencher<'_, '_>, service: S)
    where
        S: hyper::service::Service<
            rwgi::http::Request<Empty<Bytes>>,
            Response = rwgi::http::Response<B>,
        >,
        S::Error: std::fmt::Debug,
        B: http_body::Body<Data = Bytes> + Unpin,
        B::Error: std::fmt::Debug,
    {
        bencher
            .with_inputs(|| common::small_request(Empty::new()))
            .bench_local_values(|request| black_box(common::serve_one(&service, request)));
    }

    #[divan::bench]
    fn raw_hyper_service_fn(bencher: Bencher<'_, '_>) {
        bench_service(bencher, common::raw_hyper_service());
    }

    #[divan::bench]
    fn rwgi_hello(bencher: Bencher<'_, '_>) {
        bench_service(bencher, common::rwgi_service(Hello, common::connection()));
    }

    #[divan::bench]
    fn rwgi_hello_stack3(bencher: Bencher<'_, '_>) {
        bench_service(
            bencher,
            common::rwgi_service(common::hello_stack(), common::connection()),
        );
    }

    #[divan::bench]
    fn rwgi_hello_lint(bencher: Bencher<'_, '_>) {
        bench_service(
            bencher,
            common::rwgi_service(common::hello_lint(), common::connection()),
        );
    }
}
