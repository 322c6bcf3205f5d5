"""Reads a dose experiment's `dose_response` Hive dataset with pyarrow's dataset API, as a user
would, and checks that every row carries its variant and its dose covariates as columns and that
each part (`run_index=I`) holds one variant's rows. Usage: read_dose_response.py DIR VARIANTS
(VARIANTS: how many variants the experiment has). Prints OK."""
import sys

import pyarrow.dataset as ds

d, variants = sys.argv[1], int(sys.argv[2])
t = ds.dataset(f"{d}/dose_response", format="parquet", partitioning="hive").to_table()
covariates = ["label", "depth", "dose_misalignment", "dose_imbalance", "dose_scale", "run_index"]
for col in covariates + ["run_id", "k", "metric", "reference", "estimate", "ci_low", "ci_high", "holds"]:
    assert col in t.column_names, (col, t.column_names)
assert t.num_rows > 0
rows = t.select(covariates).to_pylist()
for col in covariates:
    assert all(r[col] is not None for r in rows), col
# One variant per part, every variant a part, numbered in spec order from 0.
label_of = {}
for r in rows:
    assert label_of.setdefault(r["run_index"], r["label"]) == r["label"], r
assert sorted(label_of) == list(range(variants)), sorted(label_of)
assert len(set(label_of.values())) == variants
print("OK")
