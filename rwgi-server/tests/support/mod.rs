//! What the process-level test binaries share (each is a `harness = false` test with a `main`
//! of its own, since it is also the program it runs).

use std::collections::BTreeSet;
use std::fs;
use std::process::ExitCode;

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
