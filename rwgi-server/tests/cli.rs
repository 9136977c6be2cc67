//! `rwgi_server::run` as a program: settings from flags, environment and file, their errors,
//! the hooks of a single process, the access log file, all with real processes and sockets.
//!
//! This test binary is also the program under test: started with [`CHILD_ENV`] set, its `main`
//! is an app author's `main` — an app of this crate handed to `rwgi_server::run_with` — so
//! `harness = false`, and `main` runs the tests one after another. Arguments that do not start
//! with `-` select the tests whose names contain them.

mod support;

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rwgi::app::app_fn;
use rwgi::body::Full;
use rwgi::http::{HeaderMap, StatusCode};
use rwgi::{Environ, Response, StartResponse};
use rwgi_server::{Hooks, Outcome, RequestInfo};

/// Set in the child: run the server instead of the tests.
const CHILD_ENV: &str = "CLI_TEST_CHILD";
/// Where the child's hooks append their calls, one line each: `PID NAME ARGS`.
const HOOK_LOG_ENV: &str = "CLI_TEST_HOOK_LOG";

const WAIT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    if std::env::var_os(CHILD_ENV).is_some() {
        return child();
    }
    let code = support::run_tests(&[
        (
            "defaults_print_with_check_config",
            defaults_print_with_check_config,
        ),
        (
            "precedence_flag_over_env_over_file_over_default",
            precedence_flag_over_env_over_file_over_default,
        ),
        ("bad_values_name_the_setting", bad_values_name_the_setting),
        ("file_errors_name_the_key", file_errors_name_the_key),
        ("unusable_binds_exit_2", unusable_binds_exit_2),
        (
            "single_process_serves_and_calls_each_hook_in_order",
            single_process_serves_and_calls_each_hook_in_order,
        ),
        (
            "access_log_file_is_reopened_on_usr1",
            access_log_file_is_reopened_on_usr1,
        ),
        (
            "max_requests_stops_the_process",
            max_requests_stops_the_process,
        ),
        (
            "inherited_sockets_by_fd_and_by_systemd",
            inherited_sockets_by_fd_and_by_systemd,
        ),
        (
            "forwarded_allow_ips_reads_and_rejects_like_any_setting",
            forwarded_allow_ips_reads_and_rejects_like_any_setting,
        ),
        (
            "forwarded_headers_are_believed_only_from_listed_peers",
            forwarded_headers_are_believed_only_from_listed_peers,
        ),
    ]);
    // A failure's files stay for a look; a pass leaves nothing behind.
    if code == ExitCode::SUCCESS {
        let _ = fs::remove_dir_all(scratch());
    }
    code
}

// ---- The program under test: an app author's `main` ----

/// Appends each call to the file named by [`HOOK_LOG_ENV`].
#[derive(Debug)]
struct RecordingHooks {
    log: PathBuf,
}

impl RecordingHooks {
    fn record(&self, line: std::fmt::Arguments<'_>) {
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("the hook log opens");
        // One write per line: the processes of one server share the file.
        let text = format!("{} {line}\n", std::process::id());
        file.write_all(text.as_bytes())
            .expect("the hook log takes a line");
    }
}

impl Hooks for RecordingHooks {
    fn on_starting(&self) {
        self.record(format_args!("on_starting"));
    }
    fn when_ready(&self, addresses: &[String]) {
        self.record(format_args!("when_ready {}", addresses.join(" ")));
    }
    fn worker_started(&self, worker_id: u32) {
        self.record(format_args!("worker_started {worker_id}"));
    }
    fn before_request(&self, request: &RequestInfo<'_>) {
        self.record(format_args!(
            "before_request {} {}",
            request.method(),
            request.target()
        ));
    }
    fn after_request(&self, request: &RequestInfo<'_>, outcome: &Outcome) {
        self.record(format_args!(
            "after_request {} {} {:?} {} {:?}",
            request.method(),
            request.target(),
            outcome.status().map(|status| status.as_u16()),
            outcome.bytes_sent(),
            outcome.ending()
        ));
    }
    fn worker_exiting(&self, worker_id: u32) {
        self.record(format_args!("worker_exiting {worker_id}"));
    }
    fn on_exit(&self) {
        self.record(format_args!("on_exit"));
    }
}

fn child() -> ExitCode {
    let app = app_fn(|environ: Environ, start: StartResponse| async move {
        let text = if environ.path_info() == "/client" {
            // What a trusted proxy's headers may change.
            let peer = environ.remote_addr().map(|addr| addr.ip().to_string());
            format!(
                "{} {}://{}{}{}\n",
                peer.unwrap_or_default(),
                environ.url_scheme(),
                environ.server_name(),
                environ.script_name(),
                environ.path_info()
            )
        } else {
            format!("hello from {}\n", environ.path_info())
        };
        let response: Response<Full> = start
            .start(StatusCode::OK, HeaderMap::new())
            .body(Full::new(text));
        Ok(response)
    });
    match std::env::var_os(HOOK_LOG_ENV) {
        Some(log) => rwgi_server::run_with(
            app,
            Arc::new(RecordingHooks {
                log: PathBuf::from(log),
            }),
        ),
        None => rwgi_server::run(app),
    }
}

// ---- Helpers ----

/// The program under test with these arguments and environment variables (and no other
/// `RWGI_*` ones).
fn program(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("the test binary"));
    command.args(args).env(CHILD_ENV, "1");
    for (name, _) in std::env::vars() {
        if name.starts_with("RWGI_") {
            command.env_remove(name);
        }
    }
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

fn output(args: &[&str], env: &[(&str, &str)]) -> Output {
    program(args, env)
        .stdin(Stdio::null())
        .output()
        .expect("the program runs")
}

/// The one error line and the exit status.
fn failure(args: &[&str], env: &[(&str, &str)]) -> (String, Option<i32>) {
    let output = output(args, env);
    assert!(output.stdout.is_empty(), "nothing on stdout");
    let stderr = String::from_utf8(output.stderr).expect("UTF-8");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    (stderr.trim_end().to_owned(), output.status.code())
}

/// `--check-config`'s value of `key`.
fn effective(args: &[&str], env: &[(&str, &str)], key: &str) -> String {
    let output = output(&[args, &["--check-config"]].concat(), env);
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).expect("UTF-8");
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        .to_owned()
}

/// This run's folder for the files its tests write.
fn scratch() -> PathBuf {
    std::env::temp_dir().join(format!("rwgi-cli-test-{}", std::process::id()))
}

fn temp(name: &str) -> PathBuf {
    let dir = scratch();
    fs::create_dir_all(&dir).expect("a temporary directory");
    dir.join(name)
}

fn write_file(name: &str, text: &str) -> PathBuf {
    let path = temp(name);
    fs::write(&path, text).expect("write a file");
    path
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// Waits for the child to exit, killing it after [`WAIT`].
fn wait_exit(child: &mut Child) -> Option<i32> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server did not exit in time");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `path` has a line containing `text`, and returns the file's text.
fn wait_for_line(path: &Path, text: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let content = fs::read_to_string(path).unwrap_or_default();
        if content.lines().any(|line| line.contains(text)) {
            return content;
        }
        assert!(
            Instant::now() < deadline,
            "no {text:?} in {path:?}: {content}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts the program on `127.0.0.1:0` and returns it with the address `when_ready` reported.
fn start(args: &[&str], hook_log: &Path) -> (Child, SocketAddr) {
    let hook_log_text = hook_log.to_str().expect("a UTF-8 path");
    let child = program(
        &[&["--bind", "127.0.0.1:0"], args].concat(),
        &[(HOOK_LOG_ENV, hook_log_text)],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("the server starts");
    let log = wait_for_line(hook_log, "when_ready");
    let address = log
        .lines()
        .find_map(|line| line.split_once("when_ready http://"))
        .map(|(_, address)| address.parse().expect("an address"))
        .expect("when_ready names the address");
    (child, address)
}

/// One `GET` on a new connection: the status and body.
fn get(address: SocketAddr, target: &str) -> (u16, String) {
    get_with(address, target, "")
}

/// As [`get`], with extra header lines (each ending in CRLF).
fn get_with(address: SocketAddr, target: &str, headers: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: test\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("a response");
    let status = response[9..12].parse().expect("a status");
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .to_owned();
    (status, body)
}

// ---- The tests ----

fn defaults_print_with_check_config() {
    assert_eq!(effective(&[], &[], "bind"), r#"["127.0.0.1:8000"]"#);
    assert_eq!(effective(&[], &[], "workers"), "1");
    assert_eq!(effective(&[], &[], "accesslog"), r#""-""#);
    let help = output(&["--help"], &[]);
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(help.contains("--max-requests-jitter"), "{help}");
    assert!(help.contains("RWGI_MAX_REQUESTS_JITTER"), "{help}");
}

fn precedence_flag_over_env_over_file_over_default() {
    let file = write_file(
        "precedence.toml",
        "workers = 4\nthreads = 3\nbacklog = 100\n",
    );
    let file = file.to_str().unwrap();
    let config = ["--config", file];
    // The file over the defaults.
    assert_eq!(effective(&config, &[], "workers"), "4");
    assert_eq!(effective(&config, &[], "threads"), "3");
    assert_eq!(effective(&config, &[], "backlog"), "100");
    assert_eq!(effective(&config, &[], "timeout"), "30");
    // The environment over the file.
    let env = [("RWGI_WORKERS", "5"), ("RWGI_TIMEOUT", "7")];
    assert_eq!(effective(&config, &env, "workers"), "5");
    assert_eq!(effective(&config, &env, "threads"), "3");
    assert_eq!(effective(&config, &env, "timeout"), "7");
    // A flag over the environment.
    let flags = ["--config", file, "--workers", "6"];
    assert_eq!(effective(&flags, &env, "workers"), "6");
    assert_eq!(effective(&flags, &env, "timeout"), "7");
    // A variable that names no setting is pointed out, not silently ignored.
    let warned = output(&["--check-config"], &[("RWGI_WROKERS", "2")]);
    assert!(warned.status.success());
    assert_eq!(
        String::from_utf8(warned.stderr).unwrap(),
        "rwgi-server: warning: RWGI_WROKERS is not a setting: ignored\n"
    );
    // The file may be named by the environment too.
    assert_eq!(effective(&[], &[("RWGI_CONFIG", file)], "workers"), "4");
    // Lists: a flag's binds replace the file's.
    let binds = write_file(
        "binds.toml",
        "bind = [\"127.0.0.1:1\", \"unix:/tmp/b.sock\"]\n",
    );
    let binds = binds.to_str().unwrap();
    assert_eq!(
        effective(&["-c", binds], &[], "bind"),
        r#"["127.0.0.1:1", "unix:/tmp/b.sock"]"#
    );
    assert_eq!(
        effective(
            &["-c", binds],
            &[("RWGI_BIND", "127.0.0.1:2,[::1]:3")],
            "bind"
        ),
        r#"["127.0.0.1:2", "[::1]:3"]"#
    );
    assert_eq!(
        effective(&["-c", binds, "-b", "127.0.0.1:4"], &[], "bind"),
        r#"["127.0.0.1:4"]"#
    );
}

fn bad_values_name_the_setting() {
    assert_eq!(
        failure(&["--workers", "abc"], &[]),
        (
            r#"rwgi-server: invalid value "abc" for --workers (RWGI_WORKERS, workers): expected a whole number"#.to_owned(),
            Some(2)
        )
    );
    assert_eq!(
        failure(&[], &[("RWGI_TIMEOUT", "soon")]),
        (
            r#"rwgi-server: invalid value "soon" for --timeout (RWGI_TIMEOUT, timeout): expected a number of seconds"#.to_owned(),
            Some(2)
        )
    );
    assert_eq!(
        failure(&["--bind", "localhost"], &[]),
        (
            r#"rwgi-server: invalid value "localhost" for --bind (RWGI_BIND, bind): expected host:port, [::]:port, unix:PATH, fd://N or systemd"#.to_owned(),
            Some(2)
        )
    );
    assert_eq!(
        failure(&["--loglevel", "loud"], &[]),
        (
            r#"rwgi-server: invalid value "loud" for --loglevel (RWGI_LOGLEVEL, loglevel): expected debug, info, warning, error or critical"#.to_owned(),
            Some(2)
        )
    );
    assert_eq!(
        failure(&["--root-path", "app"], &[]),
        (
            r#"rwgi-server: invalid value "app" for --root-path (RWGI_ROOT_PATH, root_path): expected a path starting with / (REQ-PATH-5)"#.to_owned(),
            Some(2)
        )
    );
    assert_eq!(
        failure(&["--access-log-format", "%(h)s %(x)s"], &[]),
        (
            r#"rwgi-server: invalid value "%(h)s %(x)s" for --access-log-format (RWGI_ACCESS_LOG_FORMAT, access_log_format): unknown atom %(x)s"#.to_owned(),
            Some(2)
        )
    );
    assert_eq!(
        failure(&["--certfile", "/etc/ssl/a.crt"], &[]),
        (
            "rwgi-server: certfile is set without keyfile (keyfile)".to_owned(),
            Some(2)
        )
    );
    assert_eq!(
        failure(&["--worker", "2"], &[]),
        (
            "rwgi-server: unknown option --worker (did you mean --workers?)".to_owned(),
            Some(2)
        )
    );
}

fn file_errors_name_the_key() {
    let unknown = write_file("unknown.toml", "workers = 2\nmax_request = 10\n");
    assert_eq!(
        failure(&["-c", unknown.to_str().unwrap()], &[]),
        (
            format!(
                r#"rwgi-server: unknown setting "max_request" in {}"#,
                unknown.display()
            ),
            Some(2)
        )
    );
    let bad = write_file("bad.toml", "graceful_timeout = \"later\"\n");
    assert_eq!(
        failure(&["-c", bad.to_str().unwrap()], &[]),
        (
            format!(
                r#"rwgi-server: invalid value "later" for graceful_timeout in {} (--graceful-timeout, RWGI_GRACEFUL_TIMEOUT): expected a number of seconds"#,
                bad.display()
            ),
            Some(2)
        )
    );
    let missing = temp("missing.toml");
    assert_eq!(
        failure(&["-c", missing.to_str().unwrap()], &[]),
        (
            format!(
                "rwgi-server: cannot read {} (config): No such file or directory",
                missing.display()
            ),
            Some(2)
        )
    );
}

fn unusable_binds_exit_2() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    assert_eq!(
        failure(&["--bind", &address, "--single-process"], &[]),
        (
            format!("rwgi-server: cannot bind {address} (bind): address in use"),
            Some(2)
        )
    );
    // The same without --single-process: the master binds before starting any worker.
    assert_eq!(
        failure(&["--bind", &address], &[]),
        (
            format!("rwgi-server: cannot bind {address} (bind): address in use"),
            Some(2)
        )
    );
    assert_eq!(
        failure(
            &["--bind", "127.0.0.1:0", "--accesslog", "/nonexistent-dir/access.log"],
            &[]
        ),
        (
            "rwgi-server: cannot open /nonexistent-dir/access.log (accesslog): No such file or directory".to_owned(),
            Some(2)
        )
    );
    assert_eq!(
        failure(&["--bind", "unix:/nonexistent-dir/a.sock"], &[]),
        (
            "rwgi-server: cannot bind unix:/nonexistent-dir/a.sock (bind): No such file or directory".to_owned(),
            Some(2)
        )
    );
}

fn single_process_serves_and_calls_each_hook_in_order() {
    let hook_log = temp("hooks-single.log");
    let _ = fs::remove_file(&hook_log);
    let (mut child, address) = start(&["--single-process", "--accesslog", "off"], &hook_log);
    assert_eq!(get(address, "/a"), (200, "hello from /a\n".to_owned()));
    assert_eq!(get(address, "/b?x"), (200, "hello from /b\n".to_owned()));
    signal(&child, "TERM");
    assert_eq!(wait_exit(&mut child), Some(0));
    let pid = child.id();
    let calls: Vec<String> = fs::read_to_string(&hook_log)
        .unwrap()
        .lines()
        .map(|line| {
            let (line_pid, call) = line.split_once(' ').unwrap();
            assert_eq!(
                line_pid,
                pid.to_string(),
                "every hook runs in the one process"
            );
            call.replace(&address.to_string(), "ADDRESS")
        })
        .collect();
    assert_eq!(
        calls,
        [
            "on_starting",
            "when_ready http://ADDRESS",
            "worker_started 0",
            "before_request GET /a",
            "after_request GET /a Some(200) 14 Completed",
            "before_request GET /b?x",
            "after_request GET /b?x Some(200) 14 Completed",
            "worker_exiting 0",
            "on_exit",
        ]
    );
}

fn access_log_file_is_reopened_on_usr1() {
    let hook_log = temp("hooks-log.log");
    let _ = fs::remove_file(&hook_log);
    let access = temp("access.log");
    let rotated = temp("access.log.1");
    let _ = fs::remove_file(&access);
    let access_text = access.to_str().unwrap();
    let (mut child, address) = start(
        &[
            "--single-process",
            "--accesslog",
            access_text,
            "--access-log-format",
            "%(m)s %(U)s %(s)s %(b)s",
        ],
        &hook_log,
    );
    get(address, "/first");
    wait_for_line(&access, "GET /first 200 18");
    fs::rename(&access, &rotated).unwrap();
    signal(&child, "USR1");
    // The reopen happens off the request path; requests until then may land in either file.
    let deadline = Instant::now() + WAIT;
    while !access.exists() {
        assert!(Instant::now() < deadline, "the log was not reopened");
        get(address, "/probe");
        std::thread::sleep(Duration::from_millis(20));
    }
    get(address, "/second");
    wait_for_line(&access, "GET /second 200 19");
    signal(&child, "TERM");
    assert_eq!(wait_exit(&mut child), Some(0));
    let old = fs::read_to_string(&rotated).unwrap();
    assert!(old.starts_with("GET /first 200 18\n"), "{old}");
    assert!(!old.contains("/second"));
}

fn max_requests_stops_the_process() {
    let hook_log = temp("hooks-max.log");
    let _ = fs::remove_file(&hook_log);
    let (mut child, address) = start(
        &[
            "--single-process",
            "--accesslog",
            "off",
            "--max-requests",
            "3",
        ],
        &hook_log,
    );
    for _ in 0..3 {
        assert_eq!(get(address, "/").0, 200);
    }
    assert_eq!(wait_exit(&mut child), Some(0));
    let log = fs::read_to_string(&hook_log).unwrap();
    assert_eq!(log.matches("after_request").count(), 3, "{log}");
    assert!(log.contains("worker_exiting 0"));
}

/// A listening socket this process leaves open for its children, with its descriptor number.
fn inheritable_listener() -> (TcpListener, i32) {
    use std::os::fd::AsRawFd;

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    rustix::io::fcntl_setfd(&listener, rustix::io::FdFlags::empty()).unwrap();
    let fd = listener.as_raw_fd();
    (listener, fd)
}

fn serve_inherited(args: &[&str], env: &[(&str, &str)], listener: &TcpListener) {
    let hook_log = temp(&format!(
        "hooks-inherited-{}.log",
        args.join("-").replace('/', "")
    ));
    let _ = fs::remove_file(&hook_log);
    let hook_log_text = hook_log.to_str().unwrap().to_owned();
    let mut env = env.to_vec();
    env.push((HOOK_LOG_ENV, &hook_log_text));
    let mut child = program(
        &[args, &["--single-process", "--accesslog", "off"]].concat(),
        &env,
    )
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("the server starts");
    let address = listener.local_addr().unwrap();
    let log = wait_for_line(&hook_log, "when_ready");
    assert!(
        log.contains(&format!("when_ready http://{address}")),
        "{log}"
    );
    assert_eq!(
        get(address, "/inherited"),
        (200, "hello from /inherited\n".to_owned())
    );
    signal(&child, "TERM");
    assert_eq!(wait_exit(&mut child), Some(0));
}

fn inherited_sockets_by_fd_and_by_systemd() {
    let (listener, fd) = inheritable_listener();
    let bind = format!("fd://{fd}");
    serve_inherited(&["--bind", &bind], &[], &listener);
    // systemd's protocol, with the first descriptor named (as listenfd allows).
    let first = fd.to_string();
    serve_inherited(
        &["--bind", "systemd"],
        &[("LISTEN_FDS", "1"), ("LISTEN_FDS_FIRST_FD", &first)],
        &listener,
    );
    assert_eq!(
        failure(&["--bind", "systemd"], &[]),
        (
            "rwgi-server: cannot bind systemd (bind): no sockets passed by systemd (LISTEN_FDS is not set for this process)".to_owned(),
            Some(2)
        )
    );
}

fn forwarded_allow_ips_reads_and_rejects_like_any_setting() {
    assert_eq!(effective(&[], &[], "forwarded_allow_ips"), "[]");
    assert_eq!(effective(&[], &[], "forwarded_hops"), "1");
    assert_eq!(effective(&[], &[], "forwarded_headers"), r#""x-forwarded""#);
    assert_eq!(
        effective(
            &["--forwarded-allow-ips", "127.0.0.1, ::1"],
            &[],
            "forwarded_allow_ips"
        ),
        r#"["127.0.0.1", "::1"]"#
    );
    assert_eq!(
        effective(
            &[],
            &[("RWGI_FORWARDED_ALLOW_IPS", "unix,10.0.0.0/8")],
            "forwarded_allow_ips"
        ),
        r#"["unix", "10.0.0.0/8"]"#
    );
    let file = write_file(
        "forwarded.toml",
        "forwarded_allow_ips = [\"unix\", \"*\"]\nforwarded_hops = 2\n\
         forwarded_headers = \"forwarded\"\n",
    );
    let config = ["-c", file.to_str().unwrap()];
    assert_eq!(
        effective(&config, &[], "forwarded_allow_ips"),
        r#"["unix", "*"]"#
    );
    assert_eq!(effective(&config, &[], "forwarded_hops"), "2");
    assert_eq!(
        effective(&config, &[], "forwarded_headers"),
        r#""forwarded""#
    );
    assert_eq!(
        failure(&["--forwarded-allow-ips", "127.0.0.1,10.0.0.0/33"], &[]),
        (
            r#"rwgi-server: invalid value "10.0.0.0/33" for --forwarded-allow-ips (RWGI_FORWARDED_ALLOW_IPS, forwarded_allow_ips): "10.0.0.0/33" is not an IP address, a CIDR range, unix or *"#.to_owned(),
            Some(2)
        )
    );
    assert_eq!(
        failure(&[], &[("RWGI_FORWARDED_HEADERS", "x-real-ip")]),
        (
            r#"rwgi-server: invalid value "x-real-ip" for --forwarded-headers (RWGI_FORWARDED_HEADERS, forwarded_headers): expected x-forwarded or forwarded"#.to_owned(),
            Some(2)
        )
    );
    let bad = write_file("bad-forwarded.toml", "forwarded_allow_ips = \"nginx\"\n");
    assert_eq!(
        failure(&["-c", bad.to_str().unwrap()], &[]),
        (
            format!(
                r#"rwgi-server: invalid value "nginx" for forwarded_allow_ips in {} (--forwarded-allow-ips, RWGI_FORWARDED_ALLOW_IPS): "nginx" is not an IP address, a CIDR range, unix or *"#,
                bad.display()
            ),
            Some(2)
        )
    );
}

fn forwarded_headers_are_believed_only_from_listed_peers() {
    const HEADERS: &str = "X-Forwarded-For: 6.6.6.6, 203.0.113.9\r\n\
        X-Forwarded-Proto: https\r\nX-Forwarded-Host: example.com\r\n\
        X-Forwarded-Prefix: /app\r\n";
    let run = |args: &[&str]| {
        let hook_log = temp("hooks-forwarded.log");
        let _ = fs::remove_file(&hook_log);
        let (mut child, address) = start(
            &[&["--single-process", "--accesslog", "off"], args].concat(),
            &hook_log,
        );
        let seen = get_with(address, "/client", HEADERS);
        signal(&child, "TERM");
        assert_eq!(wait_exit(&mut child), Some(0));
        seen
    };
    // The test connects from 127.0.0.1.
    assert_eq!(
        run(&["--forwarded-allow-ips", "127.0.0.0/8"]),
        (
            200,
            "203.0.113.9 https://example.com/app/client\n".to_owned()
        )
    );
    assert_eq!(
        run(&[
            "--forwarded-allow-ips",
            "127.0.0.0/8",
            "--forwarded-hops",
            "2"
        ]),
        // Two hops reach the client's own entry; the one-entry lists did not pass through
        // two proxies, so they are not believed.
        (200, "6.6.6.6 http://test/client\n".to_owned())
    );
    // Not listed, or nothing listed: the socket's facts.
    assert_eq!(
        run(&["--forwarded-allow-ips", "10.0.0.1,unix"]),
        (200, "127.0.0.1 http://test/client\n".to_owned())
    );
    assert_eq!(run(&[]), (200, "127.0.0.1 http://test/client\n".to_owned()));
}
