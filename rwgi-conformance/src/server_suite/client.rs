//! A raw HTTP/1.1 client over blocking sockets: it writes exactly the bytes a check gives it and
//! reports exactly what came back, including responses that end early.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::Address;

/// The longest response head the client accepts.
const MAX_HEAD: usize = 64 * 1024;

/// Why reading from the server stopped.
#[derive(Debug)]
pub(super) enum WireError {
    /// Nothing arrived within the read timeout.
    TimedOut,
    /// The server closed the connection.
    Closed,
    /// The connection failed (reset, for example).
    Io(io::Error),
    /// The bytes are not HTTP.
    Malformed(String),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::TimedOut => f.write_str("nothing arrived before the timeout"),
            WireError::Closed => f.write_str("the connection was closed"),
            WireError::Io(error) => write!(f, "the connection failed: {error}"),
            WireError::Malformed(what) => write!(f, "malformed HTTP: {what}"),
        }
    }
}

impl From<io::Error> for WireError {
    fn from(error: io::Error) -> Self {
        match error.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => WireError::TimedOut,
            _ => WireError::Io(error),
        }
    }
}

/// Bytes read from a source, with the part not yet consumed kept for the next read.
pub(super) struct Wire<R> {
    source: R,
    buffer: Vec<u8>,
}

impl<R: Read> Wire<R> {
    pub(super) fn new(source: R) -> Self {
        Wire {
            source,
            buffer: Vec::new(),
        }
    }

    /// Reads once more into the buffer; `Closed` at the end of the stream.
    fn fill(&mut self) -> Result<(), WireError> {
        let mut chunk = [0; 16 * 1024];
        match self.source.read(&mut chunk) {
            Ok(0) => Err(WireError::Closed),
            Ok(n) => {
                self.buffer.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let rest = self.buffer.split_off(n);
        std::mem::replace(&mut self.buffer, rest)
    }

    /// The bytes of a message head, up to and including the empty line that ends it.
    pub(super) fn head(&mut self) -> Result<Vec<u8>, WireError> {
        loop {
            if let Some(end) = find(&self.buffer, b"\r\n\r\n") {
                return Ok(self.take(end + 4));
            }
            if self.buffer.len() > MAX_HEAD {
                return Err(WireError::Malformed(format!(
                    "no end of the head in {MAX_HEAD} bytes"
                )));
            }
            self.fill()?;
        }
    }

    /// Exactly `n` bytes into `out`; on an error, `out` holds what did arrive.
    pub(super) fn exact(&mut self, n: usize, out: &mut Vec<u8>) -> Result<(), WireError> {
        let target = out.len() + n;
        while out.len() < target {
            if self.buffer.is_empty() {
                self.fill()?;
            }
            let want = (target - out.len()).min(self.buffer.len());
            out.extend(self.take(want));
        }
        Ok(())
    }

    /// Everything until the other side closes.
    pub(super) fn until_closed(&mut self, out: &mut Vec<u8>) -> Result<(), WireError> {
        loop {
            out.append(&mut self.buffer);
            match self.fill() {
                Ok(()) => {}
                Err(WireError::Closed) => return Ok(()),
                Err(error) => return Err(error),
            }
        }
    }

    fn line(&mut self) -> Result<Vec<u8>, WireError> {
        loop {
            if let Some(end) = find(&self.buffer, b"\r\n") {
                let mut line = self.take(end + 2);
                line.truncate(end);
                return Ok(line);
            }
            if self.buffer.len() > MAX_HEAD {
                return Err(WireError::Malformed("a line without an end".into()));
            }
            self.fill()?;
        }
    }

    /// A chunked body (RFC 9112 §7.1), decoded into `out`, and its trailer fields, names
    /// lower-cased; on an error, `out` holds the data that did arrive.
    pub(super) fn chunked(&mut self, out: &mut Vec<u8>) -> Result<Fields, WireError> {
        loop {
            let mut line = self.line()?;
            line.extend_from_slice(b"\r\n");
            let size = match httparse::parse_chunk_size(&line) {
                Ok(httparse::Status::Complete((_, size))) => size,
                _ => {
                    return Err(WireError::Malformed(format!(
                        "bad chunk-size line {:?}",
                        String::from_utf8_lossy(&line)
                    )))
                }
            };
            if size == 0 {
                // Trailer fields, then the empty line that ends the message.
                let mut trailers = Fields::new();
                loop {
                    let line = self.line()?;
                    if line.is_empty() {
                        return Ok(trailers);
                    }
                    let colon = find(&line, b":").ok_or_else(|| {
                        WireError::Malformed(format!("bad trailer line {:?}", preview(&line)))
                    })?;
                    let name = String::from_utf8_lossy(&line[..colon]).to_ascii_lowercase();
                    let value = String::from_utf8_lossy(&line[colon + 1..])
                        .trim()
                        .to_owned();
                    trailers.push((name, value.into_bytes()));
                }
            }
            let size = usize::try_from(size)
                .map_err(|_| WireError::Malformed(format!("chunk of {size} bytes")))?;
            self.exact(size, out)?;
            if !self.line()?.is_empty() {
                return Err(WireError::Malformed(
                    "chunk data longer than its size".into(),
                ));
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// A stream socket of either kind.
enum Socket {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixStream),
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(stream) => stream.read(buf),
            #[cfg(unix)]
            Socket::Unix(stream) => stream.read(buf),
        }
    }
}

/// How a response body ended.
#[derive(Debug)]
pub(super) enum End {
    /// As its framing says.
    Complete,
    /// Before its framing said it would: the connection was closed or failed.
    Cut(WireError),
}

/// Header field lines: names lower-cased, values as sent, in the order sent.
pub(super) type Fields = Vec<(String, Vec<u8>)>;

/// A response as the client read it.
#[derive(Debug)]
pub(super) struct Response {
    /// The status code.
    pub(super) status: u16,
    /// The minor version of the status line: `1` for `HTTP/1.1`, `0` for `HTTP/1.0`.
    pub(super) version: u8,
    /// The field lines.
    pub(super) headers: Fields,
    /// The body, transfer coding removed; only what arrived when the body was cut.
    pub(super) body: Vec<u8>,
    /// How the body ended.
    pub(super) end: End,
    /// The status codes of interim (1xx) responses that came first.
    pub(super) interim: Vec<u16>,
    /// The trailer fields of a chunked body.
    pub(super) trailers: Fields,
}

impl Response {
    /// The values of every field line named `name`, in order.
    pub(super) fn values(&self, name: &str) -> Vec<&[u8]> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
            .collect()
    }

    /// The one value of `name` as text, when there is exactly one.
    pub(super) fn header(&self, name: &str) -> Option<String> {
        match self.values(name)[..] {
            [value] => Some(String::from_utf8_lossy(value).into_owned()),
            _ => None,
        }
    }

    pub(super) fn is_chunked(&self) -> bool {
        self.values("transfer-encoding").iter().any(|value| {
            String::from_utf8_lossy(value)
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
        })
    }

    pub(super) fn is_complete(&self) -> bool {
        matches!(self.end, End::Complete)
    }

    /// A one-line description for failure messages.
    pub(super) fn describe(&self) -> String {
        let end = match &self.end {
            End::Complete => String::new(),
            End::Cut(why) => format!(", cut short ({why})"),
        };
        format!(
            "status {} with a {}-byte body {:?}{end}",
            self.status,
            self.body.len(),
            preview(&self.body)
        )
    }
}

/// The start of `bytes` as text, for failure messages.
pub(super) fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(80)]).into_owned();
    if bytes.len() > 80 {
        text + "…"
    } else {
        text
    }
}

/// What arrived while the client waited for silence.
#[derive(Debug)]
pub(super) enum Quiet {
    /// Nothing.
    Silent,
    /// These bytes.
    Sent(Vec<u8>),
    /// The server closed the connection.
    Closed,
}

impl fmt::Display for Quiet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quiet::Silent => f.write_str("the connection left open"),
            Quiet::Sent(bytes) => write!(f, "{:?} sent", preview(bytes)),
            Quiet::Closed => f.write_str("the connection closed"),
        }
    }
}

/// A connection to the server under test.
pub(super) struct Connection {
    wire: Wire<Socket>,
    writer: Socket,
    timeout: Duration,
}

impl Connection {
    /// Connects with `timeout` on every read and write.
    pub(super) fn open(address: &Address, timeout: Duration) -> io::Result<Connection> {
        let (reader, writer) = match address {
            Address::Tcp(addr) => {
                let stream = TcpStream::connect_timeout(addr, timeout)?;
                stream.set_nodelay(true)?;
                let writer = stream.try_clone()?;
                (Socket::Tcp(stream), Socket::Tcp(writer))
            }
            #[cfg(unix)]
            Address::Unix(path) => {
                let stream = UnixStream::connect(path)?;
                let writer = stream.try_clone()?;
                (Socket::Unix(stream), Socket::Unix(writer))
            }
        };
        let connection = Connection {
            wire: Wire::new(reader),
            writer,
            timeout,
        };
        connection.set_read_timeout(timeout)?;
        connection.set_write_timeout(timeout)?;
        Ok(connection)
    }

    fn set_read_timeout(&self, timeout: Duration) -> io::Result<()> {
        match &self.writer {
            Socket::Tcp(stream) => stream.set_read_timeout(Some(timeout)),
            #[cfg(unix)]
            Socket::Unix(stream) => stream.set_read_timeout(Some(timeout)),
        }
    }

    fn set_write_timeout(&self, timeout: Duration) -> io::Result<()> {
        match &self.writer {
            Socket::Tcp(stream) => stream.set_write_timeout(Some(timeout)),
            #[cfg(unix)]
            Socket::Unix(stream) => stream.set_write_timeout(Some(timeout)),
        }
    }

    /// The server's address and the client's, for TCP.
    pub(super) fn addresses(&self) -> (Option<SocketAddr>, Option<SocketAddr>) {
        match &self.writer {
            Socket::Tcp(stream) => (stream.peer_addr().ok(), stream.local_addr().ok()),
            #[cfg(unix)]
            Socket::Unix(_) => (None, None),
        }
    }

    /// Writes all of `bytes`.
    pub(super) fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.writer {
            Socket::Tcp(stream) => stream.write_all(bytes),
            #[cfg(unix)]
            Socket::Unix(stream) => stream.write_all(bytes),
        }
    }

    /// A writer that sends on this connection from another thread.
    pub(super) fn writer(&self) -> io::Result<Box<dyn Write + Send>> {
        Ok(match &self.writer {
            Socket::Tcp(stream) => Box::new(stream.try_clone()?),
            #[cfg(unix)]
            Socket::Unix(stream) => Box::new(stream.try_clone()?),
        })
    }

    /// Tells the server that the client sends nothing more, keeping the reading side open.
    pub(super) fn finish_sending(&self) -> io::Result<()> {
        match &self.writer {
            Socket::Tcp(stream) => stream.shutdown(Shutdown::Write),
            #[cfg(unix)]
            Socket::Unix(stream) => stream.shutdown(Shutdown::Write),
        }
    }

    /// Reads the next response to a request with `method`; interim responses are collected
    /// on the way. A body cut short is a response too ([`End::Cut`]); a head that does not
    /// arrive or does not parse is an error.
    pub(super) fn response(&mut self, method: &str) -> Result<Response, WireError> {
        let mut interim = Vec::new();
        loop {
            let (version, status, headers) = self.versioned_head()?;
            if (100..200).contains(&status) && status != 101 {
                interim.push(status);
                continue;
            }
            let mut response = Response {
                status,
                version,
                headers,
                body: Vec::new(),
                end: End::Complete,
                interim,
                trailers: Fields::new(),
            };
            if let Err(error) = self.body(method, &mut response) {
                response.end = End::Cut(error);
            }
            return Ok(response);
        }
    }

    /// Reads one response head: status and field lines.
    pub(super) fn head(&mut self) -> Result<(u16, Fields), WireError> {
        self.versioned_head()
            .map(|(_, status, headers)| (status, headers))
    }

    /// Reads one response head: the minor HTTP version of its status line, the status and the
    /// field lines.
    fn versioned_head(&mut self) -> Result<(u8, u16, Fields), WireError> {
        let bytes = self.wire.head()?;
        let mut fields = [httparse::EMPTY_HEADER; 128];
        let mut head = httparse::Response::new(&mut fields);
        match head.parse(&bytes) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => unreachable!("the head ends with an empty line"),
            Err(error) => {
                return Err(WireError::Malformed(format!(
                    "{error} in {:?}",
                    preview(&bytes)
                )))
            }
        }
        let status = head.code.unwrap_or_default();
        let version = head.version.unwrap_or_default();
        let headers = head
            .headers
            .iter()
            .map(|field| (field.name.to_ascii_lowercase(), field.value.to_vec()))
            .collect();
        Ok((version, status, headers))
    }

    /// Reads the body as RFC 9112 §6.3 frames it.
    fn body(&mut self, method: &str, response: &mut Response) -> Result<(), WireError> {
        let status = response.status;
        // A 101 ends the HTTP exchange: what follows belongs to the new protocol.
        if method == "HEAD" || status == 204 || status == 304 || status == 101 {
            return Ok(());
        }
        if response.is_chunked() {
            response.trailers = self.wire.chunked(&mut response.body)?;
            return Ok(());
        }
        if let Some(length) = response.header("content-length") {
            let length = length
                .trim()
                .parse()
                .map_err(|_| WireError::Malformed(format!("Content-Length {length:?}")))?;
            return self.wire.exact(length, &mut response.body);
        }
        self.wire.until_closed(&mut response.body)
    }

    /// The next `n` bytes as sent, framing included: for reading a body piece by piece.
    pub(super) fn next_bytes(&mut self, n: usize) -> Result<Vec<u8>, WireError> {
        let mut out = Vec::new();
        self.wire.exact(n, &mut out).map(|()| out)
    }

    /// Up to `n` next bytes, and how reading them ended: short only when the connection ended
    /// or a read failed.
    pub(super) fn up_to(&mut self, n: usize) -> (Vec<u8>, Result<(), WireError>) {
        let mut out = Vec::new();
        let end = self.wire.exact(n, &mut out);
        (out, end)
    }

    /// Waits `period` and reports whatever the server sent in that time.
    pub(super) fn quiet(&mut self, period: Duration) -> Quiet {
        if !self.wire.buffer.is_empty() {
            return Quiet::Sent(std::mem::take(&mut self.wire.buffer));
        }
        let until = Instant::now() + period;
        let _ = self.set_read_timeout(period);
        let outcome = loop {
            match self.wire.fill() {
                Ok(()) => break Quiet::Sent(std::mem::take(&mut self.wire.buffer)),
                Err(WireError::Closed | WireError::Io(_)) => break Quiet::Closed,
                Err(_) if Instant::now() >= until => break Quiet::Silent,
                Err(_) => {}
            }
        };
        let _ = self.set_read_timeout(self.timeout);
        outcome
    }

    /// Waits up to the timeout for the server to close the connection; `Err` with what it
    /// sent instead.
    pub(super) fn closed(&mut self) -> Result<(), Quiet> {
        match self.quiet(self.timeout) {
            Quiet::Closed => Ok(()),
            other => Err(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_chunks_with_extensions_and_trailers() {
        let bytes: &[u8] = b"5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nx-t: 1\r\n\r\nNEXT";
        let mut wire = Wire::new(bytes);
        let mut out = Vec::new();
        let trailers = wire.chunked(&mut out).unwrap();
        assert_eq!(out, b"hello world");
        assert_eq!(trailers, [("x-t".to_owned(), b"1".to_vec())]);
        assert_eq!(wire.buffer, b"NEXT");
    }

    #[test]
    fn a_cut_chunked_body_keeps_what_arrived() {
        let mut wire = Wire::new(&b"5\r\nhello\r\n5\r\nwor"[..]);
        let mut out = Vec::new();
        assert!(matches!(wire.chunked(&mut out), Err(WireError::Closed)));
        assert_eq!(out, b"hellowor");
    }

    #[test]
    fn a_bad_chunk_size_is_malformed() {
        let mut wire = Wire::new(&b"zz\r\nhello\r\n"[..]);
        let error = wire.chunked(&mut Vec::new()).unwrap_err();
        assert!(matches!(error, WireError::Malformed(_)), "{error}");
    }

    #[test]
    fn heads_end_at_the_empty_line() {
        let mut wire = Wire::new(&b"HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody"[..]);
        assert_eq!(wire.head().unwrap(), b"HTTP/1.1 200 OK\r\nA: b\r\n\r\n");
        let mut rest = Vec::new();
        wire.until_closed(&mut rest).unwrap();
        assert_eq!(rest, b"body");
    }
}
