//! The example apps on `rwgi-server`: the whole program is choosing the app and calling
//! [`rwgi_server::run`], which owns the command line, the environment, the processes, the
//! signals and the logs.
//!
//! ```text
//! cargo run --release --example server                      # the framework on 127.0.0.1:8000
//! EXAMPLE_APP=hello cargo run --release --example server -- --bind 127.0.0.1:8080 --workers 2
//! cargo run --release --example server -- --help            # every setting
//! ```
//!
//! `EXAMPLE_APP` picks the app: `framework` (the default), `hello`, `hello-stack`, `echo`,
//! `events` (server-sent events) or `checksum` (trailers).

#[allow(dead_code)] // Each program that includes the shared apps uses only some of them.
#[path = "../apps/mod.rs"]
mod apps;

use std::process::ExitCode;

fn main() -> ExitCode {
    match std::env::var("EXAMPLE_APP").as_deref() {
        Err(_) | Ok("framework") => rwgi_server::run(apps::framework::demo_app()),
        Ok("hello") => rwgi_server::run(apps::hello::Hello),
        Ok("hello-stack") => rwgi_server::run(apps::hello::hello_stack()),
        Ok("echo") => rwgi_server::run(apps::echo::Echo),
        Ok("events") => rwgi_server::run(apps::events::Events::default()),
        Ok("checksum") => rwgi_server::run(apps::checksum::Checksum),
        Ok(other) => {
            eprintln!(
                "server: EXAMPLE_APP={other:?} is not one of framework, hello, hello-stack, \
                 echo, events, checksum"
            );
            ExitCode::from(2)
        }
    }
}
