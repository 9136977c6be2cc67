//! The error type of app and body failures.
//!
//! An [`Error`] is what an app returns when it cannot produce a response, and what a response
//! or request body yields when it cannot produce its next chunk. It is deliberately opaque: any
//! `std::error::Error + Send + Sync` fits in, and the server only needs to know *that* something
//! failed (REQ-ERR-1), not what.
//!
//! Errors about malformed input have their own typed errors next to the type they concern:
//! [`TargetError`](crate::environ::TargetError), [`MountError`](crate::environ::MountError),
//! [`ReadError`](crate::input::ReadError) and [`Violation`](crate::violation::Violation). One of
//! them travels inside an `Error`: the [`InputError`] a server puts in a request body's error
//! when the client is the cause, which [`Error::input_error`] finds (REQ-INPUT-8).

use std::error::Error as StdError;
use std::fmt;

use crate::input::InputError;

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// An app or body failure.
///
/// ```
/// use rwgi::Error;
///
/// let io = std::io::Error::new(std::io::ErrorKind::Other, "disk on fire");
/// let error = Error::new(io);
/// assert_eq!(error.to_string(), "disk on fire");
/// assert!(error.downcast_ref::<std::io::Error>().is_some());
///
/// let error = Error::msg("template not found");
/// assert_eq!(error.to_string(), "template not found");
/// ```
pub struct Error {
    inner: BoxError,
}

impl Error {
    /// Wraps any error.
    pub fn new<E>(error: E) -> Self
    where
        E: Into<BoxError>,
    {
        Error {
            inner: error.into(),
        }
    }

    /// An error that is only a message.
    pub fn msg(message: impl Into<String>) -> Self {
        Error::new(message.into())
    }

    /// The wrapped error, if it is of type `E`.
    ///
    /// ```
    /// use rwgi::Error;
    ///
    /// let error = Error::new(std::fmt::Error);
    /// assert!(error.downcast_ref::<std::fmt::Error>().is_some());
    /// assert!(error.downcast_ref::<std::io::Error>().is_none());
    /// ```
    pub fn downcast_ref<E: StdError + 'static>(&self) -> Option<&E> {
        self.inner.downcast_ref::<E>()
    }

    /// The [`InputError`] this error is or wraps, at any depth: the server's word that the
    /// request body failed because of the client (REQ-INPUT-8). `None` for every other error,
    /// which is a server fault.
    ///
    /// It looks through [`source`](StdError::source) chains, other `Error`s and
    /// `std::io::Error`s made from an error (which hide theirs from `source`), so an app that
    /// wraps a body error before passing it on keeps it recognisable.
    ///
    /// ```
    /// use rwgi::input::{InputError, InputErrorKind, ReadError};
    /// use rwgi::Error;
    ///
    /// let from_server = Error::new(InputError::new(InputErrorKind::TooLarge, "over 1 MiB"));
    /// // An app that wraps it twice on its way out.
    /// let io = std::io::Error::other(ReadError::Body(from_server));
    /// let error = Error::new(io);
    /// assert_eq!(error.input_error().unwrap().status(), 413);
    ///
    /// assert!(Error::msg("database gone").input_error().is_none());
    /// ```
    pub fn input_error(&self) -> Option<&InputError> {
        let mut current: &(dyn StdError + 'static) = &*self.inner;
        // Bounded, in case some error's chain loops.
        for _ in 0..64 {
            if let Some(input) = current.downcast_ref::<InputError>() {
                return Some(input);
            }
            current = if let Some(error) = current.downcast_ref::<Error>() {
                &*error.inner
            } else if let Some(inner) = current
                .downcast_ref::<std::io::Error>()
                .and_then(std::io::Error::get_ref)
            {
                inner
            } else {
                current.source()?
            };
        }
        None
    }

    /// Unwraps the boxed error.
    ///
    /// ```
    /// let boxed = rwgi::Error::msg("gone").into_inner();
    /// assert_eq!(boxed.to_string(), "gone");
    /// ```
    pub fn into_inner(self) -> BoxError {
        self.inner
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner.source()
    }
}

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Self {
        Error::new(error)
    }
}

impl From<http::Error> for Error {
    fn from(error: http::Error) -> Self {
        Error::new(error)
    }
}

impl From<BoxError> for Error {
    fn from(inner: BoxError) -> Self {
        Error { inner }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_mark_converts_io_errors() {
        fn fails() -> Result<(), Error> {
            Err(std::io::Error::new(std::io::ErrorKind::NotFound, "nope"))?;
            Ok(())
        }
        let error = fails().unwrap_err();
        assert_eq!(error.to_string(), "nope");
        assert_eq!(
            error.downcast_ref::<std::io::Error>().unwrap().kind(),
            std::io::ErrorKind::NotFound
        );
    }

    #[test]
    fn input_error_is_found_however_it_is_wrapped() {
        use crate::input::{InputErrorKind, ReadError};

        let input = || InputError::new(InputErrorKind::Malformed, "bad chunk");
        assert!(Error::new(input())
            .input_error()
            .is_some_and(InputError::is_malformed));
        // Inside another error's source chain.
        #[derive(Debug)]
        struct Wrapper(InputError);
        impl fmt::Display for Wrapper {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("upload failed")
            }
        }
        impl StdError for Wrapper {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&self.0)
            }
        }
        assert_eq!(Error::new(Wrapper(input())).input_error(), Some(&input()));
        // An `Error` in an `Error`, and behind `ReadError::Body`.
        let nested = Error::new(ReadError::Body(Error::new(Error::new(input()))));
        assert!(nested.input_error().is_some());
        // An io::Error made from one.
        let io = Error::new(std::io::Error::other(input()));
        assert!(io.input_error().is_some());
        // Anything else is not the client's fault.
        assert!(Error::msg("disk on fire").input_error().is_none());
        let plain_io = std::io::Error::new(std::io::ErrorKind::InvalidData, "bad");
        assert!(Error::new(plain_io).input_error().is_none());
    }

    #[test]
    fn debug_shows_the_wrapped_error() {
        let error = Error::new(std::io::Error::new(std::io::ErrorKind::NotFound, "nope"));
        let debug = format!("{error:?}");
        assert!(
            debug.contains("NotFound") && debug.contains("nope"),
            "{debug}"
        );
    }

    #[test]
    fn source_is_the_wrapped_errors_source() {
        let error = Error::new(crate::input::ReadError::Body(Error::msg(
            "client went away",
        )));
        assert_eq!(error.source().unwrap().to_string(), "client went away");
        assert!(Error::msg("alone").source().is_none());
    }

    #[test]
    fn is_send_sync_and_static() {
        fn check<T: Send + Sync + 'static>() {}
        check::<Error>();
    }
}
