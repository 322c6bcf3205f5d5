"""Reads a modewise results directory with pyarrow (the reader most users have) and checks the
schemas, row counts and metadata. Usage: read_results.py DIR MEMBERS MODES. Prints OK."""
import sys

import pyarrow.parquet as pq

d, members, modes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
runs = pq.read_table(f"{d}/runs.parquet")
assert runs.num_rows == members, runs.num_rows
assert runs.column("status").to_pylist() == ["ok"] * members
traj = pq.read_table(f"{d}/trajectories.parquet")
for col, typ in [("run_id", "string"), ("step", "uint64"), ("t", "double"), ("k", "uint32"), ("m_k", "double"),
                 ("diffusion", "double"), ("loss", "double"), ("alignment_error", "double")]:
    allowed = {typ, "large_string", "string_view"} if typ == "string" else {typ}
    assert str(traj.schema.field(col).type) in allowed, (col, traj.schema.field(col).type)
assert traj.num_rows % (members * modes) == 0
ks = set(traj.column("k").to_pylist())
assert ks == set(range(modes)), ks
theory = pq.read_table(f"{d}/theory.parquet")
assert "gradient_flow" in set(theory.column("overlay").to_pylist())
summary = pq.read_table(f"{d}/summary.parquet")
assert set(summary.column_names) >= {"claim", "k", "predicted", "measured", "holds"}
meta = pq.read_metadata(f"{d}/trajectories.parquet").metadata
assert b"spec" in meta and b"modewise_version" in meta, meta.keys()
assert b"[train]" in meta[b"spec"]
# pandas, the other common reader, gets the same rows.
try:
    import pandas  # noqa: F401
    assert len(traj.to_pandas()) == traj.num_rows
except ImportError:
    pass
print("OK")
