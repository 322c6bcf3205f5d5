"""Reads every table of a modewise results directory through pyarrow into DuckDB, as a user
would (`duckdb.sql("select … from t")` over a pyarrow table). Usage: read_duckdb.py DIR.

Text columns must reach Arrow as plain strings (`string` or `large_string`), never
`string_view`: DuckDB 0.10 and 1.0 fail on a pyarrow table holding one ("Unsupported Internal
Arrow Type vu"), whatever DuckDB this script runs with. Prints OK, or `OK without duckdb` when
DuckDB is not installed and MODEWISE_REQUIRE_PYARROW is not 1 (the schema is checked anyway)."""
import os
import sys

import pyarrow.parquet as pq

d = sys.argv[1]
tables = {}
for name in ["runs", "trajectories", "theory", "summary"]:
    table = pq.read_table(f"{d}/{name}.parquet")
    for field in table.schema:
        assert "view" not in str(field.type), (name, field.name, str(field.type))
    tables[name] = table
try:
    import duckdb
except ImportError:
    if os.environ.get("MODEWISE_REQUIRE_PYARROW") == "1":
        raise
    print("OK without duckdb")
    sys.exit(0)
con = duckdb.connect()
for name, table in tables.items():
    con.register(name, table)
    [(rows,)] = con.execute(f"select count(*) from {name}").fetchall()
    assert rows == table.num_rows, (name, rows, table.num_rows)
# Text, numbers and the typed train columns come through with their values.
ids = con.execute("select distinct run_id from runs order by run_id").fetchall()
assert [r[0] for r in ids] == sorted(set(tables["runs"].column("run_id").to_pylist())), ids
[(lr,)] = con.execute("select min(lr) from runs").fetchall()
assert lr == min(tables["runs"].column("lr").to_pylist()), lr
# The train.* columns are typed: a number reads as a number, not VARCHAR.
[(lr_type, steps_type)] = con.execute('select typeof("train.lr"), typeof("train.steps") from runs limit 1').fetchall()
assert (lr_type, steps_type) == ("DOUBLE", "BIGINT"), (lr_type, steps_type)
[(claims,)] = con.execute("select count(distinct claim) from summary").fetchall()
assert claims >= 1, claims
print("OK")
