//! axum-hello's router (`--app hello` or `json`), unchanged, on hyper's HTTP/1.1 connection with
//! hyper-util's tokio glue and hyper's header-read timer: axum with the slow-client protection
//! `rwgi-server` has (by its own clock) and `axum::serve` has not. Measured beside `axum-hello`
//! so the cost of hosting axum on `rwgi-server` can be read against both. `--header-timer off`
//! serves without the timer.

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rwgi_bench_peers::Options;
use tokio::net::TcpListener;

async fn serve(options: Options) -> std::io::Result<()> {
    let router = rwgi_bench_peers::axum_router(&options.app);
    let listener = TcpListener::bind(&options.bind).await?;
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new());
    if !options.header_timer {
        http.header_read_timeout(None);
    }
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let http = http.clone();
        tokio::spawn(async move {
            let _ = http.serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

fn main() {
    let options = Options::from_args("hello");
    rwgi_bench_peers::run(options.workers, serve(options));
}
