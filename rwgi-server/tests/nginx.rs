//! The production topology end to end: real nginx in front, `rwgi-server` processes behind it,
//! with the site configuration the project ships (`examples/nginx/rwgi.conf`), on loopback.
//!
//! Each test writes an nginx configuration into its own folder (pid file, logs and temporary
//! files there too), includes the shipped site with only its listen address, static root and
//! upstream addresses replaced, starts `nginx` in the foreground on a free port, and starts
//! `rwgi-server` as real processes (master and workers) on Unix sockets or on TCP. Each test
//! runs once per transport, but socket activation (Unix sockets only) and upstream keep-alive
//! (TCP only, where nginx's end of a connection has a port).
//!
//! Without nginx on the machine the tests say so and pass, unless `RWGI_REQUIRE_NGINX=1` (as
//! in `.ci/run`), which makes a missing nginx a failure.
//!
//! This test binary is also the server under test: started with [`CHILD_ENV`] set, its `main`
//! is an app author's `main` calling `rwgi_server::run`. Hence `harness = false`; arguments
//! that do not start with `-` select the tests whose names contain them.

mod support;

// The WebSocket example app, which the child serves at /ws.
#[allow(dead_code)]
#[path = "../../examples/apps/websocket.rs"]
mod websocket;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rustix::process::{kill_process, kill_process_group, Pid, Signal};
use rwgi::app::app_fn;
use rwgi::body::{BoxBody, Full, StreamBody};
use rwgi::http::header::{CONTENT_TYPE, HOST};
use rwgi::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use rwgi::{Environ, Response, StartResponse};
use rwgi_middleware::proxy::Forwarded;
use sha2::{Digest, Sha256};

/// Set in the child: run the server instead of the tests.
const CHILD_ENV: &str = "RWGI_NGINX_TEST_CHILD";
/// `1`: a machine without nginx fails these tests instead of skipping them.
const REQUIRE_ENV: &str = "RWGI_REQUIRE_NGINX";
/// The shipped site, the configuration under test.
const SITE: &str = include_str!("../../examples/nginx/rwgi.conf");

/// Every wait for a process, a port or a response gives up after this long.
const WAIT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    if std::env::var_os(CHILD_ENV).is_some() {
        return child();
    }
    // Needs no nginx.
    print!("test shipped_settings_are_valid ... ");
    shipped_settings_are_valid();
    println!("ok");
    let Some(nginx) = find_nginx() else {
        if std::env::var(REQUIRE_ENV).as_deref() == Ok("1") {
            panic!("nginx is not installed, and {REQUIRE_ENV}=1 requires it");
        }
        println!(
            "nginx is not installed (not on PATH, not /usr/sbin/nginx): skipping the nginx tests"
        );
        return ExitCode::SUCCESS;
    };
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    const BOTH: &[Transport] = &[Transport::Unix, Transport::Tcp];
    let tests: &[(&str, Test, &[Transport])] = &[
        (
            "static_files_and_the_environ",
            static_files_and_the_environ,
            BOTH,
        ),
        (
            "streamed_response_is_unbuffered",
            streamed_response_is_unbuffered,
            BOTH,
        ),
        (
            "x_accel_buffering_turns_buffering_off",
            x_accel_buffering_turns_buffering_off,
            BOTH,
        ),
        (
            "large_upload_arrives_intact",
            large_upload_arrives_intact,
            BOTH,
        ),
        (
            "app_down_502_then_recovers",
            app_down_502_then_recovers,
            BOTH,
        ),
        (
            "reload_under_load_fails_nothing",
            reload_under_load_fails_nothing,
            BOTH,
        ),
        (
            "one_of_two_killed_under_load_fails_nothing",
            one_of_two_killed_under_load_fails_nothing,
            BOTH,
        ),
        (
            "upstream_connections_are_kept_alive",
            upstream_connections_are_kept_alive,
            &[Transport::Tcp],
        ),
        (
            "socket_activated_with_the_shipped_settings",
            socket_activated_with_the_shipped_settings,
            &[Transport::Unix],
        ),
        ("websocket_through_nginx", websocket_through_nginx, BOTH),
    ];
    let (mut passed, mut failed) = (0, 0);
    for (name, test, transports) in tests {
        for &transport in *transports {
            let name = format!("{name}_{}", transport.name());
            if !filters.is_empty() && !filters.iter().any(|filter| name.contains(filter.as_str())) {
                continue;
            }
            print!("test {name} ... ");
            if name.starts_with("socket_activated") && systemd_socket_activate().is_none() {
                // It comes with systemd, not with nginx: a declared skip even in CI.
                println!("skipped: systemd-socket-activate is not installed");
                continue;
            }
            let _ = std::io::stdout().flush();
            let started = Instant::now();
            match std::panic::catch_unwind(|| test(&nginx, transport)) {
                Ok(()) => {
                    println!("ok ({:.1} s)", started.elapsed().as_secs_f64());
                    passed += 1;
                }
                Err(_) => {
                    println!("FAILED");
                    failed += 1;
                }
            }
        }
    }
    support::summary(passed, failed)
}

/// systemd's stand-in for socket activation, when installed.
fn systemd_socket_activate() -> Option<PathBuf> {
    [
        "/usr/bin/systemd-socket-activate",
        "/bin/systemd-socket-activate",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|path| path.is_file())
}

/// A test: given nginx's path and how nginx reaches the app server.
type Test = fn(&Path, Transport);

fn find_nginx() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("nginx"))
            .find(|candidate| candidate.is_file())
    });
    on_path.or_else(|| {
        let sbin = PathBuf::from("/usr/sbin/nginx");
        sbin.is_file().then_some(sbin)
    })
}

// ---- The program under test ----

fn child() -> ExitCode {
    rwgi_server::run(app_fn(answer))
}

/// `/ws`: the WebSocket example's echo (`examples/apps/websocket.rs`).
/// `/environ`: what the app was told, as JSON. `/stream?signal=PATH`: `first`, then, once the
/// file `PATH` exists, `last: signalled` (`last: timed out` after [`WAIT`]), marked
/// `X-Accel-Buffering: no`. `/big?chunks=N&done=PATH[&unbuffered]`: N chunks of 64 KiB,
/// creating `PATH` when asked for more after the last (`X-Accel-Buffering: no` with
/// `unbuffered`). `/upload`: the body's length and SHA-256. `/pid?ms=N`: the worker's pid,
/// after N ms.
async fn answer(
    mut environ: Environ,
    start: StartResponse,
) -> Result<Response<BoxBody>, rwgi::Error> {
    let query = environ.query_string().to_owned();
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .map(str::to_owned)
    };
    if environ.path_info() == "/ws" {
        let response = rwgi::App::call(&websocket::app(), environ, start).await?;
        return Ok(response.map_body(BoxBody::new));
    }
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    let body = match environ.path_info() {
        "/environ" => {
            let header = |name: HeaderName| {
                environ
                    .headers()
                    .get(name)
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned)
            };
            let seen = serde_json::json!({
                "script_name": environ.script_name(),
                "path_info": environ.path_info(),
                "query_string": environ.query_string(),
                "url_scheme": environ.url_scheme().as_str(),
                "server_name": environ.server_name(),
                "server_port": environ.server_port(),
                "remote_addr": environ.remote_addr().map(|addr| addr.ip().to_string()),
                "host": header(HOST),
                "x_forwarded_for": header(HeaderName::from_static("x-forwarded-for")),
                // The socket's peer, which the proxy headers replaced: nginx's end.
                "proxy_peer": environ
                    .extensions()
                    .get::<Forwarded>()
                    .and_then(|original| original.proxy)
                    .map(|peer| peer.to_string()),
            });
            BoxBody::new(Full::new(seen.to_string()))
        }
        "/stream" => {
            let signal = PathBuf::from(param("signal").unwrap_or_default());
            headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
            let chunks = futures_util::stream::unfold(0, move |step| {
                let signal = signal.clone();
                async move {
                    let text = match step {
                        0 => "first\n",
                        1 => {
                            let deadline = Instant::now() + WAIT;
                            while !signal.exists() && Instant::now() < deadline {
                                tokio::time::sleep(Duration::from_millis(5)).await;
                            }
                            if signal.exists() {
                                "last: signalled\n"
                            } else {
                                "last: timed out\n"
                            }
                        }
                        _ => return None,
                    };
                    Some((Ok::<_, std::io::Error>(Bytes::from(text)), step + 1))
                }
            });
            BoxBody::new(StreamBody::new(Box::pin(chunks)))
        }
        "/big" => {
            static CHUNK: [u8; 64 << 10] = [b'x'; 64 << 10];
            let chunks: usize = param("chunks").and_then(|n| n.parse().ok()).unwrap_or(0);
            let done = PathBuf::from(param("done").unwrap_or_default());
            if query.split('&').any(|pair| pair == "unbuffered") {
                headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
            }
            let chunks = futures_util::stream::iter((0..=chunks).map(move |index| {
                if index == chunks {
                    // The server asks for more only once it has taken the previous chunk.
                    fs::write(&done, "sent")?;
                    return Ok(Bytes::new());
                }
                Ok::<_, std::io::Error>(Bytes::from_static(&CHUNK))
            }));
            BoxBody::new(StreamBody::new(chunks))
        }
        "/upload" => {
            let mut hasher = Sha256::new();
            let mut length = 0;
            while let Some(chunk) = environ.input_mut().chunk().await {
                let chunk = chunk?;
                length += chunk.len();
                hasher.update(&chunk);
            }
            BoxBody::new(Full::new(format!("{length} {:x}", hasher.finalize())))
        }
        "/pid" => {
            let ms = param("ms").and_then(|ms| ms.parse().ok()).unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            BoxBody::new(Full::new(std::process::id().to_string()))
        }
        _ => {
            return Ok(start
                .start(StatusCode::NOT_FOUND, headers)
                .body(BoxBody::new(Full::new("not found"))))
        }
    };
    Ok(start.start(StatusCode::OK, headers).body(body))
}

// ---- The topology ----

/// How nginx reaches `rwgi-server`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    Unix,
    Tcp,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Unix => "unix",
            Transport::Tcp => "tcp",
        }
    }

    /// The peers `rwgi-server` trusts: nginx, as it appears on this transport.
    fn nginx_peer(self) -> &'static str {
        match self {
            Transport::Unix => "unix",
            Transport::Tcp => "127.0.0.1",
        }
    }
}

/// A scratch folder, removed when dropped (kept when the test failed, for its logs).
struct Folder(PathBuf);

impl Folder {
    fn new(name: &str) -> Folder {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "rwgi-nginx-{name}-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("a scratch folder");
        Folder(path)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("(kept {} for its logs)", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// Where one `rwgi-server` instance listens.
#[derive(Clone, Debug)]
enum Address {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl Address {
    fn new(transport: Transport, folder: &Folder, name: &str) -> Address {
        match transport {
            Transport::Unix => Address::Unix(folder.join(&format!("{name}.sock"))),
            Transport::Tcp => Address::Tcp(free_address()),
        }
    }

    /// As the `bind` setting spells it.
    fn bind(&self) -> String {
        match self {
            Address::Unix(path) => format!("unix:{}", path.display()),
            Address::Tcp(address) => address.to_string(),
        }
    }

    /// As nginx's `server` directive spells it.
    fn upstream(&self) -> String {
        match self {
            Address::Unix(path) => format!("unix:{}", path.display()),
            Address::Tcp(address) => address.to_string(),
        }
    }

    /// One request straight to the instance, bypassing nginx: the response.
    fn get(&self, target: &str) -> Result<Answer, String> {
        let request = format!("GET {target} HTTP/1.1\r\nHost: direct\r\nConnection: close\r\n\r\n");
        match self {
            Address::Unix(path) => {
                let stream = UnixStream::connect(path).map_err(|e| format!("connect: {e}"))?;
                stream.set_read_timeout(Some(WAIT)).unwrap();
                exchange(stream, request.as_bytes())
            }
            Address::Tcp(address) => {
                let stream = TcpStream::connect_timeout(address, WAIT)
                    .map_err(|e| format!("connect: {e}"))?;
                stream.set_read_timeout(Some(WAIT)).unwrap();
                exchange(stream, request.as_bytes())
            }
        }
    }
}

fn exchange<S: Read + Write>(mut stream: S, request: &[u8]) -> Result<Answer, String> {
    stream
        .write_all(request)
        .map_err(|e| format!("send: {e}"))?;
    read_response(&mut BufReader::new(stream))
}

/// A loopback address with a port free a moment ago.
fn free_address() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
}

/// One `rwgi-server` process group: the master and its workers.
struct AppServer {
    master: Child,
    address: Address,
    /// Its access log: each request's path and status.
    access_log: PathBuf,
}

impl AppServer {
    /// Starts the server on `address` trusting nginx's headers, and waits until it answers.
    fn start(
        folder: &Folder,
        address: &Address,
        transport: Transport,
        extra: &[&str],
    ) -> AppServer {
        let name = match address {
            Address::Unix(path) => path.file_stem().unwrap().to_string_lossy().into_owned(),
            Address::Tcp(address) => address.port().to_string(),
        };
        let mut command = Command::new(std::env::current_exe().expect("the test binary"));
        for (variable, _) in std::env::vars() {
            if variable.starts_with("RWGI_") {
                command.env_remove(variable);
            }
        }
        let access_log = folder.join(&format!("{name}-access.log"));
        command
            .env(CHILD_ENV, "1")
            .args(["--bind", &address.bind()])
            .args(["--forwarded-allow-ips", transport.nginx_peer()])
            .args(["--accesslog", access_log.to_str().unwrap()])
            .args(["--access-log-format", "%(U)s %(s)s"])
            .args([
                "--threads",
                "2",
                "--timeout",
                "10",
                "--graceful-timeout",
                "5",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(folder.join(&format!("{name}-stderr.log"))).unwrap())
            // Its own process group, so that killing it takes its workers too.
            .process_group(0);
        let master = command.spawn().expect("rwgi-server starts");
        let server = AppServer {
            master,
            address: address.clone(),
            access_log,
        };
        wait_until(
            "rwgi-server answers",
            || matches!(server.address.get("/pid"), Ok(answer) if answer.status == 200),
        );
        server
    }

    fn signal(&self, signal: Signal) {
        let pid = Pid::from_raw(self.master.id() as i32).unwrap();
        kill_process(pid, signal).expect("the master is there");
    }

    /// The master's live worker processes, from `/proc` (Linux).
    fn workers(&self) -> BTreeSet<u32> {
        support::children(self.master.id())
    }

    /// SIGKILL to the master and its workers at once: a crash, not a stop.
    fn kill(mut self) {
        self.kill_group();
    }

    fn kill_group(&mut self) {
        let group = Pid::from_raw(self.master.id() as i32).unwrap();
        let _ = kill_process_group(group, Signal::KILL);
        let _ = self.master.wait();
    }
}

impl Drop for AppServer {
    fn drop(&mut self) {
        if self.master.try_wait().ok().flatten().is_none() {
            self.kill_group();
        }
    }
}

/// nginx in the foreground, with the shipped site in front of `upstreams`.
struct Nginx {
    process: Child,
    address: SocketAddr,
}

impl Nginx {
    fn start(nginx: &Path, folder: &Folder, upstreams: &[&Address]) -> Nginx {
        let address = free_address();
        let static_root = folder.join("static");
        fs::create_dir_all(&static_root).unwrap();
        let upstreams: Vec<String> = upstreams.iter().map(|a| a.upstream()).collect();
        fs::write(
            folder.join("rwgi.conf"),
            site(address, &static_root, &upstreams),
        )
        .unwrap();
        let dir = folder.0.display();
        // As root, nginx's workers would switch to `nobody`, who may not reach the scratch
        // folder or the sockets.
        let user = if rustix::process::geteuid().is_root() {
            "user root;"
        } else {
            ""
        };
        let main = format!(
            "daemon off;\nmaster_process on;\nworker_processes 1;\n{user}\n\
             pid {dir}/nginx.pid;\nerror_log {dir}/nginx-error.log info;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n\
             access_log {dir}/nginx-access.log;\n\
             client_body_temp_path {dir}/client_body;\nproxy_temp_path {dir}/proxy;\n\
             fastcgi_temp_path {dir}/fastcgi;\nuwsgi_temp_path {dir}/uwsgi;\n\
             scgi_temp_path {dir}/scgi;\n\
             include {dir}/rwgi.conf;\n}}\n"
        );
        let config = folder.join("nginx.conf");
        fs::write(&config, main).unwrap();
        let process = Command::new(nginx)
            .arg("-p")
            .arg(&folder.0)
            .arg("-c")
            .arg(&config)
            .arg("-e")
            .arg(folder.join("nginx-error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(folder.join("nginx-stderr.log")).unwrap())
            .spawn()
            .expect("nginx starts");
        let mut nginx = Nginx { process, address };
        wait_until("nginx listens", || {
            if let Ok(Some(status)) = nginx.process.try_wait() {
                let log = fs::read_to_string(folder.join("nginx-error.log")).unwrap_or_default();
                panic!("nginx exited with {status}: {log}");
            }
            TcpStream::connect(address).is_ok()
        });
        nginx
    }

    fn client(&self) -> Client {
        Client::new(self.address, None)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let pid = Pid::from_raw(self.process.id() as i32).unwrap();
        // TERM: a fast stop; its workers exit with it.
        let _ = kill_process(pid, Signal::TERM);
        let deadline = Instant::now() + WAIT;
        while matches!(self.process.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// The shipped site with the test's listen address, static root and upstream servers. Each
/// replaced line must be there as shipped, so the tests notice when the file changes shape.
fn site(listen: SocketAddr, static_root: &Path, upstreams: &[String]) -> String {
    let mut out = String::new();
    let (mut listens, mut roots, mut servers) = (0, 0, 0);
    for line in SITE.lines() {
        let code = line.trim_start();
        let indent = &line[..line.len() - code.len()];
        if code == "listen 80;" {
            listens += 1;
            out += &format!("{indent}listen {listen};\n");
        } else if code == "root /srv/rwgi/static;" {
            roots += 1;
            out += &format!("{indent}root {};\n", static_root.display());
        } else if let Some(rest) = code.strip_prefix("server unix:/run/rwgi/") {
            // The first shipped server line, with its parameters, for each test upstream.
            servers += 1;
            if servers == 1 {
                let parameters = rest.split_once(' ').map_or(";", |(_, p)| p);
                for upstream in upstreams {
                    out += &format!("{indent}server {upstream} {parameters}\n");
                }
            }
        } else {
            out += line;
            out.push('\n');
        }
    }
    assert_eq!(
        (listens, roots, servers),
        (1, 1, 2),
        "examples/nginx/rwgi.conf changed shape: one listen 80, one root, two servers expected"
    );
    out
}

/// Polls `done` every 10 ms until it holds; panics after [`WAIT`].
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        thread::sleep(Duration::from_millis(10));
    }
}

// ---- A keep-alive HTTP/1.1 client ----

/// A response: status, header fields (names lowercase) and body.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads a response head, as far as the blank line: status and header fields.
fn read_head(reader: &mut impl BufRead) -> Result<(u16, Vec<(String, String)>), String> {
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .map_err(|e| format!("receive: {e}"))?;
    if line.is_empty() {
        return Err("the connection closed before a response".to_owned());
    }
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|status| status.parse().ok())
        .ok_or_else(|| format!("no status in {line:?}"))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader
            .read_line(&mut line)
            .map_err(|e| format!("receive: {e}"))?;
        let field = line.trim_end();
        if field.is_empty() {
            return Ok((status, headers));
        }
        let (name, value) = field
            .split_once(':')
            .ok_or_else(|| format!("not a header field: {field:?}"))?;
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
}

/// Reads one chunk of a chunked body; `None` at the last (empty) chunk, whose trailer section
/// it consumes.
fn read_chunk(reader: &mut impl BufRead) -> Result<Option<Vec<u8>>, String> {
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .map_err(|e| format!("receive: {e}"))?;
    let size = line.trim_end().split(';').next().unwrap_or_default();
    let size =
        usize::from_str_radix(size, 16).map_err(|_| format!("not a chunk size: {line:?}"))?;
    if size == 0 {
        loop {
            line.clear();
            reader
                .read_line(&mut line)
                .map_err(|e| format!("receive: {e}"))?;
            if line.trim_end().is_empty() {
                return Ok(None);
            }
        }
    }
    let mut chunk = vec![0; size + 2];
    reader
        .read_exact(&mut chunk)
        .map_err(|e| format!("receive: {e}"))?;
    chunk.truncate(size);
    Ok(Some(chunk))
}

/// Reads a whole response, framed by Content-Length or chunked.
fn read_response(reader: &mut impl BufRead) -> Result<Answer, String> {
    let (status, headers) = read_head(reader)?;
    let mut answer = Answer {
        status,
        headers,
        body: Vec::new(),
    };
    if answer
        .header("transfer-encoding")
        .is_some_and(|coding| coding.eq_ignore_ascii_case("chunked"))
    {
        while let Some(chunk) = read_chunk(reader)? {
            answer.body.extend(chunk);
        }
    } else if let Some(length) = answer.header("content-length") {
        let length: usize = length.parse().map_err(|_| "a bad Content-Length")?;
        answer.body = vec![0; length];
        reader
            .read_exact(&mut answer.body)
            .map_err(|e| format!("receive: {e}"))?;
    } else {
        reader
            .read_to_end(&mut answer.body)
            .map_err(|e| format!("receive: {e}"))?;
    }
    Ok(answer)
}

/// A client of nginx that keeps its connection open between requests.
struct Client {
    address: SocketAddr,
    /// The local address to connect from (loopback has all of 127.0.0.0/8).
    from: Option<IpAddr>,
    /// The socket's receive buffer size, when set.
    receive_buffer: Option<usize>,
    connection: Option<BufReader<TcpStream>>,
}

impl Client {
    fn new(address: SocketAddr, from: Option<IpAddr>) -> Client {
        Client {
            address,
            from,
            receive_buffer: None,
            connection: None,
        }
    }

    fn connect(&self) -> Result<TcpStream, String> {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).map_err(|e| e.to_string())?;
        if let Some(size) = self.receive_buffer {
            socket
                .set_recv_buffer_size(size)
                .map_err(|e| format!("SO_RCVBUF: {e}"))?;
        }
        if let Some(ip) = self.from {
            socket
                .bind(&SocketAddr::new(ip, 0).into())
                .map_err(|e| format!("bind {ip}: {e}"))?;
        }
        socket
            .connect_timeout(&self.address.into(), WAIT)
            .map_err(|e| format!("connect: {e}"))?;
        let stream = TcpStream::from(socket);
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.set_write_timeout(Some(WAIT)).unwrap();
        Ok(stream)
    }

    /// Sends a request (`head` holds the extra header lines, each ending in CRLF) on the open
    /// connection or a new one; returns the reader positioned at the response.
    fn send(
        &mut self,
        method: &str,
        target: &str,
        head: &str,
        body: &[u8],
    ) -> Result<&mut BufReader<TcpStream>, String> {
        if self.connection.is_none() {
            self.connection = Some(BufReader::new(self.connect()?));
        }
        let connection = self.connection.as_mut().unwrap();
        let mut request = format!(
            "{method} {target} HTTP/1.1\r\nHost: example.test:{}\r\n{head}",
            self.address.port()
        )
        .into_bytes();
        if !body.is_empty() {
            request.extend(format!("Content-Length: {}\r\n", body.len()).bytes());
        }
        request.extend(b"\r\n");
        let stream = connection.get_mut();
        stream
            .write_all(&request)
            .and_then(|()| stream.write_all(body))
            .map_err(|e| format!("send: {e}"))?;
        Ok(connection)
    }

    /// One request and its whole response. Any failure closes the connection.
    fn request(
        &mut self,
        method: &str,
        target: &str,
        head: &str,
        body: &[u8],
    ) -> Result<Answer, String> {
        let result = self
            .send(method, target, head, body)
            .and_then(read_response);
        match &result {
            Ok(answer) if answer.header("connection") != Some("close") => {}
            _ => self.connection = None,
        }
        result
    }

    fn get(&mut self, target: &str) -> Result<Answer, String> {
        self.request("GET", target, "", b"")
    }
}

/// A bounded load through nginx: `clients` threads with a keep-alive connection each, sending
/// GETs of `/app/pid?ms=N` one after another until told to stop, `requests` at most.
struct Load {
    clients: Vec<JoinHandle<Vec<Result<u32, String>>>>,
    /// Requests finished so far, by all clients.
    done: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Load {
    fn start(nginx: &Nginx, clients: usize, requests: usize, ms: u32) -> Load {
        let done = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..clients)
            .map(|_| {
                let mut client = nginx.client();
                let done = Arc::clone(&done);
                let stop = Arc::clone(&stop);
                thread::spawn(move || {
                    (0..requests)
                        .take_while(|_| !stop.load(Ordering::Relaxed))
                        .map(|_| {
                            let result = match client.get(&format!("/app/pid?ms={ms}")) {
                                Ok(answer) if answer.status == 200 => answer
                                    .text()
                                    .parse()
                                    .map_err(|_| format!("not a pid: {answer:?}")),
                                Ok(answer) => Err(format!("{} {}", answer.status, answer.text())),
                                Err(error) => Err(error),
                            };
                            done.fetch_add(1, Ordering::Relaxed);
                            result
                        })
                        .collect()
                })
            })
            .collect();
        Load {
            clients,
            done,
            stop,
        }
    }

    fn done(&self) -> usize {
        self.done.load(Ordering::Relaxed)
    }

    fn wait_done(&self, count: usize) {
        wait_until("the load makes progress", || self.done() >= count);
    }

    /// Stops the clients after their current request; returns each one's answers, in order.
    fn finish(self) -> Vec<Vec<Result<u32, String>>> {
        self.stop.store(true, Ordering::Relaxed);
        self.clients
            .into_iter()
            .map(|client| client.join().expect("a load client"))
            .collect()
    }
}

/// The requests each pid answered, once every one of `answers` is shown to have succeeded and
/// the load to have run at least 500 requests.
fn tally_clean(answers: &[Vec<Result<u32, String>>]) -> BTreeMap<u32, usize> {
    let mut failures = Vec::new();
    let mut by_pid = BTreeMap::new();
    for answer in answers.iter().flatten() {
        match answer {
            Ok(pid) => *by_pid.entry(*pid).or_default() += 1,
            Err(error) => failures.push(error.clone()),
        }
    }
    assert_eq!(failures, Vec::<String>::new());
    let total: usize = answers.iter().map(Vec::len).sum();
    assert_eq!(by_pid.values().sum::<usize>(), total);
    assert!(total >= 500, "{total}");
    by_pid
}

// ---- The tests ----

/// `examples/nginx/rwgi.toml` reads without error and trusts the proxy on the Unix socket.
fn shipped_settings_are_valid() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/nginx/rwgi.toml");
    let mut command = Command::new(std::env::current_exe().expect("the test binary"));
    for (variable, _) in std::env::vars() {
        if variable.starts_with("RWGI_") {
            command.env_remove(variable);
        }
    }
    let output = command
        .env(CHILD_ENV, "1")
        .arg("--config")
        .arg(&file)
        .arg("--check-config")
        .stdin(Stdio::null())
        .output()
        .expect("the program runs");
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    for line in [
        r#"bind = ["systemd"]"#,
        "workers = 2",
        r#"forwarded_allow_ips = ["unix"]"#,
        "forwarded_hops = 1",
        r#"forwarded_headers = "x-forwarded""#,
        r#"accesslog = "off""#,
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
}

/// WebSocket through nginx with the shipped site's upgrade headers: a real client
/// (`tokio-tungstenite`'s) opens `/app/ws`, nginx passes the handshake on, the app takes the
/// connection over after its `101`, and messages go both ways until the client closes.
fn websocket_through_nginx(nginx: &Path, transport: Transport) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let folder = Folder::new("websocket");
    let a = Address::new(transport, &folder, "a");
    let app = AppServer::start(&folder, &a, transport, &["--single-process"]);
    let front = Nginx::start(nginx, &folder, &[&a]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let url = format!("ws://{}/app/ws", front.address);
        let (mut socket, response) =
            tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
                .await
                .expect("the handshake in time")
                .expect("the WebSocket handshake through nginx");
        assert_eq!(response.status(), 101);
        for message in [
            Message::text("hello through nginx"),
            Message::binary(vec![7; 100_000]),
            Message::text("again"),
        ] {
            socket.send(message.clone()).await.unwrap();
            let echo = tokio::time::timeout(WAIT, socket.next())
                .await
                .expect("an echo in time")
                .expect("an echo")
                .expect("a message");
            assert_eq!(echo, message);
        }
        socket.close(None).await.unwrap();
        tokio::time::timeout(WAIT, async {
            while let Some(Ok(_)) = socket.next().await {}
        })
        .await
        .expect("the connection ends after the close");
    });
    // An ordinary request on the same site still works (its Connection header is empty).
    let answer = front.client().get("/app/pid").unwrap();
    assert_eq!(answer.status, 200);
    drop(app);
}

/// A file under the static root is nginx's alone: the app's access log never shows it. A
/// request under /app/ reaches the app with the prefix as SCRIPT_NAME, the rest as PATH_INFO,
/// the scheme, host and port the client used, and the client's address; an X-Forwarded-For the
/// client made up is not believed.
fn static_files_and_the_environ(nginx: &Path, transport: Transport) {
    let folder = Folder::new("environ");
    let a = Address::new(transport, &folder, "a");
    let app = AppServer::start(&folder, &a, transport, &["--single-process"]);
    let front = Nginx::start(nginx, &folder, &[&a]);
    fs::write(folder.join("static/hello.txt"), "static hello\n").unwrap();

    let mut client = front.client();
    let file = client.get("/hello.txt").unwrap();
    assert_eq!((file.status, file.text().as_str()), (200, "static hello\n"));
    assert_eq!(client.get("/missing.txt").unwrap().status, 404);

    // From 127.0.0.2, while nginx reaches the app from 127.0.0.1 (or a Unix socket), so the
    // address the app reports can only have come from the header nginx set.
    let mut client = Client::new(front.address, Some("127.0.0.2".parse().unwrap()));
    let answer = client
        .request(
            "GET",
            "/app/environ?x=1&y=%2F",
            "X-Forwarded-For: 203.0.113.66\r\n",
            b"",
        )
        .unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    let mut seen: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    let proxy_peer = seen.as_object_mut().unwrap().remove("proxy_peer").unwrap();
    match transport {
        Transport::Unix => assert_eq!(proxy_peer, serde_json::Value::Null),
        Transport::Tcp => assert!(
            proxy_peer.as_str().unwrap().starts_with("127.0.0.1:"),
            "{proxy_peer}"
        ),
    }
    let expected = serde_json::json!({
        "script_name": "/app",
        "path_info": "/environ",
        "query_string": "x=1&y=%2F",
        "url_scheme": "http",
        "server_name": "example.test",
        "server_port": front.address.port(),
        "remote_addr": "127.0.0.2",
        // The site leaves nginx's Host (the upstream's name) and sends the client's in
        // X-Forwarded-Host, which the server put back.
        "host": format!("example.test:{}", front.address.port()),
        "x_forwarded_for": "203.0.113.66, 127.0.0.2",
    });
    assert_eq!(seen, expected);

    // The app's access log: the dynamic request, and no static one.
    let mut text = String::new();
    wait_until("the access log shows /environ", || {
        text = fs::read_to_string(&app.access_log).unwrap_or_default();
        text.contains("/environ 200")
    });
    assert!(!text.contains("hello.txt"), "{text}");
    assert!(!text.contains("missing.txt"), "{text}");
    drop(app);
}

/// A response the app streams with `X-Accel-Buffering: no` reaches the client chunk by chunk:
/// the client reads the first chunk while the app is still waiting for the client's signal to
/// send the last one.
fn streamed_response_is_unbuffered(nginx: &Path, transport: Transport) {
    let folder = Folder::new("stream");
    let a = Address::new(transport, &folder, "a");
    let _app = AppServer::start(&folder, &a, transport, &["--single-process"]);
    let front = Nginx::start(nginx, &folder, &[&a]);
    let signal = folder.join("signal");

    let mut client = front.client();
    let target = format!("/app/stream?signal={}", signal.display());
    let reader = client.send("GET", &target, "", b"").unwrap();
    let (status, headers) = read_head(reader).unwrap();
    assert_eq!(status, 200);
    assert!(
        headers
            .iter()
            .any(|(name, value)| name == "transfer-encoding" && value == "chunked"),
        "{headers:?}"
    );
    // nginx consumes the header; the client never sees it.
    assert!(!headers.iter().any(|(name, _)| name == "x-accel-buffering"));
    let first = read_chunk(reader).unwrap().expect("a first chunk");
    assert_eq!(first, b"first\n");
    // Only now may the app finish.
    fs::write(&signal, "go").unwrap();
    let mut rest = Vec::new();
    while let Some(chunk) = read_chunk(reader).unwrap() {
        rest.extend(chunk);
    }
    assert_eq!(String::from_utf8(rest).unwrap(), "last: signalled\n");
    // The connection is still good for another request.
    assert_eq!(client.get("/app/pid").unwrap().status, 200);
}

/// nginx buffers responses, except those marked `X-Accel-Buffering: no`. While the client reads
/// nothing, nginx takes a whole 32 MiB response into its temporary file; marked, it takes only
/// what fits its buffer and the sockets, so the app cannot finish until the client reads.
fn x_accel_buffering_turns_buffering_off(nginx: &Path, transport: Transport) {
    let folder = Folder::new("buffering");
    let a = Address::new(transport, &folder, "a");
    let _app = AppServer::start(&folder, &a, transport, &["--single-process"]);
    let front = Nginx::start(nginx, &folder, &[&a]);
    const CHUNKS: usize = 512;
    let client = || {
        let mut client = front.client();
        // Small, so that what the sockets hold is far less than the response.
        client.receive_buffer = Some(64 << 10);
        client
    };
    let read_all = |client: &mut Client| {
        let reader = client.connection.as_mut().expect("a connection");
        let answer = read_response(reader).unwrap();
        assert_eq!((answer.status, answer.body.len()), (200, CHUNKS << 16));
    };

    let buffered_done = folder.join("buffered-done");
    let mut buffered = client();
    let target = format!("/app/big?chunks={CHUNKS}&done={}", buffered_done.display());
    let started = Instant::now();
    buffered.send("GET", &target, "", b"").unwrap();
    wait_until("nginx takes the whole buffered response", || {
        buffered_done.exists()
    });
    let absorbed = started.elapsed();
    read_all(&mut buffered);

    let unbuffered_done = folder.join("unbuffered-done");
    let mut unbuffered = client();
    let target = format!(
        "/app/big?chunks={CHUNKS}&done={}&unbuffered",
        unbuffered_done.display()
    );
    unbuffered.send("GET", &target, "", b"").unwrap();
    // That the app is held back can only be seen over time: give it twice as long as nginx
    // took to take the buffered response (at least half a second).
    thread::sleep((absorbed * 2).max(Duration::from_millis(500)));
    assert!(
        !unbuffered_done.exists(),
        "the app sent the whole unbuffered response while the client read nothing"
    );
    read_all(&mut unbuffered);
    wait_until("the app finishes once the client reads", || {
        unbuffered_done.exists()
    });
}

/// An 8 MiB upload reaches the app byte for byte (nginx buffers it to its temporary folder).
fn large_upload_arrives_intact(nginx: &Path, transport: Transport) {
    let folder = Folder::new("upload");
    let a = Address::new(transport, &folder, "a");
    let _app = AppServer::start(&folder, &a, transport, &["--single-process"]);
    let front = Nginx::start(nginx, &folder, &[&a]);

    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let body: Vec<u8> = (0..8 << 20)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 56) as u8
        })
        .collect();
    let expected = format!("{} {:x}", body.len(), Sha256::digest(&body));
    let mut client = front.client();
    let answer = client
        .request(
            "POST",
            "/app/upload",
            "Content-Type: application/octet-stream\r\n",
            &body,
        )
        .unwrap();
    assert_eq!((answer.status, answer.text()), (200, expected));
}

/// With the app server down nginx answers 502; once it is up again, the app answers. Twice:
/// never started, then killed (which leaves a stale socket file for the restart to replace).
fn app_down_502_then_recovers(nginx: &Path, transport: Transport) {
    let folder = Folder::new("down");
    let a = Address::new(transport, &folder, "a");
    let front = Nginx::start(nginx, &folder, &[&a]);
    let mut client = front.client();
    for round in 0..2 {
        let down = client.get("/app/pid").unwrap();
        assert_eq!(down.status, 502, "round {round}: {down:?}");
        let app = AppServer::start(&folder, &a, transport, &["--single-process"]);
        let pid = client.get("/app/pid").unwrap();
        assert_eq!(pid.status, 200, "round {round}: {pid:?}");
        assert_eq!(pid.text(), app.master.id().to_string());
        app.kill();
    }
    assert_eq!(client.get("/app/pid").unwrap().status, 502);
}

/// SIGHUP to the app server's master under load through nginx: new workers take over, the old
/// ones finish what they hold, and not one request fails (four clients, a few hundred requests
/// before the reload and 400 after the new workers are up). nginx has only this one server, so
/// a failure could not hide behind a retry on another.
fn reload_under_load_fails_nothing(nginx: &Path, transport: Transport) {
    let folder = Folder::new("reload");
    let a = Address::new(transport, &folder, "a");
    let app = AppServer::start(&folder, &a, transport, &["--workers", "2"]);
    let front = Nginx::start(nginx, &folder, &[&a]);
    let old = app.workers();
    assert_eq!(old.len(), 2, "{old:?}");

    let load = Load::start(&front, 4, 1000, 3);
    load.wait_done(100);
    app.signal(Signal::HUP);
    let mut new = BTreeSet::new();
    wait_until("two new workers replace the old ones", || {
        new = app.workers();
        new.len() == 2 && new.is_disjoint(&old)
    });
    load.wait_done(load.done() + 400);
    let answers = load.finish();
    let by_pid = tally_clean(&answers);
    assert!(
        by_pid.keys().any(|pid| old.contains(pid)) && by_pid.keys().any(|pid| new.contains(pid)),
        "both the old and the new workers answered during the load: {by_pid:?}, old {old:?}, new {new:?}"
    );
}

/// Two app servers behind nginx, one killed (SIGKILL, master and workers) under load: nginx
/// retries what the dead one dropped or refused on the other, and not one GET fails (four
/// clients, 100 requests before the kill and 400 after); each client's last answers all come
/// from the survivor.
fn one_of_two_killed_under_load_fails_nothing(nginx: &Path, transport: Transport) {
    let folder = Folder::new("failover");
    let a = Address::new(transport, &folder, "a");
    let b = Address::new(transport, &folder, "b");
    let first = AppServer::start(&folder, &a, transport, &["--workers", "1"]);
    let second = AppServer::start(&folder, &b, transport, &["--workers", "1"]);
    let front = Nginx::start(nginx, &folder, &[&a, &b]);
    let killed = first.workers();
    let survivor = second.workers();

    let load = Load::start(&front, 4, 1000, 3);
    load.wait_done(100);
    first.kill();
    load.wait_done(load.done() + 400);
    let answers = load.finish();
    let by_pid = tally_clean(&answers);
    assert!(
        by_pid.keys().any(|pid| killed.contains(pid)),
        "the killed server answered before it died: {by_pid:?}"
    );
    for client in &answers {
        assert!(client.len() > 60, "{} requests", client.len());
        for answer in &client[client.len() - 20..] {
            let pid = answer.as_ref().unwrap();
            assert!(
                survivor.contains(pid),
                "{pid} is not the survivor {survivor:?}"
            );
        }
    }
}

/// nginx keeps its connections to the app server open (`keepalive`, HTTP/1.1 and an empty
/// `Connection` header): 30 requests, one after another, arrive on a single upstream
/// connection, as the app sees from nginx's port. On TCP only: a Unix-socket peer has no port.
fn upstream_connections_are_kept_alive(nginx: &Path, transport: Transport) {
    let folder = Folder::new("keepalive");
    let a = Address::new(transport, &folder, "a");
    let _app = AppServer::start(&folder, &a, transport, &["--single-process"]);
    let front = Nginx::start(nginx, &folder, &[&a]);
    let mut peers = BTreeSet::new();
    for _ in 0..30 {
        // A new client connection each time: only nginx's side is kept.
        let answer = front.client().get("/app/environ").unwrap();
        assert_eq!(answer.status, 200, "{answer:?}");
        let seen: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
        peers.insert(seen["proxy_peer"].as_str().unwrap().to_owned());
    }
    assert_eq!(peers.len(), 1, "upstream connections: {peers:?}");
}

/// The shipped `rwgi.toml` and systemd's socket activation (`rwgi@.socket`), with
/// `systemd-socket-activate` standing in for systemd: the socket exists before the server, the
/// first request through nginx starts it, the file's settings are in force (two workers,
/// nginx's headers believed on the Unix socket), and a reload keeps the inherited socket.
fn socket_activated_with_the_shipped_settings(nginx: &Path, _: Transport) {
    let activate = systemd_socket_activate().expect("main checks for it");
    let folder = Folder::new("activated");
    let socket = folder.join("a.sock");
    let settings = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/nginx/rwgi.toml");
    let mut command = Command::new(activate);
    command
        .arg("--listen")
        .arg(&socket)
        .arg(format!("--setenv={CHILD_ENV}=1"))
        .arg(std::env::current_exe().unwrap())
        .arg("--config")
        .arg(&settings)
        .arg("--errorlog")
        .arg(folder.join("a-error.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(folder.join("activate-stderr.log")).unwrap())
        .process_group(0);
    for (variable, _) in std::env::vars() {
        if variable.starts_with("RWGI_") {
            command.env_remove(variable);
        }
    }
    let activator = command.spawn().expect("systemd-socket-activate starts");
    // Dropped last: kills the process group, whichever process the master turned out to be.
    let server = AppServer {
        master: activator,
        address: Address::Unix(socket.clone()),
        access_log: PathBuf::new(),
    };
    wait_until("the socket exists", || socket.exists());
    let front = Nginx::start(nginx, &folder, &[&server.address]);

    let mut client = Client::new(front.address, Some("127.0.0.2".parse().unwrap()));
    let answer = client.get("/app/environ").unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    let seen: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(seen["script_name"], "/app");
    assert_eq!(seen["remote_addr"], "127.0.0.2", "{seen}");

    // systemd-socket-activate execs the program in its own process, so it is the master.
    let old = server.workers();
    assert_eq!(old.len(), 2, "workers = 2 from the file: {old:?}");
    let pid: u32 = client.get("/app/pid").unwrap().text().parse().unwrap();
    assert!(old.contains(&pid), "{pid} is not one of {old:?}");

    server.signal(Signal::HUP);
    let mut new = BTreeSet::new();
    wait_until("two new workers replace the old ones", || {
        new = server.workers();
        new.len() == 2 && new.is_disjoint(&old)
    });
    wait_until("a new worker answers on the inherited socket", || {
        matches!(client.get("/app/pid"), Ok(answer) if answer.status == 200
            && new.contains(&answer.text().parse().unwrap_or(0)))
    });
}
