//! (being written) A small framework: a router with path parameters and JSON responses.

use rwgi::body::Full;
use rwgi::http::{HeaderMap, StatusCode};
use rwgi::{App, Environ, Error, Response, StartResponse};

/// The demo app the reference server serves by default.
pub fn demo_app() -> impl App {
    rwgi::app::app_fn(|_environ: Environ, start: StartResponse| async move {
        Ok::<Response<Full>, Error>(start.start(StatusCode::OK, HeaderMap::new()).body(Full::new("placeholder")))
    })
}
