//! Instructions and heap allocations per call of each in-process case, counted under
//! cachegrind: the steadiest figures on a shared machine.
//!
//! `cargo bench --bench instructions` runs every case twice under
//! `valgrind --tool=cachegrind --cache-sim=no`, with two call counts, and reports
//! `(I2 - I1) / (n2 - n1)`: start-up cancels out. Each case first builds its inputs
//! (requests or environs) and then calls the code under test once per input; the `input/*`
//! cases only build and drop the inputs, and their count is subtracted, so the figures are
//! the cost of the code under test alone. Allocations are counted by this binary's global
//! allocator around the calls only.
//!
//! `instructions run CASE N` runs one case natively and prints its allocation count; that is
//! what the driver runs under valgrind.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::Empty;
use rwgi::http::Request;
use rwgi::{App, AppExt, Environ, Input};

use common::{Forward, Hello, PassThrough};

/// Counts every allocation and reallocation, then defers to the system allocator.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The call counts of the two cachegrind runs.
const CALLS: (u64, u64) = (2_000, 12_000);

/// How a case builds the input of one call.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Inputs {
    SmallRequest,
    HeaderHeavyRequest,
    HyperRequest,
    Environ,
}

/// One measured case: its name, what it builds per call, and the code under test.
struct Case {
    name: &'static str,
    input: Inputs,
    /// Runs the code under test once per input; returns what it made (body bytes sent, or
    /// environs built), so that nothing is optimised away.
    run: fn(Built) -> usize,
}

/// The inputs of all calls, built before counting starts.
enum Built {
    Requests(Vec<Request<Input>>),
    HyperRequests(Vec<Request<Empty<Bytes>>>),
    Environs(Vec<Environ>),
}

fn build(input: Inputs, calls: u64) -> Built {
    let connection = common::connection();
    let calls = 0..calls;
    match input {
        Inputs::SmallRequest => Built::Requests(
            calls
                .map(|_| common::small_request(Input::empty()))
                .collect(),
        ),
        Inputs::HeaderHeavyRequest => Built::Requests(
            calls
                .map(|_| common::header_heavy_request(Input::empty()))
                .collect(),
        ),
        Inputs::HyperRequest => {
            Built::HyperRequests(calls.map(|_| common::small_request(Empty::new())).collect())
        }
        Inputs::Environ => Built::Environs(
            calls
                .map(|_| common::environ(common::small_request(Input::empty()), &connection))
                .collect(),
        ),
    }
}

fn environs(built: Built) -> usize {
    let Built::Requests(requests) = built else {
        unreachable!("environ cases build requests")
    };
    let connection = common::connection();
    let mut built = 0;
    for request in requests {
        drop(std::hint::black_box(common::environ(request, &connection)));
        built += 1;
    }
    built
}

fn apps<A: App>(app: A) -> impl Fn(Built) -> usize {
    move |built| {
        let Built::Environs(environs) = built else {
            unreachable!("app cases build environs")
        };
        environs
            .into_iter()
            .map(|environ| common::call_app(&app, environ))
            .sum()
    }
}

fn serve<S, B>(service: S) -> impl Fn(Built) -> usize
where
    S: hyper::service::Service<Request<Empty<Bytes>>, Response = rwgi::http::Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Debug,
{
    move |built| {
        let Built::HyperRequests(requests) = built else {
            unreachable!("request cases build hyper requests")
        };
        requests
            .into_iter()
            .map(|request| common::serve_one(&service, request))
            .sum()
    }
}

fn drop_inputs(built: Built) -> usize {
    drop(std::hint::black_box(built));
    0
}

const CASES: &[Case] = &[
    Case {
        name: "input/small_request",
        input: Inputs::SmallRequest,
        run: drop_inputs,
    },
    Case {
        name: "input/header_heavy_request",
        input: Inputs::HeaderHeavyRequest,
        run: drop_inputs,
    },
    Case {
        name: "input/hyper_request",
        input: Inputs::HyperRequest,
        run: drop_inputs,
    },
    Case {
        name: "input/environ",
        input: Inputs::Environ,
        run: drop_inputs,
    },
    Case {
        name: "environ/small",
        input: Inputs::SmallRequest,
        run: environs,
    },
    Case {
        name: "environ/header_heavy",
        input: Inputs::HeaderHeavyRequest,
        run: environs,
    },
    Case {
        name: "app/hello",
        input: Inputs::Environ,
        run: |built| apps(Hello)(built),
    },
    Case {
        name: "app/hello_one_pass_through",
        input: Inputs::Environ,
        run: |built| apps(Hello.with(PassThrough))(built),
    },
    Case {
        name: "app/hello_stack3",
        input: Inputs::Environ,
        run: |built| apps(common::hello_stack())(built),
    },
    Case {
        name: "app/hello_one_forward",
        input: Inputs::Environ,
        run: |built| apps(Hello.with(Forward))(built),
    },
    Case {
        name: "app/hello_lint",
        input: Inputs::Environ,
        run: |built| apps(common::hello_lint())(built),
    },
    Case {
        name: "request/raw_hyper_service_fn",
        input: Inputs::HyperRequest,
        run: |built| serve(common::raw_hyper_service())(built),
    },
    Case {
        name: "request/rwgi_hello",
        input: Inputs::HyperRequest,
        run: |built| serve(common::rwgi_service(Hello, common::connection()))(built),
    },
    Case {
        name: "request/rwgi_hello_stack3",
        input: Inputs::HyperRequest,
        run: |built| {
            serve(common::rwgi_service(
                common::hello_stack(),
                common::connection(),
            ))(built)
        },
    },
    Case {
        name: "request/rwgi_hello_lint",
        input: Inputs::HyperRequest,
        run: |built| {
            serve(common::rwgi_service(
                common::hello_lint(),
                common::connection(),
            ))(built)
        },
    },
];

fn case(name: &str) -> &'static Case {
    CASES
        .iter()
        .find(|case| case.name == name)
        .unwrap_or_else(|| panic!("no case named {name}"))
}

/// Runs one case natively: builds the inputs, counts the allocations of the calls.
/// Returns the allocations and what the case made.
fn run(case: &Case, calls: u64) -> (u64, usize) {
    let built = build(case.input, calls);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let sent = (case.run)(built);
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    (allocations, sent)
}

/// Instructions of one run of `case` under cachegrind.
fn instructions(case: &Case, calls: u64) -> Result<u64, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let output = Command::new("valgrind")
        .args([
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
        ])
        .arg(exe)
        .args(["run", case.name, &calls.to_string()])
        .output()
        .map_err(|e| format!("cannot run valgrind: {e}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!("{} failed under valgrind:\n{stderr}", case.name));
    }
    stderr
        .lines()
        .find_map(|line| {
            let count = line.split_once("I   refs:")?.1;
            count.trim().replace(',', "").parse().ok()
        })
        .ok_or_else(|| format!("no instruction count in valgrind's output:\n{stderr}"))
}

/// Per-call figures of one case: instructions (gross, with input building) and allocations.
struct Figures {
    instructions: f64,
    allocations: f64,
}

fn measure(case: &Case) -> Result<Figures, String> {
    let (n1, n2) = CALLS;
    let (i1, i2) = (instructions(case, n1)?, instructions(case, n2)?);
    let (allocations, _) = run(case, n2);
    Ok(Figures {
        instructions: (i2 as f64 - i1 as f64) / (n2 - n1) as f64,
        allocations: allocations as f64 / n2 as f64,
    })
}

fn report() -> Result<(), String> {
    let mut figures = Vec::new();
    for case in CASES {
        figures.push((case, measure(case)?));
    }
    let baseline = |input: Inputs| {
        figures
            .iter()
            .find(|(case, _)| case.name.starts_with("input/") && case.input == input)
            .map_or(0.0, |(_, f)| f.instructions)
    };
    let net = |name: &str| {
        let (case, f) = figures
            .iter()
            .find(|(case, _)| case.name == name)
            .expect("a listed case");
        f.instructions - baseline(case.input)
    };
    let raw = net("request/raw_hyper_service_fn");
    println!(
        "{:<32} {:>14} {:>12} {:>10}",
        "case", "instr/call", "allocs/call", "vs hyper"
    );
    for (case, f) in figures
        .iter()
        .filter(|(c, _)| !c.name.starts_with("input/"))
    {
        let instructions = net(case.name);
        let ratio = if case.name.starts_with("request/") {
            format!("{:.2}x", instructions / raw)
        } else {
            String::new()
        };
        println!(
            "{:<32} {:>14.0} {:>12.2} {:>10}",
            case.name, instructions, f.allocations, ratio
        );
    }
    let one = net("app/hello_one_pass_through") - net("app/hello");
    let three = (net("app/hello_stack3") - net("app/hello")) / 3.0;
    let forward = net("app/hello_one_forward") - net("app/hello");
    println!(
        "one no-op middleware adds {one:.0} instructions as an async wrapper ({three:.0} each \
         in a stack of three), {forward:.0} when it returns the inner future"
    );
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [run_, name, calls] if run_ == "run" => {
            let calls = calls.parse().expect("a call count");
            let (allocations, sent) = run(case(name), calls);
            println!("{name}: {calls} calls, {allocations} allocations, {sent} body bytes");
        }
        _ if args.iter().any(|arg| arg == "--bench") => {
            if Command::new("valgrind").arg("--version").output().is_err() {
                println!(
                    "valgrind is not installed: `apt-get install -y valgrind`, then run again"
                );
                return;
            }
            if let Err(error) = report() {
                eprintln!("{error}");
                std::process::exit(1);
            }
        }
        // `cargo test --benches` runs bench binaries without `--bench`: check every case once.
        _ => {
            for case in CASES {
                let (_, sent) = run(case, 3);
                let expected = match case.name.split_once('/') {
                    Some(("app" | "request", _)) => 3 * common::GREETING.len(),
                    Some(("environ", _)) => 3,
                    _ => 0,
                };
                assert_eq!(sent, expected, "{}", case.name);
            }
            println!("{} passed, 0 failed", CASES.len());
        }
    }
}
