//! End-to-end tests of `modewise theory`: the real binary's JSON reports against closed forms
//! and independent numerics computed here, and its exit statuses and one-line errors.

use std::process::Command;

use serde_json::Value;

/// What one run of the binary produced.
struct Outcome {
    status: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `modewise` with `args`.
fn modewise(args: &[&str]) -> Outcome {
    let output = Command::new(env!("CARGO_BIN_EXE_modewise"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("the modewise binary runs");
    Outcome {
        status: output.status.code(),
        stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
    }
}

/// Runs `modewise theory <args> --json`, asserts success and parses the one JSON object.
fn report(args: &[&str]) -> Value {
    let mut all = vec!["theory"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = modewise(&all);
    assert_eq!(out.status, Some(0), "{all:?} failed: {}", out.stderr);
    assert!(out.stderr.is_empty(), "{all:?} wrote to stderr: {}", out.stderr);
    let value: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{all:?}: {e}: {}", out.stdout));
    assert!(value.is_object(), "{all:?}: not an object: {value}");
    value
}

/// The number at `key`, which must be a JSON number.
fn num(report: &Value, key: &str) -> f64 {
    report[key].as_f64().unwrap_or_else(|| panic!("`{key}` is not a number in {report}"))
}

/// Asserts `|actual − expected| ≤ tol · max(1, |expected|)`.
fn assert_close(actual: f64, expected: f64, tol: f64, what: &str) {
    let scale = expected.abs().max(1.0);
    assert!((actual - expected).abs() <= tol * scale, "{what}: got {actual}, expected {expected} (tolerance {tol})");
}

/// Gradient-flow velocity `L w^{2−2/L} (s − w)` of the note, written out here.
fn velocity(l: f64, s: f64, w: f64) -> f64 {
    l * w.powf(2.0 - 2.0 / l) * (s - w)
}

/// Classical RK4 integration of the gradient flow from `w0` over `[0, t]` with `steps` steps.
fn rk4_flow(l: f64, s: f64, w0: f64, t: f64, steps: usize) -> f64 {
    let dt = t / steps as f64;
    let mut w = w0;
    for _ in 0..steps {
        let k1 = velocity(l, s, w);
        let k2 = velocity(l, s, w + 0.5 * dt * k1);
        let k3 = velocity(l, s, w + 0.5 * dt * k2);
        let k4 = velocity(l, s, w + dt * k3);
        w += dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4);
    }
    w
}

/// Time at which the RK4 gradient flow from `w0 < target < s` first reaches `target`
/// (step `dt`, crossing located by linear interpolation).
fn rk4_time_to(l: f64, s: f64, w0: f64, target: f64, dt: f64) -> f64 {
    let (mut t, mut w) = (0.0, w0);
    loop {
        let next = rk4_flow(l, s, w, dt, 1);
        if next >= target {
            return t + dt * (target - w) / (next - w);
        }
        (t, w) = (t + dt, next);
        assert!(t < 1e4, "the flow never reached {target}");
    }
}

/// Maximiser of `f` on `(lo, hi)`: a dense scan, then golden-section refinement.
fn argmax(f: impl Fn(f64) -> f64, lo: f64, hi: f64) -> f64 {
    let n = 10_000;
    let h = (hi - lo) / n as f64;
    let best = (1..n).map(|i| lo + h * i as f64).max_by(|a, b| f(*a).total_cmp(&f(*b))).unwrap();
    let (mut a, mut b) = (best - h, best + h);
    let g = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..200 {
        let (c, d) = (b - g * (b - a), a + g * (b - a));
        if f(c) > f(d) { b = d } else { a = c }
    }
    0.5 * (a + b)
}

/// `q(w) = 2 (s − w)² + σ²`, the projected gradient's variance.
fn q(s: f64, sigma: f64, w: f64) -> f64 {
    2.0 * (s - w) * (s - w) + sigma * sigma
}

/// Mean and variance of the zero-flux stationary density of the Itô SDE
/// `dw = A dt + sqrt(D) dB`, `p ∝ exp(∫_s^w 2A/D) / D`, with the note's coefficients
/// `A = L w^{2−2/L}(s − w) + (η/2B) L(L−1) w^{3−4/L} q(w)` and `D = (η/B) L² w^{4−4/L} q(w)`,
/// by the trapezoid rule on a uniform grid of `s ± 20 √T`.
fn zero_flux_moments(l: f64, s: f64, sigma: f64, lr: f64, batch: f64, temperature: f64) -> (f64, f64) {
    let k = lr / batch;
    let drift = |w: f64| velocity(l, s, w) + k / 2.0 * l * (l - 1.0) * w.powf(3.0 - 4.0 / l) * q(s, sigma, w);
    let diffusion = |w: f64| k * l * l * w.powf(4.0 - 4.0 / l) * q(s, sigma, w);
    let ratio = |w: f64| 2.0 * drift(w) / diffusion(w);
    let half = 40_000usize;
    let h = 20.0 * temperature.sqrt() / half as f64;
    let w: Vec<f64> = (0..=2 * half).map(|i| s + h * (i as f64 - half as f64)).collect();
    // Cumulative ∫_s^w 2A/D outward from the centre.
    let mut exponent = vec![0.0; w.len()];
    for i in half + 1..w.len() {
        exponent[i] = exponent[i - 1] + 0.5 * h * (ratio(w[i - 1]) + ratio(w[i]));
    }
    for i in (0..half).rev() {
        exponent[i] = exponent[i + 1] - 0.5 * h * (ratio(w[i]) + ratio(w[i + 1]));
    }
    let p: Vec<f64> =
        w.iter().zip(&exponent).map(|(&wi, &e)| (e - diffusion(wi).ln() + diffusion(s).ln()).exp()).collect();
    let trap = |f: &dyn Fn(usize) -> f64| -> f64 {
        (0..w.len()).map(|i| if i == 0 || i + 1 == w.len() { 0.5 } else { 1.0 } * f(i)).sum::<f64>() * h
    };
    let z = trap(&|i| p[i]);
    let mean = trap(&|i| p[i] * w[i]) / z;
    let variance = trap(&|i| p[i] * (w[i] - mean) * (w[i] - mean)) / z;
    (mean, variance)
}

#[test]
fn gf_at_depth_2_is_the_logistic_curve() {
    let (s, w0, t) = (2.0f64, 0.01f64, 1.5f64);
    let r = report(&["gf", "--depth", "2", "--s", "2", "--w0", "0.01", "--t", "1.5"]);
    let expected = s / (1.0 + (s / w0 - 1.0) * (-2.0 * s * t).exp());
    assert_close(num(&r, "w"), expected, 1e-12, "w(t)");
    // At t = 0 the flow has not moved.
    let r = report(&["gf", "--depth", "2", "--s", "2", "--w0", "0.01", "--t", "0"]);
    assert_close(num(&r, "w"), w0, 1e-15, "w(0)");
}

#[test]
fn gf_at_depths_1_and_3_matches_the_exponential_and_rk4() {
    // L = 1: w = s + (w0 − s) e^{−t}, any real start.
    let r = report(&["gf", "--depth", "1", "--s", "1.5", "--w0", "-0.5", "--t", "0.7"]);
    assert_close(num(&r, "w"), 1.5 + (-0.5 - 1.5) * (-0.7f64).exp(), 1e-12, "w(t) at L = 1");
    // L = 3: an independent RK4 integration of ẇ = 3 w^{4/3} (s − w).
    let r = report(&["gf", "--depth", "3", "--s", "1", "--w0", "0.05", "--t", "2"]);
    let expected = rk4_flow(3.0, 1.0, 0.05, 2.0, 20_000);
    assert!(expected > 0.1 && expected < 0.9, "the test should sit mid-transition, w = {expected}");
    assert_close(num(&r, "w"), expected, 1e-9, "w(t) at L = 3");
}

#[test]
fn peak_at_depth_2_without_noise() {
    let (s, w0, rho) = (1.0f64, 1e-3f64, 0.9f64);
    let r =
        report(&["peak", "--depth", "2", "--s", "1", "--sigma", "0", "--lr", "0.001", "--batch", "1", "--w0", "0.001"]);
    assert_eq!(r["peak_exists"], Value::Bool(true));
    assert_eq!(r["coordinate"], "w");
    // w_peak = 2(L − 1)s/(3L − 2) = 0.5 and σ²_max = 2s²/(c(c + 2)) with c = 4 − 4/L = 2.
    assert_close(num(&r, "w_peak"), 0.5, 1e-14, "w_peak");
    assert_close(num(&r, "sigma2_max"), 2.0 / (2.0 * 4.0), 1e-14, "sigma2_max");
    // Logistic times: t(w) = (1/2s) ln(w (s − w0) / (w0 (s − w))).
    let time = |w: f64| (w * (s - w0) / (w0 * (s - w))).ln() / (2.0 * s);
    assert_close(num(&r, "t_peak"), time(0.5), 1e-12, "t_peak");
    assert_close(num(&r, "t_learned"), time(rho * s), 1e-12, "t_learned");
    assert_close(num(&r, "plateau_time"), (s / w0).ln() / (2.0 * s), 1e-12, "plateau_time");
    assert_eq!(r["peak_before_learned"], Value::Bool(true));
    // Following the flow for t_peak lands on the peak.
    let t_peak = num(&r, "t_peak").to_string();
    let g = report(&["gf", "--depth", "2", "--s", "1", "--w0", "0.001", "--t", &t_peak]);
    assert_close(num(&g, "w"), 0.5, 1e-10, "w(t_peak)");
}

#[test]
fn peak_defaults_are_the_mode_defaults() {
    // Omitted flags: L = 2, s = 1, σ = 0, ρ = 0.9, coordinate w.
    let bare = report(&["peak", "--w0", "0.001"]);
    let full = report(&[
        "peak",
        "--depth",
        "2",
        "--s",
        "1",
        "--sigma",
        "0",
        "--lr",
        "0.001",
        "--batch",
        "1",
        "--w0",
        "0.001",
        "--rho",
        "0.9",
        "--coordinate",
        "w",
    ]);
    assert_eq!(bare, full);
}

#[test]
fn peak_at_depth_3_has_the_discriminant_bound() {
    let s = 1.5f64;
    let c = 4.0 - 4.0 / 3.0;
    let bound = 2.0 * s * s / (c * (c + 2.0));
    let r = report(&["peak", "--depth", "3", "--s", "1.5", "--sigma", "0", "--w0", "0.01"]);
    assert_close(num(&r, "sigma2_max"), bound, 1e-13, "sigma2_max");

    // Just above the bound: no interior peak.
    let above = (bound.sqrt() * 1.001).to_string();
    let r = report(&["peak", "--depth", "3", "--s", "1.5", "--sigma", &above, "--w0", "0.01"]);
    assert_eq!(r["peak_exists"], Value::Bool(false));
    assert_eq!(r["w_peak"], Value::Null);
    assert_eq!(r["t_peak"], Value::Null);
    assert_eq!(r["peak_before_learned"], Value::Null);
    assert!(num(&r, "t_learned") > 0.0);

    // Below it: the peak maximises D ∝ w^c q(w), found here by direct maximisation, and the
    // flow (RK4) reaches it at t_peak.
    let sigma = 0.5 * bound.sqrt();
    let sigma_arg = sigma.to_string();
    let r = report(&["peak", "--depth", "3", "--s", "1.5", "--sigma", &sigma_arg, "--w0", "0.01"]);
    assert_eq!(r["peak_exists"], Value::Bool(true));
    let w_peak = argmax(|w| w.powf(c) * q(s, sigma, w), 0.0, s);
    assert_close(num(&r, "w_peak"), w_peak, 1e-7, "w_peak below the bound");
    let t_peak = rk4_time_to(3.0, s, 0.01, w_peak, 1e-4);
    assert_close(num(&r, "t_peak"), t_peak, 1e-6, "t_peak against RK4");
    let t_learned = rk4_time_to(3.0, s, 0.01, 0.9 * s, 1e-4);
    assert_close(num(&r, "t_learned"), t_learned, 1e-6, "t_learned against RK4");
    assert_eq!(r["peak_before_learned"], Value::Bool(true));
    // Plateau: a0^{2−L} / ((L − 2) s) with a0 = w0^{1/L}.
    assert_close(num(&r, "plateau_time"), 0.01f64.cbrt().recip() / s, 1e-12, "plateau_time");
}

#[test]
fn peak_in_the_per_layer_coordinate() {
    // σ = 0: w_peak = (L − 1)s/(2L − 1), reported end-to-end.
    let (l, s) = (3.0f64, 2.0f64);
    let r = report(&["peak", "--depth", "3", "--s", "2", "--w0", "0.01", "--coordinate", "a"]);
    assert_eq!(r["coordinate"], "a");
    assert_close(num(&r, "w_peak"), (l - 1.0) * s / (2.0 * l - 1.0), 1e-13, "w_peak (a)");
    // The maximiser of D_a(a) = (η/B) a^{2L−2} q(a^L), mapped to w = a^L, is the same point.
    let a_peak = argmax(|a| a.powf(2.0 * l - 2.0) * q(s, 0.0, a.powf(l)), 0.0, s.cbrt());
    assert_close(num(&r, "w_peak"), a_peak.powf(l), 1e-7, "w_peak (a) by maximisation");
    let c = 2.0 - 2.0 / l;
    assert_close(num(&r, "sigma2_max"), 2.0 * s * s / (c * (c + 2.0)), 1e-13, "sigma2_max (a)");
}

#[test]
fn peak_at_depth_1_does_not_exist() {
    let r = report(&["peak", "--depth", "1", "--s", "1", "--sigma", "0", "--w0", "0.1"]);
    assert_eq!(r["peak_exists"], Value::Bool(false));
    for key in ["w_peak", "t_peak", "sigma2_max", "plateau_time", "peak_before_learned"] {
        assert_eq!(r[key], Value::Null, "{key} at depth 1");
    }
    // L = 1: t = ln((s − w0)/(s − ρ s)).
    assert_close(num(&r, "t_learned"), (0.9f64 / 0.1).ln(), 1e-12, "t_learned at L = 1");
}

#[test]
fn stationary_without_noise_is_a_dirac_mass_at_s() {
    let r = report(&["stationary", "--depth", "3", "--s", "1.7", "--sigma", "0"]);
    assert_eq!(r["law"], "dirac");
    assert_eq!(num(&r, "mean"), 1.7);
    assert_eq!(num(&r, "variance"), 0.0);
    assert_eq!(num(&r, "boltzmann_t"), 0.0);
    for key in ["kl_to_boltzmann", "ks_to_boltzmann", "tv_to_boltzmann", "variance_over_t"] {
        assert_eq!(r[key], Value::Null, "{key} of a Dirac law");
    }
}

#[test]
fn stationary_with_noise_is_close_to_boltzmann() {
    let (l, s, sigma, lr, batch) = (2.0, 2.0, 0.5, 1e-3, 4.0);
    let r = report(&["stationary", "--depth", "2", "--s", "2", "--sigma", "0.5", "--lr", "0.001", "--batch", "4"]);
    assert_eq!(r["law"], "density");
    // T = L η σ² s^{2−2/L} / (2B) = 2 · 1e-3 · 0.25 · 2 / 8.
    let temperature = 1.25e-4;
    assert_close(num(&r, "boltzmann_t"), temperature, 1e-15, "boltzmann_t");
    let variance = num(&r, "variance");
    assert!((variance / temperature - 1.0).abs() < 0.02, "variance {variance} vs T {temperature}");
    assert_close(num(&r, "variance_over_t"), variance / temperature, 1e-12, "variance_over_t");
    assert!((num(&r, "mean") - s).abs() < 0.1 * temperature.sqrt(), "mean {} far from s", num(&r, "mean"));
    let ks = num(&r, "ks_to_boltzmann");
    assert!((0.0..0.01).contains(&ks), "ks {ks}");
    let tv = num(&r, "tv_to_boltzmann");
    assert!((0.0..0.02).contains(&tv), "tv {tv}");
    let kl = num(&r, "kl_to_boltzmann");
    assert!((0.0..1e-3).contains(&kl), "kl {kl}");
    // The moments agree with an independent quadrature of the SDE's zero-flux density.
    let (mean, var) = zero_flux_moments(l, s, sigma, lr, batch, temperature);
    assert_close(num(&r, "mean"), mean, 1e-9, "mean against the zero-flux quadrature");
    assert!((variance / var - 1.0).abs() < 1e-5, "variance {variance} vs quadrature {var}");
}

#[test]
fn without_json_the_report_is_a_key_value_listing() {
    let out = modewise(&["theory", "stationary", "--sigma", "0"]);
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines.contains(&"law: dirac"), "{}", out.stdout);
    assert!(lines.contains(&"mean: 1.0"), "{}", out.stdout);
    let keys: Vec<&str> = lines.iter().map(|line| line.split_once(": ").expect("key: value").0).collect();
    let json = report(&["stationary", "--sigma", "0"]);
    let mut expected: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    expected.sort_unstable();
    assert_eq!(sorted, expected);
}

/// Asserts that `args` exit with `status`, print nothing on stdout and exactly one non-empty
/// line on stderr that contains `needle`.
fn assert_fails(args: &[&str], status: i32, needle: &str) {
    let out = modewise(args);
    assert_eq!(out.status, Some(status), "{args:?}: stderr {:?}", out.stderr);
    assert!(out.stdout.is_empty(), "{args:?} wrote to stdout: {:?}", out.stdout);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: stderr is not one line: {:?}", out.stderr);
    assert!(lines[0].starts_with("error: ") && lines[0].len() > "error: ".len(), "{args:?}: {:?}", lines[0]);
    assert!(lines[0].contains(needle), "{args:?}: {:?} does not mention {needle:?}", lines[0]);
}

#[test]
fn invalid_parameters_exit_2_with_one_line_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["theory", "stationary", "--depth", "0"], "--depth"),
        (&["theory", "stationary", "--s", "-1"], "--s"),
        (&["theory", "stationary", "--s", "nan"], "--s"),
        (&["theory", "stationary", "--sigma", "-0.5"], "--sigma"),
        (&["theory", "stationary", "--lr", "0"], "--lr"),
        (&["theory", "stationary", "--batch", "0"], "--batch"),
        (&["theory", "peak", "--depth", "2", "--w0", "0"], "--w0"),
        (&["theory", "peak", "--w0", "-1e-3"], "--w0"),
        (&["theory", "peak", "--w0", "0.1", "--rho", "1"], "--rho"),
        (&["theory", "gf", "--w0", "0.1", "--t", "-1"], "--t"),
        (&["theory", "gf", "--s", "inf", "--w0", "0.1", "--t", "1"], "--s"),
    ];
    for (args, flag) in cases {
        assert_fails(args, 2, flag);
    }
    // The message is the theory's rule, naming the flag first.
    let out = modewise(&["theory", "stationary", "--depth", "0", "--json"]);
    assert_eq!(out.stderr, "error: --depth: must be at least 1 (got 0)\n");
}

#[test]
fn malformed_arguments_exit_2_with_one_line_naming_the_argument() {
    let cases: &[(&[&str], &str)] = &[
        (&["theory", "peak", "--w0", "0.1", "--coordinate", "x"], "coordinate"),
        (&["theory", "stationary", "--depth", "abc"], "depth"),
        (&["theory", "stationary", "--depth", "-1"], "depth"),
        (&["theory", "stationary", "--batch", "1.5"], "batch"),
        (&["theory", "stationary", "--bogus"], "bogus"),
        (&["theory", "peak", "--depth", "2"], "w0"),
        (&["theory", "gf", "--w0", "0.1"], "--t"),
        (&["theory", "gf", "--w0", "0.1", "--t"], "--t"),
        (&["theory", "frobnicate"], "frobnicate"),
        (&["theory"], "subcommand"),
        // The theory crate's halving bound (modewise_theory::refine::MAX_HALVINGS = 16).
        (&["theory", "sde", "--w0", "0.1", "--t-grid", "0:1:3", "--max-halvings", "17"], "max-halvings"),
        (&["theory", "sde", "--w0", "0.1", "--t-grid", "0:1:3", "--max-halvings", "0"], "max-halvings"),
    ];
    for (args, needle) in cases {
        assert_fails(args, 2, needle);
    }
}

#[test]
fn numerical_failures_exit_1_with_one_line() {
    // σ = 1, η = 10, B = 1 at L = 2: B s/(η q(0)) = 1/30 ≤ 1/2, no normalisable density.
    assert_fails(&["theory", "stationary", "--sigma", "1", "--lr", "10"], 1, "stationary density");
}

#[test]
fn help_and_version_exit_0_on_stdout() {
    for args in [&["--help"][..], &["theory", "--help"], &["theory", "peak", "--help"], &["theory", "gf", "-h"]] {
        let out = modewise(args);
        assert_eq!(out.status, Some(0), "{args:?}: {}", out.stderr);
        assert!(out.stdout.contains("Usage:"), "{args:?}: {}", out.stdout);
        assert!(out.stderr.is_empty(), "{args:?}: {}", out.stderr);
    }
    let out = modewise(&["theory", "peak", "--help"]);
    for flag in ["--depth", "--s", "--sigma", "--lr", "--batch", "--w0", "--coordinate", "--rho", "--json"] {
        assert!(out.stdout.contains(flag), "peak help lacks {flag}");
    }
    let out = modewise(&["--version"]);
    assert_eq!(out.status, Some(0));
    assert!(out.stdout.starts_with("modewise "), "{}", out.stdout);
}

/// Asserts a printed number equals the library's to within 2 ulp (serde_json's parser is not
/// correctly rounded without its `float_roundtrip` feature; the printed text is the shortest
/// round trip).
fn same(printed: &Value, library: f64, what: &str) {
    let p = printed.as_f64().unwrap_or_else(|| panic!("{what}: not a number: {printed}"));
    assert!((p - library).abs() <= 2.0 * f64::EPSILON * library.abs(), "{what}: printed {p}, library {library}");
}

/// Runs `modewise theory <args>` expecting a table, and parses it: JSON lines, or CSV read
/// back into the same JSON values (numbers, booleans, empty for null, text).
fn table(args: &[&str]) -> Vec<serde_json::Map<String, Value>> {
    let mut all = vec!["theory"];
    all.extend_from_slice(args);
    let out = modewise(&all);
    assert_eq!(out.status, Some(0), "{all:?} failed: {}", out.stderr);
    assert!(out.stderr.is_empty(), "{all:?} wrote to stderr: {}", out.stderr);
    if args.contains(&"jsonl") {
        return out
            .stdout
            .lines()
            .map(|l| match serde_json::from_str(l).unwrap() {
                Value::Object(m) => m,
                other => panic!("not an object: {other}"),
            })
            .collect();
    }
    let mut lines = out.stdout.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    lines
        .map(|l| {
            // No quoted field holds a comma in the numeric tables checked here but `scheme`.
            let mut fields = Vec::new();
            let mut rest = l;
            while !rest.is_empty() || fields.len() < header.len() {
                if let Some(q) = rest.strip_prefix('"') {
                    let end = q.find('"').unwrap();
                    fields.push(Value::String(q[..end].into()));
                    rest = q[end + 1..].strip_prefix(',').unwrap_or("");
                } else {
                    let (f, r) = rest.split_once(',').unwrap_or((rest, ""));
                    fields.push(if f.is_empty() {
                        Value::Null
                    } else {
                        serde_json::from_str(f).unwrap_or_else(|_| Value::String(f.into()))
                    });
                    rest = r;
                }
            }
            assert_eq!(fields.len(), header.len(), "{l}");
            header.iter().map(|h| h.to_string()).zip(fields).collect()
        })
        .collect()
}

#[test]
fn gf_table_matches_the_library_and_echoes_its_inputs() {
    use modewise_theory::{Coordinate, ModeParams};
    let mode = ModeParams { depth: 3, s: 2.0, sigma: 0.3, lr: 0.02, batch: 8 }.check().unwrap();
    let args = [
        "gf", "--depth", "3", "--s", "2", "--sigma", "0.3", "--lr", "0.02", "--batch", "8", "--w0", "0.01", "--t-grid",
        "0:10:11",
    ];
    for format in ["csv", "jsonl"] {
        let rows = table(&[&args[..], &["--format", format]].concat());
        assert_eq!(rows.len(), 11, "{format}");
        for (i, r) in rows.iter().enumerate() {
            let t = i as f64;
            let w = mode.gf_trajectory(0.01, t).unwrap();
            same(&r["t"], t, "t");
            same(&r["w"], w, "w");
            same(&r["diffusion"], mode.diffusion(Coordinate::EndToEnd, w), "diffusion");
            assert_eq!(
                (r["depth"].as_u64(), r["s"].as_f64(), r["sigma"].as_f64(), r["lr"].as_f64(), r["batch"].as_u64()),
                (Some(3), Some(2.0), Some(0.3), Some(0.02), Some(8))
            );
            assert_eq!(r["w0"].as_f64(), Some(0.01));
        }
    }
}

#[test]
fn sde_and_chain_tables_match_the_library() {
    use modewise_theory::{EnsembleParams, ModeParams, RefineParams, TimeGrid};
    let mode = ModeParams { depth: 2, s: 2.0, sigma: 0.5, lr: 0.05, batch: 4 }.check().unwrap();
    let sgd = ["--depth", "2", "--s", "2", "--sigma", "0.5", "--lr", "0.05", "--batch", "4", "--w0", "2"];
    let common = ["--paths", "500", "--seed", "9", "--t-grid", "1:3:5"];
    let grid = TimeGrid::from_times(vec![1.0, 1.5, 2.0, 2.5, 3.0]).unwrap();
    let params = EnsembleParams::new(500, 9, grid);
    // The chain.
    let chain = mode.ensemble(2.0, modewise_theory::Dynamics::Chain, &params).unwrap();
    let rows = table(&[&["chain"][..], &sgd, &common, &["--format", "csv"]].concat());
    assert_eq!(rows.len(), 5);
    for (i, r) in rows.iter().enumerate() {
        same(&r["t"], chain.times[i], "t");
        same(&r["mean"], chain.mean[i], "chain mean");
        same(&r["variance"], chain.variance[i], "chain variance");
        assert_eq!((r["dt"].as_f64(), r["paths"].as_u64(), r["seed"].as_u64()), (Some(0.05), Some(500), Some(9)));
    }
    // The refined SDE: the library's accepted level, its dt and the convergence flag.
    let refined =
        mode.sde_refined_or_finest(2.0, &RefineParams { max_halvings: 3, ..RefineParams::new(params) }).unwrap();
    let rows = table(&[&["sde"][..], &sgd, &common, &["--max-halvings", "3", "--format", "jsonl"]].concat());
    assert_eq!(rows.len(), 5);
    for (i, r) in rows.iter().enumerate() {
        same(&r["t"], refined.stats.times[i], "t");
        same(&r["mean"], refined.stats.mean[i], "SDE mean");
        same(&r["variance"], refined.stats.variance[i], "SDE variance");
        assert_eq!(r["dt"].as_f64(), Some(refined.dt));
        assert_eq!(r["converged"].as_bool(), Some(refined.converged));
        assert_eq!(r["scheme"].as_str(), Some("euler-maruyama, refined dt"));
    }
    assert!(refined.dt < 0.05, "the refinement halved dt at least once");
}

#[test]
fn table_flags_are_checked() {
    for (args, flag) in [
        (&["gf", "--w0", "0.1", "--t-grid", "0:1"][..], "--t-grid"),
        (&["chain", "--w0", "0.1", "--t-grid", "2:1:3"][..], "--t-grid"),
        (&["sde", "--w0", "0.1", "--t-grid", "0:1:3", "--fixed-dt-over-lr", "0"][..], "--fixed-dt-over-lr"),
    ] {
        let mut all = vec!["theory"];
        all.extend_from_slice(args);
        let out = modewise(&all);
        assert_eq!(out.status, Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(flag), "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty());
    }
}
