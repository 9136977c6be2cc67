//! The reference server's `hello` app served as a tower service through
//! `rwgi_tower::AppService` on hyper's HTTP/1.1 connection with hyper-util's tokio glue and
//! header-read timer (the same HTTP stack, and the slow-client protection `rwgi-server` has by
//! its own clock): what serving an rwgi app on plain hyper costs next to `rwgi-server`.
//! `--header-timer off` serves without the timer.

#[path = "../../../../examples/apps/hello.rs"]
#[allow(dead_code)]
mod hello;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rwgi_bench_peers::Options;
use rwgi_tower::AppService;
use tokio::net::TcpListener;

async fn serve(options: Options) -> std::io::Result<()> {
    let listener = TcpListener::bind(&options.bind).await?;
    let service = AppService::new(hello::Hello);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new());
    if !options.header_timer {
        http.header_read_timeout(None);
    }
    loop {
        let (stream, peer) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let service = service.for_connection(stream.local_addr().ok(), Some(peer));
        let http = http.clone();
        tokio::spawn(async move {
            let io = TokioIo::new(stream);
            let _ = http
                .serve_connection(io, TowerToHyperService::new(service))
                .await;
        });
    }
}

fn main() {
    let options = Options::from_args("hello");
    rwgi_bench_peers::run(options.workers, serve(options));
}
