//! Raw request bytes → `httparse` → `http::Request` → `Environ::from_request` → CGI variables.
//! Whatever the bytes, nothing panics, and every environ that is built keeps the path rules.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rwgi::environ::{ConnectionInfo, Environ};
use rwgi::http::{Method, Request, Version};
use rwgi::Input;

fuzz_target!(|data: &[u8]| {
    let mut fields = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Request::new(&mut fields);
    let Ok(httparse::Status::Complete(_)) = parsed.parse(data) else {
        return;
    };
    let (Some(method), Some(target)) = (parsed.method, parsed.path) else {
        return;
    };
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return;
    };
    let mut request = Request::builder()
        .method(method)
        .uri(target)
        .version(if parsed.version == Some(0) { Version::HTTP_10 } else { Version::HTTP_11 });
    for field in parsed.headers.iter() {
        request = request.header(field.name, field.value);
    }
    let Ok(request) = request.body(Input::empty()) else {
        return;
    };
    let Ok(mut environ) = Environ::from_request(request, &ConnectionInfo::default()) else {
        return;
    };
    check(&environ);
    // Mounting at the first segment, when there is one, keeps the same rules.
    let path = environ.path().to_owned();
    if let Some(end) = path[1.min(path.len())..].find('/').map(|i| i + 1) {
        if environ.mount(&path[..end]).is_ok() {
            check(&environ);
        }
    }
});

fn check(environ: &Environ) {
    // REQ-PATH-2: script_name + path_info is the path, byte for byte.
    assert_eq!(format!("{}{}", environ.script_name(), environ.path_info()), environ.path());
    let _ = environ.server_name();
    let _ = environ.server_port();
    let _ = environ.request_target();
    for segment in environ.path_segments() {
        let _ = segment.to_str();
    }
    // REQ-CGI-2: no HTTP_CONTENT_TYPE / HTTP_CONTENT_LENGTH, whatever the headers.
    let cgi = environ.cgi_variables();
    assert!(cgi.get("HTTP_CONTENT_TYPE").is_none());
    assert!(cgi.get("HTTP_CONTENT_LENGTH").is_none());
    assert_eq!(cgi.get("QUERY_STRING"), Some(environ.query_string()));
}
