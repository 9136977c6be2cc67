//! The reference server's `hello` app (`examples/apps/hello.rs`) on the reference server's
//! serve loop (`rwgi-server`, access log off): the baseline of `rwgi-hyper-bridge`, built with
//! the same settings in the same project.

#[path = "../../../../examples/apps/hello.rs"]
#[allow(dead_code)]
mod hello;

use rwgi_bench_peers::Options;
use rwgi_server::{Bind, Config, Listener};

async fn serve(options: Options) -> std::io::Result<()> {
    let listener = Listener::bind(&Bind::Tcp(options.bind)).await?;
    let config = Config {
        access_log: false,
        ..Config::default()
    };
    rwgi_server::serve(listener, hello::Hello, config, std::future::pending()).await;
    Ok(())
}

fn main() {
    let options = Options::from_args("hello");
    rwgi_bench_peers::run(options.workers, serve(options));
}
