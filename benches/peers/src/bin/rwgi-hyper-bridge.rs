//! The reference server's `hello` app served as a tower service through
//! `rwgi_tower::AppService` on hyper's HTTP/1.1 connection with hyper-util's tokio glue and
//! timer (the same HTTP stack and slow-client protection `rwgi-server` uses): what serving an
//! rwgi app on plain hyper costs next to `rwgi-server`.

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
