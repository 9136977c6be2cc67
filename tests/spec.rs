//! Traceability between `spec/SPEC.md` and the code: every requirement is well-formed, every
//! requirement is checked by something (a conformance check, a lint rule, the types) or listed
//! as not mechanically checkable with a reason, and nothing cites a requirement that does not
//! exist.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rwgi_conformance::{app_suite, server_suite};

const SPEC: &str = include_str!("../spec/SPEC.md");

/// Every `REQ-AREA-N` token in `text`.
fn ids_in(text: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("REQ-") {
        let tail = &rest[start + 4..];
        let area_len = tail.bytes().take_while(u8::is_ascii_uppercase).count();
        let after_area = &tail[area_len..];
        let digits = after_area
            .strip_prefix('-')
            .map_or(0, |d| d.bytes().take_while(u8::is_ascii_digit).count());
        if area_len > 0 && digits > 0 {
            ids.push(format!(
                "REQ-{}-{}",
                &tail[..area_len],
                &after_area[1..1 + digits]
            ));
        }
        rest = &rest[start + 4..];
    }
    ids
}

/// The requirements the spec defines (`- **REQ-…** (KEYWORD) …`), with their keyword.
fn definitions(spec: &str) -> BTreeMap<String, String> {
    let mut defined = BTreeMap::new();
    for line in spec.lines() {
        let Some(rest) = line.strip_prefix("- **REQ-") else {
            continue;
        };
        let (id, rest) = rest.split_once("**").expect("closing ** after the ID");
        let keyword = rest
            .trim_start()
            .strip_prefix('(')
            .and_then(|k| k.split_once(')'))
            .map(|(k, _)| k.to_owned())
            .unwrap_or_else(|| panic!("REQ-{id} has no (KEYWORD)"));
        let previous = defined.insert(format!("REQ-{id}"), keyword);
        assert!(previous.is_none(), "REQ-{id} is defined twice");
    }
    defined
}

/// The section of the spec that begins with `heading` (up to the next heading of that level).
fn section<'a>(spec: &'a str, heading: &str) -> &'a str {
    let start = spec
        .find(heading)
        .unwrap_or_else(|| panic!("spec has {heading:?}"));
    let body = &spec[start + heading.len()..];
    let level = heading.split(' ').next().unwrap();
    let end = body
        .match_indices('\n')
        .map(|(i, _)| i + 1)
        .find(|&i| body[i..].starts_with(&format!("{level} ")))
        .unwrap_or(body.len());
    &body[..end]
}

/// The requirements a table section accounts for: the first cell of each row must be one ID,
/// and the reason cell must not be empty.
fn table_ids(spec: &str, heading: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for row in section(spec, heading)
        .lines()
        .filter(|l| l.starts_with("| REQ-"))
    {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert_eq!(cells.len(), 4, "row {row:?} has two cells");
        assert!(
            !cells[2].is_empty(),
            "{} has no reason in {heading:?}",
            cells[1]
        );
        ids.insert(cells[1].to_owned());
    }
    ids
}

/// The requirements checked by the tests of another crate of the workspace: each row names
/// `file: test, test` (several files separated by `;`), and every file and test must exist.
fn checked_by_tests_elsewhere(spec: &str) -> BTreeSet<String> {
    let heading = "### Checked by the tests of another crate";
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut ids = BTreeSet::new();
    for row in section(spec, heading)
        .lines()
        .filter(|l| l.starts_with("| REQ-"))
    {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert_eq!(cells.len(), 4, "row {row:?} has two cells");
        for place in cells[2].split(';') {
            let (file, tests) = place
                .split_once(':')
                .unwrap_or_else(|| panic!("{}: {place:?} is not `file: test, ...`", cells[1]));
            let text = std::fs::read_to_string(root.join(file.trim()))
                .unwrap_or_else(|error| panic!("{}: cannot read {file}: {error}", cells[1]));
            for test in tests.split(',').map(str::trim) {
                assert!(
                    text.contains(&format!("fn {test}(")),
                    "{}: {file} has no test {test}",
                    cells[1]
                );
            }
        }
        ids.insert(cells[1].to_owned());
    }
    ids
}

fn checked_by_suites() -> BTreeSet<String> {
    server_suite::CHECKS
        .iter()
        .chain(app_suite::CHECKS)
        .flat_map(|check| check.requirements.iter().map(|id| (*id).to_owned()))
        .chain(rwgi::lint::RULES.iter().map(|id| (*id).to_owned()))
        .collect()
}

#[test]
fn every_requirement_has_exactly_one_rfc2119_keyword() {
    let defined = definitions(SPEC);
    assert!(
        defined.len() > 50,
        "only {} requirements parsed",
        defined.len()
    );
    for (id, keyword) in &defined {
        assert!(
            ["MUST", "MUST NOT", "SHOULD", "SHOULD NOT", "MAY"].contains(&keyword.as_str()),
            "{id}: keyword {keyword:?} is not one RFC 2119 keyword"
        );
    }
}

/// The requirements of `spec` that nothing checks and section 16 does not excuse.
fn unaccounted(spec: &str) -> Vec<String> {
    let by_types = table_ids(spec, "### Enforced by the types");
    let not_checkable = table_ids(spec, "### Not mechanically checkable");
    let both: Vec<_> = by_types.intersection(&not_checkable).collect();
    assert!(
        both.is_empty(),
        "listed as typed and as uncheckable: {both:?}"
    );
    let mut checked = checked_by_suites();
    checked.extend(checked_by_tests_elsewhere(spec));
    definitions(spec)
        .into_keys()
        .filter(|id| !checked.contains(id) && !by_types.contains(id) && !not_checkable.contains(id))
        .collect()
}

#[test]
fn every_requirement_is_checked_or_says_why_not() {
    let missing = unaccounted(SPEC);
    assert!(
        missing.is_empty(),
        "requirements with no check and no reason in section 16: {missing:?}"
    );
}

#[test]
fn a_requirement_without_a_check_is_caught() {
    // Built at run time so that this file does not itself cite an undefined requirement.
    let id = format!("REQ-{}-1", "ZZZ");
    let doctored = SPEC.replace(
        "## 16. How each requirement is checked",
        &format!(
            "- **{id}** (MUST) A rule nothing checks.\n\n## 16. How each requirement is checked"
        ),
    );
    assert_eq!(unaccounted(&doctored), [id]);
}

#[test]
fn a_row_naming_a_test_that_does_not_exist_is_caught() {
    let real = "round_tripped_twice_on_hyper_passes_the_server_suite";
    assert!(SPEC.contains(real));
    let doctored = SPEC.replace(real, "a_test_nobody_wrote");
    let caught = std::panic::catch_unwind(|| checked_by_tests_elsewhere(&doctored));
    let message = caught.expect_err("a missing test is an error");
    let message = message
        .downcast_ref::<String>()
        .expect("a formatted message");
    assert_eq!(
        message,
        "REQ-BRIDGE-7: rwgi-tower/tests/round_trip.rs has no test a_test_nobody_wrote"
    );
}

#[test]
fn nothing_cites_an_undefined_requirement() {
    let defined = definitions(SPEC);
    let mut cited: BTreeMap<String, String> = BTreeMap::new();
    for id in ids_in(SPEC) {
        cited.entry(id).or_insert_with(|| "spec/SPEC.md".into());
    }
    for id in checked_by_suites() {
        cited
            .entry(id)
            .or_insert_with(|| "a conformance check or lint rule".into());
    }
    for dir in [
        "src",
        "tests",
        "examples",
        "rwgi-tower/src",
        "rwgi-tower/tests",
        "rwgi-tower/examples",
    ] {
        visit(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(dir).as_path(),
            &mut |path, text| {
                for id in ids_in(text) {
                    cited
                        .entry(id)
                        .or_insert_with(|| path.display().to_string());
                }
            },
        );
    }
    let undefined: Vec<_> = cited
        .iter()
        .filter(|(id, _)| !defined.contains_key(*id))
        .map(|(id, place)| format!("{id} (in {place})"))
        .collect();
    assert!(undefined.is_empty(), "cited but not defined: {undefined:?}");
}

fn visit(dir: &Path, f: &mut dyn FnMut(&Path, &str)) {
    for entry in std::fs::read_dir(dir).expect("readable directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            visit(&path, f);
        } else if path.extension().is_some_and(|e| e == "rs") {
            f(
                &path,
                &std::fs::read_to_string(&path).expect("UTF-8 source"),
            );
        }
    }
}
