//! End-to-end tests of `modewise run`, `presets` and `report`: results read back (schema,
//! values, metadata), overwrite refusal, and pyarrow as a reader (bad input: `reliability.rs`).

mod common;

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
    let o = modewise(&["run", &spec, "--out", out.to_str().unwrap(), "--set", "train.lr=0.04", "--threads", "1"]);
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
    // Typed: numbers as numbers (DuckDB reads `train.init.a0` as DOUBLE, not VARCHAR).
    let a0: Vec<f64> = runs.column("train.init.a0").unwrap().f64().unwrap().into_no_null_iter().collect();
    assert_eq!(a0, vec![0.1, 0.1]);
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
    // The run's provenance, in every table.
    for table in ["runs", "trajectories", "theory", "summary"] {
        let meta = modewise_experiments::read_metadata(&out.join(format!("{table}.parquet"))).unwrap();
        let get = |key: &str| meta.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_default();
        let commit = get("git_commit");
        let hex = commit.trim_end_matches("-dirty");
        assert!(commit == "unknown" || (hex.len() == 40 && hex.chars().all(|c| c.is_ascii_hexdigit())), "{commit}");
        let (started, ended) = (get("started_at"), get("ended_at"));
        for t in [&started, &ended] {
            // RFC 3339 in UTC: 2025-01-31T12:00:00Z.
            let b = t.as_bytes();
            assert!(b.len() == 20 && b[4] == b'-' && b[10] == b'T' && b[19] == b'Z', "{table}: {t}");
        }
        assert!(started <= ended, "{started} ≤ {ended}");
        assert!(!get("host").is_empty() && get("host") != "unknown", "{table}");
        assert!(get("command_line").ends_with("--set train.lr=0.04 --threads 1"), "{}", get("command_line"));
        assert_eq!(get("threads"), "1");
        assert!(get("device").starts_with("cpu: "), "{}", get("device"));
    }

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

    // Python's pyarrow reads the same files, and DuckDB reads them through pyarrow.
    python_reads("read_results.py", &[out.to_str().unwrap(), "2", "2"], &["OK"]);
    python_reads("read_duckdb.py", &[out.to_str().unwrap()], &["OK", "OK without duckdb"]);
}

/// Runs `tests/python/SCRIPT ARGS` and checks that it prints one of `expected`; skipped (with a
/// message) where python3 or pyarrow is missing, unless MODEWISE_REQUIRE_PYARROW=1 (CI).
fn python_reads(script: &str, args: &[&str], expected: &[&str]) {
    let path = format!("{}/tests/python/{script}", env!("CARGO_MANIFEST_DIR"));
    let py = Command::new("python3").arg(&path).args(args).output();
    let required = std::env::var("MODEWISE_REQUIRE_PYARROW").is_ok_and(|v| v == "1");
    match py {
        Ok(o) if o.status.success() => {
            let printed = String::from_utf8_lossy(&o.stdout).trim().to_string();
            assert!(expected.contains(&printed.as_str()), "{script}: {printed}");
            if printed.ends_with("without duckdb") {
                eprintln!("duckdb is not installed: {script} checked the Arrow schema only (CI requires duckdb)");
            }
        }
        Ok(o) if !required && stderr(&o).contains("No module named 'pyarrow'") => {
            eprintln!("pyarrow is not installed: skipping {script} (CI requires it)")
        }
        Ok(o) => panic!("{script} failed: {}", stderr(&o)),
        Err(e) if !required => eprintln!("python3 not found ({e}): skipping {script}"),
        Err(e) => panic!("python3 not found: {e}"),
    }
}

/// Issue 13, item 5: `modewise run relax` (at a tiny size through `--set`) writes its
/// `dose_response` rows as one Hive dataset, a part per variant, that pyarrow's dataset API
/// reads with every dose covariate as a column; the other tables, the dose figures and the
/// printed "holds up to dose" lines stay.
#[test]
fn relax_writes_its_dose_response_as_one_hive_dataset_with_figures() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("relax");
    let o = modewise(&[
        "run",
        "relax",
        "--out",
        out.to_str().unwrap(),
        "--set",
        "train.steps=600",
        "--set",
        "train.seeds=[0, 1]",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.lines().any(|l| l.starts_with("claim 4 · w_at_peak vs ") && l.contains(": within ±")), "{stdout}");
    let variants = modewise_experiments::preset("relax").unwrap()[0].variants.len();
    assert_eq!(variants, 14);
    assert!(!out.join("dose_response.parquet").exists(), "no flat dose_response beside the dataset");
    let parts: Vec<String> = common::files(&out)
        .iter()
        .filter(|f| f.starts_with("dose_response"))
        .map(|f| f.to_string_lossy().into_owned())
        .collect();
    let expected: Vec<String> = (0..variants).map(|i| format!("dose_response/run_index={i}/part.parquet")).collect();
    let mut sorted = parts.clone();
    sorted.sort_by_key(|p| p.len());
    assert_eq!(sorted, expected, "one part per variant");
    let rows = modewise_experiments::dose::read_dose_response(&out).unwrap();
    assert_eq!(rows.first().map(|r| r.label.as_str()), Some("small-dose=0"), "parts in spec order");
    for f in ["runs.parquet", "trajectories.parquet", "theory.parquet", "summary.parquet", "report.html"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    for metric in ["w_at_peak", "d_max", "t_learned", "t_peak", "variance_over_t", "ks_to_density"] {
        let svg = std::fs::read_to_string(out.join(format!("dose_{metric}.svg"))).unwrap_or_default();
        assert!(svg.contains("<svg"), "dose_{metric}.svg missing or empty");
    }
    let page = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(page.contains("/dose_response/**/*.parquet"), "the page says how to read the dataset");
    python_reads("read_dose_response.py", &[out.to_str().unwrap(), &variants.to_string()], &["OK"]);
}

#[test]
fn presets_are_listed_and_printable_as_specs() {
    let o = modewise(&["presets"]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    let names: Vec<&str> = text.lines().map(|l| l.split_whitespace().next().unwrap()).collect();
    assert_eq!(names, ["saddle", "stationary", "relax", "sde-vs-sgd", "scaling", "demo"]);
    let o = modewise(&["presets", "--show", "saddle"]);
    assert!(o.status.success());
    let spec = modewise_experiments::ExperimentSpec::from_toml(&String::from_utf8_lossy(&o.stdout), &[]).unwrap();
    assert_eq!(spec.name, "saddle");
    assert_eq!(spec.check().unwrap().plans().len(), 9, "three depths and their controls");
}

#[test]
fn every_preset_as_printed_runs_as_a_spec_file() {
    // `presets --show NAME > f.toml && modewise run f.toml` (shrunk by overrides, which apply to
    // each spec of the demo's file).
    let tmp = tempfile::tempdir().unwrap();
    let small = ["train.steps=20", "train.seeds=[0, 1]", "overlays.sde_paths=0", "overlays.chain_paths=0"];
    for name in ["saddle", "demo"] {
        let o = modewise(&["presets", "--show", name]);
        assert!(o.status.success(), "{}", stderr(&o));
        let file = tmp.path().join(format!("{name}.toml"));
        std::fs::write(&file, &o.stdout).unwrap();
        let out = tmp.path().join(format!("out-{name}"));
        let mut args = vec!["run", file.to_str().unwrap(), "--out", out.to_str().unwrap()];
        for s in &small {
            args.extend(["--set", s]);
        }
        let o = modewise(&args);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let runs = |dir: &Path| modewise_experiments::read_parquet(&dir.join("runs.parquet")).unwrap().height();
        // Two members per run (variant) of each spec.
        let specs = modewise_experiments::preset(name).unwrap();
        let members = |s: &modewise_experiments::ExperimentSpec| 2 * s.variants.len().max(1);
        if name == "demo" {
            // One subdirectory per experiment, as `modewise run demo` writes them.
            assert_eq!(specs.len(), 4);
            for spec in &specs {
                assert_eq!(runs(&out.join(&spec.name)), members(spec), "{}", spec.name);
            }
        } else {
            assert_eq!(runs(&out), members(&specs[0]));
        }
    }
}

/// The `steps` (u64) or `sigma` (f64) column of a runs table, one value per run (first member).
fn per_run<T: Copy>(out: &Path, column: &str, get: impl Fn(&polars::prelude::Column) -> Vec<T>) -> Vec<(String, T)> {
    let runs = modewise_experiments::read_parquet(&out.join("runs.parquet")).unwrap();
    let ids: Vec<String> =
        runs.column("run_id").unwrap().str().unwrap().iter().map(|v| v.unwrap().to_string()).collect();
    let values = get(runs.column(column).unwrap());
    let mut seen = Vec::new();
    for (id, v) in ids.into_iter().zip(values) {
        if !seen.iter().any(|(s, _): &(String, T)| *s == id) {
            seen.push((id, v));
        }
    }
    seen
}

#[test]
fn set_applies_to_every_variant_with_a_note_and_one_key_form() {
    let tmp = tempfile::tempdir().unwrap();
    // Variants in the key form of --set and in the older form without `train.`.
    let spec = SPEC.replace("analysis = \"saddle\"", "").replace("steps = 300", "steps = 20")
        + r#"
[[variants]]
label = "quiet"
set = { "train.data.sigma" = 0.0 }
[[variants]]
label = "loud"
set = { "data.sigma" = 0.5 }
[[variants]]
label = "fast"
set = { "train.lr" = 0.1 }
"#;
    let path = tmp.path().join("v.toml");
    std::fs::write(&path, &spec).unwrap();
    let path = path.to_str().unwrap();
    let out = tmp.path().join("res");
    let f64s = |c: &polars::prelude::Column| c.f64().unwrap().into_no_null_iter().collect::<Vec<f64>>();
    let o = modewise(&["run", path, "--out", out.to_str().unwrap(), "--set", "train.data.sigma=0.2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    for variant in [
        "variants[0] (quiet) no longer sets train.data.sigma = 0.0",
        "variants[1] (loud) no longer sets data.sigma = 0.5",
    ] {
        assert!(err.contains(&format!("note: train.data.sigma = 0.2 applies to every run, so {variant}")), "{err}");
    }
    assert!(!err.contains("(fast)"), "the variant that does not set it is not named: {err}");
    let sigma = per_run(&out, "sigma", f64s);
    assert_eq!(sigma, [("tiny/quiet".into(), 0.2), ("tiny/loud".into(), 0.2), ("tiny/fast".into(), 0.2)]);
    // An override of one variant wins over the override of the base, whatever the order.
    let o = modewise(&[
        "run",
        path,
        "--out",
        out.to_str().unwrap(),
        "--force",
        "--set",
        "variants[1].set.train.data.sigma=0.7",
        "--set",
        "train.data.sigma=0.2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let sigma: Vec<f64> = per_run(&out, "sigma", f64s).into_iter().map(|(_, s)| s).collect();
    assert_eq!(sigma, [0.2, 0.7, 0.2]);
    // One field in both forms is refused, naming the variant's key; nothing is written.
    let both = spec.replace(r#"set = { "train.lr" = 0.1 }"#, r#"set = { "train.lr" = 0.1, lr = 0.2 }"#);
    std::fs::write(tmp.path().join("both.toml"), both).unwrap();
    let fresh = tmp.path().join("fresh");
    let o = modewise(&["run", tmp.path().join("both.toml").to_str().unwrap(), "--out", fresh.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(
        stderr(&o).trim(),
        "error: variants[2].set.train.lr: names the same field as `lr`: give it once (as train.lr)"
    );
    assert!(!fresh.exists());
}

#[test]
fn set_steps_reaches_every_run_of_a_preset_whose_variants_set_their_own() {
    // The issue's case: `sde-vs-sgd` sets steps in each variant.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sde");
    let sets = ["train.steps=30", "train.seeds=[0, 1]", "overlays.sde_paths=0", "overlays.chain_paths=0"];
    let mut args = vec!["run", "sde-vs-sgd", "--out", out.to_str().unwrap()];
    for s in &sets {
        args.extend(["--set", s]);
    }
    let o = modewise(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    // Every variant sets its own steps: one note each, and every run takes 30 steps.
    let preset = modewise_experiments::preset("sde-vs-sgd").unwrap().remove(0).check().unwrap();
    let variants = preset.plans().len();
    assert!(variants >= 3);
    let notes = stderr(&o).lines().filter(|l| l.starts_with("note: train.steps = 30 applies to every run")).count();
    assert_eq!(notes, variants, "{}", stderr(&o));
    let u64s = |c: &polars::prelude::Column| c.u64().unwrap().into_no_null_iter().collect::<Vec<u64>>();
    let steps: Vec<u64> = per_run(&out, "steps", u64s).into_iter().map(|(_, s)| s).collect();
    assert_eq!(steps, vec![30; variants]);
    let f64s = |c: &polars::prelude::Column| c.f64().unwrap().into_no_null_iter().collect::<Vec<f64>>();
    let lr: Vec<f64> = per_run(&out, "lr", f64s).into_iter().map(|(_, s)| s).collect();
    let own: Vec<f64> = preset.plans().iter().map(|p| p.train.params().lr).collect();
    assert_eq!(lr, own, "the variants' other settings stay");
}

#[test]
fn a_second_run_into_the_default_directory_says_what_to_do_without_naming_an_unpassed_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_spec(tmp.path());
    let run = |extra: &[&str]| {
        let mut args = vec!["run", spec.as_str(), "--set", "train.steps=10", "--set", "overlays.sde_paths=0"];
        args.extend(extra);
        Command::new(env!("CARGO_BIN_EXE_modewise")).args(&args).current_dir(tmp.path()).output().unwrap()
    };
    let first = run(&[]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(tmp.path().join("data/tiny/runs.parquet").is_file());
    let second = run(&[]);
    assert_eq!(second.status.code(), Some(2));
    assert_eq!(
        stderr(&second).trim(),
        "error: results directory data/tiny already holds results; pass --force to replace them, or choose another \
         with --out DIR"
    );
    // With --out, the message names the flag that was passed.
    let out = run(&["--out", "data/tiny"]);
    assert_eq!(
        stderr(&out).trim(),
        "error: --out: data/tiny already holds results; pass --force to replace them, or choose another --out"
    );
    assert!(run(&["--force"]).status.success());
}

#[test]
fn the_first_authors_setting_whitens_n_points_and_trains_on_a_random_fraction() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_spec(tmp.path());
    let run = |name: &str, source: &str| {
        let out = tmp.path().join(name);
        let set = format!("train.data.source={source}");
        let o = modewise(&["run", &spec, "--out", out.to_str().unwrap(), "--set", &set, "--set", "train.steps=60"]);
        (out, o)
    };
    let (split, o) = run("split", r#"{kind="fixed", n=20, whiten=true, train_fraction=0.8}"#);
    assert!(o.status.success(), "{}", stderr(&o));
    let runs = modewise_experiments::read_parquet(&split.join("runs.parquet")).unwrap();
    let fraction: Vec<f64> =
        runs.column("train.data.source.train_fraction").unwrap().f64().unwrap().into_no_null_iter().collect();
    assert_eq!(fraction, vec![0.8, 0.8]);
    let spec_text = modewise_experiments::read_metadata(&split.join("runs.parquet"))
        .unwrap()
        .into_iter()
        .find(|(k, _)| k == "spec")
        .unwrap()
        .1;
    assert!(spec_text.contains("train_fraction = 0.8"), "{spec_text}");
    // Training on 16 of the 20 points moves the weights differently from training on all 20.
    let (all, o) = run("all", r#"{kind="fixed", n=20, whiten=true}"#);
    assert!(o.status.success(), "{}", stderr(&o));
    let traj = |dir: &Path| common::table_text(&dir.join("trajectories.parquet"));
    assert_ne!(traj(&split), traj(&all), "the training fraction changes nothing");
    // The default fraction is 1: written out, it gives the same tables bit for bit.
    let (one, o) = run("one", r#"{kind="fixed", n=20, whiten=true, train_fraction=1.0}"#);
    assert!(o.status.success(), "{}", stderr(&o));
    common::assert_same_results(&all, &one);
    // 80% of 20 points leaves 16 < a batch of 17: refused, naming the field, nothing written.
    let out = tmp.path().join("small");
    let o = modewise(&[
        "run",
        &spec,
        "--out",
        out.to_str().unwrap(),
        "--set",
        "train.batch=17",
        "--set",
        r#"train.data.source={kind="fixed", n=20, whiten=true, train_fraction=0.8}"#,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(
        stderr(&o).trim(),
        "error: train.data.source.train_fraction: leaves 16 of the 20 points to train on, fewer than the batch size 17 (got 0.8)"
    );
    assert!(!out.exists());
    let o = modewise(&[
        "run",
        &spec,
        "--out",
        out.to_str().unwrap(),
        "--set",
        r#"train.data.source={kind="fixed", n=20, train_fraction=0.0}"#,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(stderr(&o).trim(), "error: train.data.source.train_fraction: must be in (0, 1] (got 0.0)");
    assert!(!out.exists());
}

#[test]
fn piped_progress_writes_step_lines_between_probes_and_the_overlay_phase_at_the_set_rate() {
    let tmp = tempfile::tempdir().unwrap();
    let text = SPEC.replace("steps = 300", "steps = 400\ncheck_every = 7");
    let path = tmp.path().join("tiny.toml");
    std::fs::write(&path, &text).unwrap();
    let path = path.to_str().unwrap();
    let probes = modewise_experiments::ExperimentSpec::from_toml(&text, &[]).unwrap().check().unwrap().plans()[0]
        .train
        .probe_steps();
    let run = |out: &str, secs: &str| {
        let out = tmp.path().join(out);
        Command::new(env!("CARGO_BIN_EXE_modewise"))
            .args(["run", path, "--out", out.to_str().unwrap()])
            .env("MODEWISE_PROGRESS_SECS", secs)
            .output()
            .expect("the binary runs")
    };
    // stderr is a pipe, as in a batch job: plain lines; at rate 0, one at every tick.
    let o = run("every", "0");
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    let ticks: Vec<u64> = (7..=400).step_by(7).collect();
    assert!(ticks.iter().filter(|s| !probes.contains(s)).count() > 40, "ticks between the probes: {probes:?}");
    for s in &ticks {
        let pct = 100.0 * *s as f64 / 400.0;
        assert!(err.contains(&format!("tiny (1/1): step {s} of 400 ({pct:.0}%) (")), "step {s}:\n{err}");
    }
    // Each step once, probes included (a probe at a tick is not written twice).
    let step_lines = err.lines().filter(|l| l.starts_with("tiny (1/1): step ")).count();
    let expected = ticks.iter().chain(&probes).collect::<std::collections::BTreeSet<_>>().len();
    assert_eq!(step_lines, expected, "{err}");
    assert!(err.contains("run tiny (population-GD reference) (1/1): 400 steps"), "{err}");
    assert!(err.contains("tiny: computing the theory overlays and verdicts ("), "{err}");
    // At a rate of an hour, a short run writes no step line, only its runs and phases.
    let o = run("hourly", "3600");
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(!err.contains(": step "), "{err}");
    assert!(err.contains("run tiny (1/1): 400 steps"), "{err}");
    assert!(err.contains("tiny: drawing the figures ("), "{err}");
    // A rate that is not a number of seconds is refused before anything runs.
    let o = run("bad", "soon");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(
        stderr(&o).trim(),
        "error: MODEWISE_PROGRESS_SECS: must be a non-negative number of seconds (got \"soon\")"
    );
    assert!(!tmp.path().join("bad").exists());
}

/// `modewise report` on a directory of experiments (what the demo writes: one subdirectory per
/// experiment) redraws each experiment's figures and prints every experiment's verdicts; a
/// directory that holds none of what `report` reads is refused with one line, exit 2, naming
/// the path once and the rule.
#[test]
fn report_on_a_directory_of_experiments_redraws_each_and_refuses_anything_else() {
    let tmp = tempfile::tempdir().unwrap();
    // Two small experiments in one file run as one unit, as the demo does.
    let one = |name: &str| {
        SPEC.replace("name = \"tiny\"", &format!("[[experiment]]\nname = \"{name}\""))
            .replace("[train", "[experiment.train")
            .replace("[overlays]", "[experiment.overlays]")
            .replace("steps = 300", "steps = 100")
    };
    let file = tmp.path().join("pair.toml");
    std::fs::write(&file, format!("{}\n{}", one("first"), one("second"))).unwrap();
    let out = tmp.path().join("pair");
    let o = modewise(&["run", file.to_str().unwrap(), "--out", out.to_str().unwrap(), "--threads", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let experiments = ["first", "second"];
    for e in experiments {
        assert!(out.join(e).join("summary.parquet").is_file(), "{e}: {:?}", std::fs::read_dir(&out).unwrap().count());
        std::fs::remove_file(out.join(e).join("modes.svg")).unwrap();
    }
    let rep = modewise(&["report", out.to_str().unwrap()]);
    assert!(rep.status.success(), "{}", stderr(&rep));
    let stdout = String::from_utf8_lossy(&rep.stdout);
    for e in experiments {
        let modes = out.join(e).join("modes.svg");
        assert!(modes.is_file(), "{e}: modes.svg redrawn");
        assert!(std::fs::read_to_string(&modes).unwrap().contains(e), "{e}: its own runs");
        assert!(stdout.contains(e), "the verdicts of {e}: {stdout}");
        assert!(stderr(&rep).contains(&modes.display().to_string()), "{}", stderr(&rep));
    }
    // The verdict table holds both experiments' rows: as many as the run printed.
    let rows = |text: &str| text.lines().filter(|l| l.contains("t_learned")).count();
    assert_eq!(rows(&stdout), rows(&String::from_utf8_lossy(&o.stdout)));
    assert!(rows(&stdout) >= 2, "{stdout}");

    // Anything else: a directory of none of these, and a missing one.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join("notes.txt"), "not results").unwrap();
    for (dir, why) in [
        (empty.clone(), "it has no runs.parquet, no sweep.toml and no experiment's results directory"),
        (tmp.path().join("missing"), "no such directory"),
    ] {
        let bad = modewise(&["report", dir.to_str().unwrap()]);
        assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
        let err = stderr(&bad);
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.starts_with("error: DIR: must be a results directory written by `modewise run`"), "{err}");
        assert!(err.trim_end().ends_with(&format!("(got {}: {why})", dir.display())), "{err}");
        assert_eq!(err.matches(dir.to_str().unwrap()).count(), 1, "the path once: {err}");
        assert!(bad.stdout.is_empty());
    }
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 1, "nothing written");
}

/// `overlays.mean_departure` at depth 3: the three `mean_departure_*` overlays on every
/// gradient-flow time, `w` the flow's value, the SDE's minus the no-Itô curve equal to the theory
/// crate's Itô part (non-zero during the transient), and `ito.svg` drawn.
#[test]
fn mean_departure_overlays_carry_the_ito_part_and_draw_ito_svg() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_spec(tmp.path());
    let out = tmp.path().join("res");
    let o = modewise(&[
        "run",
        &spec,
        "--out",
        out.to_str().unwrap(),
        "--set",
        "overlays.mean_departure=true",
        "--set",
        "train.dims=[4, 6, 6, 4]",
        "--set",
        "train.init.a0=0.4",
        "--set",
        "train.data.sigma=0.5",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join("ito.svg").is_file(), "ito.svg missing");
    let theory = modewise_experiments::read_parquet(&out.join("theory.parquet")).unwrap();
    let col = |name: &str| -> Vec<Option<f64>> { theory.column(name).unwrap().f64().unwrap().iter().collect() };
    let overlay: Vec<String> =
        theory.column("overlay").unwrap().str().unwrap().iter().map(|v| v.unwrap().to_string()).collect();
    let k: Vec<u32> = theory.column("k").unwrap().u32().unwrap().into_no_null_iter().collect();
    let (t, w, value) = (col("t"), col("w"), col("value"));
    let rows = |name: &str, mode: u32| -> Vec<(f64, Option<f64>, f64)> {
        (0..overlay.len())
            .filter(|&i| overlay[i] == name && k[i] == mode)
            .map(|i| (t[i].unwrap(), w[i], value[i].unwrap()))
            .collect()
    };
    let mode = modewise_theory::ModeParams { depth: 3, s: 2.0, sigma: 0.5, lr: 0.05, batch: 8 }.check().unwrap();
    let gf = rows("gradient_flow", 0);
    let (sde, no_ito, chain) =
        (rows("mean_departure_sde", 0), rows("mean_departure_sde_no_ito", 0), rows("mean_departure_chain", 0));
    assert_eq!(sde.len(), gf.len());
    assert_eq!(no_ito.len(), gf.len());
    assert_eq!(chain.len(), gf.len());
    let grid = modewise_theory::TimeGrid::from_times(gf.iter().map(|r| r.0).collect()).unwrap();
    let want = mode.mean_departure(0.4f64.powi(3), &grid, 0.005).unwrap();
    let mut largest = 0.0f64;
    for i in 0..gf.len() {
        assert_eq!(sde[i].0, gf[i].0);
        // The flow integrated with the departures agrees with the closed-form one.
        let w_gf = sde[i].1.expect("w is the flow's value");
        assert!((w_gf - gf[i].2).abs() < 1e-6 * gf[i].2.max(1.0), "w_GF {w_gf} against {}", gf[i].2);
        let ito = sde[i].2 - no_ito[i].2;
        assert!((ito - want[i].ito).abs() < 1e-12, "Itô part {ito} against {}", want[i].ito);
        largest = largest.max(ito.abs());
    }
    assert!(largest > 1e-3, "the Itô part is visible at depth 3: {largest}");
}
