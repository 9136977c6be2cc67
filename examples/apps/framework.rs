//! A small web framework built only on rwgi's public API: a [`Router`] with path parameters,
//! async handlers and JSON replies.
//!
//! It shows what a framework gets from the contract for free: decoded path segments that keep
//! `%2F` inside a parameter (REQ-PATH-4), a size-limited body reader, mounting under a prefix
//! (`script_name`, REQ-PATH-6), and `HEAD` handled by the server dropping the body (REQ-SRV-6).
//!
//! ```text
//! let app = Router::new()
//!     .get("/users/{id}", |request: Request| async move {
//!         let id: u64 = request.parse_param("id")?;
//!         Ok::<_, Reply>(Reply::json(StatusCode::OK, &json!({ "id": id })))
//!     });
//! ```

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;

use bytes::Bytes;
use rwgi::body::Full;
use rwgi::http::header::{HeaderName, ALLOW, CONTENT_TYPE};
use rwgi::http::{HeaderMap, HeaderValue, Method, StatusCode};
use rwgi::input::ReadError;
use rwgi::path::Segments;
use rwgi::{App, Environ, Error, Response, StartResponse};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;

/// The largest JSON body `POST /echo` accepts.
pub const ECHO_LIMIT: usize = 64 * 1024;

/// A handler's answer: a status, headers and a body held in memory, or the error that leaves
/// the app without an answer (the server turns it into a `500`, REQ-ERR-2).
///
/// Handlers return anything that converts into a `Reply`: a `Reply`, a bare [`StatusCode`], an
/// [`Error`], or a `Result` of those, so `?` works on the request helpers.
#[derive(Debug)]
pub struct Reply {
    /// Boxed: handlers pass replies around as the error of `Result`s, which stay small.
    inner: Result<Box<Answer>, Error>,
}

#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn new(status: StatusCode, content_type: Option<&'static str>, body: Bytes) -> Self {
        let mut headers = HeaderMap::new();
        if let Some(content_type) = content_type {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        }
        Reply {
            inner: Ok(Box::new(Answer {
                status,
                headers,
                body,
            })),
        }
    }

    /// `value` serialized as JSON, with `content-type: application/json`.
    ///
    /// A value that cannot be serialized (a map with non-string keys) is a bug in the handler,
    /// not the client's fault: the reply becomes an app error, so the client gets a `500`.
    pub fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Reply::new(status, Some("application/json"), body.into()),
            Err(error) => Error::new(error).into(),
        }
    }

    /// Plain text, with `content-type: text/plain; charset=utf-8`.
    pub fn text(status: StatusCode, text: impl Into<String>) -> Self {
        let text: String = text.into();
        Reply::new(status, Some("text/plain; charset=utf-8"), text.into())
    }

    /// A status with an empty body and no content type, like `204 No Content`.
    pub fn status(status: StatusCode) -> Self {
        Reply::new(status, None, Bytes::new())
    }

    /// The framework's error document: `{"error": message}` with the given status.
    pub fn error(status: StatusCode, message: impl fmt::Display) -> Self {
        Reply::json(status, &json!({ "error": message.to_string() }))
    }

    /// Adds a header (repeated calls with one name add repeated headers).
    #[must_use]
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        if let Ok(answer) = &mut self.inner {
            answer.headers.append(name, value);
        }
        self
    }

    /// Answers through the server's callback (REQ-START-1).
    fn into_response(self, start: StartResponse) -> Result<Response<Full>, Error> {
        let answer = self.inner?;
        Ok(start
            .start(answer.status, answer.headers)
            .body(Full::new(answer.body)))
    }
}

impl From<StatusCode> for Reply {
    fn from(status: StatusCode) -> Self {
        Reply::status(status)
    }
}

impl From<Error> for Reply {
    fn from(error: Error) -> Self {
        Reply { inner: Err(error) }
    }
}

impl<T: Into<Reply>, E: Into<Reply>> From<Result<T, E>> for Reply {
    fn from(result: Result<T, E>) -> Self {
        result.map_or_else(Into::into, Into::into)
    }
}

/// What a handler receives: the request's [`Environ`] and the parameters its route matched.
#[derive(Debug)]
pub struct Request {
    environ: Environ,
    params: Vec<(Arc<str>, String)>,
}

impl Request {
    /// The request as the server gave it.
    pub fn environ(&self) -> &Environ {
        &self.environ
    }

    /// The request, to read its body or change it.
    pub fn environ_mut(&mut self) -> &mut Environ {
        &mut self.environ
    }

    /// The decoded value of the path parameter `name`, as matched by `{name}` in the route.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(param, _)| &**param == name)
            .map(|(_, value)| value.as_str())
    }

    /// The path parameter `name` parsed as a `T`.
    ///
    /// # Errors
    ///
    /// A `400` reply when the value does not parse, and a `500` when the route has no such
    /// parameter (a bug in the app, not in the request).
    pub fn parse_param<T>(&self, name: &str) -> Result<T, Reply>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        let Some(value) = self.param(name) else {
            let message = format!("the route has no path parameter `{name}`");
            return Err(Error::msg(message).into());
        };
        value.parse().map_err(|error| {
            let message = format!("invalid path parameter `{name}`: {error}");
            Reply::error(StatusCode::BAD_REQUEST, message)
        })
    }

    /// Reads the whole body, at most `limit` bytes, and parses it as JSON.
    ///
    /// # Errors
    ///
    /// A `413` reply when the body is larger than `limit`, a `400` when it is not JSON of the
    /// expected shape, and an app error when the body fails (the client went away or broke
    /// it, which the server answers with the body error's own status: REQ-INPUT-8).
    pub async fn json<T: DeserializeOwned>(&mut self, limit: usize) -> Result<T, Reply> {
        let body = match self.environ.input_mut().read_to_end(limit).await {
            Ok(body) => body,
            Err(error @ ReadError::TooLarge { .. }) => {
                return Err(Reply::error(StatusCode::PAYLOAD_TOO_LARGE, error));
            }
            Err(error) => return Err(Error::new(error).into()),
        };
        serde_json::from_slice(&body).map_err(|error| {
            let message = format!("invalid JSON body: {error}");
            Reply::error(StatusCode::BAD_REQUEST, message)
        })
    }

    /// The URL of `path` (raw, relative to where the app is mounted) as the client must ask
    /// for it: prefixed with `script_name`, so links stay right when the app is mounted.
    pub fn url_for(&self, path: &str) -> String {
        format!("{}{path}", self.environ.script_name())
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = Reply> + Send>>;
type Handler = Box<dyn Fn(Request) -> BoxFuture + Send + Sync>;

/// One segment of a route pattern.
#[derive(Debug)]
enum Part {
    /// Must equal the decoded request segment.
    Literal(String),
    /// Matches any one segment, which becomes the named parameter.
    Param(Arc<str>),
}

/// A route pattern such as `/users/{id}`.
#[derive(Debug)]
struct Pattern {
    parts: Vec<Part>,
}

impl Pattern {
    fn parse(pattern: &str) -> Self {
        let Some(rest) = pattern.strip_prefix('/') else {
            panic!("route pattern {pattern:?} must start with /");
        };
        let parts = rest
            .split('/')
            .map(|part| match part.strip_prefix('{') {
                Some(name) => match name.strip_suffix('}') {
                    Some(name) if !name.is_empty() && !name.contains(['{', '}']) => {
                        Part::Param(name.into())
                    }
                    _ => panic!("route pattern {pattern:?}: `{part}` is not a `{{name}}`"),
                },
                None => Part::Literal(part.to_owned()),
            })
            .collect();
        Pattern { parts }
    }

    /// The decoded values of the parameters, in order, when every segment matches.
    fn matches<'a>(&self, segments: &'a [Cow<'_, [u8]>]) -> Option<Vec<&'a [u8]>> {
        if segments.len() != self.parts.len() {
            return None;
        }
        let mut values = Vec::new();
        for (part, segment) in self.parts.iter().zip(segments) {
            match part {
                Part::Literal(literal) if literal.as_bytes() == &**segment => {}
                Part::Literal(_) => return None,
                Part::Param(_) => values.push(&**segment),
            }
        }
        Some(values)
    }

    fn names(&self) -> impl Iterator<Item = &Arc<str>> {
        self.parts.iter().filter_map(|part| match part {
            Part::Param(name) => Some(name),
            Part::Literal(_) => None,
        })
    }
}

struct Route {
    method: Method,
    pattern: Pattern,
    handler: Handler,
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route")
            .field("method", &self.method)
            .field("pattern", &self.pattern)
            .finish_non_exhaustive()
    }
}

/// Routes requests by method and path pattern to async handlers; an [`App`].
///
/// Patterns are `/`-separated segments; `{name}` matches any one segment and makes it the
/// parameter `name`, decoded on its own so an encoded `/` stays inside it (REQ-PATH-4). Other
/// segments match the decoded request segment exactly. Routing uses `path_info`, so a mounted
/// router routes on the path below its prefix; an empty `path_info` (the request named the
/// prefix itself) routes as `/`.
///
/// Answers (REQ-APP-4): `404` when no pattern matches, `405` with `Allow` when patterns match
/// but not for this method, `400` when a parameter is not UTF-8. `HEAD` runs the `GET` route
/// unless one for `HEAD` exists; the server drops the body (REQ-SRV-6).
#[derive(Debug, Default)]
pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    /// A router without routes: it answers `404` to everything.
    pub fn new() -> Self {
        Router::default()
    }

    /// Adds a route; earlier routes win when several match.
    ///
    /// # Panics
    ///
    /// When `pattern` does not start with `/` or has a segment with braces that is not exactly
    /// `{name}`: routes are fixed when the app is built, so this is a bug in the app.
    #[must_use]
    pub fn route<H, F, R>(mut self, method: Method, pattern: &str, handler: H) -> Self
    where
        H: Fn(Request) -> F + Send + Sync + 'static,
        F: Future<Output = R> + Send + 'static,
        R: Into<Reply>,
    {
        let handler: Handler = Box::new(move |request| {
            let reply = handler(request);
            Box::pin(async move { reply.await.into() })
        });
        self.routes.push(Route {
            method,
            pattern: Pattern::parse(pattern),
            handler,
        });
        self
    }

    /// Adds a `GET` route (which also serves `HEAD`).
    #[must_use]
    pub fn get<H, F, R>(self, pattern: &str, handler: H) -> Self
    where
        H: Fn(Request) -> F + Send + Sync + 'static,
        F: Future<Output = R> + Send + 'static,
        R: Into<Reply>,
    {
        self.route(Method::GET, pattern, handler)
    }

    /// Adds a `POST` route.
    #[must_use]
    pub fn post<H, F, R>(self, pattern: &str, handler: H) -> Self
    where
        H: Fn(Request) -> F + Send + Sync + 'static,
        F: Future<Output = R> + Send + 'static,
        R: Into<Reply>,
    {
        self.route(Method::POST, pattern, handler)
    }

    /// Adds a `DELETE` route.
    #[must_use]
    pub fn delete<H, F, R>(self, pattern: &str, handler: H) -> Self
    where
        H: Fn(Request) -> F + Send + Sync + 'static,
        F: Future<Output = R> + Send + 'static,
        R: Into<Reply>,
    {
        self.route(Method::DELETE, pattern, handler)
    }

    /// Finds the handler for a request, or the reply that says why there is none.
    fn resolve(&self, environ: Environ) -> Result<(&Handler, Request), Reply> {
        let path = match environ.path_info() {
            "" => "/",
            path => path,
        };
        let segments: Vec<Cow<'_, [u8]>> = Segments::new(path).map(|s| s.decode()).collect();
        let matched: Vec<(&Route, Vec<&[u8]>)> = self
            .routes
            .iter()
            .filter_map(|route| Some((route, route.pattern.matches(&segments)?)))
            .collect();
        let method = environ.method();
        let serving = |wanted: &Method| matched.iter().find(|(route, _)| route.method == wanted);
        let chosen = serving(method).or_else(|| {
            // Only a GET route can answer HEAD; a route for HEAD itself comes first.
            (*method == Method::HEAD)
                .then(|| serving(&Method::GET))
                .flatten()
        });
        let Some((route, values)) = chosen else {
            if matched.is_empty() {
                return Err(Reply::error(StatusCode::NOT_FOUND, "not found"));
            }
            return Err(
                Reply::error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
                    .header(ALLOW, allow(matched.iter().map(|(route, _)| &route.method))),
            );
        };
        let params = route
            .pattern
            .names()
            .zip(values)
            .map(|(name, value)| match std::str::from_utf8(value) {
                Ok(value) => Ok((Arc::clone(name), value.to_owned())),
                Err(_) => Err(Reply::error(
                    StatusCode::BAD_REQUEST,
                    format!("path parameter `{name}` is not valid UTF-8"),
                )),
            })
            .collect::<Result<_, _>>()?;
        Ok((&route.handler, Request { environ, params }))
    }
}

/// The `Allow` value for the methods of the routes that matched: each once, in route order,
/// with `HEAD` after `GET` since GET routes serve it.
fn allow<'a>(methods: impl Iterator<Item = &'a Method>) -> HeaderValue {
    let mut allowed: Vec<&str> = Vec::new();
    let mut add = |method: &'a str| {
        if !allowed.contains(&method) {
            allowed.push(method);
        }
    };
    for method in methods {
        add(method.as_str());
        if method == Method::GET {
            add(Method::HEAD.as_str());
        }
    }
    HeaderValue::try_from(allowed.join(", "))
        .expect("method names are tokens, which are valid header values")
}

impl App for Router {
    type Body = Full;

    async fn call(&self, environ: Environ, start: StartResponse) -> Result<Response<Full>, Error> {
        let reply = match self.resolve(environ) {
            Ok((handler, request)) => handler(request).await,
            Err(reply) => reply,
        };
        reply.into_response(start)
    }
}

/// The demo app the reference server serves by default:
///
/// | route                  | answer                                                 |
/// |------------------------|--------------------------------------------------------|
/// | `GET /`                | JSON index with links (carrying the mount prefix)      |
/// | `GET /hello/{name}`    | JSON greeting                                          |
/// | `GET /files/{name}`    | the decoded name as text: `/files/a%2Fb` names `a/b`   |
/// | `POST /echo`           | the JSON body, back ([`ECHO_LIMIT`] bytes at most)     |
/// | `GET /users/{id}`      | JSON user; `400` unless `id` is a number               |
/// | `DELETE /users/{id}`   | `204 No Content`                                       |
pub fn demo_app() -> Router {
    Router::new()
        .get("/", |request: Request| async move {
            let links = json!({
                "echo": request.url_for("/echo"),
                "files": request.url_for("/files/{name}"),
                "hello": request.url_for("/hello/{name}"),
                "self": request.url_for("/"),
                "user": request.url_for("/users/{id}"),
            });
            Reply::json(StatusCode::OK, &json!({ "links": links }))
        })
        .get("/hello/{name}", |request: Request| async move {
            let name = request.param("name").unwrap_or_default();
            let greeting = format!("Hello, {name}!");
            Reply::json(StatusCode::OK, &json!({ "greeting": greeting }))
        })
        .get("/files/{name}", |request: Request| async move {
            let name = request.param("name").unwrap_or_default();
            Reply::text(StatusCode::OK, format!("file name: {name}\n"))
        })
        .post("/echo", |mut request: Request| async move {
            let body: serde_json::Value = request.json(ECHO_LIMIT).await?;
            Ok::<_, Reply>(Reply::json(StatusCode::OK, &body))
        })
        .get("/users/{id}", |request: Request| async move {
            let id: u64 = request.parse_param("id")?;
            let url = request.url_for(&format!("/users/{id}"));
            let user = json!({ "id": id, "links": { "self": url }, "name": format!("user {id}") });
            Ok::<_, Reply>(Reply::json(StatusCode::OK, &user))
        })
        .delete("/users/{id}", |request: Request| async move {
            request.parse_param::<u64>("id")?;
            Ok::<_, Reply>(StatusCode::NO_CONTENT)
        })
}
