//! axum 0.8's hello world, as its documentation writes it: one `GET /` route returning the
//! greeting, served by `axum::serve`.

use axum::routing::get;
use axum::Router;
use rwgi_bench_peers::Options;
use tokio::net::TcpListener;

async fn serve(options: Options) -> std::io::Result<()> {
    let app = Router::new().route("/", get(|| async { "Hello, World!\n" }));
    let listener = TcpListener::bind(&options.bind).await?;
    axum::serve(listener, app).await
}

fn main() {
    let options = Options::from_args("hello");
    rwgi_bench_peers::run(options.workers, serve(options));
}
