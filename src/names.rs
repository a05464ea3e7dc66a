//! Organization and repository names, validated before they become path segments or URL parts.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A GitHub organization login: 1–39 ASCII letters, digits or single hyphens, not at either end.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrgName(String);

/// A GitHub repository name: 1–100 ASCII letters, digits, `.`, `-`, `_`; not `.` or `..`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RepoName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NameError(String);

impl FromStr for OrgName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        let ok = !s.is_empty()
            && s.len() <= 39
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-')
            && !s.contains("--");
        if ok {
            Ok(OrgName(s.to_string()))
        } else {
            Err(NameError(format!(
                "{s:?} is not a GitHub organization name (1-39 letters, digits or single hyphens, not at either end)"
            )))
        }
    }
}

impl FromStr for RepoName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        let ok = !s.is_empty()
            && s.len() <= 100
            && s != "."
            && s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if ok {
            Ok(RepoName(s.to_string()))
        } else {
            Err(NameError(format!(
                "{s:?} is not a GitHub repository name (1-100 letters, digits, '.', '-' or '_')"
            )))
        }
    }
}

macro_rules! name_impls {
    ($t:ty) => {
        impl TryFrom<String> for $t {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, NameError> {
                s.parse()
            }
        }
        impl From<$t> for String {
            fn from(n: $t) -> String {
                n.0
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl $t {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}

name_impls!(OrgName);
name_impls!(RepoName);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_githubs_names() {
        for ok in ["acme", "a", "my-org-2", "A1"] {
            assert!(ok.parse::<OrgName>().is_ok(), "{ok}");
        }
        for ok in ["repo", "repo.js", "my_repo-2", ".github", "a..b"] {
            assert!(ok.parse::<RepoName>().is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_names_that_could_escape_a_path() {
        for bad in [
            "",
            "-acme",
            "acme-",
            "ac--me",
            "ac/me",
            "ac me",
            "ü",
            &"a".repeat(40),
        ] {
            assert!(bad.parse::<OrgName>().is_err(), "{bad}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a\\b",
            "a b",
            "x\0",
            "日本",
            &"a".repeat(101),
        ] {
            assert!(bad.parse::<RepoName>().is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn valid_names_are_single_safe_path_segments(s in "\\PC{0,120}") {
            if let Ok(n) = s.parse::<RepoName>() {
                prop_assert!(!n.as_str().contains('/') && n.as_str() != ".." && n.as_str() != ".");
            }
            if let Ok(n) = s.parse::<OrgName>() {
                prop_assert!(n.as_str().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
            }
        }
    }
}
