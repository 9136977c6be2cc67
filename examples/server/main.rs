//! `rwgi-server`: the reference server, serving one of the example apps.
//!
//! ```text
//! cargo run --release --example server -- --app hello --bind 127.0.0.1:8080
//! ```
//!
//! See [`USAGE`] for the flags. SIGINT or SIGTERM stop it gracefully: no new connections,
//! in-flight requests finish (for up to 30 seconds), then the process exits.

#[allow(dead_code)] // Each program that includes the shared apps uses only some of them.
#[path = "../apps/mod.rs"]
mod apps;

use std::ffi::OsString;
use std::fmt;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;

use rwgi::App;

use rwgi_server::{serve, Bind, Config, Listener};

/// The help text.
const USAGE: &str = "\
Usage: server [OPTIONS]

Serves an rwgi app over HTTP/1.1.

Options:
  --bind ADDR          host:port for TCP, or unix:PATH for a Unix socket [default: 127.0.0.1:8000]
  --app NAME           hello, hello-stack, echo or framework [default: framework]
  --root-path PREFIX   mount the app at PREFIX, like /app; other paths get 404
  --workers N          worker threads [default: the number of CPUs]
  --no-access-log      do not log each request to stderr
  -h, --help           print this help
";

/// The apps the server can host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AppName {
    Hello,
    HelloStack,
    Echo,
    Framework,
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    /// Print the help text.
    Help,
    /// Serve.
    Run(Options),
}

/// The settings of a server run.
#[derive(Debug, PartialEq, Eq)]
struct Options {
    bind: Bind,
    app: AppName,
    root_path: Option<String>,
    workers: Option<NonZeroUsize>,
    access_log: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            bind: Bind::Tcp("127.0.0.1:8000".to_owned()),
            app: AppName::Framework,
            root_path: None,
            workers: None,
            access_log: true,
        }
    }
}

/// A command line that cannot be followed; the process exits with status 2.
#[derive(Debug, PartialEq, Eq)]
struct UsageError(String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses the arguments after the program name. Values go in the next argument or after `=`.
fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Command, UsageError> {
    let mut options = Options::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let arg = arg
            .into_string()
            .map_err(|arg| UsageError(format!("argument {arg:?} is not valid UTF-8")))?;
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_owned())),
            _ => (arg.as_str(), None),
        };
        let takes_value = matches!(flag, "--bind" | "--app" | "--root-path" | "--workers");
        if !takes_value && inline.is_some() {
            return Err(UsageError(format!("{flag} takes no value")));
        }
        let value = match (takes_value, inline) {
            (false, _) => String::new(),
            (true, Some(value)) => value,
            (true, None) => args
                .next()
                .and_then(|value| value.into_string().ok())
                .ok_or_else(|| UsageError(format!("{flag} needs a value")))?,
        };
        match flag {
            "-h" | "--help" => return Ok(Command::Help),
            "--bind" => options.bind = parse_bind(&value)?,
            "--app" => options.app = parse_app(&value)?,
            "--root-path" => options.root_path = parse_root_path(&value)?,
            "--workers" => options.workers = Some(parse_workers(&value)?),
            "--no-access-log" => options.access_log = false,
            _ => return Err(UsageError(format!("unknown option {flag}"))),
        }
    }
    Ok(Command::Run(options))
}

fn parse_bind(value: &str) -> Result<Bind, UsageError> {
    if let Some(path) = value.strip_prefix("unix:") {
        if path.is_empty() {
            return Err(UsageError("--bind unix: needs a socket path".to_owned()));
        }
        return Ok(Bind::Unix(PathBuf::from(path)));
    }
    match value.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            Ok(Bind::Tcp(value.to_owned()))
        }
        _ => Err(UsageError(format!(
            "--bind expects host:port or unix:PATH, got {value:?}"
        ))),
    }
}

fn parse_app(value: &str) -> Result<AppName, UsageError> {
    match value {
        "hello" => Ok(AppName::Hello),
        "hello-stack" => Ok(AppName::HelloStack),
        "echo" => Ok(AppName::Echo),
        "framework" => Ok(AppName::Framework),
        _ => Err(UsageError(format!(
            "--app expects hello, hello-stack, echo or framework, got {value:?}"
        ))),
    }
}

fn parse_root_path(value: &str) -> Result<Option<String>, UsageError> {
    let prefix = value.trim_end_matches('/');
    if prefix.is_empty() {
        return Ok(None);
    }
    if !prefix.starts_with('/') {
        return Err(UsageError(format!(
            "--root-path must start with / (REQ-PATH-5), got {value:?}"
        )));
    }
    Ok(Some(prefix.to_owned()))
}

fn parse_workers(value: &str) -> Result<NonZeroUsize, UsageError> {
    value.parse().map_err(|_| {
        UsageError(format!(
            "--workers expects a number of threads above 0, got {value:?}"
        ))
    })
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args_os().skip(1)) {
        Ok(Command::Run(options)) => options,
        Ok(Command::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("server: {error}\nTry --help for the options.");
            return ExitCode::from(2);
        }
    };
    let workers = options
        .workers
        .or_else(|| std::thread::available_parallelism().ok())
        .map_or(1, NonZeroUsize::get);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(run(options)),
        Err(error) => {
            eprintln!("server: cannot start the runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> ExitCode {
    let listener = match Listener::bind(&options.bind).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("server: cannot listen on {}: {error}", options.bind);
            return ExitCode::FAILURE;
        }
    };
    println!("rwgi-server listening on {listener}");
    let config = Config {
        root_path: options.root_path,
        access_log: options.access_log,
        ..Config::default()
    };
    match options.app {
        AppName::Hello => host(listener, apps::hello::Hello, config).await,
        AppName::HelloStack => host(listener, apps::hello::hello_stack(), config).await,
        AppName::Echo => host(listener, apps::echo::Echo, config).await,
        AppName::Framework => host(listener, apps::framework::demo_app(), config).await,
    }
    eprintln!("rwgi-server: stopped");
    ExitCode::SUCCESS
}

async fn host<A: App + 'static>(listener: Listener, app: A, config: Config) {
    serve(listener, app, config, shutdown_signal()).await;
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};

    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut signals) => {
                signals.recv().await;
            }
            Err(error) => {
                eprintln!("server: cannot watch for SIGTERM: {error}");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    eprintln!("rwgi-server: shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, UsageError> {
        parse_args(args.iter().map(OsString::from))
    }

    fn run(args: &[&str]) -> Options {
        match parse(args) {
            Ok(Command::Run(options)) => options,
            other => panic!("expected options for {args:?}, got {other:?}"),
        }
    }

    fn error(args: &[&str]) -> String {
        match parse(args) {
            Err(UsageError(message)) => message,
            other => panic!("expected an error for {args:?}, got {other:?}"),
        }
    }

    #[test]
    fn no_flags_serve_the_framework_on_port_8000() {
        assert_eq!(run(&[]), Options::default());
        assert_eq!(
            Options::default().bind,
            Bind::Tcp("127.0.0.1:8000".to_owned())
        );
        assert_eq!(Options::default().app, AppName::Framework);
        assert!(Options::default().access_log);
    }

    #[test]
    fn every_flag_is_read_with_a_separate_or_inline_value() {
        let options = run(&[
            "--bind",
            "0.0.0.0:9000",
            "--app=hello-stack",
            "--root-path",
            "/app/",
            "--workers=3",
            "--no-access-log",
        ]);
        assert_eq!(
            options,
            Options {
                bind: Bind::Tcp("0.0.0.0:9000".to_owned()),
                app: AppName::HelloStack,
                root_path: Some("/app".to_owned()),
                workers: NonZeroUsize::new(3),
                access_log: false,
            }
        );
    }

    #[test]
    fn bind_takes_tcp_addresses_and_unix_paths() {
        assert_eq!(
            run(&["--bind", "unix:/tmp/rwgi.sock"]).bind,
            Bind::Unix(PathBuf::from("/tmp/rwgi.sock"))
        );
        assert_eq!(
            run(&["--bind", "[::1]:8000"]).bind,
            Bind::Tcp("[::1]:8000".to_owned())
        );
        assert_eq!(
            run(&["--bind", "localhost:0"]).bind,
            Bind::Tcp("localhost:0".to_owned())
        );
        assert_eq!(
            error(&["--bind", "8000"]),
            "--bind expects host:port or unix:PATH, got \"8000\""
        );
        assert_eq!(
            error(&["--bind", "h:99999"]),
            "--bind expects host:port or unix:PATH, got \"h:99999\""
        );
        assert_eq!(
            error(&["--bind", "unix:"]),
            "--bind unix: needs a socket path"
        );
    }

    #[test]
    fn apps_are_named() {
        assert_eq!(run(&["--app", "hello"]).app, AppName::Hello);
        assert_eq!(run(&["--app", "echo"]).app, AppName::Echo);
        assert_eq!(run(&["--app", "framework"]).app, AppName::Framework);
        assert_eq!(
            error(&["--app", "flask"]),
            "--app expects hello, hello-stack, echo or framework, got \"flask\""
        );
    }

    #[test]
    fn root_path_must_be_absolute_and_slash_alone_means_none() {
        assert_eq!(run(&["--root-path", "/"]).root_path, None);
        assert_eq!(
            run(&["--root-path", "/a/b"]).root_path,
            Some("/a/b".to_owned())
        );
        assert_eq!(
            error(&["--root-path", "app"]),
            "--root-path must start with / (REQ-PATH-5), got \"app\""
        );
    }

    #[test]
    fn workers_must_be_a_positive_number() {
        assert_eq!(
            error(&["--workers", "0"]),
            "--workers expects a number of threads above 0, got \"0\""
        );
        assert_eq!(
            error(&["--workers", "many"]),
            "--workers expects a number of threads above 0, got \"many\""
        );
    }

    #[test]
    fn bad_command_lines_are_explained() {
        assert_eq!(error(&["--port", "80"]), "unknown option --port");
        assert_eq!(error(&["--bind"]), "--bind needs a value");
        assert_eq!(
            error(&["--no-access-log=yes"]),
            "--no-access-log takes no value"
        );
        assert_eq!(error(&["extra"]), "unknown option extra");
    }

    #[test]
    fn help_ends_parsing() {
        assert_eq!(parse(&["--app", "hello", "--help"]), Ok(Command::Help));
        assert_eq!(parse(&["-h"]), Ok(Command::Help));
        assert_eq!(parse(&["--help", "--bogus"]), Ok(Command::Help));
    }
}
