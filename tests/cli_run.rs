//! End-to-end tests of `modewise run`, `presets` and `report`: results read back (schema,
//! values, metadata), overwrite refusal, and pyarrow as a reader (bad input: `reliability.rs`).

use std::path::Path;
use std::process::{Command, Output};

const SPEC: &str = r#"
name = "tiny"
analysis = "saddle"
[train]
dims = [4, 6, 4]
lr = 0.05
batch = 8
steps = 300
seeds = [1, 2]
backend = "flex"
n_probe = 256
[train.teacher.spectrum]
kind = "list"
s = [2.0, 1.0]
[train.init]
kind = "aligned-balanced"
a0 = 0.1
[overlays]
sde_paths = 50
chain_paths = 50
"#;

fn modewise(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modewise")).args(args).output().expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write_spec(dir: &Path) -> String {
    let path = dir.join("tiny.toml");
    std::fs::write(&path, SPEC).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn run_writes_four_tables_with_metadata_and_figures() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_spec(tmp.path());
    let out = tmp.path().join("res");
    let o = modewise(&["run", &spec, "--out", out.to_str().unwrap(), "--set", "train.lr=0.04"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("peak_before_learned"), "{stdout}");
    assert!(stdout.contains("of 2 members diverged"), "{stdout}");
    for f in ["runs.parquet", "trajectories.parquet", "theory.parquet", "summary.parquet", "modes.svg", "diffusion.svg"]
    {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let runs = modewise_experiments::read_parquet(&out.join("runs.parquet")).unwrap();
    assert_eq!(runs.height(), 2);
    let lr: Vec<f64> = runs.column("lr").unwrap().f64().unwrap().into_no_null_iter().collect();
    assert_eq!(lr, vec![0.04, 0.04], "--set reaches the data");
    // Every spec field is a column, the initialisation's included.
    let a0: Vec<&str> = runs.column("train.init.a0").unwrap().str().unwrap().iter().map(|v| v.unwrap()).collect();
    assert_eq!(a0, vec!["0.1", "0.1"]);
    let kind: Vec<&str> = runs.column("train.init.kind").unwrap().str().unwrap().iter().map(|v| v.unwrap()).collect();
    assert_eq!(kind, vec!["aligned-balanced", "aligned-balanced"]);
    let traj = modewise_experiments::read_parquet(&out.join("trajectories.parquet")).unwrap();
    // 2 members × 2 modes × probe steps (0, 1, …, 300 at 10 per decade).
    let probes = modewise_dln::ProbeSchedule::default().steps(300).len();
    assert_eq!(traj.height(), 2 * 2 * probes);
    let t: Vec<f64> = traj.column("t").unwrap().f64().unwrap().into_no_null_iter().collect();
    let step: Vec<u64> = traj.column("step").unwrap().u64().unwrap().into_no_null_iter().collect();
    for (t, s) in t.iter().zip(&step) {
        assert!((t - 0.04 * *s as f64).abs() < 1e-12);
    }
    // Aligned start: m_k(0) = a0^L = 0.01 for both modes.
    let m: Vec<f64> = traj.column("m_k").unwrap().f64().unwrap().into_no_null_iter().collect();
    for (i, s) in step.iter().enumerate() {
        if *s == 0 {
            assert!((m[i] - 0.01).abs() < 1e-6, "{}", m[i]);
        }
    }
    let meta = modewise_experiments::read_metadata(&out.join("summary.parquet")).unwrap();
    let spec_meta = &meta.iter().find(|(k, _)| k == "spec").unwrap().1;
    let back = modewise_experiments::ExperimentSpec::from_toml(spec_meta, &[]).unwrap();
    assert_eq!(back.train.lr, 0.04);
    assert!(meta.iter().any(|(k, v)| k == "modewise_version" && v == env!("CARGO_PKG_VERSION")));

    // The same directory is refused without --force, replaced with it.
    let again = modewise(&["run", &spec, "--out", out.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("already holds results; pass --force"), "{}", stderr(&again));
    let forced = modewise(&["run", &spec, "--out", out.to_str().unwrap(), "--force"]);
    assert!(forced.status.success(), "{}", stderr(&forced));

    // report redraws the figures from the tables.
    std::fs::remove_file(out.join("modes.svg")).unwrap();
    let rep = modewise(&["report", out.to_str().unwrap()]);
    assert!(rep.status.success(), "{}", stderr(&rep));
    assert!(out.join("modes.svg").is_file());
    assert!(String::from_utf8_lossy(&rep.stdout).contains("t_learned"));

    // Python's pyarrow reads the same files.
    let py = Command::new("python3")
        .args([concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/read_results.py"), out.to_str().unwrap(), "2", "2"])
        .output();
    let required = std::env::var("MODEWISE_REQUIRE_PYARROW").is_ok_and(|v| v == "1");
    match py {
        Ok(o) if o.status.success() => assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "OK"),
        Ok(o) if !required && stderr(&o).contains("No module named 'pyarrow'") => {
            eprintln!("pyarrow is not installed: skipping the Python read-back (CI requires it)")
        }
        Ok(o) => panic!("pyarrow read-back failed: {}", stderr(&o)),
        Err(e) if !required => eprintln!("python3 not found ({e}): skipping the Python read-back"),
        Err(e) => panic!("python3 not found: {e}"),
    }
}

#[test]
fn presets_are_listed_and_printable_as_specs() {
    let o = modewise(&["presets"]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    let names: Vec<&str> = text.lines().map(|l| l.split_whitespace().next().unwrap()).collect();
    assert_eq!(names, ["saddle", "stationary", "relax", "sde-vs-sgd", "demo"]);
    let o = modewise(&["presets", "--show", "saddle"]);
    assert!(o.status.success());
    let spec = modewise_experiments::ExperimentSpec::from_toml(&String::from_utf8_lossy(&o.stdout), &[]).unwrap();
    assert_eq!(spec.name, "saddle");
    assert_eq!(spec.check().unwrap().plans().len(), 9, "three depths and their controls");
}
