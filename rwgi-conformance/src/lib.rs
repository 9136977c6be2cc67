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
//! failure points straight at the rule in `spec/SPEC.md`. The checks, with their requirements,
//! are tabled in the docs of [`server_suite::CHECKS`] and [`app_suite::CHECKS`].
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
mod facts;
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
/// Only [`Pass`](Outcome::Pass), a declared [`Skip`](Outcome::Skip) and a
/// [`Warn`](Outcome::Warn) (a SHOULD not met) leave a report ok; a check that observed nothing
/// is [`NotObserved`](Outcome::NotObserved), never a pass.
///
/// ```
/// use rwgi_conformance::{Check, Outcome, Report};
///
/// let mut report = Report::default();
/// report.skip(Check { name: "connection_addresses", requirements: &["REQ-ENV-10"] }, "a Unix socket has no addresses");
/// assert_eq!(report.results()[0].outcome, Outcome::Skip);
/// assert!(report.is_ok(), "a declared skip is not a failure");
/// assert!(!report.is_ok_strict(), "but it is not a pass either");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// The implementation did what the requirements say, in every exchange the check judged.
    Pass,
    /// It did not; the detail says what was expected and what was seen.
    Fail,
    /// The check does not apply, for a condition the implementation declared (for example, a
    /// server on a Unix socket has no peer address); the detail says which.
    Skip,
    /// The check judged no exchange: what it looks at never happened (for example, an app that
    /// answers every request with `Err` shows no response head). Never ok.
    NotObserved,
    /// The implementation did not do what a SHOULD requirement of the spec asks (`(SHOULD)` in
    /// `spec/SPEC.md`, like REQ-SRV-11): reported with that requirement's ID first in the
    /// detail, but the report stays ok ([`Report::is_ok`]); only
    /// [`Report::is_ok_strict`] refuses it.
    ///
    /// ```
    /// use rwgi_conformance::{Check, Outcome, Report};
    ///
    /// let mut report = Report::default();
    /// let streams = Check { name: "response_streams", requirements: &["REQ-SRV-11", "REQ-BODY-1"] };
    /// report.not_met(streams, "REQ-SRV-11: expected the first chunk sent, seen nothing");
    /// assert_eq!(report.results()[0].outcome, Outcome::Warn, "REQ-SRV-11 is a SHOULD");
    /// assert!(report.is_ok() && !report.is_ok_strict());
    /// assert_eq!(report.warned_requirements(), ["REQ-SRV-11"]);
    /// ```
    Warn,
}

impl Outcome {
    /// The label [`Report::summary`] prints.
    ///
    /// ```
    /// use rwgi_conformance::Outcome;
    ///
    /// assert_eq!(Outcome::NotObserved.label(), "NOT OBSERVED");
    /// ```
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "FAIL",
            Outcome::Skip => "skip",
            Outcome::NotObserved => "NOT OBSERVED",
            Outcome::Warn => "WARN",
        }
    }
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
    /// How many exchanges the check judged: for the app suite, the requests whose outcome the
    /// check looked at; for the server suite, 1 for a check that ran to a verdict. Zero for a
    /// skip and for [`Outcome::NotObserved`].
    pub judged: usize,
    /// For a failure: the requirement broken, what was expected and what was seen; for a skip,
    /// the declared condition; for a check that observed nothing, why; for a pass, notes.
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
/// assert!(report.is_ok_strict());
/// report.fail(HOST, "REQ-ENV-3: expected 400 for a missing Host, got 200");
/// assert!(!report.is_ok());
/// assert!(report.summary().contains("FAIL host_header [REQ-ENV-3]"));
/// assert!(report.summary().contains("failed requirements: REQ-ENV-3"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    results: Vec<CheckResult>,
}

impl Report {
    /// Records a passed check that judged one exchange.
    pub fn pass(&mut self, check: Check) {
        self.record(check, Outcome::Pass, 1, String::new());
    }

    /// Records a failed check; `detail` names the requirement and says what was expected and
    /// what was seen.
    pub fn fail(&mut self, check: Check, detail: impl Into<String>) {
        self.record(check, Outcome::Fail, 1, detail.into());
    }

    /// Records a check that found a requirement not met, named first in `detail`
    /// (`REQ-…: what was expected, what was seen`): a [`Warn`](Outcome::Warn) when that
    /// requirement is a SHOULD of the spec ([`is_should`]), else a [`Fail`](Outcome::Fail).
    /// The server suite records its checks' findings this way.
    ///
    /// ```
    /// use rwgi_conformance::{Check, Outcome, Report};
    ///
    /// let streams = Check { name: "response_streams", requirements: &["REQ-SRV-11", "REQ-BODY-1"] };
    /// let mut report = Report::default();
    /// report.not_met(streams, "REQ-SRV-11: expected the first chunk sent, seen nothing");
    /// assert_eq!(report.results()[0].outcome, Outcome::Warn, "REQ-SRV-11 is a SHOULD");
    /// assert!(report.is_ok() && !report.is_ok_strict());
    /// // The MUST of the same check fails.
    /// report.not_met(streams, "REQ-BODY-1: expected the second chunk, seen the body cut");
    /// assert_eq!(report.results()[1].outcome, Outcome::Fail);
    /// assert!(!report.is_ok());
    /// ```
    pub fn not_met(&mut self, check: Check, detail: impl Into<String>) {
        let detail = detail.into();
        match leading_requirement(&detail) {
            Some(id) if is_should(id) => self.warn(check, detail),
            _ => self.fail(check, detail),
        }
    }

    /// Records a check that found a SHOULD requirement not met; `detail` starts with its ID.
    ///
    /// ```
    /// use rwgi_conformance::{Check, Report};
    ///
    /// let mut report = Report::default();
    /// let check = Check { name: "response_streams", requirements: &["REQ-SRV-11"] };
    /// report.warn(check, "REQ-SRV-11: the body went out in one piece");
    /// assert!(report.is_ok());
    /// assert!(report.summary().contains("WARN response_streams [REQ-SRV-11]"));
    /// assert!(report.summary().contains("SHOULD requirements not met (still ok): REQ-SRV-11\n"));
    /// ```
    pub fn warn(&mut self, check: Check, detail: impl Into<String>) {
        self.record(check, Outcome::Warn, 1, detail.into());
    }

    /// Records a skipped check and the declared condition that makes it not apply.
    pub fn skip(&mut self, check: Check, why: impl Into<String>) {
        self.record(check, Outcome::Skip, 0, why.into());
    }

    /// Records a check that judged nothing, and why.
    ///
    /// ```
    /// use rwgi_conformance::{Check, Outcome, Report};
    ///
    /// let mut report = Report::default();
    /// let check = Check { name: "no_hop_by_hop_headers", requirements: &["REQ-RESP-2"] };
    /// report.not_observed(check, "the app answered Err to every request");
    /// assert_eq!(report.results()[0].outcome, Outcome::NotObserved);
    /// assert!(!report.is_ok());
    /// ```
    pub fn not_observed(&mut self, check: Check, why: impl Into<String>) {
        self.record(check, Outcome::NotObserved, 0, why.into());
    }

    /// Records a check from a result: `Ok` passes, `Err` fails with its detail.
    pub fn record_result(&mut self, check: Check, result: Result<(), String>) {
        match result {
            Ok(()) => self.pass(check),
            Err(detail) => self.fail(check, detail),
        }
    }

    pub(crate) fn record(&mut self, check: Check, outcome: Outcome, judged: usize, detail: String) {
        self.results.push(CheckResult {
            name: check.name,
            requirements: check.requirements,
            outcome,
            judged,
            detail,
        });
    }

    /// Every result, in the order the checks ran.
    pub fn results(&self) -> &[CheckResult] {
        &self.results
    }

    /// The results with `outcome`.
    ///
    /// ```
    /// use rwgi_conformance::{Check, Outcome, Report};
    ///
    /// let mut report = Report::default();
    /// report.pass(Check { name: "keep_alive", requirements: &["REQ-SRV-3"] });
    /// assert_eq!(report.with_outcome(Outcome::Pass).count(), 1);
    /// assert_eq!(report.with_outcome(Outcome::Skip).count(), 0);
    /// ```
    pub fn with_outcome(&self, outcome: Outcome) -> impl Iterator<Item = &CheckResult> {
        self.results.iter().filter(move |r| r.outcome == outcome)
    }

    /// The failed checks.
    pub fn failures(&self) -> impl Iterator<Item = &CheckResult> {
        self.with_outcome(Outcome::Fail)
    }

    /// The skipped checks, each with its declared reason in `detail`.
    ///
    /// ```
    /// use rwgi_conformance::{Check, Report};
    ///
    /// let mut report = Report::default();
    /// report.skip(Check { name: "connection_addresses", requirements: &["REQ-ENV-10"] }, "a Unix socket");
    /// let skipped: Vec<_> = report.skips().map(|r| (r.name, r.detail.as_str())).collect();
    /// assert_eq!(skipped, [("connection_addresses", "a Unix socket")]);
    /// ```
    pub fn skips(&self) -> impl Iterator<Item = &CheckResult> {
        self.with_outcome(Outcome::Skip)
    }

    /// The checks that found a SHOULD requirement not met, each with the requirement first in
    /// its detail.
    pub fn warnings(&self) -> impl Iterator<Item = &CheckResult> {
        self.with_outcome(Outcome::Warn)
    }

    /// The SHOULD requirements the warnings name first in their details (else the checks'
    /// requirements); sorted, without repeats.
    pub fn warned_requirements(&self) -> Vec<&str> {
        named_requirements(self.warnings())
    }

    /// Whether the check named `name` ran and failed.
    pub fn failed(&self, name: &str) -> bool {
        self.failures().any(|r| r.name == name)
    }

    /// The outcome of the check named `name`, if it ran.
    ///
    /// ```
    /// use rwgi_conformance::{Check, Outcome, Report};
    ///
    /// let mut report = Report::default();
    /// report.pass(Check { name: "keep_alive", requirements: &["REQ-SRV-3"] });
    /// assert_eq!(report.outcome("keep_alive"), Some(Outcome::Pass));
    /// assert_eq!(report.outcome("pipelining"), None);
    /// ```
    pub fn outcome(&self, name: &str) -> Option<Outcome> {
        self.results
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.outcome)
    }

    /// Whether any failed check covers `requirement`.
    pub fn failed_requirement(&self, requirement: &str) -> bool {
        self.failures()
            .any(|r| r.requirements.contains(&requirement) || r.detail.contains(requirement))
    }

    /// The requirement each failure names first in its detail (the one broken), else the
    /// check's requirements; sorted, without repeats.
    ///
    /// ```
    /// use rwgi_conformance::{Check, Report};
    ///
    /// let mut report = Report::default();
    /// let check = Check { name: "illegal_head_hop_by_hop", requirements: &["REQ-SRV-5", "REQ-RESP-2"] };
    /// report.fail(check, "REQ-SRV-5: expected 500, seen 200");
    /// report.fail(check, "the server crashed");
    /// assert_eq!(report.failed_requirements(), ["REQ-RESP-2", "REQ-SRV-5"]);
    /// ```
    pub fn failed_requirements(&self) -> Vec<&str> {
        named_requirements(self.failures())
    }

    /// Whether no check failed and every check judged something: passes, skips for declared
    /// conditions, and warnings (SHOULD requirements not met). See
    /// [`is_ok_strict`](Report::is_ok_strict) to refuse skips and warnings too.
    pub fn is_ok(&self) -> bool {
        self.results
            .iter()
            .all(|r| matches!(r.outcome, Outcome::Pass | Outcome::Skip | Outcome::Warn))
    }

    /// Whether every check passed: no failure, nothing unobserved, no skip, no warning.
    ///
    /// ```
    /// use rwgi_conformance::{Check, Report};
    ///
    /// let mut report = Report::default();
    /// assert!(!report.is_ok_strict(), "no check ran");
    /// report.pass(Check { name: "keep_alive", requirements: &["REQ-SRV-3"] });
    /// assert!(report.is_ok_strict());
    /// ```
    pub fn is_ok_strict(&self) -> bool {
        !self.results.is_empty() && self.results.iter().all(|r| r.outcome == Outcome::Pass)
    }

    /// Panics with the [`summary`](Report::summary) unless every check passed (a SHOULD not
    /// met included, as in [`is_ok`](Report::is_ok)) or was skipped because the server does not offer the extension it is about
    /// ([`NOT_OFFERED`](server_suite::NOT_OFFERED)), and one check at least passed: for a
    /// server that offers some optional extensions, or none.
    ///
    /// ```
    /// use rwgi_conformance::server_suite::NOT_OFFERED;
    /// use rwgi_conformance::{Check, Report};
    ///
    /// let mut report = Report::default();
    /// report.pass(Check { name: "keep_alive", requirements: &["REQ-SRV-3"] });
    /// report.skip(
    ///     Check { name: "interim_responses", requirements: &["REQ-INTERIM-2"] },
    ///     format!("{NOT_OFFERED}interim responses"),
    /// );
    /// report.assert_ok_offered();
    /// ```
    ///
    /// # Panics
    ///
    /// When a check failed or observed nothing, a skip had another reason, or none passed.
    #[track_caller]
    pub fn assert_ok_offered(&self) {
        let passed = self.results.iter().any(|r| r.outcome == Outcome::Pass);
        let ok = self.results.iter().all(|r| match r.outcome {
            Outcome::Pass | Outcome::Warn => true,
            Outcome::Skip => r.detail.starts_with(server_suite::NOT_OFFERED),
            _ => false,
        });
        assert!(
            passed && ok,
            "not every check passed or was skipped for an extension not offered:\n{}",
            self.summary()
        );
    }

    /// One line per check with its detail, then the failed requirements, the SHOULD
    /// requirements not met, the skips with their reasons, and a closing count.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for result in &self.results {
            out.push_str(&format!(
                "{} {} [{}]",
                result.outcome.label(),
                result.name,
                result.requirements.join(", ")
            ));
            if !result.detail.is_empty() {
                out.push_str(": ");
                out.push_str(&result.detail);
            }
            out.push('\n');
        }
        let failed = self.failed_requirements();
        if !failed.is_empty() {
            out.push_str(&format!("failed requirements: {}\n", failed.join(", ")));
        }
        let warned = self.warned_requirements();
        if !warned.is_empty() {
            out.push_str(&format!(
                "SHOULD requirements not met (still ok): {}\n",
                warned.join(", ")
            ));
        }
        let unobserved: Vec<_> = self
            .with_outcome(Outcome::NotObserved)
            .map(|r| r.name)
            .collect();
        if !unobserved.is_empty() {
            out.push_str(&format!(
                "observed nothing (not ok): {}\n",
                unobserved.join(", ")
            ));
        }
        for skip in self.skips() {
            out.push_str(&format!("skipped {}: {}\n", skip.name, skip.detail));
        }
        let count = |outcome| self.with_outcome(outcome).count();
        out.push_str(&format!(
            "{} passed, {} failed, {} not observed, {} skipped, {} warned\n",
            count(Outcome::Pass),
            count(Outcome::Fail),
            count(Outcome::NotObserved),
            count(Outcome::Skip),
            count(Outcome::Warn)
        ));
        out
    }

    /// The report as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }

    /// Panics with the [`summary`](Report::summary) unless [`is_ok`](Report::is_ok): a warning
    /// does not panic.
    ///
    /// # Panics
    ///
    /// When a check failed or observed nothing.
    #[track_caller]
    pub fn assert_ok(&self) {
        assert!(self.is_ok(), "conformance failures:\n{}", self.summary());
    }

    /// Panics with the [`summary`](Report::summary) unless
    /// [`is_ok_strict`](Report::is_ok_strict).
    ///
    /// ```
    /// use rwgi_conformance::{Check, Report};
    ///
    /// let mut report = Report::default();
    /// report.pass(Check { name: "keep_alive", requirements: &["REQ-SRV-3"] });
    /// report.assert_ok_strict();
    /// ```
    ///
    /// # Panics
    ///
    /// When a check failed, observed nothing, was skipped or warned, or no check ran.
    #[track_caller]
    pub fn assert_ok_strict(&self) {
        assert!(
            self.is_ok_strict(),
            "not every check passed:\n{}",
            self.summary()
        );
    }
}

/// The requirement a detail names first (`REQ-…:` or `REQ-… ` at its start), if any.
fn leading_requirement(detail: &str) -> Option<&str> {
    detail
        .split([':', ' '])
        .next()
        .filter(|id| id.starts_with("REQ-") && detail.len() > id.len())
}

/// The requirements that `results` name first in their details, else the checks' own; sorted,
/// without repeats.
fn named_requirements<'a>(results: impl Iterator<Item = &'a CheckResult>) -> Vec<&'a str> {
    let mut ids: Vec<&str> = results
        .flat_map(|r| match leading_requirement(&r.detail) {
            Some(id) => vec![id],
            None => r.requirements.to_vec(),
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The specification the suites judge by.
const SPEC: &str = include_str!("../../spec/SPEC.md");

/// Whether `requirement` is a SHOULD of `spec/SPEC.md` (its definition reads
/// `**REQ-…** (SHOULD)`): [`Report::not_met`] records a check that finds it not met as a
/// [`Outcome::Warn`], not a failure.
///
/// ```
/// assert!(rwgi_conformance::is_should("REQ-SRV-11"));
/// assert!(!rwgi_conformance::is_should("REQ-SRV-9"), "a MUST");
/// assert!(!rwgi_conformance::is_should("REQ-INPUT-4"), "a MAY");
/// assert!(!rwgi_conformance::is_should("REQ-NONE-1"), "not in the spec");
/// ```
pub fn is_should(requirement: &str) -> bool {
    SPEC.contains(&format!("**{requirement}** (SHOULD)"))
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Check = Check {
        name: "a",
        requirements: &["REQ-RESP-2"],
    };

    #[test]
    fn only_passes_and_declared_skips_are_ok() {
        let mut report = Report::default();
        report.pass(A);
        assert!(report.is_ok() && report.is_ok_strict());
        report.skip(A, "declared");
        assert!(report.is_ok() && !report.is_ok_strict());
        report.not_observed(A, "nothing seen");
        assert!(!report.is_ok() && !report.is_ok_strict());
        assert!(
            !Report::default().is_ok_strict(),
            "an empty run proves nothing"
        );
    }

    #[test]
    fn the_summary_names_failed_requirements_and_skips() {
        let mut report = Report::default();
        report.fail(A, "REQ-RESP-5: expected 3 bytes, seen 4");
        report.fail(A, "the server crashed");
        report.skip(A, "a Unix socket has no addresses");
        report.not_observed(A, "the app answered Err to every request");
        let summary = report.summary();
        assert!(
            summary.contains("failed requirements: REQ-RESP-2, REQ-RESP-5\n"),
            "{summary}"
        );
        assert!(
            summary.contains("observed nothing (not ok): a\n"),
            "{summary}"
        );
        assert!(
            summary.contains("skipped a: a Unix socket has no addresses\n"),
            "{summary}"
        );
        assert!(summary.ends_with("0 passed, 2 failed, 1 not observed, 1 skipped, 0 warned\n"));
        let json = report.to_json();
        assert!(json.contains("\"outcome\": \"not_observed\""), "{json}");
    }

    const STREAMS: Check = Check {
        name: "response_streams",
        requirements: &["REQ-SRV-11", "REQ-BODY-1"],
    };

    #[test]
    fn a_should_not_met_warns_and_the_report_stays_ok() {
        let mut report = Report::default();
        report.pass(A);
        report.not_met(
            STREAMS,
            "REQ-SRV-11: expected the first chunk, seen nothing",
        );
        let result = &report.results()[1];
        assert_eq!(result.outcome, Outcome::Warn);
        assert_eq!(result.judged, 1);
        assert!(report.is_ok(), "{report}");
        assert!(!report.is_ok_strict(), "a warning is not a pass");
        report.assert_ok();
        assert_eq!(report.failures().count(), 0);
        assert_eq!(report.warned_requirements(), ["REQ-SRV-11"]);
        assert!(report.failed_requirements().is_empty());
        let summary = report.summary();
        assert!(
            summary.contains(
                "WARN response_streams [REQ-SRV-11, REQ-BODY-1]: REQ-SRV-11: expected the first \
                 chunk, seen nothing\n"
            ),
            "{summary}"
        );
        assert!(
            summary.contains("SHOULD requirements not met (still ok): REQ-SRV-11\n"),
            "{summary}"
        );
        assert!(summary.ends_with("1 passed, 0 failed, 0 not observed, 0 skipped, 1 warned\n"));
        assert!(report.to_json().contains("\"outcome\": \"warn\""));
    }

    #[test]
    fn a_must_not_met_fails_even_in_a_check_that_covers_a_should() {
        let mut report = Report::default();
        report.not_met(
            STREAMS,
            "REQ-BODY-1: expected the second chunk, seen the body cut",
        );
        assert_eq!(report.results()[0].outcome, Outcome::Fail);
        assert!(!report.is_ok());
        assert_eq!(report.failed_requirements(), ["REQ-BODY-1"]);
        assert!(report.warned_requirements().is_empty());
        // A detail that names no requirement is a failure of the check's.
        report.not_met(STREAMS, "the server crashed");
        assert_eq!(report.results()[1].outcome, Outcome::Fail);
    }

    #[test]
    fn the_should_requirements_are_those_the_spec_marks() {
        let marked: Vec<&str> = SPEC
            .lines()
            .filter_map(|line| line.strip_prefix("- **"))
            .filter_map(|line| line.split_once("** (SHOULD)"))
            .map(|(id, _)| id)
            .collect();
        assert_eq!(
            marked,
            [
                "REQ-APP-4",
                "REQ-INPUT-7",
                "REQ-SRV-10",
                "REQ-SRV-11",
                "REQ-FILE-6"
            ]
        );
        assert!(marked.iter().all(|id| is_should(id)));
        for must in ["REQ-SRV-9", "REQ-ENV-10", "REQ-BODY-1", "REQ-SRV-1"] {
            assert!(!is_should(must), "{must}");
        }
    }

    #[test]
    #[should_panic(expected = "not every check passed")]
    fn assert_ok_strict_refuses_a_warning() {
        let mut report = Report::default();
        report.warn(STREAMS, "REQ-SRV-11: the body went out in one piece");
        report.assert_ok_strict();
    }

    #[test]
    #[should_panic(expected = "observed nothing (not ok): a")]
    fn assert_ok_refuses_a_check_that_observed_nothing() {
        let mut report = Report::default();
        report.not_observed(A, "nothing seen");
        report.assert_ok();
    }

    #[test]
    #[should_panic(expected = "skipped a: declared")]
    fn assert_ok_strict_refuses_a_skip() {
        let mut report = Report::default();
        report.skip(A, "declared");
        report.assert_ok_strict();
    }
}
