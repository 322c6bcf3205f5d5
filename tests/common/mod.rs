//! Helpers shared by the end-to-end tests: running the binary and comparing results
//! directories table by table.

#![allow(dead_code)]

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use modewise_experiments::read_parquet;

/// The longest an end-to-end command may run before a test calls it hung: 300 s, or
/// `MODEWISE_TEST_HUNG_SECS` (it is no timing assertion: every command here takes seconds;
/// only a hang reaches it).
pub fn hung() -> Duration {
    let secs = std::env::var("MODEWISE_TEST_HUNG_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
    Duration::from_secs(secs)
}

/// The binary under test: `MODEWISE_TEST_BIN` when set (to run these tests against another
/// build, e.g. to see a test fail without its fix), else this package's.
pub fn binary() -> PathBuf {
    std::env::var_os("MODEWISE_TEST_BIN").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_modewise")), PathBuf::from)
}

/// The binary under test, with Slurm's shard variables, the thread count and the memory
/// limit cleared.
pub fn command(args: &[&str]) -> Command {
    let mut c = Command::new(binary());
    c.args(args);
    for var in [
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_COUNT",
        "SLURM_ARRAY_TASK_MIN",
        "SLURM_ARRAY_TASK_MAX",
        "RAYON_NUM_THREADS",
        "MODEWISE_MEMORY_LIMIT",
    ] {
        c.env_remove(var);
    }
    c
}

/// Runs `c` to completion, or kills it and fails the test after [`hung`].
pub fn output_within(c: &mut Command) -> Output {
    try_output_within(c).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `c` to completion, or kills it after [`hung`] and says so.
pub fn try_output_within(c: &mut Command) -> Result<Output, String> {
    let mut running = Running::start(c);
    let start = Instant::now();
    while running.child.try_wait().unwrap().is_none() {
        if start.elapsed() > hung() {
            return Err(format!("{c:?} hung: it did not end within {} s", hung().as_secs()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, stderr, stdout) = running.finish();
    Ok(Output { status, stdout: stdout.into_bytes(), stderr: stderr.into_bytes() })
}

/// A running binary whose standard error is read line by line as it comes; killed if the test
/// drops it before it ends.
pub struct Running {
    /// The process.
    pub child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    stdout: Option<std::thread::JoinHandle<String>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Running {
    /// Starts `c` with its standard output and error captured.
    pub fn start(c: &mut Command) -> Self {
        let mut child = c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("the binary starts");
        let (send, lines) = std::sync::mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let mut out = child.stdout.take().unwrap();
        let stdout = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut out, &mut text);
            text
        });
        Self { child, lines, seen: Vec::new(), stdout: Some(stdout) }
    }

    /// Waits for a line of standard error containing `needle` (failing if the process ends
    /// first, or after [`hung`]).
    pub fn wait_for_line(&mut self, needle: &str) {
        let start = Instant::now();
        loop {
            match self.lines.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => {
                    let found = line.contains(needle);
                    self.seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("the process ended before printing `{needle}`: {}", self.seen.join("\n"))
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            assert!(
                start.elapsed() < hung(),
                "no line `{needle}` within {} s: {}",
                hung().as_secs(),
                self.seen.join("\n")
            );
        }
    }

    /// Sends `signal` (`libc::SIGINT`, `libc::SIGTERM`, …) to the process.
    pub fn signal(&self, signal: i32) {
        send_signal(&self.child, signal);
    }

    /// Waits for the process to end; returns its status, all of its standard error and its
    /// standard output.
    pub fn finish(mut self) -> (ExitStatus, String, String) {
        let status = self.child.wait().unwrap();
        while let Ok(line) = self.lines.recv() {
            self.seen.push(line);
        }
        let stdout = self.stdout.take().map(|h| h.join().unwrap()).unwrap_or_default();
        (status, self.seen.join("\n") + "\n", stdout)
    }
}

/// Sends `signal` to a child that has not been waited for.
pub fn send_signal(child: &Child, signal: i32) {
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on a child we own and have not yet waited for.
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(rc, 0, "kill({signal})");
}

/// Every float value in every Parquet file under `dir` that is NaN or infinite, as
/// `file column: count` (nulls are not values).
pub fn non_finite(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for f in files(dir).into_iter().filter(|f| f.extension().is_some_and(|e| e == "parquet")) {
        let df = read_parquet(&dir.join(&f)).unwrap();
        for c in df.columns() {
            if !c.dtype().is_float() {
                continue;
            }
            let c = c.cast(&polars::prelude::DataType::Float64).unwrap();
            let bad = c.f64().unwrap().iter().flatten().filter(|v| !v.is_finite()).count();
            if bad > 0 {
                found.push(format!("{} {}: {bad}", f.display(), c.name()));
            }
        }
    }
    found
}

/// Every entry under `dir` (directories too), as paths relative to it, sorted.
pub fn entries(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            out.push(path.strip_prefix(root).expect("under root").to_path_buf());
            if path.is_dir() && !path.is_symlink() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
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
/// same data bit for bit (wall-clock columns aside) and the same key-value metadata (but the
/// keys of [`modewise_experiments::INVOCATION_KEYS`]: when and how each command ran).
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
        // The same metadata, but when and how each command ran.
        let meta = |p: &Path| {
            let mut m = modewise_experiments::read_metadata(p).unwrap();
            m.retain(|(k, _)| !modewise_experiments::INVOCATION_KEYS.contains(&k.as_str()));
            m
        };
        assert_eq!(meta(&a.join(f)), meta(&b.join(f)), "{}: metadata", f.display());
        parquet += 1;
    }
    assert!(parquet > 0, "no Parquet file in {}", a.display());
}

/// The headless Chromium of the system (`chromium`, or `chromium-browser`), or `None` where it
/// is missing: then the caller's test says so and skips, unless MODEWISE_REQUIRE_CHROMIUM=1
/// (CI installs it), where a missing browser fails the test.
pub fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser"].iter().find_map(|name| {
        let ok = Command::new(name).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
        ok.is_ok_and(|s| s.success()).then(|| PathBuf::from(name))
    });
    if found.is_none() {
        assert!(
            std::env::var("MODEWISE_REQUIRE_CHROMIUM").as_deref() != Ok("1"),
            "MODEWISE_REQUIRE_CHROMIUM=1 but no chromium is installed (apt-get install chromium)"
        );
        eprintln!("skipped: no chromium on this machine (set MODEWISE_REQUIRE_CHROMIUM=1 to require it)");
    }
    found
}

/// Loads the page `page` in headless Chromium (no network, a fresh profile) with `action`
/// (`--dump-dom`, or `--screenshot=PATH`); returns what it printed on stdout (the DOM after
/// loading, for `--dump-dom`) and the console messages it logged (JavaScript errors, failed
/// loads), which a page that loads cleanly has none of.
pub fn chromium_load(browser: &Path, page: &Path, action: &str) -> (String, Vec<String>) {
    let profile = tempfile::tempdir().unwrap();
    let mut c = Command::new(browser);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--window-size=1400,2000",
        "--enable-logging=stderr",
        "--v=0",
    ]);
    c.arg(format!("--user-data-dir={}", profile.path().display()));
    c.arg(action);
    c.arg(format!("file://{}", page.canonicalize().unwrap().display()));
    let o = output_within(&mut c);
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "chromium failed on {}: {stderr}", page.display());
    let console = stderr.lines().filter(|l| l.contains(":CONSOLE")).map(str::to_string).collect();
    (String::from_utf8_lossy(&o.stdout).into_owned(), console)
}

/// Checks `report.html` of `dir` in headless Chromium: it loads without console errors, and
/// every figure file in `figures` (paths relative to `dir`) is in the DOM as an `<svg>` element
/// inside the `<figure>` that names it; returns the DOM. `None` where Chromium is missing (see
/// [`chromium`]).
pub fn check_report_in_browser(dir: &Path, figures: &[String]) -> Option<String> {
    let browser = chromium()?;
    let page = dir.join("report.html");
    assert!(page.is_file(), "{} missing", page.display());
    let (dom, console) = chromium_load(&browser, &page, "--dump-dom");
    assert!(console.is_empty(), "the page logged: {console:?}");
    assert!(dom.contains("</html>"), "a whole document: {}", &dom[..dom.len().min(300)]);
    for figure in figures {
        let at = dom.find(&format!("data-file=\"{figure}\"")).unwrap_or_else(|| panic!("{figure} not in the DOM"));
        let rest = &dom[at..];
        let end = rest.find("</figure>").expect("the figure ends");
        assert!(rest[..end].contains("<svg"), "{figure} is in the DOM as an <svg>");
    }
    assert!(dom.matches("<svg").count() >= figures.len(), "one <svg> per figure at least");
    Some(dom)
}
