//! File bodies (spec §14.9): how the server sends a file range an app answered with.
//!
//! hyper owns the socket, and the socket may be TLS, so `sendfile` is out of reach: the server
//! reads the range itself, in chunks of [`CHUNK`] bytes with positional reads (`pread`) on
//! tokio's blocking pool, never on the threads that poll apps (REQ-FILE-4), one chunk ahead of
//! the one hyper is writing. A file that ends before its range, or a read that fails, is an
//! error of the body, which aborts the response (REQ-FILE-3); the head went out before the first
//! read.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use rwgi::body::Body;
use rwgi::file::FileRange;
use rwgi::Error;
use tokio::task::JoinHandle;

/// The most bytes one read takes.
pub(crate) const CHUNK: usize = 128 * 1024;

/// A file range read on the blocking pool, as a body.
pub(crate) struct FileReader {
    range: Arc<FileRange>,
    /// Bytes of the range yielded so far.
    sent: u64,
    /// Bytes of the range asked of the pool so far (`sent` plus the read in flight).
    asked: u64,
    reading: Option<JoinHandle<io::Result<Bytes>>>,
}

impl FileReader {
    pub(crate) fn new(range: FileRange) -> Self {
        FileReader {
            range: Arc::new(range),
            sent: 0,
            asked: 0,
            reading: None,
        }
    }

    /// Starts reading the next chunk, if any is left.
    fn read_ahead(&mut self) {
        let left = self.range.len() - self.asked;
        if left == 0 {
            return;
        }
        let want = usize::try_from(left).map_or(CHUNK, |left| left.min(CHUNK));
        let range = Arc::clone(&self.range);
        let start = self.asked;
        self.asked += want as u64;
        self.reading = Some(tokio::task::spawn_blocking(move || {
            read_exactly(&range, start, want)
        }));
    }
}

/// `want` bytes of `range` from `start` (within the range), or the error of a file that ends
/// first.
fn read_exactly(range: &FileRange, start: u64, want: usize) -> io::Result<Bytes> {
    let mut chunk = BytesMut::zeroed(want);
    let mut filled = 0;
    while filled < want {
        match range.read_at(&mut chunk[filled..], range.offset() + start + filled as u64) {
            Ok(0) => {
                let short = range.len() - start - filled as u64;
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "the file ended {short} bytes short of the {} of its range (REQ-FILE-3)",
                        range.len()
                    ),
                ));
            }
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(chunk.freeze())
}

impl Stream for FileReader {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.reading.is_none() {
            this.read_ahead();
        }
        let Some(reading) = this.reading.as_mut() else {
            return Poll::Ready(None);
        };
        let read = ready!(Pin::new(reading).poll(cx));
        this.reading = None;
        let item = match read {
            Ok(Ok(chunk)) => {
                this.sent += chunk.len() as u64;
                // The next read runs while hyper writes this chunk.
                this.read_ahead();
                Ok(chunk)
            }
            Ok(Err(error)) => Err(Error::new(error)),
            Err(join) => Err(Error::msg(format!("reading the file failed: {join}"))),
        };
        if item.is_err() {
            // Nothing more after an error: the response is aborted.
            this.asked = this.range.len();
            this.sent = this.range.len();
        }
        Poll::Ready(Some(item))
    }
}

impl Body for FileReader {
    fn content_length(&self) -> Option<u64> {
        Some(self.range.len() - self.sent)
    }
}
