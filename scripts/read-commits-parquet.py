#!/usr/bin/env python3
"""Reads a lake's commits Parquet partitions with readers ghstats did not write: pyarrow's
dataset API and DuckDB, each with Hive partitioning
(github/{table}/repository_id=ID/commit_month=YYYY-MM/). Prints one JSON object
{"pyarrow": TABLES, "duckdb": TABLES}; TABLES maps commits, file_changes and file_states to
their rows, each row a list:
  commits:      [commit_sha, repository_id (from the folder), commit_month (from the folder),
                 author_name, author_email, committer_name, commit_at (unix s), authored_at,
                 commit_message, parent_commits, is_merge, num_files_changed,
                 num_lines_added, num_lines_deleted, commit_author_id, author_login]
  file_changes: [commit_sha, file_path, previous_path, status, lines_added, lines_deleted,
                 is_binary, file_sha, file_type, commit_month]
  file_states:  [commit_sha, file_path, file_sha, file_size, raw_url]
sorted. A reader that is not installed is left out.

    read-commits-parquet.py LAKE_ROOT      (the folder holding github/)
"""
import calendar
import json
import os
import sys

import pyarrow as pa

COLUMNS = {
    "commits": ["commit_sha", "repository_id", "commit_month", "author_name", "author_email",
                "committer_name", "commit_at", "authored_at", "commit_message",
                "parent_commits", "is_merge", "num_files_changed", "num_lines_added",
                "num_lines_deleted", "commit_author_id", "author_login"],
    "file_changes": ["commit_sha", "file_path", "previous_path", "status", "lines_added",
                     "lines_deleted", "is_binary", "file_sha", "file_type", "commit_month"],
    "file_states": ["commit_sha", "file_path", "file_sha", "file_size", "raw_url"],
}


def norm(v):
    if hasattr(v, "utctimetuple"):
        return calendar.timegm(v.utctimetuple())
    if isinstance(v, (list, tuple)):
        return [norm(x) for x in v]
    if hasattr(v, "tolist"):
        return norm(v.tolist())
    return v


def rows(records):
    out = [[norm(v) for v in r] for r in records]
    return sorted(out, key=json.dumps)


def main():
    root = os.path.join(sys.argv[1], "github")
    out = {}
    import pyarrow.dataset as ds
    if True:
        tables = {}
        for name, cols in COLUMNS.items():
            part = ds.partitioning(
                pa.schema([("repository_id", pa.int64()), ("commit_month", pa.string())]),
                flavor="hive")
            t = ds.dataset(os.path.join(root, name), format="parquet", partitioning=part)
            t = t.to_table(columns=cols)
            tables[name] = rows([[r[c] for c in cols] for r in t.to_pylist()])
        out["pyarrow"] = tables
    try:
        import duckdb
    except ImportError:
        duckdb = None
    if duckdb is not None:
        con = duckdb.connect()
        tables = {}
        for name, cols in COLUMNS.items():
            glob = os.path.join(root, name, "*", "*", "*.parquet")
            sel = ", ".join(
                f"CAST({c} AS BIGINT)" if c == "repository_id" else
                f"CAST({c} AS VARCHAR)" if c == "commit_month" else
                f"epoch({c})::BIGINT" if c in ("commit_at", "authored_at") else c
                for c in cols)
            res = con.execute(
                f"SELECT {sel} FROM read_parquet('{glob}', hive_partitioning = true)").fetchall()
            tables[name] = rows([list(r) for r in res])
        out["duckdb"] = tables
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
