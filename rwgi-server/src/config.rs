//! Settings: one table, read from command-line flags, `RWGI_*` environment variables and a TOML
//! file, in that order of precedence over the defaults.
//!
//! The [`Options`] struct is the table: each field is one setting, its doc comment is the help
//! text, its `#[arg]` names the flag and the environment variable, and its parser is shared by
//! all three sources (the file's keys are the field names). [`FILE_KEYS`] lists the settings a
//! file may set, and a test checks that it names every flag.

use std::ffi::OsString;
use std::fmt::{self, Write as _};
use std::path::PathBuf;
use std::time::Duration;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Args, Parser};

use rwgi_middleware::proxy::{HeaderFamily, TrustedProxies};

use crate::listen::Bind;
use crate::log::{Format, LogLevel, LogTarget};

/// The settings of one server run, after merging every source over the defaults.
#[derive(Clone, Debug, PartialEq)]
#[allow(unreachable_pub)]
pub(crate) struct Settings {
    /// Where to listen; never empty.
    pub(crate) bind: Vec<Bind>,
    /// Worker processes (1 or more).
    pub(crate) workers: usize,
    /// Runtime threads per worker (1 or more).
    pub(crate) threads: usize,
    /// The listen backlog.
    pub(crate) backlog: u32,
    /// A worker silent for this long is killed and replaced; zero: never.
    pub(crate) timeout: Duration,
    /// How long a graceful stop waits for requests in flight.
    pub(crate) graceful_timeout: Duration,
    /// How long an idle keep-alive connection waits for its next request; zero disables
    /// keep-alive.
    pub(crate) keepalive: Duration,
    /// How long a connection may take to send a complete request head; zero: no limit.
    pub(crate) header_timeout: Duration,
    /// How long the app may wait for the next request-body chunk; zero: no limit.
    pub(crate) body_timeout: Duration,
    /// The slowest a request body may arrive on average, in bytes per second of the app's
    /// waiting, once `min_body_rate_grace` has passed; zero: no minimum.
    pub(crate) min_body_rate: u64,
    /// How long the app may wait for a request body before `min_body_rate` applies.
    pub(crate) min_body_rate_grace: Duration,
    /// How long a response write may make no progress before the connection is dropped;
    /// zero: no limit.
    pub(crate) write_timeout: Duration,
    /// How long the app has to answer (return its response head); zero: no limit.
    pub(crate) request_timeout: Duration,
    /// The most connections a worker serves at once; past it, it stops accepting.
    pub(crate) worker_connections: usize,
    /// Requests a worker serves before it is replaced; zero: no limit.
    pub(crate) max_requests: u64,
    /// The most added at random to `max_requests`, per worker.
    pub(crate) max_requests_jitter: u64,
    /// The longest request line (method, target, version), in bytes.
    pub(crate) limit_request_line: usize,
    /// The most header fields in a request.
    pub(crate) limit_request_fields: usize,
    /// The longest header field (name, `: `, value), in bytes.
    pub(crate) limit_request_field_size: usize,
    /// The largest request body, in bytes; zero: no limit.
    pub(crate) limit_request_body: u64,
    /// The prefix the app is mounted at.
    pub(crate) root_path: Option<String>,
    /// The peers whose forwarding headers are believed, one entry each (already validated);
    /// empty: none.
    pub(crate) forwarded_allow_ips: Vec<String>,
    /// How many trusted proxies in front append to the forwarding headers (1 or more).
    pub(crate) forwarded_hops: usize,
    /// Which forwarding headers the proxy in front sets.
    pub(crate) forwarded_headers: HeaderFamily,
    /// Where access-log lines go; `None`: off.
    pub(crate) accesslog: Option<LogTarget>,
    /// The access-log line format (already validated).
    pub(crate) access_log_format: String,
    /// Where the error log goes.
    pub(crate) errorlog: LogTarget,
    /// The error log's level.
    pub(crate) loglevel: LogLevel,
    /// A file to write the master's (or the single process's) process id to.
    pub(crate) pidfile: Option<PathBuf>,
    /// The file mode of Unix socket files this server creates.
    pub(crate) unix_socket_mode: Option<u32>,
    /// The TLS certificate chain (PEM); HTTPS on TCP listeners with `keyfile`.
    pub(crate) certfile: Option<PathBuf>,
    /// The TLS private key (PEM).
    pub(crate) keyfile: Option<PathBuf>,
    /// Serve in this process, without a master.
    pub(crate) single_process: bool,
    /// Only validate and print the settings.
    pub(crate) check_config: bool,
}

/// The default access-log format: the Combined Log Format, as gunicorn's default.
pub(crate) const DEFAULT_ACCESS_LOG_FORMAT: &str =
    r#"%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s""#;

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bind: vec![Bind::Tcp("127.0.0.1:8000".to_owned())],
            workers: 1,
            threads: threads_per_worker(1),
            backlog: 2048,
            timeout: Duration::from_secs(30),
            graceful_timeout: Duration::from_secs(30),
            keepalive: Duration::from_secs(5),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            min_body_rate: 240,
            min_body_rate_grace: Duration::from_secs(5),
            write_timeout: Duration::from_secs(30),
            request_timeout: Duration::ZERO,
            worker_connections: 1000,
            max_requests: 0,
            max_requests_jitter: 0,
            limit_request_line: 8190,
            limit_request_fields: 100,
            limit_request_field_size: 8190,
            limit_request_body: 0,
            root_path: None,
            forwarded_allow_ips: Vec::new(),
            forwarded_hops: 1,
            forwarded_headers: HeaderFamily::XForwarded,
            accesslog: Some(LogTarget::Stdout),
            access_log_format: DEFAULT_ACCESS_LOG_FORMAT.to_owned(),
            errorlog: LogTarget::Stderr,
            loglevel: LogLevel::Info,
            pidfile: None,
            unix_socket_mode: None,
            certfile: None,
            keyfile: None,
            single_process: false,
            check_config: false,
        }
    }
}

/// The default runtime threads of each of `workers` processes: the CPUs shared out among them,
/// rounded up, so that every CPU has a thread to run and the workers together do not run
/// many more threads than there are CPUs to switch between (on two CPUs, two workers of two
/// threads each cost `echo` about a tenth more CPU time per request than two of one; `hello`'s
/// runs differed less than their spread: BENCHMARKS.md, "Workers").
fn threads_per_worker(workers: usize) -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    cpus.div_ceil(workers.max(1))
}

/// Why the settings cannot be used, or what to print instead of serving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConfigError {
    /// `--help` and the like: print this to stdout and exit 0.
    Print(String),
    /// A one-line message naming the setting; exit status 2.
    Invalid(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Print(text) | ConfigError::Invalid(text) => f.write_str(text),
        }
    }
}

/// The command line.
#[derive(Parser, Debug, Default)]
#[command(
    name = "rwgi-server",
    about = "Serves an rwgi app over HTTP/1.1.",
    long_about = "Serves an rwgi app over HTTP/1.1.\n\nEvery setting comes from a flag, an \
        RWGI_* environment variable or the TOML file named by --config, in that order, over \
        its default. The file's keys are the settings' names (bind, workers, ...).",
    disable_version_flag = true,
    max_term_width = 100
)]
struct Cli {
    /// A TOML file of settings (keys as the flags' names with `_`, like `max_requests = 1000`).
    #[arg(short = 'c', long, env = "RWGI_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Check the settings, print the effective ones, and exit.
    #[arg(long)]
    check_config: bool,

    #[command(flatten)]
    options: Options,
}

/// The settings table: every setting a flag, an environment variable and a file key can set.
/// `None` (empty for `bind`) means "not given by this source".
#[derive(Args, Debug, Default, Clone, PartialEq)]
struct Options {
    /// Where to listen, repeatable: HOST:PORT, [::]:PORT, unix:PATH, fd://N or systemd
    /// (socket activation). [default: 127.0.0.1:8000]
    #[arg(short = 'b', long, env = "RWGI_BIND", value_name = "ADDRESS",
          value_parser = parse_bind, value_delimiter = ',')]
    bind: Vec<Bind>,

    /// Worker processes. [default: 1]
    #[arg(short = 'w', long, env = "RWGI_WORKERS", value_name = "N", value_parser = parse_at_least_one)]
    workers: Option<usize>,

    /// Runtime threads per worker. [default: the CPUs shared out among the workers, rounded up]
    #[arg(long, env = "RWGI_THREADS", value_name = "N", value_parser = parse_at_least_one)]
    threads: Option<usize>,

    /// The listen backlog: connections the kernel queues before they are accepted. [default: 2048]
    #[arg(long, env = "RWGI_BACKLOG", value_name = "N", value_parser = parse_backlog)]
    backlog: Option<u32>,

    /// A worker that stops responding for this many seconds is killed and replaced; 0: never.
    /// [default: 30]
    #[arg(short = 't', long, env = "RWGI_TIMEOUT", value_name = "SECONDS", value_parser = parse_seconds)]
    timeout: Option<Duration>,

    /// On a graceful stop, how many seconds requests in flight get to finish. [default: 30]
    #[arg(long, env = "RWGI_GRACEFUL_TIMEOUT", value_name = "SECONDS", value_parser = parse_seconds)]
    graceful_timeout: Option<Duration>,

    /// Seconds an idle keep-alive connection waits for its next request; 0 disables
    /// keep-alive. [default: 5]
    #[arg(long, env = "RWGI_KEEPALIVE", value_name = "SECONDS", value_parser = parse_seconds)]
    keepalive: Option<Duration>,

    /// Seconds a connection has to send a complete request head; 0: no limit. [default: 10]
    #[arg(long, env = "RWGI_HEADER_TIMEOUT", value_name = "SECONDS", value_parser = parse_seconds)]
    header_timeout: Option<Duration>,

    /// Seconds the app may wait for the next chunk of a request body before reading it fails;
    /// 0: no limit. [default: 30]
    #[arg(long, env = "RWGI_BODY_TIMEOUT", value_name = "SECONDS", value_parser = parse_seconds)]
    body_timeout: Option<Duration>,

    /// The slowest a request body may arrive, in bytes per second averaged over the time the
    /// app waits for it, once min_body_rate_grace has passed; slower fails the app's read
    /// (a client dribbling its body); 0: no minimum. [default: 240]
    #[arg(long, env = "RWGI_MIN_BODY_RATE", value_name = "BYTES", value_parser = parse_count)]
    min_body_rate: Option<u64>,

    /// Seconds the app may wait for a request body before min_body_rate applies.
    /// [default: 5]
    #[arg(long, env = "RWGI_MIN_BODY_RATE_GRACE", value_name = "SECONDS", value_parser = parse_seconds)]
    min_body_rate_grace: Option<Duration>,

    /// Seconds a response write may make no progress (a client that stopped reading) before
    /// the connection is dropped; 0: no limit. [default: 30]
    #[arg(long, env = "RWGI_WRITE_TIMEOUT", value_name = "SECONDS", value_parser = parse_seconds)]
    write_timeout: Option<Duration>,

    /// Seconds the app has to answer a request; past it the server answers 503 and drops the
    /// app's work; 0: no limit. [default: 0]
    #[arg(long, env = "RWGI_REQUEST_TIMEOUT", value_name = "SECONDS", value_parser = parse_seconds)]
    request_timeout: Option<Duration>,

    /// The most connections each worker serves at once; past it, a worker stops accepting
    /// until one closes (the kernel queues the rest, up to backlog). [default: 1000]
    #[arg(long, env = "RWGI_WORKER_CONNECTIONS", value_name = "N", value_parser = parse_at_least_one)]
    worker_connections: Option<usize>,

    /// Requests a worker serves before it is replaced (bounds slow leaks); 0: no limit.
    /// [default: 0]
    #[arg(long, env = "RWGI_MAX_REQUESTS", value_name = "N", value_parser = parse_count)]
    max_requests: Option<u64>,

    /// The most added at random to max_requests per worker, so workers do not restart
    /// together. [default: 0]
    #[arg(long, env = "RWGI_MAX_REQUESTS_JITTER", value_name = "N", value_parser = parse_count)]
    max_requests_jitter: Option<u64>,

    /// The longest request line in bytes; longer gets 414. [default: 8190]
    #[arg(long, env = "RWGI_LIMIT_REQUEST_LINE", value_name = "BYTES", value_parser = parse_at_least_one)]
    limit_request_line: Option<usize>,

    /// The most header fields in a request; more gets 431. [default: 100]
    #[arg(long, env = "RWGI_LIMIT_REQUEST_FIELDS", value_name = "N", value_parser = parse_at_least_one)]
    limit_request_fields: Option<usize>,

    /// The longest header field (name and value) in bytes; longer gets 431. [default: 8190]
    #[arg(long, env = "RWGI_LIMIT_REQUEST_FIELD_SIZE", value_name = "BYTES", value_parser = parse_at_least_one)]
    limit_request_field_size: Option<usize>,

    /// The largest request body in bytes; a larger declared Content-Length gets 413, a longer
    /// chunked body fails to read; 0: no limit. [default: 0]
    #[arg(long, env = "RWGI_LIMIT_REQUEST_BODY", value_name = "BYTES", value_parser = parse_count)]
    limit_request_body: Option<u64>,

    /// Mount the app at this prefix, like /app: it becomes SCRIPT_NAME, and other paths get 404.
    #[arg(long, env = "RWGI_ROOT_PATH", value_name = "PREFIX", value_parser = parse_root_path)]
    root_path: Option<RootPath>,

    /// Peers whose X-Forwarded-* (or Forwarded) headers are believed, comma-separated: IP
    /// addresses, CIDR ranges, unix (a peer on a Unix socket) or * (any peer). [default: none]
    #[arg(long, env = "RWGI_FORWARDED_ALLOW_IPS", value_name = "LIST",
          value_parser = parse_allow_ips, value_delimiter = ',')]
    forwarded_allow_ips: Vec<AllowIps>,

    /// Trusted proxies in front, each appending to the forwarding headers (a CDN, then nginx:
    /// 2). [default: 1]
    #[arg(long, env = "RWGI_FORWARDED_HOPS", value_name = "N", value_parser = parse_at_least_one)]
    forwarded_hops: Option<usize>,

    /// The headers the proxy sets: x-forwarded (X-Forwarded-For, -Proto, -Host, -Port, -Prefix)
    /// or forwarded (RFC 7239). [default: x-forwarded]
    #[arg(long, env = "RWGI_FORWARDED_HEADERS", value_name = "FAMILY", value_parser = parse_family)]
    forwarded_headers: Option<HeaderFamily>,

    /// Where the access log goes: - for stdout, a file path, or off. [default: -]
    #[arg(long, env = "RWGI_ACCESSLOG", value_name = "FILE", value_parser = parse_access_log)]
    accesslog: Option<AccessLogSetting>,

    /// The access log's line, with gunicorn's atoms like %(h)s, %(r)s, %(s)s, %(D)s.
    /// [default: the Combined Log Format]
    #[arg(long, env = "RWGI_ACCESS_LOG_FORMAT", value_name = "FORMAT", value_parser = parse_format)]
    access_log_format: Option<String>,

    /// Where the error log goes: - for stderr, or a file path. [default: -]
    #[arg(long, env = "RWGI_ERRORLOG", value_name = "FILE", value_parser = parse_error_log)]
    errorlog: Option<LogTarget>,

    /// The error log's level: debug, info, warning, error or critical. [default: info]
    #[arg(long, env = "RWGI_LOGLEVEL", value_name = "LEVEL", value_parser = parse_level)]
    loglevel: Option<LogLevel>,

    /// Write the server's process id to this file (removed on exit).
    #[arg(short = 'p', long, env = "RWGI_PIDFILE", value_name = "FILE", value_parser = parse_path)]
    pidfile: Option<PathBuf>,

    /// The file mode of Unix socket files, in octal, like 660. [default: as the umask leaves it]
    #[arg(long, env = "RWGI_UNIX_SOCKET_MODE", value_name = "MODE", value_parser = parse_mode)]
    unix_socket_mode: Option<u32>,

    /// HTTPS: the server's certificate chain, a PEM file (needs keyfile and the tls feature).
    #[arg(long, env = "RWGI_CERTFILE", value_name = "FILE", value_parser = parse_path)]
    certfile: Option<PathBuf>,

    /// HTTPS: the server's private key, a PEM file.
    #[arg(long, env = "RWGI_KEYFILE", value_name = "FILE", value_parser = parse_path)]
    keyfile: Option<PathBuf>,

    /// Serve in this one process, without a master and workers (development, tests).
    #[arg(long, env = "RWGI_SINGLE_PROCESS", value_name = "BOOL", num_args = 0..=1,
          default_missing_value = "true", value_parser = parse_bool)]
    single_process: Option<bool>,
}

/// A `root_path` value: `None` for `/` (no prefix).
#[derive(Clone, Debug, PartialEq, Eq)]
struct RootPath(Option<String>);

/// A `forwarded_allow_ips` value: the entries of one comma-separated list.
#[derive(Clone, Debug, PartialEq, Eq)]
struct AllowIps(Vec<String>);

/// An `accesslog` value: `None` for `off`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct AccessLogSetting(Option<LogTarget>);

/// Where a value in an error came from.
enum Source<'a> {
    /// A flag or an environment variable (clap reads both).
    Args,
    /// The config file.
    File(&'a str),
}

/// One slot of [`Options`]: a single value, or the list `bind` is.
trait Slot<T> {
    fn put(&mut self, value: T);
    #[cfg(test)]
    fn is_given(&self) -> bool;
    fn fill_from(&mut self, other: Self);
}

impl<T> Slot<T> for Option<T> {
    fn put(&mut self, value: T) {
        *self = Some(value);
    }
    #[cfg(test)]
    fn is_given(&self) -> bool {
        self.is_some()
    }
    fn fill_from(&mut self, other: Self) {
        if self.is_none() {
            *self = other;
        }
    }
}

impl<T> Slot<T> for Vec<T> {
    fn put(&mut self, value: T) {
        self.push(value);
    }
    #[cfg(test)]
    fn is_given(&self) -> bool {
        !self.is_empty()
    }
    fn fill_from(&mut self, other: Self) {
        if self.is_empty() {
            *self = other;
        }
    }
}

/// The settings a file may set, with their parsers: the same as the flags'.
macro_rules! file_table {
    ($($field:ident: $parse:expr, $many:expr;)*) => {
        /// Every key a config file may use.
        #[cfg(test)]
        const FILE_KEYS: &[&str] = &[$(stringify!($field)),*];

        impl Options {
            /// Sets `key` from the file's text values; `None` when there is no such key.
            fn set(&mut self, key: &str, values: &[String]) -> Option<Result<(), (String, String)>> {
                match key {
                    $(stringify!($field) => Some((|| {
                        if !$many && values.len() != 1 {
                            return Err((values.join(", "), "expected one value, not a list".to_owned()));
                        }
                        for value in values {
                            let parsed = $parse(value).map_err(|reason| (value.clone(), reason))?;
                            Slot::put(&mut self.$field, parsed);
                        }
                        Ok(())
                    })()),)*
                    _ => None,
                }
            }

            /// Fills every setting this source left out from `lower`, a source of lower
            /// precedence.
            fn fill_from(&mut self, lower: Options) {
                $(Slot::fill_from(&mut self.$field, lower.$field);)*
            }

            /// The settings this source gave.
            #[cfg(test)]
            fn given(&self) -> Vec<&'static str> {
                let mut given = Vec::new();
                $(if Slot::is_given(&self.$field) { given.push(stringify!($field)); })*
                given
            }
        }
    };
}

file_table! {
    bind: parse_bind, true;
    workers: parse_at_least_one, false;
    threads: parse_at_least_one, false;
    backlog: parse_backlog, false;
    timeout: parse_seconds, false;
    graceful_timeout: parse_seconds, false;
    keepalive: parse_seconds, false;
    header_timeout: parse_seconds, false;
    body_timeout: parse_seconds, false;
    min_body_rate: parse_count, false;
    min_body_rate_grace: parse_seconds, false;
    write_timeout: parse_seconds, false;
    request_timeout: parse_seconds, false;
    worker_connections: parse_at_least_one, false;
    max_requests: parse_count, false;
    max_requests_jitter: parse_count, false;
    limit_request_line: parse_at_least_one, false;
    limit_request_fields: parse_at_least_one, false;
    limit_request_field_size: parse_at_least_one, false;
    limit_request_body: parse_count, false;
    root_path: parse_root_path, false;
    forwarded_allow_ips: parse_allow_ips, true;
    forwarded_hops: parse_at_least_one, false;
    forwarded_headers: parse_family, false;
    accesslog: parse_access_log, false;
    access_log_format: parse_format, false;
    errorlog: parse_error_log, false;
    loglevel: parse_level, false;
    pidfile: parse_path, false;
    unix_socket_mode: parse_mode, false;
    certfile: parse_path, false;
    keyfile: parse_path, false;
    single_process: parse_bool, false;
}

impl Settings {
    /// Reads the settings from this process's command line, its `RWGI_*` environment
    /// variables and the config file they name. The master calls it again on `SIGHUP`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] with a one-line message naming the setting; or
    /// [`ConfigError::Print`] for `--help`.
    pub(crate) fn load() -> Result<Settings, ConfigError> {
        Settings::from_args(std::env::args_os())
    }

    /// As [`Settings::load`], with these arguments (the first is the program name).
    pub(crate) fn from_args<I, T>(args: I) -> Result<Settings, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let cli = Cli::try_parse_from(args).map_err(clap_error)?;
        let mut options = cli.options;
        if let Some(path) = &cli.config {
            options.fill_from(read_file(path)?);
        }
        Ok(Settings::from_options(options, cli.check_config))
    }

    fn from_options(options: Options, check_config: bool) -> Settings {
        let defaults = Settings::default();
        Settings {
            bind: if options.bind.is_empty() {
                defaults.bind
            } else {
                options.bind
            },
            workers: options.workers.unwrap_or(defaults.workers),
            threads: options
                .threads
                .unwrap_or_else(|| threads_per_worker(options.workers.unwrap_or(defaults.workers))),
            backlog: options.backlog.unwrap_or(defaults.backlog),
            timeout: options.timeout.unwrap_or(defaults.timeout),
            graceful_timeout: options
                .graceful_timeout
                .unwrap_or(defaults.graceful_timeout),
            keepalive: options.keepalive.unwrap_or(defaults.keepalive),
            header_timeout: options.header_timeout.unwrap_or(defaults.header_timeout),
            body_timeout: options.body_timeout.unwrap_or(defaults.body_timeout),
            min_body_rate: options.min_body_rate.unwrap_or(defaults.min_body_rate),
            min_body_rate_grace: options
                .min_body_rate_grace
                .unwrap_or(defaults.min_body_rate_grace),
            write_timeout: options.write_timeout.unwrap_or(defaults.write_timeout),
            request_timeout: options.request_timeout.unwrap_or(defaults.request_timeout),
            worker_connections: options
                .worker_connections
                .unwrap_or(defaults.worker_connections),
            max_requests: options.max_requests.unwrap_or(defaults.max_requests),
            max_requests_jitter: options
                .max_requests_jitter
                .unwrap_or(defaults.max_requests_jitter),
            limit_request_line: options
                .limit_request_line
                .unwrap_or(defaults.limit_request_line),
            limit_request_fields: options
                .limit_request_fields
                .unwrap_or(defaults.limit_request_fields),
            limit_request_field_size: options
                .limit_request_field_size
                .unwrap_or(defaults.limit_request_field_size),
            limit_request_body: options
                .limit_request_body
                .unwrap_or(defaults.limit_request_body),
            root_path: options.root_path.map_or(defaults.root_path, |root| root.0),
            forwarded_allow_ips: options
                .forwarded_allow_ips
                .into_iter()
                .flat_map(|list| list.0)
                .collect(),
            forwarded_hops: options.forwarded_hops.unwrap_or(defaults.forwarded_hops),
            forwarded_headers: options
                .forwarded_headers
                .unwrap_or(defaults.forwarded_headers),
            accesslog: options.accesslog.map_or(defaults.accesslog, |log| log.0),
            access_log_format: options
                .access_log_format
                .unwrap_or(defaults.access_log_format),
            errorlog: options.errorlog.unwrap_or(defaults.errorlog),
            loglevel: options.loglevel.unwrap_or(defaults.loglevel),
            pidfile: options.pidfile.or(defaults.pidfile),
            unix_socket_mode: options.unix_socket_mode.or(defaults.unix_socket_mode),
            certfile: options.certfile.or(defaults.certfile),
            keyfile: options.keyfile.or(defaults.keyfile),
            single_process: options.single_process.unwrap_or(defaults.single_process),
            check_config,
        }
    }

    /// The proxy-header middleware these settings ask for; `None` when no peer is trusted.
    pub(crate) fn proxy_headers(&self) -> Option<rwgi_middleware::ProxyHeaders> {
        // Each entry was validated when it was read.
        let trusted: TrustedProxies = self.forwarded_allow_ips.join(",").parse().ok()?;
        (!trusted.is_empty()).then(|| {
            rwgi_middleware::ProxyHeaders::new(trusted)
                .hops(self.forwarded_hops)
                .family(self.forwarded_headers)
        })
    }

    /// The effective settings as a TOML file would spell them, one per line (`--check-config`).
    pub(crate) fn to_toml(&self) -> String {
        fn quote(text: &str) -> String {
            toml::Value::String(text.to_owned()).to_string()
        }
        let mut out = String::new();
        let binds: Vec<String> = self.bind.iter().map(|b| quote(&b.to_string())).collect();
        let _ = writeln!(out, "bind = [{}]", binds.join(", "));
        let _ = writeln!(out, "workers = {}", self.workers);
        let _ = writeln!(out, "threads = {}", self.threads);
        let _ = writeln!(out, "backlog = {}", self.backlog);
        let _ = writeln!(out, "timeout = {}", self.timeout.as_secs_f64());
        let _ = writeln!(
            out,
            "graceful_timeout = {}",
            self.graceful_timeout.as_secs_f64()
        );
        let _ = writeln!(out, "keepalive = {}", self.keepalive.as_secs_f64());
        let _ = writeln!(
            out,
            "header_timeout = {}",
            self.header_timeout.as_secs_f64()
        );
        let _ = writeln!(out, "body_timeout = {}", self.body_timeout.as_secs_f64());
        let _ = writeln!(out, "min_body_rate = {}", self.min_body_rate);
        let _ = writeln!(
            out,
            "min_body_rate_grace = {}",
            self.min_body_rate_grace.as_secs_f64()
        );
        let _ = writeln!(out, "write_timeout = {}", self.write_timeout.as_secs_f64());
        let _ = writeln!(
            out,
            "request_timeout = {}",
            self.request_timeout.as_secs_f64()
        );
        let _ = writeln!(out, "worker_connections = {}", self.worker_connections);
        let _ = writeln!(out, "max_requests = {}", self.max_requests);
        let _ = writeln!(out, "max_requests_jitter = {}", self.max_requests_jitter);
        let _ = writeln!(out, "limit_request_line = {}", self.limit_request_line);
        let _ = writeln!(out, "limit_request_fields = {}", self.limit_request_fields);
        let _ = writeln!(
            out,
            "limit_request_field_size = {}",
            self.limit_request_field_size
        );
        let _ = writeln!(out, "limit_request_body = {}", self.limit_request_body);
        let _ = writeln!(
            out,
            "root_path = {}",
            quote(self.root_path.as_deref().unwrap_or("/"))
        );
        let allowed: Vec<String> = self.forwarded_allow_ips.iter().map(|e| quote(e)).collect();
        let _ = writeln!(out, "forwarded_allow_ips = [{}]", allowed.join(", "));
        let _ = writeln!(out, "forwarded_hops = {}", self.forwarded_hops);
        let _ = writeln!(
            out,
            "forwarded_headers = {}",
            quote(family_name(self.forwarded_headers))
        );
        let accesslog = match &self.accesslog {
            Some(target) => target.to_string(),
            None => "off".to_owned(),
        };
        let _ = writeln!(out, "accesslog = {}", quote(&accesslog));
        let _ = writeln!(
            out,
            "access_log_format = {}",
            quote(&self.access_log_format)
        );
        let _ = writeln!(out, "errorlog = {}", quote(&self.errorlog.to_string()));
        let _ = writeln!(out, "loglevel = {}", quote(self.loglevel.name()));
        if let Some(pidfile) = &self.pidfile {
            let _ = writeln!(out, "pidfile = {}", quote(&pidfile.display().to_string()));
        }
        if let Some(mode) = self.unix_socket_mode {
            let _ = writeln!(out, "unix_socket_mode = \"{mode:o}\"");
        }
        if let Some(certfile) = &self.certfile {
            let _ = writeln!(out, "certfile = {}", quote(&certfile.display().to_string()));
        }
        if let Some(keyfile) = &self.keyfile {
            let _ = writeln!(out, "keyfile = {}", quote(&keyfile.display().to_string()));
        }
        let _ = writeln!(out, "single_process = {}", self.single_process);
        out
    }
}

/// The `RWGI_*` environment variables that name no setting: a misspelt one would otherwise be
/// ignored without a word.
pub(crate) fn unknown_env_vars() -> Vec<String> {
    use clap::CommandFactory;

    let command = Cli::command();
    let known: Vec<String> = command
        .get_arguments()
        .filter_map(clap::Arg::get_env)
        .map(|name| name.to_string_lossy().into_owned())
        .collect();
    std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| name.starts_with("RWGI_") && !known.contains(name))
        .collect()
}

/// The flag and environment variable of the setting `key`.
fn names(key: &str) -> (String, String) {
    (
        format!("--{}", key.replace('_', "-")),
        format!("RWGI_{}", key.to_ascii_uppercase()),
    )
}

fn invalid(value: &str, key: &str, source: Source<'_>, reason: &str) -> ConfigError {
    let (flag, env) = names(key);
    let value = toml::Value::String(value.to_owned()).to_string();
    ConfigError::Invalid(match source {
        Source::Args => format!("invalid value {value} for {flag} ({env}, {key}): {reason}"),
        Source::File(file) => {
            format!("invalid value {value} for {key} in {file} ({flag}, {env}): {reason}")
        }
    })
}

/// Turns clap's error into one line naming the setting.
fn clap_error(error: clap::Error) -> ConfigError {
    let text = |kind| match error.get(kind) {
        Some(ContextValue::String(text)) => Some(text.clone()),
        Some(ContextValue::Strings(texts)) => texts.first().cloned(),
        _ => None,
    };
    // `--workers <N>` names the setting `workers`.
    let key = text(ContextKind::InvalidArg).map(|arg| {
        arg.split([' ', '='])
            .next()
            .unwrap_or_default()
            .trim_start_matches('-')
            .replace('-', "_")
    });
    match error.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            ConfigError::Print(error.render().to_string())
        }
        ErrorKind::ValueValidation | ErrorKind::InvalidValue => {
            let reason = std::error::Error::source(&error)
                .map(ToString::to_string)
                .or_else(|| text(ContextKind::ValidValue).map(|v| format!("expected {v}")))
                .unwrap_or_else(|| "not allowed".to_owned());
            let value = text(ContextKind::InvalidValue).unwrap_or_default();
            let key = key.unwrap_or_default();
            if value.is_empty() {
                let (flag, _) = names(&key);
                return ConfigError::Invalid(format!("{flag} needs a value"));
            }
            invalid(&value, &key, Source::Args, &reason)
        }
        ErrorKind::UnknownArgument => {
            let argument = text(ContextKind::InvalidArg).unwrap_or_default();
            let hint = text(ContextKind::SuggestedArg)
                .map(|arg| format!(" (did you mean {arg}?)"))
                .unwrap_or_default();
            ConfigError::Invalid(format!("unknown option {argument}{hint}"))
        }
        _ => {
            // The rest (a missing value, an extra argument) explain themselves in their first
            // line: `error: a value is required for '--workers <N>' but none was supplied`.
            let rendered = error.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid command line");
            ConfigError::Invalid(first.trim_start_matches("error: ").to_owned())
        }
    }
}

/// Reads the config file: every key must be a setting, and every value valid for it.
fn read_file(path: &std::path::Path) -> Result<Options, ConfigError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| {
        ConfigError::Invalid(format!(
            "cannot read {name} (config): {}",
            crate::log::io_reason(&error)
        ))
    })?;
    let table: toml::Table = text.parse().map_err(|error: toml::de::Error| {
        let line = error
            .span()
            .map(|span| text[..span.start].matches('\n').count() + 1);
        let message = error.message().trim().replace('\n', " ");
        ConfigError::Invalid(match line {
            Some(line) => format!("invalid TOML in {name} line {line} (config): {message}"),
            None => format!("invalid TOML in {name} (config): {message}"),
        })
    })?;
    let mut options = Options::default();
    for (key, value) in &table {
        let values = texts(value)
            .map_err(|reason| invalid(&value.to_string(), key, Source::File(&name), reason))?;
        match options.set(key, &values) {
            Some(Ok(())) => {}
            Some(Err((value, reason))) => {
                return Err(invalid(&value, key, Source::File(&name), &reason))
            }
            None => {
                return Err(ConfigError::Invalid(format!(
                    "unknown setting {} in {name}",
                    toml::Value::String(key.clone())
                )))
            }
        }
    }
    Ok(options)
}

/// A TOML value as the text a flag would carry; a list as several.
fn texts(value: &toml::Value) -> Result<Vec<String>, &'static str> {
    const SCALAR: &str = "expected a string, a number or a boolean";
    let scalar = |value: &toml::Value| match value {
        toml::Value::String(text) => Ok(text.clone()),
        toml::Value::Integer(number) => Ok(number.to_string()),
        toml::Value::Float(number) => Ok(number.to_string()),
        toml::Value::Boolean(flag) => Ok(flag.to_string()),
        _ => Err(SCALAR),
    };
    match value {
        toml::Value::Array(items) => items.iter().map(scalar).collect(),
        other => scalar(other).map(|text| vec![text]),
    }
}

// The parsers, shared by flags, environment variables and the file. Each error is the reason
// alone; the caller names the setting and the value.

fn parse_bind(value: &str) -> Result<Bind, String> {
    value
        .parse()
        .map_err(|error: crate::listen::BindParseError| error.to_string())
}

fn parse_at_least_one(value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(0) => Err("expected 1 or more".to_owned()),
        Ok(number) => Ok(number),
        Err(_) => Err("expected a whole number".to_owned()),
    }
}

fn parse_count(value: &str) -> Result<u64, String> {
    value
        .trim()
        .parse()
        .map_err(|_| "expected a whole number".to_owned())
}

fn parse_backlog(value: &str) -> Result<u32, String> {
    match value.trim().parse::<u32>() {
        Ok(0) => Err("expected 1 or more".to_owned()),
        Ok(number) if number <= i32::MAX as u32 => Ok(number),
        _ => Err("expected a whole number".to_owned()),
    }
}

fn parse_seconds(value: &str) -> Result<Duration, String> {
    let seconds: f64 = value
        .trim()
        .parse()
        .map_err(|_| "expected a number of seconds".to_owned())?;
    Duration::try_from_secs_f64(seconds).map_err(|_| "expected a number of seconds".to_owned())
}

fn parse_root_path(value: &str) -> Result<RootPath, String> {
    let prefix = value.trim_end_matches('/');
    if prefix.is_empty() {
        return Ok(RootPath(None));
    }
    if !prefix.starts_with('/') {
        return Err("expected a path starting with / (REQ-PATH-5)".to_owned());
    }
    Ok(RootPath(Some(prefix.to_owned())))
}

fn parse_allow_ips(value: &str) -> Result<AllowIps, String> {
    let entries: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(str::to_owned)
        .collect();
    for entry in &entries {
        entry
            .parse::<TrustedProxies>()
            .map_err(|_| format!("{entry:?} is not an IP address, a CIDR range, unix or *"))?;
    }
    Ok(AllowIps(entries))
}

fn parse_family(value: &str) -> Result<HeaderFamily, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "x-forwarded" => Ok(HeaderFamily::XForwarded),
        "forwarded" => Ok(HeaderFamily::Forwarded),
        _ => Err("expected x-forwarded or forwarded".to_owned()),
    }
}

/// The `forwarded_headers` value that reads back as `family`.
fn family_name(family: HeaderFamily) -> &'static str {
    match family {
        HeaderFamily::Forwarded => "forwarded",
        _ => "x-forwarded",
    }
}

fn parse_access_log(value: &str) -> Result<AccessLogSetting, String> {
    match value {
        "off" | "none" => Ok(AccessLogSetting(None)),
        "-" => Ok(AccessLogSetting(Some(LogTarget::Stdout))),
        "" => Err("expected -, a file path or off".to_owned()),
        path => Ok(AccessLogSetting(Some(LogTarget::File(PathBuf::from(path))))),
    }
}

fn parse_error_log(value: &str) -> Result<LogTarget, String> {
    match value {
        "-" => Ok(LogTarget::Stderr),
        "" => Err("expected - or a file path".to_owned()),
        path => Ok(LogTarget::File(PathBuf::from(path))),
    }
}

fn parse_format(value: &str) -> Result<String, String> {
    Format::parse(value)?;
    Ok(value.to_owned())
}

fn parse_level(value: &str) -> Result<LogLevel, String> {
    LogLevel::parse(value)
        .ok_or_else(|| "expected debug, info, warning, error or critical".to_owned())
}

fn parse_path(value: &str) -> Result<PathBuf, String> {
    if value.is_empty() {
        return Err("expected a file path".to_owned());
    }
    Ok(PathBuf::from(value))
}

fn parse_mode(value: &str) -> Result<u32, String> {
    let digits = value.trim().trim_start_matches("0o");
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if mode <= 0o777 => Ok(mode),
        _ => Err("expected an octal file mode like 660".to_owned()),
    }
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn args(list: &[&str]) -> Result<Settings, ConfigError> {
        Settings::from_args(std::iter::once("rwgi-server").chain(list.iter().copied()))
    }

    fn error(list: &[&str]) -> String {
        match args(list) {
            Err(ConfigError::Invalid(message)) => message,
            other => panic!("expected an error for {list:?}, got {other:?}"),
        }
    }

    #[test]
    fn every_flag_is_a_file_key_and_has_an_environment_variable() {
        let command = Cli::command();
        let mut flags: Vec<String> = command
            .get_arguments()
            .map(|arg| arg.get_id().to_string())
            .filter(|id| !matches!(id.as_str(), "config" | "check_config" | "help"))
            .collect();
        flags.sort();
        let mut keys: Vec<String> = FILE_KEYS.iter().map(|key| key.to_string()).collect();
        keys.sort();
        assert_eq!(flags, keys);
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            if FILE_KEYS.contains(&id) {
                let (flag, env) = names(id);
                assert_eq!(format!("--{}", arg.get_long().unwrap()), flag);
                assert_eq!(arg.get_env().unwrap().to_str().unwrap(), env);
            }
        }
    }

    #[test]
    fn defaults_are_gunicorns_where_it_has_one() {
        let settings = args(&[]).unwrap();
        assert_eq!(settings, Settings::default());
        assert_eq!(settings.bind, vec![Bind::Tcp("127.0.0.1:8000".into())]);
        assert_eq!(settings.workers, 1);
        assert_eq!(settings.backlog, 2048);
        assert_eq!(settings.timeout, Duration::from_secs(30));
        // Kestrel's MinRequestBodyDataRate: 240 bytes/s after 5 s (gunicorn and nginx have no
        // minimum rate).
        assert_eq!(settings.min_body_rate, 240);
        assert_eq!(settings.min_body_rate_grace, Duration::from_secs(5));
    }

    #[test]
    fn flags_parse_every_kind_of_value() {
        let settings = args(&[
            "-b",
            "127.0.0.1:0",
            "--bind=unix:/tmp/x.sock",
            "-w",
            "3",
            "--timeout",
            "2.5",
            "--root-path",
            "/app/",
            "--accesslog",
            "off",
            "--loglevel",
            "warning",
            "--unix-socket-mode",
            "660",
            "--single-process",
        ])
        .unwrap();
        assert_eq!(
            settings.bind,
            vec![
                Bind::Tcp("127.0.0.1:0".into()),
                Bind::Unix("/tmp/x.sock".into())
            ]
        );
        assert_eq!(settings.workers, 3);
        assert_eq!(settings.timeout, Duration::from_millis(2500));
        assert_eq!(settings.root_path.as_deref(), Some("/app"));
        assert_eq!(settings.accesslog, None);
        assert_eq!(settings.loglevel, LogLevel::Warning);
        assert_eq!(settings.unix_socket_mode, Some(0o660));
        assert!(settings.single_process);
    }

    #[test]
    fn bad_flags_are_one_line_naming_the_setting() {
        assert_eq!(
            error(&["--workers", "abc"]),
            r#"invalid value "abc" for --workers (RWGI_WORKERS, workers): expected a whole number"#
        );
        assert_eq!(
            error(&["--workers", "0"]),
            r#"invalid value "0" for --workers (RWGI_WORKERS, workers): expected 1 or more"#
        );
        assert_eq!(
            error(&["--bind", "8000"]),
            r#"invalid value "8000" for --bind (RWGI_BIND, bind): expected host:port, [::]:port, unix:PATH, fd://N or systemd"#
        );
        assert_eq!(
            error(&["--access-log-format", "%(zz)s"]),
            r#"invalid value "%(zz)s" for --access-log-format (RWGI_ACCESS_LOG_FORMAT, access_log_format): unknown atom %(zz)s"#
        );
        assert_eq!(
            error(&["--wrokers", "2"]),
            "unknown option --wrokers (did you mean --workers?)"
        );
        assert!(!error(&["--workers"]).contains('\n'));
    }

    #[test]
    fn forwarded_settings_read_as_lists_and_build_the_middleware() {
        let settings = args(&[
            "--forwarded-allow-ips",
            "127.0.0.1, 10.0.0.0/8",
            "--forwarded-allow-ips=unix",
            "--forwarded-hops",
            "2",
            "--forwarded-headers",
            "Forwarded",
        ])
        .unwrap();
        assert_eq!(
            settings.forwarded_allow_ips,
            ["127.0.0.1", "10.0.0.0/8", "unix"]
        );
        assert_eq!(settings.forwarded_hops, 2);
        assert_eq!(settings.forwarded_headers, HeaderFamily::Forwarded);
        assert!(settings.proxy_headers().is_some());
        let defaults = args(&[]).unwrap();
        assert!(defaults.forwarded_allow_ips.is_empty());
        assert!(defaults.proxy_headers().is_none(), "nothing trusted");
        assert_eq!(
            error(&["--forwarded-allow-ips", "127.0.0.1,localhost"]),
            r#"invalid value "localhost" for --forwarded-allow-ips (RWGI_FORWARDED_ALLOW_IPS, forwarded_allow_ips): "localhost" is not an IP address, a CIDR range, unix or *"#
        );
        assert_eq!(
            error(&["--forwarded-headers", "x-real-ip"]),
            r#"invalid value "x-real-ip" for --forwarded-headers (RWGI_FORWARDED_HEADERS, forwarded_headers): expected x-forwarded or forwarded"#
        );
        assert!(error(&["--forwarded-hops", "0"]).ends_with("expected 1 or more"));
        // A file may spell the list as one string or as an array.
        let options = file("forwarded_allow_ips = \"unix, ::1\"\n").unwrap();
        let settings = Settings::from_options(options, false);
        assert_eq!(settings.forwarded_allow_ips, ["unix", "::1"]);
        let options = file("forwarded_allow_ips = [\"unix\", \"10.0.0.0/8\"]\n").unwrap();
        let settings = Settings::from_options(options, false);
        assert_eq!(settings.forwarded_allow_ips, ["unix", "10.0.0.0/8"]);
    }

    fn file(text: &str) -> Result<Options, ConfigError> {
        let path = std::env::temp_dir().join(format!(
            "rwgi-config-test-{}-{}.toml",
            std::process::id(),
            text.len()
        ));
        std::fs::write(&path, text).unwrap();
        let result = read_file(&path).map_err(|error| match error {
            ConfigError::Invalid(message) => {
                ConfigError::Invalid(message.replace(&path.display().to_string(), "FILE"))
            }
            other => other,
        });
        std::fs::remove_file(&path).unwrap();
        result
    }

    #[test]
    fn a_file_sets_settings_by_name() {
        let options = file(
            "bind = [\"127.0.0.1:9000\", \"unix:/tmp/y.sock\"]\nworkers = 4\n\
             graceful_timeout = 5\nsingle_process = true\nunix_socket_mode = \"600\"\n",
        )
        .unwrap();
        assert_eq!(
            options.given(),
            [
                "bind",
                "workers",
                "graceful_timeout",
                "unix_socket_mode",
                "single_process"
            ]
        );
        assert_eq!(options.workers, Some(4));
        assert_eq!(options.graceful_timeout, Some(Duration::from_secs(5)));
    }

    #[test]
    fn file_errors_name_the_key() {
        assert_eq!(
            file("wrokers = 2\n").unwrap_err().to_string(),
            r#"unknown setting "wrokers" in FILE"#
        );
        assert_eq!(
            file("workers = \"abc\"\n").unwrap_err().to_string(),
            r#"invalid value "abc" for workers in FILE (--workers, RWGI_WORKERS): expected a whole number"#
        );
        assert_eq!(
            file("workers = [1, 2]\n").unwrap_err().to_string(),
            r#"invalid value "1, 2" for workers in FILE (--workers, RWGI_WORKERS): expected one value, not a list"#
        );
        assert_eq!(
            file("workers = \n").unwrap_err().to_string(),
            "invalid TOML in FILE line 1 (config): string values must be quoted, expected literal string"
        );
    }

    #[test]
    fn the_workers_share_out_the_cpus_unless_threads_is_set() {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(args(&[]).unwrap().threads, cpus);
        assert_eq!(args(&["--workers", "2"]).unwrap().threads, cpus.div_ceil(2));
        assert_eq!(args(&["--workers", "3"]).unwrap().threads, cpus.div_ceil(3));
        // More workers than CPUs: one thread each, never none.
        assert_eq!(args(&["--workers", "1000"]).unwrap().threads, 1);
        assert_eq!(
            args(&["--workers", "2", "--threads", "3"]).unwrap().threads,
            3
        );
    }

    #[test]
    fn flags_win_over_the_file() {
        let mut flags = Options {
            workers: Some(2),
            ..Options::default()
        };
        flags.fill_from(file("workers = 4\nthreads = 3\n").unwrap());
        assert_eq!((flags.workers, flags.threads), (Some(2), Some(3)));
    }

    #[test]
    fn check_config_prints_a_file_that_reads_back() {
        let settings = args(&[
            "--workers",
            "3",
            "--root-path",
            "/x",
            "--pidfile",
            "/tmp/p",
            "--forwarded-allow-ips",
            "unix,127.0.0.0/8",
            "--forwarded-headers",
            "forwarded",
            "--body-timeout",
            "2.5",
            "--write-timeout",
            "7",
            "--request-timeout",
            "60",
            "--worker-connections",
            "64",
            "--min-body-rate",
            "1000",
            "--min-body-rate-grace",
            "0.5",
        ])
        .unwrap();
        assert_eq!(settings.body_timeout, Duration::from_millis(2500));
        assert_eq!(settings.min_body_rate, 1000);
        assert_eq!(settings.min_body_rate_grace, Duration::from_millis(500));
        assert_eq!(settings.write_timeout, Duration::from_secs(7));
        assert_eq!(settings.request_timeout, Duration::from_secs(60));
        assert_eq!(settings.worker_connections, 64);
        let text = settings.to_toml();
        let options = file(&text.replace("single_process = false\n", "")).unwrap();
        let again = Settings::from_options(options, false);
        assert_eq!(again, settings);
    }
}
