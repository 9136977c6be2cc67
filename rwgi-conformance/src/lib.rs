//! Conformance suites that servers and apps run against the rwgi specification, and an
//! in-process test client.
//!
//! - [`server_suite`]: a server author hands the suite a way to start their server hosting a
//!   given app; the suite hosts its own probe apps in it and talks HTTP/1.1 to it over real
//!   sockets.
//! - [`app_suite`]: a framework author hands the suite their app; a built-in driver calls it
//!   with a battery of requests, including slow, failing and abandoned ones.
//!
//! Both produce a [`Report`]: every check with its outcome and the `REQ-…` IDs it covers, so a
//! failure points straight at the rule in `spec/SPEC.md`.
#![forbid(unsafe_code)]
#![deny(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]

use std::fmt;

use serde::Serialize;

pub mod app_suite;
pub mod server_suite;
pub mod test_client;

/// A check a suite can run: its name, and the requirements it covers.
///
/// ```
/// use rwgi_conformance::server_suite;
///
/// let keep_alive = server_suite::CHECKS.iter().find(|c| c.name == "keep_alive").unwrap();
/// assert!(keep_alive.requirements.contains(&"REQ-SRV-3"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// A stable, snake_case name.
    pub name: &'static str,
    /// The `REQ-…` IDs the check covers.
    pub requirements: &'static [&'static str],
}

/// How one check went.
///
/// ```
/// use rwgi_conformance::{Check, Outcome, Report};
///
/// let mut report = Report::default();
/// report.skip(Check { name: "unix_socket", requirements: &["REQ-ENV-10"] }, "no Unix socket");
/// assert_eq!(report.results()[0].outcome, Outcome::Skip);
/// assert!(report.is_ok(), "a skip is not a failure");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Outcome {
    /// The implementation did what the requirements say.
    Pass,
    /// It did not; the detail says what was expected and what was seen.
    Fail,
    /// The check did not apply (for example, a feature the implementation does not offer).
    Skip,
}

/// The result of one check.
///
/// ```
/// use rwgi_conformance::{Check, Outcome, Report};
///
/// let mut report = Report::default();
/// let check = Check { name: "host_header", requirements: &["REQ-ENV-3"] };
/// report.record_result(check, Err("REQ-ENV-3: expected 400, got 200".into()));
/// let result = &report.results()[0];
/// assert_eq!((result.name, result.outcome), ("host_header", Outcome::Fail));
/// assert!(result.detail.starts_with("REQ-ENV-3"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    /// The check's name.
    pub name: &'static str,
    /// The requirements it covers.
    pub requirements: &'static [&'static str],
    /// How it went.
    pub outcome: Outcome,
    /// For a failure: the requirement broken, what was expected and what was seen; for a skip,
    /// why.
    pub detail: String,
}

/// The results of a suite run.
///
/// ```
/// use rwgi_conformance::{Check, Report};
///
/// const HOST: Check = Check { name: "host_header", requirements: &["REQ-ENV-3"] };
/// let mut report = Report::default();
/// report.pass(HOST);
/// assert!(report.is_ok());
/// report.fail(HOST, "REQ-ENV-3: expected 400 for a missing Host, got 200");
/// assert!(!report.is_ok());
/// assert!(report.summary().contains("FAIL host_header [REQ-ENV-3]"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    results: Vec<CheckResult>,
}

impl Report {
    /// Records a passed check.
    pub fn pass(&mut self, check: Check) {
        self.record(check, Outcome::Pass, String::new());
    }

    /// Records a failed check; `detail` names the requirement and says what was expected and
    /// what was seen.
    pub fn fail(&mut self, check: Check, detail: impl Into<String>) {
        self.record(check, Outcome::Fail, detail.into());
    }

    /// Records a skipped check and why.
    pub fn skip(&mut self, check: Check, why: impl Into<String>) {
        self.record(check, Outcome::Skip, why.into());
    }

    /// Records a check from a result: `Ok` passes, `Err` fails with its detail.
    pub fn record_result(&mut self, check: Check, result: Result<(), String>) {
        match result {
            Ok(()) => self.pass(check),
            Err(detail) => self.fail(check, detail),
        }
    }

    fn record(&mut self, check: Check, outcome: Outcome, detail: String) {
        self.results.push(CheckResult {
            name: check.name,
            requirements: check.requirements,
            outcome,
            detail,
        });
    }

    /// Every result, in the order the checks ran.
    pub fn results(&self) -> &[CheckResult] {
        &self.results
    }

    /// The failed checks.
    pub fn failures(&self) -> impl Iterator<Item = &CheckResult> {
        self.results.iter().filter(|r| r.outcome == Outcome::Fail)
    }

    /// Whether the check named `name` ran and failed.
    pub fn failed(&self, name: &str) -> bool {
        self.failures().any(|r| r.name == name)
    }

    /// Whether any failed check covers `requirement`.
    pub fn failed_requirement(&self, requirement: &str) -> bool {
        self.failures()
            .any(|r| r.requirements.contains(&requirement) || r.detail.contains(requirement))
    }

    /// Whether no check failed.
    pub fn is_ok(&self) -> bool {
        self.failures().next().is_none()
    }

    /// One line per check, failures with their detail, and a closing count.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for result in &self.results {
            let label = match result.outcome {
                Outcome::Pass => "pass",
                Outcome::Fail => "FAIL",
                Outcome::Skip => "skip",
            };
            out.push_str(&format!(
                "{label} {} [{}]",
                result.name,
                result.requirements.join(", ")
            ));
            if !result.detail.is_empty() {
                out.push_str(": ");
                out.push_str(&result.detail);
            }
            out.push('\n');
        }
        let count = |outcome| self.results.iter().filter(|r| r.outcome == outcome).count();
        out.push_str(&format!(
            "{} passed, {} failed, {} skipped\n",
            count(Outcome::Pass),
            count(Outcome::Fail),
            count(Outcome::Skip)
        ));
        out
    }

    /// The report as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }

    /// Panics with the [`summary`](Report::summary) when any check failed.
    ///
    /// # Panics
    ///
    /// When a check failed.
    #[track_caller]
    pub fn assert_ok(&self) {
        assert!(self.is_ok(), "conformance failures:\n{}", self.summary());
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}
