//! The command line: the top-level [`Cli`] and [`Command`] types, parsing, dispatch, and the
//! mapping of failures to one-line messages and exit statuses.
//!
//! Exit statuses: 0 on success (and for `--help`/`--version`), [`EXIT_USAGE`] (2) when an
//! argument is malformed or breaks a parameter rule, [`EXIT_DIVERGED`] (3) when every run
//! finished and its results were written but some ensemble members diverged,
//! [`EXIT_INTERRUPTED`] (130) after Ctrl-C, [`EXIT_TERMINATED`] (143) after SIGTERM,
//! [`EXIT_FAILURE`] (1) for anything else (a numerical failure of the theory, an I/O error).
//! Every failure prints exactly one line, `error: …`, on stderr.

mod bench;
mod curves;
mod experiment;
mod output;
mod theory;

use std::ffi::OsStr;
use std::marker::PhantomData;
use std::path::Path;
use std::process::ExitCode;
use std::str::FromStr;

use clap::builder::TypedValueParser;
use clap::error::ErrorKind;
use clap::{Parser, Subcommand};
use modewise_dln::DlnError;
use modewise_experiments::sweep::MANIFEST;
use modewise_experiments::{CheckpointProblem, DestinationProblem, ExperimentError};
use modewise_theory::{InvalidParameter, TheoryError};

/// Exit status of a malformed argument or a parameter that breaks its rule.
pub const EXIT_USAGE: u8 = 2;
/// Exit status of every other failure.
pub const EXIT_FAILURE: u8 = 1;
/// Exit status of a run or sweep that completed with diverged members (results are written;
/// the `runs` table marks them `diverged`).
pub const EXIT_DIVERGED: u8 = 3;
/// Exit status after Ctrl-C (128 + SIGINT, the shell's convention).
pub const EXIT_INTERRUPTED: u8 = 130;
/// Exit status after SIGTERM (128 + SIGTERM), e.g. from Slurm at the end of a job's time.
pub const EXIT_TERMINATED: u8 = 143;

/// Set by SIGTERM (see `experiment::stop_on_signals`): an interrupted command then exits with
/// [`EXIT_TERMINATED`] rather than [`EXIT_INTERRUPTED`].
fn terminated() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    static FLAG: std::sync::OnceLock<std::sync::Arc<std::sync::atomic::AtomicBool>> = std::sync::OnceLock::new();
    FLAG.get_or_init(Default::default).clone()
}

/// Set when the user passed `--out`: a message about the results directory then names the
/// flag (`--out: DIR …`); otherwise it names the directory the command chose by default and
/// says how to choose another.
static OUT_GIVEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Records whether the command line gave `--out` (see [`OUT_GIVEN`]).
pub(crate) fn set_out_given(given: bool) {
    OUT_GIVEN.store(given, std::sync::atomic::Ordering::SeqCst);
}

/// The exit status of an interrupted command: 143 after SIGTERM, else 130.
fn interrupted_status() -> u8 {
    if terminated().load(std::sync::atomic::Ordering::SeqCst) { EXIT_TERMINATED } else { EXIT_INTERRUPTED }
}

/// SGD noise and the saddle-to-saddle dynamics of deep linear networks.
#[derive(Debug, Parser)]
#[command(name = "modewise", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do; without one, the demo runs (`modewise run demo`).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Worker threads of the CPU backends and the theory ensembles (default: all cores, or
    /// RAYON_NUM_THREADS), at most 4 per core available. Results do not depend on it.
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<usize>,
}

/// The program's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Closed-form and numerical theory of one singular mode (no simulation).
    #[command(arg_required_else_help = false)]
    Theory(theory::TheoryArgs),
    /// Run an experiment: a preset (`saddle`, `stationary`, `relax`, `sde-vs-sgd`, `demo`) or a
    /// spec file; writes Parquet tables and SVG figures and prints the verdicts.
    Run(experiment::RunArgs),
    /// Run a sweep: a spec with lists of values, expanded to their product, optionally one
    /// shard of it, resumable; results in a Hive-partitioned directory.
    Sweep(experiment::SweepArgs),
    /// List the presets, or print one as a TOML spec.
    Presets(experiment::PresetsArgs),
    /// Redraw the figures and the verdict table of a results directory.
    Report(experiment::ReportArgs),
    /// Time one standard workload (w1, w2, w3, w1e, w2e, sde) on this machine.
    Bench(bench::BenchArgs),
}

/// Parses the process's arguments, runs the command and returns the exit status.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return parse_failure(&err),
    };
    match run(cli) {
        Ok(status) => ExitCode::from(status),
        Err(err) => {
            let (status, message) = describe_failure(&err);
            eprintln!("error: {message}");
            ExitCode::from(status)
        }
    }
}

/// Runs a parsed command line and returns the exit status of a command that did not fail.
fn run(cli: Cli) -> anyhow::Result<u8> {
    let started = std::time::SystemTime::now();
    if let Some(n) = cli.threads {
        set_threads(n)?;
    }
    modewise_experiments::set_run_context(modewise_experiments::RunContext {
        command_line: std::env::args().collect::<Vec<_>>().join(" "),
        threads: rayon::current_num_threads(),
        started,
    });
    let done = |r: anyhow::Result<()>| r.map(|()| 0);
    match cli.command {
        Some(Command::Theory(args)) => done(theory::run(args).map_err(theory_fields_as_flags)),
        Some(Command::Run(args)) => experiment::run(args),
        Some(Command::Sweep(args)) => experiment::sweep(args),
        Some(Command::Presets(args)) => done(experiment::presets(args)),
        Some(Command::Report(args)) => done(experiment::report(args)),
        Some(Command::Bench(args)) => done(bench::run(args)),
        None => experiment::run(experiment::RunArgs::default()),
    }
}

/// Sizes the global thread pool used by the CPU backends and the theory ensembles: at least 1,
/// at most 4 per core available (more only contend; 1024 where the cores cannot be counted).
fn set_threads(n: usize) -> anyhow::Result<()> {
    let invalid = |rule: String| ExperimentError::Invalid { field: "--threads".into(), rule };
    if n == 0 {
        anyhow::bail!(invalid("must be at least 1 (got 0)".into()));
    }
    let limit = std::thread::available_parallelism().map_or(1024, |cores| 4 * cores.get());
    if n > limit {
        anyhow::bail!(invalid(format!("must be at most 4 per core available, {limit} (got {n})")));
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .map_err(|e| anyhow::Error::from(invalid(format!("could not start {n} threads ({e})"))))?;
    Ok(())
}

/// Handles a clap error: help and version go to stdout with status 0; a real parse error is
/// reduced to one line (see [`one_line_parse_error`]) on stderr with status [`EXIT_USAGE`].
fn parse_failure(err: &clap::Error) -> ExitCode {
    if matches!(err.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        return match err.print() {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::from(EXIT_FAILURE),
        };
    }
    eprintln!("{}", one_line_parse_error(&err.render().to_string()));
    ExitCode::from(EXIT_USAGE)
}

/// Reduces clap's rendered (plain-text) error to one line: everything before the usage block
/// (the message, which names the argument, and any list of missing arguments, possible values
/// or subcommands, or a tip), joined with spaces. The usage block and the "For more
/// information" pointer are dropped.
fn one_line_parse_error(rendered: &str) -> String {
    let parts: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more information"))
        .filter(|line| !line.is_empty())
        .collect();
    if parts.is_empty() { "error: invalid arguments".to_owned() } else { parts.join(" ") }
}

/// A clap value parser that reads a flag's value with a library type's [`FromStr`] (the one
/// table of names each type keeps). The library's error names its own field (`shard: must be
/// I/N (got `x`)`); the message names the flag instead (`--shard: must be I/N (got `x`)`).
pub(crate) struct Typed<T>(PhantomData<fn() -> T>);

/// The value parser of a flag of type `T` (see [`Typed`]).
pub(crate) fn typed<T>() -> Typed<T> {
    Typed(PhantomData)
}

impl<T> Clone for Typed<T> {
    fn clone(&self) -> Self {
        typed()
    }
}

impl<T> TypedValueParser for Typed<T>
where
    T: FromStr + Clone + Send + Sync + 'static,
    T::Err: Into<anyhow::Error>,
{
    type Value = T;

    fn parse_ref(&self, _: &clap::Command, arg: Option<&clap::Arg>, value: &OsStr) -> Result<T, clap::Error> {
        let flag = arg.and_then(clap::Arg::get_long).map_or_else(|| "value".to_owned(), |long| format!("--{long}"));
        let text = value
            .to_str()
            .ok_or_else(|| clap::Error::raw(ErrorKind::InvalidUtf8, format!("{flag}: must be valid UTF-8")))?;
        text.parse().map_err(|e: T::Err| clap::Error::raw(ErrorKind::ValueValidation, flag_message(&flag, &e.into())))
    }
}

/// A library error about a flag's value, naming the flag instead of the library's field.
fn flag_message(flag: &str, err: &anyhow::Error) -> String {
    if let Some(p) = invalid_parameter(err) {
        return format!("{flag}: {} (got {})", p.rule, p.value);
    }
    match err.downcast_ref::<ExperimentError>() {
        Some(ExperimentError::Invalid { rule, .. }) => format!("{flag}: {rule}"),
        _ => format!("{flag}: {err}"),
    }
}

/// An experiments-crate error as the program prints it: the library names its own fields and
/// options (`shard`, a run's `out` and `force`, a sweep's `resume`); the program names the
/// flags that set them (`None`: printed as the library says it).
fn experiment_message(err: &ExperimentError) -> Option<String> {
    Some(match err {
        // `--shard`, or Slurm's array variables that stand for it.
        ExperimentError::Invalid { field, rule } if field == "shard" => format!("--shard: {rule}"),
        ExperimentError::Invalid { field, rule } if field == "resume" => format!("--resume: {rule}"),
        ExperimentError::Destination { dir, problem } => {
            let message = destination_message(&dir.display().to_string(), problem);
            if OUT_GIVEN.load(std::sync::atomic::Ordering::SeqCst) {
                format!("--out: {message}")
            } else {
                // The user named no directory: say which one the command chose, and how to
                // choose another.
                let message = message.replace("choose another --out", "choose another with --out DIR");
                format!("results directory {message}")
            }
        }
        ExperimentError::Checkpoint { out, dir, problem } => checkpoint_message(out, dir, problem),
        ExperimentError::Interrupted { detail } => format!("interrupted: {}", detail.replace("`resume`", "--resume")),
        ExperimentError::SweepInterrupted(progress) => {
            format!("interrupted: {progress}; rerun with --resume to finish")
        }
        _ => return None,
    })
}

/// What is wrong with the checkpoint `dir` of the results directory `out`, and what to do.
fn checkpoint_message(out: &Path, dir: &Path, problem: &CheckpointProblem) -> String {
    let (out, dir) = (out.display(), dir.display());
    match problem {
        CheckpointProblem::Unfinished => format!(
            "{out} has the checkpoint of an unfinished run in {dir}; pass --resume to continue it, or --force to start \
             over (discarding it)"
        ),
        CheckpointProblem::Missing => format!(
            "--resume: there is no checkpoint of {out} to resume ({dir} does not exist; a run writes one every \
             train.checkpoint_every steps)"
        ),
        CheckpointProblem::OtherSpec { theirs, ours } => format!(
            "--resume: the checkpoint in {dir} was written by another spec (spec hash {theirs}, this one's {ours}); \
             resume with the same spec, --set and --backend, or pass --force to start over"
        ),
        CheckpointProblem::Unreadable { reason } => {
            format!("--resume: the checkpoint in {dir} cannot be resumed ({reason}); pass --force to start over")
        }
    }
}

/// What is wrong with the results directory `dir`, and what to do (the caller says how the
/// directory was chosen).
fn destination_message(dir: &str, problem: &DestinationProblem) -> String {
    match problem {
        DestinationProblem::IsFile => format!("must be a directory, but {dir} is a file"),
        DestinationProblem::Taken => {
            format!("{dir} already holds results; pass --force to replace them, or choose another --out")
        }
        DestinationProblem::SweepTaken { run } => format!(
            "{dir} already holds results of run {run}; pass --resume to continue the sweep or --force to \
             redo it, or choose another --out"
        ),
        DestinationProblem::Unwritable { path, source } => {
            format!("must be a writable directory ({}: {source})", path.display())
        }
        DestinationProblem::DanglingLink { target } => {
            format!("{dir} is a symbolic link to {}, which does not exist", target.display())
        }
        DestinationProblem::NoName => {
            format!("must name a directory below its parent, not the root, `.` or `..` (got {dir})")
        }
        DestinationProblem::NameTooLong { bytes } => {
            format!("a directory name may have at most 255 bytes (got {bytes} in {dir})")
        }
        DestinationProblem::Busy { pid } => format!(
            "{dir} is being written by another modewise process{}; wait for it or choose another --out",
            pid.map_or(String::new(), |p| format!(" (pid {p})"))
        ),
        DestinationProblem::IsSweep => format!(
            "{dir} holds a sweep's results ({MANIFEST}), which `run` never replaces, even with --force; \
             choose another --out"
        ),
        DestinationProblem::NotSweep => format!(
            "{dir} is not empty and is not a sweep's directory (it has no {MANIFEST}); choose a new or \
             empty directory"
        ),
        DestinationProblem::OtherSweep { difference } => {
            format!("{dir} holds the results of another sweep ({difference}); choose another --out")
        }
    }
}

/// The theory subcommand's parameters are its flags, so a broken rule names the flag that sets
/// the field (`--field`, underscores written as dashes): `--t-min: must be finite and positive
/// (got -1.0)`. The experiment commands keep the spec path the libraries give (`train.lr`).
fn theory_fields_as_flags(err: anyhow::Error) -> anyhow::Error {
    match err.downcast_ref::<TheoryError>().and_then(TheoryError::invalid_parameter) {
        Some(p) => InvalidParameter { field: format!("--{}", p.field.replace('_', "-")), ..p.clone() }.into(),
        None => err,
    }
}

/// The broken parameter rule behind a failure, whichever crate reported it (each crate's error
/// finds the one [`InvalidParameter`] it may wrap).
fn invalid_parameter(err: &anyhow::Error) -> Option<&InvalidParameter> {
    err.downcast_ref::<InvalidParameter>()
        .or_else(|| err.downcast_ref::<ExperimentError>().and_then(ExperimentError::invalid_parameter))
        .or_else(|| err.downcast_ref::<DlnError>().and_then(DlnError::invalid_parameter))
        .or_else(|| err.downcast_ref::<TheoryError>().and_then(TheoryError::invalid_parameter))
}

/// The exit status and one-line message (without the `error: ` prefix) of a failure: a broken
/// parameter rule, an unreadable spec or option, or a taken destination is a usage error.
fn describe_failure(err: &anyhow::Error) -> (u8, String) {
    let experiment = err.downcast_ref::<ExperimentError>();
    let status = if invalid_parameter(err).is_some()
        || matches!(
            experiment,
            Some(
                ExperimentError::Invalid { .. }
                    | ExperimentError::Destination { .. }
                    | ExperimentError::Checkpoint { .. }
            )
        ) {
        EXIT_USAGE
    } else if experiment.is_some_and(ExperimentError::is_interrupted)
        || matches!(err.downcast_ref::<DlnError>(), Some(DlnError::Interrupted { .. }))
    {
        interrupted_status()
    } else {
        EXIT_FAILURE
    };
    let message = experiment.and_then(experiment_message).unwrap_or_else(|| chain_text(err));
    (status, message.replace(['\r', '\n'], " "))
}

/// An error and its causes, `error: cause: cause`, each cause once: a cause whose text the
/// message already holds (an I/O error's `path: cause` names it) is not repeated.
fn chain_text(err: &anyhow::Error) -> String {
    let mut text = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parse_errors_keep_the_first_line_and_the_hints() {
        let rendered = "error: invalid value 'x' for '--coordinate <COORD>'\n  \
                        [possible values: w, a]\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line_parse_error(rendered),
            "error: invalid value 'x' for '--coordinate <COORD>' [possible values: w, a]"
        );
        let rendered = "error: unexpected argument '--sigm' found\n\n  tip: a similar argument \
                        exists: '--sigma'\n\nUsage: modewise theory stationary [OPTIONS]\n";
        assert_eq!(
            one_line_parse_error(rendered),
            "error: unexpected argument '--sigm' found tip: a similar argument exists: '--sigma'"
        );
        let rendered = "error: the following required arguments were not provided:\n  --w0 <W0>\n\n\
                        Usage: modewise theory peak --w0 <W0>\n       modewise theory peak\n";
        assert_eq!(
            one_line_parse_error(rendered),
            "error: the following required arguments were not provided: --w0 <W0>"
        );
    }

    #[test]
    fn typed_flags_parse_with_the_library_types_and_errors_name_the_flag() {
        use modewise_dln::BackendKind;
        use modewise_experiments::sweep::Shard;
        let args = ["modewise", "sweep", "grid.toml", "--shard", "1/3", "--backend", "flex", "--set", "train.lr=0.5"];
        let Some(Command::Sweep(sweep)) = Cli::try_parse_from(args).unwrap().command else { panic!("a sweep") };
        assert_eq!(sweep.shard, Some(Shard::new(1, 3).unwrap()));
        assert_eq!(sweep.backend, Some(BackendKind::Flex));
        assert_eq!(sweep.set, ["train.lr=0.5".parse::<modewise_experiments::Override>().unwrap()]);
        assert_eq!(sweep.set[0].to_string(), "train.lr=0.5");
        let cases: [(&[&str], &str); 5] = [
            (&["sweep", "g.toml", "--shard", "x"], "error: --shard: must be I/N (got `x`)"),
            (&["sweep", "g.toml", "--shard", "0/0"], "error: --shard: needs 0 ≤ I < N and N ≥ 1 (got 0/0)"),
            (&["run", "--backend", "tpu"], "error: --backend: must be one of ndarray, flex, wgpu, cuda (got tpu)"),
            (&["run", "--set", "train.lr"], "error: --set: must be KEY=VALUE (got `train.lr`)"),
            (
                &["theory", "peak", "--w0", "0.1", "--coordinate", "x"],
                "error: --coordinate: must be `w` (end-to-end) or `a` (per-layer) (got x)",
            ),
        ];
        for (args, expected) in cases {
            let err = Cli::try_parse_from([&["modewise"], args].concat()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ValueValidation, "{args:?}");
            assert_eq!(one_line_parse_error(&err.render().to_string()), expected);
        }
    }

    #[test]
    fn experiment_errors_are_printed_naming_the_flags_that_set_their_fields() {
        use modewise_experiments::SweepProgress;
        let dir = std::path::PathBuf::from("res");
        let destination = |problem| ExperimentError::Destination { dir: dir.clone(), problem };
        let cases = [
            (
                destination(DestinationProblem::Taken),
                EXIT_USAGE,
                "--out: res already holds results; pass --force to replace them, or choose another --out",
            ),
            (
                destination(DestinationProblem::SweepTaken { run: 2 }),
                EXIT_USAGE,
                "--out: res already holds results of run 2; pass --resume to continue the sweep or --force to redo \
                 it, or choose another --out",
            ),
            (destination(DestinationProblem::IsFile), EXIT_USAGE, "--out: must be a directory, but res is a file"),
            (
                ExperimentError::Invalid {
                    field: "shard".into(), rule: "needs 0 ≤ I < N and N ≥ 1 (got 3/2)".into()
                },
                EXIT_USAGE,
                "--shard: needs 0 ≤ I < N and N ≥ 1 (got 3/2)",
            ),
            (
                ExperimentError::Invalid { field: "train.lr".into(), rule: "must be finite".into() },
                EXIT_USAGE,
                "train.lr: must be finite",
            ),
            (
                ExperimentError::SweepInterrupted(SweepProgress {
                    dir: dir.clone(),
                    completed: 2,
                    before: 1,
                    discarded: Some(3),
                }),
                EXIT_INTERRUPTED,
                "interrupted: run 3 was discarded; 2 runs completed now and 1 before are in res; rerun with --resume to finish",
            ),
        ];
        set_out_given(true);
        for (err, status, expected) in cases {
            // The library names no flag; the program does.
            assert!(!err.to_string().contains("--"), "{err}");
            assert_eq!(describe_failure(&anyhow::Error::from(err)), (status, expected.to_owned()));
        }
        // Without --out, the message names the directory chosen and how to choose another.
        set_out_given(false);
        assert_eq!(
            describe_failure(&anyhow::Error::from(destination(DestinationProblem::Busy { pid: Some(7) }))).1,
            "results directory res is being written by another modewise process (pid 7); wait for it or choose \
             another with --out DIR"
        );
    }

    #[test]
    fn invalid_parameters_are_usage_errors_named_as_flags() {
        let err = theory_fields_as_flags(TheoryError::invalid("t_min", "must be finite and positive", -1.0).into());
        assert_eq!(describe_failure(&err), (EXIT_USAGE, "--t-min: must be finite and positive (got -1.0)".into()));
        let err = theory_fields_as_flags(TheoryError::Numerical { what: "x", reason: "a\nb".into() }.into());
        assert_eq!(describe_failure(&err), (EXIT_FAILURE, "x: a b".into()));
    }

    #[test]
    fn a_broken_rule_from_any_crate_is_a_usage_error_named_by_its_spec_path() {
        let dln = DlnError::invalid("lr", "must be finite and positive", 0.0);
        let err = anyhow::Error::from(ExperimentError::from(dln.clone()).within("train"));
        assert_eq!(describe_failure(&err), (EXIT_USAGE, "train.lr: must be finite and positive (got 0.0)".into()));
        let err = anyhow::Error::from(ExperimentError::from(dln.clone()));
        assert_eq!(describe_failure(&err), (EXIT_USAGE, "lr: must be finite and positive (got 0.0)".into()));
        assert_eq!(describe_failure(&dln.into()).0, EXIT_USAGE);
        let err = anyhow::Error::from(InvalidParameter::new("--seconds", "must be finite and positive", 0.0));
        assert_eq!(describe_failure(&err), (EXIT_USAGE, "--seconds: must be finite and positive (got 0.0)".into()));
        let err = anyhow::Error::from(ExperimentError::from(DlnError::Interrupted { step: 3 }));
        assert_eq!(describe_failure(&err).0, EXIT_INTERRUPTED);
    }
}
