//! [`ProxyHeaders`]: the client's address, scheme, host and path prefix as a trusted proxy in
//! front reports them.
//!
//! Behind nginx, the socket's peer is nginx and the scheme is plain `http`; the client's
//! address, the scheme it used, the host it asked for and the prefix nginx removed travel in
//! headers that nginx sets: `X-Forwarded-For`, `-Proto`, `-Host`, `-Port`, `-Prefix`, or the
//! standard `Forwarded` (RFC 7239). Any client can send those headers too, so they are believed
//! only when the request came from a [trusted proxy](TrustedProxies), and only as far as the
//! configured number of proxies reaches: with `hops` proxies in front, each appending to the
//! list, the entry `hops` from the end is the one the outermost trusted proxy wrote, and
//! everything before it is whatever the client made up.
//!
//! What it changes, for a trusted peer: the environ's peer address (with port `0`, since the
//! headers name no client port) and scheme through [`Environ::set_connection`], the `Host`
//! header (so `server_name` and `server_port` follow it), and the path prefix through
//! [`Environ::restore_prefix`]. What the socket said is kept in a [`Forwarded`] extension. A
//! value that does not parse is ignored, and so is a list shorter than `hops`. Nothing is
//! trusted by default.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use ipnet::IpNet;
use rwgi::http::header::{HeaderName, HOST};
use rwgi::http::uri::{Authority, Scheme};
use rwgi::http::{HeaderMap, HeaderValue};
use rwgi::{App, Environ, Error, Middleware, Response, StartResponse};

/// The peers whose forwarding headers are believed: IP addresses, CIDR ranges, `unix` for a
/// peer on a Unix socket, or `*` for every peer (only for a server no client reaches
/// directly). Parsed from a comma-separated list, as gunicorn's `forwarded_allow_ips`.
///
/// ```
/// use rwgi_middleware::proxy::TrustedProxies;
///
/// let trusted: TrustedProxies = "127.0.0.1, 10.0.0.0/8, ::1, unix".parse().unwrap();
/// assert!(trusted.trusts(Some("10.1.2.3".parse().unwrap())));
/// assert!(!trusted.trusts(Some("192.0.2.1".parse().unwrap())));
/// assert!(trusted.trusts(None), "a Unix-socket peer");
/// assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    unix: bool,
    everyone: bool,
}

impl TrustedProxies {
    /// Trusts no peer: forwarding headers are never believed.
    pub fn none() -> Self {
        TrustedProxies::default()
    }

    /// Whether a peer at `ip` (`None`: a Unix-socket peer, which has no address) is trusted.
    pub fn trusts(&self, ip: Option<IpAddr>) -> bool {
        match ip {
            _ if self.everyone => true,
            None => self.unix,
            Some(ip) => {
                let ip = ip.to_canonical();
                self.nets.iter().any(|net| net.contains(&ip))
            }
        }
    }

    /// Whether any peer at all is trusted.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty() && !self.unix && !self.everyone
    }
}

impl FromStr for TrustedProxies {
    type Err = ParseTrustedError;

    fn from_str(list: &str) -> Result<Self, ParseTrustedError> {
        let mut trusted = TrustedProxies::none();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            match entry {
                "*" => trusted.everyone = true,
                "unix" => trusted.unix = true,
                _ if entry.contains('/') => trusted.nets.push(
                    entry
                        .parse()
                        .map_err(|_| ParseTrustedError(entry.to_owned()))?,
                ),
                _ => trusted.nets.push(IpNet::from(
                    entry
                        .parse::<IpAddr>()
                        .map_err(|_| ParseTrustedError(entry.to_owned()))?,
                )),
            }
        }
        Ok(trusted)
    }
}

/// An entry of a trusted-proxy list that is not an address, a CIDR range, `unix` or `*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseTrustedError(String);

impl fmt::Display for ParseTrustedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not an IP address, a CIDR range, `unix` or `*`",
            self.0
        )
    }
}

impl std::error::Error for ParseTrustedError {}

/// Which headers the proxy in front sets. Read only the family the proxy writes (and makes it
/// clear or overwrite): a header of the other family comes from the client.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderFamily {
    /// `X-Forwarded-For`, `X-Forwarded-Proto`, `X-Forwarded-Host`, `X-Forwarded-Port` and
    /// `X-Forwarded-Prefix`, as nginx's `proxy_set_header` lines usually set them.
    #[default]
    XForwarded,
    /// `Forwarded` (RFC 7239): `for`, `proto` and `host` of each element.
    Forwarded,
}

/// What the socket said before [`ProxyHeaders`] rewrote the environ from a trusted proxy's
/// headers: in the environ's extensions of every request it rewrote.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Forwarded {
    /// The peer the request came from: the proxy (`None` on a Unix socket).
    pub proxy: Option<SocketAddr>,
    /// The scheme of the connection to the proxy.
    pub scheme: Scheme,
    /// The `Host` header as the proxy sent it.
    pub host: Option<HeaderValue>,
}

/// The proxy-header middleware; see the [module documentation](self).
///
/// ```
/// use rwgi::app::app_fn;
/// use rwgi::body::Full;
/// use rwgi::environ::ConnectionInfo;
/// use rwgi::AppExt;
/// use rwgi_conformance::test_client::{block_on, TestRequest};
/// use rwgi_middleware::ProxyHeaders;
///
/// let app = app_fn(|environ: rwgi::Environ, start: rwgi::StartResponse| async move {
///     let text = format!(
///         "{} {}://{}{}{} from {}",
///         environ.method(), environ.url_scheme(), environ.server_name(),
///         environ.script_name(), environ.path_info(),
///         environ.remote_addr().map(|a| a.ip().to_string()).unwrap_or_default(),
///     );
///     Ok(start.start(Default::default(), Default::default()).body(Full::new(text)))
/// })
/// .with(ProxyHeaders::new("127.0.0.1".parse().unwrap()));
///
/// let from = |peer: &str| ConnectionInfo::default().peer_addr(peer.parse().unwrap());
/// let request = || {
///     TestRequest::get("/users")
///         .header("host", "backend:8000")
///         .header("x-forwarded-for", "1.2.3.4, 203.0.113.9")
///         .header("x-forwarded-proto", "https")
///         .header("x-forwarded-host", "example.com")
///         .header("x-forwarded-prefix", "/app")
/// };
/// // From the proxy: believed, one hop deep.
/// let proxied = block_on(request().connection(from("127.0.0.1:5000")).send(&app));
/// assert_eq!(proxied.text(), "GET https://example.com/app/users from 203.0.113.9");
/// // From anyone else: the same headers change nothing.
/// let spoofed = block_on(request().connection(from("198.51.100.1:5000")).send(&app));
/// assert_eq!(spoofed.text(), "GET http://backend/users from 198.51.100.1");
/// ```
#[derive(Clone, Debug)]
pub struct ProxyHeaders {
    trusted: TrustedProxies,
    hops: usize,
    family: HeaderFamily,
}

impl ProxyHeaders {
    /// Believes the `X-Forwarded-*` headers of requests from `trusted` peers, one proxy deep.
    pub fn new(trusted: TrustedProxies) -> Self {
        ProxyHeaders {
            trusted,
            hops: 1,
            family: HeaderFamily::XForwarded,
        }
    }

    /// The number of trusted proxies in front, each of which appends to the lists (a CDN and
    /// nginx: 2).
    ///
    /// # Panics
    ///
    /// When `hops` is `0`.
    #[must_use]
    pub fn hops(mut self, hops: usize) -> Self {
        assert!(hops > 0, "a proxy-header middleware needs at least one hop");
        self.hops = hops;
        self
    }

    /// The header family the proxy sets.
    #[must_use]
    pub fn family(mut self, family: HeaderFamily) -> Self {
        self.family = family;
        self
    }

    /// Rewrites `environ` from its forwarding headers when its peer is trusted; returns whether
    /// it did. The rule the middleware applies to every request, for servers and tests.
    pub fn apply(&self, environ: &mut Environ) -> bool {
        let peer = environ.remote_addr();
        let on_unix_socket = peer.is_none() && environ.local_addr().is_none();
        let trusted = match peer {
            Some(peer) => self.trusted.trusts(Some(peer.ip())),
            None => on_unix_socket && self.trusted.trusts(None),
        };
        if !trusted {
            return false;
        }
        let told = match self.family {
            HeaderFamily::XForwarded => Told::from_x_forwarded(environ.headers(), self.hops),
            HeaderFamily::Forwarded => Told::from_forwarded(environ.headers(), self.hops),
        };
        let original = Forwarded {
            proxy: peer,
            scheme: environ.url_scheme().clone(),
            host: environ.headers().get(HOST).cloned(),
        };
        let mut connection = environ.connection().clone();
        if let Some(client) = told.client {
            connection = connection.peer_addr(client);
        }
        if let Some(scheme) = told.scheme.clone() {
            connection = connection.with_scheme(scheme);
        }
        environ.set_connection(connection);
        if let Some(host) = told.host(environ) {
            environ.headers_mut().insert(HOST, host);
        }
        if let Some(prefix) = told.prefix {
            // An unusable prefix (REQ-PATH-5) is ignored like any value that does not parse.
            let _ = environ.restore_prefix(&prefix);
        }
        environ.extensions_mut().insert(original);
        true
    }
}

impl<A: App> Middleware<A> for ProxyHeaders {
    type App = ProxyHeadersApp<A>;

    fn wrap(&self, inner: A) -> ProxyHeadersApp<A> {
        ProxyHeadersApp {
            inner,
            proxy: self.clone(),
        }
    }
}

/// An app wrapped by [`ProxyHeaders`].
#[derive(Debug)]
pub struct ProxyHeadersApp<A> {
    inner: A,
    proxy: ProxyHeaders,
}

impl<A: App> App for ProxyHeadersApp<A> {
    type Body = A::Body;

    fn call(
        &self,
        mut environ: Environ,
        start: StartResponse,
    ) -> impl std::future::Future<Output = Result<Response<A::Body>, Error>> + Send {
        self.proxy.apply(&mut environ);
        self.inner.call(environ, start)
    }
}

/// What the trusted proxy's headers say, each fact when it parsed.
#[derive(Debug, Default)]
struct Told {
    client: Option<SocketAddr>,
    scheme: Option<Scheme>,
    host: Option<String>,
    port: Option<u16>,
    prefix: Option<String>,
}

impl Told {
    fn from_x_forwarded(headers: &HeaderMap, hops: usize) -> Self {
        let entry = |name: &'static str| {
            let name = HeaderName::from_static(name);
            pick(&list(headers, &name), hops).map(str::to_owned)
        };
        Told {
            client: entry("x-forwarded-for").and_then(|v| node(&v)),
            scheme: entry("x-forwarded-proto").and_then(|v| scheme(&v)),
            host: entry("x-forwarded-host"),
            port: entry("x-forwarded-port").and_then(|v| v.parse().ok()),
            prefix: entry("x-forwarded-prefix"),
        }
    }

    fn from_forwarded(headers: &HeaderMap, hops: usize) -> Self {
        let name = HeaderName::from_static("forwarded");
        let elements = list(headers, &name);
        let Some(element) = pick(&elements, hops) else {
            return Told::default();
        };
        let mut told = Told::default();
        for pair in element.split(';') {
            let Some((key, value)) = pair.split_once('=') else {
                continue;
            };
            let value = unquote(value.trim());
            match key.trim().to_ascii_lowercase().as_str() {
                "for" => told.client = node(value),
                "proto" => told.scheme = scheme(value),
                "host" => told.host = Some(value.to_owned()),
                _ => {}
            }
        }
        told
    }

    /// The `Host` header to set: the told host (and port), or the current host with the told
    /// port; `None` when nothing usable was told.
    fn host(&self, environ: &Environ) -> Option<HeaderValue> {
        let authority: Authority = match (&self.host, self.port) {
            (None, None) => return None,
            (Some(host), None) => host.parse().ok()?,
            (host, Some(port)) => {
                let host = match host {
                    Some(host) => host.parse::<Authority>().ok()?.host().to_owned(),
                    None => environ.server_name().into_owned(),
                };
                format!("{host}:{port}").parse().ok()?
            }
        };
        // A host, never credentials: `Host` has no userinfo (RFC 9110 §7.2).
        if authority.as_str().contains('@') {
            return None;
        }
        HeaderValue::from_str(authority.as_str()).ok()
    }
}

/// Every comma-separated entry of every `name` field line, in order, trimmed.
fn list<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect()
}

/// The entry the outermost of `hops` trusted proxies wrote: `hops` from the end. A shorter list
/// did not pass through all of them, and is not believed.
///
/// ```
/// use rwgi_middleware::proxy::pick;
///
/// // The client wrote "spoofed"; the CDN appended the client's address, nginx the CDN's.
/// let list = ["spoofed", "203.0.113.9", "198.51.100.2"];
/// assert_eq!(pick(&list, 2), Some("203.0.113.9"));
/// assert_eq!(pick(&list, 1), Some("198.51.100.2"));
/// assert_eq!(pick(&list, 4), None);
/// ```
pub fn pick<'a>(list: &[&'a str], hops: usize) -> Option<&'a str> {
    let index = list.len().checked_sub(hops)?;
    list.get(index).copied().filter(|entry| !entry.is_empty())
}

/// A client node: an IP address, with or without a port, IPv6 in brackets or bare.
fn node(value: &str) -> Option<SocketAddr> {
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Some(addr);
    }
    let ip = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    ip.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 0))
}

fn scheme(value: &str) -> Option<Scheme> {
    if value.eq_ignore_ascii_case("https") {
        Some(Scheme::HTTPS)
    } else if value.eq_ignore_ascii_case("http") {
        Some(Scheme::HTTP)
    } else {
        None
    }
}

fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rwgi::environ::ConnectionInfo;
    use rwgi::http::Request;
    use rwgi::Input;

    fn environ(peer: Option<&str>, headers: &[(&str, &str)]) -> Environ {
        let mut request = Request::get("/x").header("host", "backend:8000");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let connection = match peer {
            Some(peer) => ConnectionInfo::default()
                .peer_addr(peer.parse().unwrap())
                .local_addr("127.0.0.1:8000".parse().unwrap()),
            None => ConnectionInfo::default(),
        };
        Environ::from_request(request.body(Input::empty()).unwrap(), &connection).unwrap()
    }

    fn proxy(trusted: &str) -> ProxyHeaders {
        ProxyHeaders::new(trusted.parse().unwrap())
    }

    #[test]
    fn nothing_is_trusted_by_default() {
        let mut environ = environ(Some("127.0.0.1:1"), &[("x-forwarded-for", "1.2.3.4")]);
        assert!(!ProxyHeaders::new(TrustedProxies::none()).apply(&mut environ));
        assert_eq!(environ.remote_addr(), Some("127.0.0.1:1".parse().unwrap()));
        assert!(environ.extensions().get::<Forwarded>().is_none());
    }

    #[test]
    fn a_unix_socket_peer_is_trusted_only_when_listed() {
        let headers = [("x-forwarded-for", "1.2.3.4")];
        let mut environ = environ(None, &headers);
        assert!(!proxy("127.0.0.1").apply(&mut environ));
        let mut environ = self::environ(None, &headers);
        assert!(proxy("unix").apply(&mut environ));
        assert_eq!(environ.remote_addr(), Some("1.2.3.4:0".parse().unwrap()));
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_ranges() {
        let mut environ = environ(
            Some("[::ffff:10.0.0.5]:1"),
            &[("x-forwarded-proto", "https")],
        );
        assert!(proxy("10.0.0.0/8").apply(&mut environ));
        assert_eq!(environ.url_scheme(), &Scheme::HTTPS);
    }

    #[test]
    fn the_forwarded_header_is_read_per_rfc_7239() {
        let header = r#"for=192.0.2.1;proto=http, for="[2001:db8::17]:4711";proto=https;host=example.com:8443"#;
        let mut environ = environ(Some("127.0.0.1:1"), &[("forwarded", header)]);
        let proxy = proxy("127.0.0.1").family(HeaderFamily::Forwarded);
        assert!(proxy.apply(&mut environ));
        assert_eq!(
            environ.remote_addr(),
            Some("[2001:db8::17]:4711".parse().unwrap())
        );
        assert_eq!(environ.url_scheme(), &Scheme::HTTPS);
        assert_eq!(
            (environ.server_name().as_ref(), environ.server_port()),
            ("example.com", 8443)
        );
        let original = environ.extensions().get::<Forwarded>().unwrap();
        assert_eq!(original.host.as_ref().unwrap(), "backend:8000");
        assert_eq!(original.scheme, Scheme::HTTP);
    }

    #[test]
    fn the_other_family_is_ignored() {
        let mut environ = environ(Some("127.0.0.1:1"), &[("forwarded", "for=6.6.6.6")]);
        assert!(proxy("127.0.0.1").apply(&mut environ));
        assert_eq!(environ.remote_addr(), Some("127.0.0.1:1".parse().unwrap()));
    }

    #[test]
    fn port_alone_keeps_the_host_and_bad_values_change_nothing() {
        let mut environ = environ(
            Some("127.0.0.1:1"),
            &[
                ("x-forwarded-port", "443"),
                ("x-forwarded-for", "not-an-ip"),
                ("x-forwarded-proto", "gopher"),
                ("x-forwarded-prefix", "/trailing/"),
            ],
        );
        assert!(proxy("127.0.0.1").apply(&mut environ));
        assert_eq!(
            (environ.server_name().as_ref(), environ.server_port()),
            ("backend", 443)
        );
        assert_eq!(environ.remote_addr(), Some("127.0.0.1:1".parse().unwrap()));
        assert_eq!(environ.url_scheme(), &Scheme::HTTP);
        assert_eq!(environ.script_name(), "");
        // Found by fuzzing: a prefix with a `?` would have cut the path inside it.
        let mut environ = self::environ(
            Some("127.0.0.1:1"),
            &[("x-forwarded-prefix", "/a?b=cdefghijklmnop")],
        );
        assert!(proxy("127.0.0.1").apply(&mut environ));
        assert_eq!((environ.script_name(), environ.path_info()), ("", "/x"));
        let mut environ = self::environ(
            Some("127.0.0.1:1"),
            &[("x-forwarded-host", "evil@example.com")],
        );
        proxy("127.0.0.1").apply(&mut environ);
        assert_eq!(environ.headers()["host"], "backend:8000");
    }
}
