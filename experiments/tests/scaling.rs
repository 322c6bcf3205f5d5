//! End-to-end: a small `scaling` experiment (7 runs, 8 members, seconds in a debug build) whose
//! fitted exponents are checked against the Boltzmann law's, whose breakdown rows are checked
//! against the rule applied to its own points, and whose run past the stability edge counts
//! its diverged members (`docs/theory.md` §9.5.1).

use modewise_experiments::scaling::{PointRow, ScalingRow, breakdown};
use modewise_experiments::{Claim, ExperimentSpec, Quantity, RunOptions, Table, execute, read_rows};

const SPEC: &str = r#"
name = "small-scaling"
analysis = "scaling"

[train]
dims = [3, 4, 3]
batch = 4
steps = 500
lr = 0.01
seeds = [0, 1, 2, 3, 4, 5, 6, 7]
backend = "flex"

[train.data]
sigma = 0.5

[train.probes]
per_decade = 100.0

[train.teacher]
seed = 5
[train.teacher.spectrum]
kind = "list"
s = [2.0]

[train.init]
kind = "aligned-balanced"
a0 = 1.4142135623730951

[[variants]]
label = "base"
set = { "train.lr" = 0.01 }

[[variants]]
label = "lr=0.005"
set = { "train.lr" = 0.005, "train.steps" = 1000 }

[[variants]]
label = "lr=0.02"
set = { "train.lr" = 0.02, "train.steps" = 250 }

[[variants]]
label = "lr=0.08"
set = { "train.lr" = 0.08, "train.steps" = 250 }

[[variants]]
label = "lr=0.6"
set = { "train.lr" = 0.6, "train.steps" = 50 }

[[variants]]
label = "B=16"
set = { "train.batch" = 16 }

[[variants]]
label = "sigma=1"
set = { "train.data.sigma" = 1.0 }
"#;

#[test]
fn a_small_scaling_run_recovers_the_exponents_finds_the_breakdown_and_counts_the_diverged() {
    let experiment = ExperimentSpec::from_toml(SPEC, &[]).unwrap().check().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let options = RunOptions { out: Some(dir.path().join("out")), ..RunOptions::default() };
    let outcome = execute(&experiment, &options, &mut |_| {}).unwrap();
    let points: Vec<PointRow> = read_rows(&Table::ScalingPoints.path_in(&outcome.dir)).unwrap();
    let fits: Vec<ScalingRow> = read_rows(&Table::Scaling.path_in(&outcome.dir)).unwrap();
    assert_eq!(points.len(), 7 * 3, "one row per run and model");

    // The exponents: η over three rates with ηλ ≤ 0.25 (0.005, 0.01, 0.02), B and σ over two
    // levels each (the SDE, one exact value per level, needs three). Every one recovers the
    // Boltzmann exponent within its interval widened by the first-order correction.
    let fitted: Vec<(&str, &str)> = fits.iter().map(|f| (f.factor.as_str(), f.model.as_str())).collect();
    assert_eq!(
        fitted,
        [
            ("lr", "network"),
            ("lr", "chain"),
            ("lr", "sde"),
            ("batch", "network"),
            ("batch", "chain"),
            ("sigma", "network"),
            ("sigma", "chain")
        ]
    );
    for f in &fits {
        let expected = match f.factor.as_str() {
            "lr" => 1.0,
            "batch" => -1.0,
            _ => 2.0,
        };
        assert!((f.predicted - expected).abs() < 1e-12, "{f:?}");
        assert!(f.holds, "{f:?}");
        assert!(f.ci_low < f.exponent && f.exponent < f.ci_high, "{f:?}");
        // The chain's interval is far narrower than the network's 8 members give.
        if f.model == "chain" {
            let network = fits.iter().find(|g| g.factor == f.factor && g.model == "network").unwrap();
            assert!(f.ci_high - f.ci_low < 0.2 * (network.ci_high - network.ci_low), "{f:?} {network:?}");
        }
    }
    // The same fits are verdicts of the printed table.
    let exponents = outcome.verdicts.iter().filter(|v| v.claim == Claim::Scaling && v.quantity == Quantity::ExponentLr);
    assert_eq!(exponents.count(), 3);

    // Past the stability edge (η = 0.6, ηλ = 2.4 > 2) every member diverges, and so do most
    // chain paths; the trainer's record and the points agree.
    let edge = |model: &str| points.iter().find(|p| p.label == "lr=0.6" && p.model == model).unwrap();
    let network = edge("network");
    assert_eq!((network.diverged, network.members, network.var_over_t), (8, 8, None));
    assert_eq!(outcome.divergences.iter().filter(|(run, _)| run.ends_with("lr=0.6")).count(), 8);
    let chain = edge("chain");
    assert!(chain.diverged > chain.members / 2, "{chain:?}");
    assert!(points.iter().filter(|p| p.label != "lr=0.6").all(|p| p.diverged == 0), "none below the edge");
    let svg = std::fs::read_to_string(outcome.dir.join("scaling.svg")).unwrap();
    assert!(svg.contains("8 of 8 members diverged at lr = 0.6"), "the figure marks them");

    // Breakdown rows: one per model, each the rule applied to the points read back (the
    // network's interval is undefined at η = 0.6, so both break down at the latest there).
    for (model, quantity) in [("sde", Quantity::BreakdownLrSde), ("chain", Quantity::BreakdownLrChain)] {
        let row = outcome.verdicts.iter().find(|v| v.quantity == quantity).unwrap();
        let (measured, predicted, _, n) = breakdown(&points, model).unwrap();
        assert_eq!((row.measured, row.predicted, row.n), (measured.lr(), predicted.lr(), n as u32));
        assert_eq!(n, 5, "the base point and the four other rates");
        assert!(row.measured <= 0.6 && row.predicted <= 0.6, "{row:?}");
        assert_eq!(row.holds, row.measured == row.predicted);
    }
    // The chain follows the network to the edge; the SDE, whose Var/T lacks the chain's ηλ/2,
    // leaves the network's interval first.
    let sde = outcome.verdicts.iter().find(|v| v.quantity == Quantity::BreakdownLrSde).unwrap();
    let chain = outcome.verdicts.iter().find(|v| v.quantity == Quantity::BreakdownLrChain).unwrap();
    assert_eq!(chain.measured, 0.6, "{chain:?}");
    assert!(sde.measured < chain.measured, "{sde:?}");
}
