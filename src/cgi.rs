//! The CGI variables of a request (RFC 3875 §4.1, PEP 3333 "environ Variables").
//!
//! For code that was written against WSGI or CGI, or that compares a server against one,
//! [`Environ::cgi_variables`](crate::Environ::cgi_variables) gives the variables exactly as a
//! PEP 3333 server sets them for the same request (REQ-CGI-1):
//!
//! - `REQUEST_METHOD`, `SERVER_PROTOCOL` (`HTTP/1.0`, `HTTP/1.1`, `HTTP/2`), `SERVER_NAME` and
//!   `SERVER_PORT` (as [`server_name`](crate::Environ::server_name) and
//!   [`server_port`](crate::Environ::server_port)), `QUERY_STRING` (raw, possibly empty),
//!   and `REMOTE_ADDR` (the client's IP) when the server knows it.
//! - `SCRIPT_NAME` and `PATH_INFO` percent-decoded as a whole, so `%2F` becomes `/` (the
//!   lossy WSGI rule; use [`path_segments`](crate::Environ::path_segments) when it matters),
//!   with each byte mapped to one character `U+0000`..`U+00FF` as PEP 3333 "native strings" do.
//! - `CONTENT_TYPE` and `CONTENT_LENGTH` from those headers, without an `HTTP_` prefix, and
//!   absent when the header is (REQ-CGI-2).
//! - `HTTP_<NAME>` for every other header: the name upper-cased with `-` turned into `_`, the
//!   value stripped of surrounding white space and mapped byte for byte as above, repeated
//!   headers joined with `,` in arrival order (REQ-CGI-3).
//! - A header whose name contains `_` is left out (REQ-CGI-4): `X_Forwarded_For` and
//!   `X-Forwarded-For` would otherwise map to the same variable, which lets a client forge
//!   what a proxy set.

use std::collections::BTreeMap;

use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::Version;

use crate::path::{latin1, percent_decode};
use crate::Environ;

/// The CGI variables of one request, by name.
///
/// ```
/// use rwgi::environ::{ConnectionInfo, Environ};
/// use rwgi::http::Request;
/// use rwgi::Input;
///
/// let request = Request::post("/caf%C3%A9?x=1")
///     .header("host", "example.com")
///     .header("content-type", "text/plain")
///     .header("accept", "text/html")
///     .header("accept", "*/*")
///     .body(Input::empty())
///     .unwrap();
/// let environ = Environ::from_request(request, &ConnectionInfo::default()).unwrap();
/// let cgi = environ.cgi_variables();
///
/// assert_eq!(cgi.get("REQUEST_METHOD"), Some("POST"));
/// assert_eq!(cgi.get("PATH_INFO"), Some("/cafÃ©"));
/// assert_eq!(cgi.get("QUERY_STRING"), Some("x=1"));
/// assert_eq!(cgi.get("CONTENT_TYPE"), Some("text/plain"));
/// assert_eq!(cgi.get("HTTP_CONTENT_TYPE"), None);
/// assert_eq!(cgi.get("CONTENT_LENGTH"), None);
/// assert_eq!(cgi.get("HTTP_ACCEPT"), Some("text/html,*/*"));
/// assert_eq!(cgi.get("SERVER_PORT"), Some("80"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CgiVariables {
    pub(crate) vars: BTreeMap<String, String>,
}

impl CgiVariables {
    pub(crate) fn from_environ(environ: &Environ) -> Self {
        let mut vars = BTreeMap::new();
        let mut set = |name: &str, value: String| {
            vars.insert(name.to_owned(), value);
        };
        set("REQUEST_METHOD", environ.method().as_str().to_owned());
        set("SCRIPT_NAME", decoded(environ.script_name()));
        set("PATH_INFO", decoded(environ.path_info()));
        set("QUERY_STRING", environ.query_string().to_owned());
        set("SERVER_NAME", environ.server_name().into_owned());
        set("SERVER_PORT", environ.server_port().to_string());
        set(
            "SERVER_PROTOCOL",
            server_protocol(environ.version()).to_owned(),
        );
        if let Some(peer) = environ.remote_addr() {
            set("REMOTE_ADDR", peer.ip().to_string());
        }
        for (header, name) in [
            (CONTENT_TYPE, "CONTENT_TYPE"),
            (CONTENT_LENGTH, "CONTENT_LENGTH"),
        ] {
            if let Some(value) = environ.headers().get(header) {
                set(name, latin1(value.as_bytes()).trim().to_owned());
            }
        }
        for (name, value) in environ.headers() {
            if name == CONTENT_TYPE || name == CONTENT_LENGTH || name.as_str().contains('_') {
                continue;
            }
            let key = format!(
                "HTTP_{}",
                name.as_str().to_ascii_uppercase().replace('-', "_")
            );
            let value = latin1(value.as_bytes());
            let value = value.trim();
            vars.entry(key)
                .and_modify(|joined: &mut String| {
                    joined.push(',');
                    joined.push_str(value);
                })
                .or_insert_with(|| value.to_owned());
        }
        CgiVariables { vars }
    }

    /// The value of one variable.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// All variables, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// How many variables there are.
    pub fn len(&self) -> usize {
        self.vars.len()
    }

    /// Whether there are none (never the case for a real request).
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    /// The variables as a sorted map.
    pub fn into_map(self) -> BTreeMap<String, String> {
        self.vars
    }
}

fn decoded(raw: &str) -> String {
    latin1(&percent_decode(raw)).into_owned()
}

/// `SERVER_PROTOCOL` for an HTTP version, as CGI spells it (RFC 3875 §4.1.16).
///
/// ```
/// use rwgi::http::Version;
/// assert_eq!(rwgi::cgi::server_protocol(Version::HTTP_11), "HTTP/1.1");
/// assert_eq!(rwgi::cgi::server_protocol(Version::HTTP_2), "HTTP/2");
/// ```
pub fn server_protocol(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::environ::ConnectionInfo;
    use crate::Input;
    use http::Request;

    fn cgi(request: http::request::Builder, connection: ConnectionInfo) -> CgiVariables {
        let request = request.body(Input::empty()).unwrap();
        Environ::from_request(request, &connection)
            .unwrap()
            .cgi_variables()
    }

    #[test]
    fn underscored_headers_are_left_out() {
        let vars = cgi(
            Request::get("/")
                .header("host", "h")
                .header("x-forwarded-for", "10.0.0.1")
                .header("x_forwarded_for", "6.6.6.6"),
            ConnectionInfo::default(),
        );
        assert_eq!(vars.get("HTTP_X_FORWARDED_FOR"), Some("10.0.0.1"));
    }

    #[test]
    fn connection_facts_fill_the_server_variables() {
        let connection = ConnectionInfo::default()
            .local_addr("127.0.0.1:8000".parse().unwrap())
            .peer_addr("127.0.0.2:5000".parse().unwrap());
        let vars = cgi(
            Request::get("/%2Fx%FF").version(Version::HTTP_10),
            connection,
        );
        assert_eq!(vars.get("SERVER_NAME"), Some("127.0.0.1"));
        assert_eq!(vars.get("SERVER_PORT"), Some("8000"));
        assert_eq!(vars.get("SERVER_PROTOCOL"), Some("HTTP/1.0"));
        assert_eq!(vars.get("REMOTE_ADDR"), Some("127.0.0.2"));
        assert_eq!(vars.get("PATH_INFO"), Some("//x\u{ff}"));
        assert_eq!(vars.get("SCRIPT_NAME"), Some(""));
        assert_eq!(vars.get("QUERY_STRING"), Some(""));
        assert_eq!(vars.len(), 8);
    }

    #[test]
    fn non_utf8_header_values_map_byte_for_byte() {
        let value = http::HeaderValue::from_bytes(b"caf\xe9").unwrap();
        let vars = cgi(
            Request::get("/")
                .header("host", "h")
                .header("x-name", value),
            ConnectionInfo::default(),
        );
        assert_eq!(vars.get("HTTP_X_NAME"), Some("caf\u{e9}"));
    }

    #[test]
    fn content_headers_go_without_the_http_prefix_and_only_there() {
        let vars = cgi(
            Request::post("/")
                .header("host", "h")
                .header("content-type", "text/plain")
                .header("content-length", "0")
                .header("x_trace", "forged"),
            ConnectionInfo::default(),
        );
        assert_eq!(vars.get("CONTENT_TYPE"), Some("text/plain"));
        assert_eq!(vars.get("CONTENT_LENGTH"), Some("0"));
        assert_eq!(vars.get("HTTP_CONTENT_TYPE"), None);
        assert_eq!(vars.get("HTTP_CONTENT_LENGTH"), None);
        assert_eq!(vars.get("HTTP_X_TRACE"), None);
    }

    #[test]
    fn iter_len_and_into_map_agree_with_get() {
        let vars = cgi(
            Request::get("/a?b=c").header("host", "h"),
            ConnectionInfo::default(),
        );
        assert!(!vars.is_empty());
        assert!(CgiVariables::default().is_empty());
        let listed: Vec<(&str, &str)> = vars.iter().collect();
        assert_eq!(listed.len(), vars.len());
        for (name, value) in &listed {
            assert_eq!(vars.get(name), Some(*value));
        }
        assert!(listed.contains(&("QUERY_STRING", "b=c")));
        let map = vars.clone().into_map();
        assert_eq!(map.len(), vars.len());
        assert_eq!(map["PATH_INFO"], "/a");
    }

    #[test]
    fn server_protocol_names_every_version() {
        for (version, name) in [
            (Version::HTTP_09, "HTTP/0.9"),
            (Version::HTTP_10, "HTTP/1.0"),
            (Version::HTTP_11, "HTTP/1.1"),
            (Version::HTTP_2, "HTTP/2"),
            (Version::HTTP_3, "HTTP/3"),
        ] {
            assert_eq!(server_protocol(version), name);
        }
    }
}
