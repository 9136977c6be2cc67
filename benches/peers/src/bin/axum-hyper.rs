//! axum-hello's router (`--app hello` or `json`), unchanged, on hyper's HTTP/1.1 connection with
//! hyper-util's tokio glue and hyper's header-read timer: axum with the slow-client protection
//! `rwgi-server` has (by its own clock) and `axum::serve` has not. Measured beside `axum-hello`
//! so the cost of hosting axum on `rwgi-server` can be read against both. `--header-timer off`
//! serves without the timer.

use rwgi_bench_peers::Options;

fn main() {
    let options = Options::from_args("hello");
    let router = rwgi_bench_peers::axum_router(&options.app);
    rwgi_bench_peers::run(
        options.workers,
        rwgi_bench_peers::serve_tower_http1(&options, |_, _| router.clone()),
    );
}
