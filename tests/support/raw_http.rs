//! A raw HTTP/1.1 client for server tests: exact request bytes out, responses parsed strictly.
//!
//! The request is whatever bytes the test writes, so tests can send what no well-behaved
//! client library would (raw non-ASCII targets, missing `Host`). Response heads are parsed
//! with `httparse`; bodies are framed by `Content-Length`, chunked encoding (decoded here,
//! keeping the size of every chunk) or the end of the connection. A body the server cut short
//! is reported as such instead of failing the read, because some tests expect exactly that.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// How long any read may block before the test fails.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// One connection to the server under test.
pub struct Client<S> {
    stream: S,
    /// Bytes received but not yet consumed by a response.
    buffer: Vec<u8>,
}

impl Client<TcpStream> {
    /// Connects over TCP.
    pub fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).expect("connect to the test server");
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
        Client::new(stream)
    }

    /// Tells the server no more bytes will come, keeping the connection open for reading.
    pub fn shutdown_write(&mut self) {
        self.stream
            .shutdown(std::net::Shutdown::Write)
            .expect("half-close the connection");
    }
}

impl Client<UnixStream> {
    /// Connects to a Unix socket.
    pub fn connect_unix(path: &Path) -> Self {
        let stream = UnixStream::connect(path).expect("connect to the test server's socket");
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
        Client::new(stream)
    }
}

impl<S: Read + Write> Client<S> {
    fn new(stream: S) -> Self {
        Client {
            stream,
            buffer: Vec::new(),
        }
    }

    /// Writes `bytes` as they are.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write the request");
        self.stream.flush().expect("flush the request");
    }

    /// Sends `request` and reads the response; `HEAD` requests are recognised by their first
    /// bytes, so their response is read without a body.
    pub fn exchange(&mut self, request: &[u8]) -> Response {
        self.send(request);
        self.read_response(request.starts_with(b"HEAD "))
    }

    /// Reads one response. `head` says the request was `HEAD`, whose response has no body
    /// whatever its headers say.
    pub fn read_response(&mut self, head: bool) -> Response {
        let mut response = self.read_head_only();
        response.complete = true;
        let status = response.status;
        if head || status == 204 || status == 304 || (100..200).contains(&status) {
            return response;
        }
        if response.header("transfer-encoding").is_some() {
            assert_eq!(
                response.header("transfer-encoding"),
                Some("chunked"),
                "the only transfer coding a server may send here"
            );
            assert!(
                response.header("content-length").is_none(),
                "chunked and Content-Length together"
            );
            self.read_chunked(&mut response);
        } else if let Some(length) = response.header("content-length") {
            let length: usize = length.parse().expect("a decimal Content-Length");
            response.complete = self.read_exact_or_eof(length, &mut response.body);
        } else {
            response.body = self.read_to_end();
        }
        response
    }

    /// Reads a response head alone, leaving its body unread (a stream that has not sent
    /// anything yet, say).
    pub fn read_head_only(&mut self) -> Response {
        let (version, status, reason, headers) = self.read_head();
        Response {
            version,
            status,
            reason,
            headers,
            body: Vec::new(),
            chunks: None,
            trailers: Vec::new(),
            complete: false,
        }
    }

    /// Whatever bytes come next, at least one (a chunk of a stream, framing included).
    #[allow(dead_code)] // Not every test binary reads streams.
    pub fn read_some(&mut self) -> Vec<u8> {
        if self.buffer.is_empty() {
            assert!(self.fill(), "the connection closed");
        }
        std::mem::take(&mut self.buffer)
    }

    /// Everything the server still sends until it closes the connection.
    pub fn read_to_end(&mut self) -> Vec<u8> {
        while self.fill() {}
        std::mem::take(&mut self.buffer)
    }

    /// Whether the server closed the connection without sending anything more.
    pub fn is_closed(&mut self) -> bool {
        self.buffer.is_empty() && !self.fill()
    }

    fn read_head(&mut self) -> (u8, u16, String, Vec<(String, Vec<u8>)>) {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut parsed = httparse::Response::new(&mut headers);
            match parsed
                .parse(&self.buffer)
                .expect("a well-formed response head")
            {
                httparse::Status::Complete(length) => {
                    let head = (
                        parsed.version.expect("a version"),
                        parsed.code.expect("a status code"),
                        parsed.reason.expect("a reason phrase").to_owned(),
                        parsed
                            .headers
                            .iter()
                            .map(|h| (h.name.to_owned(), h.value.to_vec()))
                            .collect(),
                    );
                    self.buffer.drain(..length);
                    return head;
                }
                httparse::Status::Partial => assert!(
                    self.fill(),
                    "connection closed inside a response head: {:?}",
                    String::from_utf8_lossy(&self.buffer)
                ),
            }
        }
    }

    fn read_chunked(&mut self, response: &mut Response) {
        let mut chunks = Vec::new();
        response.complete = loop {
            let Some(line) = self.take_line() else {
                break false;
            };
            let size = line.split(|&b| b == b';').next().unwrap_or_default();
            let size = std::str::from_utf8(size)
                .ok()
                .and_then(|size| usize::from_str_radix(size, 16).ok())
                .unwrap_or_else(|| panic!("bad chunk size line {line:?}"));
            if size == 0 {
                // The last chunk: trailer fields, if any, up to an empty line.
                break loop {
                    match self.take_line() {
                        Some(line) if line.is_empty() => break true,
                        Some(line) => {
                            let colon = line.iter().position(|&b| b == b':');
                            let colon = colon.unwrap_or_else(|| panic!("bad trailer {line:?}"));
                            let name = String::from_utf8_lossy(&line[..colon]).to_lowercase();
                            let value = String::from_utf8_lossy(&line[colon + 1..])
                                .trim()
                                .as_bytes()
                                .to_vec();
                            response.trailers.push((name, value));
                        }
                        None => break false,
                    }
                };
            }
            chunks.push(size);
            if !self.read_exact_or_eof(size, &mut response.body) {
                break false;
            }
            match self.take_line() {
                Some(line) => assert!(line.is_empty(), "chunk data longer than its size"),
                None => break false,
            }
        };
        response.chunks = Some(chunks);
    }

    /// Moves `n` bytes into `out`; `false` when the connection ended first (what did arrive is
    /// moved anyway).
    fn read_exact_or_eof(&mut self, n: usize, out: &mut Vec<u8>) -> bool {
        while self.buffer.len() < n {
            if !self.fill() {
                out.append(&mut self.buffer);
                return false;
            }
        }
        out.extend(self.buffer.drain(..n));
        true
    }

    /// One CRLF-terminated line, without the CRLF; `None` when the connection ends first.
    fn take_line(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\r\n") {
                let line = self.buffer[..end].to_vec();
                self.buffer.drain(..end + 2);
                return Some(line);
            }
            if !self.fill() {
                return None;
            }
        }
    }

    /// Reads more bytes into the buffer; `false` at the end of the connection.
    fn fill(&mut self) -> bool {
        let mut chunk = [0; 16 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return false,
                Ok(n) => {
                    self.buffer.extend_from_slice(&chunk[..n]);
                    return true;
                }
                Err(error) if error.kind() == ErrorKind::Interrupted => continue,
                // A reset after an aborted response ends the connection like a close does.
                Err(error) if error.kind() == ErrorKind::ConnectionReset => return false,
                Err(error) => panic!("reading from the test server failed: {error}"),
            }
        }
    }
}

/// A response as received.
#[derive(Debug)]
pub struct Response {
    /// The minor HTTP version: `1` for HTTP/1.1.
    pub version: u8,
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// The header fields in the order received.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body, decoded from chunked encoding when it was chunked.
    pub body: Vec<u8>,
    /// The size of each chunk, for a chunked body.
    pub chunks: Option<Vec<usize>>,
    /// The trailer fields of a chunked body, names lower-cased, in the order received.
    pub trailers: Vec<(String, Vec<u8>)>,
    /// Whether the body ended as its framing says (`false`: the connection ended first).
    pub complete: bool,
}

impl Response {
    /// The value of the only header named `name`, as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        let mut values = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name));
        let (_, value) = values.next()?;
        assert!(values.next().is_none(), "more than one {name} header");
        Some(std::str::from_utf8(value).expect("an ASCII header value"))
    }

    /// Asserts the status line and every header but `Date`, in order, and that exactly one
    /// `Date` in IMF-fixdate form was sent.
    #[track_caller]
    pub fn assert_head(&self, status: u16, reason: &str, headers: &[(&str, &str)]) {
        assert_eq!(
            (self.version, self.status, self.reason.as_str()),
            (1, status, reason),
            "status line"
        );
        let date = self.header("date").expect("a Date header");
        assert!(
            date.len() == 29 && date.ends_with(" GMT") && date.as_bytes()[3] == b',',
            "Date is not an IMF-fixdate: {date:?}"
        );
        let rest: Vec<(&str, &str)> = self
            .headers
            .iter()
            .filter(|(name, _)| name != "date")
            .map(|(name, value)| (name.as_str(), std::str::from_utf8(value).unwrap()))
            .collect();
        assert_eq!(rest, headers, "headers other than Date");
    }
}
