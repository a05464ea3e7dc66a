//! The commits job (filled in below).
