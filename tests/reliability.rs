//! End-to-end reliability guarantees of the binary: bad input is refused with one line naming
//! the field and the rule, divergence is recorded and counted, interrupted sweeps resume to the
//! uninterrupted result, results are never overwritten silently, runs are bit-reproducible
//! across thread counts and invocations, and memory stays bounded over long runs.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{
    Running, assert_same_results, command, entries, files, modewise, non_finite, output_within, stderr,
    try_output_within,
};
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
        run_set("train.n_clones=1", "train.n_clones: must be 0 (no clones) or at least 2 (clones per probe) (got 1)"),
        run_set("train.check_every=0", "train.check_every: must be at least 1 (got 0)"),
        run_set(
            "train.checkpoint_every=150",
            "train.checkpoint_every: must be 0 (no checkpoints) or a multiple of check_every (100)",
        ),
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
        // Keys beside a data source's kind are refused for every kind.
        run_set(r#"train.data.source={kind="online", n=5}"#, "train.data.source: unknown field `n`"),
        run_set(r#"train.data.source={kind="population", foo=1}"#, "train.data.source: unknown field `foo`"),
        // What a run would need is refused up front, naming the field.
        run_set("train.dims=[1000000, 1000000]", "train.dims: the run would need about"),
        run_set("train.batch=1000000000000", "train.batch: the run would need about"),
        run_set("train.n_probe=1000000000000", "train.n_probe: the run would need about"),
        run_set("train.n_clones=1000000000000", "train.n_clones: the run would need about"),
        run_set(
            r#"train.data.source={kind="fixed", n=1000000000000}"#,
            "train.data.source.n: the run would need about",
        ),
        run_set("overlays.sde_paths=1000000000000", "overlays.sde_paths: the run would need about"),
        run_set("overlays.chain_paths=1000000000000", "overlays.chain_paths: the run would need about"),
        run_set(
            r#"train.teacher.spectrum={kind="power-law", s_max=1.0, decay=1.0, rank=1000000000000}"#,
            "train.teacher.spectrum.rank: must not exceed min(d_0, d_L) = 3",
        ),
        run_set("train.probes.per_decade=1e9", "train.probes.per_decade: must be at most 1000"),
        // Command line.
        cli(&["run", "no-such-preset", "--out", "OUT"], SPEC, "preset: must be one of saddle, stationary"),
        cli(
            &["run", "FILE", "--out", "OUT", "--backend", "tpu"],
            SPEC,
            "--backend: must be one of ndarray, flex, wgpu, cuda",
        ),
        cli(
            &["run", "FILE", "--out", "OUT", "--backend", if cfg!(feature = "cuda") { "tpu" } else { "cuda" }],
            SPEC,
            if cfg!(feature = "cuda") {
                "--backend: must be one of"
            } else {
                "--backend: this modewise was built without the cuda backend: rebuild it with `cargo build --release --features cuda` (got cuda)"
            },
        ),
        cli(&["run", "FILE", "--out", "OUT", "--threads", "0"], SPEC, "--threads: must be at least 1"),
        cli(&["run", "FILE", "--out", "OUT", "--threads", "100000"], SPEC, "--threads: must be at most 4 per core"),
        cli(&["bench", "--workload", "w1", "--seconds", "1e300"], SPEC, "--seconds: must be at most 3600"),
        cli(
            &["report", "OUT"],
            SPEC,
            "DIR: must be a results directory written by `modewise run` (one experiment's tables, or",
        ),
        cli(
            &["report", "BLOCKED"],
            SPEC,
            "DIR: must be a results directory written by `modewise run` (one experiment's tables, or",
        ),
        cli(
            &["run", "FILE", "--out", "OUT"],
            "name = \"x\"\nname = \"y\"\n",
            "spec line 2: malformed TOML: duplicate key",
        ),
        cli(
            &["run", "FILE", "--out", "OUT", "--set", "analysis=\"sde-vs-sgd\"", "--set", "train.steps=0"],
            SPEC,
            "train.steps: must be at least 1 with analysis = \"sde-vs-sgd\"",
        ),
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
        cli(&["run", "FILE", "--out", "DANGLING"], SPEC, "is a symbolic link to"),
        cli(&["sweep", "FILE", "--out", "DANGLING"], &sweep_file(lr_axis), "is a symbolic link to"),
        cli(&["run", "FILE", "--out", "/", "--force"], SPEC, "--out: must name a directory below its parent"),
        cli(&["run", "FILE", "--out", "OUT/.."], SPEC, "--out: must name a directory below its parent"),
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
        sweep("\"train.lr\" = [0.01]\n[sweep.train]\nlr = [0.02]", "sweep.train.lr: is given twice"),
        sweep("", "sweep: is empty"),
        // A sweep resumes run by run: checkpoints are for `run`.
        sweep(
            r#""train.checkpoint_every" = [0, 100]"#,
            "sweep point 1 (checkpoint_every=100): train.checkpoint_every: must be 0 in a sweep",
        ),
        sweep(
            r#""train.dims" = [[3, 4, 3], [1000000, 1000000]]"#,
            "sweep point 1 (dims=[1000000, 1000000]): train.dims: the run would need",
        ),
    ];
    let slurm = |env: Vec<(&'static str, &'static str)>, expect| Bad {
        env,
        ..cli(&["sweep", "FILE", "--out", "OUT"], &sweep_file(lr_axis), expect)
    };
    v.push(slurm(
        vec![("SLURM_ARRAY_TASK_ID", "3"), ("SLURM_ARRAY_TASK_COUNT", "2")],
        "--shard: needs 0 ≤ I < N and N ≥ 1 (got 3/2) from SLURM_ARRAY_TASK_ID=3, SLURM_ARRAY_TASK_COUNT=2",
    ));
    v.push(slurm(
        vec![("SLURM_ARRAY_TASK_ID", "1")],
        "--shard: SLURM_ARRAY_TASK_ID = 1 is set without SLURM_ARRAY_TASK_COUNT or SLURM_ARRAY_TASK_MIN and SLURM_ARRAY_TASK_MAX",
    ));
    v.push(slurm(
        vec![
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_MAX", "8"),
            ("SLURM_ARRAY_TASK_COUNT", "5"),
        ],
        "--shard: SLURM_ARRAY_TASK_COUNT = 5 is not SLURM_ARRAY_TASK_MAX − SLURM_ARRAY_TASK_MIN + 1 = 9",
    ));
    v
}

#[test]
fn bad_inputs_are_refused_with_one_line_naming_the_field_and_nothing_is_written() {
    let cases = bad_inputs();
    assert!(cases.len() >= 80, "at least 80 distinct bad inputs ({})", cases.len());
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
        let dangling = tmp.path().join("dangling");
        std::os::unix::fs::symlink(tmp.path().join("nowhere"), &dangling).unwrap();
        // Below a directory that does not exist yet: a refusal must not leave it behind.
        let out = tmp.path().join("new").join("out");
        let args: Vec<String> = case
            .args
            .iter()
            .map(|a| {
                a.replace("FILE", file.to_str().unwrap())
                    .replace("BLOCKED", blocked.to_str().unwrap())
                    .replace("DANGLING", dangling.to_str().unwrap())
                    .replace("OUT", out.to_str().unwrap())
            })
            .collect();
        let mut c = command(&args.iter().map(String::as_str).collect::<Vec<_>>());
        c.current_dir(tmp.path());
        for (k, v) in &case.env {
            c.env(k, v);
        }
        let o = match try_output_within(&mut c) {
            Ok(o) => o,
            Err(hung) => {
                failures.push(format!("case {i} {:?}: {hung}", case.args));
                continue;
            }
        };
        let err = stderr(&o);
        let line = err.strip_suffix('\n').unwrap_or(&err);
        let mut left: Vec<_> = entries(tmp.path());
        left.retain(|f| !["spec.toml", "blocked", "dangling"].iter().any(|kept| f == Path::new(kept)));
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
        std::fs::copy(reference.join(table).join("run_index=3/part.parquet"), dir.join("part.parquet")).unwrap();
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
    assert!(out.join("sweep.toml").is_file(), "the sweep's manifest");
    for f in files(&out).into_iter().filter(|f| f != Path::new("sweep.toml")) {
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

    // Sweeps: refused without --resume or --force; --force redoes the shard's runs (of the same
    // sweep: another sweep's directory is refused whatever the flags).
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
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("holds the results of another sweep (train.steps is 40 there and 41 here)"));
    std::fs::write(sdir.join("runs/run_index=1/part.parquet"), b"not what the run wrote").unwrap();
    let o = modewise(&[&args[..], &["--force"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("2 runs done, 0 skipped"));
    let steps = read_parquet(&sdir.join("runs/run_index=1/part.parquet")).unwrap();
    assert_eq!(steps.column("steps").unwrap().u64().unwrap().get(0), Some(40), "--force redid the runs");
    assert_same_results(&reference, &sdir);
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

// ---------------------------------------------------------------------------------------------
// Unattended cluster runs (issue 16): no hangs, no NaN written, resume that refuses a changed
// sweep, atomic publish with a lock, sweep manifests, limits refused up front, signals.

/// The divergence spec of these tests: eight Gaussian starts, 200 steps.
fn divergence_spec(dir: &Path) -> std::path::PathBuf {
    let file = dir.join("div.toml");
    let text = SPEC
        .replace("steps = 40", "steps = 200")
        .replace("seeds = [1, 2]", "seeds = [1, 2, 3, 4, 5, 6, 7, 8]\ninit = { kind = \"gaussian\", scale = 0.5 }");
    std::fs::write(&file, text).unwrap();
    file
}

/// Writes SPEC with `replace` applied into `dir/name` and returns the path as text.
fn spec_file(dir: &Path, name: &str, replace: &[(&str, &str)]) -> String {
    let text = replace.iter().fold(SPEC.to_string(), |t, (a, b)| t.replace(a, b));
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    file.to_str().unwrap().to_string()
}

/// Issue 16, item 1: every member diverges at η = 0.7 and the SDE overlay's variance spans
/// 10⁻⁵⁴ to beyond 10³⁰⁸, which used to send plotters' tick search on the variance figure's log
/// axis into an endless loop (in `run` and in `report`).
#[test]
fn a_run_whose_theory_overflows_still_draws_its_figures_and_report_redraws_them() {
    let tmp = tempfile::tempdir().unwrap();
    let file = divergence_spec(tmp.path());
    let out = tmp.path().join("res");
    let o = output_within(&mut command(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--set",
        "train.lr=0.7",
        "--set",
        "overlays.sde_paths=1000",
    ]));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    for figure in ["modes.svg", "variance.svg", "alignment.svg"] {
        assert!(out.join(figure).is_file(), "{figure}: {}", stderr(&o));
    }
    assert_eq!(non_finite(&out), Vec::<String>::new(), "no table holds NaN or infinity");
    std::fs::remove_file(out.join("variance.svg")).unwrap();
    let o = output_within(&mut command(&["report", out.to_str().unwrap()]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("variance.svg"), "{}", stderr(&o));
    assert!(out.join("variance.svg").is_file());
}

/// Issue 16, item 2: the f64 probes of deep networks overflow before their f32 weights do;
/// whatever diverges, no float column of any table holds NaN or ±infinity (the theory table
/// included, when every member diverged and the ensembles overflow).
#[test]
fn no_table_holds_nan_or_infinity() {
    let tmp = tempfile::tempdir().unwrap();
    let file = divergence_spec(tmp.path());
    let cases: [&[&str]; 3] = [
        &["--set", "train.dims=[3, 4, 4, 4, 3]", "--set", "train.lr=0.2"],
        &["--set", "train.dims=[3, 4, 4, 4, 4, 4, 3]", "--set", r#"train.init={kind="gaussian", scale=1e15}"#],
        &["--set", "train.lr=0.7", "--set", "overlays.sde_paths=1000", "--set", "overlays.chain_paths=300"],
    ];
    for (i, extra) in cases.iter().enumerate() {
        let out = tmp.path().join(format!("case{i}"));
        let args = [&["run", file.to_str().unwrap(), "--out", out.to_str().unwrap()], *extra].concat();
        let o = output_within(&mut command(&args));
        assert_eq!(o.status.code(), Some(3), "{extra:?}: members diverge: {}", stderr(&o));
        assert_eq!(non_finite(&out), Vec::<String>::new(), "{extra:?}");
    }
}

/// Issue 16, item 3: `--resume` refuses a directory whose runs come from another sweep (an
/// edited list, another `--set`), naming the first difference; a run with any part missing is
/// redone.
#[test]
fn resume_refuses_another_sweep_and_redoes_a_run_with_a_part_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("sweep.toml");
    std::fs::write(&file, sweep_file(r#""train.lr" = [0.005, 0.01]"#)).unwrap();
    let (file_s, out) = (file.to_str().unwrap(), tmp.path().join("res"));
    let out_s = out.to_str().unwrap();
    let o = modewise(&["sweep", file_s, "--out", out_s]);
    assert!(o.status.success(), "{}", stderr(&o));
    let reference = tmp.path().join("reference");
    copy_dir(&out, &reference);
    let before = entries(&out);
    // Another list, or another --set: refused, naming the first difference, nothing touched.
    std::fs::write(&file, sweep_file(r#""train.lr" = [0.01, 0.02]"#)).unwrap();
    let o = modewise(&["sweep", file_s, "--out", out_s, "--resume"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "holds the results of another sweep (sweep.train.lr is [0.005, 0.01] there and [0.01, 0.02] here)"
        ),
        "{}",
        stderr(&o)
    );
    std::fs::write(&file, sweep_file(r#""train.lr" = [0.005, 0.01]"#)).unwrap();
    let o = modewise(&["sweep", file_s, "--out", out_s, "--resume", "--set", "train.steps=10"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("train.steps is 40 there and 10 here"), "{}", stderr(&o));
    // A directory without a manifest (as older versions wrote): each part's stored spec is
    // compared with the run this sweep expands to at its index.
    std::fs::remove_file(out.join("sweep.toml")).unwrap();
    let o = modewise(&["sweep", file_s, "--out", out_s, "--resume", "--set", "train.steps=10"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.starts_with("error: --resume: run 0 (") && err.contains("train.steps is 40 there and 10 here"),
        "{err}"
    );
    assert_eq!(entries(&out), before.into_iter().filter(|e| e != Path::new("sweep.toml")).collect::<Vec<_>>());
    // A run with its summary but without its runs part is incomplete: redone, to the same rows.
    std::fs::remove_file(out.join("runs/run_index=1/part.parquet")).unwrap();
    let o = modewise(&["sweep", file_s, "--out", out_s, "--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("1 runs done, 1 skipped as complete"));
    assert_same_results(&reference, &out);
}

/// Copies a directory tree.
fn copy_dir(from: &Path, to: &Path) {
    for f in files(from) {
        std::fs::create_dir_all(to.join(&f).parent().unwrap()).unwrap();
        std::fs::copy(from.join(&f), to.join(&f)).unwrap();
    }
}

/// Issue 16, item 4: a second `run` into a destination being written is refused; a publish
/// killed midway leaves the old results, which the next run restores rather than deletes; a
/// symbolic link is followed; a long name works.
#[test]
fn concurrent_runs_are_refused_and_killed_publishes_keep_the_old_results() {
    let tmp = tempfile::tempdir().unwrap();
    let slow = spec_file(tmp.path(), "slow.toml", &[("steps = 40", "steps = 400000")]);
    let quick = spec_file(tmp.path(), "quick.toml", &[]);
    let out = tmp.path().join("res");
    let out_s = out.to_str().unwrap();
    let mut first = Running::start(&mut command(&["run", &slow, "--out", out_s]));
    first.wait_for_line("run rel (1/1)");
    let o = modewise(&["run", &quick, "--out", out_s]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let pid = first.child.id();
    assert!(
        stderr(&o).contains(&format!("--out: {out_s} is being written by another modewise process (pid {pid})")),
        "{}",
        stderr(&o)
    );
    first.signal(libc::SIGINT);
    let (status, err, _) = first.finish();
    assert_eq!(status.code(), Some(130), "{err}");
    assert_eq!(entries(tmp.path()), [Path::new("quick.toml"), Path::new("slow.toml")], "no results, no lock");

    // What a publish killed between moving the old results aside and the new ones in left:
    // no destination, the old results aside, a staging directory. The next run restores the old
    // results (and, without --force, refuses to replace them).
    let o = modewise(&["run", &quick, "--out", out_s]);
    assert!(o.status.success(), "{}", stderr(&o));
    let old = tmp.path().join(".res.staging-4000000-old");
    std::fs::rename(&out, &old).unwrap();
    std::fs::create_dir(tmp.path().join(".res.staging-4000000")).unwrap();
    let o = modewise(&["run", &quick, "--out", out_s, "--set", "train.lr=0.02"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("already holds results"), "{}", stderr(&o));
    let runs = read_parquet(&out.join("runs.parquet")).unwrap();
    assert_eq!(runs.column("lr").unwrap().f64().unwrap().get(0), Some(0.05), "the old results are back");
    let o = modewise(&["run", &quick, "--out", out_s, "--set", "train.lr=0.02", "--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let runs = read_parquet(&out.join("runs.parquet")).unwrap();
    assert_eq!(runs.column("lr").unwrap().f64().unwrap().get(0), Some(0.02));
    let names: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 3, "nothing beside the results: {names:?}");

    // A symbolic link is followed, and stays a link.
    let real = tmp.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    for force in [false, true] {
        let mut args = vec!["run", &quick, "--out", link.to_str().unwrap()];
        if force {
            args.push("--force");
        }
        let o = modewise(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(link.is_symlink() && real.join("runs.parquet").is_file());
    }
    // A name of 250 bytes (its staging directory's name would exceed 255).
    let long = tmp.path().join("x".repeat(250));
    let o = modewise(&["run", &quick, "--out", long.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(long.join("runs.parquet").is_file());
}

/// Issue 16, item 4: the demo is published as one unit: interrupted in its second experiment,
/// `run demo --force` leaves all four old experiments.
#[test]
fn an_interrupted_forced_demo_leaves_all_of_the_old_one() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("demo");
    let out_s = out.to_str().unwrap();
    // Each experiment's base run only, small: about a second in all (debug build); the forced
    // run takes some seconds from its second experiment on, while the test interrupts it.
    let small = |steps| {
        ["--set", steps, "--set", "variants=[]", "--set", "overlays.sde_paths=8", "--set", "overlays.chain_paths=8"]
    };
    let o = output_within(&mut command(&[&["run", "demo", "--out", out_s], &small("train.steps=20")[..]].concat()));
    assert!(matches!(o.status.code(), Some(0 | 3)), "{}", stderr(&o));
    let before: Vec<_> = files(&out).into_iter().map(|f| (f.clone(), std::fs::read(out.join(&f)).unwrap())).collect();
    assert!(before.iter().filter(|(f, _)| f.ends_with("runs.parquet")).count() == 4);
    let forced_args = [&["run", "demo", "--out", out_s, "--force"], &small("train.steps=1000")[..]].concat();
    let mut forced = Running::start(&mut command(&forced_args));
    forced.wait_for_line("run demo-stationary");
    forced.signal(libc::SIGINT);
    let (status, err, _) = forced.finish();
    assert_eq!(status.code(), Some(130), "{err}");
    let after: Vec<_> = files(&out).into_iter().map(|f| (f.clone(), std::fs::read(out.join(&f)).unwrap())).collect();
    assert!(after == before, "the old demo, whole");
    let names: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["demo"], "no staging directory or lock is left");
}

/// Issue 16, item 5: a sweep marks its directory with a manifest and refuses any other
/// non-empty directory; `run --force` refuses a sweep's directory; their default paths differ.
#[test]
fn sweeps_keep_to_their_own_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let sweep = tmp.path().join("grid.toml");
    std::fs::write(&sweep, sweep_file(r#""train.lr" = [0.01, 0.02]"#)).unwrap();
    spec_file(tmp.path(), "spec.toml", &[]);
    let run_in = |args: &[&str]| {
        let mut c = command(args);
        c.current_dir(tmp.path());
        c.output().unwrap()
    };
    // Default paths: data/<name> for a run, data/sweeps/<name> for a sweep.
    let o = run_in(&["sweep", "grid.toml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run_in(&["run", "spec.toml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let sdir = tmp.path().join("data/sweeps/rel");
    assert!(tmp.path().join("data/rel/runs.parquet").is_file());
    assert!(sdir.join("runs/run_index=1/part.parquet").is_file());
    let manifest: toml::Table = std::fs::read_to_string(sdir.join("sweep.toml")).unwrap().parse().unwrap();
    assert_eq!(manifest["points"].as_integer(), Some(2));
    assert_eq!(manifest["modewise_version"].as_str(), Some(env!("CARGO_PKG_VERSION")));
    let swept: toml::Table = manifest["sweep"].as_str().unwrap().parse().unwrap();
    assert_eq!(swept["sweep"]["train.lr"].as_array().unwrap().len(), 2);
    // A run's results directory, and a directory holding anything else, refuse a sweep.
    for dir in ["data/rel", "other"] {
        std::fs::create_dir_all(tmp.path().join(dir)).unwrap();
        std::fs::write(tmp.path().join(dir).join("notes.txt"), "mine").unwrap();
        let before = entries(&tmp.path().join(dir));
        let o = run_in(&["sweep", "grid.toml", "--out", dir, "--force"]);
        assert_eq!(o.status.code(), Some(2), "{dir}: {}", stderr(&o));
        assert!(stderr(&o).contains("is not empty and is not a sweep's directory"), "{}", stderr(&o));
        assert_eq!(entries(&tmp.path().join(dir)), before, "{dir} untouched");
    }
    // A sweep's directory refuses a run, even with --force.
    let before = entries(&sdir);
    let o = run_in(&["run", "spec.toml", "--out", "data/sweeps/rel", "--force"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("holds a sweep's results (sweep.toml)"), "{}", stderr(&o));
    assert_eq!(entries(&sdir), before);
}

/// Issue 16, item 6: a sweep of a million points costs one point's memory per shard (the
/// expansion of every point took 3.7 GB).
#[test]
fn a_shard_of_a_sweep_of_a_million_points_costs_one_points_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let list = |range: std::ops::Range<u64>| range.map(|v| v.to_string()).collect::<Vec<_>>().join(", ");
    let axes = format!("\"train.teacher.seed\" = [{}]\n\"train.steps\" = [{}]", list(0..1000), list(1..1001));
    let file = tmp.path().join("huge.toml");
    std::fs::write(&file, sweep_file(&axes)).unwrap();
    let out = tmp.path().join("res");
    let o = output_within(&mut command(&[
        "sweep",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--shard",
        "999999/1000000",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    let runs = read_parquet(&out.join("runs/run_index=999999/part.parquet")).unwrap();
    assert_eq!(column_strings(&runs, "run_id"), ["rel-999999", "rel-999999"]);
    assert_eq!(runs.column("steps").unwrap().u64().unwrap().get(0), Some(1000));
    assert!(peak_mib(&o) < 400.0, "peak memory {} MiB", peak_mib(&o));
}

/// Issue 16, items 1 and 6: SIGTERM (what Slurm sends at the end of a job's time) stops a run
/// cleanly in training and in the theory overlays (ensembles that would take years), with status
/// 143, a message, and nothing left behind (not even the `data/` it created); a very long run is
/// announced with its estimated time.
#[test]
fn sigterm_stops_training_and_overlays_cleanly_and_long_runs_are_announced() {
    let tmp = tempfile::tempdir().unwrap();
    let training = spec_file(tmp.path(), "training.toml", &[("steps = 40", "steps = 1000000000000000")]);
    let overlays = spec_file(
        tmp.path(),
        "overlays.toml",
        &[("n_probe = 64", "n_probe = 64\n[overlays]\nsde_paths = 100\nsde_dt_over_lr = 1e-9")],
    );
    for (file, wait_for) in [(&training, "run rel (1/1)"), (&overlays, "rel: computing the theory overlays")] {
        let mut c = command(&["run", file]);
        c.current_dir(tmp.path());
        let mut running = Running::start(&mut c);
        running.wait_for_line("warning: rel is estimated to take about");
        running.wait_for_line(wait_for);
        running.signal(libc::SIGTERM);
        let (status, err, _) = running.finish();
        assert_eq!(status.code(), Some(143), "{file}: {err}");
        assert!(err.contains("error: interrupted: rel stopped") && err.contains("nothing was written"), "{err}");
        assert_eq!(entries(tmp.path()), [Path::new("overlays.toml"), Path::new("training.toml")], "{file}");
    }
}

/// Issue 16, item 7: Slurm's 1-based job arrays (`--array=1-2`) map onto shards 0 and 1.
#[test]
fn a_one_based_slurm_array_runs_every_shard() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("grid.toml");
    std::fs::write(&file, sweep_file(r#""train.lr" = [0.01, 0.02]"#)).unwrap();
    let out = tmp.path().join("res");
    for id in ["1", "2"] {
        let mut c = command(&["sweep", file.to_str().unwrap(), "--out", out.to_str().unwrap(), "--resume"]);
        c.envs([
            ("SLURM_ARRAY_TASK_ID", id),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_MAX", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
        ]);
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    }
    for i in 0..2 {
        assert!(summary_part(&out, i).is_file(), "run {i}");
    }
}

/// Issue 16, item 8: a sweep into a directory where nothing can be written fails before any
/// training (also with --resume), and an I/O error names its cause once. Files are made
/// unwritable with a file-size limit of 0, which holds for root too.
#[test]
fn an_unwritable_sweep_fails_before_training_and_io_causes_are_printed_once() {
    use std::os::unix::process::CommandExt;
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("grid.toml");
    std::fs::write(&file, sweep_file(r#""train.lr" = [0.01, 0.02]"#)).unwrap();
    let spec = spec_file(tmp.path(), "spec.toml", &[]);
    let no_writes = |args: &[&str]| {
        let mut c = command(args);
        // SAFETY: setrlimit and signal are async-signal-safe; the child only execs after them.
        unsafe {
            c.pre_exec(|| {
                let limit = libc::rlimit { rlim_cur: 0, rlim_max: libc::RLIM_INFINITY };
                libc::setrlimit(libc::RLIMIT_FSIZE, &limit);
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                Ok(())
            });
        }
        c.output().unwrap()
    };
    let out = tmp.path().join("res");
    std::fs::create_dir(&out).unwrap();
    let o = no_writes(&["sweep", file.to_str().unwrap(), "--out", out.to_str().unwrap(), "--resume"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.starts_with("error: --out: must be a writable directory (") && !err.contains("(1/2)"),
        "no training: {err}"
    );
    assert!(entries(&out).is_empty());
    let o = no_writes(&["run", &spec, "--out", tmp.path().join("run").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    let last = err.lines().last().unwrap();
    assert!(last.starts_with("error: ") && last.contains("File too large (os error 27)"), "{err}");
    assert_eq!(last.matches("os error 27").count(), 1, "the cause once: {last}");
    assert!(!last.contains("thrift"), "{last}");
}

/// Issue 15, item 7: a spec that checkpoints, long enough (tens of thousands of steps) to be
/// killed between two checkpoints; `extra` is appended to its `[train]` table.
fn checkpointed_spec(dir: &Path, name: &str, extra: &str) -> String {
    spec_file(
        dir,
        name,
        &[
            ("steps = 40", "steps = 30000\ncheck_every = 100\ncheckpoint_every = 500"),
            ("n_probe = 64", &format!("n_probe = 64\n{extra}")),
        ],
    )
}

/// The checkpoint directory of the results directory `out` (beside it, hidden).
fn checkpoint_of(out: &Path) -> std::path::PathBuf {
    out.with_file_name(format!(".{}.checkpoint", out.file_name().unwrap().to_string_lossy()))
}

/// The number of run files in the checkpoint of `out`.
fn run_checkpoints(out: &Path) -> usize {
    entries(&checkpoint_of(out)).iter().filter(|f| f.to_string_lossy().starts_with("run-")).count()
}

/// Whether the checkpoint of `out` holds a run (a run file).
fn has_run_checkpoint(out: &Path) -> bool {
    run_checkpoints(out) > 0
}

/// Runs `spec` uninterrupted into `reference`; runs it again into `out` with `threads`
/// threads, kills it with `signal` at a random moment after its first checkpoint, resumes it
/// with `resume_threads` threads, and checks that the resumed results are the uninterrupted
/// ones bit for bit and that the checkpoint is gone.
/// The kill comes once the checkpoint holds at least `files` run files.
fn kill_and_resume(
    spec: &str,
    (reference, out): (&Path, &Path),
    files: usize,
    signal: i32,
    (threads, resume_threads): (&str, &str),
) {
    let o = modewise(&["run", spec, "--out", reference.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!checkpoint_of(reference).exists(), "a published run's checkpoint is removed");

    let mut c = command(&["run", spec, "--out", out.to_str().unwrap()]);
    c.env("RAYON_NUM_THREADS", threads).env("MODEWISE_PROGRESS_SECS", "0");
    let mut running = common::Running::start(&mut c);
    let start = Instant::now();
    while run_checkpoints(out) < files {
        assert!(running.child.try_wait().unwrap().is_none(), "the run ended before its checkpoint");
        assert!(start.elapsed() < common::hung(), "no checkpoint within {} s", common::hung().as_secs());
        std::thread::sleep(Duration::from_millis(5));
    }
    // A random moment after the first checkpoint (the run takes seconds).
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let wait = Duration::from_millis(u64::from(nanos % 400));
    std::thread::sleep(wait);
    running.signal(signal);
    let (status, err, _) = running.finish();
    assert!(!status.success(), "killed after {wait:?}, but the run had ended: make it longer; {err}");
    let step =
        |err: &str| err.lines().rev().find_map(|l| l.split(": step ").nth(1)?.split(' ').next()?.parse::<u64>().ok());
    eprintln!("{}: killed by signal {signal} {wait:?} after the first checkpoint, near step {:?}", spec, step(&err));
    if signal == libc::SIGTERM {
        assert_eq!(status.code(), Some(143), "{err}");
        assert!(err.contains("nothing was written") && err.contains("rerun with --resume"), "{err}");
    }
    assert!(!out.exists(), "nothing is published by a killed run");
    assert!(has_run_checkpoint(out), "the checkpoint survives the kill");

    // Without --resume, the checkpoint is reported (and kept).
    let o = modewise(&["run", spec, "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("has the checkpoint of an unfinished run in"), "{}", stderr(&o));
    assert!(stderr(&o).contains("pass --resume to continue it, or --force to start over"), "{}", stderr(&o));
    assert!(has_run_checkpoint(out));

    let mut c = command(&["run", spec, "--out", out.to_str().unwrap(), "--resume"]);
    c.env("RAYON_NUM_THREADS", resume_threads);
    let o = output_within(&mut c);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("from its checkpoint"), "{}", stderr(&o));
    assert!(!checkpoint_of(out).exists(), "the checkpoint is removed once the results are published");
    assert_same_results(reference, out);
}

/// Issue 15, item 7: a run with `checkpoint_every`, killed (SIGKILL) at a random step after a
/// checkpoint and resumed with another thread count, gives the uninterrupted run's tables bit
/// for bit: default online data (Philox batches) on the fused path.
#[test]
fn a_killed_run_resumes_from_its_checkpoint_to_the_uninterrupted_bits() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = checkpointed_spec(tmp.path(), "online.toml", "");
    let dirs = (&tmp.path().join("reference") as &Path, &tmp.path().join("killed") as &Path);
    kill_and_resume(&spec, dirs, 1, libc::SIGKILL, ("2", "1"));
}

/// The same with a fixed sample (epoch permutations on the PCG64 data stream), stopped by
/// SIGTERM (Slurm's time-out), resumed on one thread after two.
#[test]
fn a_terminated_run_on_a_fixed_sample_resumes_to_the_uninterrupted_bits() {
    let tmp = tempfile::tempdir().unwrap();
    let extra = "data = { source = { kind = \"fixed\", n = 10, whiten = true, train_fraction = 0.9 }, sigma = 0.2 }";
    let spec = checkpointed_spec(tmp.path(), "fixed.toml", extra);
    let dirs = (&tmp.path().join("reference") as &Path, &tmp.path().join("killed") as &Path);
    kill_and_resume(&spec, dirs, 1, libc::SIGTERM, ("1", "2"));
}

/// The same with clones (their own stream per probe step), pcg64-ziggurat online batches, burn
/// tensors (ndarray, closed form) and a population-GD reference per run, and two variants:
/// the first is done when the second is killed, and is not trained again.
#[test]
fn a_killed_run_with_clones_variants_and_references_resumes_to_the_uninterrupted_bits() {
    let tmp = tempfile::tempdir().unwrap();
    let extra = "n_clones = 3\ndata = { sigma = 0.3, generator = \"pcg64-ziggurat\" }";
    let spec = checkpointed_spec(tmp.path(), "clones.toml", extra);
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("name = \"rel\"", "name = \"rel\"\nanalysis = \"relax\"")
        .replace("backend = \"flex\"", "backend = \"ndarray\"\ngradient = \"closed-form\"")
        + "[[variants]]\nlabel = \"a\"\nset = { steps = 3000 }\n[[variants]]\nlabel = \"b\"\nset = { lr = 0.04 }\n";
    std::fs::write(&spec, text).unwrap();
    // Variant a and its reference done, variant b checkpointed.
    let dirs = (&tmp.path().join("reference") as &Path, &tmp.path().join("killed") as &Path);
    kill_and_resume(&spec, dirs, 3, libc::SIGKILL, ("2", "2"));
}

/// Issue 15, item 7: `--resume` without a checkpoint, or with another spec's, is refused with
/// exit status 2, naming what to do; `--force` discards a checkpoint and starts over.
#[test]
fn resume_refuses_a_missing_or_foreign_checkpoint_and_force_discards_it() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = checkpointed_spec(tmp.path(), "spec.toml", "");
    let out = tmp.path().join("res");
    let o = modewise(&["run", &spec, "--out", out.to_str().unwrap(), "--resume"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with(&format!("error: --resume: there is no checkpoint of {} to resume", out.display())),
        "{}",
        stderr(&o)
    );
    assert!(entries(tmp.path()).iter().all(|e| e == Path::new("spec.toml")), "nothing is written");

    let running = common::Running::start(
        command(&["run", &spec, "--out", out.to_str().unwrap()]).env("MODEWISE_PROGRESS_SECS", "0"),
    );
    let start = Instant::now();
    while !has_run_checkpoint(&out) {
        assert!(start.elapsed() < common::hung(), "no checkpoint");
        std::thread::sleep(Duration::from_millis(5));
    }
    running.signal(libc::SIGKILL);
    running.finish();
    let o = modewise(&["run", &spec, "--out", out.to_str().unwrap(), "--resume", "--set", "train.lr=0.04"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("was written by another spec"), "{}", stderr(&o));
    assert!(has_run_checkpoint(&out), "a refused resume keeps the checkpoint");
    let o = modewise(&["run", &spec, "--out", out.to_str().unwrap(), "--force", "--set", "train.steps=1000"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!checkpoint_of(&out).exists(), "--force discarded the checkpoint, the run removed its own");
    assert!(out.join("runs.parquet").is_file());
}
