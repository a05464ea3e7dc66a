//! Month partitions of the commits tables (filled in below).
