//! What the test apps answer with: header maps and bodies built in one line.

use bytes::Bytes;
use futures_core::Stream;
use rwgi::body::StreamBody;
use rwgi::http::{HeaderMap, HeaderName, HeaderValue};
use rwgi::Error;

/// A header map holding one header.
pub fn one_header(name: HeaderName, value: &'static str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(name, HeaderValue::from_static(value));
    headers
}

/// A body of the given chunks, of unknown length.
pub fn chunks(
    parts: &[&'static str],
) -> StreamBody<impl Stream<Item = Result<Bytes, Error>> + Unpin> {
    let parts: Vec<Result<Bytes, Error>> = parts
        .iter()
        .map(|p| Ok(Bytes::from_static(p.as_bytes())))
        .collect();
    StreamBody::new(futures_util::stream::iter(parts))
}

/// A file of `bytes` in the temporary directory, removed on drop.
pub struct TempFile(pub std::path::PathBuf);

impl TempFile {
    pub fn new(name: &str, bytes: &[u8]) -> TempFile {
        let path = std::env::temp_dir().join(format!(
            "rwgi-answers-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&path, bytes).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A body that streams `"abcdef"` but hands out a range of only the first two bytes of the
/// file at `path`: a file body that breaks REQ-FILE-1.
pub struct ShortRange {
    pub stream: rwgi::body::Full,
    pub path: std::path::PathBuf,
}

impl ShortRange {
    pub fn new(path: std::path::PathBuf) -> ShortRange {
        ShortRange {
            stream: rwgi::body::Full::new("abcdef"),
            path,
        }
    }
}

impl Stream for ShortRange {
    type Item = Result<Bytes, Error>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::pin::Pin::new(&mut self.stream).poll_next(cx)
    }
}

impl rwgi::body::Body for ShortRange {
    fn content_length(&self) -> Option<u64> {
        self.stream.content_length()
    }

    fn take_file(mut self: std::pin::Pin<&mut Self>) -> Option<rwgi::file::FileRange> {
        self.stream = rwgi::body::Full::new("");
        let file = std::fs::File::open(&self.path).ok()?;
        rwgi::file::FileRange::new(file, 0, 2).ok()
    }
}
