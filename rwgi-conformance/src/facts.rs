//! The facts of HTTP the suites judge by, written out here from the RFCs and PEP 3333 rather
//! than taken from the crate under test: a bug in `rwgi`'s own helpers must not pass the server,
//! the lint and both suites at once. The tests below hold `rwgi`'s helpers to these facts.

use http::{HeaderMap, StatusCode};

use rwgi::violation::Violation;

/// The hop-by-hop header names: the fields RFC 9110 §7.6.1 says describe one connection
/// (`Connection`, `Keep-Alive`, `TE`, `Transfer-Encoding`, `Upgrade`, and `Trailer` with `TE`),
/// and the proxy authentication fields PEP 3333 adds. Only the server sets them (REQ-RESP-2).
pub(crate) const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Whether a response with `status` never has a body (RFC 9110 §15.2, §15.3.5, §15.4.5):
/// every 1xx, `204 No Content` and `304 Not Modified`.
pub(crate) fn bodiless(status: StatusCode) -> bool {
    (100..200).contains(&status.as_u16()) || status.as_u16() == 204 || status.as_u16() == 304
}

/// The value of `Content-Length` by the framing rules (RFC 9110 §8.6, REQ-RESP-3): at most one
/// field line, one or more ASCII digits, nothing else, within `u64`.
pub(crate) fn content_length(headers: &HeaderMap) -> Result<Option<u64>, String> {
    let values: Vec<&[u8]> = headers
        .get_all("content-length")
        .iter()
        .map(|value| value.as_bytes())
        .collect();
    match values[..] {
        [] => Ok(None),
        [digits] if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) => {
            std::str::from_utf8(digits)
                .ok()
                .and_then(|text| text.parse().ok())
                .map(Some)
                .ok_or_else(|| format!("Content-Length {digits:?} does not fit 64 bits"))
        }
        [other] => Err(format!(
            "Content-Length must be digits only, got {:?}",
            String::from_utf8_lossy(other)
        )),
        _ => Err(format!(
            "expected at most one Content-Length, got {}",
            values.len()
        )),
    }
}

/// The response-head rules (REQ-RESP-1 to REQ-RESP-4), judged by the facts above; the first
/// rule broken.
pub(crate) fn check_head(status: StatusCode, headers: &HeaderMap) -> Option<Violation> {
    if (100..200).contains(&status.as_u16()) {
        return Some(Violation::new(
            "REQ-RESP-1",
            format!("the final status must not be 1xx, got {}", status.as_u16()),
        ));
    }
    if let Some(name) = headers
        .keys()
        .find(|name| HOP_BY_HOP.contains(&name.as_str()))
    {
        return Some(Violation::new(
            "REQ-RESP-2",
            format!("apps must not set the hop-by-hop header `{name}`"),
        ));
    }
    match content_length(headers) {
        Err(why) => Some(Violation::new("REQ-RESP-3", why)),
        Ok(Some(_)) if status.as_u16() == 204 => Some(Violation::new(
            "REQ-RESP-4",
            "a 204 response must not have a Content-Length",
        )),
        Ok(_) => None,
    }
}

/// The head of a `101` that takes an upgrade offer for `asked` (the protocols of the
/// request's `Upgrade` header), by RFC 9110 §7.8 and §8.6 (REQ-UPGRADE-2): one `Upgrade`
/// value naming one of them, the `upgrade` option in `Connection`, no `Content-Length`, and no
/// other hop-by-hop field (REQ-RESP-2).
pub(crate) fn check_switching_head(headers: &HeaderMap, asked: &[&str]) -> Option<Violation> {
    let upgrades: Vec<&[u8]> = headers
        .get_all("upgrade")
        .iter()
        .map(|value| value.as_bytes())
        .collect();
    let broken = |message: String| Some(Violation::new("REQ-UPGRADE-2", message));
    let [protocol] = upgrades[..] else {
        return broken(format!(
            "a 101 names its one protocol in one Upgrade field, got {} of them",
            upgrades.len()
        ));
    };
    let protocol = String::from_utf8_lossy(protocol);
    if !asked
        .iter()
        .any(|asked| asked.eq_ignore_ascii_case(protocol.trim()))
    {
        return broken(format!(
            "a 101 switches to a protocol the request asked for ({}), got {protocol:?}",
            asked.join(", ")
        ));
    }
    let upgrade_option = headers
        .get_all("connection")
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b','))
        .any(|token| {
            String::from_utf8_lossy(token)
                .trim()
                .eq_ignore_ascii_case("upgrade")
        });
    if !upgrade_option {
        return broken("a 101 carries the upgrade option in Connection".to_owned());
    }
    if headers.contains_key("content-length") {
        return broken("a 101 has no Content-Length".to_owned());
    }
    headers
        .keys()
        .find(|name| {
            HOP_BY_HOP.contains(&name.as_str())
                && !["upgrade", "connection"].contains(&name.as_str())
        })
        .map(|name| {
            Violation::new(
                "REQ-RESP-2",
                format!("apps must not set the hop-by-hop header `{name}`"),
            )
        })
}

/// The body rules once a body ended after `produced` bytes (REQ-RESP-5, REQ-RESP-6), for a
/// response that is sent (not `HEAD`).
pub(crate) fn check_body_end(
    status: StatusCode,
    headers: &HeaderMap,
    produced: u64,
) -> Option<Violation> {
    if bodiless(status) && produced > 0 {
        return Some(Violation::new(
            "REQ-RESP-6",
            format!(
                "a {} response must have an empty body, got {produced} bytes",
                status.as_u16()
            ),
        ));
    }
    match content_length(headers) {
        Ok(Some(declared)) if status.as_u16() != 304 && declared != produced => {
            Some(Violation::new(
                "REQ-RESP-5",
                format!("Content-Length is {declared} but the body yielded {produced} bytes"),
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::HeaderName;
    use http::{HeaderValue, Method};
    use rwgi::response as core;

    fn with(name: &str, value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_static(value),
        );
        headers
    }

    #[test]
    fn the_core_hop_by_hop_list_is_the_eight_names() {
        let mut core: Vec<&str> = core::HOP_BY_HOP.iter().map(|name| name.as_str()).collect();
        core.sort_unstable();
        let mut facts = HOP_BY_HOP.to_vec();
        facts.sort_unstable();
        assert_eq!(core, facts);
        for name in HOP_BY_HOP {
            let header = HeaderName::from_static(name);
            assert!(core::is_hop_by_hop(&header), "{name}");
            let refused = core::check_head(&Method::GET, StatusCode::OK, &with(name, "x"), None);
            assert_eq!(
                refused.map_err(|v| v.requirement()),
                Err("REQ-RESP-2"),
                "{name}"
            );
            assert_eq!(
                check_head(StatusCode::OK, &with(name, "x")).map(|v| v.requirement()),
                Some("REQ-RESP-2")
            );
        }
        for name in [
            "content-type",
            "content-length",
            "proxy-connection-x",
            "trailers-x",
            "set-cookie",
        ] {
            let header = HeaderName::from_bytes(name.as_bytes()).unwrap();
            assert!(!core::is_hop_by_hop(&header), "{name}");
        }
    }

    #[test]
    fn the_core_length_parser_follows_the_framing_rules() {
        // The field values, and the length they declare (`Err` when they are malformed).
        type Case = (&'static [&'static str], Result<Option<u64>, ()>);
        let cases: [Case; 12] = [
            (&[], Ok(None)),
            (&["0"], Ok(Some(0))),
            (&["42"], Ok(Some(42))),
            (&["007"], Ok(Some(7))),
            (&["18446744073709551615"], Ok(Some(u64::MAX))),
            (&["18446744073709551616"], Err(())),
            (&["+1"], Err(())),
            (&["-1"], Err(())),
            (&["0x2"], Err(())),
            (&["3, 3"], Err(())),
            (&[""], Err(())),
            (&["3", "3"], Err(())),
        ];
        for (values, expected) in cases {
            let mut headers = HeaderMap::new();
            for value in values {
                headers.append("content-length", HeaderValue::from_static(value));
            }
            assert_eq!(
                content_length(&headers).map_err(drop),
                expected,
                "{values:?}"
            );
            let core = core::content_length(&headers);
            assert_eq!(core.map_err(drop), expected, "core on {values:?}");
            if expected.is_err() {
                let refused = core::check_head(&Method::GET, StatusCode::OK, &headers, None);
                assert_eq!(refused.map_err(|v| v.requirement()), Err("REQ-RESP-3"));
            }
        }
    }

    #[test]
    fn the_core_head_check_follows_the_bodiless_statuses() {
        for code in [100, 101, 102, 103, 199, 204, 304] {
            assert!(bodiless(StatusCode::from_u16(code).unwrap()), "{code}");
        }
        for code in [200, 201, 203, 205, 206, 300, 302, 400, 404, 500] {
            assert!(!bodiless(StatusCode::from_u16(code).unwrap()), "{code}");
        }
        let length = with("content-length", "0");
        let no_content = core::check_head(&Method::GET, StatusCode::NO_CONTENT, &length, Some(0));
        assert_eq!(no_content.map_err(|v| v.requirement()), Err("REQ-RESP-4"));
        assert_eq!(
            check_head(StatusCode::NO_CONTENT, &length).map(|v| v.requirement()),
            Some("REQ-RESP-4")
        );
        for code in [100, 103, 199] {
            let status = StatusCode::from_u16(code).unwrap();
            let informational = core::check_head(&Method::GET, status, &HeaderMap::new(), None);
            assert_eq!(
                informational.map_err(|v| v.requirement()),
                Err("REQ-RESP-1")
            );
            assert_eq!(
                check_head(status, &HeaderMap::new()).map(|v| v.requirement()),
                Some("REQ-RESP-1")
            );
        }
        // A 304 and a HEAD answer may carry the GET answer's length over an empty body.
        let described = with("content-length", "10");
        for (method, status) in [
            (Method::GET, StatusCode::NOT_MODIFIED),
            (Method::HEAD, StatusCode::OK),
        ] {
            assert!(core::check_head(&method, status, &described, Some(0)).is_ok());
        }
        assert_eq!(
            check_body_end(StatusCode::NOT_MODIFIED, &described, 0),
            None
        );
    }

    #[test]
    fn the_body_end_rules_fire() {
        let five = with("content-length", "5");
        assert_eq!(check_body_end(StatusCode::OK, &five, 5), None);
        assert_eq!(
            check_body_end(StatusCode::OK, &five, 4).map(|v| v.to_string()),
            Some("REQ-RESP-5: Content-Length is 5 but the body yielded 4 bytes".to_owned())
        );
        assert_eq!(
            check_body_end(StatusCode::NO_CONTENT, &HeaderMap::new(), 1).map(|v| v.requirement()),
            Some("REQ-RESP-6")
        );
        assert_eq!(check_body_end(StatusCode::OK, &HeaderMap::new(), 7), None);
    }
}
