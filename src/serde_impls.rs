//! `Serialize` and `Deserialize` for the environ types, through plain mirror structs.
//!
//! An environ serializes as its request head plus the connection facts; the request body and
//! the typed extensions are left out, and a deserialized environ has an empty body. Header
//! values that are not UTF-8 serialize as arrays of bytes. Deserializing runs the same checks
//! as [`Environ::from_request`], so a serialized environ cannot smuggle in a request a server
//! would have refused.

use std::borrow::Cow;
use std::net::SocketAddr;

use http::uri::Scheme;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, Version};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::cgi::{server_protocol, CgiVariables};
use crate::environ::{ConnectionInfo, ServerInfo};
use crate::{Environ, Input};

#[derive(Serialize, Deserialize)]
struct ServerInfoRepr<'a> {
    software: Cow<'a, str>,
    spec_version: (u16, u16),
    multithread: bool,
    multiprocess: bool,
    run_once: bool,
    #[serde(default)]
    file_bodies: bool,
}

impl Serialize for ServerInfo {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ServerInfoRepr {
            software: Cow::Borrowed(&self.software),
            spec_version: self.spec_version,
            multithread: self.multithread,
            multiprocess: self.multiprocess,
            run_once: self.run_once,
            file_bodies: self.file_bodies,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ServerInfo {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let repr = ServerInfoRepr::deserialize(deserializer)?;
        Ok(ServerInfo {
            software: Cow::Owned(repr.software.into_owned()),
            spec_version: repr.spec_version,
            multithread: repr.multithread,
            multiprocess: repr.multiprocess,
            run_once: repr.run_once,
            // Not serialized: the limits are the running server's, not a fact of the request.
            limits: None,
            file_bodies: repr.file_bodies,
        })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum HeaderValueRepr<'a> {
    Text(Cow<'a, str>),
    Bytes(Vec<u8>),
}

#[derive(Serialize, Deserialize)]
struct EnvironRepr<'a> {
    method: Cow<'a, str>,
    target: Cow<'a, str>,
    version: Cow<'a, str>,
    url_scheme: Cow<'a, str>,
    script_name: Cow<'a, str>,
    headers: Vec<(Cow<'a, str>, HeaderValueRepr<'a>)>,
    local_addr: Option<SocketAddr>,
    remote_addr: Option<SocketAddr>,
    server: ServerInfo,
}

impl Serialize for Environ {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let headers = self
            .headers
            .iter()
            .map(|(name, value)| {
                let value = match value.to_str() {
                    Ok(text) => HeaderValueRepr::Text(Cow::Borrowed(text)),
                    Err(_) => HeaderValueRepr::Bytes(value.as_bytes().to_vec()),
                };
                (Cow::Borrowed(name.as_str()), value)
            })
            .collect();
        EnvironRepr {
            method: Cow::Borrowed(self.method.as_str()),
            target: self.request_target(),
            version: Cow::Borrowed(server_protocol(self.version)),
            url_scheme: Cow::Borrowed(self.connection.scheme().as_str()),
            script_name: Cow::Borrowed(self.script_name()),
            headers,
            local_addr: self.local_addr(),
            remote_addr: self.remote_addr(),
            server: self.server().clone(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Environ {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let repr = EnvironRepr::deserialize(deserializer)?;
        let method = Method::from_bytes(repr.method.as_bytes()).map_err(D::Error::custom)?;
        let uri = Uri::try_from(repr.target.as_ref()).map_err(D::Error::custom)?;
        let version = match repr.version.as_ref() {
            "HTTP/0.9" => Version::HTTP_09,
            "HTTP/1.0" => Version::HTTP_10,
            "HTTP/1.1" => Version::HTTP_11,
            "HTTP/2" => Version::HTTP_2,
            "HTTP/3" => Version::HTTP_3,
            other => return Err(D::Error::custom(format!("unknown HTTP version {other:?}"))),
        };
        let scheme = Scheme::try_from(repr.url_scheme.as_ref()).map_err(D::Error::custom)?;
        let mut headers = HeaderMap::with_capacity(repr.headers.len());
        for (name, value) in repr.headers {
            let name = HeaderName::try_from(name.as_ref()).map_err(D::Error::custom)?;
            let value = match value {
                HeaderValueRepr::Text(text) => HeaderValue::try_from(text.as_ref()),
                HeaderValueRepr::Bytes(bytes) => HeaderValue::from_bytes(&bytes),
            }
            .map_err(D::Error::custom)?;
            headers.append(name, value);
        }
        let mut request = Request::new(Input::empty());
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.version_mut() = version;
        *request.headers_mut() = headers;
        let mut connection = ConnectionInfo::new(scheme).server(repr.server);
        if let Some(addr) = repr.local_addr {
            connection = connection.local_addr(addr);
        }
        if let Some(addr) = repr.remote_addr {
            connection = connection.peer_addr(addr);
        }
        let mut environ = Environ::from_request(request, &connection).map_err(D::Error::custom)?;
        environ.mount(&repr.script_name).map_err(D::Error::custom)?;
        Ok(environ)
    }
}

impl Serialize for CgiVariables {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.vars.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for CgiVariables {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(CgiVariables {
            vars: Deserialize::deserialize(deserializer)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::cgi::CgiVariables;
    use crate::environ::tests::{environ_of, try_environ_on};
    use crate::environ::{ConnectionInfo, ServerInfo};
    use crate::Environ;

    #[test]
    fn environ_round_trips_through_json() {
        let connection = ConnectionInfo::default()
            .peer_addr("[::1]:4000".parse().unwrap())
            .server(ServerInfo::new("test/1").multithread(true));
        let mut environ = try_environ_on(
            http::Request::post("/app/a%2Fb?q=1")
                .header("x-bin", "v")
                .header("accept", "a")
                .header("accept", "b"),
            &connection,
        )
        .unwrap();
        environ.mount("/app").unwrap();
        let json = serde_json::to_value(&environ).unwrap();
        assert_eq!(json["target"], "/app/a%2Fb?q=1");
        assert_eq!(json["script_name"], "/app");
        assert_eq!(json["server"]["multithread"], true);
        let back: Environ = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back.path_info(), "/a%2Fb");
        assert_eq!(back.headers().get_all("accept").iter().count(), 2);
        assert_eq!(back.remote_addr(), environ.remote_addr());
        assert_eq!(serde_json::to_value(&back).unwrap(), json);
    }

    #[test]
    fn cgi_variables_round_trip_through_json() {
        let vars = CgiVariables::from_environ(&environ_of(http::Request::get("/a?b")));
        let json = serde_json::to_string(&vars).unwrap();
        let back: CgiVariables = serde_json::from_str(&json).unwrap();
        assert_eq!(back.get("QUERY_STRING"), Some("b"));
        assert_eq!(back, vars);
    }

    #[test]
    fn non_utf8_header_values_survive() {
        let mut environ = environ_of(http::Request::get("/"));
        environ
            .headers_mut()
            .insert("x-raw", http::HeaderValue::from_bytes(b"\xff\xfe").unwrap());
        let json = serde_json::to_string(&environ).unwrap();
        assert!(json.contains("[255,254]"), "{json}");
        let back: Environ = serde_json::from_str(&json).unwrap();
        assert_eq!(back.headers()["x-raw"].as_bytes(), b"\xff\xfe");
    }

    #[test]
    fn deserializing_applies_the_server_checks() {
        let mut json = serde_json::to_value(environ_of(http::Request::get("/"))).unwrap();
        json["target"] = "*".into();
        let error = serde_json::from_value::<Environ>(json).unwrap_err();
        assert_eq!(
            error.to_string(),
            "REQ-ENV-6: the * target is only for OPTIONS"
        );
    }
}
