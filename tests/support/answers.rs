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
