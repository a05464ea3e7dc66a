//! The exit statuses of the `ghstats` command, distinct so a cron wrapper or a CI step can act
//! on each: retry later when another run holds the lock, call `resume` after a partial run, alert
//! on a failure.

/// The run completed (for collections: every repository done and, unless `--no-load`, loaded).
pub const COMPLETED: u8 = 0;
/// The job failed (a repository failed, GitHub or storage refused, a bad setting found at run
/// time); the error is on stderr in one line.
pub const FAILED: u8 = 1;
/// The command line or a setting is malformed (clap's usage status).
pub const USAGE: u8 = 2;
/// The run stopped at its budget (`RUN_BUDGET`) or on SIGTERM with work left: `resume` (or the
/// next `collect`) continues it.
pub const PARTIAL: u8 = 3;
/// Another run holds the organization's lock; nothing was done. The message names the holder
/// and the time its lease has left; `--force` takes a lock whose run is gone over.
pub const LOCKED: u8 = 4;
/// The job completed, but met stored files it could not read and left them out: checkpoints
/// set aside, chunks left out of a load (the rest loaded). They are named in the result's
/// `damaged` or `bad_chunks` and on stderr; running again does not fix them.
pub const DAMAGED: u8 = 5;

/// The exit statuses, for `--help`.
pub const HELP: &str = "Exit status:
  0  completed
  1  failed (the error is on stderr; for `check`: a check failed)
  2  bad command line or setting
  3  partial: the run budget or SIGTERM stopped it with work left; `resume` or the next `collect` continues it
  4  another run holds the organization's lock; nothing was done (the message says who and for how long; `--force` takes it over)
  5  completed, but damaged stored files were left out (checkpoints set aside, chunks not loaded); they are named in the result and on stderr";
