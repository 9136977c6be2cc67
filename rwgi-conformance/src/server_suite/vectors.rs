//! The shared request→environ vectors of `spec/vectors/`, and how an outcome is judged
//! against them. The format is described in `spec/vectors/README.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::SocketAddr;

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};

use super::client::preview;
use super::probe::{self, InputEnd, InputRecord, Seen};
use super::{fail, Checked, Suite, IO_TIMEOUT};

/// The vector files, by the name of their group; the check of group `g` is `vectors_g`.
pub(super) const GROUPS: [(&str, &str); 6] = [
    ("paths", include_str!("../../../spec/vectors/paths.json")),
    (
        "targets",
        include_str!("../../../spec/vectors/targets.json"),
    ),
    ("hosts", include_str!("../../../spec/vectors/hosts.json")),
    (
        "headers",
        include_str!("../../../spec/vectors/headers.json"),
    ),
    ("bodies", include_str!("../../../spec/vectors/bodies.json")),
    ("mount", include_str!("../../../spec/vectors/mount.json")),
];

/// One vector file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Group {
    /// What the vectors of the file have in common: for readers of the file only.
    #[serde(rename = "description")]
    _description: IgnoredAny,
    pub(super) vectors: Vec<Vector>,
}

/// One request and the outcomes a conforming server may give it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Vector {
    pub(super) name: String,
    /// The requirements the vector checks; the first one leads its failure messages.
    pub(super) requirements: Vec<String>,
    /// Why the outcome is what it is: for readers of the file only.
    #[serde(rename = "note", default)]
    _note: IgnoredAny,
    /// The root path the server mounts the app at.
    #[serde(default)]
    pub(super) root_path: Option<String>,
    /// The request bytes, one character per byte.
    pub(super) request: String,
    /// The outcomes that conform; any one of them will do.
    pub(super) expect: Vec<Expected>,
}

/// A conforming outcome.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum Expected {
    /// The server answers this status without calling the app.
    Refused(Refused),
    /// The server calls the app once, with these facts.
    Called(Box<Called>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Refused {
    pub(super) status: u16,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Called {
    pub(super) environ: ExpectedEnviron,
    pub(super) cgi: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExpectedEnviron {
    pub(super) method: String,
    pub(super) script_name: String,
    pub(super) path_info: String,
    pub(super) path_segments: Vec<String>,
    pub(super) query_string: String,
    pub(super) server_name: String,
    pub(super) server_port: String,
    pub(super) version: String,
    pub(super) url_scheme: String,
    pub(super) headers: BTreeMap<String, Vec<String>>,
    #[serde(deserialize_with = "required")]
    pub(super) input_length: Option<u64>,
    pub(super) input: String,
}

/// Makes an `Option` field required, so `null` must be written out.
fn required<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    Option::deserialize(deserializer)
}

/// What happened to one request.
#[derive(Debug, Default)]
pub(super) struct Observed {
    /// The status the client got, if a response came.
    pub(super) status: Option<u16>,
    /// Every call of the app, with what reading the body gave.
    pub(super) calls: Vec<(Seen, Option<InputRecord>)>,
}

/// The addresses placeholders stand for: the server's (`{local_host}`, `{local_port}`) and
/// the client's (`{remote_ip}`), as the connection has them.
#[derive(Clone, Copy, Debug)]
pub(super) struct Addresses {
    pub(super) local: Option<SocketAddr>,
    pub(super) peer: Option<SocketAddr>,
}

impl Addresses {
    /// `text` with its placeholders filled in; `None` when it names an address the connection
    /// does not have (the value must then be absent).
    fn resolve(&self, text: &str) -> Option<String> {
        if !text.contains('{') {
            return Some(text.to_owned());
        }
        let host = match self.local {
            Some(SocketAddr::V4(addr)) => addr.ip().to_string(),
            Some(SocketAddr::V6(addr)) => format!("[{}]", addr.ip()),
            None => "localhost".to_owned(),
        };
        let port = self.local.map_or(80, |addr| addr.port()).to_string();
        let mut text = text.replace("{local_host}", &host);
        text = text.replace("{local_port}", &port);
        if text.contains("{remote_ip}") {
            text = text.replace("{remote_ip}", &self.peer?.ip().to_string());
        }
        Some(text)
    }
}

/// Turns a string of the vectors into bytes, one per character.
pub(super) fn bytes_of(text: &str) -> Result<Vec<u8>, String> {
    text.chars()
        .map(|c| u8::try_from(c).map_err(|_| format!("{c:?} is not a byte (above U+00FF)")))
        .collect()
}

/// Parses the vector file of `group`.
pub(super) fn load(group: &str) -> Result<Group, String> {
    let (_, json) = GROUPS
        .iter()
        .find(|(name, _)| *name == group)
        .ok_or_else(|| format!("no vector file {group}.json"))?;
    serde_json::from_str(json).map_err(|error| format!("{group}.json does not parse: {error}"))
}

impl Vector {
    /// The request method, as the first word of the request.
    pub(super) fn method(&self) -> &str {
        self.request.split(' ').next().unwrap_or_default()
    }

    fn requirement(&self) -> &str {
        self.requirements
            .first()
            .map_or("REQ-ENV-1", String::as_str)
    }

    /// `Ok` when `observed` is one of the expected outcomes; else what was expected against
    /// what was seen, led by the requirement broken: the rule of the first fact that differs
    /// when the app was called as an outcome allows, else the vector's first requirement.
    pub(super) fn judge(&self, observed: &Observed, addresses: Addresses) -> Result<(), String> {
        let mut expected = Vec::new();
        let mut broken = None;
        for outcome in &self.expect {
            match outcome.mismatches(observed, addresses, &self.requirements) {
                None => return Ok(()),
                Some((rule, why)) => {
                    broken = broken.or(rule);
                    expected.push(why);
                }
            }
        }
        let seen = match (observed.status, observed.calls.len()) {
            (Some(status), calls) => format!("status {status} after {calls} call(s) of the app"),
            (None, calls) => format!("no response after {calls} call(s) of the app"),
        };
        Err(format!(
            "{}: vector `{}`: expected {}; seen {seen}",
            broken.unwrap_or_else(|| self.requirement()),
            self.name,
            expected.join(", or "),
        ))
    }
}

impl Expected {
    /// `None` when `observed` is this outcome; else this outcome described, with the facts
    /// that differ, and the rule of the first fact that differs when the app was called once.
    fn mismatches<'a>(
        &self,
        observed: &Observed,
        addresses: Addresses,
        listed: &'a [String],
    ) -> Option<(Option<&'a str>, String)> {
        match self {
            Expected::Refused(Refused { status }) => {
                let refused = observed.status == Some(*status) && observed.calls.is_empty();
                (!refused).then(|| (None, format!("status {status} without calling the app")))
            }
            Expected::Called(called) => match &observed.calls[..] {
                [(seen, input)] => {
                    let differences = called.differences(seen, input.as_ref(), addresses);
                    let rule = differences.first().map(|(field, _)| rule(field, listed));
                    let texts: Vec<&str> = differences.iter().map(|(_, t)| t.as_str()).collect();
                    (!differences.is_empty())
                        .then(|| (rule, format!("the app called with {}", texts.join(", "))))
                }
                _ => Some((
                    None,
                    format!(
                        "the app called once with path_info {:?}",
                        called.environ.path_info
                    ),
                )),
            },
        }
    }
}

/// The requirements that govern a compared fact, the most general first.
fn rules_of(field: &str) -> &'static [&'static str] {
    const PATHS: &[&str] = &[
        "REQ-PATH-1",
        "REQ-PATH-2",
        "REQ-PATH-3",
        "REQ-PATH-4",
        "REQ-PATH-5",
        "REQ-PATH-6",
        "REQ-PATH-7",
    ];
    match field {
        "method" | "CGI REQUEST_METHOD" => &["REQ-ENV-1"],
        "script_name" | "path_info" | "CGI SCRIPT_NAME" | "CGI PATH_INFO" => PATHS,
        "path_segments" => &["REQ-PATH-4", "REQ-PATH-3"],
        "query_string" | "CGI QUERY_STRING" => &["REQ-ENV-5", "REQ-PATH-1"],
        "server_name" | "server_port" | "CGI SERVER_NAME" | "CGI SERVER_PORT" => &["REQ-ENV-4"],
        "version" | "CGI SERVER_PROTOCOL" => &["REQ-ENV-11"],
        "url_scheme" => &["REQ-ENV-8"],
        "header" => &["REQ-ENV-7", "REQ-ENV-12", "REQ-ENV-14"],
        "input_length" => &["REQ-INPUT-3"],
        "input" => &["REQ-INPUT-1"],
        "CGI REMOTE_ADDR" => &["REQ-ENV-10"],
        "CGI CONTENT_TYPE" | "CGI CONTENT_LENGTH" => &["REQ-CGI-2"],
        "CGI HTTP_HOST" => &["REQ-CGI-3", "REQ-ENV-14"],
        _ => &["REQ-CGI-3", "REQ-CGI-4", "REQ-CGI-1"],
    }
}

/// The requirement a difference in `field` breaks: of the rules that govern it, the first
/// the vector lists (a vector about mounting names REQ-PATH-6 for a wrong `script_name`),
/// else the most general one.
fn rule<'a>(field: &str, listed: &'a [String]) -> &'a str {
    let rules = rules_of(field);
    listed
        .iter()
        .map(String::as_str)
        .find(|id| rules.contains(id))
        .unwrap_or(rules[0])
}

impl Called {
    /// Every fact of `seen` (and of the body read) that differs from the expected one: the
    /// fact's kind (for [`rule`]) and `name expected (seen …)`.
    fn differences(
        &self,
        seen: &Seen,
        input: Option<&InputRecord>,
        addresses: Addresses,
    ) -> Vec<(String, String)> {
        let expected = &self.environ;
        let mut out = Vec::new();
        let mut field = |name: &str, expected: &str, seen: &str| {
            let expected = addresses.resolve(expected);
            if expected.as_deref() != Some(seen) {
                out.push((
                    name.to_owned(),
                    format!("{name} {} (seen {seen:?})", shown(expected.as_deref())),
                ));
            }
        };
        field("method", &expected.method, &seen.method);
        field("script_name", &expected.script_name, &seen.script_name);
        field("path_info", &expected.path_info, &seen.path_info);
        field("query_string", &expected.query_string, &seen.query_string);
        // The scheme before the port, whose default it decides.
        field("url_scheme", &expected.url_scheme, &seen.url_scheme);
        field("server_name", &expected.server_name, &seen.server_name);
        field(
            "server_port",
            &expected.server_port,
            &seen.server_port.to_string(),
        );
        field("version", &expected.version, &seen.version);
        if expected.path_segments != seen.path_segments {
            let text = format!(
                "path_segments {:?} (seen {:?})",
                expected.path_segments, seen.path_segments
            );
            out.push(("path_segments".to_owned(), text));
        }
        let names: BTreeSet<&String> = expected.headers.keys().chain(seen.headers.keys()).collect();
        for name in names {
            let want = expected.headers.get(name);
            let got = seen.headers.get(name);
            if want != got {
                let text = format!("header {name} {want:?} (seen {got:?})");
                out.push(("header".to_owned(), text));
            }
        }
        if expected.input_length != seen.input_length {
            let text = format!(
                "input_length {:?} (seen {:?})",
                expected.input_length, seen.input_length
            );
            out.push(("input_length".to_owned(), text));
        }
        let input = match input {
            Some(record) if record.end == InputEnd::Complete => {
                let same = bytes_of(&expected.input).ok().as_deref() == Some(&record.kept[..]);
                (!same).then(|| {
                    format!(
                        "input {:?} (seen {:?})",
                        expected.input,
                        preview(&record.kept)
                    )
                })
            }
            Some(record) => Some(format!(
                "input {:?} (seen it end {:?} after {} bytes)",
                expected.input, record.end, record.received
            )),
            None => Some(format!("input {:?} (seen it not read)", expected.input)),
        };
        out.extend(input.map(|text| ("input".to_owned(), text)));
        let names: BTreeSet<&String> = self.cgi.keys().chain(seen.cgi.keys()).collect();
        for name in names {
            let want = self.cgi.get(name).and_then(|v| addresses.resolve(v));
            let got = seen.cgi.get(name).map(String::as_str);
            if name == "REMOTE_ADDR" && got.is_none() {
                // Whether the peer address is there at all is `connection_addresses`'s to
                // judge (REQ-ENV-10), once, not every vector's; a wrong one is judged here.
                continue;
            }
            if want.as_deref() != got {
                let text = format!(
                    "CGI {name} {} (seen {})",
                    shown(want.as_deref()),
                    shown(got)
                );
                out.push((format!("CGI {name}"), text));
            }
        }
        out
    }
}

/// A value for a failure message: quoted, or `absent`.
fn shown(value: Option<&str>) -> String {
    value.map_or_else(|| "absent".to_owned(), |value| format!("{value:?}"))
}

/// Runs every vector of `group` against the server: the check `vectors_<group>`.
pub(super) fn run_group(suite: &mut Suite<'_>, name: &str) -> Checked {
    let group = load(name).map_err(|why| fail("REQ-ENV-1", why))?;
    has_vectors(&group, name)?;
    let mut failures = String::new();
    for vector in &group.vectors {
        if let Err(why) = run_vector(suite, vector) {
            if !failures.is_empty() {
                failures.push_str("; ");
            }
            let _ = write!(failures, "{why}");
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(super::Problem::Fail(failures))
    }
}

/// A group without vectors would pass its check having judged nothing.
fn has_vectors(group: &Group, name: &str) -> Checked {
    if group.vectors.is_empty() {
        return Err(fail(
            "REQ-ENV-1",
            format!("spec/vectors/{name}.json has no vectors, so its check would judge nothing"),
        ));
    }
    Ok(())
}

fn run_vector(suite: &mut Suite<'_>, vector: &Vector) -> Result<(), String> {
    let lead = |what: String| format!("{}: vector `{}`: {what}", vector.requirement(), vector.name);
    let bytes = bytes_of(&vector.request).map_err(lead)?;
    suite.probe.set(probe::record());
    let mut connection = suite
        .connect_at(vector.root_path.as_deref())
        .map_err(|error| lead(format!("could not connect: {error}")))?;
    let (local, peer) = connection.addresses();
    connection
        .send(&bytes)
        .map_err(|error| lead(format!("could not send the request: {error}")))?;
    let status = connection.response(vector.method()).ok().map(|r| r.status);
    // The probe records before it answers; a server that answers without calling it has
    // nothing left to record, so a short wait only matters for a server that misbehaves.
    let calls = match status {
        Some(_) => suite.probe.calls(),
        None => suite
            .probe
            .wait(IO_TIMEOUT / 5, |calls| !calls.is_empty())
            .unwrap_or_else(|calls| calls),
    };
    let observed = Observed {
        status,
        calls: calls
            .into_iter()
            .map(|call| (call.seen, call.input))
            .collect(),
    };
    vector.judge(&observed, Addresses { local, peer })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_client::block_on;
    use bytes::Bytes;
    use http::uri::Scheme;
    use rwgi::environ::{ConnectionInfo, ServerInfo};
    use rwgi::http::{HeaderName, HeaderValue, Method, Request, Uri, Version};
    use rwgi::{Environ, Error, Input};

    const LOCAL: &str = "192.0.2.10:8080";
    const PEER: &str = "192.0.2.99:50123";

    fn addresses() -> Addresses {
        Addresses {
            local: Some(LOCAL.parse().unwrap()),
            peer: Some(PEER.parse().unwrap()),
        }
    }

    /// The request as an HTTP/1.1 server parses it: `Err(400)` when it is not HTTP.
    fn parse(bytes: &[u8]) -> Result<Request<Input>, u16> {
        let mut fields = [httparse::EMPTY_HEADER; 64];
        let mut head = httparse::Request::new(&mut fields);
        let Ok(httparse::Status::Complete(length)) = head.parse(bytes) else {
            return Err(400);
        };
        let version = match head.version {
            Some(0) => Version::HTTP_10,
            _ => Version::HTTP_11,
        };
        let mut request = Request::new(Input::empty());
        *request.method_mut() =
            Method::from_bytes(head.method.unwrap_or_default().as_bytes()).map_err(|_| 400u16)?;
        *request.uri_mut() = Uri::try_from(head.path.unwrap_or_default()).map_err(|_| 400u16)?;
        *request.version_mut() = version;
        for field in head.headers.iter() {
            let name = HeaderName::from_bytes(field.name.as_bytes()).map_err(|_| 400u16)?;
            let value = HeaderValue::from_bytes(field.value).map_err(|_| 400u16)?;
            request.headers_mut().append(name, value);
        }
        let rest = &bytes[length..];
        let headers = request.headers();
        let chunked = headers
            .get_all("transfer-encoding")
            .iter()
            .any(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"));
        let lengths: BTreeSet<&[u8]> = headers
            .get_all("content-length")
            .iter()
            .map(HeaderValue::as_bytes)
            .collect();
        *request.body_mut() = if chunked {
            let mut data = Vec::new();
            super::super::client::Wire::new(rest)
                .chunked(&mut data)
                .map_err(|_| 400u16)?;
            let chunks = vec![Ok::<_, Error>(Bytes::from(data))];
            Input::from_body(rwgi::body::StreamBody::new(futures_util::stream::iter(
                chunks,
            )))
        } else {
            match lengths.into_iter().collect::<Vec<_>>()[..] {
                [] => Input::empty(),
                [digits] => {
                    let length: usize = std::str::from_utf8(digits)
                        .ok()
                        .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
                        .and_then(|d| d.parse().ok())
                        .ok_or(400u16)?;
                    Input::from(rest.get(..length).ok_or(400u16)?.to_vec())
                }
                _ => return Err(400),
            }
        };
        Ok(request)
    }

    /// What the core mapping makes of a vector's request.
    fn in_process(vector: &Vector) -> Observed {
        let connection = ConnectionInfo::new(Scheme::HTTP)
            .local_addr(LOCAL.parse().unwrap())
            .peer_addr(PEER.parse().unwrap())
            .server(ServerInfo::new("vectors/1"));
        let refused = |status| Observed {
            status: Some(status),
            calls: Vec::new(),
        };
        let request = match parse(&bytes_of(&vector.request).unwrap()) {
            Ok(request) => request,
            Err(status) => return refused(status),
        };
        let mut environ = match Environ::from_request(request, &connection) {
            Ok(environ) => environ,
            Err(error) => return refused(error.status().as_u16()),
        };
        // A server without a tunnel to offer refuses CONNECT (REQ-SRV-12).
        if environ.method() == Method::CONNECT {
            return refused(501);
        }
        if let Some(root) = &vector.root_path {
            if environ.mount(root).is_err() {
                return refused(404);
            }
        }
        let seen = Seen::of(&environ);
        let input = block_on(probe::drain(environ.input_mut(), probe::KEEP, None));
        Observed {
            status: None,
            calls: vec![(seen, Some(input))],
        }
    }

    fn groups() -> Vec<(&'static str, Group)> {
        GROUPS
            .iter()
            .map(|(name, _)| (*name, load(name).unwrap()))
            .collect()
    }

    #[test]
    fn every_vector_agrees_with_the_core_mapping() {
        let mut failures = Vec::new();
        for (_, group) in groups() {
            for vector in &group.vectors {
                if let Err(why) = vector.judge(&in_process(vector), addresses()) {
                    failures.push(why);
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn a_group_without_vectors_fails_its_check() {
        let empty: Group =
            serde_json::from_str(r#"{"description": "none", "vectors": []}"#).expect("a group");
        match has_vectors(&empty, "empty") {
            Err(super::super::Problem::Fail(detail)) => assert_eq!(
                detail,
                "REQ-ENV-1: spec/vectors/empty.json has no vectors, so its check would judge nothing"
            ),
            _ => panic!("an empty group passed"),
        }
    }

    #[test]
    fn vectors_are_well_formed_and_their_checks_cover_them() {
        let spec = include_str!("../../../spec/SPEC.md");
        let mut names = BTreeSet::new();
        let mut count = 0;
        for (group, file) in groups() {
            assert!(
                has_vectors(&file, group).is_ok(),
                "{group}.json has no vectors"
            );
            let check = super::super::CHECKS
                .iter()
                .find(|check| check.name == format!("vectors_{group}"))
                .unwrap_or_else(|| panic!("no check for {group}.json"));
            for vector in &file.vectors {
                count += 1;
                assert!(names.insert(vector.name.clone()), "{} twice", vector.name);
                assert!(!vector.expect.is_empty(), "{}: no outcome", vector.name);
                assert!(bytes_of(&vector.request).is_ok(), "{}", vector.name);
                assert!(!vector.requirements.is_empty(), "{}", vector.name);
                for requirement in &vector.requirements {
                    assert!(
                        spec.contains(&format!("**{requirement}**")),
                        "{}: {requirement} is not in the spec",
                        vector.name
                    );
                    assert!(
                        check.requirements.contains(&requirement.as_str()),
                        "{}: {} does not list {requirement}",
                        vector.name,
                        check.name
                    );
                }
            }
        }
        assert!(count >= 50, "only {count} vectors");
    }

    #[test]
    fn a_wrong_fact_fails_with_the_vectors_requirement() {
        let group = load("paths").unwrap();
        let vector = group
            .vectors
            .iter()
            .find(|v| v.name == "encoded_slash")
            .unwrap();
        let mut observed = in_process(vector);
        observed.calls[0].0.path_info = "/a/b".into();
        let why = vector.judge(&observed, addresses()).unwrap_err();
        assert_eq!(
            why,
            "REQ-PATH-1: vector `encoded_slash`: expected the app called with \
             path_info \"/a%2Fb\" (seen \"/a/b\"); seen no response after 1 call(s) of the app"
        );
        let refused = Observed {
            status: Some(400),
            calls: Vec::new(),
        };
        assert!(vector.judge(&refused, addresses()).is_err());
    }

    /// The vector named `name` and what the core mapping makes of it.
    fn vector_and_outcome(name: &str) -> (Vector, Observed) {
        let vector = groups()
            .into_iter()
            .flat_map(|(_, group)| group.vectors)
            .find(|v| v.name == name)
            .unwrap();
        let observed = in_process(&vector);
        (vector, observed)
    }

    #[test]
    fn a_failure_names_the_rule_of_the_fact_that_differs() {
        // A path vector whose port is wrong breaks REQ-ENV-4, not the vector's REQ-PATH-1.
        let (vector, mut observed) = vector_and_outcome("encoded_slash");
        observed.calls[0].0.server_port = 81;
        let why = vector.judge(&observed, addresses()).unwrap_err();
        assert!(
            why.starts_with(
                "REQ-ENV-4: vector `encoded_slash`: expected the app called with server_port \
                 \"80\" (seen \"81\")"
            ),
            "{why}"
        );
        // A wrong peer address breaks REQ-ENV-10.
        let (vector, mut observed) = vector_and_outcome("encoded_slash");
        let cgi = &mut observed.calls[0].0.cgi;
        cgi.insert("REMOTE_ADDR".into(), "192.0.2.1".into());
        let why = vector.judge(&observed, addresses()).unwrap_err();
        assert_eq!(
            why,
            "REQ-ENV-10: vector `encoded_slash`: expected the app called with CGI REMOTE_ADDR \
             \"192.0.2.99\" (seen \"192.0.2.1\"); seen no response after 1 call(s) of the app"
        );
        // An absent one is left to `connection_addresses`.
        let (vector, mut observed) = vector_and_outcome("encoded_slash");
        observed.calls[0].0.cgi.remove("REMOTE_ADDR");
        assert_eq!(vector.judge(&observed, addresses()), Ok(()));
        // A refusal where a call was due keeps the vector's first requirement.
        let refused = Observed {
            status: Some(400),
            calls: Vec::new(),
        };
        let why = vector.judge(&refused, addresses()).unwrap_err();
        assert!(
            why.starts_with("REQ-PATH-1: vector `encoded_slash`: "),
            "{why}"
        );
    }

    #[test]
    fn each_compared_fact_has_a_rule_of_the_spec() {
        let spec = include_str!("../../../spec/SPEC.md");
        let facts = [
            "method",
            "script_name",
            "path_info",
            "path_segments",
            "query_string",
            "server_name",
            "server_port",
            "version",
            "url_scheme",
            "header",
            "input_length",
            "input",
            "CGI REMOTE_ADDR",
            "CGI CONTENT_TYPE",
            "CGI HTTP_ACCEPT",
        ];
        for fact in facts {
            for id in rules_of(fact) {
                assert!(spec.contains(&format!("**{id}**")), "{fact}: {id}");
            }
        }
        let listed = ["REQ-PATH-6".to_owned(), "REQ-PATH-2".to_owned()];
        assert_eq!(rule("script_name", &listed), "REQ-PATH-6");
        assert_eq!(rule("server_port", &listed), "REQ-ENV-4");
        assert_eq!(rule("header", &[]), "REQ-ENV-7");
    }

    #[test]
    fn placeholders_follow_the_connection() {
        let unix = Addresses {
            local: None,
            peer: None,
        };
        assert_eq!(unix.resolve("{local_host}").as_deref(), Some("localhost"));
        assert_eq!(unix.resolve("{local_port}").as_deref(), Some("80"));
        assert_eq!(unix.resolve("{remote_ip}"), None);
        let v6 = Addresses {
            local: Some("[::1]:8000".parse().unwrap()),
            peer: Some("[::1]:9000".parse().unwrap()),
        };
        assert_eq!(v6.resolve("{local_host}").as_deref(), Some("[::1]"));
        assert_eq!(v6.resolve("{remote_ip}").as_deref(), Some("::1"));
    }
}
