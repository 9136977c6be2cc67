//! [`StaticFiles`]: a directory served under a path prefix, with the validators, conditional
//! requests and byte ranges of RFC 9110, as file bodies (spec §14.9).
//!
//! What it answers, for `GET` and `HEAD` of a path under its prefix:
//!
//! - `200` with the file, `Content-Type` (by the file's extension), `Content-Length`, `ETag`
//!   (strong, from the file's length and modification time), `Last-Modified` and
//!   `Accept-Ranges: bytes`; for `HEAD` the same head without the body.
//! - `304 Not Modified` when `If-None-Match` matches the `ETag` (weak comparison), or, without
//!   `If-None-Match`, when the file has not changed since `If-Modified-Since`; `412
//!   Precondition Failed` when `If-Match` or `If-Unmodified-Since` does not hold (RFC 9110
//!   §13.2.2 gives the order).
//! - `206 Partial Content` with `Content-Range` for one byte range of a `GET` (`bytes=0-99`,
//!   `bytes=100-`, `bytes=-100`), honoured only when `If-Range`, if present, names the current
//!   `ETag` (strong comparison) or `Last-Modified` date. A request for several ranges gets the
//!   whole file (`200`), which RFC 9110 §14.2 allows: a multipart answer costs more than it
//!   saves for static files. A range that starts past the end is `416 Range Not Satisfiable`
//!   with `Content-Range: bytes */LENGTH`. A `Range` that does not parse is ignored.
//! - For a directory, its `index.html` when the path ends with `/`; without the `/`, a `301` to
//!   the path with it, so relative links in the index resolve.
//! - `405 Method Not Allowed` (with `Allow: GET, HEAD`) for other methods, and `404 Not Found`
//!   for anything else under the prefix: missing files, and every path refused below.
//!
//! # What is refused
//!
//! Paths are taken segment by segment, each percent-decoded on its own (REQ-PATH-4), and
//! refused with a `404` when a segment is `.` or `..` (also when sent encoded, `%2e%2e`), holds
//! a `/` (sent as `%2F`), a `\` or a NUL, is not UTF-8, or is empty in the middle of the path
//! (`a//b`). The file found is then resolved to its real path (symbolic links followed) and must
//! lie under the root's real path: a symbolic link that leads out of the root is a `404`, one
//! that stays inside is followed. (Between that check and the open a link could be swapped; a
//! root whose contents an attacker can change is out of this middleware's reach.)
//!
//! # Blocking
//!
//! The file is opened and its metadata read on the thread that polls the app: a few system
//! calls, which the kernel's caches answer in microseconds (REQ-FILE-5 allows a file body's own
//! blocking calls; this crate has no runtime to move them to). The bytes go out as a
//! [`FileBody`]: a server that declares file bodies reads them off its async threads.
//!
//! ```
//! # use std::io::Write;
//! use rwgi::app::app_fn;
//! use rwgi::http::StatusCode;
//! use rwgi::{AppExt, StartResponse};
//! use rwgi_conformance::test_client::{block_on, TestRequest};
//! use rwgi_middleware::StaticFiles;
//!
//! # let root = std::env::temp_dir().join(format!("rwgi-static-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&root).unwrap();
//! # std::fs::write(root.join("hello.txt"), "hello, world\n").unwrap();
//! let app = app_fn(|_, start: StartResponse| async move {
//!     Ok(start.start(StatusCode::OK, Default::default()).body(rwgi::body::Full::new("the app\n")))
//! })
//! .with(StaticFiles::new("/static", &root)?);
//!
//! let file = block_on(TestRequest::get("/static/hello.txt").send(&app));
//! assert_eq!(file.text(), "hello, world\n");
//! assert_eq!(file.headers()["content-type"], "text/plain; charset=utf-8");
//!
//! let part = block_on(TestRequest::get("/static/hello.txt").header("range", "bytes=7-11").send(&app));
//! assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
//! assert_eq!(part.text(), "world");
//! assert_eq!(part.headers()["content-range"], "bytes 7-11/13");
//!
//! let etag = file.headers()["etag"].clone();
//! let again = block_on(TestRequest::get("/static/hello.txt").header("if-none-match", etag.to_str()?).send(&app));
//! assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
//!
//! assert_eq!(block_on(TestRequest::get("/static/../secret").send(&app)).status(), StatusCode::NOT_FOUND);
//! assert_eq!(block_on(TestRequest::get("/elsewhere").send(&app)).text(), "the app\n");
//! # std::fs::remove_dir_all(&root).unwrap();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::fs::{self, File, Metadata};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rwgi::body::{Either, Full};
use rwgi::file::{FileBody, FileRange};
use rwgi::http::header::{
    ACCEPT_RANGES, ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG,
    IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, IF_UNMODIFIED_SINCE, LAST_MODIFIED,
    LOCATION, RANGE,
};
use rwgi::http::{HeaderMap, HeaderValue, Method, StatusCode};
use rwgi::{App, Environ, Error, Middleware, Response, StartResponse};

/// The body of an answer of [`StaticFiles`]: a file, or a short text of its own.
///
/// ```
/// use rwgi::body::Either;
/// use rwgi::http::StatusCode;
/// use rwgi::{App, StartResponse};
/// use rwgi_conformance::test_client::{block_on, TestRequest};
/// use rwgi_middleware::StaticFiles;
///
/// # let root = std::env::temp_dir();
/// let files = StaticFiles::new("/static", &root)?;
/// let environ = TestRequest::get("/static/no-such-file").into_environ();
/// let response = block_on(files.call(environ, StartResponse::new()))?;
/// assert_eq!(response.status(), StatusCode::NOT_FOUND);
/// assert!(matches!(response.body(), Either::Right(_)), "a text of its own");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type StaticBody = Either<FileBody, Full>;

/// Serves the files under a directory at a path prefix (see the [module documentation](self)).
///
/// As a [`Middleware`], it answers the requests under its prefix and passes the others to the
/// app it wraps; as an [`App`], it answers `404` to those. Requests under the prefix are its
/// own: a missing file is a `404`, not passed on.
///
/// ```
/// use rwgi::http::{HeaderValue, StatusCode};
/// use rwgi_conformance::test_client::{block_on, TestRequest};
/// use rwgi_middleware::StaticFiles;
///
/// # let root = std::env::temp_dir().join(format!("rwgi-static-app-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(root.join("docs")).unwrap();
/// # std::fs::write(root.join("docs/index.html"), "<p>docs</p>").unwrap();
/// // The whole site: every path is a file's.
/// let site = StaticFiles::new("", &root)?
///     .index(Some("index.html"))
///     .cache_control(HeaderValue::from_static("max-age=60"));
/// let page = block_on(TestRequest::get("/docs/").send(&site));
/// assert_eq!(page.text(), "<p>docs</p>");
/// assert_eq!(page.headers()["cache-control"], "max-age=60");
/// let moved = block_on(TestRequest::get("/docs").send(&site));
/// assert_eq!(moved.status(), StatusCode::MOVED_PERMANENTLY);
/// assert_eq!(moved.headers()["location"], "/docs/");
/// # std::fs::remove_dir_all(&root).unwrap();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct StaticFiles {
    config: Arc<Config>,
}

struct Config {
    prefix: String,
    /// The root's real path: every file served resolves to a path under it.
    root: PathBuf,
    index: Option<String>,
    cache_control: Option<HeaderValue>,
}

impl StaticFiles {
    /// Serves the directory `root` at `prefix` (empty, or starting with `/` and not ending with
    /// one, as a `script_name`), with `index.html` as the index of directories.
    ///
    /// # Errors
    ///
    /// When `root` cannot be resolved to a real path, or is not a directory.
    ///
    /// # Panics
    ///
    /// When `prefix` is not a valid `script_name` (REQ-PATH-5): a bug in the app, not in a
    /// request.
    pub fn new(prefix: &str, root: impl AsRef<Path>) -> io::Result<Self> {
        assert!(
            prefix.is_empty() || (prefix.starts_with('/') && !prefix.ends_with('/')),
            "REQ-PATH-5: the prefix {prefix:?} must be empty or start with / and not end with /"
        );
        let root = fs::canonicalize(root)?;
        if !fs::metadata(&root)?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a directory", root.display()),
            ));
        }
        Ok(StaticFiles {
            config: Arc::new(Config {
                prefix: prefix.to_owned(),
                root,
                index: Some("index.html".to_owned()),
                cache_control: None,
            }),
        })
    }

    /// The file that answers for a directory (`None`: directories are not served).
    #[must_use]
    pub fn index(mut self, name: Option<&str>) -> Self {
        self.edit().index = name.map(str::to_owned);
        self
    }

    /// A `Cache-Control` value for every file answer (`200`, `206`, `304`) and redirect.
    #[must_use]
    pub fn cache_control(mut self, value: HeaderValue) -> Self {
        self.edit().cache_control = Some(value);
        self
    }

    fn edit(&mut self) -> &mut Config {
        Arc::get_mut(&mut self.config).expect("configured before it is shared")
    }

    /// The answer to a request under the prefix; the callback back for one outside it.
    fn answer(
        &self,
        environ: &mut Environ,
        start: StartResponse,
    ) -> Result<Result<Response<StaticBody>, StartResponse>, Error> {
        if environ.mount(&self.config.prefix).is_err() {
            return Ok(Err(start));
        }
        serve(&self.config, environ, start).map(Ok)
    }
}

impl fmt::Debug for StaticFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticFiles")
            .field("prefix", &self.config.prefix)
            .field("root", &self.config.root)
            .field("index", &self.config.index)
            .finish_non_exhaustive()
    }
}

impl App for StaticFiles {
    type Body = StaticBody;

    async fn call(
        &self,
        mut environ: Environ,
        start: StartResponse,
    ) -> Result<Response<StaticBody>, Error> {
        match self.answer(&mut environ, start)? {
            Ok(response) => Ok(response),
            Err(start) => Ok(plain(start, StatusCode::NOT_FOUND, "Not Found\n")),
        }
    }
}

impl<A: App> Middleware<A> for StaticFiles {
    type App = StaticFilesApp<A>;

    fn wrap(&self, inner: A) -> StaticFilesApp<A> {
        StaticFilesApp {
            files: self.clone(),
            inner,
        }
    }
}

/// An app wrapped by [`StaticFiles`]: the files under the prefix, the app for the rest.
///
/// ```
/// use rwgi::app::app_fn;
/// use rwgi::body::Full;
/// use rwgi::{Middleware, StartResponse};
/// use rwgi_conformance::test_client::{block_on, TestRequest};
/// use rwgi_middleware::static_files::{StaticFiles, StaticFilesApp};
///
/// let app = app_fn(|_, start: StartResponse| async move {
///     Ok(start.start(Default::default(), Default::default()).body(Full::new("the app")))
/// });
/// let wrapped: StaticFilesApp<_> = StaticFiles::new("/static", std::env::temp_dir())?.wrap(app);
/// assert_eq!(block_on(TestRequest::get("/").send(&wrapped)).text(), "the app");
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct StaticFilesApp<A> {
    files: StaticFiles,
    inner: A,
}

impl<A> fmt::Debug for StaticFilesApp<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticFilesApp")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl<A: App> App for StaticFilesApp<A> {
    type Body = Either<A::Body, StaticBody>;

    async fn call(
        &self,
        mut environ: Environ,
        start: StartResponse,
    ) -> Result<Response<Self::Body>, Error> {
        match self.files.answer(&mut environ, start)? {
            Ok(response) => Ok(response.map_body(Either::Right)),
            Err(start) => Ok(self
                .inner
                .call(environ, start)
                .await?
                .map_body(Either::Left)),
        }
    }
}

/// A short text answer of the middleware's own.
fn plain(start: StartResponse, status: StatusCode, text: &'static str) -> Response<StaticBody> {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    start
        .start(status, headers)
        .body(Either::Right(Full::new(text)))
}

/// What a path under the prefix names.
enum Found {
    File(PathBuf),
    /// A directory asked for without its trailing `/`: where to send the client.
    Redirect(String),
    Missing,
}

/// Resolves the environ's `path_info` (the prefix is mounted) under the root.
fn find(config: &Config, environ: &Environ) -> io::Result<Found> {
    let path_info = environ.path_info();
    let directory = path_info.ends_with('/');
    let mut path = config.root.clone();
    let segments: Vec<_> = environ.path_segments().collect();
    for (at, segment) in segments.iter().enumerate() {
        if segment.as_raw().is_empty() {
            if at + 1 == segments.len() {
                break;
            }
            return Ok(Found::Missing);
        }
        let decoded = segment.decode();
        let Ok(name) = std::str::from_utf8(&decoded) else {
            return Ok(Found::Missing);
        };
        if name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
            return Ok(Found::Missing);
        }
        path.push(name);
    }
    let Some(real) = real_path(config, &path)? else {
        return Ok(Found::Missing);
    };
    let metadata = fs::metadata(&real)?;
    if metadata.is_dir() {
        if !directory {
            let mut location = format!("{}{}/", environ.script_name(), path_info);
            if !environ.query_string().is_empty() {
                location.push('?');
                location.push_str(environ.query_string());
            }
            return Ok(Found::Redirect(location));
        }
        let Some(index) = &config.index else {
            return Ok(Found::Missing);
        };
        return Ok(match real_path(config, &real.join(index))? {
            Some(index) if fs::metadata(&index)?.is_file() => Found::File(index),
            _ => Found::Missing,
        });
    }
    Ok(if metadata.is_file() && !directory {
        Found::File(real)
    } else {
        Found::Missing
    })
}

/// The real path of `path` when it exists and lies under the root; `None` otherwise.
fn real_path(config: &Config, path: &Path) -> io::Result<Option<PathBuf>> {
    match fs::canonicalize(path) {
        Ok(real) if real.starts_with(&config.root) => Ok(Some(real)),
        // A symbolic link out of the root.
        Ok(_) => Ok(None),
        Err(error) if error.kind() == io::ErrorKind::PermissionDenied => Err(error),
        // Missing, or a file where a directory was expected.
        Err(_) => Ok(None),
    }
}

/// The answer to a request under the prefix.
fn serve(
    config: &Config,
    environ: &Environ,
    start: StartResponse,
) -> Result<Response<StaticBody>, Error> {
    let method = environ.method();
    if method != Method::GET && method != Method::HEAD {
        let mut response = plain(
            start,
            StatusCode::METHOD_NOT_ALLOWED,
            "Method Not Allowed\n",
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Ok(response);
    }
    let path = match find(config, environ) {
        Ok(Found::File(path)) => path,
        Ok(Found::Redirect(location)) => {
            let mut response = plain(start, StatusCode::MOVED_PERMANENTLY, "Moved Permanently\n");
            let headers = response.headers_mut();
            if let Ok(location) = HeaderValue::try_from(location) {
                headers.insert(LOCATION, location);
            }
            if let Some(cache_control) = &config.cache_control {
                headers.insert(CACHE_CONTROL, cache_control.clone());
            }
            return Ok(response);
        }
        Ok(Found::Missing) => return Ok(plain(start, StatusCode::NOT_FOUND, "Not Found\n")),
        Err(error) if error.kind() == io::ErrorKind::PermissionDenied => {
            return Ok(plain(start, StatusCode::FORBIDDEN, "Forbidden\n"))
        }
        Err(error) => return Err(error.into()),
    };
    let file = File::open(&path)?;
    let metadata = file.metadata()?;
    let validators = Validators::of(&metadata);
    let request = environ.headers();
    let mut headers = HeaderMap::new();
    headers.insert(ETAG, validators.etag.clone());
    if let Some(modified) = &validators.last_modified {
        headers.insert(LAST_MODIFIED, modified.clone());
    }
    if let Some(cache_control) = &config.cache_control {
        headers.insert(CACHE_CONTROL, cache_control.clone());
    }
    match validators.preconditions(request) {
        Precondition::Failed => {
            return Ok(start
                .start(StatusCode::PRECONDITION_FAILED, headers)
                .body(Either::Right(Full::default())))
        }
        Precondition::NotModified => {
            return Ok(start
                .start(StatusCode::NOT_MODIFIED, headers)
                .body(Either::Right(Full::default())))
        }
        Precondition::Proceed => {}
    }
    let len = metadata.len();
    headers.insert(CONTENT_TYPE, content_type(&path));
    headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let range = match request.get(RANGE) {
        Some(range) if method == Method::GET && validators.if_range(request) => {
            Ranges::parse(range, len)
        }
        // Range is defined for GET only (RFC 9110 §14.2).
        _ => Ranges::Whole,
    };
    let (status, offset, count) = match range {
        Ranges::Whole => (StatusCode::OK, 0, len),
        Ranges::One(first, last) => {
            let value = format!("bytes {first}-{last}/{len}");
            headers.insert(CONTENT_RANGE, header_value(value));
            (StatusCode::PARTIAL_CONTENT, first, last - first + 1)
        }
        Ranges::Unsatisfiable => {
            headers.remove(CONTENT_TYPE);
            let value = format!("bytes */{len}");
            headers.insert(CONTENT_RANGE, header_value(value));
            headers.insert(CONTENT_LENGTH, HeaderValue::from(0));
            return Ok(start
                .start(StatusCode::RANGE_NOT_SATISFIABLE, headers)
                .body(Either::Right(Full::default())));
        }
    };
    headers.insert(CONTENT_LENGTH, HeaderValue::from(count));
    let body = if method == Method::HEAD {
        // The head a GET would have; no body is sent (REQ-SRV-6).
        Either::Right(Full::default())
    } else {
        Either::Left(FileBody::new(FileRange::new(file, offset, count)?))
    };
    Ok(start.start(status, headers).body(body))
}

/// A header value made of digits, letters and punctuation only.
fn header_value(text: String) -> HeaderValue {
    HeaderValue::try_from(text).expect("a visible ASCII header value")
}

/// The validators of a file: its strong `ETag` and its `Last-Modified` date.
struct Validators {
    etag: HeaderValue,
    /// The modification time in whole seconds, as `Last-Modified` gives it.
    modified: Option<SystemTime>,
    last_modified: Option<HeaderValue>,
}

/// What the conditional fields of a request decide (RFC 9110 §13.2.2).
enum Precondition {
    Proceed,
    NotModified,
    Failed,
}

impl Validators {
    fn of(metadata: &Metadata) -> Validators {
        let since_epoch = metadata
            .modified()
            .ok()
            .and_then(|time| time.duration_since(UNIX_EPOCH).ok());
        let etag = match since_epoch {
            Some(since) => format!("\"{:x}-{:x}\"", metadata.len(), since.as_nanos()),
            None => format!("\"{:x}\"", metadata.len()),
        };
        let modified = since_epoch.map(|since| UNIX_EPOCH + Duration::from_secs(since.as_secs()));
        Validators {
            etag: header_value(etag),
            last_modified: modified
                .and_then(|time| HeaderValue::try_from(httpdate::fmt_http_date(time)).ok()),
            modified,
        }
    }

    fn preconditions(&self, request: &HeaderMap) -> Precondition {
        let etag = self.etag.as_bytes();
        if request.contains_key(IF_MATCH) {
            if !matches_any(request, IF_MATCH, etag, true) {
                return Precondition::Failed;
            }
        } else if let Some(since) = date(request, IF_UNMODIFIED_SINCE) {
            if self.modified.map_or(true, |modified| modified > since) {
                return Precondition::Failed;
            }
        }
        if request.contains_key(IF_NONE_MATCH) {
            if matches_any(request, IF_NONE_MATCH, etag, false) {
                return Precondition::NotModified;
            }
        } else if let Some(since) = date(request, IF_MODIFIED_SINCE) {
            if self.modified.is_some_and(|modified| modified <= since) {
                return Precondition::NotModified;
            }
        }
        Precondition::Proceed
    }

    /// Whether a `Range` may be honoured: no `If-Range`, or one that names the current
    /// representation exactly (a strong `ETag`, or the `Last-Modified` date; RFC 9110 §13.1.5).
    fn if_range(&self, request: &HeaderMap) -> bool {
        let Some(value) = request.get(IF_RANGE) else {
            return true;
        };
        let bytes = value.as_bytes();
        if bytes.starts_with(b"\"") || bytes.starts_with(b"W/") {
            return bytes == self.etag.as_bytes();
        }
        let date = value
            .to_str()
            .ok()
            .and_then(|text| httpdate::parse_http_date(text).ok());
        date.is_some() && date == self.modified
    }
}

/// An HTTP date field of the request, if it parses.
fn date(request: &HeaderMap, name: rwgi::http::HeaderName) -> Option<SystemTime> {
    let value = request.get(name)?.to_str().ok()?;
    httpdate::parse_http_date(value).ok()
}

/// Whether a list of entity tags in the field lines `name` holds `*` or `etag`, compared
/// strongly (both must be strong) or weakly (RFC 9110 §8.8.3.2).
fn matches_any(
    request: &HeaderMap,
    name: rwgi::http::HeaderName,
    etag: &[u8],
    strong: bool,
) -> bool {
    request.get_all(name).iter().any(|value| {
        let mut rest = value.as_bytes();
        loop {
            while let [b' ' | b'\t' | b',', tail @ ..] = rest {
                rest = tail;
            }
            if rest.is_empty() {
                return false;
            }
            if let [b'*', tail @ ..] = rest {
                if tail.iter().all(|b| matches!(b, b' ' | b'\t' | b',')) {
                    return true;
                }
                return false;
            }
            let weak = rest.starts_with(b"W/");
            if weak {
                rest = &rest[2..];
            }
            let [b'"', tail @ ..] = rest else {
                return false;
            };
            let Some(end) = tail.iter().position(|&b| b == b'"') else {
                return false;
            };
            let opaque = &tail[..=end];
            if opaque == &etag[1..] && !(strong && weak) {
                return true;
            }
            rest = &tail[end + 1..];
        }
    })
}

/// What a `Range` field asks of a representation of some length.
#[derive(Debug, PartialEq, Eq)]
enum Ranges {
    /// No range to honour: absent, not parsable, not bytes, or several ranges.
    Whole,
    /// One satisfiable range, first and last byte.
    One(u64, u64),
    Unsatisfiable,
}

impl Ranges {
    fn parse(value: &HeaderValue, len: u64) -> Ranges {
        let Ok(text) = value.to_str() else {
            return Ranges::Whole;
        };
        let Some((unit, set)) = text.split_once('=') else {
            return Ranges::Whole;
        };
        if !unit.trim().eq_ignore_ascii_case("bytes") {
            return Ranges::Whole;
        }
        let specs: Vec<&str> = set
            .split(',')
            .map(str::trim)
            .filter(|spec| !spec.is_empty())
            .collect();
        let [spec] = specs[..] else {
            // None, or several: the whole file (several ranges are not served as multipart).
            return Ranges::Whole;
        };
        let Some((first, last)) = spec.split_once('-') else {
            return Ranges::Whole;
        };
        let number = |text: &str| -> Option<u64> {
            let text = text.trim();
            (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
                .then(|| text.parse().ok())
                .flatten()
        };
        match (first.trim().is_empty(), number(first), number(last)) {
            // `-N`: the last N bytes.
            (true, _, Some(suffix)) => {
                if suffix == 0 || len == 0 {
                    Ranges::Unsatisfiable
                } else {
                    Ranges::One(len - suffix.min(len), len - 1)
                }
            }
            (false, Some(first), None) if last.trim().is_empty() => {
                if first >= len {
                    Ranges::Unsatisfiable
                } else {
                    Ranges::One(first, len - 1)
                }
            }
            (false, Some(first), Some(last)) if first <= last => {
                if first >= len {
                    Ranges::Unsatisfiable
                } else {
                    Ranges::One(first, last.min(len - 1))
                }
            }
            _ => Ranges::Whole,
        }
    }
}

/// The `Content-Type` of a file, by its extension.
fn content_type(path: &Path) -> HeaderValue {
    let extension = path
        .extension()
        .and_then(|extension| extension.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    HeaderValue::from_static(match extension.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "txt" => "text/plain; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "json" => "application/json",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/vnd.microsoft.icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "wasm" => "application/wasm",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "wav" => "audio/wav",
        _ => "application/octet-stream",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(value: &'static str, len: u64) -> Ranges {
        Ranges::parse(&HeaderValue::from_static(value), len)
    }

    #[test]
    fn byte_ranges_parse_as_rfc_9110_says() {
        assert_eq!(ranges("bytes=0-99", 1000), Ranges::One(0, 99));
        assert_eq!(ranges("bytes=900-2000", 1000), Ranges::One(900, 999));
        assert_eq!(ranges("bytes=100-", 1000), Ranges::One(100, 999));
        assert_eq!(ranges("bytes=-100", 1000), Ranges::One(900, 999));
        assert_eq!(ranges("bytes=-5000", 1000), Ranges::One(0, 999));
        assert_eq!(ranges("Bytes = 1-1", 10), Ranges::One(1, 1));
        assert_eq!(ranges("bytes=1000-", 1000), Ranges::Unsatisfiable);
        assert_eq!(ranges("bytes=1000-1001", 1000), Ranges::Unsatisfiable);
        assert_eq!(ranges("bytes=-0", 1000), Ranges::Unsatisfiable);
        assert_eq!(ranges("bytes=0-", 0), Ranges::Unsatisfiable);
        assert_eq!(ranges("bytes=-1", 0), Ranges::Unsatisfiable);
        for ignored in [
            "bytes=0-1,5-6",
            "bytes=5-1",
            "bytes=a-b",
            "bytes=+1-2",
            "items=0-1",
            "bytes=",
            "bytes",
            "bytes=-",
        ] {
            assert_eq!(ranges(ignored, 1000), Ranges::Whole, "{ignored}");
        }
    }

    fn with(name: rwgi::http::HeaderName, value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn entity_tag_lists_compare_weakly_or_strongly() {
        let etag = b"\"a-1\"";
        let list = |value| with(IF_NONE_MATCH, value);
        assert!(matches_any(&list("\"a-1\""), IF_NONE_MATCH, etag, false));
        assert!(matches_any(&list("W/\"a-1\""), IF_NONE_MATCH, etag, false));
        assert!(!matches_any(&list("W/\"a-1\""), IF_NONE_MATCH, etag, true));
        assert!(matches_any(
            &list("\"x\", \"a,b\" ,\"a-1\""),
            IF_NONE_MATCH,
            etag,
            true
        ));
        assert!(matches_any(&list("*"), IF_NONE_MATCH, etag, true));
        assert!(!matches_any(&list("\"a-2\""), IF_NONE_MATCH, etag, false));
        assert!(!matches_any(&list("a-1"), IF_NONE_MATCH, etag, false));
        assert!(!matches_any(&list("\"a-1"), IF_NONE_MATCH, etag, false));
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(
            content_type(Path::new("a/b.HTML")),
            "text/html; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("x.woff2")), "font/woff2");
        assert_eq!(content_type(Path::new("noext")), "application/octet-stream");
    }
}
