//! Git access for the commits job (filled in below).
