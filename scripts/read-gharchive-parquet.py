#!/usr/bin/env python3
"""Reads a lake's GH Archive Parquet files with readers ghstats did not write: pyarrow's
dataset API and DuckDB, each with Hive partitioning (date=YYYY-MM-DD/hour=HH). Prints one JSON
object {"pyarrow": ROWS, "duckdb": ROWS}; ROWS is a list of
[event_id, event_type, created_at (RFC 3339, UTC), actor_login, repo_name, payload_type, date,
hour], where payload_type is the JSON type of the parsed payload ("object", "null"...) and
date/hour come from the folder names. A reader that is not installed is left out.

    read-gharchive-parquet.py LAKE_ROOT      (the folder holding gharchive/events/)
"""
import datetime
import json
import os
import sys


def payload_type(text):
    if text is None:
        return "null"
    v = json.loads(text)
    return {dict: "object", list: "array", str: "string"}.get(type(v), type(v).__name__)


def iso(t):
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.timezone.utc)
    return t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def main():
    root = os.path.join(sys.argv[1], "gharchive", "events")
    out = {}
    try:
        import pyarrow.dataset as ds
    except ImportError:
        ds = None
    if ds is not None:
        table = ds.dataset(root, format="parquet", partitioning="hive").to_table(
            columns=["event_id", "event_type", "created_at", "actor_login", "repo_name",
                     "payload", "date", "hour"])
        out["pyarrow"] = [
            [r["event_id"], r["event_type"], iso(r["created_at"]), r["actor_login"],
             r["repo_name"], payload_type(r["payload"]), str(r["date"]), int(r["hour"])]
            for r in table.to_pylist()
        ]
    try:
        import duckdb
    except ImportError:
        duckdb = None
    if duckdb is not None:
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        rows = con.execute(
            "SELECT event_id, event_type, created_at, actor_login, repo_name, payload, "
            "CAST(date AS VARCHAR), CAST(hour AS INTEGER) FROM read_parquet(?, hive_partitioning = true)",
            [os.path.join(root, "**", "*.parquet")],
        ).fetchall()
        out["duckdb"] = [
            [r[0], r[1], iso(r[2]), r[3], r[4], payload_type(r[5]), r[6], r[7]] for r in rows
        ]
    json.dump(out, sys.stdout)


main()
