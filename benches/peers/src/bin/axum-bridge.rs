//! axum-hello's router, unchanged, hosted as an rwgi app through `rwgi_tower::ServiceApp` by
//! the reference server's serve loop (`rwgi-server`, access log off): what hosting axum on
//! rwgi costs next to `axum::serve`.

use axum::routing::get;
use axum::Router;
use rwgi_bench_peers::Options;
use rwgi_server::{Bind, Config, Listener};
use rwgi_tower::ServiceApp;

async fn serve(options: Options) -> std::io::Result<()> {
    let app = Router::new().route("/", get(|| async { "Hello, World!\n" }));
    let listener = Listener::bind(&Bind::Tcp(options.bind)).await?;
    let config = Config {
        access_log: false,
        ..Config::default()
    };
    rwgi_server::serve(listener, ServiceApp::new(app), config, std::future::pending()).await;
    Ok(())
}

fn main() {
    let options = Options::from_args("hello");
    rwgi_bench_peers::run(options.workers, serve(options));
}
