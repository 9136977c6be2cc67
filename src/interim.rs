//! Interim responses and flushing the head (spec §14.7, REQ-INTERIM-*).
//!
//! Two ways for an app to get something to the client before its first body chunk, each an
//! extension a server offers (found by [`Environ::extension`](crate::Environ::extension)):
//!
//! - [`FlushHead`]: the head goes out as soon as the app returns its response, not with the
//!   first chunk. Server-sent events and long polling need it: their first chunk may be minutes
//!   away, and a client waits for the head before it treats the stream as open. It is the app's
//!   explicit exception to REQ-SRV-4: a body that fails before its first chunk then aborts the
//!   connection instead of becoming a `500`. The app asks for it by returning a `FlushHead` in
//!   its response's extensions. Without the offer, an app sends a first chunk at once instead
//!   (an SSE comment line, `:\n\n`).
//! - [`Interim`]: informational (1xx) responses before the final one, such as `103 Early
//!   Hints`, whose `Link` fields let a browser fetch what the page will need while the app
//!   still works on it. Without the offer, the app puts the same `Link` fields in its final
//!   response, or leaves them out.
//!
//! ```
//! use rwgi::body::Empty;
//! use rwgi::http::{HeaderMap, StatusCode};
//! use rwgi::interim::FlushHead;
//! use rwgi_conformance::test_client::TestRequest;
//!
//! let mut environ = TestRequest::get("/events").into_environ();
//! environ.extensions_mut().insert(FlushHead::new()); // the server's offer
//!
//! let mut response = rwgi::StartResponse::new().start(StatusCode::OK, HeaderMap::new()).body(Empty);
//! if environ.extension::<FlushHead>().is_some() {
//!     response.extensions_mut().insert(FlushHead::new()); // the app's request
//! }
//! assert!(response.extensions().get::<FlushHead>().is_some());
//! ```

use std::fmt;
use std::sync::Arc;

use http::header::CONTENT_LENGTH;
use http::{HeaderMap, StatusCode};

use crate::response::is_hop_by_hop;
use crate::violation::Violation;

/// Sending the head before the first chunk (REQ-INTERIM-3): offered to the environ, the
/// server's offer; in a response's extensions, the app's request. A server that did not offer
/// it ignores the request, and a response without it keeps REQ-SRV-4.
///
/// ```
/// use rwgi::interim::FlushHead;
/// assert_eq!(FlushHead::new(), FlushHead::default());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlushHead {
    _private: (),
}

impl FlushHead {
    /// The offer, or the request.
    pub const fn new() -> Self {
        FlushHead { _private: () }
    }
}

/// What a server implements to send interim responses for one request; an [`Interim`] wraps
/// it for the app.
///
/// # Implementer notes
///
/// `send` is called only with a head [`check_interim`] accepted. It queues the response to go
/// out before the final head, in the order of the calls (REQ-INTERIM-2), and returns without
/// waiting for the network. Once the final head was sent, or the client went away, it returns
/// [`InterimError::Closed`].
pub trait SendInterim: Send + Sync {
    /// Queues an interim response.
    ///
    /// # Errors
    ///
    /// [`InterimError::Closed`] when it is too late.
    fn send(&self, status: StatusCode, headers: HeaderMap) -> Result<(), InterimError>;
}

/// The app's handle for interim responses, which a server that offers them puts in the
/// environ's extensions (it is the request's own).
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use rwgi::http::{HeaderMap, HeaderValue, StatusCode};
/// use rwgi::interim::{Interim, InterimError, SendInterim};
///
/// /// A server's queue: what goes out before the final head.
/// #[derive(Default)]
/// struct Queue(Mutex<Vec<StatusCode>>);
///
/// impl SendInterim for Queue {
///     fn send(&self, status: StatusCode, _: HeaderMap) -> Result<(), InterimError> {
///         self.0.lock().unwrap().push(status);
///         Ok(())
///     }
/// }
///
/// let queue = Arc::new(Queue::default());
/// let interim = Interim::new(Arc::clone(&queue));
/// let mut hints = HeaderMap::new();
/// hints.insert("link", HeaderValue::from_static("</style.css>; rel=preload; as=style"));
/// interim.send(StatusCode::EARLY_HINTS, hints).unwrap();
/// assert!(interim.send(StatusCode::OK, HeaderMap::new()).is_err(), "not informational");
/// assert_eq!(*queue.0.lock().unwrap(), [StatusCode::EARLY_HINTS]);
/// ```
#[derive(Clone)]
pub struct Interim {
    sender: Arc<dyn SendInterim>,
}

impl Interim {
    /// A handle that sends through `sender`.
    pub fn new<S: SendInterim + 'static>(sender: Arc<S>) -> Self {
        Interim { sender }
    }

    /// Sends an interim response before the final one (REQ-INTERIM-1, REQ-INTERIM-2).
    ///
    /// # Errors
    ///
    /// [`InterimError::Invalid`] for a head [`check_interim`] refuses, before the server sees
    /// it; [`InterimError::Closed`] once the final head was sent or the client went away.
    pub fn send(&self, status: StatusCode, headers: HeaderMap) -> Result<(), InterimError> {
        check_interim(status, &headers).map_err(InterimError::Invalid)?;
        self.sender.send(status, headers)
    }
}

impl fmt::Debug for Interim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interim").finish_non_exhaustive()
    }
}

/// Why an interim response was not sent.
///
/// ```
/// use rwgi::http::{HeaderMap, StatusCode};
/// use rwgi::interim::{check_interim, InterimError};
///
/// let error = InterimError::Invalid(check_interim(StatusCode::CONTINUE, &HeaderMap::new()).unwrap_err());
/// assert_eq!(error.to_string(), "REQ-INTERIM-1: 100 Continue is the server's to send");
/// assert_eq!(InterimError::Closed.to_string(), "too late for an interim response");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum InterimError {
    /// The status or headers break REQ-INTERIM-1.
    Invalid(Violation),
    /// The final head went out already, or the client went away.
    Closed,
}

impl fmt::Display for InterimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InterimError::Invalid(violation) => violation.fmt(f),
            InterimError::Closed => f.write_str("too late for an interim response"),
        }
    }
}

impl std::error::Error for InterimError {}

/// Checks an interim response's head (REQ-INTERIM-1): an informational status other than
/// `100 Continue` (the server's, REQ-INPUT-5) and `101 Switching Protocols` (the upgrade
/// extension's), and headers without hop-by-hop fields or a `Content-Length`.
///
/// # Errors
///
/// The violation of REQ-INTERIM-1.
///
/// ```
/// use rwgi::http::{HeaderMap, StatusCode};
/// use rwgi::interim::check_interim;
///
/// assert!(check_interim(StatusCode::EARLY_HINTS, &HeaderMap::new()).is_ok());
/// let error = check_interim(StatusCode::OK, &HeaderMap::new()).unwrap_err();
/// assert_eq!(error.to_string(), "REQ-INTERIM-1: an interim response must be 1xx, got 200");
/// ```
pub fn check_interim(status: StatusCode, headers: &HeaderMap) -> Result<(), Violation> {
    let refused = match status.as_u16() {
        100 => Some("100 Continue is the server's to send".to_owned()),
        101 => Some("101 Switching Protocols belongs to the upgrade extension".to_owned()),
        102..=199 => headers
            .keys()
            .find(|name| is_hop_by_hop(name) || *name == CONTENT_LENGTH)
            .map(|name| format!("an interim response cannot carry `{name}`")),
        other => Some(format!("an interim response must be 1xx, got {other}")),
    };
    match refused {
        Some(message) => Err(Violation::new("REQ-INTERIM-1", message)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn interim_heads_are_checked() {
        let mut headers = HeaderMap::new();
        headers.insert("content-length", HeaderValue::from_static("0"));
        let error = check_interim(StatusCode::EARLY_HINTS, &headers).unwrap_err();
        assert_eq!(
            error.to_string(),
            "REQ-INTERIM-1: an interim response cannot carry `content-length`"
        );
        let error = check_interim(StatusCode::SWITCHING_PROTOCOLS, &HeaderMap::new());
        assert!(error.unwrap_err().to_string().contains("upgrade"));
        let processing = StatusCode::from_u16(102).unwrap();
        assert!(check_interim(processing, &HeaderMap::new()).is_ok());
    }
}
