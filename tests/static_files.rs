//! File bodies (spec §14.9) over real sockets through `rwgi-server`: the static-file example
//! (`examples/apps/files.rs`), its ranges and conditional requests on the wire, a file larger
//! than the server's read chunks, and REDbot, an outside HTTP linter, over every kind of answer.
//!
//! REDbot (`pip install redbot`) runs when it is installed: on `PATH`, or where `RWGI_REDBOT`
//! points. Without it the REDbot test says so and passes, unless `RWGI_REQUIRE_REDBOT=1` (as in
//! `.ci/run`), which makes a missing REDbot a failure.

#[path = "../examples/apps/files.rs"]
mod files;
#[allow(dead_code)] // The tests use a part of the shared client.
mod support {
    pub mod raw_http;
}

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use rwgi_server::{Server, ServerHandle};
use support::raw_http::{Client, Response};

/// A folder of files for one test, removed on drop.
struct Folder(PathBuf);

impl Folder {
    fn new(name: &str) -> Folder {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "rwgi-files-{name}-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(path.join("docs")).unwrap();
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/static_files/public");
        for entry in std::fs::read_dir(shipped).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), path.join(entry.file_name())).unwrap();
        }
        std::fs::write(path.join("hello.txt"), "hello, world\n").unwrap();
        std::fs::write(
            path.join("docs/index.html"),
            "<!doctype html>\n<p>docs</p>\n",
        )
        .unwrap();
        std::fs::write(path.join("large.bin"), pattern(LARGE)).unwrap();
        Folder(path)
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Several of the server's 128 KiB reads, and not a multiple of them.
const LARGE: usize = 1_000_003;

fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i >> 12) as u8)
        .collect()
}

fn serve(root: &Path) -> (ServerHandle, SocketAddr) {
    let server = Server::builder()
        .bind("127.0.0.1:0")
        .threads(2)
        .accesslog("off")
        .serve(files::app(root).expect("the example serves its folder"))
        .expect("the server binds");
    let address = server.local_addr().expect("a TCP address");
    (server, address)
}

/// `GET target` with the extra field lines `fields`, on a connection of its own.
fn get(address: SocketAddr, target: &str, fields: &str) -> Response {
    let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\n{fields}\r\n");
    Client::connect(address).exchange(request.as_bytes())
}

#[test]
fn files_ranges_and_validators_go_over_the_wire() {
    let folder = Folder::new("wire");
    let (server, address) = serve(&folder.0);
    let large = pattern(LARGE);

    let whole = get(address, "/static/large.bin", "");
    assert_eq!(whole.status, 200);
    assert_eq!(
        whole.header("content-length"),
        Some(LARGE.to_string().as_str())
    );
    assert!(
        whole.complete && whole.body == large,
        "the large file arrived changed"
    );
    let etag = whole.header("etag").unwrap().to_owned();

    let part = get(
        address,
        "/static/large.bin",
        "Range: bytes=300000-700001\r\n",
    );
    assert_eq!(part.status, 206);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 300000-700001/{LARGE}").as_str())
    );
    assert_eq!(part.header("content-length"), Some("400002"));
    assert!(
        part.body == large[300_000..=700_001],
        "the range arrived changed"
    );

    let same = get(
        address,
        "/static/large.bin",
        &format!("If-None-Match: {etag}\r\n"),
    );
    assert_eq!((same.status, same.body.len()), (304, 0));

    let past = get(address, "/static/large.bin", "Range: bytes=2000000-\r\n");
    assert_eq!(past.status, 416);
    assert_eq!(
        past.header("content-range"),
        Some(format!("bytes */{LARGE}").as_str())
    );

    let head =
        Client::connect(address).exchange(b"HEAD /static/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((head.status, head.body.len()), (200, 0));
    assert_eq!(head.header("content-length"), Some("13"));

    assert_eq!(get(address, "/static/../Cargo.toml", "").status, 404);
    server.shutdown();
}

/// Where REDbot is: `RWGI_REDBOT`, else `redbot` on `PATH`, else the virtual environment
/// `.ci/run` installs it into.
fn find_redbot() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("RWGI_REDBOT") {
        return Some(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("redbot"))
            .find(|candidate| candidate.is_file())
    });
    on_path.or_else(|| {
        let venv = PathBuf::from("/opt/redbot/bin/redbot");
        venv.is_file().then_some(venv)
    })
}

/// REDbot's notes for `url`: `(level, id, summary)`, from its HAR output.
fn redbot(redbot: &Path, url: &str) -> Vec<(String, String, String)> {
    let output = Command::new(redbot)
        .args(["-o", "har", url])
        .output()
        .expect("REDbot runs");
    assert!(
        output.status.success(),
        "REDbot failed on {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let har: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("REDbot's HAR for {url}: {error}"));
    let entries = har["log"]["entries"].as_array().expect("HAR entries");
    entries
        .iter()
        .flat_map(|entry| {
            entry["_red_messages"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|note| {
            let text = |key: &str| note[key].as_str().unwrap_or_default().to_owned();
            (text("level"), text("note_id"), text("summary"))
        })
        .collect()
}

#[test]
fn redbot_finds_nothing_bad_in_the_static_file_example() {
    let Some(redbot_path) = find_redbot() else {
        if std::env::var("RWGI_REQUIRE_REDBOT").as_deref() == Ok("1") {
            panic!("REDbot is not installed, and RWGI_REQUIRE_REDBOT=1 requires it");
        }
        println!(
            "REDbot is not installed (not on PATH, RWGI_REDBOT unset): skipping the REDbot test"
        );
        return;
    };
    let folder = Folder::new("redbot");
    let (server, address) = serve(&folder.0);
    let base = format!("http://{address}");
    // Every kind of answer the example gives to a plain GET; REDbot adds the range and
    // conditional sub-requests (`Range`, `If-None-Match`, `If-Modified-Since`) for the files.
    let files = [
        "/static/",
        "/static/style.css",
        "/static/hello.txt",
        "/static/large.bin",
    ];
    let others = ["/", "/static/docs", "/static/missing.txt", "/nowhere"];
    let checked: Vec<_> = std::thread::scope(|scope| {
        let runs: Vec<_> = files
            .iter()
            .chain(&others)
            .map(|path| {
                let url = format!("{base}{path}");
                let redbot_path = &redbot_path;
                scope.spawn(move || (url.clone(), redbot(redbot_path, &url)))
            })
            .collect();
        runs.into_iter().map(|run| run.join().unwrap()).collect()
    });
    let mut bad = Vec::new();
    for (url, notes) in &checked {
        for (level, id, summary) in notes {
            if level.eq_ignore_ascii_case("bad") {
                bad.push(format!("{url}: {id}: {summary}"));
            }
        }
        if files.iter().any(|path| url.ends_with(path)) {
            // The sub-requests ran, and found the answers right.
            for id in ["RANGE_CORRECT", "INM_304", "IMS_304"] {
                assert!(
                    notes.iter().any(|(_, note, _)| note == id),
                    "REDbot did not report {id} for {url}: {notes:?}"
                );
            }
        }
    }
    assert!(bad.is_empty(), "REDbot found problems: {bad:#?}");
    server.shutdown();
}
