//! ghstats: collects a GitHub organization's pull-request activity into NDJSON chunks with
//! checkpoints in object storage, for loading into a warehouse. The flow of ARCHITECTURE.md,
//! one folder per stage: `github/` (fetch), `lake/` (persist), `warehouse/` (load), `jobs/` (the
//! runs that tie them).

pub mod commits;
pub mod config;
pub mod exit;
pub mod gharchive;
pub mod github;
pub mod jobs;
pub mod lake;
pub mod names;
pub mod oidc;
pub mod rows;
pub mod serve;
pub mod stars;
pub mod tables;
pub mod telemetry;
pub mod warehouse;
