//! The static-file middleware in process: validators, conditional requests, byte ranges,
//! directories, what it refuses, and the app suite. (Over a socket, behind `rwgi-server` and
//! checked by REDbot: `tests/static_files.rs` of the workspace root.)

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rwgi::app::app_fn;
use rwgi::body::{Body, Full};
use rwgi::http::{Method, StatusCode};
use rwgi::{App, AppExt, Environ, StartResponse};
use rwgi_conformance::app_suite::{run_blocking, run_middleware};
use rwgi_conformance::test_client::{block_on, TestRequest, TestResponse};
use rwgi_middleware::access_log::Outcome;
use rwgi_middleware::{AccessLog, StaticFiles};

/// A directory tree for one test, removed on drop:
///
/// ```text
/// hello.txt           "hello, world\n"
/// data.bin            1000 bytes 0, 1, 2, ...
/// empty.txt           ""
/// docs/index.html     "<p>docs</p>\n"
/// docs/page.css
/// bare/               (no index)
/// inside -> hello.txt          (a symbolic link within the root)
/// outside -> ../SECRET         (one out of it)
/// ```
struct Tree {
    base: PathBuf,
}

impl Tree {
    fn new() -> Tree {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let base = std::env::temp_dir().join(format!(
            "rwgi-static-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        let root = base.join("root");
        std::fs::create_dir_all(root.join("docs")).unwrap();
        std::fs::create_dir_all(root.join("bare")).unwrap();
        std::fs::write(root.join("hello.txt"), "hello, world\n").unwrap();
        let data: Vec<u8> = (0..1000).map(|i| (i % 256) as u8).collect();
        std::fs::write(root.join("data.bin"), data).unwrap();
        std::fs::write(root.join("empty.txt"), "").unwrap();
        std::fs::write(root.join("docs/index.html"), "<p>docs</p>\n").unwrap();
        std::fs::write(root.join("docs/page.css"), "p {}\n").unwrap();
        std::fs::write(base.join("SECRET"), "secret\n").unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("hello.txt", root.join("inside")).unwrap();
            std::os::unix::fs::symlink("../SECRET", root.join("outside")).unwrap();
        }
        Tree { base }
    }

    fn root(&self) -> PathBuf {
        self.base.join("root")
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

fn the_app() -> impl App {
    app_fn(|environ: Environ, start: StartResponse| async move {
        let text = format!("app: {} {}\n", environ.script_name(), environ.path_info());
        Ok(start
            .start(StatusCode::OK, Default::default())
            .body(Full::new(text)))
    })
}

fn files(root: &Path) -> impl App {
    the_app().with(StaticFiles::new("/static", root).unwrap())
}

fn get(app: &impl App, target: &str, headers: &[(&str, &str)]) -> TestResponse {
    send(app, TestRequest::get(target), headers)
}

fn send(app: &impl App, request: TestRequest, headers: &[(&str, &str)]) -> TestResponse {
    let request = headers.iter().fold(request, |request, (name, value)| {
        request.header(name, value)
    });
    block_on(request.send(app))
}

fn header<'a>(response: &'a TestResponse, name: &str) -> Option<&'a str> {
    response.header(name)
}

#[test]
fn a_file_comes_with_its_type_length_and_validators() {
    let tree = Tree::new();
    let app = files(&tree.root());
    let response = get(&app, "/static/hello.txt", &[]);
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text(), "hello, world\n");
    assert_eq!(
        header(&response, "content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(header(&response, "content-length"), Some("13"));
    assert_eq!(header(&response, "accept-ranges"), Some("bytes"));
    let etag = header(&response, "etag").unwrap();
    assert!(etag.starts_with("\"d-") && etag.ends_with('"'), "{etag}");
    let modified = header(&response, "last-modified").unwrap();
    assert!(modified.ends_with(" GMT"), "{modified}");
    // HEAD: the same head, no body.
    let head = send(&app, TestRequest::head("/static/hello.txt"), &[]);
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.body().len(), 0);
    for name in [
        "content-type",
        "content-length",
        "etag",
        "last-modified",
        "accept-ranges",
    ] {
        assert_eq!(header(&head, name), header(&response, name), "{name}");
    }
    // Binary and empty files.
    let data = get(&app, "/static/data.bin", &[]);
    assert_eq!(
        header(&data, "content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(data.body().len(), 1000);
    let empty = get(&app, "/static/empty.txt", &[]);
    assert_eq!((empty.status(), empty.body().len()), (StatusCode::OK, 0));
    assert_eq!(header(&empty, "content-length"), Some("0"));
}

#[test]
fn conditional_requests_answer_304_and_412() {
    let tree = Tree::new();
    let app = files(&tree.root());
    let first = get(&app, "/static/hello.txt", &[]);
    let etag = header(&first, "etag").unwrap().to_owned();
    let modified = header(&first, "last-modified").unwrap().to_owned();
    let weak = format!("W/{etag}");
    let listed = format!("\"other\", {etag}");
    for (name, value) in [
        ("if-none-match", etag.as_str()),
        ("if-none-match", weak.as_str()),
        ("if-none-match", listed.as_str()),
        ("if-none-match", "*"),
        ("if-modified-since", modified.as_str()),
        ("if-modified-since", "Fri, 01 Jan 2100 00:00:00 GMT"),
    ] {
        let response = get(&app, "/static/hello.txt", &[(name, value)]);
        assert_eq!(
            response.status(),
            StatusCode::NOT_MODIFIED,
            "{name}: {value}"
        );
        assert_eq!(response.body().len(), 0);
        assert_eq!(header(&response, "etag"), Some(etag.as_str()));
        assert_eq!(header(&response, "last-modified"), Some(modified.as_str()));
    }
    for (name, value) in [
        ("if-none-match", "\"other\""),
        ("if-modified-since", "Thu, 01 Jan 1970 00:00:00 GMT"),
        ("if-modified-since", "not a date"),
    ] {
        let response = get(&app, "/static/hello.txt", &[(name, value)]);
        assert_eq!(response.status(), StatusCode::OK, "{name}: {value}");
    }
    // If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
    let response = get(
        &app,
        "/static/hello.txt",
        &[
            ("if-none-match", "\"other\""),
            ("if-modified-since", &modified),
        ],
    );
    assert_eq!(response.status(), StatusCode::OK);
    // If-Match and If-Unmodified-Since.
    assert_eq!(
        get(&app, "/static/hello.txt", &[("if-match", &etag)]).status(),
        StatusCode::OK
    );
    assert_eq!(
        get(&app, "/static/hello.txt", &[("if-match", "*")]).status(),
        StatusCode::OK
    );
    for (name, value) in [
        ("if-match", "\"other\""),
        ("if-match", weak.as_str()),
        ("if-unmodified-since", "Thu, 01 Jan 1970 00:00:00 GMT"),
    ] {
        let response = get(&app, "/static/hello.txt", &[(name, value)]);
        assert_eq!(
            response.status(),
            StatusCode::PRECONDITION_FAILED,
            "{name}: {value}"
        );
    }
    let unmodified = get(
        &app,
        "/static/hello.txt",
        &[("if-unmodified-since", &modified)],
    );
    assert_eq!(unmodified.status(), StatusCode::OK);
}

#[test]
fn one_byte_range_is_a_206_and_several_are_the_whole_file() {
    let tree = Tree::new();
    let app = files(&tree.root());
    let bytes: Vec<u8> = (0..1000).map(|i| (i % 256) as u8).collect();
    for (range, first, last) in [
        ("bytes=0-99", 0, 99),
        ("bytes=990-2000", 990, 999),
        ("bytes=500-", 500, 999),
        ("bytes=-10", 990, 999),
        ("bytes=7-7", 7, 7),
        ("bytes=0-", 0, 999),
    ] {
        let response = get(&app, "/static/data.bin", &[("range", range)]);
        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            header(&response, "content-range"),
            Some(format!("bytes {first}-{last}/1000").as_str())
        );
        let length = last - first + 1;
        assert_eq!(
            header(&response, "content-length"),
            Some(length.to_string().as_str())
        );
        assert_eq!(&response.body()[..], &bytes[first..=last], "{range}");
        assert_eq!(
            header(&response, "content-type"),
            Some("application/octet-stream")
        );
    }
    // Several ranges: the whole file (no multipart); one that does not parse: ignored.
    for range in ["bytes=0-1,5-6", "bytes=5-1", "lines=1-2"] {
        let response = get(&app, "/static/data.bin", &[("range", range)]);
        assert_eq!(response.status(), StatusCode::OK, "{range}");
        assert_eq!(response.body().len(), 1000);
    }
    // Past the end: 416 with the length.
    for range in ["bytes=1000-", "bytes=-0"] {
        let response = get(&app, "/static/data.bin", &[("range", range)]);
        assert_eq!(
            response.status(),
            StatusCode::RANGE_NOT_SATISFIABLE,
            "{range}"
        );
        assert_eq!(header(&response, "content-range"), Some("bytes */1000"));
        assert_eq!(response.body().len(), 0);
    }
    let empty = get(&app, "/static/empty.txt", &[("range", "bytes=0-")]);
    assert_eq!(empty.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&empty, "content-range"), Some("bytes */0"));
    // HEAD ignores Range.
    let head = send(
        &app,
        TestRequest::head("/static/data.bin"),
        &[("range", "bytes=0-9")],
    );
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(header(&head, "content-length"), Some("1000"));
}

#[test]
fn if_range_honours_the_range_only_for_the_current_file() {
    let tree = Tree::new();
    let app = files(&tree.root());
    let first = get(&app, "/static/data.bin", &[]);
    let etag = header(&first, "etag").unwrap().to_owned();
    let modified = header(&first, "last-modified").unwrap().to_owned();
    let weak = format!("W/{etag}");
    let range = ("range", "bytes=0-9");
    for (value, expected) in [
        (etag.as_str(), StatusCode::PARTIAL_CONTENT),
        (modified.as_str(), StatusCode::PARTIAL_CONTENT),
        ("\"other\"", StatusCode::OK),
        (weak.as_str(), StatusCode::OK),
        ("Thu, 01 Jan 1970 00:00:00 GMT", StatusCode::OK),
    ] {
        let response = get(&app, "/static/data.bin", &[range, ("if-range", value)]);
        assert_eq!(response.status(), expected, "If-Range: {value}");
    }
}

#[test]
fn directories_serve_their_index_or_redirect_to_the_slash() {
    let tree = Tree::new();
    let app = files(&tree.root());
    let index = get(&app, "/static/docs/", &[]);
    assert_eq!(index.text(), "<p>docs</p>\n");
    assert_eq!(
        header(&index, "content-type"),
        Some("text/html; charset=utf-8")
    );
    let moved = get(&app, "/static/docs?x=1", &[]);
    assert_eq!(moved.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(header(&moved, "location"), Some("/static/docs/?x=1"));
    let root = get(&app, "/static", &[]);
    assert_eq!(header(&root, "location"), Some("/static/"));
    assert_eq!(
        get(&app, "/static/bare/", &[]).status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&app, "/static/hello.txt/", &[]).status(),
        StatusCode::NOT_FOUND
    );
    let css = get(&app, "/static/docs/page.css", &[]);
    assert_eq!(
        header(&css, "content-type"),
        Some("text/css; charset=utf-8")
    );
    let no_index = the_app().with(
        StaticFiles::new("/static", tree.root())
            .unwrap()
            .index(None),
    );
    assert_eq!(
        get(&no_index, "/static/docs/", &[]).status(),
        StatusCode::NOT_FOUND
    );
}

#[test]
fn traversal_encoded_slashes_and_links_out_of_the_root_are_refused() {
    let tree = Tree::new();
    let app = files(&tree.root());
    for target in [
        "/static/../SECRET",
        "/static/docs/../../SECRET",
        "/static/%2e%2e/SECRET",
        "/static/%2E%2E/SECRET",
        "/static/docs%2F..%2F..%2FSECRET",
        "/static/docs%2Findex.html",
        "/static/..%5CSECRET",
        "/static/hello.txt%00",
        "/static/docs//index.html",
        "/static/./hello.txt",
        "/static/%FF",
        "/static/missing.txt",
    ] {
        let response = get(&app, target, &[]);
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{target}");
        assert!(!response.text().contains("secret"), "{target}");
    }
    #[cfg(unix)]
    {
        assert_eq!(
            get(&app, "/static/outside", &[]).status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(get(&app, "/static/inside", &[]).text(), "hello, world\n");
    }
}

#[test]
fn other_methods_are_405_and_other_paths_go_to_the_app() {
    let tree = Tree::new();
    let app = files(&tree.root());
    let post = send(&app, TestRequest::post("/static/hello.txt").body("x"), &[]);
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header(&post, "allow"), Some("GET, HEAD"));
    let delete = send(
        &app,
        TestRequest::new(Method::DELETE, "/static/hello.txt"),
        &[],
    );
    assert_eq!(delete.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(get(&app, "/staticx", &[]).text(), "app:  /staticx\n");
    assert_eq!(get(&app, "/", &[]).text(), "app:  /\n");
    // As an app of its own: 404 outside its prefix.
    let alone = StaticFiles::new("/static", tree.root()).unwrap();
    assert_eq!(
        get(&alone, "/elsewhere", &[]).status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&alone, "/static/hello.txt", &[]).text(),
        "hello, world\n"
    );
    assert!(StaticFiles::new("", tree.root().join("hello.txt")).is_err());
    assert!(StaticFiles::new("", tree.base.join("nowhere")).is_err());
}

#[test]
fn a_file_answer_is_a_file_body_for_the_server() {
    let tree = Tree::new();
    let app = files(&tree.root());
    let environ = TestRequest::get("/static/data.bin")
        .header("range", "bytes=100-199")
        .into_environ();
    let response = block_on(app.call(environ, StartResponse::new())).unwrap();
    assert_eq!(response.body().content_length(), Some(100));
    let (_, _, mut body) = response.into_parts();
    let range = Pin::new(&mut body).take_file().expect("a file body");
    assert_eq!((range.offset(), range.len()), (100, 100));
}

#[test]
fn the_access_log_keeps_a_file_a_file() {
    let tree = Tree::new();
    let records = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&records);
    let app = files(&tree.root()).with(AccessLog::with_sink(move |record| {
        sink.lock()
            .unwrap()
            .push((record.bytes_sent, record.outcome));
    }));
    let environ = TestRequest::get("/static/data.bin").into_environ();
    let response = block_on(app.call(environ, StartResponse::new())).unwrap();
    let (_, _, mut body) = response.into_parts();
    let range = Pin::new(&mut body)
        .take_file()
        .expect("the access log passes the file on");
    assert_eq!(range.len(), 1000);
    drop(body);
    assert_eq!(*records.lock().unwrap(), [(1000, Outcome::Complete)]);
}

#[test]
fn static_files_pass_the_app_suite_as_an_app_and_as_middleware() {
    let tree = Tree::new();
    std::fs::write(tree.root().join("index.html"), "<p>home</p>\n").unwrap();
    run_blocking(&StaticFiles::new("", tree.root()).unwrap()).assert_ok_strict();
    let middleware = StaticFiles::new("/rwgi-static-files", tree.root()).unwrap();
    block_on(run_middleware(&middleware)).assert_ok_strict();
}
