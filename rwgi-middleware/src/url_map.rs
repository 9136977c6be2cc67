//! [`UrlMap`]: one app made of several, each mounted at a path prefix.
//!
//! Like Rack's `URLMap` or WSGI's dispatcher middleware: the request goes to the app mounted at
//! the longest prefix of its path, and that prefix moves from `path_info` to `script_name`, so
//! the app routes on the rest and builds its links with the prefix (REQ-MW-5, REQ-PATH-6).

use std::fmt;

use rwgi::app::BoxApp;
use rwgi::body::{BoxBody, Either, Full};
use rwgi::http::header::CONTENT_TYPE;
use rwgi::http::{HeaderMap, HeaderValue, StatusCode};
use rwgi::{App, AppExt, Environ, Error, Response, StartResponse};

/// Dispatches on path prefixes to apps of any type; an [`App`] itself.
///
/// Prefixes are compared with the raw path and end at segment boundaries, as
/// [`Environ::mount`] does: `/api` takes `/api` and `/api/x`, not `/apix`, and not `/%61pi`.
/// The longest matching prefix wins; the empty prefix takes every path no other prefix does.
/// Nothing matching is `404 Not Found`.
///
/// ```
/// use rwgi::app::app_fn;
/// use rwgi::body::Full;
/// use rwgi::http::StatusCode;
/// use rwgi_conformance::test_client::{block_on, TestRequest};
/// use rwgi_middleware::UrlMap;
///
/// let named = |name: &'static str| {
///     app_fn(move |environ: rwgi::Environ, start: rwgi::StartResponse| async move {
///         let text = format!("{name}: {} {}", environ.script_name(), environ.path_info());
///         Ok(start.start(StatusCode::OK, Default::default()).body(Full::new(text)))
///     })
/// };
/// let app = UrlMap::new()
///     .mount("/api", named("api"))
///     .mount("/api/v2", named("v2"))
///     .mount("/static", named("files"));
///
/// assert_eq!(block_on(TestRequest::get("/api/v2/x").send(&app)).text(), "v2: /api/v2 /x");
/// assert_eq!(block_on(TestRequest::get("/api/x").send(&app)).text(), "api: /api /x");
/// assert_eq!(block_on(TestRequest::get("/apix").send(&app)).status(), StatusCode::NOT_FOUND);
/// ```
#[derive(Clone, Default)]
pub struct UrlMap {
    /// Longest prefix first, so the first one that mounts is the longest.
    mounts: Vec<(String, BoxApp)>,
}

impl UrlMap {
    /// A map with nothing mounted: it answers `404` to everything.
    pub fn new() -> Self {
        UrlMap::default()
    }

    /// Mounts `app` at `prefix`, replacing any app already mounted there.
    ///
    /// # Panics
    ///
    /// When `prefix` is not a valid `script_name`: not empty and either not starting with `/`
    /// or ending with one (REQ-PATH-5). Mounts are fixed when the app is built, so this is a
    /// bug in the app, not in a request.
    #[must_use]
    pub fn mount(mut self, prefix: &str, app: impl App + 'static) -> Self {
        assert!(
            prefix.is_empty() || (prefix.starts_with('/') && !prefix.ends_with('/')),
            "REQ-PATH-5: mount prefix {prefix:?} must be empty or start with / and not end with /"
        );
        self.mounts.retain(|(mounted, _)| mounted != prefix);
        let at = self
            .mounts
            .partition_point(|(mounted, _)| mounted.len() > prefix.len());
        self.mounts.insert(at, (prefix.to_owned(), app.boxed()));
        self
    }
}

impl fmt::Debug for UrlMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.mounts.iter().map(|(prefix, _)| prefix))
            .finish()
    }
}

impl App for UrlMap {
    type Body = Either<BoxBody, Full>;

    async fn call(
        &self,
        mut environ: Environ,
        start: StartResponse,
    ) -> Result<Response<Self::Body>, Error> {
        // `mount` leaves the environ unchanged when the prefix does not fit.
        let Some((_, app)) = self
            .mounts
            .iter()
            .find(|(prefix, _)| environ.mount(prefix).is_ok())
        else {
            let mut headers = HeaderMap::new();
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            let body = Full::new("Not Found\n");
            return Ok(start
                .start(StatusCode::NOT_FOUND, headers)
                .body(Either::Right(body)));
        };
        let response = app.call(environ, start).await?;
        Ok(response.map_body(Either::Left))
    }
}
