//! End-to-end reliability guarantees of the binary: bad input is refused with one line naming
//! the field and the rule, divergence is recorded and counted, interrupted sweeps resume to the
//! uninterrupted result, results are never overwritten silently, runs are bit-reproducible
//! across thread counts and invocations, and memory stays bounded over long runs.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{assert_same_results, command, files, modewise, stderr};
use modewise_experiments::read_parquet;

/// A small valid spec (seconds to run in a debug build).
const SPEC: &str = r#"
name = "rel"
[train]
dims = [3, 4, 3]
lr = 0.05
batch = 4
steps = 40
seeds = [1, 2]
backend = "flex"
n_probe = 64
[train.teacher.spectrum]
kind = "list"
s = [2.0, 1.0]
"#;

fn sweep_file(axes: &str) -> String {
    format!("{SPEC}[sweep]\n{axes}\n")
}

/// One bad input: the arguments (`FILE` stands for a file holding `file`, `OUT` for the output
/// directory), extra environment, and the start of the expected message after `error: `.
struct Bad {
    args: Vec<String>,
    file: String,
    env: Vec<(&'static str, &'static str)>,
    expect: &'static str,
}

fn run_set(set: &str, expect: &'static str) -> Bad {
    Bad {
        args: ["run", "FILE", "--out", "OUT", "--set", set].map(String::from).to_vec(),
        file: SPEC.into(),
        env: vec![],
        expect,
    }
}

fn cli(args: &[&str], file: &str, expect: &'static str) -> Bad {
    Bad { args: args.iter().map(|s| s.to_string()).collect(), file: file.into(), env: vec![], expect }
}

fn bad_inputs() -> Vec<Bad> {
    let sweep = |axes: &str, expect| cli(&["sweep", "FILE", "--out", "OUT"], &sweep_file(axes), expect);
    let lr_axis = r#""train.lr" = [0.01, 0.02]"#;
    let mut v = vec![
        // Network shape.
        run_set("train.dims=[3]", "train.dims: must list at least an input and an output width"),
        run_set("train.dims=[3, 0, 3]", "train.dims[1]: must be at least 1 (got 0)"),
        run_set("train.dims=[3, -4, 3]", "train.dims[1]: invalid value: integer `-4`, expected usize"),
        run_set("train.batch=0", "train.batch: must be at least 1 (got 0)"),
        run_set("train.batch=-2", "train.batch: invalid value: integer `-2`, expected usize"),
        run_set(
            r#"train.init={kind="aligned-balanced", a0=-1.0}"#,
            "train.init.a0[0]: must be finite and positive (got -1.0)",
        ),
        // Learning rate and noise.
        run_set("train.lr=0", "train.lr: must be finite and positive (got 0.0)"),
        run_set("train.lr=-0.1", "train.lr: must be finite and positive (got -0.1)"),
        run_set("train.lr=nan", "train.lr: must be finite and positive (got NaN)"),
        run_set("train.data.sigma=-1.0", "train.data.sigma: must be finite and non-negative (got -1.0)"),
        // Teacher.
        run_set(
            "train.teacher.spectrum.s=[1.0, 2.0]",
            "train.teacher.spectrum.s[1]: must not exceed the previous value",
        ),
        run_set("train.teacher.spectrum.s=[2.0, -1.0]", "train.teacher.spectrum.s[1]: must be finite and positive"),
        run_set("train.teacher.spectrum.s=[]", "train.teacher.spectrum.s: must hold at least one singular value"),
        run_set(
            "train.teacher.spectrum.s=[4.0, 3.0, 2.0, 1.0]",
            "train.teacher.spectrum.s: must not hold more values than min(d_0, d_L) = 3 (one per mode) (got 4)",
        ),
        run_set(
            r#"train.teacher.spectrum={kind="power-law", s_max=1.0, decay=-1.0, rank=2}"#,
            "train.teacher.spectrum.decay: must be finite and non-negative (got -1.0)",
        ),
        // Initialisation.
        run_set(
            r#"train.init={kind="gaussian", scale=0.0}"#,
            "train.init.scale: must be finite and positive (got 0.0)",
        ),
        run_set(r#"train.init={kind="gaussian", gamma=inf}"#, "train.init.gamma: must be finite (got inf)"),
        run_set(r#"train.init={kind="orthogonal"}"#, "train.init.kind: unknown variant `orthogonal`"),
        run_set(
            r#"train.init={kind="gaussian", gamma=1.5, scale=0.1}"#,
            "train.init: exactly one of `gamma` and `scale` must be given (got both)",
        ),
        run_set(
            r#"train.init={kind="unbalanced", a0=0.1}"#,
            "train.init: exactly one of `factors` and `ratio` must be given (got neither)",
        ),
        run_set(
            r#"train.init={kind="unbalanced", a0=0.1, factors=[2.0, 2.0]}"#,
            "train.init.factors: must multiply to 1",
        ),
        run_set(r#"train.init={kind="misaligned", a0=0.1, angle=nan}"#, "train.init.angle: must lie in [0, π/2]"),
        // Seeds, data, probes.
        run_set("train.seeds=[]", "train.seeds: must hold at least one seed (got [])"),
        run_set("train.seeds=[3, 3]", "train.seeds[1]: must be distinct"),
        run_set(
            r#"train.data.source={kind="fixed", n=2}"#,
            "train.data.source.n: must be at least the batch size 4 (got 2)",
        ),
        run_set("train.n_probe=1", "train.n_probe: must be 0 (exact diffusion) or at least 2 (samples) (got 1)"),
        run_set("train.check_every=0", "train.check_every: must be at least 1 (got 0)"),
        run_set("train.probes.per_decade=0", "train.probes.per_decade: must be finite and positive"),
        // Keys, types, names.
        run_set("train.nokey=1", "train.nokey: unknown field `nokey`"),
        run_set(r#"train.steps="ten""#, "train.steps: invalid type: string \"ten\", expected u64"),
        run_set(r#"train.backend="tpu""#, "train.backend: unknown variant `tpu`"),
        run_set(r#"name="a/b""#, "name: must be non-empty letters, digits, '-' or '_'"),
        run_set(r#"analysis="everything""#, "analysis: unknown variant `everything`"),
        run_set("overlays.sde_dt_over_lr=0", "overlays.sde_dt_over_lr: must be finite and positive"),
        run_set(r#"variants=[{label="a", set={lr=-1.0}}]"#, "variants[0] (a): train.lr: must be finite and positive"),
        run_set("noequals", "--set: must be KEY=VALUE (got `noequals`)"),
        // Command line.
        cli(&["run", "no-such-preset", "--out", "OUT"], SPEC, "preset: must be one of saddle, stationary"),
        cli(
            &["run", "FILE", "--out", "OUT", "--backend", "cuda"],
            SPEC,
            "--backend: must be one of ndarray, flex, wgpu",
        ),
        cli(&["run", "FILE", "--out", "OUT", "--threads", "0"], SPEC, "--threads: must be at least 1"),
        cli(&["run", "missing.toml", "--out", "OUT"], SPEC, "spec file: must exist and be readable"),
        cli(&["run", "FILE", "--out", "OUT", "--frobnicate"], SPEC, "unexpected argument '--frobnicate'"),
        cli(&["run", "FILE", "--out", "OUT"], "name = \"x\"\n[train\n", "spec line 2: malformed TOML"),
        cli(
            &["theory", "peak", "--depth", "0", "--s", "1", "--w0", "0.1"],
            SPEC,
            "--depth: must be at least 1 (got 0)",
        ),
        // Output directories.
        cli(&["run", "FILE", "--out", "BLOCKED/out"], SPEC, "--out: must be a writable directory"),
        cli(&["sweep", "FILE", "--out", "BLOCKED/out"], &sweep_file(lr_axis), "--out: must be a writable directory"),
        cli(&["run", "FILE", "--out", "BLOCKED"], SPEC, "--out: must be a directory, but"),
        // Sweeps.
        cli(&["sweep", "FILE", "--out", "OUT"], SPEC, "sweep: is missing: a sweep file needs a [sweep] table"),
        cli(&["sweep", "missing.toml", "--out", "OUT"], SPEC, "sweep file: must exist and be readable"),
        cli(&["sweep", "FILE", "--out", "OUT", "--shard", "2/2"], &sweep_file(lr_axis), "--shard: needs 0 ≤ I < N"),
        cli(&["sweep", "FILE", "--out", "OUT", "--shard", "x"], &sweep_file(lr_axis), "--shard: must be I/N (got `x`)"),
        cli(&["sweep", "FILE", "--out", "OUT", "--resume", "--force"], &sweep_file(lr_axis), "the argument '--resume'"),
        sweep(r#""train.lr" = []"#, "sweep.train.lr: must be a non-empty list of values (got [])"),
        sweep(r#""train.lr" = 0.1"#, "sweep.train.lr: must be a non-empty list of values (got 0.1)"),
        sweep(r#""train.lr" = [0.01, -0.02]"#, "sweep point 1 (lr=-0.02): train.lr: must be finite and positive"),
        sweep(r#""train.lrr" = [0.1]"#, "sweep point 0 (lrr=0.1): train.lrr: unknown field `lrr`"),
    ];
    let mut slurm =
        cli(&["sweep", "FILE", "--out", "OUT"], &sweep_file(lr_axis), "--shard: needs 0 ≤ I < N and N ≥ 1 (got 3/2)");
    slurm.env = vec![("SLURM_ARRAY_TASK_ID", "3"), ("SLURM_ARRAY_TASK_COUNT", "2")];
    v.push(slurm);
    v
}

#[test]
fn bad_inputs_are_refused_with_one_line_naming_the_field_and_nothing_is_written() {
    let cases = bad_inputs();
    assert!(cases.len() >= 30, "at least 30 distinct bad inputs ({})", cases.len());
    let mut inputs: Vec<String> = cases.iter().map(|c| format!("{:?} {:?} {:?}", c.args, c.file, c.env)).collect();
    inputs.sort();
    inputs.dedup();
    assert_eq!(inputs.len(), cases.len(), "every case is a distinct input");
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("spec.toml");
        std::fs::write(&file, &case.file).unwrap();
        let blocked = tmp.path().join("blocked");
        std::fs::write(&blocked, "a file where a directory is expected").unwrap();
        let out = tmp.path().join("out");
        let args: Vec<String> = case
            .args
            .iter()
            .map(|a| {
                a.replace("FILE", file.to_str().unwrap())
                    .replace("BLOCKED", blocked.to_str().unwrap())
                    .replace("OUT", out.to_str().unwrap())
            })
            .collect();
        let mut c = command(&args.iter().map(String::as_str).collect::<Vec<_>>());
        c.current_dir(tmp.path());
        for (k, v) in &case.env {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        let err = stderr(&o);
        let line = err.strip_suffix('\n').unwrap_or(&err);
        let mut left: Vec<_> = files(tmp.path());
        left.retain(|f| f != Path::new("spec.toml") && f != Path::new("blocked"));
        let ok = o.status.code() == Some(2)
            && !line.contains('\n')
            && line.starts_with("error: ")
            && line.contains(case.expect)
            && o.stdout.is_empty()
            && left.is_empty()
            && std::fs::read_to_string(&blocked).unwrap() == "a file where a directory is expected";
        if !ok {
            failures.push(format!(
                "case {i} {:?}: status {:?}, stderr {err:?}, expected {:?}, left behind {left:?}",
                case.args, o.status, case.expect
            ));
        }
    }
    assert!(failures.is_empty(), "{} bad inputs misbehaved:\n{}", failures.len(), failures.join("\n"));
}

fn column_strings(df: &polars::prelude::DataFrame, name: &str) -> Vec<String> {
    df.column(name).unwrap().str().unwrap().iter().map(|s| s.unwrap_or("").to_string()).collect()
}

#[test]
fn diverged_members_are_recorded_and_counted_while_the_rest_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    // η = 0.05 trains; at η = 0.42 half of these eight Gaussian starts blow up; η = 50 blows
    // every member up. The sweep must go on past both.
    let text = format!(
        "{}[sweep]\n\"train.lr\" = [0.05, 0.42, 50.0]\n",
        SPEC.replace("steps = 40", "steps = 200")
            .replace("seeds = [1, 2]", "seeds = [1, 2, 3, 4, 5, 6, 7, 8]\ninit = { kind = \"gaussian\", scale = 0.5 }")
    );
    let file = tmp.path().join("div.toml");
    std::fs::write(&file, text).unwrap();
    let out = tmp.path().join("res");
    let o = modewise(&["sweep", file.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "exit status 3 says that members diverged: {}", stderr(&o));
    let mut status = Vec::new();
    for i in 0..3 {
        let runs = read_parquet(&out.join(format!("runs/run_index={i}/part.parquet"))).unwrap();
        let st = column_strings(&runs, "status");
        let at: Vec<Option<u64>> = runs.column("diverged_at").unwrap().u64().unwrap().iter().collect();
        for (s, a) in st.iter().zip(&at) {
            assert_eq!(s == "diverged", a.is_some(), "a diverged member has its step, and only it");
            assert!(a.is_none_or(|step| (1..=200).contains(&step)), "step within the run: {a:?}");
        }
        // A diverged member's trajectory stops at its divergence; the others reach the end.
        let traj = read_parquet(&out.join(format!("trajectories/run_index={i}/part.parquet"))).unwrap();
        let members: Vec<u32> = traj.column("member").unwrap().u32().unwrap().into_no_null_iter().collect();
        let steps: Vec<u64> = traj.column("step").unwrap().u64().unwrap().into_no_null_iter().collect();
        for (m, a) in at.iter().enumerate() {
            let last = members.iter().zip(&steps).filter(|(mm, _)| **mm == m as u32).map(|(_, s)| *s).max();
            match a {
                None => assert_eq!(last, Some(200), "run {i} member {m} reaches the last step"),
                Some(step) => assert!(last.is_none_or(|l| l < *step), "run {i} member {m}: {last:?} ≥ {step}"),
            }
            for (mm, v) in members.iter().zip(traj.column("m_k").unwrap().f64().unwrap().into_no_null_iter()) {
                if *mm == m as u32 {
                    assert!(v.is_finite(), "no NaN or infinity is written");
                }
            }
        }
        status.push(st.iter().filter(|s| *s == "diverged").count());
    }
    assert_eq!(status[0], 0);
    assert!(status[1] > 0 && status[1] < 8, "some members of run 1 diverge, not all: {}", status[1]);
    assert_eq!(status[2], 8);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let total = status.iter().sum::<usize>();
    assert!(stdout.contains(&format!("{total} of 24 members diverged")), "{stdout}");
    assert_eq!(stdout.lines().filter(|l| l.starts_with("rel-")).count(), total, "one table row per diverged member");
}

/// A sweep of five runs taking a second or so each in a debug build.
fn slow_sweep(dir: &Path) -> std::path::PathBuf {
    let file = dir.join("slow.toml");
    let text = sweep_file(r#""train.lr" = [0.01, 0.02, 0.03, 0.04, 0.05]"#).replace("steps = 40", "steps = 6000");
    std::fs::write(&file, text).unwrap();
    file
}

fn wait_for(path: &Path, child: &mut std::process::Child) {
    let start = Instant::now();
    while !path.exists() {
        assert!(child.try_wait().unwrap().is_none(), "the sweep ended before {}", path.display());
        assert!(start.elapsed() < Duration::from_secs(300), "timed out waiting for {}", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Writes the slow sweep's file and runs it uninterrupted into `reference`.
fn reference_sweep(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let file = slow_sweep(dir);
    let reference = dir.join("reference");
    let o = modewise(&["sweep", file.to_str().unwrap(), "--out", reference.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    (file, reference)
}

/// Starts the sweep of `file` into `out` in the background (standard error captured).
fn start_sweep(file: &str, out: &Path) -> std::process::Child {
    command(&["sweep", file, "--out", out.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn summary_part(out: &Path, i: usize) -> std::path::PathBuf {
    out.join(format!("summary/run_index={i}/part.parquet"))
}

#[test]
fn a_killed_sweep_resumes_to_exactly_the_uninterrupted_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let (file, reference) = reference_sweep(tmp.path());
    let (file, out) = (file.to_str().unwrap(), tmp.path().join("killed"));
    let mut child = start_sweep(file, &out);
    wait_for(&summary_part(&out, 1), &mut child);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(!summary_part(&out, 4).exists(), "killed mid-sweep");
    // What a kill while writing run 3 leaves: some of its parts and a temporary file.
    for table in ["runs", "trajectories"] {
        let dir = out.join(table).join("run_index=3");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(reference.join(table).join("run_index=0/part.parquet"), dir.join("part.parquet")).unwrap();
    }
    std::fs::write(out.join("theory/run_index=3/.part.parquet.tmp-999999").tap_parent(), b"PAR1 half").unwrap();

    let again = modewise(&["sweep", file, "--out", out.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2), "an existing sweep needs --resume");
    assert!(stderr(&again).contains("pass --resume to continue the sweep or --force to redo it"));
    let resumed = modewise(&["sweep", file, "--out", out.to_str().unwrap(), "--resume"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let stdout = String::from_utf8_lossy(&resumed.stdout);
    assert!(stdout.contains("skipped as complete"), "{stdout}");
    assert_same_results(&reference, &out);
    // Read back as one dataset: one row per member and run, no duplicates.
    let ids: Vec<String> = (0..5)
        .flat_map(|i| {
            column_strings(&read_parquet(&out.join(format!("runs/run_index={i}/part.parquet"))).unwrap(), "run_id")
        })
        .collect();
    assert_eq!(ids, ["rel-0", "rel-0", "rel-1", "rel-1", "rel-2", "rel-2", "rel-3", "rel-3", "rel-4", "rel-4"]);
}

/// Creates the parent directory of a path and returns the path.
trait TapParent {
    fn tap_parent(self) -> Self;
}

impl TapParent for std::path::PathBuf {
    fn tap_parent(self) -> Self {
        std::fs::create_dir_all(self.parent().unwrap()).unwrap();
        self
    }
}

/// Sends SIGINT, as Ctrl-C in a terminal does.
fn interrupt(child: &std::process::Child) {
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on a child we own and have not yet waited for.
    let rc = unsafe { libc::kill(pid, libc::SIGINT) };
    assert_eq!(rc, 0, "kill(SIGINT)");
}

#[test]
fn ctrl_c_discards_the_current_run_cleanly_and_resume_finishes_the_sweep() {
    let tmp = tempfile::tempdir().unwrap();
    let (file, reference) = reference_sweep(tmp.path());
    let (file, out) = (file.to_str().unwrap(), tmp.path().join("interrupted"));
    let mut child = start_sweep(file, &out);
    wait_for(&summary_part(&out, 0), &mut child);
    interrupt(&child);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    let err = stderr(&o);
    let last = err.lines().last().unwrap();
    assert!(last.starts_with("error: interrupted: ") && last.contains("rerun with --resume"), "{err}");
    // Every run present is complete: no partial parts, no temporary files.
    let complete: Vec<usize> = (0..5).filter(|&i| summary_part(&out, i).exists()).collect();
    assert!(!complete.is_empty() && complete.len() < 5, "interrupted mid-sweep: {complete:?}");
    for f in files(&out) {
        let name = f.to_string_lossy().into_owned();
        assert!(name.ends_with("part.parquet"), "stray file {name}");
        let i: usize = name.split("run_index=").nth(1).unwrap().split('/').next().unwrap().parse().unwrap();
        assert!(complete.contains(&i), "part of an incomplete run: {name}");
    }
    let resumed = modewise(&["sweep", file, "--out", out.to_str().unwrap(), "--resume"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert_same_results(&reference, &out);
}

#[test]
fn ctrl_c_during_a_run_leaves_no_results_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("slow.toml");
    std::fs::write(&file, SPEC.replace("steps = 40", "steps = 400000")).unwrap();
    let out = tmp.path().join("res");
    let child = command(&["run", file.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The staging directory appears before training starts.
    let start = Instant::now();
    while std::fs::read_dir(tmp.path()).unwrap().count() < 2 {
        assert!(start.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    interrupt(&child);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(stderr(&o).contains("nothing was written to"), "{}", stderr(&o));
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["slow.toml"], "no results and no staging directory");
}

#[test]
fn existing_results_are_never_overwritten_silently() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("spec.toml");
    std::fs::write(&file, SPEC).unwrap();
    let (file, out) = (file.to_str().unwrap(), tmp.path().join("res"));
    let out_s = out.to_str().unwrap();
    assert!(modewise(&["run", file, "--out", out_s]).status.success());
    let before = std::fs::read(out.join("runs.parquet")).unwrap();
    // A different run into the same directory is refused and changes nothing.
    let o = modewise(&["run", file, "--out", out_s, "--set", "train.lr=0.02"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains(&format!("--out: {out_s} already holds results; pass --force to replace them")));
    assert_eq!(std::fs::read(out.join("runs.parquet")).unwrap(), before);
    // A foreign file in the directory counts as results too.
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "mine").unwrap();
    let o = modewise(&["run", file, "--out", other.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(other.join("notes.txt")).unwrap(), "mine");
    // With --force the directory is replaced as a whole.
    let o = modewise(&["run", file, "--out", out_s, "--set", "train.lr=0.02", "--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let runs = read_parquet(&out.join("runs.parquet")).unwrap();
    assert_eq!(runs.column("lr").unwrap().f64().unwrap().get(0), Some(0.02));
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left.len(), 3, "no staging directory is left: {left:?}");

    // Sweeps: refused without --resume or --force; --force redoes the shard's runs.
    let sweep = tmp.path().join("sweep.toml");
    std::fs::write(&sweep, sweep_file(r#""train.lr" = [0.01, 0.02]"#)).unwrap();
    let sdir = tmp.path().join("sweep");
    let args = ["sweep", sweep.to_str().unwrap(), "--out", sdir.to_str().unwrap()];
    assert!(modewise(&args).status.success());
    let o = modewise(&args);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("already holds results of run 0; pass --resume"), "{}", stderr(&o));
    let reference = tmp.path().join("sweep-ref");
    std::fs::rename(&sdir, &reference).unwrap();
    assert!(modewise(&args).status.success());
    let o = modewise(&[&args[..], &["--force", "--set", "train.steps=41"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let steps = read_parquet(&sdir.join("runs/run_index=1/part.parquet")).unwrap();
    assert_eq!(steps.column("steps").unwrap().u64().unwrap().get(0), Some(41), "--force redid the runs");
}

#[test]
fn results_are_bit_identical_across_thread_counts_and_invocations() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("spec.toml");
    // Probes, SDE and chain overlays (which run on the thread pool) and verdicts, on both CPU
    // backends: flex with the default (fused) path, ndarray with burn's tensors.
    let spec = SPEC
        .replace("steps = 40", "steps = 300")
        .replace("name = \"rel\"", "name = \"rel\"\nanalysis = \"relax\"")
        + "[overlays]\ngradient_flow = true\nsde_paths = 300\nchain_paths = 300\nstationary = true\n\
           [[variants]]\nlabel = \"flex\"\nset = { backend = \"flex\", \"data.sigma\" = 0.3 }\n\
           [[variants]]\nlabel = \"ndarray\"\nset = { backend = \"ndarray\", gradient = \"closed-form\", \"data.sigma\" = 0.3 }\n";
    std::fs::write(&file, spec).unwrap();
    let file = file.to_str().unwrap();
    let run = |name: &str, threads: &str| {
        let out = tmp.path().join(name);
        let o = modewise(&["run", file, "--out", out.to_str().unwrap(), "--threads", threads]);
        assert!(o.status.success(), "{}", stderr(&o));
        out
    };
    let one = run("one", "1");
    let two = run("two", "2");
    let again = run("again", "2");
    let svg = |d: &Path| files(d).into_iter().filter(|f| f.extension().is_some_and(|e| e == "svg")).count();
    assert!(svg(&one) > 0);
    assert_same_results(&one, &two);
    assert_same_results(&two, &again);
}

/// Peak memory printed by the binary (`peak memory: X MiB` on stderr).
fn peak_mib(o: &std::process::Output) -> f64 {
    let err = stderr(o);
    let line = err.lines().find_map(|l| l.strip_prefix("peak memory: ")).unwrap_or_else(|| panic!("{err}"));
    line.trim_end_matches(" MiB").parse().unwrap()
}

#[test]
fn memory_stays_bounded_over_a_million_steps() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("long.toml");
    let spec = SPEC
        .replace("dims = [3, 4, 3]", "dims = [2, 2, 2]")
        .replace("batch = 4", "batch = 1")
        .replace("seeds = [1, 2]", "seeds = [1]")
        .replace("n_probe = 64", "n_probe = 16\ncheck_every = 1000")
        .replace("s = [2.0, 1.0]", "s = [1.0]")
        .replace("lr = 0.05", "lr = 0.01");
    std::fs::write(&file, spec).unwrap();
    let run = |steps: u64| {
        let out = tmp.path().join(format!("s{steps}"));
        let o = modewise(&[
            "run",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--set",
            &format!("train.steps={steps}"),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let rows = read_parquet(&out.join("trajectories.parquet")).unwrap().height();
        (peak_mib(&o), rows)
    };
    let (short_peak, short_rows) = run(10_000);
    let (long_peak, long_rows) = run(1_000_000);
    eprintln!("peak memory: {short_peak:.1} MiB after 1e4 steps, {long_peak:.1} MiB after 1e6 steps");
    // Probes are log-spaced (10 per decade): two more decades add about 20 rows, not 10⁶.
    assert!(long_rows <= short_rows + 25, "{short_rows} → {long_rows} trajectory rows");
    assert!(long_peak - short_peak < 8.0, "peak memory grew from {short_peak:.1} to {long_peak:.1} MiB");
}
