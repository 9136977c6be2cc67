//! Logs: the access log (one line per request, written off the request path) and the error
//! log (`tracing` events, to stderr or a file).
//!
//! # The access log's path
//!
//! A request's line is formatted on the runtime thread that served it, straight into the log's
//! shared buffer under its lock. A dedicated writer thread takes the whole shared buffer at once
//! and writes it: under load one `write` carries many lines, and a slow log pipe or disk blocks
//! the writer thread only, never a runtime thread. The writer waits [`LINGER`] after it is
//! woken before it takes the buffer, so that a steady stream of requests costs about one
//! `write` (and the wake-up and the sleep around it) per [`LINGER`], not one per request; lines
//! reach the log at most that much later. A batch costs about four system calls, so 10 ms
//! keeps the log at about 0.1 per request from 4,000 requests a second on (measured with
//! `strace -c -f` under `h2load`, which slows the server to about that rate; 2 ms made it
//! 0.33).
//!
//! The shared buffer is bounded ([`CAPACITY`] bytes). When the log cannot keep up and the
//! buffer is full, new lines are **dropped, not waited for**: serving never slows down for the
//! log. The writer counts the dropped lines and reports them in the error log
//! (`access log could not keep up: N line(s) dropped`).
//!
//! Each `write` to a pipe or a terminal carries whole lines and at most `PIPE_BUF` (4096)
//! bytes, so that lines of several worker processes sharing one pipe never interleave; a
//! regular file is opened for appending and gets each batch in one `write`.

use std::cell::RefCell;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rwgi::http::header::{REFERER, USER_AGENT};
use rwgi::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, Version};

use crate::hooks::Ending;

/// How long the writer waits after being woken before it takes the buffered lines.
pub(crate) const LINGER: Duration = Duration::from_millis(10);

/// The most bytes of lines waiting for the writer; beyond that, lines are dropped.
pub(crate) const CAPACITY: usize = 1 << 20;

/// Buffered bytes at which the writer skips its [`LINGER`].
const HIGH_WATER: usize = 64 << 10;

/// The most bytes one `write` to a pipe carries, so that it is atomic (POSIX `PIPE_BUF`).
const PIPE_BUF: usize = 4096;

/// Where a log goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LogTarget {
    /// The process's standard output.
    Stdout,
    /// The process's standard error.
    Stderr,
    /// A file, opened for appending (created when missing) and reopened on `SIGUSR1`.
    File(PathBuf),
}

impl fmt::Display for LogTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogTarget::Stdout | LogTarget::Stderr => f.write_str("-"),
            LogTarget::File(path) => write!(f, "{}", path.display()),
        }
    }
}

impl LogTarget {
    /// Opens the target for writing.
    pub(crate) fn open(&self) -> io::Result<File> {
        match self {
            LogTarget::Stdout => Ok(File::from(io::stdout().as_fd().try_clone_to_owned()?)),
            LogTarget::Stderr => Ok(File::from(io::stderr().as_fd().try_clone_to_owned()?)),
            LogTarget::File(path) => open_append(path),
        }
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// An I/O error's reason without the "(os error N)" suffix, for one-line messages.
pub(crate) fn io_reason(error: &io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// The error log's level, by gunicorn's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogLevel {
    Debug,
    Info,
    Warning,
    Error,
    Critical,
}

impl LogLevel {
    pub(crate) fn parse(text: &str) -> Option<LogLevel> {
        Some(match text.trim().to_ascii_lowercase().as_str() {
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "warning" | "warn" => LogLevel::Warning,
            "error" => LogLevel::Error,
            "critical" => LogLevel::Critical,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warning => "warning",
            LogLevel::Error => "error",
            LogLevel::Critical => "critical",
        }
    }

    fn tracing(self) -> tracing::Level {
        match self {
            LogLevel::Debug => tracing::Level::DEBUG,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Warning => tracing::Level::WARN,
            LogLevel::Error | LogLevel::Critical => tracing::Level::ERROR,
        }
    }
}

/// A file the error log writes to, reopened on `SIGUSR1`.
#[derive(Debug)]
struct ErrorLogFile {
    target: LogTarget,
    file: Mutex<File>,
}

static ERROR_LOG: std::sync::OnceLock<Arc<ErrorLogFile>> = std::sync::OnceLock::new();

/// A writer for one error-log event: writes go to the current file.
struct ErrorLogWriter(Arc<ErrorLogFile>);

impl Write for ErrorLogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        lock(&self.0.file).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Installs the error log as the process's `tracing` subscriber: events at `level` and above
/// go to `target`. Only [`run`](crate::run) does this; an embedding program keeps its own
/// subscriber.
///
/// # Errors
///
/// A one-line message when the file cannot be opened.
pub(crate) fn init_error_log(target: &LogTarget, level: LogLevel) -> Result<(), String> {
    let file = target
        .open()
        .map_err(|error| format!("cannot open {target} (errorlog): {}", io_reason(&error)))?;
    let shared = Arc::new(ErrorLogFile {
        target: target.clone(),
        file: Mutex::new(file),
    });
    let _ = ERROR_LOG.set(Arc::clone(&shared));
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(level.tracing())
        .with_ansi(false)
        .with_target(false)
        .with_writer(move || ErrorLogWriter(Arc::clone(&shared)))
        .finish();
    // A program that installed a subscriber of its own keeps it.
    let _ = tracing::subscriber::set_global_default(subscriber);
    Ok(())
}

/// Reopens the error log's file (after log rotation moved it away).
pub(crate) fn reopen_error_log() {
    if let Some(log) = ERROR_LOG.get() {
        if let LogTarget::File(path) = &log.target {
            match open_append(path) {
                Ok(file) => *lock(&log.file) = file,
                Err(error) => tracing::error!(
                    "cannot reopen the error log {}: {}",
                    path.display(),
                    io_reason(&error)
                ),
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the data consistent, whatever panicked inside it.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One piece of an access-log line.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Atom {
    Text(Box<str>),
    /// `h`: the client's address.
    Remote,
    /// `l`, `u`: `-` (no identd, no user).
    Dash,
    /// `t`: the time, `[10/Oct/2000:13:55:36 +0000]`.
    Time,
    /// `r`: the request line.
    RequestLine,
    /// `m`: the method.
    Method,
    /// `U`: the path, without the query.
    Path,
    /// `q`: the query string.
    Query,
    /// `H`: the protocol.
    Protocol,
    /// `s`: the status.
    Status,
    /// `b`: body bytes sent, `-` for none.
    BytesDash,
    /// `B`: body bytes sent.
    Bytes,
    /// `f`: the Referer header.
    Referer,
    /// `a`: the User-Agent header.
    UserAgent,
    /// `T`: the duration in whole seconds.
    Seconds,
    /// `D`: the duration in microseconds.
    Micros,
    /// `M`: the duration in milliseconds.
    Millis,
    /// `L`: the duration in seconds, with six decimals.
    DecimalSeconds,
    /// `p`: the process id.
    Pid,
    /// `{name}i`: a request header, by its index in the format's list.
    Header(usize),
    /// `e`: how the response ended (`-`, `client-gone`, `failed`, `timed-out`).
    Ending,
}

/// A parsed access-log format: gunicorn's atoms (`%(h)s`, `%({x-request-id}i)s`, ...) with
/// text between them; `%%` is a literal `%`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Format {
    atoms: Vec<Atom>,
    /// The request headers the format names, in the order of their indexes.
    headers: Vec<HeaderName>,
    referer: bool,
    user_agent: bool,
    /// Whether an atom prints the request's duration.
    timed: bool,
    /// Whether this is the default, the Combined Log Format, which has a formatter of its own.
    combined: bool,
}

impl Format {
    /// Parses `text`.
    ///
    /// # Errors
    ///
    /// The reason, like `unknown atom %(zz)s`.
    pub(crate) fn parse(text: &str) -> Result<Format, String> {
        let mut format = Format {
            atoms: Vec::new(),
            headers: Vec::new(),
            referer: false,
            user_agent: false,
            timed: false,
            combined: text == crate::config::DEFAULT_ACCESS_LOG_FORMAT,
        };
        let mut literal = String::new();
        let mut rest = text;
        while let Some(at) = rest.find('%') {
            literal.push_str(&rest[..at]);
            rest = &rest[at..];
            if let Some(after) = rest.strip_prefix("%%") {
                literal.push('%');
                rest = after;
                continue;
            }
            let Some(inner) = rest.strip_prefix("%(") else {
                return Err("a lone % (write %% for a percent sign)".to_owned());
            };
            let Some(end) = inner.find(")s") else {
                return Err(format!("unclosed atom {rest}"));
            };
            let name = &inner[..end];
            let atom = match name {
                "h" => Atom::Remote,
                "l" | "u" => Atom::Dash,
                "t" => Atom::Time,
                "r" => Atom::RequestLine,
                "m" => Atom::Method,
                "U" => Atom::Path,
                "q" => Atom::Query,
                "H" => Atom::Protocol,
                "s" => Atom::Status,
                "b" => Atom::BytesDash,
                "B" => Atom::Bytes,
                "f" => {
                    format.referer = true;
                    Atom::Referer
                }
                "a" => {
                    format.user_agent = true;
                    Atom::UserAgent
                }
                "T" | "D" | "M" | "L" => {
                    format.timed = true;
                    match name {
                        "T" => Atom::Seconds,
                        "D" => Atom::Micros,
                        "M" => Atom::Millis,
                        _ => Atom::DecimalSeconds,
                    }
                }
                "p" => Atom::Pid,
                "e" => Atom::Ending,
                _ => match name
                    .strip_prefix('{')
                    .and_then(|name| name.strip_suffix("}i"))
                    .and_then(|name| HeaderName::from_bytes(name.as_bytes()).ok())
                {
                    Some(header) => {
                        format.headers.push(header);
                        Atom::Header(format.headers.len() - 1)
                    }
                    None => return Err(format!("unknown atom %({name})s")),
                },
            };
            rest = &inner[end + 2..];
            // Atoms that are the same on every line join the text around them: fewer pieces
            // to copy per line.
            match atom {
                Atom::Dash => {
                    literal.push('-');
                    continue;
                }
                Atom::Pid => {
                    literal.push_str(itoa::Buffer::new().format(std::process::id()));
                    continue;
                }
                _ => {}
            }
            if !literal.is_empty() {
                format
                    .atoms
                    .push(Atom::Text(std::mem::take(&mut literal).into()));
            }
            format.atoms.push(atom);
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            format.atoms.push(Atom::Text(literal.into()));
        }
        Ok(format)
    }

    /// Whether a line shows the request's duration (`%(T)s`, `%(D)s`, `%(M)s`, `%(L)s`).
    pub(crate) fn timed(&self) -> bool {
        self.timed
    }
}

/// What the access log and the request hooks need to know about one request, captured when it
/// arrives.
#[derive(Debug)]
pub(crate) struct Record {
    pub(crate) peer: Option<SocketAddr>,
    pub(crate) method: Method,
    pub(crate) target: Uri,
    pub(crate) version: Version,
    /// When the request arrived; `None` when no one needs its duration (reading the clock
    /// costs about as much as formatting a number).
    pub(crate) started: Option<Instant>,
    pub(crate) status: Option<StatusCode>,
    pub(crate) sent: u64,
    pub(crate) ending: Ending,
    pub(crate) referer: Option<HeaderValue>,
    pub(crate) user_agent: Option<HeaderValue>,
    pub(crate) headers: Vec<Option<HeaderValue>>,
}

impl Record {
    /// Captures the request: only the headers `format` names are kept, and the start time only
    /// when `timed`.
    // Inlined into the caller's `Box::new`, the record is built where it is kept: otherwise
    // it is built apart and copied twice (about 65 instructions per request).
    #[inline(always)]
    pub(crate) fn new(
        peer: Option<SocketAddr>,
        method: &Method,
        target: &Uri,
        version: Version,
        headers: &HeaderMap,
        format: Option<&Format>,
        timed: bool,
    ) -> Record {
        let (mut referer, mut user_agent, mut named) = (None, None, Vec::new());
        if let Some(format) = format {
            if format.referer || format.user_agent {
                // One pass over a few fields costs less than hashing two names to look them up.
                // The first value of a name is the one `HeaderMap::get` would give.
                for (name, value) in headers {
                    if *name == REFERER {
                        if format.referer && referer.is_none() {
                            referer = Some(value.clone());
                        }
                    } else if *name == USER_AGENT && format.user_agent && user_agent.is_none() {
                        user_agent = Some(value.clone());
                    }
                }
            }
            if !format.headers.is_empty() {
                named = format
                    .headers
                    .iter()
                    .map(|name| headers.get(name).cloned())
                    .collect();
            }
        }
        Record {
            peer,
            method: method.clone(),
            // A `Uri` clone shares its bytes.
            target: target.clone(),
            version,
            started: timed.then(Instant::now),
            status: None,
            sent: 0,
            ending: Ending::ClientGone,
            referer,
            user_agent,
            headers: named,
        }
    }
}

/// The access log: a format and the buffer its writer thread drains.
#[derive(Debug)]
pub(crate) struct AccessLog {
    format: Format,
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Debug, Default)]
struct State {
    lines: Vec<u8>,
    dropped: u64,
    writer_waiting: bool,
    reopen: bool,
    closed: bool,
}

thread_local! {
    /// The formatted `%(t)s` of the current second on this thread, and until when (by the
    /// monotonic clock) it holds.
    static CLOCK: RefCell<(Option<Instant>, [u8; 28])> = const { RefCell::new((None, [0; 28])) };
    /// The last client address a line was written for on this thread, and its text: a
    /// keep-alive connection (or a proxy in front) sends many requests from one address.
    static REMOTE: RefCell<(Option<IpAddr>, Vec<u8>)> = const { RefCell::new((None, Vec::new())) };
}

impl AccessLog {
    /// Opens `target` and starts the writer thread.
    ///
    /// # Errors
    ///
    /// A one-line message when the target cannot be opened.
    pub(crate) fn start(target: &LogTarget, format: Format) -> Result<AccessLog, String> {
        let file = target
            .open()
            .map_err(|error| format!("cannot open {target} (accesslog): {}", io_reason(&error)))?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let writer = Writer {
            shared: Arc::clone(&shared),
            target: target.clone(),
            limit: write_limit(&file),
            file,
        };
        let writer = std::thread::Builder::new()
            .name("rwgi-access-log".to_owned())
            .spawn(move || writer.run())
            .map_err(|error| format!("cannot start the access log writer: {error}"))?;
        Ok(AccessLog {
            format,
            shared,
            writer: Some(writer),
        })
    }

    /// The format, to capture what it needs from each request.
    pub(crate) fn format(&self) -> &Format {
        &self.format
    }

    /// Logs the line of a finished request. Never blocks on the log's output.
    ///
    /// The line is formatted straight into the shared buffer, under its lock: one copy of
    /// each piece, and the lock is held for a few hundred instructions (the writer holds it
    /// only to swap buffers). A line that does not fit is taken back out and counted as
    /// dropped.
    pub(crate) fn log(&self, record: &Record, duration: Duration) {
        let mut state = lock(&self.shared.state);
        let start = state.lines.len();
        self.format_line(&mut state.lines, record, duration);
        if state.lines.len() > CAPACITY {
            state.lines.truncate(start);
            state.dropped += 1;
            return;
        }
        if state.writer_waiting {
            state.writer_waiting = false;
            drop(state);
            self.shared.wake.notify_one();
        }
    }

    /// Asks the writer to reopen a log file (`SIGUSR1`).
    pub(crate) fn reopen(&self) {
        lock(&self.shared.state).reopen = true;
        self.shared.wake.notify_one();
    }

    fn format_line(&self, out: &mut Vec<u8>, record: &Record, duration: Duration) {
        if self.format.combined {
            write_combined(out, record);
            return;
        }
        for atom in &self.format.atoms {
            match atom {
                Atom::Text(text) => put(out, text.as_bytes()),
                Atom::Remote => match record.peer {
                    Some(peer) => write_remote(out, peer.ip()),
                    None => out.push(b'-'),
                },
                Atom::Dash => out.push(b'-'),
                Atom::Time => write_time(out),
                Atom::RequestLine => {
                    put(out, record.method.as_str().as_bytes());
                    out.push(b' ');
                    write_target(out, &record.target);
                    out.push(b' ');
                    put(out, protocol(record.version));
                }
                Atom::Method => put(out, record.method.as_str().as_bytes()),
                Atom::Path => escape(out, record.target.path().as_bytes()),
                Atom::Query => escape(out, record.target.query().unwrap_or("").as_bytes()),
                Atom::Protocol => put(out, protocol(record.version)),
                Atom::Status => match record.status {
                    Some(status) => put(out, status.as_str().as_bytes()),
                    None => out.push(b'-'),
                },
                Atom::BytesDash if record.sent == 0 => out.push(b'-'),
                Atom::BytesDash | Atom::Bytes => write_number(out, record.sent),
                Atom::Referer => write_header(out, record.referer.as_ref()),
                Atom::UserAgent => write_header(out, record.user_agent.as_ref()),
                Atom::Header(index) => {
                    write_header(out, record.headers.get(*index).and_then(Option::as_ref));
                }
                Atom::Seconds => write_number(out, duration.as_secs()),
                Atom::Micros => write_number(out, duration.as_micros() as u64),
                Atom::Millis => write_number(out, duration.as_millis() as u64),
                Atom::DecimalSeconds => {
                    write_number(out, duration.as_secs());
                    out.push(b'.');
                    let micros = duration.subsec_micros();
                    let mut digits = itoa::Buffer::new();
                    let digits = digits.format(micros);
                    out.extend(std::iter::repeat(b'0').take(6 - digits.len()));
                    out.extend_from_slice(digits.as_bytes());
                }
                Atom::Pid => write_number(out, u64::from(std::process::id())),
                Atom::Ending => out.extend_from_slice(match record.ending {
                    Ending::Completed => b"-",
                    Ending::ClientGone => b"client-gone",
                    Ending::Failed => b"failed",
                    Ending::TimedOut => b"timed-out",
                    // An ending added in a later version of rwgi.
                    _ => b"other",
                }),
            }
        }
        out.push(b'\n');
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        lock(&self.shared.state).closed = true;
        self.shared.wake.notify_one();
        if let Some(writer) = self.writer.take() {
            // The writer writes what is left, then ends.
            let _ = writer.join();
        }
    }
}

/// Writes `record`'s line in the Combined Log Format, the default: the same line as the atoms
/// of [`config::DEFAULT_ACCESS_LOG_FORMAT`](crate::config::DEFAULT_ACCESS_LOG_FORMAT) give,
/// written out. With no atom to dispatch on and the text between fields of known length
/// (copied inline, not by a call), it costs about 200 instructions less per line.
fn write_combined(out: &mut Vec<u8>, record: &Record) {
    match record.peer {
        Some(peer) => write_remote(out, peer.ip()),
        None => out.push(b'-'),
    }
    out.extend_from_slice(b" - - ");
    write_time(out);
    out.extend_from_slice(b" \"");
    put(out, record.method.as_str().as_bytes());
    out.push(b' ');
    write_target(out, &record.target);
    out.push(b' ');
    put(out, protocol(record.version));
    out.extend_from_slice(b"\" ");
    match record.status {
        Some(status) => put(out, status.as_str().as_bytes()),
        None => out.push(b'-'),
    }
    out.push(b' ');
    match record.sent {
        0 => out.push(b'-'),
        sent => write_number(out, sent),
    }
    out.extend_from_slice(b" \"");
    write_header(out, record.referer.as_ref());
    out.extend_from_slice(b"\" \"");
    write_header(out, record.user_agent.as_ref());
    out.extend_from_slice(b"\"\n");
}

fn protocol(version: Version) -> &'static [u8] {
    match version {
        Version::HTTP_09 => b"HTTP/0.9",
        Version::HTTP_10 => b"HTTP/1.0",
        Version::HTTP_2 => b"HTTP/2.0",
        Version::HTTP_3 => b"HTTP/3.0",
        _ => b"HTTP/1.1",
    }
}

fn write_number(out: &mut Vec<u8>, number: u64) {
    put(out, itoa::Buffer::new().format(number).as_bytes());
}

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(bytes);
}

/// Writes the client's address, formatted once for a run of lines from the same address.
#[inline(always)]
fn write_remote(out: &mut Vec<u8>, ip: IpAddr) {
    REMOTE.with(|remote| {
        let mut remote = remote.borrow_mut();
        if remote.0 != Some(ip) {
            remote.1.clear();
            write_ip(&mut remote.1, ip);
            remote.0 = Some(ip);
        }
        put(out, &remote.1);
    });
}

fn write_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(ip) => {
            for (n, octet) in ip.octets().into_iter().enumerate() {
                if n > 0 {
                    out.push(b'.');
                }
                put(out, itoa::Buffer::new().format(octet).as_bytes());
            }
        }
        IpAddr::V6(ip) => {
            let _ = write!(out, "{ip}");
        }
    }
}

#[inline(always)]
fn write_target(out: &mut Vec<u8>, target: &Uri) {
    match target.path_and_query() {
        // Origin form, the usual case.
        Some(path) if target.scheme().is_none() => escape(out, path.as_str().as_bytes()),
        _ => escape(out, target.to_string().as_bytes()),
    }
}

#[inline(always)]
fn write_header(out: &mut Vec<u8>, value: Option<&HeaderValue>) {
    match value {
        Some(value) => escape(out, value.as_bytes()),
        None => out.push(b'-'),
    }
}

/// Copies `bytes`, escaping what could break the line or forge a field: quotes, backslashes,
/// control characters and bytes above ASCII become `\xNN` (as Apache does).
#[inline]
fn escape(out: &mut Vec<u8>, bytes: &[u8]) {
    // The check is small enough to inline; escaping is rare and stays out of line.
    if is_plain(bytes) {
        put(out, bytes);
    } else {
        escape_each(out, bytes);
    }
}

#[cold]
#[inline(never)]
fn escape_each(out: &mut Vec<u8>, bytes: &[u8]) {
    for &byte in bytes {
        if is_plain_byte(byte) {
            out.push(byte);
        } else {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[
                b'\\',
                b'x',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 15)],
            ]);
        }
    }
}

fn is_plain_byte(byte: u8) -> bool {
    (0x20..0x7f).contains(&byte) && byte != b'"' && byte != b'\\'
}

/// Whether every byte is printable ASCII other than `"` and `\`, eight bytes at a time.
#[inline]
fn is_plain(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // A byte of `word` is zero (has its high bit set here) when the mask's byte matched.
    let zero_byte = |word: u64| word.wrapping_sub(ONES) & !word & HIGHS;
    let plain_word = |chunk: &[u8]| {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        // Below 0x20: adding 0x60 leaves the high bit clear; 0x7f and above: high bit set
        // after adding 1 (0x7f) or already (0x80..).
        let control = !(word.wrapping_add(0x6060_6060_6060_6060)) & HIGHS & !(word & HIGHS);
        let high = (word | word.wrapping_add(ONES)) & HIGHS;
        let quote = zero_byte(word ^ (ONES * u64::from(b'"')));
        let backslash = zero_byte(word ^ (ONES * u64::from(b'\\')));
        control | high | quote | backslash == 0
    };
    let mut chunks = bytes.chunks_exact(8);
    if !chunks.all(plain_word) {
        return false;
    }
    match chunks.remainder() {
        [] => true,
        // The last eight bytes, overlapping the words already checked: one more word.
        _ if bytes.len() >= 8 => plain_word(&bytes[bytes.len() - 8..]),
        rest => rest.iter().all(|&byte| is_plain_byte(byte)),
    }
}

/// Writes `[29/Nov/2026:23:40:00 +0000]` (UTC), formatted once per second per thread.
///
/// The text is kept until the monotonic clock reaches the instant the wall clock turns to the
/// next second: comparing two instants costs less than turning a `SystemTime` into seconds. A
/// step of the wall clock (not its slewing, which both clocks share) shows at that next
/// second at the latest.
#[inline(always)]
fn write_time(out: &mut Vec<u8>) {
    let now = Instant::now();
    CLOCK.with(|clock| {
        let mut clock = clock.borrow_mut();
        if clock.0.map_or(true, |until| now >= until) {
            let since = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let rest = Duration::from_nanos(1_000_000_000 - u64::from(since.subsec_nanos()));
            *clock = (Some(now + rest), format_time(since.as_secs()));
        }
        out.extend_from_slice(&clock.1);
    });
}

fn format_time(seconds: u64) -> [u8; 28] {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = seconds / 86_400;
    let time = seconds % 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    let text = format!(
        "[{day:02}/{}/{year:04}:{:02}:{:02}:{:02} +0000]",
        MONTHS[(month - 1) as usize],
        time / 3600,
        time / 60 % 60,
        time % 60
    );
    let mut bytes = [b' '; 28];
    let len = text.len().min(28);
    bytes[..len].copy_from_slice(&text.as_bytes()[..len]);
    bytes
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The most one `write` may carry to this file: whole lines up to `PIPE_BUF` for anything but
/// a regular file.
fn write_limit(file: &File) -> Option<usize> {
    match file.metadata() {
        Ok(meta) if meta.is_file() => None,
        _ => Some(PIPE_BUF),
    }
}

/// The access log's writer thread.
struct Writer {
    shared: Arc<Shared>,
    target: LogTarget,
    file: File,
    limit: Option<usize>,
}

impl Writer {
    fn run(mut self) {
        let mut batch = Vec::with_capacity(HIGH_WATER);
        loop {
            let mut state = lock(&self.shared.state);
            while state.lines.is_empty() && !state.closed && !state.reopen {
                state.writer_waiting = true;
                state = self
                    .shared
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            let finish = state.closed;
            if !finish && state.lines.len() < HIGH_WATER && !state.reopen {
                // Let more lines gather, so that one write carries them.
                drop(state);
                std::thread::sleep(LINGER);
                state = lock(&self.shared.state);
            }
            std::mem::swap(&mut state.lines, &mut batch);
            let dropped = std::mem::take(&mut state.dropped);
            let reopen = std::mem::take(&mut state.reopen);
            let closed = state.closed;
            drop(state);
            if reopen {
                self.reopen();
            }
            self.write(&batch);
            batch.clear();
            if batch.capacity() > 4 * HIGH_WATER {
                batch.shrink_to(HIGH_WATER);
            }
            if dropped > 0 {
                tracing::warn!("access log could not keep up: {dropped} line(s) dropped");
            }
            if closed && lock(&self.shared.state).lines.is_empty() {
                return;
            }
        }
    }

    fn reopen(&mut self) {
        if let LogTarget::File(path) = &self.target {
            match open_append(path) {
                Ok(file) => self.file = file,
                Err(error) => tracing::error!(
                    "cannot reopen the access log {}: {}",
                    path.display(),
                    io_reason(&error)
                ),
            }
        }
    }

    fn write(&mut self, mut batch: &[u8]) {
        while !batch.is_empty() {
            let take = chunk_len(batch, self.limit);
            if let Err(error) = self.file.write_all(&batch[..take]) {
                // Nothing better to do with the lines than to say they are lost.
                tracing::error!("cannot write the access log: {}", io_reason(&error));
                return;
            }
            batch = &batch[take..];
        }
    }
}

/// How much of `batch` the next `write` carries: all of it, or whole lines up to `limit` (a
/// longer line goes alone).
fn chunk_len(batch: &[u8], limit: Option<usize>) -> usize {
    match limit {
        Some(limit) if batch.len() > limit => {
            match batch[..limit].iter().rposition(|&byte| byte == b'\n') {
                Some(end) => end + 1,
                None => batch
                    .iter()
                    .position(|&byte| byte == b'\n')
                    .map_or(batch.len(), |end| end + 1),
            }
        }
        _ => batch.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        let mut headers = HeaderMap::new();
        headers.insert(REFERER, HeaderValue::from_static("http://a/\"x\""));
        headers.insert(USER_AGENT, HeaderValue::from_static("curl/8"));
        headers.insert("x-id", HeaderValue::from_static("42"));
        let format = Format::parse(DEFAULT_WITH_ID).unwrap();
        let mut record = Record::new(
            Some("10.0.0.1:5000".parse().unwrap()),
            &Method::GET,
            &"/a%20b?q=1".parse().unwrap(),
            Version::HTTP_11,
            &headers,
            Some(&format),
            true,
        );
        record.status = Some(StatusCode::OK);
        record.sent = 14;
        record
    }

    const DEFAULT_WITH_ID: &str = concat!(
        r#"%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s""#,
        r#" %({x-id}i)s %(D)s %(M)s %(L)s %(T)s %(m)s %(U)s %(q)s %(H)s %(B)s %(e)s 100%%"#
    );

    fn line(format: &str, record: &Record, duration: Duration) -> String {
        let log = AccessLog {
            format: Format::parse(format).unwrap(),
            shared: Arc::new(Shared {
                state: Mutex::default(),
                wake: Condvar::new(),
            }),
            writer: None,
        };
        let mut out = Vec::new();
        log.format_line(&mut out, record, duration);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn atoms_are_gunicorns() {
        let record = record();
        let text = line(DEFAULT_WITH_ID, &record, Duration::from_micros(1_234_567));
        let (start, rest) = text.split_once(" [").unwrap();
        assert_eq!(start, "10.0.0.1 - -");
        let (_, rest) = rest.split_once("] ").unwrap();
        assert_eq!(
            rest,
            "\"GET /a%20b?q=1 HTTP/1.1\" 200 14 \"http://a/\\x22x\\x22\" \"curl/8\" 42 \
             1234567 1234 1.234567 1 GET /a%20b q=1 HTTP/1.1 14 client-gone 100%\n"
        );
    }

    #[test]
    fn the_word_check_agrees_with_the_byte_check() {
        for byte in 0..=255u8 {
            for at in 0..8 {
                let mut bytes = *b"abcdefgh";
                bytes[at] = byte;
                assert_eq!(
                    is_plain(&bytes),
                    is_plain_byte(byte),
                    "byte {byte:#x} at {at}"
                );
            }
        }
        assert!(is_plain(b"Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101"));
        assert!(!is_plain(
            b"Mozilla/5.0 (X11; Linux x86_64) Gecko/2010010\x7f"
        ));
        for len in 0..40 {
            let text = vec![b'a'; len];
            assert!(is_plain(&text));
            for at in 0..len {
                let mut bad = text.clone();
                bad[at] = b'"';
                assert!(!is_plain(&bad), "a quote at {at} of {len}");
            }
        }
    }

    #[test]
    fn the_remembered_address_follows_the_client() {
        let mut out = Vec::new();
        for ip in [
            "10.0.0.1",
            "::1",
            "10.0.0.1",
            "192.168.100.255",
            "192.168.100.255",
        ] {
            out.clear();
            write_remote(&mut out, ip.parse().unwrap());
            assert_eq!(out, ip.as_bytes());
        }
    }

    #[test]
    fn the_first_value_of_a_field_is_logged() {
        let mut headers = HeaderMap::new();
        headers.append(USER_AGENT, HeaderValue::from_static("first"));
        headers.append(USER_AGENT, HeaderValue::from_static("second"));
        headers.append(REFERER, HeaderValue::from_static("r1"));
        headers.append(REFERER, HeaderValue::from_static("r2"));
        let format = Format::parse(r#""%(f)s" "%(a)s""#).unwrap();
        let record = Record::new(
            None,
            &Method::GET,
            &"/".parse().unwrap(),
            Version::HTTP_11,
            &headers,
            Some(&format),
            false,
        );
        assert_eq!(
            line(r#""%(f)s" "%(a)s" %(h)s"#, &record, Duration::ZERO),
            "\"r1\" \"first\" -\n"
        );
    }

    #[test]
    fn the_remembered_time_is_the_current_second() {
        for _ in 0..3 {
            let before = unix_now();
            let mut out = Vec::new();
            write_time(&mut out);
            let after = unix_now();
            assert!(out == format_time(before) || out == format_time(after));
            std::thread::sleep(Duration::from_millis(400));
        }
    }

    fn unix_now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn the_combined_formatter_writes_what_the_atoms_do() {
        let combined = crate::config::DEFAULT_ACCESS_LOG_FORMAT;
        // The same atoms, parsed from a different text: the general path.
        let general = combined.replace("%(l)s", "%(u)s");
        assert!(Format::parse(combined).unwrap().combined);
        assert!(!Format::parse(&general).unwrap().combined);
        let mut records = vec![record()];
        let mut headers = HeaderMap::new();
        headers.insert(
            USER_AGENT,
            HeaderValue::from_bytes(b"a\"b\\c\t\xff").unwrap(),
        );
        let format = Format::parse(combined).unwrap();
        for (peer, target, version) in [
            (None, "/", Version::HTTP_10),
            (Some("[::1]:80"), "/x?y=%22", Version::HTTP_2),
            (Some("1.2.3.4:5"), "http://h/p%22", Version::HTTP_11),
        ] {
            let mut record = Record::new(
                peer.map(|peer| peer.parse().unwrap()),
                &Method::POST,
                &target.parse().unwrap(),
                version,
                &headers,
                Some(&format),
                false,
            );
            record.sent = 12_345;
            records.push(record);
        }
        for record in &records {
            let fast = line(combined, record, Duration::ZERO);
            assert_eq!(fast, line(&general, record, Duration::ZERO));
            assert!(fast.ends_with("\n") && fast.matches('\n').count() == 1);
        }
    }

    #[test]
    fn a_line_that_does_not_fit_is_dropped_whole_and_counted() {
        let log = AccessLog {
            format: Format::parse("%(m)s %(s)s").unwrap(),
            shared: Arc::new(Shared {
                state: Mutex::default(),
                wake: Condvar::new(),
            }),
            writer: None,
        };
        let record = record();
        // "GET 200\n" is 8 bytes: room for one more line, then none.
        lock(&log.shared.state).lines = vec![b'x'; CAPACITY - 12];
        log.log(&record, Duration::ZERO);
        log.log(&record, Duration::ZERO);
        let state = lock(&log.shared.state);
        assert_eq!(state.lines.len(), CAPACITY - 4);
        assert!(state.lines.ends_with(b"xGET 200\n"));
        assert_eq!(state.dropped, 1);
    }

    #[test]
    fn time_is_clf() {
        assert_eq!(&format_time(0), b"[01/Jan/1970:00:00:00 +0000]");
        assert_eq!(&format_time(1_795_910_400), b"[29/Nov/2026:00:00:00 +0000]");
        assert_eq!(
            &format_time(951_782_400 + 3661),
            b"[29/Feb/2000:01:01:01 +0000]"
        );
    }

    #[test]
    fn bad_formats_are_explained() {
        assert_eq!(Format::parse("%(zz)s").unwrap_err(), "unknown atom %(zz)s");
        assert_eq!(Format::parse("%(h").unwrap_err(), "unclosed atom %(h");
        assert_eq!(
            Format::parse("50% off").unwrap_err(),
            "a lone % (write %% for a percent sign)"
        );
    }

    #[test]
    fn the_writer_batches_whole_lines_into_the_file_and_flushes_on_drop() {
        let path = std::env::temp_dir().join(format!("rwgi-access-{}.log", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let log = AccessLog::start(
            &LogTarget::File(path.clone()),
            Format::parse("%(m)s %(s)s").unwrap(),
        )
        .unwrap();
        let record = record();
        for _ in 0..1000 {
            log.log(&record, Duration::ZERO);
        }
        drop(log);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1000);
        assert!(text.lines().all(|line| line == "GET 200"));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn pipe_writes_split_at_line_boundaries() {
        let batch: Vec<u8> = (0..600)
            .flat_map(|n| format!("line {n:05}\n").into_bytes())
            .collect();
        let mut rest = &batch[..];
        let mut writes = 0;
        while !rest.is_empty() {
            let take = chunk_len(rest, Some(PIPE_BUF));
            assert!(take <= PIPE_BUF && rest[..take].ends_with(b"\n"));
            rest = &rest[take..];
            writes += 1;
        }
        assert_eq!(writes, 2);
        let long = [vec![b'x'; 5000], b"\nshort\n".to_vec()].concat();
        assert_eq!(chunk_len(&long, Some(PIPE_BUF)), 5001);
        assert_eq!(chunk_len(&long, None), long.len());
    }
}
