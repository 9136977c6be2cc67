//! axum-hello's router (`--app hello` or `json`), unchanged, hosted as an rwgi app through
//! `rwgi_tower::ServiceApp` by the reference server's serve loop (`rwgi-server`, access log
//! off): what hosting axum on rwgi costs next to `axum::serve`.

use rwgi_bench_peers::Options;
use rwgi_tower::ServiceApp;

fn main() {
    let options = Options::from_args("hello");
    let app = rwgi_bench_peers::axum_router(&options.app);
    rwgi_bench_peers::serve_rwgi(&options, ServiceApp::new(app));
}
