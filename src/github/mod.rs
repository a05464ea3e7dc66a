//! GitHub access: the paced, retrying client for REST and GraphQL, the queries in `graphql/`,
//! and the walk that turns them into complete pull requests.

pub mod auth;
pub mod client;
pub mod error;
pub mod link;
pub mod pacer;
pub mod pulls;
pub mod types;

pub use auth::{AppInstallation, Credential};
pub use client::{ApiCost, ClientOptions, GithubClient};
pub use error::GithubError;
pub use pulls::{PageSizer, PullRequestWalk, Window};
