//! Trailers both ways: the upload streamed back, followed by its SHA-256 as a trailer field.
//!
//! [`Checksum`] answers a request with its own body, chunk by chunk as it arrives, and hashes
//! it on the way. Only at the end is the hash known, so it goes out as the trailer field
//! `x-sha256`, with the request's own `x-checksum` trailer, if it sent one, as
//! `x-upload-checksum`. A server without the trailers extension drops them, and so does
//! HTTP/1.1 for a client that did not send `TE: trailers`; the body still arrives whole.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use rwgi::body::Body;
use rwgi::http::header::CONTENT_TYPE;
use rwgi::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use rwgi::{App, Environ, Error, Input, Response, StartResponse};
use sha2::{Digest, Sha256};

/// The trailer field with the hash of the body.
const SHA256: HeaderName = HeaderName::from_static("x-sha256");
/// The trailer field that repeats the request's `x-checksum` trailer.
const UPLOAD_CHECKSUM: HeaderName = HeaderName::from_static("x-upload-checksum");

/// Streams the request body back, with trailers (see the module documentation).
#[derive(Clone, Copy, Debug, Default)]
pub struct Checksum;

impl App for Checksum {
    type Body = Hashed;

    async fn call(
        &self,
        mut environ: Environ,
        start: StartResponse,
    ) -> Result<Response<Hashed>, Error> {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        let body = Hashed {
            input: environ.take_input(),
            hasher: Sha256::new(),
            names: [SHA256, UPLOAD_CHECKSUM],
        };
        Ok(start.start(StatusCode::OK, headers).body(body))
    }
}

/// The request body, hashed as it goes through.
pub struct Hashed {
    input: Input,
    hasher: Sha256,
    names: [HeaderName; 2],
}

impl std::fmt::Debug for Hashed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hashed").finish_non_exhaustive()
    }
}

impl futures_core::Stream for Hashed {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = ready!(Pin::new(&mut self.input).poll_next(cx));
        if let Some(Ok(chunk)) = &item {
            self.hasher.update(chunk);
        }
        Poll::Ready(item)
    }
}

impl Body for Hashed {
    fn trailer_names(&self) -> &[HeaderName] {
        &self.names
    }

    fn poll_trailers(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<HeaderMap>, Error>> {
        let upload = ready!(Pin::new(&mut self.input).poll_trailers(cx))?;
        let mut fields = HeaderMap::new();
        let hash = format!("{:x}", self.hasher.clone().finalize());
        fields.insert(SHA256, HeaderValue::try_from(hash).map_err(Error::new)?);
        if let Some(checksum) = upload.and_then(|mut upload| upload.remove("x-checksum")) {
            fields.insert(UPLOAD_CHECKSUM, checksum);
        }
        Poll::Ready(Ok(Some(fields)))
    }
}
