//! Properties of the path rules (REQ-PATH-*), over generated paths: percent-decoding inverts
//! percent-encoding, segments decode to what was encoded (an encoded `/` stays inside its
//! segment), and mounting splits the path into `script_name + path_info` without losing a byte.

use proptest::prelude::*;
use rwgi::environ::{ConnectionInfo, Environ};
use rwgi::http::Request;
use rwgi::path::{latin1, percent_decode, Segments};
use rwgi::Input;

/// Percent-encodes every byte that is not unreserved (RFC 3986 §2.3), `/` included.
fn encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The raw path of `segments`, each encoded on its own.
fn path_of(segments: &[Vec<u8>]) -> String {
    segments.iter().map(|s| format!("/{}", encode(s))).collect()
}

fn environ(target: &str) -> Environ {
    let request = Request::get(target)
        .header("host", "example.com")
        .body(Input::empty())
        .expect("a valid request");
    Environ::from_request(request, &ConnectionInfo::default()).expect("a mappable request")
}

/// Raw segments as a client might send them: plain, encoded, or with stray `%`s.
fn raw_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9._~-]{0,6}",
        proptest::collection::vec(any::<u8>(), 0..6).prop_map(|b| encode(&b)),
        "[a-z]{0,3}%[0-9A-Fa-fg-z]{0,2}[a-z]{0,2}",
    ]
}

proptest! {
    #[test]
    fn decoding_inverts_encoding(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let encoded = encode(&bytes);
        prop_assert_eq!(&*percent_decode(&encoded), &bytes[..]);
    }

    #[test]
    fn decoding_never_grows_the_input(raw in "[ -~]{0,40}") {
        prop_assert!(percent_decode(&raw).len() <= raw.len());
    }

    #[test]
    fn segments_decode_to_what_was_encoded(
        segments in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..8), 0..6)
    ) {
        let path = path_of(&segments);
        let decoded: Vec<Vec<u8>> = Segments::new(&path).map(|s| s.decode().into_owned()).collect();
        prop_assert_eq!(decoded, segments);
    }

    #[test]
    fn latin1_is_one_char_per_byte(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let text = latin1(&bytes);
        let back: Vec<u8> = text.chars().map(|c| u8::try_from(u32::from(c)).unwrap()).collect();
        prop_assert_eq!(back, bytes);
    }

    #[test]
    fn mounting_at_a_leading_run_of_segments_loses_nothing(
        segments in proptest::collection::vec(raw_segment(), 1..6),
        cut in 0usize..6,
        query in proptest::option::of("[a-z=&%0-9]{0,8}"),
    ) {
        let path: String = segments.iter().map(|s| format!("/{s}")).collect();
        let target = match &query {
            Some(query) => format!("{path}?{query}"),
            None => path.clone(),
        };
        let cut = cut.min(segments.len());
        let prefix: String = segments[..cut].iter().map(|s| format!("/{s}")).collect();
        let mut environ = environ(&target);
        let mounted = environ.mount(&prefix);
        if prefix.ends_with('/') {
            // REQ-PATH-5: a prefix ending in `/` (its last segment empty) is refused, unchanged.
            prop_assert!(mounted.is_err());
            prop_assert_eq!(environ.script_name(), "");
        } else {
            prop_assert!(mounted.is_ok(), "{:?} at {:?}", target, prefix);
            prop_assert_eq!(environ.script_name(), prefix.as_str());
        }
        // REQ-PATH-2: the split never loses or adds a byte of the raw path.
        prop_assert_eq!(format!("{}{}", environ.script_name(), environ.path_info()), path);
        prop_assert!(environ.path_info().is_empty() || environ.path_info().starts_with('/'));
        prop_assert_eq!(environ.query_string(), query.as_deref().unwrap_or(""));
    }

    #[test]
    fn mounting_twice_equals_mounting_the_joined_prefix(
        segments in proptest::collection::vec("[a-z0-9%]{1,5}", 2..6),
        first in 1usize..3,
    ) {
        let path: String = segments.iter().map(|s| format!("/{s}")).collect();
        let first = first.min(segments.len() - 1);
        let a: String = segments[..first].iter().map(|s| format!("/{s}")).collect();
        let b = format!("/{}", segments[first]);
        let mut twice = environ(&path);
        twice.mount(&a).unwrap();
        twice.mount(&b).unwrap();
        let mut once = environ(&path);
        once.mount(&format!("{a}{b}")).unwrap();
        prop_assert_eq!(twice.script_name(), once.script_name());
        prop_assert_eq!(twice.path_info(), once.path_info());
    }

    #[test]
    fn a_prefix_that_is_not_whole_segments_is_refused_and_changes_nothing(
        head in "[a-z]{1,5}",
        tail in "[a-z]{1,5}",
    ) {
        // `/headtail` does not start with the segment `/head`.
        let mut environ = environ(&format!("/{head}{tail}/x"));
        let prefix = format!("/{head}");
        prop_assert!(environ.mount(&prefix).is_err());
        prop_assert_eq!(environ.script_name(), "");
        prop_assert_eq!(environ.path_info(), format!("/{head}{tail}/x"));
    }
}
