//! The static-file example on `rwgi-server`: the directory `STATIC_ROOT` (by default
//! `examples/static_files/public`) at `/static`, through `rwgi_middleware::StaticFiles`.
//!
//! ```text
//! cargo run --release --example static_files -- --bind 127.0.0.1:8000
//! curl -i http://127.0.0.1:8000/static/                      # index.html
//! curl -i -H 'Range: bytes=0-99' http://127.0.0.1:8000/static/style.css
//! ```

#[path = "../apps/files.rs"]
mod files;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let root = std::env::var_os("STATIC_ROOT").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/static_files/public"),
        PathBuf::from,
    );
    match files::app(&root) {
        Ok(app) => rwgi_server::run(app),
        Err(error) => {
            eprintln!("static_files: cannot serve {}: {error}", root.display());
            ExitCode::from(2)
        }
    }
}
