//! The server suite against `rwgi-server` as operators run it: a master and two worker
//! processes, started as a program, with the suite's probe app in the workers reporting over
//! the suite's side channel ([`RemoteProbe`]). A server that breaks a rule, run the same way,
//! fails the check of that rule with its requirement ID, so a pass here means the checks saw
//! the workers.
//!
//! This test binary is also the program under test: started with [`PROBE_CHANNEL_ENV`] set,
//! its `main` hands `rwgi_server::run_with` the remote probe (wrapped in a deliberate flaw when
//! [`FLAW_ENV`] names one), and the master re-executes it as its workers. Hence
//! `harness = false`: `main` picks the role, then runs the tests one after another. Arguments
//! that do not start with `-` select the tests whose names contain them. Linux only, as the
//! tests read `/proc` to tell the workers from the master.

mod support;

#[cfg(target_os = "linux")]
fn main() -> std::process::ExitCode {
    linux::main()
}

#[cfg(not(target_os = "linux"))]
fn main() {
    println!("the worker-process suite runs on Linux only: 0 passed, 0 failed");
}

#[cfg(target_os = "linux")]
mod linux {
    use std::collections::BTreeSet;
    use std::fs::{self, File, OpenOptions};
    use std::io::Write;
    use std::mem::ManuallyDrop;
    use std::net::{SocketAddr, TcpListener};
    use std::path::{Path, PathBuf};
    use std::pin::Pin;
    use std::process::{Child, Command, ExitCode, Stdio};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll};
    use std::thread;
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use futures_core::Stream;
    use rustix::process::{kill_process, Pid, Signal};
    use rwgi::body::{Body, BoxBody};
    use rwgi::environ::ConnectionInfo;
    use rwgi::http::Request;
    use rwgi::{App, Environ, Error, Response, StartResponse};
    use rwgi_conformance::server_suite::{
        self, Hosting, RemoteProbe, ServerHandle, CHECKS, PROBE_CHANNEL_ENV,
    };
    use rwgi_conformance::{Outcome, Report};
    use rwgi_server::{Hooks, RequestInfo};

    use crate::support;

    /// Names the flaw the program under test has: `keeps-bodies` or `drops-content-type`.
    const FLAW_ENV: &str = "SUITE_WORKERS_FLAW";
    /// Where the program's hooks append one line per hook call: `PID NAME`.
    const LOG_ENV: &str = "SUITE_WORKERS_LOG";
    /// The worker processes each server runs.
    const WORKERS: usize = 2;

    pub(crate) fn main() -> ExitCode {
        match RemoteProbe::from_env() {
            Some(probe) => program(probe),
            None => run_tests(),
        }
    }

    // ---- The program under test ----

    fn program(probe: RemoteProbe) -> ExitCode {
        let hooks = Arc::new(HookLog(std::env::var_os(LOG_ENV).map(PathBuf::from)));
        match std::env::var(FLAW_ENV).as_deref() {
            Ok("keeps-bodies") => rwgi_server::run_with(KeepsBodies(probe), hooks),
            Ok("drops-content-type") => rwgi_server::run_with(DropsContentType(probe), hooks),
            Ok("hides-multiprocess") => rwgi_server::run_with(HidesMultiprocess(probe), hooks),
            _ => rwgi_server::run_with(probe, hooks),
        }
    }

    /// Appends `pid name` for the hooks that show which process did what.
    #[derive(Debug)]
    struct HookLog(Option<PathBuf>);

    impl HookLog {
        fn record(&self, name: &str) {
            let Some(path) = &self.0 else { return };
            // One write per line, in append mode: lines from several processes never mix.
            let line = format!("{} {name}\n", std::process::id());
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .expect("the hook log opens");
            file.write_all(line.as_bytes())
                .expect("the hook log takes a line");
        }
    }

    impl Hooks for HookLog {
        fn worker_started(&self, _: u32) {
            self.record("worker_started");
        }
        fn before_request(&self, _: &RequestInfo<'_>) {
            self.record("request");
        }
    }

    /// A server that never drops a response body: it forgets it (against REQ-SRV-8).
    struct KeepsBodies(RemoteProbe);

    impl App for KeepsBodies {
        type Body = Forgotten;

        async fn call(
            &self,
            environ: Environ,
            start: StartResponse,
        ) -> Result<Response<Forgotten>, Error> {
            let response = self.0.call(environ, start).await?;
            Ok(response.map_body(|body| Forgotten(ManuallyDrop::new(body))))
        }
    }

    /// A body that is never dropped.
    struct Forgotten(ManuallyDrop<BoxBody>);

    impl Stream for Forgotten {
        type Item = Result<Bytes, Error>;

        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            Pin::new(&mut *self.0).poll_next(cx)
        }
    }

    impl Body for Forgotten {
        fn content_length(&self) -> Option<u64> {
            self.0.content_length()
        }
    }

    /// A server that loses the request's `Content-Type` (against REQ-ENV-7).
    struct DropsContentType(RemoteProbe);

    impl App for DropsContentType {
        type Body = BoxBody;

        async fn call(
            &self,
            mut environ: Environ,
            start: StartResponse,
        ) -> Result<Response<BoxBody>, Error> {
            environ.headers_mut().remove("content-type");
            self.0.call(environ, start).await
        }
    }

    /// A server whose workers tell the app it runs in one process (against REQ-ENV-9), as
    /// `rwgi-server` did before the suite could watch its workers.
    struct HidesMultiprocess(RemoteProbe);

    impl App for HidesMultiprocess {
        type Body = BoxBody;

        async fn call(
            &self,
            mut environ: Environ,
            start: StartResponse,
        ) -> Result<Response<BoxBody>, Error> {
            let input = environ.take_input();
            let mut request = Request::new(());
            *request.method_mut() = environ.method().clone();
            *request.uri_mut() = environ.uri().clone();
            *request.version_mut() = environ.version();
            *request.headers_mut() = environ.headers().clone();
            let (parts, ()) = request.into_parts();
            let mut connection = ConnectionInfo::new(environ.url_scheme().clone())
                .server(rwgi_server::SERVER_INFO.multiprocess(false));
            if let Some(local) = environ.local_addr() {
                connection = connection.local_addr(local);
            }
            if let Some(peer) = environ.remote_addr() {
                connection = connection.peer_addr(peer);
            }
            let environ = Environ::from_parts(parts, input, &connection).map_err(Error::new)?;
            self.0.call(environ, start).await
        }
    }

    // ---- The tests ----

    fn run_tests() -> ExitCode {
        support::run_tests(&[
            (
                "the_whole_suite_passes_against_two_worker_processes",
                the_whole_suite_passes_against_two_worker_processes,
            ),
            (
                "a_server_whose_workers_keep_bodies_fails_req_srv_8",
                a_server_whose_workers_keep_bodies_fails_req_srv_8,
            ),
            (
                "a_server_whose_workers_drop_content_type_fails_req_env_7",
                a_server_whose_workers_drop_content_type_fails_req_env_7,
            ),
            (
                "a_server_whose_workers_hide_multiprocess_fails_req_env_9",
                a_server_whose_workers_hide_multiprocess_fails_req_env_9,
            ),
        ])
    }

    fn the_whole_suite_passes_against_two_worker_processes() {
        let servers = Servers::default();
        let report = server_suite::run(servers.start(None));
        // Every check passes but those of the extensions this server is not given (the
        // lifespan, the response outcome) and those that hold the server's handles, which
        // need the app in the suite's process; each of them says so.
        let in_process_only = [
            "disconnect_notified",
            "head_flushed",
            "interim_responses",
            "response_trailers",
            "illegal_trailer_names",
            "request_trailers",
            "file_body_range",
            "file_body_short",
            "upgrade_offered_when_asked",
            "upgrade_hands_over_connection",
        ];
        for result in report.results() {
            let excused = match result.name {
                "lifespan_state" | "response_outcome" => {
                    result.detail.starts_with(server_suite::NOT_OFFERED)
                }
                name if in_process_only.contains(&name) => {
                    result.detail.contains("the app runs in another process")
                }
                _ => false,
            };
            assert!(
                result.outcome == Outcome::Pass || (result.outcome == Outcome::Skip && excused),
                "{}: {:?} {}\n{}",
                result.name,
                result.outcome,
                result.detail,
                report.summary()
            );
        }
        assert_eq!(
            report.with_outcome(Outcome::Pass).count(),
            CHECKS.len() - in_process_only.len() - 2
        );
        // The suite started the plain server and the one mounted at a root path; each ran its
        // workers, only they served, and the plain one's were both reached, so the checks
        // judged calls made in two processes.
        let started = servers.started();
        assert_eq!(started.len(), 2);
        for (n, server) in started.iter().enumerate() {
            let served = server.request_pids();
            let workers = server.workers();
            assert!(
                !served.is_empty() && served.is_subset(&workers),
                "server {}: requests served by {served:?}, not by its workers {workers:?}",
                server.master
            );
            if n == 0 {
                assert_eq!(served.len(), WORKERS, "the plain server's workers");
            }
        }
    }

    fn a_server_whose_workers_keep_bodies_fails_req_srv_8() {
        assert_fails_alone(
            "keeps-bodies",
            "body_dropped_after_completion",
            "REQ-SRV-8: expected the body dropped after a complete response, seen it still \
             alive after 5s",
        );
    }

    fn a_server_whose_workers_drop_content_type_fails_req_env_7() {
        assert_fails_alone(
            "drops-content-type",
            "vectors_headers",
            "REQ-ENV-7: vector `content_type`: expected the app called with header content-type \
             Some([\"text/plain; charset=utf-8\"]) (seen None), CGI CONTENT_TYPE",
        );
    }

    fn a_server_whose_workers_hide_multiprocess_fails_req_env_9() {
        assert_fails_alone(
            "hides-multiprocess",
            "multithread_consistent",
            "REQ-ENV-9: expected ServerInfo::multiprocess to be true, since the app was called in \
             2 processes (",
        );
    }

    /// Runs `check` against the program with `flaw`: it must fail alone, with a detail that
    /// starts with `detail` (whose first word is the requirement broken).
    fn assert_fails_alone(flaw: &'static str, check: &str, detail: &str) {
        let servers = Servers::default();
        let report: Report = server_suite::run_checks(servers.start(Some(flaw)), &[check]);
        let seen: Vec<(&str, Outcome, bool)> = report
            .results()
            .iter()
            .map(|result| {
                (
                    result.name,
                    result.outcome,
                    result.detail.starts_with(detail),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [(check, Outcome::Fail, true)],
            "expected {check} alone to fail with a detail starting {detail:?}:\n{report}"
        );
        let requirement = detail.split(':').next().unwrap_or_default();
        assert_eq!(report.failed_requirements(), [requirement]);
    }

    // ---- Starting the program ----

    /// A started program: its master and its scratch folder.
    struct Started {
        master: u32,
        folder: PathBuf,
    }

    impl Drop for Started {
        fn drop(&mut self) {
            if !thread::panicking() {
                let _ = fs::remove_dir_all(&self.folder);
            }
        }
    }

    impl Started {
        /// The processes that ran `before_request`.
        fn request_pids(&self) -> BTreeSet<u32> {
            pids_of(&self.folder, "request")
        }

        /// The processes that started serving as its workers.
        fn workers(&self) -> BTreeSet<u32> {
            pids_of(&self.folder, "worker_started")
        }
    }

    /// The programs a test started, for looking at them after the suite stopped them.
    #[derive(Default, Clone)]
    struct Servers(Arc<std::sync::Mutex<Vec<Started>>>);

    impl Servers {
        fn started(&self) -> Vec<Started> {
            std::mem::take(&mut *self.0.lock().unwrap())
        }

        /// The suite's start function: the program with `flaw`, `WORKERS` workers, on a free
        /// port of 127.0.0.1, its probe app reporting to the suite's side channel.
        fn start(&self, flaw: Option<&'static str>) -> impl FnMut(Hosting) -> ServerHandle {
            let servers = self.clone();
            move |hosting: Hosting| {
                static COUNT: AtomicUsize = AtomicUsize::new(0);
                let folder = std::env::temp_dir().join(format!(
                    "rwgi-suite-workers-{}-{}",
                    std::process::id(),
                    COUNT.fetch_add(1, Ordering::Relaxed)
                ));
                fs::create_dir_all(&folder).unwrap();
                let channel = hosting.probe_channel().expect("the suite's side channel");
                let address: SocketAddr = TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap();
                let mut command = Command::new(std::env::current_exe().unwrap());
                command
                    .args(["--bind", &address.to_string()])
                    .args(["--workers", &WORKERS.to_string()])
                    .args(["--graceful-timeout", "2"])
                    .env(PROBE_CHANNEL_ENV, channel)
                    .env(LOG_ENV, folder.join("hooks.log"))
                    .env_remove(FLAW_ENV)
                    .stdin(Stdio::null())
                    .stdout(File::create(folder.join("stdout.log")).unwrap())
                    .stderr(File::create(folder.join("stderr.log")).unwrap());
                if let Some(root_path) = hosting.root_path() {
                    command.args(["--root-path", root_path]);
                }
                if let Some(flaw) = flaw {
                    command.env(FLAW_ENV, flaw);
                }
                let child = command.spawn().expect("the program starts");
                let master = child.id();
                let program = Program { child, folder };
                program.wait_serving();
                servers.0.lock().unwrap().push(Started {
                    master,
                    folder: program.folder.clone(),
                });
                ServerHandle::new(address).on_stop(move || program.stop())
            }
        }
    }

    /// A running program: a master and its workers.
    struct Program {
        child: Child,
        folder: PathBuf,
    }

    impl Program {
        /// Waits until every worker runs and has started serving.
        fn wait_serving(&self) {
            let deadline = Instant::now() + Duration::from_secs(10);
            let master = self.child.id();
            loop {
                let workers = support::children(master);
                let started = pids_of(&self.folder, "worker_started");
                if workers.len() == WORKERS && workers.is_subset(&started) {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "the workers never started: {workers:?} running, {started:?} started; \
                     stderr:\n{}",
                    fs::read_to_string(self.folder.join("stderr.log")).unwrap_or_default()
                );
                thread::sleep(Duration::from_millis(20));
            }
        }

        /// Stops the master gracefully (it stops its workers), or kills them all after 10 s.
        fn stop(mut self) {
            let master = self.child.id();
            let workers = support::children(master);
            signal(master, Signal::TERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.child.try_wait().unwrap().is_none() {
                if Instant::now() >= deadline {
                    signal(master, Signal::KILL);
                    for worker in &workers {
                        signal(*worker, Signal::KILL);
                    }
                    let _ = self.child.wait();
                    break;
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
    }

    impl Drop for Program {
        fn drop(&mut self) {
            if let Ok(None) = self.child.try_wait() {
                signal(self.child.id(), Signal::KILL);
                let _ = self.child.wait();
            }
        }
    }

    fn signal(pid: u32, signal: Signal) {
        let pid = i32::try_from(pid).ok().and_then(Pid::from_raw);
        if let Some(pid) = pid {
            let _ = kill_process(pid, signal);
        }
    }

    /// The processes that logged the hook `name` in `folder`.
    fn pids_of(folder: &Path, name: &str) -> BTreeSet<u32> {
        fs::read_to_string(folder.join("hooks.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.split_once(' '))
            .filter(|(_, hook)| *hook == name)
            .filter_map(|(pid, _)| pid.parse().ok())
            .collect()
    }
}
