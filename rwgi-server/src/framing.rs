//! Refusing a request head with both `Content-Length` and `Transfer-Encoding` (RFC 9112 §6.1,
//! REQ-ENV-13), which hyper hides from the server: it removes the `Content-Length` of such a
//! head (either order) before the service sees it, reads the body as chunked, and closes the
//! connection after the answer.
//!
//! [`Watched`] sits on the read side of an HTTP/1 connection, under hyper, and follows the
//! message boundaries in the bytes it hands up with a [`Tracker`]. A request head's end and its
//! framing fields are found by its line ends; a head with `Transfer-Encoding` is parsed with
//! `httparse`, configured as hyper configures it and bounded by the same number of fields, so
//! that the heads that can be flagged are read exactly as hyper reads them. `Content-Length`
//! bodies are skipped by counting, chunked ones with `httparse::parse_chunk_size` and hyper's
//! own rules for the CRLF after chunk data and for trailer lines; body bytes are never copied.
//! A head that arrives whole in one read is read where it lies; only a head or chunk-size line
//! split across reads is gathered, up to a bound.
//!
//! The tracker numbers the heads. The first with both fields is recorded in the connection's
//! [`Refusal`], with the `Content-Length` it carried; the service numbers the requests hyper
//! hands it, and puts that field back on the request with the same number, so that the
//! environ's framing check refuses it with `400` like any other REQ-ENV-13 refusal, without
//! calling the app. hyper has already marked that connection to close after the answer, so
//! nothing after it is served, and the tracker stops there.
//!
//! It fails open: where it cannot be sure to read the bytes as hyper does, it stops following
//! the connection and passes bytes through, so that it can miss a head with both fields but
//! never flags one without them (a flag comes only from httparse's reading of a head). It stops
//! at an HTTP/2 preface (whose `PRI * HTTP/2.0` line is not HTTP/1), after a request that asks
//! for an upgrade or is a `CONNECT` (the bytes after it may not be HTTP), at framing hyper
//! refuses (an invalid or conflicting `Content-Length`, a transfer coding that does not end in
//! `chunked` or comes with HTTP/1.0, a chunk-size line httparse refuses, chunk data not followed
//! by CRLF), and at a head or chunk-size line longer than its bound. Syntax the scan does not
//! check is hyper's to refuse: it answers `400` and closes the connection, so nothing read
//! after such a head reaches the app.
//!
//! Cost: a connection pays one allocation for its [`Refusal`]; a request pays a search for the
//! line ends of its head and a counter in the service (about 500 to 600 instructions for a
//! small `GET`, with `benches/icount.sh`).

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use rwgi::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use rwgi::http::{HeaderMap, HeaderValue};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most header fields the tracker parses without allocating: hyper's own default.
const INLINE_FIELDS: usize = 100;

/// The longest chunk-size line followed: hyper refuses more than 16 KiB of chunk extensions.
const CHUNK_LINE_LIMIT: usize = 16 * 1024 + 64;

/// The longest head hyper reads: its default read buffer limit. A longer head is refused by
/// hyper, so following it further would gather bytes for nothing.
const HYPER_HEAD_LIMIT: usize = 8192 + 4096 * 100;

/// How far a connection's heads may go: the longest head to gather, and the most fields.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HeadLimits {
    /// Bytes; a longer head stops the tracking.
    bytes: usize,
    /// hyper's `max_headers`: a head with more fails to parse for both.
    fields: usize,
}

impl HeadLimits {
    /// The bound for a server's limits on the request line, the number of fields and the size
    /// of each (a head over them is refused anyway), capped at what hyper reads.
    pub(crate) fn new(line: usize, fields: usize, field: usize) -> Self {
        let bytes = fields
            .saturating_mul(field.saturating_add(2))
            .saturating_add(line)
            .saturating_add(2);
        HeadLimits {
            bytes: bytes.min(HYPER_HEAD_LIMIT),
            fields,
        }
    }
}

/// Where the tracker is in the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Before a request head.
    Head,
    /// Inside a `Content-Length` body: the bytes left.
    Length(u64),
    /// Before a chunk-size line.
    ChunkSize,
    /// Inside a chunk's data: the bytes left.
    ChunkData(u64),
    /// After a chunk's data, before its CR.
    DataCr,
    /// After a chunk's data and CR, before its LF.
    DataLf,
    /// After the last chunk, at the start of a trailer line or of the final CRLF.
    LineStart,
    /// Inside a trailer line, before its CR.
    Line,
    /// After a trailer line's CR, before its LF.
    LineLf,
    /// After the final CR, before its LF.
    EndLf,
    /// Not following the connection any more.
    Off,
}

/// A request head with both `Content-Length` and `Transfer-Encoding`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Flagged {
    /// The head's number on its connection, from 1.
    pub(crate) head: u64,
    /// Its first `Content-Length` value, as sent.
    pub(crate) length: Vec<u8>,
}

/// Follows the HTTP/1 requests in a connection's bytes (see the [module docs](self)).
#[derive(Debug)]
pub(crate) struct Tracker {
    state: State,
    /// Complete heads seen.
    heads: u64,
    /// A head or chunk-size line split across reads, gathered so far.
    partial: Vec<u8>,
    limits: HeadLimits,
}

/// What parsing a head or a chunk-size line gave.
enum Parsed<T> {
    /// It ends after this many bytes.
    Complete(usize, T),
    /// More bytes may complete it.
    Partial,
    /// hyper would refuse it, or read it differently.
    Invalid,
}

/// How a request head frames what follows it.
#[derive(Clone, Copy)]
#[cfg_attr(test, derive(Debug, PartialEq, Eq))]
struct Head {
    body: Body,
    /// An upgrade or `CONNECT`: what follows may not be HTTP.
    upgrade: bool,
}

#[derive(Clone, Copy)]
#[cfg_attr(test, derive(Debug, PartialEq, Eq))]
enum Body {
    Length(u64),
    Chunked,
}

impl Head {
    /// Where the stream is after this head.
    #[inline(always)]
    fn next(self) -> State {
        match self.body {
            _ if self.upgrade => State::Off,
            Body::Length(0) => State::Head,
            Body::Length(length) => State::Length(length),
            Body::Chunked => State::ChunkSize,
        }
    }
}

impl Tracker {
    pub(crate) fn new(limits: HeadLimits) -> Self {
        Tracker {
            state: State::Head,
            heads: 0,
            partial: Vec::new(),
            limits,
        }
    }

    /// The complete heads seen so far.
    #[cfg(test)]
    pub(crate) fn heads(&self) -> u64 {
        self.heads
    }

    /// Whether it still follows the connection.
    #[inline(always)]
    pub(crate) fn following(&self) -> bool {
        self.state != State::Off
    }

    /// Reads the next bytes of the connection; the first head with both fields, when these
    /// bytes complete it. The tracking stops after it.
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) -> Option<Flagged> {
        while !bytes.is_empty() {
            match self.state {
                // A head that arrived whole, without `Transfer-Encoding`: scanned where it lies.
                State::Head if self.partial.is_empty() => match scan_head(bytes) {
                    Scanned::Head(length, head) => {
                        bytes = &bytes[length..];
                        self.heads += 1;
                        self.state = head.next();
                    }
                    _ => {
                        if let Some(flagged) = self.head(&mut bytes) {
                            return Some(flagged);
                        }
                    }
                },
                State::Head => {
                    if let Some(flagged) = self.head(&mut bytes) {
                        return Some(flagged);
                    }
                }
                State::Length(left) => {
                    let left = skip(&mut bytes, left);
                    self.state = if left == 0 {
                        State::Head
                    } else {
                        State::Length(left)
                    };
                }
                State::ChunkData(left) => {
                    let left = skip(&mut bytes, left);
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::ChunkData(left)
                    };
                }
                State::Off => return None,
                _ => self.chunked(&mut bytes),
            }
        }
        None
    }

    /// Reads a head that is split across reads or has `Transfer-Encoding` (or is not one hyper
    /// takes); the flag, when it has both fields.
    #[cold]
    fn head(&mut self, bytes: &mut &[u8]) -> Option<Flagged> {
        let limits = self.limits;
        let (head, both) = self.whole(bytes, limits.bytes, |buf| read_head(buf, limits.fields))?;
        self.heads += 1;
        if let Some(length) = both {
            self.stop();
            return Some(Flagged {
                head: self.heads,
                length,
            });
        }
        self.state = head.next();
        None
    }

    /// Reads the framing of a chunked body, but for its data.
    #[cold]
    fn chunked(&mut self, bytes: &mut &[u8]) {
        match self.state {
            State::ChunkSize => {
                if let Some(size) = self.whole(bytes, CHUNK_LINE_LIMIT, read_chunk_size) {
                    self.state = match size {
                        0 => State::LineStart,
                        size => State::ChunkData(size),
                    };
                }
            }
            State::Line => match bytes.iter().position(|&b| b == b'\r') {
                // hyper takes a bare LF as part of the line: only CRLF ends it.
                Some(cr) => {
                    *bytes = &bytes[cr + 1..];
                    self.state = State::LineLf;
                }
                None => *bytes = &[],
            },
            // One byte each, as hyper's decoder reads them.
            state => {
                let Some((&byte, rest)) = bytes.split_first() else {
                    return;
                };
                *bytes = rest;
                self.state = match (state, byte) {
                    (State::DataCr, b'\r') => State::DataLf,
                    (State::DataLf, b'\n') => State::ChunkSize,
                    (State::LineStart, b'\r') => State::EndLf,
                    (State::LineStart, _) => State::Line,
                    (State::LineLf, b'\n') => State::LineStart,
                    (State::EndLf, b'\n') => State::Head,
                    // Framing hyper refuses: it closes the connection.
                    _ => State::Off,
                };
            }
        }
    }

    /// Stops following the connection, for good.
    #[cold]
    fn stop(&mut self) {
        self.state = State::Off;
        self.partial = Vec::new();
    }

    /// Parses the next head or chunk-size line with `parse`: where it lies when it arrived in
    /// one piece, else gathered across reads up to `limit` bytes. Consumes what it parsed or
    /// gathered; `None` when it is not complete yet, or the tracking stopped.
    fn whole<T>(
        &mut self,
        bytes: &mut &[u8],
        limit: usize,
        parse: impl Fn(&[u8]) -> Parsed<T>,
    ) -> Option<T> {
        if self.partial.is_empty() {
            return match parse(bytes) {
                Parsed::Complete(length, parsed) => {
                    *bytes = &bytes[length..];
                    Some(parsed)
                }
                Parsed::Partial if bytes.len() <= limit => {
                    self.partial.extend_from_slice(bytes);
                    *bytes = &[];
                    None
                }
                _ => {
                    self.stop();
                    None
                }
            };
        }
        let before = self.partial.len();
        // One byte over the limit is enough to know the piece is too long.
        let take = bytes.len().min((limit + 1).saturating_sub(before));
        self.partial.extend_from_slice(&bytes[..take]);
        match parse(&self.partial) {
            Parsed::Complete(length, parsed) => match length.checked_sub(before) {
                // A piece that was partial ends in the bytes just added.
                Some(used) if used > 0 && used <= take => {
                    *bytes = &bytes[used..];
                    self.partial.clear();
                    Some(parsed)
                }
                _ => {
                    self.stop();
                    None
                }
            },
            Parsed::Partial if self.partial.len() <= limit => {
                *bytes = &[];
                None
            }
            _ => {
                self.stop();
                None
            }
        }
    }
}

/// Skips up to `left` bytes of a body; the bytes still to skip.
#[inline(always)]
fn skip(bytes: &mut &[u8], left: u64) -> u64 {
    let here = usize::try_from(left).map_or(bytes.len(), |left| left.min(bytes.len()));
    *bytes = &bytes[here..];
    left - here as u64
}

/// Reads a request head's extent and framing: with [`scan_head`] when it has no
/// `Transfer-Encoding`, else with [`parse_head`], as hyper parses it. With the first
/// `Content-Length` value of a head with both fields.
fn read_head(buf: &[u8], fields: usize) -> Parsed<(Head, Option<Vec<u8>>)> {
    match scan_head(buf) {
        Scanned::Head(length, head) => Parsed::Complete(length, (head, None)),
        Scanned::Partial => Parsed::Partial,
        Scanned::Invalid => Parsed::Invalid,
        Scanned::Coded => parse_head(buf, fields),
    }
}

/// What [`scan_head`] found.
enum Scanned {
    /// A head without `Transfer-Encoding`, this long.
    Head(usize, Head),
    /// A `Transfer-Encoding` field: the head is for [`parse_head`].
    Coded,
    Partial,
    Invalid,
}

/// Finds the end of a request head and its framing fields by its line ends (found with
/// `memchr`, many bytes at a time), without checking the rest of its syntax: hyper's parser
/// does, and closes the connection on a head it refuses, so that only heads it accepts need to
/// be read as it reads them. In those, every LF ends a line (CR LF or a bare LF, as httparse
/// takes both), empty lines before the request line are skipped, a field's name runs from the
/// start of its line to its colon, and an empty line ends the head. The tests hold it to
/// httparse's reading.
#[inline]
fn scan_head(buf: &[u8]) -> Scanned {
    let mut start = 0;
    loop {
        match buf.get(start) {
            Some(b'\n') => start += 1,
            Some(b'\r') => match buf.get(start + 1) {
                Some(b'\n') => start += 2,
                Some(_) => return Scanned::Invalid,
                None => return Scanned::Partial,
            },
            Some(_) => break,
            None => return Scanned::Partial,
        }
    }
    let head = buf.get(start..).unwrap_or_default();
    let mut fields = Fields::default();
    let mut line = 0;
    let mut request_line = true;
    for lf in memchr::memchr_iter(b'\n', head) {
        let text = head.get(line..lf).unwrap_or_default();
        let text = match text {
            [text @ .., b'\r'] => text,
            text => text,
        };
        line = lf + 1;
        if request_line {
            request_line = false;
            if !fields.request_line(text) {
                return Scanned::Invalid;
            }
            continue;
        }
        match text.first() {
            None => return fields.head(start + line),
            Some(&first) => {
                // Only names that start with these letters matter.
                if matches!(first | 0x20, b'c' | b't' | b'u') && !fields.field(text) {
                    return Scanned::Coded;
                }
            }
        }
    }
    Scanned::Partial
}

/// The framing a scanned head declared so far.
#[derive(Default)]
struct Fields {
    http11: bool,
    upgrade: bool,
    length: Option<u64>,
    /// A `Content-Length` hyper refuses: invalid, or two that differ.
    bad_length: bool,
}

impl Fields {
    /// Reads the request line: whether it is HTTP/1 (an HTTP/2 preface is not).
    #[inline(always)]
    fn request_line(&mut self, text: &[u8]) -> bool {
        self.http11 = text.ends_with(b" HTTP/1.1");
        self.upgrade = text.starts_with(b"CONNECT ");
        self.http11 || text.ends_with(b" HTTP/1.0")
    }

    /// Reads a field line whose name starts with `c`, `t` or `u`; `false` for
    /// `Transfer-Encoding`.
    #[inline]
    fn field(&mut self, text: &[u8]) -> bool {
        match text.first().map_or(0, |first| first | 0x20) {
            b'c' => {
                if let Some(value) = value_of(text, b"content-length") {
                    self.content_length(value);
                }
            }
            b't' => return value_of(text, b"transfer-encoding").is_none(),
            b'u' if value_of(text, b"upgrade").is_some() => self.upgrade |= self.http11,
            _ => {}
        }
        true
    }

    #[cold]
    fn content_length(&mut self, value: &[u8]) {
        match digits(value) {
            Some(length) if self.length.map_or(true, |first| first == length) => {
                self.length = Some(length);
            }
            _ => self.bad_length = true,
        }
    }

    /// The head, ending at `length`.
    #[inline(always)]
    fn head(self, length: usize) -> Scanned {
        match self.length {
            _ if self.bad_length => Scanned::Invalid,
            // hyper refuses the two largest lengths (its markers for chunked and close-delimited).
            Some(length) if length >= u64::MAX - 1 => Scanned::Invalid,
            declared => Scanned::Head(
                length,
                Head {
                    body: Body::Length(declared.unwrap_or(0)),
                    upgrade: self.upgrade,
                },
            ),
        }
    }
}

/// The value of a field line named `name` (any case), trimmed as httparse trims it.
#[inline(always)]
fn value_of<'a>(text: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    if text.get(name.len()) != Some(&b':') || !text[..name.len()].eq_ignore_ascii_case(name) {
        return None;
    }
    Some(trim(&text[name.len() + 1..]))
}

/// `value` without the spaces and tabs around it.
fn trim(value: &[u8]) -> &[u8] {
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !blank(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !blank(b))
        .map_or(start, |last| last + 1);
    &value[start..end]
}

/// Parses a request head as hyper does, and reads its framing with hyper's rules (RFC 9112
/// §6.3): `Transfer-Encoding` (HTTP/1.1 only, ending in `chunked`) wins over `Content-Length`;
/// a `Content-Length` before it must be valid and agree with any other; one after it is not
/// read. With the first `Content-Length` value when it has both fields.
#[cold]
fn parse_head(buf: &[u8], fields: usize) -> Parsed<(Head, Option<Vec<u8>>)> {
    let mut inline = [MaybeUninit::<httparse::Header<'_>>::uninit(); INLINE_FIELDS];
    let mut heap;
    let storage = if fields <= INLINE_FIELDS {
        &mut inline[..fields]
    } else {
        heap = vec![MaybeUninit::uninit(); fields];
        &mut heap[..]
    };
    let mut request = httparse::Request::new(&mut []);
    let length = match httparse::ParserConfig::default().parse_request_with_uninit_headers(
        &mut request,
        buf,
        storage,
    ) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Invalid,
    };
    let http11 = request.version == Some(1);
    let mut upgrade = request.method == Some("CONNECT");
    let mut declared = None;
    let mut first_length = None;
    let mut coded = false;
    let mut chunked = false;
    for field in request.headers.iter() {
        let name = field.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            if first_length.is_none() {
                first_length = Some(field.value);
            }
            if coded {
                continue;
            }
            let Some(value) = digits(field.value) else {
                return Parsed::Invalid;
            };
            if declared.is_some_and(|declared| declared != value) {
                return Parsed::Invalid;
            }
            declared = Some(value);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            if !http11 {
                return Parsed::Invalid;
            }
            coded = true;
            chunked = ends_in_chunked(field.value);
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            upgrade = http11;
        }
    }
    let body = match (coded, declared) {
        (true, _) if !chunked => return Parsed::Invalid,
        (true, _) => Body::Chunked,
        // hyper refuses the two largest lengths (its markers for chunked and close-delimited).
        (false, Some(length)) if length >= u64::MAX - 1 => return Parsed::Invalid,
        (false, declared) => Body::Length(declared.unwrap_or(0)),
    };
    let both = first_length.filter(|_| coded).map(<[u8]>::to_vec);
    Parsed::Complete(length, (Head { body, upgrade }, both))
}

/// A `Content-Length` value as hyper reads it: decimal digits alone, without overflow.
fn digits(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |length, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        length.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// Whether a `Transfer-Encoding` value's last coding is `chunked`, as hyper decides it.
fn ends_in_chunked(value: &[u8]) -> bool {
    std::str::from_utf8(value).is_ok_and(|value| {
        value
            .rsplit(',')
            .next()
            .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
    })
}

/// Parses a chunk-size line (with extensions) up to and including its CRLF. A line that
/// `httparse` takes but hyper refuses (a bare LF in an extension, no size digit) makes hyper
/// close the connection; one hyper takes but `httparse` refuses (over 16 hex digits) stops
/// the tracking. Where both take it, they agree on its size and its end.
fn read_chunk_size(buf: &[u8]) -> Parsed<u64> {
    match httparse::parse_chunk_size(buf) {
        Ok(httparse::Status::Complete((length, size))) => Parsed::Complete(length, size),
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Err(_) => Parsed::Invalid,
    }
}

/// What a connection's tracker and its service share: the number of the request to refuse,
/// and the service's count of requests.
#[derive(Debug, Default)]
pub(crate) struct Refusal {
    /// The flagged head's number; zero: none.
    head: AtomicU64,
    /// Its `Content-Length`, set before `head`.
    length: OnceLock<HeaderValue>,
    /// Requests the service has seen.
    requests: AtomicU64,
}

impl Refusal {
    /// Records the head to refuse. Only the first counts: hyper closes the connection after it.
    #[cold]
    fn flag(&self, flagged: Flagged) {
        // httparse only passes values that are valid header values.
        if let Ok(length) = HeaderValue::from_bytes(&flagged.length) {
            if self.length.set(length).is_ok() {
                self.head.store(flagged.head, Ordering::Release);
            }
        }
    }

    /// Counts a request; when it is the flagged one, puts its `Content-Length` back among
    /// `headers`, for the environ's framing check to refuse it (REQ-ENV-13).
    #[inline(always)]
    pub(crate) fn count(&self, headers: &mut HeaderMap) {
        // hyper calls the service from the connection's task, one head at a time: a load and
        // a store make the count.
        let request = self.requests.load(Ordering::Relaxed) + 1;
        self.requests.store(request, Ordering::Relaxed);
        if request == self.head.load(Ordering::Acquire) {
            self.restore(headers);
        }
    }

    #[cold]
    fn restore(&self, headers: &mut HeaderMap) {
        // The flagged head reaches the service with its `Transfer-Encoding` and without its
        // `Content-Length`; anything else is not the head that was flagged.
        if headers.contains_key(TRANSFER_ENCODING) && !headers.contains_key(CONTENT_LENGTH) {
            if let Some(length) = self.length.get() {
                headers.insert(CONTENT_LENGTH, length.clone());
            }
        }
    }
}

/// A connection whose reads go through a [`Tracker`], which flags the connection's
/// [`Refusal`]; writes pass through.
#[derive(Debug)]
pub(crate) struct Watched<T> {
    io: T,
    tracker: Tracker,
    refusal: Arc<Refusal>,
}

impl<T> Watched<T> {
    pub(crate) fn new(io: T, limits: HeadLimits, refusal: Arc<Refusal>) -> Self {
        Watched {
            io,
            tracker: Tracker::new(limits),
            refusal,
        }
    }

    #[inline(never)]
    fn observe(&mut self, bytes: &[u8]) {
        if let Some(flagged) = self.tracker.feed(bytes) {
            self.refusal.flag(flagged);
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    #[inline(always)]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.io).poll_read(cx, buf);
        if this.tracker.following() && buf.filled().len() > before {
            this.observe(&buf.filled()[before..]);
        }
        poll
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    #[inline(always)]
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    #[inline(always)]
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    #[inline(always)]
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    #[inline(always)]
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    #[inline(always)]
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Bytes a body may carry that look like the framing under test.
    const DECOY: &[u8] = b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";

    fn limits() -> HeadLimits {
        HeadLimits::new(8190, 100, 8190)
    }

    /// How a generated request frames its body.
    #[derive(Clone, Debug)]
    enum Framing {
        None,
        Length(Vec<u8>),
        /// Chunks, each with an extension or not; trailer fields.
        Chunked(Vec<(Vec<u8>, bool)>, Vec<String>),
    }

    fn body() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..40),
            Just(DECOY.to_vec()),
            Just(b"0\r\n\r\nGET / HTTP/1.1\r\n".to_vec()),
        ]
    }

    fn framing() -> impl Strategy<Value = Framing> {
        prop_oneof![
            Just(Framing::None),
            body().prop_map(Framing::Length),
            (
                prop::collection::vec(
                    (
                        body().prop_filter("not empty", |b| !b.is_empty()),
                        any::<bool>()
                    ),
                    0..4
                ),
                prop::collection::vec("[a-z]{1,8}", 0..3),
            )
                .prop_map(|(chunks, trailers)| Framing::Chunked(chunks, trailers)),
        ]
    }

    /// A request hyper serves, with its framing; `both` adds a `Content-Length` beside a
    /// chunked body, before or after the `Transfer-Encoding`.
    fn request(framing: &Framing, both: Option<bool>, blank_line: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if blank_line {
            // A server ignores an empty line before a request line (RFC 9112 §2.2).
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"POST /p?q HTTP/1.1\r\nHost: h\r\nX-Data: a\r\n");
        match framing {
            Framing::None => {}
            Framing::Length(body) => {
                out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
            }
            Framing::Chunked(..) => {
                if both == Some(true) {
                    out.extend_from_slice(b"Content-Length: 12\r\n");
                }
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
                if both == Some(false) {
                    out.extend_from_slice(b"content-length: 12\r\n");
                }
            }
        }
        out.extend_from_slice(b"\r\n");
        match framing {
            Framing::None => {}
            Framing::Length(body) => out.extend_from_slice(body),
            Framing::Chunked(chunks, trailers) => {
                for (chunk, extension) in chunks {
                    let ext = if *extension { ";name=\"v;x\"" } else { "" };
                    out.extend_from_slice(format!("{:X}{ext}\r\n", chunk.len()).as_bytes());
                    out.extend_from_slice(chunk);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n");
                for name in trailers {
                    out.extend_from_slice(format!("{name}: {DECOY:?}\r\n").as_bytes());
                }
                out.extend_from_slice(b"\r\n");
            }
        }
        out
    }

    /// Feeds `bytes` in pieces cut at `cuts` (taken modulo the length); every flag it raised.
    fn feed(tracker: &mut Tracker, bytes: &[u8], cuts: &[usize]) -> Vec<Flagged> {
        let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut % (bytes.len() + 1)).collect();
        cuts.push(bytes.len());
        cuts.sort_unstable();
        let mut flags = Vec::new();
        let mut start = 0;
        for cut in cuts {
            flags.extend(tracker.feed(&bytes[start..cut]));
            start = cut;
        }
        flags
    }

    proptest! {
        #[test]
        fn valid_requests_in_any_split_are_counted_and_none_flagged(
            requests in prop::collection::vec((framing(), any::<bool>()), 1..8),
            cuts in prop::collection::vec(any::<usize>(), 0..12),
        ) {
            let bytes: Vec<u8> = requests
                .iter()
                .flat_map(|(framing, blank)| request(framing, None, *blank))
                .collect();
            let mut tracker = Tracker::new(limits());
            prop_assert_eq!(feed(&mut tracker, &bytes, &cuts), vec![]);
            prop_assert_eq!(tracker.heads(), requests.len() as u64);
            prop_assert!(tracker.following());
        }

        #[test]
        fn a_head_with_both_fields_is_flagged_by_its_number(
            requests in prop::collection::vec(framing(), 0..6),
            at in any::<prop::sample::Index>(),
            length_first in any::<bool>(),
            chunks in prop::collection::vec((body().prop_filter("not empty", |b| !b.is_empty()), any::<bool>()), 0..3),
            cuts in prop::collection::vec(any::<usize>(), 0..12),
        ) {
            let at = at.index(requests.len() + 1);
            let mut bytes = Vec::new();
            for (index, framing) in requests.iter().enumerate() {
                if index == at {
                    bytes.extend(request(&Framing::Chunked(chunks.clone(), vec![]), Some(length_first), false));
                }
                bytes.extend(request(framing, None, false));
            }
            if at == requests.len() {
                bytes.extend(request(&Framing::Chunked(chunks.clone(), vec![]), Some(length_first), false));
            }
            let mut tracker = Tracker::new(limits());
            let flags = feed(&mut tracker, &bytes, &cuts);
            prop_assert_eq!(flags, vec![Flagged { head: at as u64 + 1, length: b"12".to_vec() }]);
            prop_assert!(!tracker.following(), "nothing after it is served");
        }

        #[test]
        fn http_like_bytes_read_in_any_split_as_in_one_piece(
            pieces in prop::collection::vec(piece(), 0..40),
            cuts in prop::collection::vec(any::<usize>(), 0..12),
        ) {
            let bytes = pieces.concat();
            let mut whole = Tracker::new(limits());
            let flags = whole.feed(&bytes).into_iter().collect::<Vec<_>>();
            let mut split = Tracker::new(limits());
            prop_assert_eq!(feed(&mut split, &bytes, &cuts), flags.clone());
            prop_assert_eq!(split.heads(), whole.heads());
            prop_assert_eq!(split.following(), whole.following());
            if !flags.is_empty() {
                let text = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
                prop_assert!(text.contains("content-length") && text.contains("transfer-encoding"));
            }
        }
    }

    /// A piece of an HTTP/1 stream, right or wrong, for streams that get deep into the framing.
    fn piece() -> impl Strategy<Value = Vec<u8>> {
        let fixed: Vec<&'static [u8]> = vec![
            b"GET / HTTP/1.1\r\n",
            b"POST /x HTTP/1.0\r\n",
            b"Host: h\r\n",
            b"Content-Length: 3\r\n",
            b"Content-Length: 0\r\n",
            b"Transfer-Encoding: chunked\r\n",
            b"Upgrade: websocket\r\n",
            b"\r\n",
            b"\n",
            b"0\r\n",
            b"3;ext=1\r\n",
            b"abc",
            b"T: v\r\n",
        ];
        prop_oneof![
            4 => prop::sample::select(fixed).prop_map(<[u8]>::to_vec),
            1 => prop::collection::vec(any::<u8>(), 0..8),
        ]
    }

    /// A request head, right or wrong, from pieces hyper may meet.
    fn head_bytes() -> impl Strategy<Value = Vec<u8>> {
        let lines = prop_oneof![
            Just("GET / HTTP/1.1".to_owned()),
            Just("POST /x?y HTTP/1.0".to_owned()),
            Just("CONNECT h:1 HTTP/1.1".to_owned()),
            Just("PRI * HTTP/2.0".to_owned()),
            "[A-Z]{1,7} /[a-z:]{0,5} HTTP/1\\.[01]",
        ];
        let names = prop_oneof![
            Just("Content-Length"),
            Just("content-LENGTH"),
            Just("Content-Lengthy"),
            Just("Transfer-Encoding"),
            Just("Upgrade"),
            Just("upgradE"),
            Just("Host"),
            Just("Connection"),
            Just("X-Colon"),
            Just(" Host"),
        ];
        let values = prop_oneof![
            Just("5"),
            Just(" 5 "),
            Just("5\t"),
            Just("007"),
            Just("6"),
            Just("x"),
            Just(""),
            Just("a:b"),
            Just("chunked"),
            Just("18446744073709551615"),
        ];
        let ending = prop_oneof![Just("\r\n"), Just("\n"), Just("\r")];
        (
            prop::collection::vec(ending.clone(), 0..2),
            lines,
            prop::collection::vec((names, values, ending.clone()), 0..6),
            ending.clone(),
            ending,
            prop::collection::vec(any::<u8>(), 0..4),
            any::<bool>(),
        )
            .prop_map(|(leading, line, fields, first, last, garbage, middle)| {
                let mut out = leading.concat().into_bytes();
                out.extend_from_slice(line.as_bytes());
                out.extend_from_slice(first.as_bytes());
                for (index, (name, value, end)) in fields.iter().enumerate() {
                    if middle && index == 1 {
                        out.extend_from_slice(&garbage);
                    }
                    out.extend_from_slice(format!("{name}:{value}{end}").as_bytes());
                }
                out.extend_from_slice(last.as_bytes());
                if !middle {
                    out.extend_from_slice(&garbage);
                }
                out
            })
    }

    /// Holds the scan to httparse's reading of `bytes`, as hyper configures it.
    fn scan_agrees(bytes: &[u8]) -> Result<(), TestCaseError> {
        match (scan_head(bytes), parse_head(bytes, INLINE_FIELDS)) {
            (Scanned::Head(length, head), Parsed::Complete(parsed, (by_httparse, both))) => {
                prop_assert_eq!(length, parsed);
                prop_assert_eq!(head, by_httparse);
                prop_assert_eq!(both, None);
            }
            (Scanned::Head(..), Parsed::Partial) => {
                prop_assert!(false, "a head httparse has not seen end")
            }
            // A head hyper refuses closes the connection: nothing after it counts.
            (Scanned::Head(..) | Scanned::Partial | Scanned::Invalid, Parsed::Invalid) => {}
            // hyper's parser reads a head with `Transfer-Encoding` for the scan.
            (Scanned::Coded, _) => {}
            (Scanned::Partial, Parsed::Partial) => {}
            (Scanned::Partial | Scanned::Invalid, Parsed::Complete(..)) => {
                prop_assert!(false, "the scan missed a head httparse reads")
            }
            (Scanned::Invalid, Parsed::Partial) => {
                // Only a line that cannot be HTTP/1 yet.
                prop_assert!(String::from_utf8_lossy(bytes).contains("HTTP/"));
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn the_scan_reads_heads_as_httparse_does(bytes in head_bytes(), cut in any::<prop::sample::Index>()) {
            scan_agrees(&bytes)?;
            scan_agrees(&bytes[..cut.index(bytes.len() + 1)])?;
        }

        #[test]
        fn the_scan_reads_arbitrary_bytes_as_httparse_does(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            scan_agrees(&bytes)?;
        }
    }

    #[test]
    fn a_head_split_across_reads_is_gathered_and_a_whole_one_is_not() {
        let mut tracker = Tracker::new(limits());
        let head = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        assert_eq!(tracker.feed(head), None);
        assert!(
            tracker.partial.capacity() == 0,
            "a whole head is parsed in place"
        );
        assert_eq!(tracker.feed(&head[..10]), None);
        assert_eq!(tracker.partial, &head[..10]);
        assert_eq!(tracker.feed(&head[10..]), None);
        assert!(tracker.partial.is_empty());
        assert_eq!(tracker.heads(), 2);
    }

    #[test]
    fn it_stops_where_it_cannot_follow_and_flags_nothing_after() {
        let both = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
        let stops: [&[u8]; 8] = [
            // An HTTP/2 preface.
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            // An upgrade, and a CONNECT.
            b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n",
            // Framing hyper refuses.
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\n",
            b"POST / HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n",
        ];
        for stop in stops {
            let mut tracker = Tracker::new(limits());
            assert_eq!(tracker.feed(stop), None, "{stop:?}");
            assert!(!tracker.following(), "{stop:?}");
            assert_eq!(tracker.feed(both), None, "{stop:?}");
        }
        // A head longer than its bound.
        let mut tracker = Tracker::new(HeadLimits::new(100, 2, 100));
        assert_eq!(tracker.feed(b"GET / HTTP/1.1\r\nX: "), None);
        assert_eq!(tracker.feed(&[b'a'; 400]), None);
        assert!(!tracker.following());
        // More fields than hyper takes.
        let mut tracker = Tracker::new(HeadLimits::new(8190, 1, 8190));
        assert_eq!(tracker.feed(both), None);
        assert!(!tracker.following());
    }

    #[test]
    fn a_bare_lf_in_a_trailer_line_is_part_of_the_line_as_for_hyper() {
        // hyper reads `0\r\n\n...\r\n\r\n` as one trailer section: what follows is one head.
        let mut tracker = Tracker::new(limits());
        let bytes = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\n\
                      GET /hidden HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
        assert_eq!(tracker.feed(bytes), None);
        assert_eq!(tracker.heads(), 2);
    }

    #[test]
    fn more_fields_than_fit_inline_are_parsed_too() {
        let mut head = b"POST / HTTP/1.1\r\n".to_vec();
        for n in 0..150 {
            head.extend_from_slice(format!("X-{n}: v\r\n").as_bytes());
        }
        head.extend_from_slice(b"Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n");
        let mut tracker = Tracker::new(HeadLimits::new(8190, 200, 8190));
        let flagged = tracker.feed(&head);
        assert_eq!(
            flagged,
            Some(Flagged {
                head: 1,
                length: b"0".to_vec()
            })
        );
    }

    #[test]
    fn the_service_puts_the_length_back_on_the_flagged_request_alone() {
        let refusal = Refusal::default();
        refusal.flag(Flagged {
            head: 2,
            length: b"7".to_vec(),
        });
        let chunked = || {
            let mut headers = HeaderMap::new();
            headers.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
            headers
        };
        let mut first = chunked();
        refusal.count(&mut first);
        assert_eq!(first.get(CONTENT_LENGTH), None);
        let mut second = chunked();
        refusal.count(&mut second);
        assert_eq!(second.get(CONTENT_LENGTH).unwrap(), "7");
        let mut third = chunked();
        refusal.count(&mut third);
        assert_eq!(third.get(CONTENT_LENGTH), None);
        // A request without `Transfer-Encoding` is never the flagged one.
        let refusal = Refusal::default();
        refusal.flag(Flagged {
            head: 1,
            length: b"7".to_vec(),
        });
        let mut plain = HeaderMap::new();
        refusal.count(&mut plain);
        assert!(plain.is_empty());
    }
}
