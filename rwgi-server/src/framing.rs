//! Refusing a request head with both `Content-Length` and `Transfer-Encoding` (RFC 9112 §6.1,
//! REQ-ENV-13), which hyper hides from the server: it removes the `Content-Length` of such a
//! head (either order) before the service sees it, reads the body as chunked, and closes the
//! connection after the answer.
//!
//! The connection's reads ([`ConnectionIo`](crate::connection_io::ConnectionIo)), under hyper,
//! hand the bytes hyper reads to the connection's [`Tracker`]; the service hands it each request hyper parsed,
//! with the framing hyper read in it ([`SharedTracker::request`]). The tracker keeps the bytes
//! it cannot place yet (a head, and what arrives behind it until its request's framing is
//! known) and skips the rest: a `Content-Length` body by counting, a chunked one with
//! `httparse::parse_chunk_size` and hyper's own rules for the CRLF after chunk data and for
//! trailer lines. At each request it catches up with hyper: the request's head starts its kept
//! bytes (after any empty lines), so hyper's framing tells how many body bytes follow it. A
//! request with a body of known length only needs its head's end, found by its line ends; a
//! chunked one (the request hyper took `Transfer-Encoding` from) has its head parsed with
//! `httparse`, configured as hyper configures it and bounded by the same number of fields, and
//! when that head also had a `Content-Length`, the tracker gives it back to the service, which
//! puts it on the request, so that the environ's framing check refuses it with `400` like any
//! other REQ-ENV-13 refusal, without calling the app. hyper has already marked that connection
//! to close after the answer, so nothing after it is served, and the tracker stops there. The
//! catching up happens in the service call, not in a read: hyper parses pipelined requests
//! from its buffer without reading again.
//!
//! It fails open: where it cannot be sure to read the bytes as hyper does, it stops following
//! the connection and passes bytes through, so that it can miss a head with both fields but
//! never flags one without them (a flag comes only from httparse's reading of the head hyper
//! parsed). It stops at a request that is not HTTP/1 (an HTTP/2 connection), after a request
//! hyper may hand the connection over after (an upgrade or a `CONNECT`: the bytes after it may
//! not be HTTP), at chunked framing hyper refuses (a chunk-size line httparse refuses, chunk
//! data not followed by CRLF), at a head it cannot find where hyper found one, and when more
//! bytes wait to be placed than hyper's read buffer holds. A head hyper refuses is answered
//! with `400` and closes the connection: the service never sees it, nor anything after it.
//!
//! The length of each head it places goes back to the service: a head within the line and
//! field limits needs no line of it measured against them.
//!
//! Cost: a connection pays one allocation for the state its reads and its service share; a
//! request pays a copy of its head into a reused buffer, a count of the head's LFs, and two
//! uncontended locks: about 370 to 410 instructions for a small `GET`, about 570 for a
//! 17-line browser head (`benches/icount.sh`).

use std::mem::{self, MaybeUninit};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use memchr::memmem::Finder;
use rwgi::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use rwgi::http::{HeaderMap, HeaderValue, Version};

/// How an HTTP/2 connection starts (RFC 9113 §3.4); enough of it to tell it from HTTP/1.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n";

/// The most header fields the tracker parses without allocating: hyper's own default.
const INLINE_FIELDS: usize = 100;

/// The longest chunk-size line followed: hyper refuses more than 16 KiB of chunk extensions.
const CHUNK_LINE_LIMIT: usize = 16 * 1024 + 64;

/// The most bytes hyper holds unread: its default read buffer limit. Kept bytes are bytes
/// hyper has read and not yet parsed, so more than this means the tracker lost its place.
const HYPER_BUFFER_LIMIT: usize = 8192 + 4096 * 100;

/// A buffer of kept bytes larger than this is freed once empty, rather than held for the
/// connection's life.
const KEPT_CAPACITY: usize = 16 * 1024;

/// Where the tracker is in the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Before a request head: bytes are kept until the service places them.
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

/// The framing hyper read in a request it hands the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Declared {
    /// A body of this many bytes (zero: none), after a head of which hyper kept this many
    /// fields (it drops a repeated `Content-Length`).
    Length(u64, usize),
    /// A chunked body: the head had `Transfer-Encoding`.
    Chunked,
    /// Not a request whose framing hyper follows on this connection: HTTP/2, or one hyper may
    /// hand the connection over after.
    Other,
}

/// Follows the HTTP/1 requests in a connection's bytes (see the [module docs](self)).
#[derive(Debug)]
pub(crate) struct Tracker {
    state: State,
    /// Bytes read before a head, not placed yet: from `start` on.
    kept: Vec<u8>,
    start: usize,
    /// A chunk-size line split across reads, gathered so far.
    partial: Vec<u8>,
    /// hyper's `max_headers`: a head with more fails to parse for both.
    fields: usize,
    /// The length of the head the last [`request`](Tracker::request) placed; 0 when it placed
    /// none.
    placed: usize,
}

/// What parsing a chunk-size line gave.
enum Parsed<T> {
    /// It ends after this many bytes.
    Complete(usize, T),
    /// More bytes may complete it.
    Partial,
    /// hyper would refuse it, or read it differently.
    Invalid,
}

impl Tracker {
    /// A tracker for a connection whose heads hyper parses with at most `fields` fields.
    pub(crate) fn new(fields: usize) -> Self {
        Tracker {
            state: State::Head,
            kept: Vec::new(),
            start: 0,
            partial: Vec::new(),
            fields,
            placed: 0,
        }
    }

    /// Whether it still follows the connection.
    pub(crate) fn following(&self) -> bool {
        self.state != State::Off
    }

    /// Takes the next bytes hyper reads: skips what it can place, keeps the rest.
    #[inline]
    pub(crate) fn read(&mut self, bytes: &[u8]) {
        let rest = self.advance(bytes);
        if rest.is_empty() {
            return;
        }
        if self.kept.len() == self.start && rest.starts_with(PREFACE) {
            // An HTTP/2 connection (hyper's HTTP/1 parser refuses one): nothing to follow, and
            // its frames are not kept until its first request says so.
            self.stop();
            return;
        }
        if self.start > 0 {
            self.kept.drain(..self.start);
            self.start = 0;
        }
        if self.kept.len() + rest.len() > HYPER_BUFFER_LIMIT {
            self.stop();
            return;
        }
        self.kept.extend_from_slice(rest);
    }

    /// Catches up with the request hyper hands the service next, framed as `declared`: the
    /// `Content-Length` its head carried beside `Transfer-Encoding`, if it did. The tracking
    /// stops after such a head.
    #[inline]
    pub(crate) fn request(&mut self, declared: Declared) -> Option<Vec<u8>> {
        self.placed = 0;
        if self.state != State::Head {
            // Still inside a body hyper has finished with, or stopped: not hyper's reading.
            self.stop();
            return None;
        }
        let kept = &self.kept[self.start..];
        let Some(lead) = empty_lines(kept) else {
            self.stop();
            return None;
        };
        let head = &kept[lead..];
        let (length, next) = match declared {
            Declared::Length(length, fields) => match head_end(head, fields) {
                Some(end) => (end, Body::Length(length)),
                None => {
                    self.stop();
                    return None;
                }
            },
            Declared::Chunked => match parse_head(head, self.fields) {
                Some(Head {
                    length,
                    coded: true,
                    first_length: None,
                }) => (length, Body::Chunked),
                Some(Head {
                    coded: true,
                    first_length: Some(both),
                    ..
                }) => {
                    let both = both.to_vec();
                    self.stop();
                    return Some(both);
                }
                _ => {
                    self.stop();
                    return None;
                }
            },
            Declared::Other => {
                self.stop();
                return None;
            }
        };
        self.placed = length;
        self.start += lead + length;
        self.state = match next {
            Body::Length(0) => State::Head,
            Body::Length(length) => State::Length(length),
            Body::Chunked => State::ChunkSize,
        };
        if self.state != State::Head {
            self.skip_kept();
        }
        if self.start == self.kept.len() {
            if self.kept.capacity() > KEPT_CAPACITY {
                self.kept = Vec::new();
            } else {
                self.kept.clear();
            }
            self.start = 0;
        }
        None
    }

    /// Skips the body bytes that were kept behind a head.
    #[cold]
    fn skip_kept(&mut self) {
        let kept = mem::take(&mut self.kept);
        let rest = self.advance(&kept[self.start..]).len();
        if self.following() {
            self.start = kept.len() - rest;
            self.kept = kept;
        }
    }

    /// Skips the body bytes at the start of `bytes`; the rest, from the next head on.
    #[inline(always)]
    fn advance<'a>(&mut self, mut bytes: &'a [u8]) -> &'a [u8] {
        while !bytes.is_empty() {
            match self.state {
                State::Head => return bytes,
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
                State::Off => return &[],
                _ => self.chunked(&mut bytes),
            }
        }
        bytes
    }

    /// Reads the framing of a chunked body, but for its data.
    #[cold]
    fn chunked(&mut self, bytes: &mut &[u8]) {
        match self.state {
            State::ChunkSize => {
                if let Some(size) = self.chunk_size(bytes) {
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
        self.kept = Vec::new();
        self.start = 0;
        self.partial = Vec::new();
    }

    /// Parses the next chunk-size line: where it lies when it arrived in one piece, else
    /// gathered across reads. Consumes what it parsed or gathered; `None` when it is not
    /// complete yet, or the tracking stopped.
    fn chunk_size(&mut self, bytes: &mut &[u8]) -> Option<u64> {
        if self.partial.is_empty() {
            return match read_chunk_size(bytes) {
                Parsed::Complete(length, size) => {
                    *bytes = &bytes[length..];
                    Some(size)
                }
                Parsed::Partial if bytes.len() <= CHUNK_LINE_LIMIT => {
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
        // One byte over the limit is enough to know the line is too long.
        let take = bytes
            .len()
            .min((CHUNK_LINE_LIMIT + 1).saturating_sub(before));
        self.partial.extend_from_slice(&bytes[..take]);
        match read_chunk_size(&self.partial) {
            Parsed::Complete(length, size) => match length.checked_sub(before) {
                // A line that was partial ends in the bytes just added.
                Some(used) if used > 0 && used <= take => {
                    *bytes = &bytes[used..];
                    self.partial.clear();
                    Some(size)
                }
                _ => {
                    self.stop();
                    None
                }
            },
            Parsed::Partial if self.partial.len() <= CHUNK_LINE_LIMIT => {
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

/// How a request's body is framed.
#[derive(Clone, Copy)]
enum Body {
    Length(u64),
    Chunked,
}

/// Skips up to `left` bytes of a body; the bytes still to skip.
#[inline(always)]
fn skip(bytes: &mut &[u8], left: u64) -> u64 {
    let here = usize::try_from(left).map_or(bytes.len(), |left| left.min(bytes.len()));
    *bytes = &bytes[here..];
    left - here as u64
}

/// The length of the empty lines before a request line, which httparse skips (CRLF or a bare
/// LF each); `None` for a CR without its LF, which it refuses.
#[inline(always)]
fn empty_lines(buf: &[u8]) -> Option<usize> {
    let mut start = 0;
    loop {
        match buf.get(start) {
            Some(b'\n') => start += 1,
            Some(b'\r') if buf.get(start + 1) == Some(&b'\n') => start += 2,
            Some(b'\r') => return None,
            _ => return Some(start),
        }
    }
}

/// The end of a request head that starts `buf`, that hyper accepted and in which it kept
/// `fields` fields. httparse takes CRLF and a bare LF as line ends, and refuses a CR without
/// its LF, so in a head it accepts every LF ends a line: the request line, each field, and the
/// empty line that ends the head. When `buf` ends with an LF and holds no more LFs than a head
/// with `fields` fields (it cannot hold fewer: hyper may have dropped a field, never added
/// one), it is that head alone; else the head ends after the first LF followed by CRLF or by
/// LF. Either is one or two searches many bytes at a time, whatever the number of lines.
#[inline]
fn head_end(buf: &[u8], fields: usize) -> Option<usize> {
    if buf.last() == Some(&b'\n') && line_ends(buf) == fields + 2 {
        return Some(buf.len());
    }
    first_empty_line(buf)
}

/// The number of LFs in `buf`, eight bytes at a time: short heads are too short for a
/// vectorised count to pay for its set-up.
#[inline]
fn line_ends(buf: &[u8]) -> usize {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const LOW: u64 = ONES * 0x7f;
    const LF: u64 = ONES * b'\n' as u64;
    // Per-byte sums: 31 words of at most 8 LFs each keep their total under 256, which the
    // multiplication adds up exactly.
    let total = |lanes: u64| (lanes.wrapping_mul(ONES) >> 56) as usize;
    let mut count = 0;
    for block in buf.chunks(31 * 8) {
        let mut words = block.chunks_exact(8);
        let mut lanes = 0;
        for word in words.by_ref() {
            let mut bytes = [0; 8];
            bytes.copy_from_slice(word);
            let x = u64::from_ne_bytes(bytes) ^ LF;
            // The high bit of each zero byte of `x`, with no carry between bytes.
            lanes += (!(((x & LOW) + LOW) | x) & !LOW) >> 7;
        }
        count += total(lanes) + words.remainder().iter().filter(|&&b| b == b'\n').count();
    }
    count
}

/// Where the first empty line in `buf` ends.
#[cold]
fn first_empty_line(buf: &[u8]) -> Option<usize> {
    static ENDS: OnceLock<(Finder<'static>, Finder<'static>)> = OnceLock::new();
    let (crlf, lf) = ENDS.get_or_init(|| (Finder::new(b"\n\r\n"), Finder::new(b"\n\n")));
    match crlf.find(buf) {
        // A bare-LF empty line before it ends the head there.
        Some(at) => Some(lf.find(&buf[..at + 1]).map_or(at + 3, |bare| bare + 2)),
        None => lf.find(buf).map(|bare| bare + 2),
    }
}

/// A request head as httparse reads it.
struct Head<'a> {
    /// Its length.
    length: usize,
    /// Whether it has `Transfer-Encoding`.
    coded: bool,
    /// Its first `Content-Length` value, as sent.
    first_length: Option<&'a [u8]>,
}

/// Parses a request head as hyper does; `None` when httparse does not take it whole.
#[cold]
fn parse_head(buf: &[u8], fields: usize) -> Option<Head<'_>> {
    let mut inline = [MaybeUninit::<httparse::Header<'_>>::uninit(); INLINE_FIELDS];
    let mut heap;
    let storage = if fields <= INLINE_FIELDS {
        &mut inline[..fields]
    } else {
        heap = vec![MaybeUninit::uninit(); fields];
        &mut heap[..]
    };
    let mut request = httparse::Request::new(&mut []);
    let Ok(httparse::Status::Complete(length)) = httparse::ParserConfig::default()
        .parse_request_with_uninit_headers(&mut request, buf, storage)
    else {
        return None;
    };
    let mut head = Head {
        length,
        coded: false,
        first_length: None,
    };
    for field in request.headers.iter() {
        let name = field.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            head.first_length = head.first_length.or(Some(field.value));
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            head.coded = true;
        }
    }
    Some(head)
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

/// A connection's [`Tracker`], shared by its reads and its service. hyper calls
/// both from the connection's task, one at a time: the lock is never contended.
#[derive(Clone, Debug)]
pub(crate) struct SharedTracker(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    /// Set once the tracker stopped: an HTTP/2 connection, or one past an upgrade, then pays
    /// a load per read and per request, not a lock.
    off: AtomicBool,
    tracker: Mutex<Tracker>,
}

impl SharedTracker {
    /// A tracker for a connection whose heads hyper parses with at most `fields` fields.
    pub(crate) fn new(fields: usize) -> Self {
        SharedTracker(Arc::new(Shared {
            off: AtomicBool::new(false),
            tracker: Mutex::new(Tracker::new(fields)),
        }))
    }

    #[inline(always)]
    fn lock(&self) -> MutexGuard<'_, Tracker> {
        // The tracker does not panic; if it did, its state is no worse than stopped.
        self.0
            .tracker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the tracker stopped following the connection.
    #[inline(always)]
    fn is_off(&self) -> bool {
        self.0.off.load(Ordering::Relaxed)
    }

    /// Notes a stop of `tracker`, for the next calls to skip the lock.
    #[inline(always)]
    fn note(&self, tracker: &Tracker) {
        if !tracker.following() {
            self.0.off.store(true, Ordering::Relaxed);
        }
    }

    /// Hands the tracker the next bytes hyper reads.
    #[inline(always)]
    pub(crate) fn read(&self, bytes: &[u8]) {
        if self.is_off() {
            return;
        }
        let mut tracker = self.lock();
        tracker.read(bytes);
        self.note(&tracker);
    }

    /// Catches the tracker up with a request hyper hands the service: its `version`, its
    /// body's exact `length` as hyper frames it (`None`: chunked), whether hyper may `upgrade`
    /// the connection after it, and its `headers` as hyper parsed them. When its head also had
    /// a `Content-Length`, puts that back among `headers`, for the environ's framing check to
    /// refuse it (REQ-ENV-13).
    ///
    /// Returns the length of the request's head as it came, when the tracker placed it: no
    /// line of the head is longer.
    #[inline]
    pub(crate) fn request(
        &self,
        version: Version,
        length: Option<u64>,
        upgrade: bool,
        headers: &mut HeaderMap,
    ) -> Option<usize> {
        if self.is_off() {
            return None;
        }
        let declared = match length {
            _ if upgrade || (version != Version::HTTP_11 && version != Version::HTTP_10) => {
                Declared::Other
            }
            Some(length) => Declared::Length(length, headers.len()),
            None => Declared::Chunked,
        };
        let mut tracker = self.lock();
        let both = tracker.request(declared);
        self.note(&tracker);
        let placed = tracker.placed;
        drop(tracker);
        if let Some(length) = both {
            restore(headers, &length);
        }
        (placed != 0).then_some(placed)
    }
}

/// Puts a flagged head's `Content-Length` back on its request.
#[cold]
fn restore(headers: &mut HeaderMap, length: &[u8]) {
    // The flagged head reaches the service with its `Transfer-Encoding` and without its
    // `Content-Length`; anything else is not the head that was flagged. httparse only passes
    // values that are valid header values.
    if headers.contains_key(TRANSFER_ENCODING) && !headers.contains_key(CONTENT_LENGTH) {
        if let Ok(length) = HeaderValue::from_bytes(length) {
            headers.insert(CONTENT_LENGTH, length);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Bytes a body may carry that look like the framing under test.
    const DECOY: &[u8] = b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";

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

    /// A request as a client sends it, and as hyper reads it.
    struct Sent {
        bytes: Vec<u8>,
        /// Where its head ends.
        head: usize,
        /// The framing hyper hands the service.
        declared: Declared,
    }

    /// A request hyper serves, with its framing; `both` adds a `Content-Length` beside a
    /// chunked body, before or after the `Transfer-Encoding`. `bare_lf` ends its head's lines
    /// with LF alone, as httparse allows.
    fn request(framing: &Framing, both: Option<bool>, blank_line: bool, bare_lf: bool) -> Sent {
        request_with(framing, both, blank_line, bare_lf, false)
    }

    /// A request as [`request`] makes it; `repeat` sends its `Content-Length` twice, which hyper
    /// keeps once.
    fn request_with(
        framing: &Framing,
        both: Option<bool>,
        blank_line: bool,
        bare_lf: bool,
        repeat: bool,
    ) -> Sent {
        let end = if bare_lf { "\n" } else { "\r\n" };
        let mut head = String::new();
        if blank_line {
            // A server ignores an empty line before a request line (RFC 9112 §2.2).
            head.push_str(end);
        }
        head.push_str("POST /p?q HTTP/1.1\r\nHost: h\r\nX-Data: a");
        head.push_str(end);
        match framing {
            Framing::None => {}
            Framing::Length(body) => {
                let field = format!("Content-Length: {}{end}", body.len());
                head.push_str(&field);
                if repeat {
                    head.push_str(&field);
                }
            }
            Framing::Chunked(..) => {
                if both == Some(true) {
                    head.push_str(&format!("Content-Length: 12{end}"));
                }
                head.push_str(&format!("Transfer-Encoding: chunked{end}"));
                if both == Some(false) {
                    head.push_str(&format!("content-length: 12{end}"));
                }
            }
        }
        head.push_str(end);
        let mut out = head.into_bytes();
        let head = out.len();
        let declared = match framing {
            Framing::None => Declared::Length(0, 2),
            Framing::Length(body) => {
                out.extend_from_slice(body);
                Declared::Length(body.len() as u64, 3)
            }
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
                Declared::Chunked
            }
        };
        Sent {
            bytes: out,
            head,
            declared,
        }
    }

    /// Serves `requests` as hyper does: their bytes in reads cut at `cuts` (taken modulo the
    /// length), and each request handed to the service once its head is read, at once or (by
    /// `late`, per read) after later reads. Stops at a refusal, as hyper closes the connection
    /// after it; every service call's answer.
    fn serve(
        tracker: &mut Tracker,
        requests: &[Sent],
        cuts: &[usize],
        late: &[bool],
    ) -> Vec<Option<Vec<u8>>> {
        let bytes: Vec<u8> = requests.iter().flat_map(|r| r.bytes.clone()).collect();
        let mut heads = Vec::new();
        let mut at = 0;
        for sent in requests {
            heads.push(at + sent.head);
            at += sent.bytes.len();
        }
        let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut % (bytes.len() + 1)).collect();
        cuts.push(bytes.len());
        cuts.sort_unstable();
        let mut answers = Vec::new();
        let mut start = 0;
        for (index, cut) in cuts.iter().enumerate() {
            tracker.read(&bytes[start..*cut]);
            start = *cut;
            let last = index + 1 == cuts.len();
            if !last && late.get(index).copied().unwrap_or(false) {
                continue;
            }
            while answers.len() < requests.len() && heads[answers.len()] <= start {
                let answer = tracker.request(requests[answers.len()].declared);
                let refused = answer.is_some();
                answers.push(answer);
                if refused {
                    return answers;
                }
            }
        }
        answers
    }

    proptest! {
        #[test]
        fn valid_requests_in_any_split_are_all_placed_and_none_flagged(
            requests in prop::collection::vec(
                (framing(), any::<bool>(), any::<bool>(), any::<bool>()),
                1..8,
            ),
            cuts in prop::collection::vec(any::<usize>(), 0..12),
            late in prop::collection::vec(any::<bool>(), 0..12),
        ) {
            let sent: Vec<Sent> = requests
                .iter()
                .map(|(framing, blank, bare_lf, repeat)| {
                    request_with(framing, None, *blank, *bare_lf, *repeat)
                })
                .collect();
            let mut tracker = Tracker::new(100);
            let answers = serve(&mut tracker, &sent, &cuts, &late);
            prop_assert_eq!(answers, vec![None; sent.len()]);
            prop_assert!(tracker.following());
            prop_assert_eq!(tracker.state, State::Head);
            prop_assert_eq!(tracker.start, tracker.kept.len(), "every byte placed");
        }

        #[test]
        fn a_head_with_both_fields_is_refused_alone(
            requests in prop::collection::vec(framing(), 0..6),
            at in any::<prop::sample::Index>(),
            length_first in any::<bool>(),
            chunks in prop::collection::vec((body().prop_filter("not empty", |b| !b.is_empty()), any::<bool>()), 0..3),
            cuts in prop::collection::vec(any::<usize>(), 0..12),
            late in prop::collection::vec(any::<bool>(), 0..12),
        ) {
            let at = at.index(requests.len() + 1);
            let mut sent: Vec<Sent> = requests.iter().map(|framing| request(framing, None, false, false)).collect();
            sent.insert(at, request(&Framing::Chunked(chunks, vec![]), Some(length_first), false, false));
            let mut tracker = Tracker::new(100);
            let answers = serve(&mut tracker, &sent, &cuts, &late);
            let mut expected = vec![None; at];
            expected.push(Some(b"12".to_vec()));
            prop_assert_eq!(answers, expected);
            prop_assert!(!tracker.following(), "nothing after it is served");
        }

        #[test]
        fn http_like_bytes_read_in_any_split_as_in_one_piece(
            pieces in prop::collection::vec(piece(), 0..40),
            cuts in prop::collection::vec(any::<usize>(), 0..12),
            requests in prop::collection::vec(declared(), 0..6),
        ) {
            let bytes = pieces.concat();
            let answers = |cuts: &[usize]| {
                let mut tracker = Tracker::new(100);
                let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut % (bytes.len() + 1)).collect();
                cuts.push(bytes.len());
                cuts.sort_unstable();
                let mut start = 0;
                for cut in cuts {
                    tracker.read(&bytes[start..cut]);
                    start = cut;
                }
                let answers: Vec<_> = requests.iter().map(|declared| tracker.request(*declared)).collect();
                (answers, tracker.following())
            };
            let whole = answers(&[]);
            prop_assert_eq!(answers(&cuts), whole.clone());
            for refused in whole.0.iter().flatten() {
                let text = bytes.to_ascii_lowercase();
                let has = |needle: &[u8]| text.windows(needle.len()).any(|window| window == needle);
                prop_assert!(has(b"content-length") && has(b"transfer-encoding"));
                prop_assert!(refused.is_empty() || has(&refused.to_ascii_lowercase()));
            }
        }
    }

    fn declared() -> impl Strategy<Value = Declared> {
        prop_oneof![
            (0u64..8, 0usize..6).prop_map(|(length, fields)| Declared::Length(length, fields)),
            Just(Declared::Chunked),
            Just(Declared::Other),
        ]
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
            "[A-Z]{1,7} /[a-z:]{0,5} HTTP/1\\.[01]",
        ];
        let names = prop_oneof![
            Just("Content-Length"),
            Just("Transfer-Encoding"),
            Just("Host"),
            Just("X-Colon"),
            Just(" Host"),
        ];
        let values = prop_oneof![
            Just("5"),
            Just(" 5 "),
            Just("x\r"),
            Just(""),
            Just("a:b\n"),
            Just("\r\n"),
            Just("chunked"),
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

    /// Holds the search for a head's end to httparse's reading of `bytes`, as hyper configures
    /// it, wherever httparse takes a head whole: told its number of fields, or `fewer` (hyper
    /// keeps a repeated `Content-Length` once).
    fn end_agrees(bytes: &[u8], fewer: usize) -> Result<(), TestCaseError> {
        let mut fields = [httparse::EMPTY_HEADER; INLINE_FIELDS];
        let mut request = httparse::Request::new(&mut fields);
        if let Ok(httparse::Status::Complete(length)) =
            httparse::ParserConfig::default().parse_request(&mut request, bytes)
        {
            let lead = empty_lines(bytes);
            prop_assert!(lead.is_some());
            let lead = lead.unwrap_or_default();
            let fields = request.headers.len().saturating_sub(fewer);
            prop_assert_eq!(
                head_end(&bytes[lead..], fields).map(|end| lead + end),
                Some(length)
            );
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn a_head_ends_where_httparse_ends_it(
            bytes in head_bytes(),
            tail in prop::collection::vec(any::<u8>(), 0..16),
            fewer in 0usize..3,
        ) {
            end_agrees(&bytes, fewer)?;
            // Whatever follows it.
            end_agrees(&[bytes.as_slice(), tail.as_slice()].concat(), fewer)?;
        }

        #[test]
        fn arbitrary_bytes_end_where_httparse_ends_them(
            bytes in prop::collection::vec(any::<u8>(), 0..64),
            fewer in 0usize..3,
        ) {
            end_agrees(&bytes, fewer)?;
        }
    }

    proptest! {
        #[test]
        fn line_ends_are_counted_exactly(
            // LFs, and bytes one bit or one away from one, in runs over 256.
            bytes in prop::collection::vec(
                prop_oneof![Just(b'\n'), Just(b'\n' | 0x80), Just(0x0b), Just(0x09), any::<u8>()],
                0..600,
            ),
        ) {
            prop_assert_eq!(line_ends(&bytes), bytes.iter().filter(|&&b| b == b'\n').count());
        }
    }

    #[test]
    fn pipelined_heads_in_one_read_are_placed_one_by_one() {
        let mut tracker = Tracker::new(100);
        let bytes = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\n\n\
                      \r\nGET /x HTTP/1.1\r\nHost: h\r\n\r\n";
        tracker.read(bytes);
        assert_eq!(tracker.kept, bytes, "nothing is placed before the service");
        assert_eq!(tracker.request(Declared::Length(3, 2)), None);
        assert_eq!(&tracker.kept[tracker.start..], &bytes[50..]);
        assert_eq!(tracker.request(Declared::Length(0, 0)), None);
        assert_eq!(tracker.request(Declared::Length(0, 1)), None);
        assert!(tracker.following());
        assert!(
            tracker.kept.is_empty(),
            "the buffer is reused from its start"
        );
        // A body that arrives after its head is skipped as it is read.
        tracker.read(b"PUT / HTTP/1.1\r\nContent-Length: 4\r\n\r\n");
        assert_eq!(tracker.request(Declared::Length(4, 1)), None);
        tracker.read(b"body");
        assert!(tracker.kept.is_empty());
        assert_eq!(tracker.state, State::Head);
    }

    #[test]
    fn it_stops_where_it_cannot_follow_and_flags_nothing_after() {
        let both = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
        let stops: [(&[u8], Declared); 6] = [
            // An HTTP/2 request, an upgrade or a CONNECT.
            (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", Declared::Other),
            (
                b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
                Declared::Other,
            ),
            // A head where hyper found none.
            (b"GET / HTTP/1.1\r\nHost: h\r\n", Declared::Length(0, 1)),
            (b"\rGET / HTTP/1.1\r\n\r\n", Declared::Length(0, 0)),
            // A chunked request whose head has no `Transfer-Encoding` for httparse.
            (b"POST / HTTP/1.1\r\nHost: h\r\n\r\n", Declared::Chunked),
            // Chunked framing hyper refuses.
            (
                b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n",
                Declared::Chunked,
            ),
        ];
        for (stop, declared) in stops {
            let mut tracker = Tracker::new(100);
            tracker.read(stop);
            assert_eq!(tracker.request(declared), None, "{stop:?}");
            assert!(!tracker.following(), "{stop:?}");
            tracker.read(both);
            assert_eq!(tracker.request(Declared::Chunked), None, "{stop:?}");
        }
        // A request while a body is still being read is not where hyper is.
        let mut tracker = Tracker::new(100);
        tracker.read(b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\n");
        assert_eq!(tracker.request(Declared::Length(9, 1)), None);
        tracker.read(both);
        assert_eq!(tracker.request(Declared::Chunked), None);
        assert!(!tracker.following());
        // More bytes waiting than hyper holds.
        let mut tracker = Tracker::new(100);
        tracker.read(b"GET / HTTP/1.1\r\nX: ");
        tracker.read(&vec![b'a'; HYPER_BUFFER_LIMIT]);
        assert!(!tracker.following());
        assert_eq!(tracker.kept.capacity(), 0, "its memory is freed");
        // More fields than hyper takes.
        let mut tracker = Tracker::new(1);
        tracker.read(both);
        assert_eq!(tracker.request(Declared::Chunked), None);
        assert!(!tracker.following());
    }

    #[test]
    fn a_bare_lf_in_a_trailer_line_is_part_of_the_line_as_for_hyper() {
        // hyper reads `0\r\n\n...\r\n\r\n` as one trailer section: what follows is one head.
        let mut tracker = Tracker::new(100);
        tracker.read(
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\n\
              GET /hidden HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
        );
        assert_eq!(tracker.request(Declared::Chunked), None);
        assert_eq!(tracker.request(Declared::Length(0, 1)), None);
        assert!(tracker.following());
        assert_eq!(tracker.start, 0, "every byte placed");
        assert!(tracker.kept.is_empty());
    }

    #[test]
    fn more_fields_than_fit_inline_are_parsed_too() {
        let mut head = b"POST / HTTP/1.1\r\n".to_vec();
        for n in 0..150 {
            head.extend_from_slice(format!("X-{n}: v\r\n").as_bytes());
        }
        head.extend_from_slice(b"Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n");
        let mut tracker = Tracker::new(200);
        tracker.read(&head);
        assert_eq!(tracker.request(Declared::Chunked), Some(b"0".to_vec()));
    }

    #[test]
    fn a_stopped_tracker_is_known_without_its_lock() {
        // An HTTP/2 connection stops it at its first bytes, before any request.
        let shared = SharedTracker::new(100);
        shared.read(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0");
        assert!(shared.is_off());
        assert!(
            shared.lock().kept.is_empty(),
            "an HTTP/2 connection's frames are not kept"
        );
        // An HTTP/1 one goes on until a request hyper may hand the connection over after.
        let shared = SharedTracker::new(100);
        shared.read(b"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /ws HTTP/1.1\r\nHost: h\r\n\r\n");
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("h"));
        // Each head it places, it measures; it measures none it does not place.
        assert_eq!(
            shared.request(Version::HTTP_11, Some(0), false, &mut headers),
            Some(27)
        );
        assert!(!shared.is_off());
        assert_eq!(
            shared.request(Version::HTTP_11, Some(0), true, &mut headers),
            None
        );
        assert!(shared.is_off());
        // Once stopped, a head with both fields is not looked at.
        shared.read(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 7\r\n\r\n");
        let mut headers = HeaderMap::new();
        headers.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        shared.request(Version::HTTP_11, None, false, &mut headers);
        assert_eq!(headers.get(CONTENT_LENGTH), None);
    }

    #[test]
    fn the_service_puts_the_length_back_on_the_flagged_request_alone() {
        let shared = SharedTracker::new(100);
        let chunked = || {
            let mut headers = HeaderMap::new();
            headers.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
            headers
        };
        shared.lock().read(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n\
              POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 7\r\n\r\n",
        );
        let mut first = chunked();
        shared.request(Version::HTTP_11, None, false, &mut first);
        assert_eq!(first.get(CONTENT_LENGTH), None);
        let mut second = chunked();
        shared.request(Version::HTTP_11, None, false, &mut second);
        assert_eq!(second.get(CONTENT_LENGTH).unwrap(), "7");
        let mut third = chunked();
        shared.request(Version::HTTP_11, None, false, &mut third);
        assert_eq!(third.get(CONTENT_LENGTH), None);
        // Neither a request without `Transfer-Encoding`, nor one over HTTP/2 or asking for an
        // upgrade, is placed as chunked.
        for (version, upgrade) in [
            (Version::HTTP_11, false),
            (Version::HTTP_2, false),
            (Version::HTTP_11, true),
        ] {
            let shared = SharedTracker::new(100);
            shared.lock().read(
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 7\r\n\r\n",
            );
            let mut headers = if upgrade || version == Version::HTTP_2 {
                chunked()
            } else {
                HeaderMap::new()
            };
            let length = if headers.is_empty() { Some(7) } else { None };
            shared.request(version, length, upgrade, &mut headers);
            assert_eq!(headers.get(CONTENT_LENGTH), None, "{version:?} {upgrade}");
        }
    }
}
