//! axum 0.8 served by `axum::serve`: its hello world as its documentation writes it (one `GET /`
//! route returning the greeting), or with `--app json` the realistic app's JSON route (see
//! `rwgi_bench_peers::axum_router`).

use rwgi_bench_peers::Options;
use tokio::net::TcpListener;

async fn serve(options: Options) -> std::io::Result<()> {
    let app = rwgi_bench_peers::axum_router(&options.app);
    let listener = TcpListener::bind(&options.bind).await?;
    axum::serve(listener, app).await
}

fn main() {
    let options = Options::from_args("hello");
    rwgi_bench_peers::run(options.workers, serve(options));
}
