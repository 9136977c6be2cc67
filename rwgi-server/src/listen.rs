//! Where the server listens: parsing `bind` addresses, binding them once, and adopting sockets
//! that another process (systemd, a supervisor, the master process) opened.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener, ToSocketAddrs};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener as StdUnixListener;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use socket2::{Domain, Socket, Type};

/// One address to listen on, as the `bind` setting spells it.
///
/// | spelling | meaning |
/// |---|---|
/// | `127.0.0.1:8000`, `localhost:8000`, `[::1]:8000` | TCP on that host and port (`0` picks a free port) |
/// | `[::]:8000` | TCP on every IPv6 and (where the system allows) IPv4 address |
/// | `:8000` | TCP on every IPv4 address (`0.0.0.0:8000`) |
/// | `unix:/run/app.sock` | a Unix domain socket at that path |
/// | `fd://3` | a listening socket the parent process left open as descriptor 3 |
/// | `systemd` | every socket systemd passed (`LISTEN_FDS`, socket activation) |
///
/// ```
/// use rwgi_server::Bind;
///
/// let bind: Bind = "unix:/run/app.sock".parse().unwrap();
/// assert_eq!(bind.to_string(), "unix:/run/app.sock");
/// assert!("8000".parse::<Bind>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Bind {
    /// A TCP `host:port`; port `0` picks a free port.
    Tcp(String),
    /// A Unix domain socket at this path.
    Unix(PathBuf),
    /// A listening socket inherited as this file descriptor (`fd://N`).
    Fd(u32),
    /// Every socket passed by systemd socket activation (`LISTEN_FDS`).
    Systemd,
}

/// Why a `bind` value could not be parsed: the reason, for the one-line error.
///
/// ```
/// let error = "unix:".parse::<rwgi_server::Bind>().unwrap_err();
/// assert_eq!(error.to_string(), "unix: needs a socket path");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindParseError(&'static str);

impl fmt::Display for BindParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for BindParseError {}

impl FromStr for Bind {
    type Err = BindParseError;

    fn from_str(value: &str) -> Result<Bind, BindParseError> {
        const EXPECTED: &str = "expected host:port, [::]:port, unix:PATH, fd://N or systemd";
        if value == "systemd" {
            return Ok(Bind::Systemd);
        }
        if let Some(path) = value.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(BindParseError("unix: needs a socket path"));
            }
            return Ok(Bind::Unix(PathBuf::from(path)));
        }
        if let Some(fd) = value.strip_prefix("fd://") {
            return match fd.parse::<u32>() {
                Ok(fd) if fd >= 3 => Ok(Bind::Fd(fd)),
                Ok(_) => Err(BindParseError(
                    "fd://N needs a descriptor of 3 or more (0-2 are standard streams)",
                )),
                Err(_) => Err(BindParseError(EXPECTED)),
            };
        }
        match value.rsplit_once(':') {
            Some((host, port)) if port.parse::<u16>().is_ok() => {
                if host.is_empty() {
                    Ok(Bind::Tcp(format!("0.0.0.0:{port}")))
                } else if host.starts_with('[') != host.ends_with(']') {
                    Err(BindParseError(EXPECTED))
                } else {
                    Ok(Bind::Tcp(value.to_owned()))
                }
            }
            _ => Err(BindParseError(EXPECTED)),
        }
    }
}

impl fmt::Display for Bind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bind::Tcp(address) => f.write_str(address),
            Bind::Unix(path) => write!(f, "unix:{}", path.display()),
            Bind::Fd(fd) => write!(f, "fd://{fd}"),
            Bind::Systemd => f.write_str("systemd"),
        }
    }
}

/// A bound listening socket, not yet attached to a runtime.
///
/// The master process binds every address once and hands the sockets to its workers; a worker
/// adopts them with [`Listener::from_inherited`].
#[derive(Debug)]
pub(crate) enum Listener {
    /// A TCP listener.
    Tcp(StdTcpListener),
    /// A Unix socket listener and, when this process created the socket file, its path (removed
    /// when the listener is dropped in the process that bound it).
    Unix(StdUnixListener, Option<SocketFile>),
}

/// A socket file this process created, removed when dropped.
#[derive(Debug)]
pub(crate) struct SocketFile {
    path: PathBuf,
    owner: u32,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        // Only the process that bound the socket removes it: a worker that inherited the
        // listener must not take the file away from its siblings.
        if std::process::id() == self.owner {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Listener {
    /// Adopts a listening socket inherited from another process, telling TCP from Unix by the
    /// socket's address family.
    ///
    /// # Errors
    ///
    /// When the descriptor is not a listening stream socket of either family.
    pub(crate) fn from_inherited(fd: OwnedFd) -> io::Result<Listener> {
        let socket = Socket::from(fd);
        if socket.r#type()? != Type::STREAM {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the inherited descriptor is not a stream socket",
            ));
        }
        let family = socket.local_addr()?.domain();
        socket.set_nonblocking(true)?;
        socket.set_cloexec(true)?;
        let fd = OwnedFd::from(socket);
        if family == Domain::UNIX {
            Ok(Listener::Unix(StdUnixListener::from(fd), None))
        } else if family == Domain::IPV4 || family == Domain::IPV6 {
            Ok(Listener::Tcp(StdTcpListener::from(fd)))
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the inherited socket is neither TCP nor Unix",
            ))
        }
    }

    /// The TCP address the listener accepts on; `None` for a Unix socket.
    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(listener) => listener.local_addr().ok(),
            Listener::Unix(..) => None,
        }
    }

    /// The descriptor, for passing it to a child process.
    #[allow(dead_code)] // The process manager uses it.
    pub(crate) fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            Listener::Tcp(listener) => listener.as_fd(),
            Listener::Unix(listener, _) => listener.as_fd(),
        }
    }

    /// A description for logs: `http://127.0.0.1:8000` or `unix:/run/app.sock`.
    pub(crate) fn describe(&self) -> String {
        match self {
            Listener::Tcp(listener) => match listener.local_addr() {
                Ok(address) => format!("http://{address}"),
                Err(_) => "http://(unknown address)".to_owned(),
            },
            Listener::Unix(listener, file) => match (file, listener.local_addr()) {
                (Some(file), _) => format!("unix:{}", file.path.display()),
                (None, Ok(address)) => match address.as_pathname() {
                    Some(path) => format!("unix:{}", path.display()),
                    None => "unix:(unnamed)".to_owned(),
                },
                (None, Err(_)) => "unix:(unknown)".to_owned(),
            },
        }
    }
}

/// Why an address could not be bound: the address as configured and the reason.
#[derive(Debug)]
pub(crate) struct BindError {
    pub(crate) bind: String,
    pub(crate) error: io::Error,
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reason = match self.error.kind() {
            io::ErrorKind::AddrInUse => "address in use".to_owned(),
            io::ErrorKind::AddrNotAvailable => "address not available on this machine".to_owned(),
            io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
            _ => crate::log::io_reason(&self.error),
        };
        write!(f, "cannot bind {} (bind): {reason}", self.bind)
    }
}

/// Binds every address, in order, with a listen backlog of `backlog`; a Unix socket file gets
/// `unix_mode` when given. Nothing stays bound when one of them fails.
///
/// # Errors
///
/// The first address that cannot be bound, with the reason.
pub(crate) fn bind_all(
    binds: &[Bind],
    backlog: u32,
    unix_mode: Option<u32>,
) -> Result<Vec<Listener>, BindError> {
    let mut listeners = Vec::with_capacity(binds.len());
    for bind in binds {
        let error = |error: io::Error| BindError {
            bind: bind.to_string(),
            error,
        };
        match bind {
            Bind::Tcp(address) => listeners.push(bind_tcp(address, backlog).map_err(error)?),
            Bind::Unix(path) => {
                listeners.push(bind_unix(path, backlog, unix_mode).map_err(error)?);
            }
            Bind::Fd(fd) => listeners.push(adopt_fd(*fd).map_err(error)?),
            Bind::Systemd => listeners.extend(systemd_sockets().map_err(error)?),
        }
    }
    Ok(listeners)
}

fn bind_tcp(address: &str, backlog: u32) -> io::Result<Listener> {
    let mut last = None;
    for address in address.to_socket_addrs()? {
        match bind_tcp_address(address, backlog) {
            Ok(listener) => return Ok(Listener::Tcp(listener)),
            Err(error) => last = Some(error),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(io::ErrorKind::AddrNotAvailable, "the host has no address")
    }))
}

fn bind_tcp_address(address: SocketAddr, backlog: u32) -> io::Result<StdTcpListener> {
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, None)?;
    // A restarted server rebinds at once, without waiting out TIME_WAIT connections.
    socket.set_reuse_address(true)?;
    if address.is_ipv6() && address.ip().is_unspecified() {
        // `[::]` means every address: accept IPv4 too where the system allows it.
        let _ = socket.set_only_v6(false);
    }
    socket.bind(&address.into())?;
    socket.listen(backlog_i32(backlog))?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

fn backlog_i32(backlog: u32) -> i32 {
    i32::try_from(backlog).unwrap_or(i32::MAX)
}

fn bind_unix(path: &Path, backlog: u32, mode: Option<u32>) -> io::Result<Listener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};

    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("a server is accepting on {}", path.display()),
                ));
            }
            // A stale socket file left by a server that is gone.
            std::fs::remove_file(path)?;
        }
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ))
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.bind(&socket2::SockAddr::unix(path)?)?;
    let file = SocketFile {
        path: path.to_owned(),
        owner: std::process::id(),
    };
    if let Some(mode) = mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    socket.listen(backlog_i32(backlog))?;
    socket.set_nonblocking(true)?;
    Ok(Listener::Unix(socket.into(), Some(file)))
}

/// Adopts descriptor `fd`, left open by the parent process.
fn adopt_fd(fd: u32) -> io::Result<Listener> {
    // The listenfd crate owns the one conversion from a descriptor number to a socket; it reads
    // the descriptors to adopt from the environment, so name exactly this one there.
    std::env::set_var("LISTEN_FDS", "1");
    std::env::set_var("LISTEN_FDS_FIRST_FD", fd.to_string());
    std::env::remove_var("LISTEN_PID");
    let mut fds = listenfd::ListenFd::from_env();
    std::env::remove_var("LISTEN_FDS_FIRST_FD");
    take(&mut fds, 0)?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("descriptor {fd} is not open"),
        )
    })
}

/// Takes the `index`th descriptor of `fds` as a listener of either family.
fn take(fds: &mut listenfd::ListenFd, index: usize) -> io::Result<Option<Listener>> {
    let fd: Option<OwnedFd> = match fds.take_custom(index, libc::AF_INET, libc::SOCK_STREAM, "TCP")
    {
        Ok(fd) => fd,
        Err(_) => fds.take_custom(index, libc::AF_UNIX, libc::SOCK_STREAM, "socket")?,
    };
    fd.map(Listener::from_inherited).transpose()
}

/// Takes every socket systemd passed to this process (`LISTEN_FDS`, `LISTEN_PID`).
fn systemd_sockets() -> io::Result<Vec<Listener>> {
    let mut fds = listenfd::ListenFd::from_env();
    if fds.len() == 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "no sockets passed by systemd (LISTEN_FDS is not set for this process)",
        ));
    }
    let mut listeners = Vec::with_capacity(fds.len());
    for index in 0..fds.len() {
        if let Some(listener) = take(&mut fds, index)? {
            listeners.push(listener);
        }
    }
    Ok(listeners)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_spellings() {
        let parse = |value: &str| value.parse::<Bind>();
        assert_eq!(parse("127.0.0.1:80"), Ok(Bind::Tcp("127.0.0.1:80".into())));
        assert_eq!(parse("[::]:80"), Ok(Bind::Tcp("[::]:80".into())));
        assert_eq!(parse(":80"), Ok(Bind::Tcp("0.0.0.0:80".into())));
        assert_eq!(parse("localhost:0"), Ok(Bind::Tcp("localhost:0".into())));
        assert_eq!(
            parse("unix:/tmp/a.sock"),
            Ok(Bind::Unix("/tmp/a.sock".into()))
        );
        assert_eq!(parse("fd://3"), Ok(Bind::Fd(3)));
        assert_eq!(parse("systemd"), Ok(Bind::Systemd));
        for bad in ["8000", "h:99999", "[::1:80", "fd://x", "", "unix:"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse("fd://1").unwrap_err().to_string(),
            "fd://N needs a descriptor of 3 or more (0-2 are standard streams)"
        );
        for text in ["127.0.0.1:80", "unix:/tmp/a.sock", "fd://3", "systemd"] {
            assert_eq!(parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn a_port_in_use_is_named() {
        let first = bind_all(&[Bind::Tcp("127.0.0.1:0".into())], 16, None).unwrap();
        let port = first[0].local_addr().unwrap().port();
        let taken = format!("127.0.0.1:{port}");
        let error = bind_all(&[Bind::Tcp(taken.clone())], 16, None).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("cannot bind {taken} (bind): address in use")
        );
    }

    #[test]
    fn inherited_sockets_are_told_apart_by_family() {
        let dir = std::env::temp_dir().join(format!("rwgi-listen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let listeners = bind_all(
            &[Bind::Tcp("127.0.0.1:0".into()), Bind::Unix(path.clone())],
            16,
            Some(0o600),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        for listener in &listeners {
            let fd = listener.as_fd().try_clone_to_owned().unwrap();
            let adopted = Listener::from_inherited(fd).unwrap();
            assert_eq!(
                std::mem::discriminant(&adopted),
                std::mem::discriminant(listener)
            );
            assert_eq!(adopted.describe(), listener.describe());
        }
        drop(listeners);
        assert!(
            !path.exists(),
            "the binding process removes its socket file"
        );
        let _ = std::fs::remove_dir(&dir);
    }
}
