//! What the process-level test binaries share (each is a `harness = false` test with a `main`
//! of its own, since it is also the program it runs).

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

/// The live children of `parent`, read from `/proc/*/stat` (Linux).
#[allow(dead_code)] // Not every binary that includes this module counts processes.
pub fn children(parent: u32) -> BTreeSet<u32> {
    let mut found = BTreeSet::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (name) state ppid …`: the name may hold spaces, so split after its `)`.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 1 && fields[0] != "Z" && fields[1] == parent.to_string() {
            found.insert(pid);
        }
    }
    found
}

/// The closing line a test runner's reader looks for, and the exit status that goes with it.
#[allow(dead_code)] // The process manager's binary prints cargo's own form instead.
pub fn summary(passed: usize, failed: usize) -> ExitCode {
    println!("\n{passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs, one after another, each of `tests` whose name contains one of the filters on the
/// command line (the arguments that do not start with `-`; all of them when there are none),
/// printing a line per test as the standard harness does, then the [`summary`].
#[allow(dead_code)] // Binaries with a harness of their own do not use it.
pub fn run_tests(tests: &[(&str, fn())]) -> ExitCode {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    let (mut passed, mut failed) = (0, 0);
    for (name, test) in tests {
        if !filters.is_empty() && !filters.iter().any(|filter| name.contains(filter.as_str())) {
            continue;
        }
        print!("test {name} ... ");
        let _ = std::io::stdout().flush();
        let started = Instant::now();
        match std::panic::catch_unwind(test) {
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
    summary(passed, failed)
}
