//! The static-file example: a directory served at `/static` by the static-file middleware
//! (`rwgi_middleware::StaticFiles`, spec §14.9), in front of a one-page app at `/`.
//!
//! Files go out as file bodies: `rwgi-server` declares them and reads them off its async
//! threads. Every answer may be cached for a minute (`Cache-Control: max-age=60`).

use std::io;
use std::path::Path;

use rwgi::app::app_fn;
use rwgi::body::Full;
use rwgi::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use rwgi::http::{HeaderMap, HeaderValue, StatusCode};
use rwgi::{App, AppExt, Environ, StartResponse};
use rwgi_middleware::StaticFiles;

/// The app: the files under `root` at `/static`, a page linking to them at `/`, and `404`
/// elsewhere.
pub fn app(root: &Path) -> io::Result<impl App> {
    let files =
        StaticFiles::new("/static", root)?.cache_control(HeaderValue::from_static("max-age=60"));
    Ok(home().with(files))
}

fn home() -> impl App {
    app_fn(|environ: Environ, start: StartResponse| async move {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=60"));
        let (status, page) = match environ.path_info() {
            "/" => (StatusCode::OK, HOME),
            _ => (
                StatusCode::NOT_FOUND,
                "<!doctype html>\n<title>Not Found</title>\n",
            ),
        };
        Ok(start.start(status, headers).body(Full::new(page)))
    })
}

const HOME: &str = "<!doctype html>\n<meta charset=\"utf-8\">\n<title>rwgi static files</title>\n\
<p>The files are under <a href=\"static/\">static/</a>.</p>\n";
