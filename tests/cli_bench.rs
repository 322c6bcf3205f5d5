//! End-to-end tests of `modewise bench` (one JSON object per workload, and the measured peak)
//! and of the time breakdown printed at the end of a run.

mod common;

use common::{modewise, stderr};

#[test]
fn bench_prints_one_json_object_per_workload() {
    let cases = [
        ("w1", "flex", 1, None, 1),
        ("w1e", "ndarray", 2, None, 64),
        ("w2", "flex", 1, Some("3"), 3),
        ("sde", "cpu", 1, None, 1),
    ];
    for (workload, backend, threads, members, expected_members) in cases {
        let mut args = vec!["bench", "--workload", workload, "--seconds", "0.2", "--json", "--threads"];
        let t = threads.to_string();
        args.push(&t);
        if workload != "sde" {
            args.extend(["--backend", backend]);
        }
        if let Some(m) = members {
            args.extend(["--members", m]);
        }
        let o = modewise(&args);
        assert!(o.status.success(), "{workload}: {}", stderr(&o));
        let text = String::from_utf8(o.stdout).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["workload", "backend", "threads", "members", "per_second"]);
        assert_eq!(v["members"], expected_members, "{workload}");
        assert_eq!(v["workload"], workload);
        assert_eq!(v["backend"], backend);
        assert_eq!(v["threads"], threads);
        let rate = v["per_second"].as_f64().unwrap();
        assert!(rate.is_finite() && rate > 0.0, "{workload}: {rate}");
    }
}

#[test]
fn bench_peak_prints_gflops_per_vector_width_and_the_cpu() {
    let o = modewise(&["bench", "--peak", "--seconds", "0.2", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["peak", "widest", "cpu"]);
    let peak = v["peak"].as_object().unwrap();
    let widest = v["widest"].as_str().unwrap();
    let rate = |w: &str| peak[w].as_f64().unwrap_or_else(|| panic!("{w}: {text}"));
    assert!(rate(widest) > 0.0, "{text}");
    if cfg!(target_arch = "x86_64") {
        let widths: Vec<&str> = peak.keys().map(String::as_str).collect();
        assert_eq!(widths, ["avx512", "avx2"], "{text}");
        let has = |w: &str| !peak[w].is_null();
        assert_eq!(has("avx512"), std::arch::is_x86_feature_detected!("avx512f"), "{text}");
        assert_eq!(widest, if has("avx512") { "avx512" } else { "avx2" }, "{text}");
    }
    assert!(!v["cpu"].as_str().unwrap().is_empty());
    // The text form names every width measured and the CPU.
    let o = modewise(&["bench", "--peak", "--seconds", "0.1"]);
    let line = String::from_utf8(o.stdout).unwrap();
    assert!(line.starts_with("f32 FMA peak of one core: ") && line.contains(&format!("{widest} ")), "{line}");
}

#[test]
fn bench_refuses_unknown_workloads_and_backends() {
    let without_cuda = "error: --backend: this modewise was built without the cuda backend: rebuild it with `cargo build --release --features cuda`";
    let cases: [(&[&str], &str); 10] = [
        (&["--workload", "w1", "--backend", "cuda"], if cfg!(feature = "cuda") { "" } else { without_cuda }),
        (
            &["--workload", "w4"],
            "error: invalid value 'w4' for '--workload <WORKLOAD>' [possible values: w1, w2, w3, w1e, w2e, sde]",
        ),
        (
            &["--workload", "w1", "--backend", "tpu"],
            "error: invalid value 'tpu' for '--backend <BACKEND>' [possible values: ndarray, flex, wgpu, cuda]",
        ),
        (
            &["--workload", "w1", "--gradient", "gpu"],
            "error: invalid value 'gpu' for '--gradient <GRADIENT>' [possible values: auto, autodiff, closed-form, fused]",
        ),
        (&["--workload", "sde", "--backend", "flex"], "error: --backend: must be left out for the sde workload"),
        (&["--workload", "w1", "--seconds", "0"], "error: --seconds: must be finite and positive (got 0.0)"),
        (&["--workload", "w2", "--members", "0"], "error: --members: must be at least 1 (got 0)"),
        (&["--workload", "sde", "--members", "4"], "error: --members: must be left out for the sde workload"),
        (&[], "error: the following required arguments were not provided: --workload <WORKLOAD>"),
        (&["--peak", "--workload", "w1"], "error: the argument '--peak' cannot be used with '--workload <WORKLOAD>'"),
    ];
    for (args, expected) in cases {
        if expected.is_empty() {
            continue; // a build with the cuda backend
        }
        let o = modewise(&[&["bench"], args].concat());
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = stderr(&o);
        assert!(err.starts_with(expected) && err.lines().count() == 1, "{args:?}: {err}");
    }
}

/// An ensemble too large for the GPU is refused before anything is drawn, naming the flag,
/// the estimate and how many members fit (on lavapipe: 128 W3 members, 128 MiB per tensor).
#[test]
fn bench_refuses_an_ensemble_too_large_for_the_gpu() {
    let o = modewise(&["bench", "--workload", "w3", "--members", "100000", "--backend", "wgpu", "--json"]);
    assert_eq!(o.status.code(), Some(2));
    // Mesa's software Vulkan may say something of its own on stderr first.
    let err = stderr(&o);
    let line = err.lines().find(|l| l.starts_with("error: --members")).unwrap_or_default();
    let expected = "error: --members: 100000 members of dims [512, 512, 512, 512, 512] at batch 128 need about";
    assert!(
        line.starts_with(expected) && line.ends_with("members fit; split the seeds over runs (got 100000)"),
        "{err}"
    );
    assert!(o.stdout.is_empty());
}

#[test]
fn a_run_reports_where_its_time_went() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("spec.toml");
    std::fs::write(
        &spec,
        "name = \"t\"\nanalysis = \"saddle\"\n[train]\ndims = [3, 4, 3]\nsteps = 200\nseeds = [1, 2]\nbackend = \"flex\"\n\
         n_probe = 256\n[train.teacher.spectrum]\nkind = \"list\"\ns = [2.0, 1.0]\n[overlays]\nsde_paths = 100\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    let o = modewise(&["run", spec.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    let line = err.lines().find_map(|l| l.strip_prefix("time: ")).unwrap_or_else(|| panic!("{err}"));
    let mut share = 0.0;
    for part in ["training", "probes", "overlays and verdicts", "parquet", "figures"] {
        let rest = line.split(&format!("{part} ")).nth(1).unwrap_or_else(|| panic!("{part} in {line}"));
        let seconds: f64 = rest.split(' ').next().unwrap().parse().unwrap();
        let percent: f64 = rest.split('(').nth(1).unwrap().split('%').next().unwrap().parse().unwrap();
        assert!(seconds >= 0.0, "{line}");
        share += percent;
    }
    assert!((share - 100.0).abs() < 0.5, "the parts add up to the whole: {line}");
}
