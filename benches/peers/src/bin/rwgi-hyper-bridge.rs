//! The reference server's `hello` app served as a tower service through
//! `rwgi_tower::AppService` on hyper's HTTP/1.1 connection with hyper-util's tokio glue and
//! header-read timer (the same HTTP stack, and the slow-client protection `rwgi-server` has by
//! its own clock): what serving an rwgi app on plain hyper costs next to `rwgi-server`.
//! `--header-timer off` serves without the timer.

#[path = "../../../../examples/apps/hello.rs"]
#[allow(dead_code)]
mod hello;

use rwgi_bench_peers::Options;
use rwgi_tower::AppService;

fn main() {
    let options = Options::from_args("hello");
    let service = AppService::new(hello::Hello);
    rwgi_bench_peers::run(
        options.workers,
        rwgi_bench_peers::serve_tower_http1(&options, |local, peer| {
            service.for_connection(local, Some(peer))
        }),
    );
}
