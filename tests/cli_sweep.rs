//! End-to-end tests of `modewise sweep`: product expansion with deterministic run ids, shards,
//! resume, and the Hive-partitioned layout read back as one dataset.

use std::path::Path;
use std::process::{Command, Output};

const SWEEP: &str = r#"
name = "grid"
[train]
dims = [4, 5, 4]
lr = 0.05
batch = 4
steps = 60
seeds = [1, 2]
backend = "flex"
n_probe = 0
[train.teacher.spectrum]
kind = "list"
s = [2.0, 1.0]
[sweep]
"train.lr" = [0.02, 0.05]
"train.data.sigma" = [0.0, 0.3]
"#;

fn modewise(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_modewise"));
    for var in ["SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX"] {
        c.env_remove(var);
    }
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("the binary runs")
}

fn parts(dir: &Path, table: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join(table))
        .map(|it| it.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn shards_cover_the_product_once_and_resume_redoes_only_what_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("grid.toml");
    std::fs::write(&file, SWEEP).unwrap();
    let (file, out) = (file.to_str().unwrap(), tmp.path().join("res"));
    let out_s = out.to_str().unwrap();
    let a = modewise(&["sweep", file, "--out", out_s, "--shard", "0/2"], &[]);
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert_eq!(parts(&out, "summary"), ["run_index=0", "run_index=2"]);
    // Shard 1 of 2 from Slurm's variables.
    let b = modewise(
        &["sweep", file, "--out", out_s, "--resume"],
        &[("SLURM_ARRAY_TASK_ID", "1"), ("SLURM_ARRAY_TASK_COUNT", "2")],
    );
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    for table in ["runs", "trajectories", "theory", "summary"] {
        assert_eq!(parts(&out, table), ["run_index=0", "run_index=1", "run_index=2", "run_index=3"], "{table}");
    }
    // Run ids are deterministic: keys sorted, values in the order given.
    let ids: Vec<String> = (0..4)
        .map(|i| {
            let df = modewise_experiments::read_parquet(&out.join(format!("runs/run_index={i}/part.parquet"))).unwrap();
            df.column("run_id").unwrap().str().unwrap().get(0).unwrap().to_string()
        })
        .collect();
    assert_eq!(ids, ["grid-0", "grid-1", "grid-2", "grid-3"]);
    let lr0 = modewise_experiments::read_parquet(&out.join("runs/run_index=1/part.parquet")).unwrap();
    let sigma: Vec<f64> = lr0.column("sigma").unwrap().f64().unwrap().into_no_null_iter().collect();
    let lr: Vec<f64> = lr0.column("lr").unwrap().f64().unwrap().into_no_null_iter().collect();
    // Keys sorted (train.data.sigma, train.lr), the last varying fastest: point 1 is σ = 0, η = 0.05.
    assert_eq!((lr[0], sigma[0]), (0.05, 0.0));

    // Without --resume an existing sweep is refused; with it, complete runs are skipped and a
    // run whose summary part is missing is redone, giving the same data.
    let again = modewise(&["sweep", file, "--out", out_s], &[]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("pass --resume"));
    let before = std::fs::read(out.join("trajectories/run_index=3/part.parquet")).unwrap();
    std::fs::remove_file(out.join("summary/run_index=3/part.parquet")).unwrap();
    let r = modewise(&["sweep", file, "--out", out_s, "--resume"], &[]);
    assert!(r.status.success());
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(text.contains("1 runs done, 3 skipped as complete"), "{text}");
    let after = std::fs::read(out.join("trajectories/run_index=3/part.parquet")).unwrap();
    let (a, b) = (modewise_experiments::read_parquet(&out.join("trajectories/run_index=3/part.parquet")).unwrap(), {
        std::fs::write(tmp.path().join("before.parquet"), &before).unwrap();
        modewise_experiments::read_parquet(&tmp.path().join("before.parquet")).unwrap()
    });
    assert!(a.equals_missing(&b), "a redone run reproduces its data");
    assert!(!after.is_empty());

    // pyarrow reads each table as one Hive-partitioned dataset.
    let script = format!(
        "import pyarrow.dataset as ds; t = ds.dataset('{out_s}/trajectories', format='parquet', partitioning='hive').to_table(); \
         print(sorted(set(t.column('run_index').to_pylist())))"
    );
    match Command::new("python3").args(["-c", &script]).output() {
        Ok(o) if o.status.success() => assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "[0, 1, 2, 3]"),
        Ok(o) if std::env::var("MODEWISE_REQUIRE_PYARROW").as_deref() != Ok("1") => {
            eprintln!("skipping the pyarrow read-back: {}", String::from_utf8_lossy(&o.stderr))
        }
        other => panic!("pyarrow read-back failed: {other:?}"),
    }
}

#[test]
fn bad_sweeps_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("grid.toml");
    std::fs::write(&file, SWEEP).unwrap();
    let file = file.to_str().unwrap();
    let out = tmp.path().join("res");
    let cases: [(&[&str], &str); 3] = [
        (&["--shard", "2/2"], "error: --shard: needs 0 ≤ I < N and N ≥ 1 (got 2/2)"),
        (&["--shard", "x"], "error: --shard: must be I/N (got `x`)"),
        (&["--set", "sweep.train.lr=0.1"], "error: sweep.train.lr: must be a non-empty list of values"),
    ];
    for (extra, expected) in cases {
        let mut args = vec!["sweep", file, "--out", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        let o = modewise(&args, &[]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.starts_with(expected), "{extra:?}: expected `{expected}`, got `{err}`");
        assert!(!out.exists());
    }
    std::fs::write(
        tmp.path().join("nosweep.toml"),
        SWEEP
            .replace("[sweep]", "[overlays]")
            .replace("\"train.lr\" = [0.02, 0.05]\n\"train.data.sigma\" = [0.0, 0.3]", ""),
    )
    .unwrap();
    let o = modewise(&["sweep", tmp.path().join("nosweep.toml").to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("error: sweep: is missing"));
}

#[test]
fn every_table_of_a_sweep_carries_its_typed_coordinates_and_typed_train_columns() {
    use polars::prelude::DataType;
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("grid.toml");
    // Integers and floats in one list make an f64 column; integers alone, i64; strings, str.
    let text = SWEEP
        .replace(
            "\"train.data.sigma\" = [0.0, 0.3]",
            "\"train.data.sigma\" = [0, 0.3]\n\"train.steps\" = [20, 30]\n\"train.backend\" = [\"flex\"]",
        )
        .replace("steps = 60\n", "")
        .replace("name = \"grid\"", "name = \"grid\"\nanalysis = \"saddle\"");
    std::fs::write(&file, text).unwrap();
    let out = tmp.path().join("res");
    let o = modewise(&["sweep", file.to_str().unwrap(), "--out", out.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Keys sorted (backend, data.sigma, lr, steps), the last varying fastest: point 5 is
    // backend flex, σ = 0.3, η = 0.02, 30 steps.
    for table in ["runs", "trajectories", "theory", "summary"] {
        let df = modewise_experiments::read_parquet(&out.join(format!("{table}/run_index=5/part.parquet"))).unwrap();
        let column = |name: &str| df.column(name).unwrap_or_else(|_| panic!("{table} has no {name}")).clone();
        assert_eq!(column("sweep_train_data_sigma").dtype(), &DataType::Float64, "{table}");
        assert_eq!(column("sweep_train_data_sigma").f64().unwrap().get(0), Some(0.3), "{table}");
        assert_eq!(column("sweep_train_lr").f64().unwrap().get(0), Some(0.02), "{table}");
        assert_eq!(column("sweep_train_steps").i64().unwrap().get(0), Some(30), "{table}");
        assert_eq!(column("sweep_train_backend").str().unwrap().get(0), Some("flex"), "{table}");
        // One value per row.
        assert_eq!(column("sweep_train_lr").f64().unwrap().into_no_null_iter().count(), df.height(), "{table}");
    }
    // Point 0 has σ = 0 written as an integer in the list, an f64 coordinate like the others.
    let df = modewise_experiments::read_parquet(&out.join("summary/run_index=0/part.parquet")).unwrap();
    assert_eq!(df.column("sweep_train_data_sigma").unwrap().f64().unwrap().get(0), Some(0.0));
    // The runs table's train.* columns are typed too.
    let runs = modewise_experiments::read_parquet(&out.join("runs/run_index=5/part.parquet")).unwrap();
    let dtype = |name: &str| runs.column(name).unwrap().dtype().clone();
    assert_eq!(dtype("train.lr"), DataType::Float64);
    assert_eq!(dtype("train.steps"), DataType::Int64);
    assert_eq!(dtype("train.init.kind"), DataType::String);
    assert_eq!(dtype("train.dims"), DataType::String);
    assert_eq!(runs.column("train.steps").unwrap().i64().unwrap().get(0), Some(30));
    assert_eq!(runs.column("train.dims").unwrap().str().unwrap().get(0), Some("[4, 5, 4]"));
}

#[test]
fn dry_run_prints_the_points_shards_and_directory_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("grid.toml");
    // 2 × 2 × 3 = 12 points.
    std::fs::write(&file, SWEEP.replace("[sweep]", "[sweep]\n\"train.steps\" = [10, 20, 30]")).unwrap();
    let out = tmp.path().join("res");
    let (file, out_s) = (file.to_str().unwrap(), out.to_str().unwrap());
    let o = modewise(&["sweep", file, "--out", out_s, "--dry-run", "--shard", "1/5"], &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!(
            "sweep grid: 12 points\nshard 1/5 (--shard): 3 points (indices 1 + k·5)\nall 5 shards: 2 to 3 points \
             each\nresults directory: {out_s}\n"
        )
    );
    // A 1-based Slurm array of 4 tasks: task 4 is the last shard.
    let slurm = [("SLURM_ARRAY_TASK_ID", "4"), ("SLURM_ARRAY_TASK_MIN", "1"), ("SLURM_ARRAY_TASK_MAX", "4")];
    let o = modewise(&["sweep", file, "--out", out_s, "--dry-run"], &slurm);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("shard 3/4 (Slurm's array variables): 3 points (indices 3 + k·4)"), "{text}");
    assert!(text.contains("all 4 shards: 3 points each"), "{text}");
    assert!(!out.exists(), "a dry run writes nothing");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1, "only the sweep file");
}

/// `modewise report` on a sweep's Hive dataset: each point's figures are redrawn from its
/// parts into `figures/run_index=<i>/`, the comparisons across points (per verdict quantity and
/// the late mode means) against the swept coordinate with the most values into `figures/`, and
/// every point's verdicts are printed; the tables are left as they were, and a sweep's
/// directory with no complete point is refused (exit 2).
#[test]
fn report_on_a_sweep_draws_each_point_and_figures_that_compare_the_points() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("grid.toml");
    let text = SWEEP
        .replace("\"train.lr\" = [0.02, 0.05]", "\"train.lr\" = [0.02, 0.03, 0.05]")
        .replace("name = \"grid\"", "name = \"grid\"\nanalysis = \"saddle\"");
    std::fs::write(&file, text).unwrap();
    let out = tmp.path().join("res");
    let out_s = out.to_str().unwrap();
    let o = modewise(&["sweep", file.to_str().unwrap(), "--out", out_s], &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary_before = std::fs::read(out.join("summary/run_index=0/part.parquet")).unwrap();

    let rep = modewise(&["report", out_s], &[]);
    let err = String::from_utf8_lossy(&rep.stderr);
    assert!(rep.status.success(), "{err}");
    assert!(err.contains("6 complete points of the sweep"), "{err}");
    for i in 0..6 {
        for f in ["modes.svg", "alignment.svg"] {
            let path = out.join(format!("figures/run_index={i}/{f}"));
            assert!(path.is_file(), "{} missing", path.display());
        }
        // The point's own runs, read from its parts.
        let modes = std::fs::read_to_string(out.join(format!("figures/run_index={i}/modes.svg"))).unwrap();
        assert!(modes.contains(&format!("grid-{i}")), "point {i}");
    }
    // Every point's verdicts, as many rows as the summary parts hold.
    let stdout = String::from_utf8_lossy(&rep.stdout);
    let mut verdicts = 0;
    for i in 0..6 {
        assert!(stdout.contains(&format!("grid-{i}")), "point {i}: {stdout}");
        verdicts += modewise_experiments::read_parquet(&out.join(format!("summary/run_index={i}/part.parquet")))
            .unwrap()
            .height();
    }
    assert!(verdicts > 0, "a saddle analysis has verdicts");
    // The comparisons: x is train.lr (three values against sigma's two), one series per other
    // coordinate and mode.
    let late = std::fs::read_to_string(out.join("figures/sweep_late_m_k.svg")).unwrap();
    assert!(late.contains("sweep_train_lr"), "the x axis is the lr coordinate");
    for label in ["train_data_sigma=0, k = 0", "train_data_sigma=0.3, k = 1"] {
        assert!(late.contains(label), "{label} missing from sweep_late_m_k.svg");
    }
    let t_learned = std::fs::read_to_string(out.join("figures/sweep_t_learned.svg")).unwrap();
    assert!(t_learned.contains("measured") && t_learned.contains("predicted"), "both against lr");
    // The tables are untouched and still read as datasets (no figure inside a table's folder).
    assert_eq!(std::fs::read(out.join("summary/run_index=0/part.parquet")).unwrap(), summary_before);
    assert_eq!(parts(&out, "summary").len(), 6);
    for table in ["runs", "trajectories", "theory", "summary"] {
        for part in parts(&out, table) {
            let names: Vec<_> =
                std::fs::read_dir(out.join(table).join(&part)).unwrap().map(|e| e.unwrap().file_name()).collect();
            assert_eq!(names, ["part.parquet"], "{table}/{part}");
        }
    }

    // A sweep's directory with nothing complete yet.
    let fresh = tmp.path().join("fresh");
    std::fs::create_dir(&fresh).unwrap();
    std::fs::copy(out.join("sweep.toml"), fresh.join("sweep.toml")).unwrap();
    let bad = modewise(&["report", fresh.to_str().unwrap()], &[]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("a sweep's directory (sweep.toml) with no complete point yet"), "{err}");
    assert_eq!(std::fs::read_dir(&fresh).unwrap().count(), 1, "nothing written");
}
