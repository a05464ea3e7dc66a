//! What can go wrong talking to GitHub, and whether trying again can help.

use chrono::{DateTime, Utc};
use std::time::Duration;

/// An error from GitHub or on the way to it. The variant tells the caller what it can do.
#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    /// The token's primary budget is spent until `reset`.
    #[error("GitHub rate limit exhausted until {reset}")]
    RateLimited { reset: DateTime<Utc> },
    /// A secondary (abuse) limit: GitHub asks to wait `retry_after`.
    #[error("GitHub secondary rate limit: retry after {retry_after:?}")]
    SecondaryLimit { retry_after: Duration },
    /// The server is overloaded by this request: a 502/504, a timeout, or GraphQL
    /// resource limits. A smaller page may succeed.
    #[error("GitHub could not serve the request in time: {0}")]
    Overloaded(String),
    /// The response was larger than the client keeps in memory (`cap` bytes): the same
    /// request would be as large again, a smaller page may not be.
    #[error("GitHub's response is larger than {cap} bytes; asking for less")]
    TooLarge { cap: usize },
    /// A listing whose pages do not advance (the same cursor again, a null cursor or no items
    /// with more promised), after one retry: asking again would loop.
    #[error("{0}")]
    Pagination(String),
    /// A passing fault: a 5xx, a dropped connection. Retrying may help.
    #[error("transient GitHub error: {0}")]
    Transient(String),
    /// The repository, organization or object does not exist or is not visible to the token.
    #[error("not found on GitHub: {message}")]
    NotFound { message: String },
    /// A request GitHub refuses; retrying will not help.
    #[error("GitHub refused the request (HTTP {status}): {message}{}", request_id.as_deref().map(|r| format!(" [request id {r}]")).unwrap_or_default())]
    Fatal {
        status: u16,
        message: String,
        request_id: Option<String>,
    },
    /// The run's time budget would be exceeded by waiting any longer.
    #[error("the run's time budget ends before GitHub can be asked again ({0})")]
    OutOfTime(String),
}

impl GithubError {
    /// Whether the same request may succeed if sent again (after waiting).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            GithubError::RateLimited { .. }
                | GithubError::SecondaryLimit { .. }
                | GithubError::Overloaded(_)
                | GithubError::Transient(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_server_side_and_limit_errors_are_retryable() {
        assert!(GithubError::Transient("x".into()).is_retryable());
        assert!(GithubError::Overloaded("x".into()).is_retryable());
        assert!(GithubError::SecondaryLimit {
            retry_after: Duration::from_secs(1)
        }
        .is_retryable());
        assert!(!GithubError::NotFound {
            message: "x".into()
        }
        .is_retryable());
        assert!(!GithubError::Fatal {
            status: 422,
            message: "x".into(),
            request_id: None
        }
        .is_retryable());
        assert!(!GithubError::OutOfTime("x".into()).is_retryable());
    }

    #[test]
    fn fatal_errors_carry_githubs_message_and_request_id() {
        let e = GithubError::Fatal {
            status: 422,
            message: "Validation Failed".into(),
            request_id: Some("AB:CD".into()),
        };
        assert_eq!(
            e.to_string(),
            "GitHub refused the request (HTTP 422): Validation Failed [request id AB:CD]"
        );
    }
}
