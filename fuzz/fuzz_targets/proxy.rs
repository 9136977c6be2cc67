//! The proxy-header middleware on fuzzer-chosen headers, peers and hop counts: it never panics,
//! a peer it does not trust changes nothing, and what it does change still keeps the path rules.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rwgi::environ::{ConnectionInfo, Environ};
use rwgi::http::{HeaderName, HeaderValue, Request};
use rwgi::Input;
use rwgi_middleware::proxy::{HeaderFamily, TrustedProxies};
use rwgi_middleware::ProxyHeaders;

fuzz_target!(|input: (Vec<(u8, Vec<u8>)>, [u8; 4], u8, bool, bool)| {
    let (fields, peer, hops, forwarded, trusted) = input;
    const NAMES: [&str; 6] = [
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-forwarded-port",
        "x-forwarded-prefix",
        "forwarded",
    ];
    let mut request = Request::get("/a/b?q=1").header("host", "backend");
    for (name, value) in fields {
        let name = HeaderName::from_static(NAMES[usize::from(name) % NAMES.len()]);
        if let Ok(value) = HeaderValue::from_bytes(&value) {
            request = request.header(name, value);
        }
    }
    let Ok(request) = request.body(Input::empty()) else {
        return;
    };
    let peer = std::net::SocketAddr::from((peer, 40000));
    let connection = ConnectionInfo::default()
        .peer_addr(peer)
        .local_addr("10.0.0.1:8000".parse().unwrap());
    let Ok(mut environ) = Environ::from_request(request, &connection) else {
        return;
    };
    let list = if trusted { "0.0.0.0/0" } else { "" };
    let family = if forwarded { HeaderFamily::Forwarded } else { HeaderFamily::XForwarded };
    let proxy = ProxyHeaders::new(list.parse::<TrustedProxies>().unwrap())
        .hops(usize::from(hops % 4) + 1)
        .family(family);
    let applied = proxy.apply(&mut environ);
    assert_eq!(applied, trusted);
    if !trusted {
        assert_eq!(environ.remote_addr(), Some(peer));
        assert_eq!(environ.headers()["host"], "backend");
    }
    // REQ-PATH-2 and REQ-PATH-5 hold whatever prefix was restored.
    assert_eq!(format!("{}{}", environ.script_name(), environ.path_info()), environ.path());
    assert!(environ.path_info() == "/a/b" || environ.path_info().is_empty() || environ.path_info().starts_with('/'));
    let _ = environ.server_name();
    let _ = environ.server_port();
    let _ = environ.cgi_variables();
});
