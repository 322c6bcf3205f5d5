//! Helpers shared by the end-to-end tests: running the binary and comparing results
//! directories table by table.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use modewise_experiments::read_parquet;

/// The binary under test, with Slurm's shard variables cleared.
pub fn command(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_modewise"));
    c.args(args).env_remove("SLURM_ARRAY_TASK_ID").env_remove("SLURM_ARRAY_TASK_COUNT").env_remove("RAYON_NUM_THREADS");
    c
}

/// Runs the binary to completion.
pub fn modewise(args: &[&str]) -> Output {
    command(args).output().expect("the binary runs")
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every file under `dir`, as paths relative to it, sorted.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).expect("under root").to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Columns whose values are wall-clock times, and so differ between identical runs.
pub const WALL_CLOCK: [&str; 1] = ["wall_seconds"];

/// A Parquet file's data as text, one entry per column: its name, dtype and every value in
/// Rust's shortest round-trip notation (so equal text means bit-identical floats), leaving out
/// the wall-clock columns.
pub fn table_text(path: &Path) -> Vec<String> {
    let df = read_parquet(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    df.columns()
        .iter()
        .filter(|c| !WALL_CLOCK.contains(&c.name().as_str()))
        .map(|c| {
            let values: Vec<String> = (0..c.len()).map(|i| format!("{:?}", c.get(i).expect("in range"))).collect();
            format!("{} {:?}: {}", c.name(), c.dtype(), values.join(" "))
        })
        .collect()
}

/// Asserts that two results directories hold the same files and, in every Parquet file, the
/// same data bit for bit (wall-clock columns aside) and the same key-value metadata.
pub fn assert_same_results(a: &Path, b: &Path) {
    let (fa, fb) = (files(a), files(b));
    assert_eq!(fa, fb, "the same files in {} and {}", a.display(), b.display());
    let mut parquet = 0;
    for f in fa.iter().filter(|f| f.extension().is_some_and(|e| e == "parquet")) {
        let (ta, tb) = (table_text(&a.join(f)), table_text(&b.join(f)));
        assert_eq!(ta.len(), tb.len(), "{}: columns", f.display());
        for (ca, cb) in ta.iter().zip(&tb) {
            assert!(ca == cb, "{}: column differs:\n{:.300}\n{:.300}", f.display(), ca, cb);
        }
        let ma = modewise_experiments::read_metadata(&a.join(f)).unwrap();
        let mb = modewise_experiments::read_metadata(&b.join(f)).unwrap();
        assert_eq!(ma, mb, "{}: metadata", f.display());
        parquet += 1;
    }
    assert!(parquet > 0, "no Parquet file in {}", a.display());
}
