//! The process manager, tested with real processes and real sockets on loopback. The process
//! manager is Unix only; these tests are Linux only, as they read `/proc` to find a master's
//! workers.
//!
//! This test binary is also the server under test. Started with `RWGI_TEST_FIXTURE` set, it
//! runs `rwgi_server::run_with` with a small app and with hooks that append each call to a
//! file, and the master re-executes this same binary as its workers. Hence `harness = false`:
//! `main` picks the role, then runs the tests one after another (each starts its own server,
//! and the machine running them may be small). Test selection is spelled as for the standard
//! harness.

#[cfg(target_os = "linux")]
fn main() -> std::process::ExitCode {
    if std::env::var_os(linux::FIXTURE_ENV).is_some() {
        return linux::fixture();
    }
    linux::run_tests()
}

#[cfg(not(target_os = "linux"))]
fn main() {
    println!("the process manager's tests run on Linux only: 0 passed, 0 failed");
}

mod support;

#[cfg(target_os = "linux")]
mod linux {
    use std::collections::{BTreeMap, BTreeSet};
    use std::fs::{self, File, OpenOptions};
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::path::PathBuf;
    use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::thread::{self, JoinHandle};
    use std::time::{Duration, Instant};

    use rustix::process::{kill_process, Pid, Signal};
    use rwgi::app::app_fn;
    use rwgi::body::Full;
    use rwgi::http::{HeaderMap, StatusCode};
    use rwgi::{Environ, Response, StartResponse};
    use rwgi_server::Hooks;

    use crate::support::children;

    pub(crate) const FIXTURE_ENV: &str = "RWGI_TEST_FIXTURE";
    /// Where the fixture's hooks append their calls.
    const HOOK_LOG_ENV: &str = "RWGI_TEST_HOOK_LOG";
    /// `fail`: every worker exits at start with the boot-failure status; `crash`: aborts;
    /// `fail-if:PATH`: exits with the boot-failure status while `PATH` exists.
    const BOOT_ENV: &str = "RWGI_TEST_WORKER_BOOT";
    /// `log`: the app has a lifespan that logs its startup and shutdown to the hook log, and
    /// answers `/state` with the pid its startup ran in; `fail`: one whose startup fails.
    const LIFESPAN_ENV: &str = "RWGI_TEST_LIFESPAN";
    /// The variable the master sets in its workers (see `arbiter.rs`).
    const WORKER_ID_ENV: &str = "RWGI_WORKER_ID";

    /// Each request of the load, and each probe, gives up after this long.
    const IO_TIMEOUT: Duration = Duration::from_secs(5);

    // ---- The server under test ----

    pub(crate) fn fixture() -> ExitCode {
        if std::env::var_os(WORKER_ID_ENV).is_some() {
            match std::env::var(BOOT_ENV).as_deref() {
                Ok("fail") => return ExitCode::from(3),
                Ok("crash") => std::process::abort(),
                Ok(flag) => {
                    let path = flag.strip_prefix("fail-if:").unwrap_or_default();
                    if !path.is_empty() && std::path::Path::new(path).exists() {
                        return ExitCode::from(3);
                    }
                }
                Err(_) => {}
            }
        }
        let log = std::env::var_os(HOOK_LOG_ENV).map(PathBuf::from);
        let program =
            rwgi_server::Program::new(app_fn(answer)).hooks(Arc::new(HookLog(log.clone())));
        match std::env::var(LIFESPAN_ENV).as_deref() {
            Ok(kind) => program
                .lifespan(Logged {
                    log: HookLog(log),
                    fails: kind == "fail",
                })
                .run(),
            Err(_) => program.run(),
        }
    }

    /// The state of the fixture's lifespan: the pid its startup ran in.
    #[derive(Clone, Debug)]
    struct StartedIn(u32);

    /// A lifespan that logs its startup and shutdown like a hook, and fails at startup when
    /// told to.
    #[derive(Debug)]
    struct Logged {
        log: HookLog,
        fails: bool,
    }

    impl rwgi::lifespan::Lifespan for Logged {
        type State = StartedIn;

        async fn startup(&self) -> Result<StartedIn, rwgi::Error> {
            self.log.record("startup", "");
            if self.fails {
                return Err(rwgi::Error::msg("the database is unreachable"));
            }
            Ok(StartedIn(std::process::id()))
        }

        async fn shutdown(&self, state: StartedIn) -> Result<(), rwgi::Error> {
            self.log.record("shutdown", &state.0.to_string());
            Ok(())
        }
    }

    /// `/sleep?ms=N` waits N ms; `/block` blocks its runtime thread for good; `/crash` aborts;
    /// `/overflow` overflows its stack. Every answer is the worker's pid.
    async fn answer(environ: Environ, start: StartResponse) -> Result<Response<Full>, rwgi::Error> {
        match environ.path_info() {
            "/sleep" => {
                let ms = environ
                    .query_string()
                    .strip_prefix("ms=")
                    .and_then(|ms| ms.parse().ok())
                    .unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            "/block" => loop {
                thread::sleep(Duration::from_secs(1));
            },
            "/crash" => std::process::abort(),
            "/overflow" => {
                std::hint::black_box(recurse(0));
            }
            "/state" => {
                let state = environ.extensions().get::<StartedIn>().map(|state| state.0);
                let text = state.map_or_else(|| "none".to_owned(), |pid| pid.to_string());
                return Ok(start
                    .start(StatusCode::OK, HeaderMap::new())
                    .body(Full::new(text)));
            }
            _ => {}
        }
        let pid = std::process::id().to_string();
        Ok(start
            .start(StatusCode::OK, HeaderMap::new())
            .body(Full::new(pid)))
    }

    fn recurse(depth: u64) -> u64 {
        let frame = std::hint::black_box([depth; 512]);
        if std::hint::black_box(true) {
            recurse(depth + 1) + frame[1]
        } else {
            frame[0]
        }
    }

    /// Appends `name pid arguments` for each hook call, so a test can tell which process
    /// made it and how often.
    #[derive(Debug)]
    struct HookLog(Option<PathBuf>);

    impl HookLog {
        fn record(&self, name: &str, arguments: &str) {
            let Some(path) = &self.0 else { return };
            let line = format!("{name} {} {arguments}\n", std::process::id());
            // One write per line, in append mode: lines from several processes never mix.
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap();
            file.write_all(line.as_bytes()).unwrap();
        }
    }

    impl Hooks for HookLog {
        fn on_starting(&self) {
            self.record("on_starting", "");
        }
        fn when_ready(&self, addresses: &[String]) {
            self.record("when_ready", &addresses.join(","));
        }
        fn on_reload(&self) {
            self.record("on_reload", "");
        }
        fn worker_spawned(&self, worker_id: u32, pid: u32) {
            self.record("worker_spawned", &format!("{worker_id} {pid}"));
        }
        fn worker_started(&self, worker_id: u32) {
            self.record("worker_started", &worker_id.to_string());
        }
        fn worker_exiting(&self, worker_id: u32) {
            self.record("worker_exiting", &worker_id.to_string());
        }
        fn worker_exited(&self, worker_id: u32, pid: u32) {
            self.record("worker_exited", &format!("{worker_id} {pid}"));
        }
        fn worker_aborted(&self, worker_id: u32, pid: u32) {
            self.record("worker_aborted", &format!("{worker_id} {pid}"));
        }
        fn on_exit(&self) {
            self.record("on_exit", "");
        }
    }

    // ---- The harness ----

    type Test = (&'static str, fn());

    const TESTS: &[Test] = &[
        (
            "a_killed_worker_is_replaced_within_a_second_and_the_others_serve_on",
            killed_worker,
        ),
        (
            "aborting_and_overflowing_workers_are_replaced",
            crashing_workers,
        ),
        (
            "a_worker_blocked_by_its_app_is_killed_after_timeout",
            blocked_worker,
        ),
        (
            "hup_under_load_fails_no_request_and_applies_the_new_settings",
            reload_under_load,
        ),
        (
            "max_requests_recycles_workers_under_load_without_failures",
            recycling_under_load,
        ),
        (
            "term_finishes_requests_in_flight_refuses_new_ones_and_exits_0",
            graceful_stop,
        ),
        ("quit_stops_at_once", immediate_stop),
        (
            "ttin_ttou_and_hooks_fire_in_the_master_the_right_number_of_times",
            hooks_and_scaling,
        ),
        (
            "a_worker_that_cannot_boot_stops_the_server_with_its_status",
            boot_failure,
        ),
        (
            "an_app_whose_startup_fails_stops_every_worker_and_the_server_with_status_3",
            lifespan_startup_failure,
        ),
        (
            "each_worker_starts_the_app_before_serving_and_shuts_it_down_after",
            lifespan_per_worker,
        ),
        (
            "workers_crashing_at_start_are_restarted_with_back_off",
            boot_crash_back_off,
        ),
        (
            "workers_stop_by_themselves_when_the_master_dies",
            orphaned_workers,
        ),
        (
            "usr1_makes_the_master_and_the_workers_reopen_their_logs",
            reopen_logs,
        ),
        (
            "single_process_mode_serves_from_the_one_process",
            single_process,
        ),
        ("workers_serve_tcp_and_unix_sockets_alike", tcp_and_unix),
        (
            "a_reload_with_broken_settings_keeps_the_old_ones",
            broken_reload,
        ),
        ("ttou_never_goes_below_one_worker", ttou_floor),
        (
            "workers_that_cannot_boot_after_a_reload_leave_the_old_ones_serving",
            reload_boot_failure,
        ),
        (
            "term_gives_up_on_requests_still_running_after_graceful_timeout",
            graceful_timeout_expires,
        ),
        (
            "a_timeout_of_zero_turns_the_heartbeat_check_off",
            no_timeout,
        ),
    ];

    pub(crate) fn run_tests() -> ExitCode {
        let arguments: Vec<String> = std::env::args().skip(1).collect();
        if arguments.iter().any(|argument| argument == "--list") {
            for (name, _) in TESTS {
                println!("{name}: test");
            }
            return ExitCode::SUCCESS;
        }
        // The standard harness's spelling: filters, `--exact`, `--skip NAME`; its other options
        // do not apply here, and those that take a value are skipped with it.
        let (mut filters, mut skips, mut exact) = (Vec::new(), Vec::new(), false);
        let mut arguments = arguments.iter();
        while let Some(argument) = arguments.next() {
            match argument.as_str() {
                "--exact" => exact = true,
                "--skip" => skips.extend(arguments.next()),
                "--test-threads" | "--format" | "--color" | "--logfile" | "-Z" => {
                    arguments.next();
                }
                option if option.starts_with('-') => {}
                filter => filters.push(filter),
            }
        }
        let matches = |name: &str, pattern: &str| {
            if exact {
                name == pattern
            } else {
                name.contains(pattern)
            }
        };
        let selected: Vec<&Test> = TESTS
            .iter()
            .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| matches(name, f)))
            .filter(|(name, _)| !skips.iter().any(|skip| matches(name, skip)))
            .collect();
        println!(
            "\nrunning {} test{}",
            selected.len(),
            if selected.len() == 1 { "" } else { "s" }
        );
        let started = Instant::now();
        let mut failed = Vec::new();
        for (name, test) in &selected {
            let test_started = Instant::now();
            let passed = std::panic::catch_unwind(test).is_ok();
            let verdict = if passed { "ok" } else { "FAILED" };
            println!("test {name} ... {verdict} ({:.1?})", test_started.elapsed());
            if !passed {
                failed.push(*name);
            }
        }
        if !failed.is_empty() {
            println!("\nfailures:");
            for name in &failed {
                println!("    {name}");
            }
        }
        println!(
            "\ntest result: {}. {} passed; {} failed; 0 ignored; 0 measured; {} filtered out; finished in {:.2}s\n",
            if failed.is_empty() { "ok" } else { "FAILED" },
            selected.len() - failed.len(),
            failed.len(),
            TESTS.len() - selected.len(),
            started.elapsed().as_secs_f64()
        );
        if failed.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(101)
        }
    }

    // ---- Helpers ----

    /// A master process running the fixture, with its own scratch folder.
    struct Server {
        master: Child,
        address: SocketAddr,
        folder: PathBuf,
    }

    impl Server {
        fn start(settings: &str) -> Server {
            Server::start_with(settings, &[])
        }

        /// Starts a master with `settings` as its config file (`{folder}` in it names the
        /// server's scratch folder) and `environment` added.
        fn start_with(settings: &str, environment: &[(&str, &str)]) -> Server {
            static COUNT: AtomicUsize = AtomicUsize::new(0);
            let folder = std::env::temp_dir().join(format!(
                "rwgi-arbiter-{}-{}",
                std::process::id(),
                COUNT.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir_all(&folder).unwrap();
            let settings = settings.replace("{folder}", &folder.display().to_string());
            fs::write(folder.join("rwgi.toml"), &settings).unwrap();
            let address = free_address();
            // A second address, when the settings name one, is a Unix socket in the folder.
            let mut bind = address.to_string();
            if settings.contains("{unix}") {
                bind = format!("{bind},unix:{}", folder.join("s.sock").display());
            }
            let master = Command::new(std::env::current_exe().unwrap())
                .arg("--bind")
                .arg(bind)
                .arg("--config")
                .arg(folder.join("rwgi.toml"))
                .env(FIXTURE_ENV, "1")
                .env(HOOK_LOG_ENV, folder.join("hooks.log"))
                .envs(environment.iter().copied())
                .stdin(Stdio::null())
                .stdout(File::create(folder.join("stdout.log")).unwrap())
                .stderr(File::create(folder.join("stderr.log")).unwrap())
                .spawn()
                .unwrap();
            Server {
                master,
                address,
                folder,
            }
        }

        /// Waits until a worker answers; returns its pid.
        fn wait_ready(&self) -> u32 {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match pid_at(self.address, "/pid") {
                    Ok(pid) => return pid,
                    Err(error) => assert!(
                        Instant::now() < deadline,
                        "the server never answered: {error}"
                    ),
                }
                thread::sleep(Duration::from_millis(20));
            }
        }

        fn pid(&self) -> u32 {
            self.master.id()
        }

        fn signal(&self, signal: Signal) {
            kill(self.pid(), signal);
        }

        /// The master's live children, from `/proc`.
        fn workers(&self) -> BTreeSet<u32> {
            children(self.pid())
        }

        /// Waits up to `limit` until `done` holds for the set of workers; returns that set.
        fn wait_workers(
            &self,
            limit: Duration,
            done: impl Fn(&BTreeSet<u32>) -> bool,
        ) -> BTreeSet<u32> {
            let deadline = Instant::now() + limit;
            loop {
                let workers = self.workers();
                if done(&workers) {
                    return workers;
                }
                assert!(
                    Instant::now() < deadline,
                    "workers never settled; last seen {workers:?}"
                );
                thread::sleep(Duration::from_millis(20));
            }
        }

        /// Waits up to `limit` for the master to exit.
        fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
            let deadline = Instant::now() + limit;
            loop {
                if let Some(status) = self.master.try_wait().unwrap() {
                    return status;
                }
                assert!(
                    Instant::now() < deadline,
                    "the master did not exit within {limit:?}"
                );
                thread::sleep(Duration::from_millis(10));
            }
        }

        /// The hook calls so far: (hook, pid of the calling process, arguments).
        fn hooks(&self) -> Vec<(String, u32, String)> {
            let text = fs::read_to_string(self.folder.join("hooks.log")).unwrap_or_default();
            text.lines()
                .map(|line| {
                    let mut parts = line.splitn(3, ' ');
                    let name = parts.next().unwrap().to_owned();
                    let pid = parts.next().unwrap().parse().unwrap();
                    (name, pid, parts.next().unwrap_or("").to_owned())
                })
                .collect()
        }

        /// Waits until exactly `count` workers run and each has started serving (its
        /// `worker_started` hook ran: it has read its settings and holds its sockets).
        fn wait_serving(&self, count: usize) -> BTreeSet<u32> {
            self.wait_workers(Duration::from_secs(5), |workers| {
                let started: BTreeSet<u32> = self
                    .hooks()
                    .into_iter()
                    .filter(|(hook, ..)| hook == "worker_started")
                    .map(|(_, caller, _)| caller)
                    .collect();
                workers.len() == count && workers.is_subset(&started)
            })
        }

        fn hook_count(&self, name: &str) -> usize {
            self.hooks()
                .iter()
                .filter(|(hook, ..)| hook == name)
                .count()
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            if self.master.try_wait().unwrap().is_none() {
                let workers = self.workers();
                kill(self.pid(), Signal::KILL);
                for worker in workers {
                    kill(worker, Signal::KILL);
                }
                let _ = self.master.wait();
            }
            if thread::panicking() {
                let log = fs::read_to_string(self.folder.join("stderr.log")).unwrap_or_default();
                eprintln!("--- the server's stderr ---\n{log}--- end ---");
            }
            let _ = fs::remove_dir_all(&self.folder);
        }
    }

    fn kill(pid: u32, signal: Signal) {
        let pid = Pid::from_raw(pid.try_into().unwrap()).unwrap();
        let _ = kill_process(pid, signal);
    }

    /// Waits up to `limit` for `done`, which is retried every 20 ms.
    fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + limit;
        while !done() {
            assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether `pid` is a live process (neither gone nor a zombie), from `/proc` (Linux).
    fn alive(pid: u32) -> bool {
        fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                let (_, rest) = stat.rsplit_once(')')?;
                rest.split_whitespace().next().map(|state| state != "Z")
            })
            .unwrap_or(false)
    }

    /// A loopback address with a port free a moment ago.
    fn free_address() -> SocketAddr {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    }

    /// One `GET` on a fresh connection (`Connection: close`); the status and the body.
    fn get(address: SocketAddr, target: &str, timeout: Duration) -> Result<(u16, String), String> {
        let mut stream =
            TcpStream::connect_timeout(&address, timeout).map_err(|e| format!("connect: {e}"))?;
        stream.set_read_timeout(Some(timeout)).unwrap();
        stream.set_write_timeout(Some(timeout)).unwrap();
        write!(
            stream,
            "GET {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
        )
        .map_err(|e| format!("send: {e}"))?;
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .map_err(|e| format!("receive: {e}"))?;
        let response = String::from_utf8_lossy(&response);
        let (head, body) = response
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("no complete head: {response:?}"))?;
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|status| status.parse().ok())
            .ok_or_else(|| format!("no status: {head:?}"))?;
        Ok((status, body.to_owned()))
    }

    /// The pid a worker answers `target` with.
    fn pid_at(address: SocketAddr, target: &str) -> Result<u32, String> {
        match get(address, target, IO_TIMEOUT)? {
            (200, body) => body.parse().map_err(|_| format!("not a pid: {body:?}")),
            (status, body) => Err(format!("status {status}: {body:?}")),
        }
    }

    /// Polls `/pid` until a worker not in `old` answers, for up to `limit`; returns its pid.
    fn new_worker_answers(address: SocketAddr, old: &BTreeSet<u32>, limit: Duration) -> u32 {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(pid) = pid_at(address, "/pid") {
                if !old.contains(&pid) {
                    return pid;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no new worker answered within {limit:?}"
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// A bounded load: `clients` threads, each sending `requests` requests one after another.
    struct Load(Vec<JoinHandle<Vec<Answer>>>);

    /// When a request ended, and the pid that answered it or why it failed.
    type Answer = (Instant, Result<u32, String>);

    /// What a load got: successes by the pid that answered, and each failure with its time.
    struct Outcome {
        by_pid: BTreeMap<u32, usize>,
        failures: Vec<(Instant, String)>,
    }

    impl Load {
        fn start(
            address: SocketAddr,
            clients: usize,
            requests: usize,
            target: &'static str,
        ) -> Load {
            Load(
                (0..clients)
                    .map(|_| {
                        thread::spawn(move || {
                            (0..requests)
                                .map(|_| {
                                    let result = pid_at(address, target);
                                    (Instant::now(), result)
                                })
                                .collect()
                        })
                    })
                    .collect(),
            )
        }

        fn finish(self) -> Outcome {
            let mut outcome = Outcome {
                by_pid: BTreeMap::new(),
                failures: Vec::new(),
            };
            for client in self.0 {
                for (at, result) in client.join().unwrap() {
                    match result {
                        Ok(pid) => *outcome.by_pid.entry(pid).or_default() += 1,
                        Err(error) => outcome.failures.push((at, error)),
                    }
                }
            }
            outcome
        }
    }

    impl Outcome {
        fn succeeded(&self) -> usize {
            self.by_pid.values().sum()
        }
    }

    // ---- The tests ----

    /// kill -9 of a worker under load: a new worker serves within a second, and the only
    /// requests that fail are those the killed worker held (at most one per client).
    fn killed_worker() {
        let server = Server::start("workers = 2\ntimeout = 5\n");
        server.wait_ready();
        let before = server.wait_serving(2);
        let (clients, requests) = (4, 100);
        let load = Load::start(server.address, clients, requests, "/sleep?ms=10");
        thread::sleep(Duration::from_millis(300));

        let victim = *before.first().unwrap();
        let survivor = *before.last().unwrap();
        let killed_at = Instant::now();
        kill(victim, Signal::KILL);
        let replacement = new_worker_answers(server.address, &before, Duration::from_secs(1));
        assert!(killed_at.elapsed() < Duration::from_secs(1));

        let outcome = load.finish();
        assert_eq!(
            outcome.succeeded() + outcome.failures.len(),
            clients * requests
        );
        assert!(
            outcome.failures.len() <= clients,
            "more failures than requests the killed worker can have held: {:?}",
            outcome.failures
        );
        for (at, error) in &outcome.failures {
            assert!(
                *at >= killed_at,
                "a request failed before the kill: {error}"
            );
        }
        assert!(outcome.by_pid.get(&survivor).copied().unwrap_or(0) > 0);
        assert!(outcome
            .by_pid
            .keys()
            .all(|pid| [victim, survivor, replacement].contains(pid)));
        assert_eq!(server.hook_count("worker_aborted"), 0);
    }

    /// A worker that aborts, or overflows its stack, is replaced at once.
    fn crashing_workers() {
        let server = Server::start("workers = 1\ntimeout = 5\n");
        let mut seen = BTreeSet::from([server.wait_ready()]);
        for target in ["/crash", "/overflow"] {
            assert!(
                get(server.address, target, IO_TIMEOUT).is_err(),
                "{target} answered"
            );
            let replacement = new_worker_answers(server.address, &seen, Duration::from_secs(1));
            seen.insert(replacement);
        }
        assert_eq!(server.hook_count("worker_exited"), 2);
        assert_eq!(server.hook_count("worker_spawned"), 3);
    }

    /// With its only runtime thread blocked by the app, a worker's heartbeat stops, and the
    /// master kills it after `timeout` and starts another.
    fn blocked_worker() {
        let server = Server::start("workers = 1\nthreads = 1\ntimeout = 1\n");
        let stuck = server.wait_ready();
        let address = server.address;
        let blocked = thread::spawn(move || get(address, "/block", IO_TIMEOUT));
        let sent = Instant::now();
        let replacement = new_worker_answers(
            server.address,
            &BTreeSet::from([stuck]),
            Duration::from_secs(4),
        );
        let waited = sent.elapsed();
        assert!(
            waited >= Duration::from_millis(700),
            "replaced after only {waited:?}"
        );
        assert!(
            waited < Duration::from_secs(3),
            "replaced only after {waited:?}"
        );
        assert!(
            blocked.join().unwrap().is_err(),
            "the blocked request was answered"
        );

        let aborted: Vec<_> = server
            .hooks()
            .into_iter()
            .filter(|(hook, ..)| hook == "worker_aborted")
            .collect();
        assert_eq!(aborted.len(), 1);
        let (_, caller, arguments) = &aborted[0];
        assert_eq!(*caller, server.pid());
        assert!(arguments.ends_with(&format!(" {stuck}")), "{arguments}");
        assert_ne!(replacement, stuck);
    }

    /// HUP under load: no request fails, and the new settings (three workers instead of two)
    /// are in force: three new workers, the old ones gone.
    fn reload_under_load() {
        let server = Server::start("workers = 2\ntimeout = 5\n");
        server.wait_ready();
        let old = server.wait_serving(2);
        let load = Load::start(server.address, 4, 150, "/sleep?ms=5");
        thread::sleep(Duration::from_millis(300));
        fs::write(
            server.folder.join("rwgi.toml"),
            "workers = 3\ntimeout = 5\n",
        )
        .unwrap();
        server.signal(Signal::HUP);

        let new = server.wait_workers(Duration::from_secs(5), |w| {
            w.len() == 3 && w.is_disjoint(&old)
        });
        let outcome = load.finish();
        assert_eq!(outcome.failures, Vec::new());
        assert_eq!(outcome.succeeded(), 600);
        for _ in 0..20 {
            let pid = pid_at(server.address, "/pid").unwrap();
            assert!(
                new.contains(&pid),
                "{pid} is not one of the new workers {new:?}"
            );
        }
        assert_eq!(server.hook_count("on_reload"), 1);
    }

    /// Workers that stop themselves after `max_requests` are replaced with no failed request.
    fn recycling_under_load() {
        let server = Server::start("workers = 2\ntimeout = 5\nmax_requests = 20\n");
        server.wait_ready();
        let load = Load::start(server.address, 4, 60, "/sleep?ms=2");
        let outcome = load.finish();
        assert_eq!(outcome.failures, Vec::new());
        assert_eq!(outcome.succeeded(), 240);
        // Workers took turns, and each one that is gone went at its 20th request or later (one
        // request of the first two was the readiness probe). How many more it answered while it
        // stopped accepting is the serve loop's business.
        let live = server.workers();
        assert!(outcome.by_pid.len() >= 4, "{:?}", outcome.by_pid);
        for (pid, count) in &outcome.by_pid {
            assert!(live.contains(pid) || *count >= 19, "{:?}", outcome.by_pid);
        }
        assert_eq!(server.hook_count("worker_aborted"), 0);
    }

    /// TERM with requests in flight: they complete, new connections are refused, the master
    /// exits with status 0 and removes its pidfile.
    fn graceful_stop() {
        let mut server = Server::start(
            "workers = 2\ntimeout = 5\ngraceful_timeout = 5\npidfile = \"{folder}/pid\"\n",
        );
        server.wait_ready();
        let pidfile = server.folder.join("pid");
        assert_eq!(
            fs::read_to_string(&pidfile).unwrap().trim(),
            server.pid().to_string()
        );
        let load = Load::start(server.address, 4, 1, "/sleep?ms=1500");
        thread::sleep(Duration::from_millis(400));
        server.signal(Signal::TERM);
        let stopped_at = Instant::now();

        let refused = loop {
            match TcpStream::connect_timeout(&server.address, Duration::from_millis(200)) {
                Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => {
                    break stopped_at.elapsed()
                }
                _ => assert!(
                    stopped_at.elapsed() < Duration::from_secs(1),
                    "still accepting connections"
                ),
            }
            thread::sleep(Duration::from_millis(10));
        };
        let outcome = load.finish();
        assert_eq!(outcome.failures, Vec::new());
        assert_eq!(outcome.succeeded(), 4);
        // Refused while the requests were still running: the listeners closed first.
        assert!(
            refused < Duration::from_millis(1000),
            "refused only after {refused:?}"
        );

        let status = server.wait_exit(Duration::from_secs(5));
        assert_eq!(status.code(), Some(0));
        assert!(!pidfile.exists(), "the pidfile is still there");
        assert_eq!(children(server.pid()), BTreeSet::new());
    }

    /// QUIT stops at once: the request in flight is cut, the master exits with status 0.
    fn immediate_stop() {
        let mut server = Server::start("workers = 1\ntimeout = 5\ngraceful_timeout = 10\n");
        server.wait_ready();
        let load = Load::start(server.address, 1, 1, "/sleep?ms=5000");
        thread::sleep(Duration::from_millis(300));
        server.signal(Signal::QUIT);
        let status = server.wait_exit(Duration::from_secs(3));
        assert_eq!(status.code(), Some(0));
        let outcome = load.finish();
        assert_eq!(outcome.failures.len(), 1);
    }

    /// TTIN adds a worker, TTOU removes the oldest, HUP replaces them all; every master hook
    /// runs in the master, as often as its event happened.
    fn hooks_and_scaling() {
        let mut server = Server::start("workers = 2\ntimeout = 5\ngraceful_timeout = 5\n");
        server.wait_ready();
        let first = server.wait_serving(2);
        server.signal(Signal::TTIN);
        let more = server.wait_workers(Duration::from_secs(5), |w| {
            w.len() == 3 && w.is_superset(&first)
        });
        server.signal(Signal::TTOU);
        let oldest = server
            .hooks()
            .iter()
            .find(|(hook, ..)| hook == "worker_spawned")
            .map(|(_, _, arguments)| arguments.split(' ').nth(1).unwrap().parse::<u32>().unwrap())
            .unwrap();
        let fewer = server.wait_workers(Duration::from_secs(5), |w| {
            w.len() == 2 && !w.contains(&oldest)
        });
        assert!(fewer.is_subset(&more));
        server.signal(Signal::HUP);
        server.wait_workers(Duration::from_secs(5), |w| {
            w.len() == 2 && w.is_disjoint(&fewer)
        });
        // TERM only once the new workers handle it (before that it would just end them).
        wait_until(Duration::from_secs(5), "the new workers started", || {
            server.hook_count("worker_started") == 5
        });
        server.signal(Signal::TERM);
        assert_eq!(server.wait_exit(Duration::from_secs(10)).code(), Some(0));

        let hooks = server.hooks();
        let count = |name: &str| hooks.iter().filter(|(hook, ..)| hook == name).count();
        let spawned: BTreeSet<u32> = hooks
            .iter()
            .filter(|(hook, ..)| hook == "worker_spawned")
            .map(|(_, _, arguments)| arguments.split(' ').nth(1).unwrap().parse().unwrap())
            .collect();
        for (hook, caller, _) in &hooks {
            if hook == "worker_started" || hook == "worker_exiting" {
                assert!(
                    spawned.contains(caller),
                    "{hook} ran in {caller}, not a worker"
                );
            } else {
                assert_eq!(
                    *caller,
                    server.pid(),
                    "{hook} ran in {caller}, not the master"
                );
            }
        }
        // Each worker ran its own start and exit hooks once.
        let callers = |name: &str| -> Vec<u32> {
            let mut callers: Vec<u32> = hooks
                .iter()
                .filter(|(hook, ..)| hook == name)
                .map(|(_, caller, _)| *caller)
                .collect();
            callers.sort_unstable();
            callers
        };
        assert_eq!(
            callers("worker_started"),
            Vec::from_iter(spawned.iter().copied())
        );
        assert_eq!(
            callers("worker_exiting"),
            Vec::from_iter(spawned.iter().copied())
        );
        assert_eq!(count("on_starting"), 1);
        assert_eq!(count("when_ready"), 1);
        assert_eq!(count("on_reload"), 1);
        // 2 at start, 1 for TTIN, 2 for HUP; each of them exited.
        assert_eq!(count("worker_spawned"), 5);
        assert_eq!(count("worker_exited"), 5);
        assert_eq!(count("worker_aborted"), 0);
        assert_eq!(count("on_exit"), 1);
        assert_eq!(hooks.last().unwrap().0, "on_exit");
        let workers = |name: &str| -> BTreeSet<String> {
            hooks
                .iter()
                .filter(|(hook, ..)| hook == name)
                .map(|(_, _, arguments)| arguments.clone())
                .collect()
        };
        assert_eq!(workers("worker_spawned"), workers("worker_exited"));
        let ready = hooks
            .iter()
            .find(|(hook, ..)| hook == "when_ready")
            .unwrap();
        assert_eq!(ready.2, format!("http://{}", server.address));
    }

    /// A worker exiting with the boot-failure status stops the server, which exits with the
    /// same status and starts no more workers.
    fn boot_failure() {
        let mut server = Server::start_with("workers = 2\n", &[(BOOT_ENV, "fail")]);
        let status = server.wait_exit(Duration::from_secs(5));
        assert_eq!(status.code(), Some(3));
        assert_eq!(server.hook_count("worker_spawned"), 2);
        assert_eq!(server.hook_count("when_ready"), 0);
    }

    /// The app's startup fails in every worker (REQ-LIFE-3): each worker exits with the
    /// boot-failure status without serving, and the master stops with it rather than start
    /// new workers in a loop, saying why in its log.
    fn lifespan_startup_failure() {
        let mut server = Server::start_with("workers = 2\n", &[(LIFESPAN_ENV, "fail")]);
        let status = server.wait_exit(Duration::from_secs(10));
        assert_eq!(status.code(), Some(3));
        // No worker was started again; the second may have been stopped before its startup ran.
        assert_eq!(server.hook_count("worker_spawned"), 2);
        assert!((1..=2).contains(&server.hook_count("startup")));
        assert_eq!(server.hook_count("worker_started"), 0);
        assert_eq!(server.hook_count("shutdown"), 0);
        let errors = fs::read_to_string(server.folder.join("stderr.log")).unwrap();
        assert!(
            errors.contains("the app's startup failed: the database is unreachable"),
            "{errors}"
        );
        assert!(
            errors.contains("failed to boot: stopping the server"),
            "{errors}"
        );
    }

    /// Each worker process runs the app's startup once before it serves, hands the state to
    /// its requests, and runs the shutdown once after a graceful stop (REQ-LIFE-1, REQ-LIFE-2,
    /// REQ-LIFE-4).
    fn lifespan_per_worker() {
        let mut server = Server::start_with("workers = 2\n", &[(LIFESPAN_ENV, "log")]);
        server.wait_ready();
        let workers = server.wait_serving(2);
        for _ in 0..4 {
            let (status, started_in) = get(server.address, "/state", IO_TIMEOUT).unwrap();
            assert_eq!(status, 200);
            let started_in: u32 = started_in.parse().unwrap();
            assert!(
                workers.contains(&started_in),
                "{started_in} is not a worker"
            );
        }
        server.signal(Signal::TERM);
        assert_eq!(server.wait_exit(Duration::from_secs(10)).code(), Some(0));
        let hooks = server.hooks();
        let callers = |name: &str| -> BTreeSet<u32> {
            hooks
                .iter()
                .filter(|(hook, ..)| hook == name)
                .map(|(_, caller, _)| *caller)
                .collect()
        };
        assert_eq!(callers("startup"), workers);
        assert_eq!(callers("shutdown"), workers);
        assert_eq!(server.hook_count("startup"), 2);
        assert_eq!(server.hook_count("shutdown"), 2);
        // In each worker: startup before it serves, shutdown after it stopped serving.
        for worker in workers {
            let order: Vec<&str> = hooks
                .iter()
                .filter(|(_, caller, _)| *caller == worker)
                .map(|(hook, ..)| hook.as_str())
                .collect();
            assert_eq!(
                order,
                ["startup", "worker_started", "shutdown", "worker_exiting"]
            );
        }
    }

    /// Workers that crash before their first heartbeat are restarted with growing delays,
    /// not in a tight loop; TERM still stops the master cleanly.
    fn boot_crash_back_off() {
        let mut server = Server::start_with("workers = 1\n", &[(BOOT_ENV, "crash")]);
        thread::sleep(Duration::from_secs(2));
        // Delays of 0, 0, 0.1, 0.2, 0.4, 0.8 s: six starts in the first 1.5 s, then 1.6 s.
        let spawned = server.hook_count("worker_spawned");
        assert!(
            (4..=8).contains(&spawned),
            "{spawned} workers started in 2 s"
        );
        server.signal(Signal::TERM);
        assert_eq!(server.wait_exit(Duration::from_secs(5)).code(), Some(0));
    }

    /// A worker whose master was killed finds out at its next heartbeat and stops.
    fn orphaned_workers() {
        let mut server = Server::start("workers = 2\ntimeout = 2\n");
        server.wait_ready();
        let workers = server.wait_serving(2);
        server.signal(Signal::KILL);
        server.wait_exit(Duration::from_secs(1));
        let deadline = Instant::now() + Duration::from_secs(3);
        while workers.iter().any(|&pid| alive(pid)) {
            assert!(Instant::now() < deadline, "workers outlived their master");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// USR1 to the master: it reopens its error log, and the workers, to which it forwards the
    /// signal, reopen theirs and their access logs (the master has none), after rotation.
    fn reopen_logs() {
        let server = Server::start(
            "workers = 2\naccesslog = \"{folder}/access.log\"\nerrorlog = \"{folder}/error.log\"\n",
        );
        server.wait_ready();
        let access = server.folder.join("access.log");
        let error = server.folder.join("error.log");
        wait_until(Duration::from_secs(2), "the first access log line", || {
            fs::metadata(&access).is_ok_and(|meta| meta.len() > 0)
        });
        fs::rename(&access, server.folder.join("access.log.1")).unwrap();
        fs::rename(&error, server.folder.join("error.log.1")).unwrap();
        server.signal(Signal::USR1);
        wait_until(Duration::from_secs(2), "the master reopened", || {
            error.exists()
        });
        wait_until(Duration::from_secs(3), "a worker reopened", || {
            pid_at(server.address, "/pid").unwrap();
            fs::metadata(&access).is_ok_and(|meta| meta.len() > 0)
        });
    }

    /// `single_process`: the master serves by itself, runs every hook in its own process,
    /// starts no worker, and stops on TERM with status 0.
    fn single_process() {
        let mut server = Server::start("single_process = true\n");
        assert_eq!(server.wait_ready(), server.pid());
        assert_eq!(server.workers(), BTreeSet::new());
        server.signal(Signal::TERM);
        assert_eq!(server.wait_exit(Duration::from_secs(5)).code(), Some(0));
        let hooks = server.hooks();
        assert!(hooks.iter().all(|(_, caller, _)| *caller == server.pid()));
        let names: Vec<&str> = hooks.iter().map(|(hook, ..)| hook.as_str()).collect();
        assert_eq!(
            names,
            [
                "on_starting",
                "when_ready",
                "worker_started",
                "worker_exiting",
                "on_exit"
            ]
        );
    }

    /// Both listeners reach the workers; on stop the master, which made the socket file,
    /// removes it (the workers, which inherited it, leave it alone while they run).
    fn tcp_and_unix() {
        let mut server = Server::start("workers = 2\n# {unix}\n");
        server.wait_ready();
        let workers = server.wait_serving(2);
        let path = server.folder.join("s.sock");
        for _ in 0..10 {
            let mut stream = std::os::unix::net::UnixStream::connect(&path).unwrap();
            stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
            stream
                .write_all(b"GET /pid HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).unwrap();
            let (head, pid) = response.split_once("\r\n\r\n").unwrap();
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            assert!(
                workers.contains(&pid.parse().unwrap()),
                "{pid} is no worker"
            );
            let tcp = pid_at(server.address, "/pid").unwrap();
            assert!(workers.contains(&tcp), "{tcp} is no worker");
        }
        // A worker that stops does not take the file with it.
        server.signal(Signal::TTOU);
        server.wait_workers(Duration::from_secs(5), |w| w.len() == 1);
        assert!(path.exists());
        server.signal(Signal::TERM);
        assert_eq!(server.wait_exit(Duration::from_secs(5)).code(), Some(0));
        assert!(!path.exists(), "the socket file is still there");
    }

    /// HUP with a config file that no longer parses: the master says why, keeps its settings
    /// and its workers, and serves on.
    fn broken_reload() {
        let server = Server::start("workers = 2\n");
        server.wait_ready();
        let workers = server.wait_serving(2);
        fs::write(server.folder.join("rwgi.toml"), "workers = \"many\"\n").unwrap();
        server.signal(Signal::HUP);
        wait_until(
            Duration::from_secs(2),
            "the reload error in the log",
            || {
                fs::read_to_string(server.folder.join("stderr.log"))
                    .unwrap()
                    .contains("reload: keeping the current settings")
            },
        );
        thread::sleep(Duration::from_millis(200));
        assert_eq!(server.workers(), workers);
        assert!(workers.contains(&pid_at(server.address, "/pid").unwrap()));
        assert_eq!(server.hook_count("on_reload"), 0);
        assert_eq!(server.hook_count("worker_spawned"), 2);
    }

    /// TTOU with one worker left keeps that worker.
    fn ttou_floor() {
        let server = Server::start("workers = 1\n");
        let only = server.wait_ready();
        server.signal(Signal::TTOU);
        thread::sleep(Duration::from_millis(300));
        assert_eq!(server.workers(), BTreeSet::from([only]));
        assert_eq!(pid_at(server.address, "/pid").unwrap(), only);
    }

    /// After a HUP, new workers that cannot boot do not stop the server: the old workers serve
    /// on while the new ones are retried with back-off, and once they boot, they take over.
    fn reload_boot_failure() {
        let flag = std::env::temp_dir().join(format!("rwgi-arbiter-{}-flag", std::process::id()));
        let server = Server::start_with(
            "workers = 2\n",
            &[(BOOT_ENV, &format!("fail-if:{}", flag.display()))],
        );
        server.wait_ready();
        let old = server.wait_serving(2);
        fs::write(&flag, "").unwrap();
        server.signal(Signal::HUP);
        wait_until(
            Duration::from_secs(3),
            "new workers failing to boot",
            || server.hook_count("worker_exited") >= 4,
        );
        for _ in 0..10 {
            assert!(old.contains(&pid_at(server.address, "/pid").unwrap()));
        }
        fs::remove_file(&flag).unwrap();
        let new = server.wait_workers(Duration::from_secs(5), |w| {
            w.len() == 2 && w.is_disjoint(&old)
        });
        assert!(new.contains(&pid_at(server.address, "/pid").unwrap()));
    }

    /// TERM with a request that outlasts `graceful_timeout`: the request is cut, the worker
    /// stops by itself, and the master exits with status 0 soon after the graceful timeout.
    fn graceful_timeout_expires() {
        let mut server = Server::start("workers = 1\ntimeout = 5\ngraceful_timeout = 1\n");
        server.wait_serving(1);
        let load = Load::start(server.address, 1, 1, "/sleep?ms=8000");
        thread::sleep(Duration::from_millis(300));
        server.signal(Signal::TERM);
        let stopped_at = Instant::now();
        assert_eq!(server.wait_exit(Duration::from_secs(4)).code(), Some(0));
        let took = stopped_at.elapsed();
        assert!(
            took >= Duration::from_millis(900),
            "stopped after only {took:?}"
        );
        assert_eq!(load.finish().failures.len(), 1);
        // The worker gave up by itself, in time to run its exit hook, before the master's kill.
        assert_eq!(server.hook_count("worker_exiting"), 1);
    }

    /// With `timeout = 0` a worker blocked by its app is left alone.
    fn no_timeout() {
        let server = Server::start("workers = 1\nthreads = 1\ntimeout = 0\n");
        let stuck = server.wait_ready();
        let address = server.address;
        // The request never completes; the server's teardown ends it.
        let _blocked = thread::spawn(move || get(address, "/block", Duration::from_secs(3)));
        thread::sleep(Duration::from_millis(1500));
        assert_eq!(server.workers(), BTreeSet::from([stuck]));
        assert_eq!(server.hook_count("worker_aborted"), 0);
    }
}
