//! Broken rules of the specification, named by requirement ID.
//!
//! Servers, the lint middleware and the conformance suites all report a broken rule as a
//! [`Violation`]: the `REQ-…` ID from `spec/SPEC.md` and what was expected against what was
//! seen.

use std::borrow::Cow;
use std::fmt;

/// One broken requirement.
///
/// ```
/// use rwgi::violation::Violation;
///
/// let violation = Violation::new("REQ-RESP-2", "no hop-by-hop headers, got `connection`");
/// assert_eq!(violation.requirement(), "REQ-RESP-2");
/// assert_eq!(violation.to_string(), "REQ-RESP-2: no hop-by-hop headers, got `connection`");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    requirement: &'static str,
    message: Cow<'static, str>,
}

impl Violation {
    /// A violation of `requirement`, described by `message` (expected, and what was seen).
    pub fn new(requirement: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Violation {
            requirement,
            message: message.into(),
        }
    }

    /// The requirement's ID, like `REQ-RESP-2`.
    pub fn requirement(&self) -> &'static str {
        self.requirement
    }

    /// What was expected and what was seen.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.requirement, self.message)
    }
}

impl std::error::Error for Violation {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_is_the_text_given() {
        let violation = Violation::new("REQ-RESP-2", format!("got `{}`", "connection"));
        assert_eq!(violation.message(), "got `connection`");
    }
}
