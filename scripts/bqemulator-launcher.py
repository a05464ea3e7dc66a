# Starts bqemulator 1.4.0 (scripts/services.sh) with two changes that bring it closer to
# BigQuery; arguments are bqemulator's own.
# 1. At start-up it insists on DuckDB's `spatial` extension, which it downloads from
#    extensions.duckdb.org. Offline, that is made best-effort (as in
#    ../shared/tools/emulators/bqemulator-launcher.py).
# 2. A PARQUET load job runs `INSERT INTO t SELECT * FROM read_parquet(path)`, and DuckDB adds
#    a column for each key=value folder of the path (Hive partitioning, detected by default).
#    GH Archive's objects live under `date=YYYY-MM-DD/hour=HH/`, so loading one from gs:// failed
#    with "table ... has 17 columns but 19 values were supplied". BigQuery reads only the
#    file's columns unless the job asks for `hivePartitioningOptions`, which ghstats does not:
#    the load reads the file alone here too.
import sys

from bqemulator.jobs import executor
from bqemulator.storage import engine

_orig = engine.DuckDBEngine._load_spatial


def _lenient(self):
    try:
        _orig(self)
    except Exception as exc:  # noqa: BLE001
        print(f"[bqemulator-launcher] spatial extension unavailable, GEOGRAPHY disabled: {exc}", file=sys.stderr)


def _load_parquet_file_columns_only(path, target_ref, ctx):
    ctx.engine.execute(
        f"INSERT INTO {target_ref} SELECT * FROM read_parquet(?, hive_partitioning = false)",
        [path],
    )


engine.DuckDBEngine._load_spatial = _lenient
if "PARQUET" in getattr(executor, "_LOAD_FORMAT_HANDLERS", {}):
    executor._LOAD_FORMAT_HANDLERS["PARQUET"] = _load_parquet_file_columns_only
else:
    print("[bqemulator-launcher] no PARQUET load handler to adjust: Hive folders may add columns", file=sys.stderr)

from bqemulator.cli import main  # noqa: E402

sys.exit(main())
