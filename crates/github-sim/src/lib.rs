//! A seeded synthetic GitHub organization served over GitHub's GraphQL and REST APIs, with
//! GitHub's cost formula, rate-limit headers, fault injection and a ledger of what was served.
//! Tests start it on port 0 and compare what a collector stored to [`model::World`], the
//! ground truth. Repository search runs over a separate seeded public population
//! ([`population::Population`], 2 million repositories by default).

pub mod app;
pub mod cost;
pub mod generate;
pub mod gharchive;
pub mod git;
pub mod git_http;
pub mod graphql;
pub mod model;
pub mod population;
pub mod rest;
pub mod search;
pub mod server;

pub use app::{generate_rsa_key, AppSpec, RsaKey};
pub use generate::{ChangeReport, OrgSpec};
pub use gharchive::{EventTruth, GhArchiveSpec, HourCounts, HourFormat, HourQuirks, HourTruth};
pub use git::{linked_user, GitRepoSpec, GitSource, PushReport};
pub use model::World;
pub use population::{Population, PopulationSpec, PublicRepo, StarChangeReport};
pub use server::{Fault, FaultPlan, Ledger, RateLimitForm, SearchBurst, SimOptions, Simulator};
