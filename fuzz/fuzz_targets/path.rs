//! Percent-decoding, segments and mounting on arbitrary text: no panic, decoding never grows
//! the input, and a successful mount splits the path without losing a byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rwgi::environ::{ConnectionInfo, Environ};
use rwgi::http::Request;
use rwgi::path::{latin1, percent_decode, Segments};
use rwgi::Input;

fuzz_target!(|input: (&str, &str)| {
    let (path, prefix) = input;
    assert!(percent_decode(path).len() <= path.len());
    assert_eq!(latin1(path.as_bytes()).chars().count(), path.len());
    for segment in Segments::new(path) {
        assert!(!segment.as_raw().contains('/'));
        let _ = segment.to_str();
    }
    let Ok(request) = Request::get(path).header("host", "h").body(Input::empty()) else {
        return;
    };
    let Ok(mut environ) = Environ::from_request(request, &ConnectionInfo::default()) else {
        return;
    };
    let before = (environ.script_name().to_owned(), environ.path_info().to_owned());
    match environ.mount(prefix) {
        Ok(()) => {
            assert_eq!(environ.script_name(), prefix);
            assert_eq!(format!("{}{}", environ.script_name(), environ.path_info()), environ.path());
            assert!(environ.path_info().is_empty() || environ.path_info().starts_with('/'));
        }
        Err(_) => assert_eq!(
            (environ.script_name(), environ.path_info()),
            (before.0.as_str(), before.1.as_str()),
            "a failed mount changes nothing"
        ),
    }
});
