//! The hop logic of the proxy-header middleware over generated lists: whatever a client puts in
//! front, the entry the outermost trusted proxy wrote is the one believed, and headers from an
//! untrusted peer change nothing.

use proptest::prelude::*;
use rwgi::environ::{ConnectionInfo, Environ};
use rwgi::http::Request;
use rwgi::Input;
use rwgi_middleware::proxy::{pick, TrustedProxies};
use rwgi_middleware::ProxyHeaders;

fn ip() -> impl Strategy<Value = String> {
    (any::<[u8; 4]>()).prop_map(|[a, b, c, d]| format!("{a}.{b}.{c}.{d}"))
}

fn environ(peer: &str, forwarded_for: &str) -> Environ {
    let request = Request::get("/")
        .header("host", "backend")
        .header("x-forwarded-for", forwarded_for)
        .body(Input::empty())
        .unwrap();
    let connection = ConnectionInfo::default()
        .peer_addr(peer.parse().unwrap())
        .local_addr("10.0.0.1:8000".parse().unwrap());
    Environ::from_request(request, &connection).unwrap()
}

proptest! {
    #[test]
    fn the_outermost_trusted_entry_wins_over_anything_the_client_sent(
        spoofed in proptest::collection::vec("[ -+\\--~]{0,12}", 0..4),
        client in ip(),
        proxies in proptest::collection::vec(ip(), 0..3),
    ) {
        // The client wrote `spoofed`; the first trusted proxy appended the client's address,
        // each further proxy the address of the one before it.
        let hops = proxies.len() + 1;
        let mut list: Vec<&str> = spoofed.iter().map(String::as_str).collect();
        list.push(&client);
        list.extend(proxies.iter().map(String::as_str));
        prop_assert_eq!(pick(&list, hops), Some(client.as_str()));
        prop_assert_eq!(pick(&list, list.len() + 1), None, "fewer entries than hops");

        let header = list.join(", ");
        let proxy = ProxyHeaders::new("10.0.0.0/8".parse().unwrap()).hops(hops);
        let mut trusted = environ("10.1.1.1:40000", &header);
        prop_assert!(proxy.apply(&mut trusted));
        prop_assert_eq!(trusted.remote_addr().map(|a| a.ip().to_string()), Some(client.clone()));
    }

    #[test]
    fn an_untrusted_peer_changes_nothing(header in "[ -~]{0,40}", hops in 1usize..4) {
        let proxy = ProxyHeaders::new("10.0.0.0/8".parse::<TrustedProxies>().unwrap()).hops(hops);
        let mut environ = environ("192.0.2.7:40000", &header);
        prop_assert!(!proxy.apply(&mut environ));
        prop_assert_eq!(environ.remote_addr(), Some("192.0.2.7:40000".parse().unwrap()));
        prop_assert_eq!(environ.headers()["host"].as_bytes(), b"backend");
    }
}
