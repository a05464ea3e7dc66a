//! The jobs of the flow in ARCHITECTURE.md. The CLI and the HTTP handlers parse their input,
//! call a job, and present its result; the jobs hold the logic.

pub mod check;
pub mod collect;
pub mod export;
pub mod load;
pub mod progress;
pub mod report;
pub mod runner;
pub mod summary;

pub use collect::{collect, CollectOptions, CollectionResult};
pub use progress::Progress;
