//! Checks of file bodies (§14.9): the bytes of a file range, and a file that shrinks.
//!
//! The probe app writes a file of its own into the temporary directory of the machine the
//! server runs on (the suite and the server under test share it) and answers with a
//! [`FileBody`] of it. Every server can send a file body, as a stream if it does not declare
//! file bodies, so these checks apply to every server and never skip.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::header::CONTENT_LENGTH;
use http::{HeaderMap, HeaderValue, StatusCode};
use rwgi::app::app_fn;
use rwgi::file::{FileBody, FileRange};
use rwgi::{Environ, Error, StartResponse};

use super::client::{preview, Connection, WireError};
use super::{fail, get, request, Checked, Suite};

/// A file the probe answers with, removed when the check is done.
struct ProbeFile {
    path: PathBuf,
}

impl ProbeFile {
    /// A new file of `bytes`.
    fn new(bytes: &[u8]) -> Result<ProbeFile, String> {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "rwgi-suite-file-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        File::create(&path)
            .and_then(|mut file| file.write_all(bytes))
            .map_err(|error| format!("the suite could not write {}: {error}", path.display()))?;
        Ok(ProbeFile { path })
    }
}

impl Drop for ProbeFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Bytes that differ from their neighbours, so that a shifted or wrong range shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i / 251) as u8)
        .collect()
}

const FILE_LEN: usize = 300_000;
const OFFSET: u64 = 1_000;
const RANGE_LEN: u64 = 200_000;

/// An app answering with a file body of `path`: `/range` the bytes `OFFSET..OFFSET +
/// RANGE_LEN`, `/whole` the whole file with its `Content-Length` set by the app, `/empty` an
/// empty range; `/shrink` the whole file, cut to `shrink_to` bytes after the body was made.
fn file_app(path: PathBuf, shrink_to: u64) -> impl rwgi::App {
    app_fn(move |environ: Environ, start: StartResponse| {
        let path = path.clone();
        async move {
            let file = File::open(&path)?;
            let mut headers = HeaderMap::new();
            let range = match environ.path_info() {
                "/range" => FileRange::new(file, OFFSET, RANGE_LEN)?,
                "/whole" => {
                    headers.insert(CONTENT_LENGTH, HeaderValue::from(FILE_LEN));
                    FileRange::whole(file)?
                }
                "/empty" => FileRange::new(file, 5, 0)?,
                "/shrink" => {
                    let range = FileRange::whole(file)?;
                    OpenOptions::new()
                        .write(true)
                        .open(&path)?
                        .set_len(shrink_to)?;
                    range
                }
                other => return Err(Error::msg(format!("no file at {other}"))),
            };
            Ok(start
                .start(StatusCode::OK, headers)
                .body(FileBody::new(range)))
        }
    })
}

/// A file range goes out as exactly its bytes, with its length as `Content-Length`, on
/// every server (REQ-FILE-2).
pub(super) fn file_body_range(suite: &mut Suite<'_>) -> Checked {
    const ID: &str = "REQ-FILE-2";
    let bytes = pattern(FILE_LEN);
    let file = ProbeFile::new(&bytes).map_err(|e| fail(ID, e))?;
    suite.needs_app_in_process("file bodies")?;
    suite
        .probe
        .set(super::probe::in_process_app(file_app(file.path.clone(), 0)));
    let range = &bytes[OFFSET as usize..(OFFSET + RANGE_LEN) as usize];
    let cases: [(&str, &str, &[u8]); 4] = [
        ("GET", "/range", range),
        ("GET", "/whole", &bytes),
        ("GET", "/empty", b""),
        ("HEAD", "/range", b""),
    ];
    // One connection for all four: a server that sends more than it announced garbles the
    // answers that follow.
    let mut connection = suite.connect().map_err(|e| fail(ID, e))?;
    for (method, target, expected) in cases {
        let what = match target {
            "/range" => format!("the {RANGE_LEN} bytes from {OFFSET} of a {FILE_LEN}-byte file"),
            "/whole" => format!("the whole {FILE_LEN}-byte file"),
            _ => "an empty range".to_owned(),
        };
        let length = if target == "/range" {
            RANGE_LEN as usize
        } else {
            expected.len()
        };
        exchange(&mut connection, method, target, &what, length, expected)?;
    }
    Ok(())
}

fn exchange(
    connection: &mut Connection,
    method: &str,
    target: &str,
    what: &str,
    length: usize,
    expected: &[u8],
) -> Checked {
    const ID: &str = "REQ-FILE-2";
    let expect = format!("{what} for {method} {target}, with Content-Length: {length}");
    connection
        .send(&request(method, target, "", b""))
        .map_err(|e| {
            fail(
                ID,
                format!("expected {expect}; the request could not be sent ({e})"),
            )
        })?;
    let response = connection
        .response(method)
        .map_err(|e| fail(ID, format!("expected {expect}, seen {e}")))?;
    let announced = response.header("content-length");
    if response.status != 200
        || announced.as_deref() != Some(length.to_string().as_str())
        || !response.is_complete()
        || response.body != expected
    {
        let first_difference = response
            .body
            .iter()
            .zip(expected)
            .position(|(seen, wanted)| seen != wanted);
        let difference = match first_difference {
            Some(at) => format!(", differing from byte {at} on"),
            None if response.body.len() != expected.len() => format!(
                ", {} bytes where {} were expected",
                response.body.len(),
                expected.len()
            ),
            None => String::new(),
        };
        return Err(fail(
            ID,
            format!(
                "expected {expect}, seen status {} with Content-Length {announced:?} and {} body \
                 bytes{difference} ({})",
                response.status,
                response.body.len(),
                response.describe()
            ),
        ));
    }
    Ok(())
}

/// A file that ends before its range does (it shrank after the body was made) is not sent
/// as if whole: the response is aborted (also before its head), or is a `500` when nothing had
/// gone out (REQ-FILE-3).
pub(super) fn file_body_short(suite: &mut Suite<'_>) -> Checked {
    const ID: &str = "REQ-FILE-3";
    const SHRUNK: u64 = 30_000;
    let bytes = pattern(FILE_LEN);
    let file = ProbeFile::new(&bytes).map_err(|e| fail(ID, e))?;
    suite.needs_app_in_process("file bodies")?;
    suite.probe.set(super::probe::in_process_app(file_app(
        file.path.clone(),
        SHRUNK,
    )));
    let expected = format!(
        "a response cut short (or a 500) for a file body of {FILE_LEN} bytes whose file shrank \
         to {SHRUNK}"
    );
    let mut connection = suite.connect().map_err(|e| fail(ID, e))?;
    connection
        .send(&get("/shrink"))
        .map_err(|e| fail(ID, format!("the request could not be sent ({e})")))?;
    let response = match connection.response("GET") {
        Ok(response) => response,
        // Aborted before the head went out: the server found the file short at its first read
        // (a server that sends the head first may not have flushed it yet).
        Err(WireError::Closed | WireError::Io(_)) => return Ok(()),
        Err(error) => return Err(fail(ID, format!("expected {expected}, seen {error}"))),
    };
    let padded = response.body.len() > SHRUNK as usize;
    if response.status == 500 && !padded {
        return Ok(());
    }
    if response.is_complete() || padded || response.body[..] != bytes[..response.body.len()] {
        let extra = if padded {
            format!(
                ", {} bytes past the file's end ({:?} after it)",
                response.body.len() - SHRUNK as usize,
                preview(&response.body[SHRUNK as usize..])
            )
        } else {
            String::new()
        };
        return Err(fail(
            ID,
            format!("expected {expected}, seen {}{extra}", response.describe()),
        ));
    }
    Ok(())
}
