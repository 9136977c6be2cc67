//! File bodies (spec §14.9): a response body that is a file, or a byte range of one, which a
//! server may send its own way.
//!
//! An app answers with a [`FileBody`] made from a [`FileRange`]: an open [`std::fs::File`], an
//! offset and a length. Every server can send it, because a `FileBody` is an ordinary
//! [`Body`]; a server that declares file bodies ([`ServerInfo::has_file_bodies`]) takes the
//! range out of the body with [`Body::take_file`] before polling it, and sends the bytes without
//! its async threads reading them: with `sendfile`, or with reads on threads of its own
//! (REQ-FILE-2, REQ-FILE-4).
//!
//! # Negotiation and fallback
//!
//! A server declares the extension in its [`ServerInfo`]: [`ServerInfo::file_bodies`], read
//! back with [`Environ::server`](crate::Environ::server)`().has_file_bodies()`. It is a fact
//! about the server, like `multithread`, so it costs nothing per request (a typed value in
//! each environ's extensions would cost an allocation per request).
//!
//! When a server does not declare it, an app may still answer with a `FileBody` (REQ-FILE-5):
//! the server polls it as a stream, and the body then reads the file itself, in blocking reads
//! of at most [`FileBody::CHUNK`] bytes on the thread that polls it. That is what a
//! runtime-agnostic app (such as a static-file middleware) can do anyway; an app on a runtime
//! with a blocking pool that cannot accept reads on its async threads (large files on a slow
//! disk) checks `has_file_bodies()` and otherwise streams the file from that pool.
//!
//! ```
//! use std::io::Write;
//! use rwgi::body::Body;
//! use rwgi::file::{FileBody, FileRange};
//!
//! # let path = std::env::temp_dir().join(format!("rwgi-file-doc-{}", std::process::id()));
//! # std::fs::File::create(&path).unwrap().write_all(b"0123456789").unwrap();
//! let file = std::fs::File::open(&path)?;
//! // Bytes 2 to 5 (four of them), as a `206` answer to `Range: bytes=2-5` would send.
//! let body = FileBody::new(FileRange::new(file, 2, 4)?);
//! assert_eq!(body.content_length(), Some(4));
//!
//! // A server that declares file bodies takes the range out and sends it its own way.
//! let mut body = body;
//! let range = std::pin::Pin::new(&mut body).take_file().unwrap();
//! assert_eq!((range.offset(), range.len()), (2, 4));
//! assert_eq!(body.content_length(), Some(0), "nothing is left to poll");
//! # std::fs::remove_file(&path).unwrap();
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fmt;
use std::fs::File;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;

use crate::body::Body;
#[cfg(doc)]
use crate::environ::ServerInfo;
use crate::Error;

/// A byte range of an open file: what a file body hands a server (REQ-FILE-1).
///
/// [`FileRange::new`] checks that the range lies within the file as it is then; a file that
/// shrinks afterwards makes whoever reads it come up short, which a server turns into an
/// aborted response (REQ-FILE-3).
///
/// ```
/// # use std::io::Write;
/// use rwgi::file::FileRange;
///
/// # let path = std::env::temp_dir().join(format!("rwgi-range-doc-{}", std::process::id()));
/// # std::fs::File::create(&path).unwrap().write_all(b"hello").unwrap();
/// let whole = FileRange::whole(std::fs::File::open(&path)?)?;
/// assert_eq!((whole.offset(), whole.len()), (0, 5));
///
/// let past_the_end = FileRange::new(std::fs::File::open(&path)?, 3, 10);
/// assert_eq!(past_the_end.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
/// # std::fs::remove_file(&path).unwrap();
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct FileRange {
    file: File,
    offset: u64,
    len: u64,
}

impl FileRange {
    /// The `len` bytes of `file` from `offset` on.
    ///
    /// # Errors
    ///
    /// When the file's metadata cannot be read, when it is not a regular file, or when the
    /// range reaches past the file's end (`InvalidInput`).
    pub fn new(file: File, offset: u64, len: u64) -> io::Result<Self> {
        let metadata = file.metadata()?;
        if !metadata.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a file range must be of a regular file",
            ));
        }
        let size = metadata.len();
        if offset.checked_add(len).map_or(true, |end| end > size) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the range of {len} bytes from {offset} reaches past the file's {size}"),
            ));
        }
        Ok(FileRange { file, offset, len })
    }

    /// The whole of `file`, as long as it is now.
    ///
    /// # Errors
    ///
    /// As [`FileRange::new`].
    pub fn whole(file: File) -> io::Result<Self> {
        let len = file.metadata()?.len();
        FileRange::new(file, 0, len)
    }

    /// The open file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Where the range starts in the file.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// How many bytes the range has.
    #[allow(clippy::len_without_is_empty)] // `is_empty` is there; clippy wants it on `len`'s type
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the range has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The file, the offset and the length.
    pub fn into_parts(self) -> (File, u64, u64) {
        (self.file, self.offset, self.len)
    }

    /// Reads up to `buf.len()` bytes at `position` of the file (not of the range), without
    /// using or moving the file's cursor where the platform allows (`pread` on Unix). A
    /// blocking call: a server makes it off its async threads.
    ///
    /// # Errors
    ///
    /// The read's error.
    pub fn read_at(&self, buf: &mut [u8], position: u64) -> io::Result<usize> {
        read_at(&self.file, buf, position)
    }
}

impl fmt::Debug for FileRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileRange")
            .field("offset", &self.offset)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], position: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, position)
}

#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], position: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, position)
}

#[cfg(not(any(unix, windows)))]
fn read_at(mut file: &File, buf: &mut [u8], position: u64) -> io::Result<usize> {
    use std::io::{Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(position))?;
    file.read(buf)
}

/// A response body that is a file range (§14.9).
///
/// A server that declares file bodies takes the range out with [`Body::take_file`] and sends
/// it its own way. Polled as a stream (by any other server, or by middleware that changes the
/// bytes), it reads the range in blocking reads of at most [`FileBody::CHUNK`] bytes on the
/// polling thread (REQ-FILE-5), and fails when the file ends before the range does.
///
/// ```
/// # use std::io::Write;
/// use rwgi::body::BodyExt;
/// use rwgi::file::FileBody;
///
/// # let path = std::env::temp_dir().join(format!("rwgi-filebody-doc-{}", std::process::id()));
/// # std::fs::File::create(&path).unwrap().write_all(b"hello").unwrap();
/// # futures_executor::block_on(async {
/// let mut body = FileBody::open(&path)?;
/// assert_eq!(body.chunk().await.unwrap().unwrap(), "hello");
/// assert!(body.chunk().await.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # std::fs::remove_file(&path).unwrap();
/// ```
pub struct FileBody {
    range: Option<FileRange>,
    /// Bytes of the range already yielded.
    read: u64,
}

impl FileBody {
    /// The most bytes one poll reads when the body is polled as a stream.
    pub const CHUNK: usize = 64 * 1024;

    /// A body of the bytes of `range`.
    pub fn new(range: FileRange) -> Self {
        FileBody {
            range: Some(range),
            read: 0,
        }
    }

    /// A body of the whole file at `path`: opens it and reads its length, blocking calls.
    ///
    /// # Errors
    ///
    /// When the file cannot be opened, or is not a regular file.
    pub fn open(path: impl AsRef<std::path::Path>) -> io::Result<Self> {
        Ok(FileBody::new(FileRange::whole(File::open(path)?)?))
    }

    fn remaining(&self) -> u64 {
        self.range.as_ref().map_or(0, |range| range.len - self.read)
    }
}

impl fmt::Debug for FileBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileBody")
            .field("range", &self.range)
            .field("read", &self.read)
            .finish()
    }
}

impl Stream for FileBody {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(range) = this.range.as_ref() else {
            return Poll::Ready(None);
        };
        let left = range.len - this.read;
        if left == 0 {
            this.range = None;
            return Poll::Ready(None);
        }
        let want = usize::try_from(left).map_or(FileBody::CHUNK, |left| left.min(FileBody::CHUNK));
        let mut chunk = BytesMut::zeroed(want);
        let position = range.offset + this.read;
        let result = loop {
            match range.read_at(&mut chunk, position) {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let item = match result {
            Ok(0) => {
                let short = left;
                Err(Error::new(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "the file ended {short} bytes short of the {} of its range",
                        range.len
                    ),
                )))
            }
            Ok(n) => {
                chunk.truncate(n);
                this.read += n as u64;
                Ok(chunk.freeze())
            }
            Err(error) => Err(Error::new(error)),
        };
        if item.is_err() {
            // Fused: an error ends the body.
            this.range = None;
        }
        Poll::Ready(Some(item))
    }
}

impl Body for FileBody {
    fn content_length(&self) -> Option<u64> {
        Some(self.remaining())
    }

    /// The part of the range not yet yielded (all of it before the first poll); the body is
    /// then empty.
    fn take_file(mut self: Pin<&mut Self>) -> Option<FileRange> {
        let this = &mut *self;
        let mut range = this.range.take()?;
        range.offset += this.read;
        range.len -= this.read;
        this.read = 0;
        Some(range)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::body::tests::collect;
    use std::io::Write;
    use std::path::PathBuf;

    /// A temporary file with `bytes`, removed on drop.
    pub(crate) struct Temp(pub(crate) PathBuf);

    impl Temp {
        pub(crate) fn new(name: &str, bytes: &[u8]) -> Temp {
            let path = std::env::temp_dir().join(format!(
                "rwgi-file-{name}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            File::create(&path).unwrap().write_all(bytes).unwrap();
            Temp(path)
        }

        pub(crate) fn open(&self) -> File {
            File::open(&self.0).unwrap()
        }
    }

    impl Drop for Temp {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn a_range_streams_exactly_its_bytes_in_bounded_chunks() {
        let bytes = pattern(200_000);
        let temp = Temp::new("range", &bytes);
        let body = FileBody::new(FileRange::new(temp.open(), 1000, 150_000).unwrap());
        assert_eq!(body.content_length(), Some(150_000));
        let chunks = collect(body).unwrap();
        assert!(chunks.iter().all(|chunk| chunk.len() <= FileBody::CHUNK));
        assert_eq!(chunks.concat(), &bytes[1000..151_000]);
    }

    #[test]
    fn ranges_past_the_end_and_non_files_are_refused() {
        let temp = Temp::new("bounds", b"abc");
        assert!(FileRange::new(temp.open(), 0, 3).is_ok());
        assert!(FileRange::new(temp.open(), 3, 0).is_ok());
        for (offset, len) in [(0, 4), (4, 0), (u64::MAX, 2)] {
            let error = FileRange::new(temp.open(), offset, len).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{offset} {len}");
        }
        let dir = File::open(std::env::temp_dir()).unwrap();
        assert!(FileRange::whole(dir).is_err());
    }

    #[test]
    fn a_file_that_shrank_fails_instead_of_ending_short() {
        let temp = Temp::new("shrank", &pattern(1000));
        let body = FileBody::new(FileRange::whole(temp.open()).unwrap());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&temp.0)
            .unwrap()
            .set_len(400)
            .unwrap();
        let error = collect(body).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the file ended 600 bytes short of the 1000 of its range"
        );
    }

    #[test]
    fn take_file_hands_out_what_is_left_once() {
        let temp = Temp::new("take", &pattern(100_000));
        let mut body = FileBody::new(FileRange::new(temp.open(), 10, 90_000).unwrap());
        let waker = crate::body::tests::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let first = match Pin::new(&mut body).poll_next(&mut cx) {
            Poll::Ready(Some(Ok(chunk))) => chunk.len() as u64,
            other => panic!("{other:?}"),
        };
        let range = Pin::new(&mut body).take_file().unwrap();
        assert_eq!((range.offset(), range.len()), (10 + first, 90_000 - first));
        assert_eq!(body.content_length(), Some(0));
        assert!(Pin::new(&mut body).take_file().is_none());
        assert!(collect(body).unwrap().is_empty());
        let mut buf = [0; 4];
        assert_eq!(range.read_at(&mut buf, 2).unwrap(), 4);
        assert_eq!(buf, [2, 3, 4, 5]);
        assert!(format!("{range:?}").starts_with("FileRange { offset: "));
    }

    #[test]
    fn an_empty_range_ends_at_once() {
        let temp = Temp::new("empty", b"x");
        let body = FileBody::new(FileRange::new(temp.open(), 1, 0).unwrap());
        assert_eq!(body.content_length(), Some(0));
        assert!(collect(body).unwrap().is_empty());
    }
}
