//! The reference server's `hello` app (`examples/apps/hello.rs`) on the reference server's
//! serve loop (`rwgi-server`, access log off): the baseline of `rwgi-hyper-bridge`, built with
//! the same settings in the same project.

#[path = "../../../../examples/apps/hello.rs"]
#[allow(dead_code)]
mod hello;

use rwgi_bench_peers::Options;

fn main() {
    let options = Options::from_args("hello");
    rwgi_bench_peers::serve_rwgi(&options, hello::Hello);
}
