//! Request paths: percent-decoding, and path segments decoded one at a time.
//!
//! rwgi keeps the path as the client sent it (REQ-PATH-1). Decoding the whole path at once, as
//! WSGI does, makes `/a%2Fb` and `/a/b` the same string; decoding it segment by segment keeps an
//! encoded `/` inside its segment, where it belongs (REQ-PATH-4). [`Segments`] does that.
//!
//! Decoded bytes need not be UTF-8 (`%FF` is one byte, 0xFF). Decoding gives bytes; turning
//! them into text is a separate, fallible step ([`Segment::to_str`]).

use std::borrow::Cow;
use std::fmt;
use std::str::Utf8Error;

/// Percent-decodes `input`: each `%` followed by two hex digits becomes that byte; everything
/// else, including a `%` not followed by two hex digits, stays as it is (REQ-PATH-3).
///
/// Borrows when there is nothing to decode.
///
/// ```
/// use rwgi::path::percent_decode;
///
/// assert_eq!(percent_decode("/caf%C3%A9"), "/café".as_bytes());
/// assert_eq!(&*percent_decode("/a%2Fb"), b"/a/b");
/// assert_eq!(&*percent_decode("/100%"), b"/100%");
/// assert_eq!(&*percent_decode("/%FF"), b"/\xff");
/// ```
pub fn percent_decode(input: &str) -> Cow<'_, [u8]> {
    let bytes = input.as_bytes();
    let Some(first) = bytes.iter().position(|&b| b == b'%') else {
        return Cow::Borrowed(bytes);
    };
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..first]);
    let mut i = first;
    while i < bytes.len() {
        let byte = bytes[i];
        if byte == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(byte);
        i += 1;
    }
    Cow::Owned(out)
}

fn hex(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Maps bytes to a string one-to-one, byte `n` to `U+00nn`: how PEP 3333 carries bytes in
/// "native strings", and how [`cgi_variables`](crate::Environ::cgi_variables) presents
/// decoded paths and header values.
///
/// ```
/// use rwgi::path::latin1;
/// assert_eq!(latin1(b"caf\xc3\xa9"), "cafÃ©");
/// assert_eq!(latin1(b"plain"), "plain");
/// ```
pub fn latin1(bytes: &[u8]) -> Cow<'_, str> {
    if bytes.is_ascii() {
        // ASCII is valid UTF-8 and maps to itself.
        return Cow::Borrowed(std::str::from_utf8(bytes).unwrap_or_default());
    }
    Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect())
}

/// The segments of a path, each decoded on its own.
///
/// Made by [`Environ::path_segments`](crate::Environ::path_segments). A path `/a/b%2Fc/` has
/// the segments `a`, `b/c` and the empty segment after the last `/`; an empty path has none.
///
/// ```
/// use rwgi::path::Segments;
///
/// let segments: Vec<_> = Segments::new("/files/a%2Fb/%FF")
///     .map(|segment| segment.decode().into_owned())
///     .collect();
/// assert_eq!(segments, vec![b"files".to_vec(), b"a/b".to_vec(), vec![0xFF]]);
/// ```
#[derive(Clone, Debug)]
pub struct Segments<'a> {
    rest: Option<&'a str>,
}

impl<'a> Segments<'a> {
    /// The segments of `path`, a raw (percent-encoded) path that is empty or starts with `/`.
    /// Anything before the first `/` is not a segment and is skipped.
    pub fn new(path: &'a str) -> Self {
        Segments {
            rest: path.find('/').map(|start| &path[start + 1..]),
        }
    }
}

impl<'a> Iterator for Segments<'a> {
    type Item = Segment<'a>;

    fn next(&mut self) -> Option<Segment<'a>> {
        let rest = self.rest?;
        match rest.find('/') {
            Some(end) => {
                self.rest = Some(&rest[end + 1..]);
                Some(Segment { raw: &rest[..end] })
            }
            None => {
                self.rest = None;
                Some(Segment { raw: rest })
            }
        }
    }
}

/// One path segment, as sent (percent-encoded).
///
/// ```
/// use rwgi::path::Segments;
///
/// let segment = Segments::new("/caf%C3%A9").next().unwrap();
/// assert_eq!(segment.as_raw(), "caf%C3%A9");
/// assert_eq!(segment.to_str().unwrap(), "café");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Segment<'a> {
    raw: &'a str,
}

impl<'a> Segment<'a> {
    /// The segment as the client sent it, still percent-encoded.
    pub fn as_raw(&self) -> &'a str {
        self.raw
    }

    /// The decoded bytes; an encoded `/` (`%2F`) decodes to a `/` inside this segment.
    pub fn decode(&self) -> Cow<'a, [u8]> {
        percent_decode(self.raw)
    }

    /// The decoded segment as text.
    ///
    /// # Errors
    ///
    /// When the decoded bytes are not UTF-8, for example `%FF`.
    ///
    /// ```
    /// use rwgi::path::Segments;
    /// assert!(Segments::new("/%FF").next().unwrap().to_str().is_err());
    /// ```
    pub fn to_str(&self) -> Result<Cow<'a, str>, Utf8Error> {
        match self.decode() {
            Cow::Borrowed(bytes) => std::str::from_utf8(bytes).map(Cow::Borrowed),
            Cow::Owned(bytes) => match String::from_utf8(bytes) {
                Ok(text) => Ok(Cow::Owned(text)),
                Err(error) => Err(error.utf8_error()),
            },
        }
    }
}

impl fmt::Debug for Segment<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.raw, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_mixed_case_hex_and_keeps_stray_percents() {
        assert_eq!(&*percent_decode("%2f%2F"), b"//");
        assert_eq!(&*percent_decode("%"), b"%");
        assert_eq!(&*percent_decode("%4"), b"%4");
        assert_eq!(&*percent_decode("%zz%41"), b"%zzA");
        assert_eq!(&*percent_decode("a%41"), b"aA");
        assert_eq!(
            &*percent_decode("x%41%42y"),
            b"xABy",
            "each escape is three bytes"
        );
        assert_eq!(&*percent_decode("%2525"), b"%25", "decodes exactly once");
    }

    #[test]
    fn borrows_when_nothing_is_encoded() {
        assert!(matches!(percent_decode("/plain/path"), Cow::Borrowed(_)));
    }

    #[test]
    fn segments_of_edge_paths() {
        let raw = |path| Segments::new(path).map(|s| s.as_raw()).collect::<Vec<_>>();
        assert_eq!(raw(""), Vec::<&str>::new());
        assert_eq!(raw("/"), vec![""]);
        assert_eq!(raw("/a//b/"), vec!["a", "", "b", ""]);
        assert_eq!(raw("/a%2Fb"), vec!["a%2Fb"]);
        assert_eq!(raw("*"), Vec::<&str>::new());
    }

    #[test]
    fn segments_decode_to_text_or_say_why_not() {
        let mut segments = Segments::new("/caf%C3%A9/plain/%FF");
        assert_eq!(segments.next().unwrap().to_str().unwrap(), "café");
        let plain = segments.next().unwrap();
        assert!(matches!(plain.to_str(), Ok(Cow::Borrowed("plain"))));
        assert_eq!(format!("{plain:?}"), "\"plain\"");
        let error = segments.next().unwrap().to_str().unwrap_err();
        assert_eq!(error.valid_up_to(), 0);
    }

    #[test]
    fn latin1_maps_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        let text = latin1(&all);
        assert_eq!(text.chars().count(), 256);
        assert!(text.chars().zip(0u32..).all(|(c, n)| c as u32 == n));
    }
}
