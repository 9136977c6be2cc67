//! Trailers: header fields that follow a body (spec §14.8, REQ-TRAIL-*).
//!
//! Some facts are known only once a body has been produced: a checksum of what was streamed, a
//! status that says whether the stream ended well (gRPC's). HTTP carries them as **trailer
//! fields**, after the data: in HTTP/1.1 in the last chunk of a chunked body, in HTTP/2 as a
//! final `HEADERS` frame.
//!
//! A response body yields trailers through two provided methods of [`Body`]:
//! [`trailer_names`](Body::trailer_names) announces the field names before the first chunk
//! (HTTP/1.1 names them in the head, in a `Trailer` field the server writes), and
//! [`poll_trailers`](Body::poll_trailers) yields the fields after the data ended. A body that
//! has none needs no change. [`WithTrailers`] adds trailers to any body.
//!
//! A server that carries trailers says so by offering a [`Trailers`] value
//! ([`Environ::extension`] finds it). Without it, trailers are dropped, so an app that must deliver the facts puts them
//! in the body instead. Even with it, HTTP/1.1 carries response trailers only to a client that
//! sent `TE: trailers` ([`accepts_trailers`] tells), in a chunked body.
//!
//! The request's own trailers reach the app from its [`Input`](crate::Input) once the input
//! ended (REQ-TRAIL-4).
//!
//! ```
//! use rwgi::body::{BodyExt, Full};
//! use rwgi::http::{HeaderMap, HeaderName, HeaderValue};
//! use rwgi::trailers::WithTrailers;
//!
//! let digest = HeaderName::from_static("x-digest");
//! let trailers = Box::pin(async {
//!     let mut fields = HeaderMap::new();
//!     fields.insert("x-digest", HeaderValue::from_static("sha-256=abc"));
//!     Ok(fields)
//! });
//! let mut body = WithTrailers::new(Full::new("data"), vec![digest], trailers);
//!
//! # futures_executor::block_on(async {
//! assert_eq!(body.chunk().await.unwrap().unwrap(), "data");
//! assert!(body.chunk().await.is_none());
//! let fields = body.trailers().await.unwrap().unwrap();
//! assert_eq!(fields["x-digest"], "sha-256=abc");
//! # });
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use http::header::{self, HeaderName};
use http::{HeaderMap, Version};

use crate::body::Body;
use crate::response::is_hop_by_hop;
use crate::violation::Violation;
use crate::{Environ, Error};

/// The server's word that it carries trailers: response trailers to the client (REQ-TRAIL-3)
/// and request trailers to the app (REQ-TRAIL-4). A server offers it in the environ's
/// extensions or for the whole connection; [`Environ::extension`] finds it.
///
/// ```
/// use rwgi::trailers::Trailers;
/// use rwgi_conformance::test_client::TestRequest;
///
/// let mut environ = TestRequest::get("/").into_environ();
/// assert!(environ.extension::<Trailers>().is_none());
/// environ.extensions_mut().insert(Trailers::new());
/// assert!(environ.extension::<Trailers>().is_some());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Trailers {
    _private: (),
}

impl Trailers {
    /// The offer, for servers.
    pub const fn new() -> Self {
        Trailers { _private: () }
    }
}

/// Whether a response to this request can carry trailers to the client: the server offers
/// [`Trailers`], and the request is HTTP/2 or later, or HTTP/1.1 with `TE: trailers`
/// (RFC 9110 §10.1.4; a server may drop trailers the client did not ask for).
///
/// ```
/// use rwgi::trailers::{accepts_trailers, Trailers};
/// use rwgi_conformance::test_client::TestRequest;
///
/// let mut environ = TestRequest::get("/").header("te", "trailers").into_environ();
/// assert!(!accepts_trailers(&environ), "the server does not offer them");
/// environ.extensions_mut().insert(Trailers::new());
/// assert!(accepts_trailers(&environ));
/// ```
pub fn accepts_trailers(environ: &Environ) -> bool {
    if environ.extension::<Trailers>().is_none() {
        return false;
    }
    environ.version() >= Version::HTTP_2
        || (environ.version() == Version::HTTP_11
            && environ.headers().get_all(header::TE).iter().any(|value| {
                value
                    .to_str()
                    .unwrap_or("")
                    .split(',')
                    .any(|token| token.trim().eq_ignore_ascii_case("trailers"))
            }))
}

/// Checks that `name` may be a trailer field (REQ-TRAIL-2): not a field that frames or routes
/// the message, controls the request, authenticates, or says how to process the content
/// (RFC 9110 §6.5.1), since a recipient has already acted on the head when trailers arrive.
///
/// # Errors
///
/// The violation of REQ-TRAIL-2 for such a field.
///
/// ```
/// use rwgi::http::header;
/// use rwgi::http::HeaderName;
/// use rwgi::trailers::check_trailer_name;
///
/// assert!(check_trailer_name(&HeaderName::from_static("x-digest")).is_ok());
/// let error = check_trailer_name(&header::CONTENT_LENGTH).unwrap_err();
/// assert_eq!(error.to_string(), "REQ-TRAIL-2: `content-length` cannot be a trailer field");
/// ```
pub fn check_trailer_name(name: &HeaderName) -> Result<(), Violation> {
    let refused = is_hop_by_hop(name)
        || matches!(
            name.as_str(),
            "authorization"
                | "cache-control"
                | "content-encoding"
                | "content-length"
                | "content-range"
                | "content-type"
                | "expect"
                | "host"
                | "max-forwards"
                | "range"
                | "set-cookie"
        );
    if refused {
        Err(Violation::new(
            "REQ-TRAIL-2",
            format!("`{name}` cannot be a trailer field"),
        ))
    } else {
        Ok(())
    }
}

/// A body with trailers: the data of `body`, then the fields `trailers` resolves to.
///
/// `trailers` is polled only once the data ended, so an `async` block computes the fields then
/// (from state it shares with the body, say). Fields it yields that `names` does not announce
/// are not sent (REQ-TRAIL-1).
///
/// ```
/// use rwgi::body::{Body, Full};
/// use rwgi::http::{HeaderMap, HeaderName};
/// use rwgi::trailers::WithTrailers;
///
/// let names = vec![HeaderName::from_static("x-status")];
/// let body = WithTrailers::new(Full::new("x"), names, Box::pin(async { Ok(HeaderMap::new()) }));
/// assert_eq!(body.trailer_names(), [HeaderName::from_static("x-status")]);
/// assert_eq!(body.content_length(), Some(1));
/// ```
pub struct WithTrailers<B, F> {
    body: B,
    names: Vec<HeaderName>,
    trailers: Option<F>,
}

impl<B, F> WithTrailers<B, F> {
    /// `body`, followed by the fields named `names` that `trailers` resolves to.
    pub fn new(body: B, names: Vec<HeaderName>, trailers: F) -> Self {
        WithTrailers {
            body,
            names,
            trailers: Some(trailers),
        }
    }
}

impl<B, F> fmt::Debug for WithTrailers<B, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WithTrailers")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

impl<B: Body + Unpin, F: Unpin> Stream for WithTrailers<B, F> {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.body).poll_next(cx)
    }
}

impl<B, F> Body for WithTrailers<B, F>
where
    B: Body + Unpin,
    F: Future<Output = Result<HeaderMap, Error>> + Unpin,
{
    fn content_length(&self) -> Option<u64> {
        self.body.content_length()
    }

    fn trailer_names(&self) -> &[HeaderName] {
        &self.names
    }

    fn poll_trailers(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<HeaderMap>, Error>> {
        let Some(trailers) = self.trailers.as_mut() else {
            return Poll::Ready(Ok(None));
        };
        let fields = std::task::ready!(Pin::new(trailers).poll(cx));
        self.trailers = None;
        Poll::Ready(fields.map(Some))
    }
}

/// Keeps of `fields` the ones `names` announced and a trailer may carry (REQ-TRAIL-1,
/// REQ-TRAIL-2): what a server sends of a body's trailers.
pub(crate) fn announced(names: &[HeaderName], fields: HeaderMap) -> HeaderMap {
    let mut kept = HeaderMap::new();
    let mut current = None;
    for (name, value) in fields {
        if let Some(name) = name {
            current = Some(name);
        }
        if let Some(name) = current.as_ref() {
            if names.contains(name) && check_trailer_name(name).is_ok() {
                kept.append(name.clone(), value);
            }
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn only_announced_and_allowed_fields_are_kept() {
        let mut fields = HeaderMap::new();
        fields.append("x-a", HeaderValue::from_static("1"));
        fields.append("x-a", HeaderValue::from_static("2"));
        fields.append("x-b", HeaderValue::from_static("3"));
        fields.append("content-length", HeaderValue::from_static("4"));
        let names = [HeaderName::from_static("x-a"), header::CONTENT_LENGTH];
        let kept = announced(&names, fields);
        let values: Vec<_> = kept.get_all("x-a").iter().collect();
        assert_eq!(values, ["1", "2"]);
        assert_eq!(kept.len(), 2, "{kept:?}");
    }

    #[test]
    fn every_hop_by_hop_field_is_refused() {
        for name in crate::response::HOP_BY_HOP {
            assert_eq!(
                check_trailer_name(name).unwrap_err().requirement(),
                "REQ-TRAIL-2"
            );
        }
    }
}
