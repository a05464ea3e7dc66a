//! The jobs of DESIGN §1. The CLI (and later the HTTP handlers) parse their input, call a job,
//! and present its result; the jobs hold the logic.

pub mod collect;
pub mod load;
pub mod progress;
pub mod runner;
pub mod summary;

pub use collect::{collect, CollectOptions, CollectionResult};
pub use progress::Progress;
