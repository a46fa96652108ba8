"""Reads every Parquet file of a topic folder together, as users do, and prints a JSON summary.

Usage: python3 tests/read_back.py <topic folder>. Used by tests/avro.rs; needs duckdb and
pyarrow (`pip install duckdb pyarrow`, which tests/run.sh does).
"""
import json
import sys

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

folder = sys.argv[1]
glob = f"{folder}/**/*.parquet"
rows, with_channel, total = duckdb.sql(
    f"select count(*), count(channel), sum(amount) from read_parquet('{glob}', union_by_name = true)"
).fetchall()[0]
files = sorted(ds.dataset(folder, format="parquet").files)
schema = pa.unify_schemas([pq.read_schema(f) for f in files])
table = ds.dataset(files, schema=schema, format="parquet").to_table()
print(json.dumps({
    "duckdb_rows": rows,
    "duckdb_with_channel": with_channel,
    "duckdb_amount": str(total),
    "pyarrow_rows": table.num_rows,
    "pyarrow_columns": sorted(schema.names),
}))
