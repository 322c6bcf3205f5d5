//! `report.html`: one self-contained page per results directory (an experiment's, a sweep's,
//! and an index for a directory of experiments such as the demo's), with the figures inlined
//! as SVG, the spec, the verdicts with their criteria and intervals, a per-claim summary, the
//! run's metadata and how to load the tables. All text is HTML-escaped; the page has no script.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};

use crate::ExperimentError;
use crate::io::{read_metadata, write_atomic};
use crate::output::claim_lines;
use crate::report::{FIGURES, Results};
use crate::sweep::MANIFEST;
use crate::sweep_report::{FIGURES_DIR, SweepReport};
use crate::table::{Table, Verdict};

/// The file name of the page written into each results directory.
pub const REPORT_HTML: &str = "report.html";

/// The metadata keys shown in the page's "Run" section, in order (see `data/README.md`).
const METADATA_KEYS: [&str; 10] = [
    "modewise_version",
    "git_commit",
    "started_at",
    "ended_at",
    "host",
    "command_line",
    "threads",
    "device",
    "backend",
    "seeds",
];

/// The page's style sheet: readable tables, figures scaled to the window.
const STYLE: &str = "body{font-family:sans-serif;margin:1.5em auto;max-width:1400px;padding:0 1em;color:#111}\
table{border-collapse:collapse;font-size:13px;margin:.5em 0}\
td,th{border:1px solid #bbb;padding:2px 6px;text-align:left;vertical-align:top;white-space:nowrap}\
td.text{white-space:normal;min-width:16em;max-width:28em}div.scroll{overflow-x:auto}\
th{background:#eee}td.num{text-align:right;font-variant-numeric:tabular-nums}\
tr.unexpected td{background:#fde2e2}pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:12px}\
figure{margin:1em 0}figure svg{max-width:100%;height:auto;border:1px solid #ddd}\
figcaption{font-weight:bold;margin:.3em 0}";

/// Writes `report.html` into the results directory `dir` of one experiment, whose tables
/// `results` were read from it and whose figures (`*.svg`) are drawn in it; `shown` is the
/// directory as the reader will find it (the published path, where `dir` is a staging
/// directory). Returns the page's path.
pub fn write_report(dir: &Path, shown: &Path, results: &Results) -> Result<PathBuf, ExperimentError> {
    let metadata = read_metadata(&Table::Summary.path_in(dir))?;
    let name = spec_name(&metadata).unwrap_or_else(|| file_name(shown));
    let mut body = String::new();
    header(&mut body, &format!("modewise results: {name}"), shown);
    claims_section(&mut body, &results.verdicts);
    let figures = svg_files(dir)?;
    body.push_str("<h2 id=\"figures\">Figures</h2>\n");
    for figure in &figures {
        inline_figure(&mut body, dir, figure, figure)?;
    }
    if figures.is_empty() {
        body.push_str("<p>No figure was drawn.</p>\n");
    }
    verdicts_section(&mut body, &results.verdicts, &[]);
    run_section(&mut body, &metadata);
    loading_section(&mut body, shown, &tables_in(dir), false);
    if dir.join(Table::DoseResponse.name()).is_dir() {
        dose_hive_note(&mut body, shown);
    }
    spec_section(&mut body, "Spec (as run)", metadata_value(&metadata, "spec").unwrap_or_default());
    write_page(&dir.join(REPORT_HTML), &format!("modewise: {name}"), &body)
}

/// Writes `report.html` into the sweep directory `dir` from what [`crate::sweep_report::report_sweep`]
/// read and drew: the comparisons across points, every point's figures, the verdicts of all
/// points with their coordinates, the manifest as the spec, and the metadata of the first
/// point (each point's own is in its parts). Returns the page's path.
pub fn write_sweep_report(dir: &Path, report: &SweepReport) -> Result<PathBuf, ExperimentError> {
    let manifest = std::fs::read_to_string(dir.join(MANIFEST))
        .map_err(|source| ExperimentError::Io { path: dir.join(MANIFEST), source })?;
    let first = report.points.first().map(|p| p.run_index);
    // The metadata of the first point (each point's own is in its parts).
    let metadata = match first {
        Some(i) => read_metadata(&Table::Summary.part_path(dir, i))?,
        None => Vec::new(),
    };
    let name = manifest
        .parse::<toml::Table>()
        .ok()
        .and_then(|m| m.get("sweep")?.as_str().map(str::to_string))
        .and_then(|spec| spec_name(&[("spec".into(), spec)]))
        .unwrap_or_else(|| file_name(dir));
    let mut body = String::new();
    header(&mut body, &format!("modewise sweep: {name}"), dir);
    let _ = writeln!(body, "<p>{} complete points.</p>", report.points.len());
    let coordinates: Vec<Vec<(String, String)>> = report
        .points
        .iter()
        .map(|p| {
            let mut c = vec![("run_index".to_string(), p.run_index.to_string())];
            c.extend(p.coordinates.iter().map(|(k, _, v)| (format!("sweep_{k}"), v.clone())));
            c
        })
        .collect();
    let mut verdicts = Vec::new();
    let mut keys = Vec::new();
    for (point, coords) in report.points.iter().zip(&coordinates) {
        for v in &point.results.verdicts {
            verdicts.push(v.clone());
            keys.push(coords.clone());
        }
    }
    claims_section(&mut body, &verdicts);
    body.push_str("<h2 id=\"figures\">Figures</h2>\n<h3>Across the points</h3>\n");
    let figures = dir.join(FIGURES_DIR);
    for figure in svg_files(&figures)? {
        inline_figure(&mut body, &figures, &figure, &format!("{FIGURES_DIR}/{figure}"))?;
    }
    for (point, coords) in report.points.iter().zip(&coordinates) {
        let folder = figures.join(format!("run_index={}", point.run_index));
        let label: Vec<String> = coords.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        let _ = writeln!(body, "<details><summary>Point {}</summary>", text(&label.join(", ")));
        for figure in svg_files(&folder)? {
            let file = format!("{FIGURES_DIR}/run_index={}/{figure}", point.run_index);
            inline_figure(&mut body, &folder, &figure, &file)?;
        }
        body.push_str("</details>\n");
    }
    verdicts_section(&mut body, &verdicts, &keys);
    run_section(&mut body, &metadata);
    loading_section(&mut body, dir, &tables_in_sweep(dir), true);
    spec_section(&mut body, &format!("Sweep ({MANIFEST})"), &manifest);
    write_page(&dir.join(REPORT_HTML), &format!("modewise sweep: {name}"), &body)
}

/// Writes `report.html` into a directory of experiments' results directories (the demo's): a
/// link to each one's page (`experiments`: each directory with its verdicts) and its per-claim
/// lines; `shown` is the directory as the reader will find it. Returns the page's path.
pub fn write_index(
    dir: &Path,
    shown: &Path,
    experiments: &[(PathBuf, Vec<Verdict>)],
) -> Result<PathBuf, ExperimentError> {
    let mut body = String::new();
    header(&mut body, &format!("modewise results: {}", file_name(shown)), shown);
    body.push_str("<h2>Experiments</h2>\n<ul>\n");
    for (experiment, verdicts) in experiments {
        let name = file_name(experiment);
        let href = format!("{name}/{REPORT_HTML}");
        let expected = verdicts.iter().filter(|v| v.as_expected()).count();
        let _ = writeln!(
            body,
            "<li><a href=\"{}\">{}</a>: {expected} of {} verdicts as the theory expects<ul>",
            attr(&href),
            text(&name),
            verdicts.len()
        );
        for line in claim_lines(verdicts) {
            let _ = writeln!(body, "<li>{}</li>", text(&line));
        }
        body.push_str("</ul></li>\n");
    }
    body.push_str("</ul>\n");
    write_page(&dir.join(REPORT_HTML), &format!("modewise: {}", file_name(shown)), &body)
}

/// The last component of a path, as text.
fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// The value of a metadata key.
fn metadata_value<'a>(metadata: &'a [(String, String)], key: &str) -> Option<&'a str> {
    metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The experiment's name, from the spec in the metadata.
fn spec_name(metadata: &[(String, String)]) -> Option<String> {
    let spec: toml::Table = metadata_value(metadata, "spec")?.parse().ok()?;
    spec.get("name")?.as_str().map(str::to_string)
}

/// The page's heading and where its results are.
fn header(body: &mut String, title: &str, dir: &Path) {
    let _ = writeln!(body, "<h1>{}</h1>", text(title));
    let _ = writeln!(body, "<p>Results directory: <code>{}</code></p>", text(&dir.display().to_string()));
}

/// The per-claim summary and the findings (verdicts not as expected).
fn claims_section(body: &mut String, verdicts: &[Verdict]) {
    body.push_str("<h2 id=\"claims\">Claims</h2>\n");
    if verdicts.is_empty() {
        body.push_str("<p>No verdict (this experiment tests no claim).</p>\n");
        return;
    }
    let expected = verdicts.iter().filter(|v| v.as_expected()).count();
    let _ = writeln!(body, "<p>{expected} of {} verdicts as the theory expects.</p>\n<ul>", verdicts.len());
    for line in claim_lines(verdicts) {
        let _ = writeln!(body, "<li>{}</li>", text(&line));
    }
    body.push_str("</ul>\n");
    let unexpected: Vec<&Verdict> = verdicts.iter().filter(|v| !v.as_expected()).collect();
    if !unexpected.is_empty() {
        body.push_str("<p>Not as expected (findings):</p>\n<ul>\n");
        for v in unexpected {
            let what = if v.holds { "holds, expected to fail" } else { "fails" };
            let why = if v.premise.is_empty() { String::new() } else { format!(" ({})", v.premise) };
            let line = format!("{} k = {} {}: {what}{why}", v.run_id, v.k, v.quantity.name());
            let _ = writeln!(body, "<li>{}</li>", text(&line));
        }
        body.push_str("</ul>\n");
    }
}

/// The verdict table (every column of `summary`), each verdict with `keys[i]` (a sweep point's
/// coordinates) as leading columns where given.
fn verdicts_section(body: &mut String, verdicts: &[Verdict], keys: &[Vec<(String, String)>]) {
    if verdicts.is_empty() {
        return;
    }
    body.push_str("<h2 id=\"verdicts\">Verdicts</h2>\n");
    body.push_str(
        "<p>One row per verdict of <code>summary.parquet</code>: the measured value with its 95% interval \
         [ci_low, ci_high] over n seeds (or effective samples), the tolerance and the rule (criterion) it is \
         judged by. Rows whose outcome is not the one the theory expects are shaded.</p>\n",
    );
    body.push_str("<div class=\"scroll\"><table id=\"verdict-table\">\n<tr>");
    for (key, _) in keys.first().map_or(&[][..], Vec::as_slice) {
        let _ = write!(body, "<th>{}</th>", text(key));
    }
    for h in [
        "claim",
        "run_id",
        "k",
        "quantity",
        "predicted",
        "measured",
        "ci_low",
        "ci_high",
        "n",
        "tolerance",
        "criterion",
        "holds",
        "control",
        "expected",
        "premise",
    ] {
        let _ = write!(body, "<th>{h}</th>");
    }
    body.push_str("</tr>\n");
    for (i, v) in verdicts.iter().enumerate() {
        let class = if v.as_expected() { "" } else { " class=\"unexpected\"" };
        let _ = write!(body, "<tr{class}>");
        for (_, value) in keys.get(i).map_or(&[][..], Vec::as_slice) {
            let _ = write!(body, "<td>{}</td>", text(value));
        }
        let cells = [
            (v.claim.name().to_string(), false),
            (v.run_id.clone(), false),
            (v.k.to_string(), true),
            (v.quantity.name().to_string(), false),
            (number(v.predicted), true),
            (number(v.measured), true),
            (number(v.ci_low), true),
            (number(v.ci_high), true),
            (v.n.to_string(), true),
            (number(v.tolerance), true),
            (v.criterion.clone(), false),
            (yes_no(v.holds), false),
            (yes_no(v.control), false),
            (v.expected.name().to_string(), false),
            (v.premise.clone(), false),
        ];
        for (i, (cell, numeric)) in cells.into_iter().enumerate() {
            // The rule and the premise are sentences: they wrap.
            let class = if numeric {
                " class=\"num\""
            } else if i == 10 || i == 14 {
                " class=\"text\""
            } else {
                ""
            };
            let _ = write!(body, "<td{class}>{}</td>", text(&cell));
        }
        body.push_str("</tr>\n");
    }
    body.push_str("</table></div>\n");
}

/// A number in the verdict table: four significant digits (plain between 1e-3 and 1e4,
/// scientific otherwise), `—` where undefined (null).
fn number(v: f64) -> String {
    if !v.is_finite() {
        return "—".into();
    }
    if v == 0.0 {
        return "0".into();
    }
    let magnitude = v.abs().log10().floor();
    if (-3.0..4.0).contains(&magnitude) { format!("{v:.*}", (3.0 - magnitude) as usize) } else { format!("{v:.3e}") }
}

/// `yes` or `no`.
fn yes_no(b: bool) -> String {
    (if b { "yes" } else { "no" }).into()
}

/// The figures (`*.svg`) of `dir`: those of [`FIGURES`] in its order, then any other by name.
fn svg_files(dir: &Path) -> Result<Vec<String>, ExperimentError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(ExperimentError::Io { path: dir.to_path_buf(), source }),
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.ends_with(".svg") && !n.starts_with('.'))
        .collect();
    let rank = |n: &str| FIGURES.iter().position(|(f, _)| *f == n).unwrap_or(FIGURES.len());
    names.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
    Ok(names)
}

/// Inlines the figure `name` of `dir` (an SVG document, as the figures module writes it),
/// labelled with its path relative to the page, `file`.
fn inline_figure(body: &mut String, dir: &Path, name: &str, file: &str) -> Result<(), ExperimentError> {
    let path = dir.join(name);
    let svg = std::fs::read_to_string(&path).map_err(|source| ExperimentError::Io { path: path.clone(), source })?;
    // An XML declaration or doctype is not allowed inside HTML: inline from the <svg> element.
    let svg = svg.find("<svg").map_or(svg.as_str(), |at| &svg[at..]);
    let _ = writeln!(
        body,
        "<figure data-file=\"{}\"><figcaption>{}</figcaption>\n{}\n</figure>",
        attr(file),
        text(file),
        svg.trim_end()
    );
    Ok(())
}

/// The run's metadata (the keys of [`METADATA_KEYS`] present).
fn run_section(body: &mut String, metadata: &[(String, String)]) {
    body.push_str("<h2 id=\"run\">Run</h2>\n<table id=\"run-metadata\">\n");
    for key in METADATA_KEYS {
        if let Some(value) = metadata_value(metadata, key) {
            let _ = writeln!(body, "<tr><th>{key}</th><td><code>{}</code></td></tr>", text(value));
        }
    }
    body.push_str("</table>\n");
}

/// The tables (`*.parquet`, or a dose experiment's `dose_response/` Hive dataset) of an
/// experiment's directory, in [`Table::ALL`] order.
fn tables_in(dir: &Path) -> Vec<Table> {
    Table::ALL.iter().copied().filter(|t| t.path_in(dir).is_file() || dir.join(t.name()).is_dir()).collect()
}

/// The tables of a sweep's directory (those with a folder).
fn tables_in_sweep(dir: &Path) -> Vec<Table> {
    Table::ALL.iter().copied().filter(|t| dir.join(t.name()).is_dir()).collect()
}

/// How to load the tables in polars, pandas and DuckDB; a sweep's are Hive-partitioned by
/// `run_index`.
fn loading_section(body: &mut String, dir: &Path, tables: &[Table], hive: bool) {
    body.push_str("<h2 id=\"load\">How to load these tables</h2>\n");
    let list: Vec<String> = tables.iter().map(|t| t.name().to_string()).collect();
    let _ = writeln!(
        body,
        "<p>Tables: {} (columns in the repository's <code>data/README.md</code>).{}</p>",
        text(&list.join(", ")),
        if hive {
            " Each is a Hive-partitioned dataset (<code>TABLE/run_index=I/part.parquet</code>); \
             the partition key becomes a column."
        } else {
            ""
        }
    );
    let dir = dir.display().to_string().replace('\\', "\\\\").replace('"', "\\\"");
    let snippet = if hive {
        format!(
            "DIR = \"{dir}\"\n\n# polars\nimport polars as pl\nsummary = pl.scan_parquet(f\"{{DIR}}/summary/**/*.parquet\", \
             hive_partitioning=True).collect()\ntrajectories = pl.scan_parquet(f\"{{DIR}}/trajectories/**/*.parquet\", \
             hive_partitioning=True)\n\n# pandas (through pyarrow)\nimport pandas as pd\nsummary = \
             pd.read_parquet(f\"{{DIR}}/summary\")\n\n# DuckDB\nimport duckdb\nsummary = duckdb.sql(f\"SELECT * FROM \
             read_parquet('{{DIR}}/summary/*/*.parquet', hive_partitioning = true)\").df()\n"
        )
    } else {
        format!(
            "DIR = \"{dir}\"\n\n# polars\nimport polars as pl\nsummary = pl.read_parquet(f\"{{DIR}}/summary.parquet\")\n\
             trajectories = pl.scan_parquet(f\"{{DIR}}/trajectories.parquet\")\n\n# pandas\nimport pandas as pd\nsummary \
             = pd.read_parquet(f\"{{DIR}}/summary.parquet\")\n\n# DuckDB\nimport duckdb\nsummary = \
             duckdb.sql(f\"SELECT * FROM read_parquet('{{DIR}}/summary.parquet')\").df()\n"
        )
    };
    let _ = writeln!(body, "<pre id=\"load-snippet\">{}</pre>", text(&snippet));
}

/// How to read a dose experiment's `dose_response` Hive dataset (in `dir` once published).
fn dose_hive_note(body: &mut String, dir: &Path) {
    let dir = dir.display().to_string().replace('\\', "\\\\").replace('"', "\\\"");
    let _ = writeln!(
        body,
        "<p><code>dose_response</code> is a Hive-partitioned dataset, one part per variant \
         (<code>dose_response/run_index=I/part.parquet</code>, the partition key becomes a column):</p>"
    );
    let snippet = format!(
        "import polars as pl\ndose = pl.scan_parquet(\"{dir}/dose_response/**/*.parquet\", hive_partitioning=True).collect()\n"
    );
    let _ = writeln!(body, "<pre id=\"load-dose\">{}</pre>", text(&snippet));
}

/// The spec as text.
fn spec_section(body: &mut String, title: &str, spec: &str) {
    let _ = writeln!(body, "<h2 id=\"spec\">{}</h2>\n<pre>{}</pre>", text(title), text(spec));
}

/// Writes the page atomically; returns its path.
fn write_page(path: &Path, title: &str, body: &str) -> Result<PathBuf, ExperimentError> {
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n\
         <style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        text(title)
    );
    write_atomic(path, |file| {
        file.write_all(page.as_bytes()).map_err(|source| ExperimentError::Io { path: path.to_path_buf(), source })
    })?;
    Ok(path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_numbers_are_compact() {
        let mut body = String::new();
        let v = Verdict {
            run_id: "<script>alert(1)</script>".into(),
            criterion: "|measured − pred| ≤ tol & CI".into(),
            predicted: 1.5,
            measured: f64::NAN,
            ..Verdict::default()
        };
        claims_section(&mut body, std::slice::from_ref(&v));
        verdicts_section(&mut body, &[v], &[]);
        assert!(!body.contains("<script>"), "{body}");
        assert!(body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{body}");
        assert!(body.contains("≤ tol &amp; CI"), "{body}");
        assert!(body.contains(">1.500<") && body.contains(">—<"), "{body}");
        assert_eq!(
            [number(0.0), number(-0.012346), number(12344.0), number(2.5e-7)],
            ["0", "-0.01235", "1.234e4", "2.500e-7"]
        );
    }

    #[test]
    fn metadata_gives_the_spec_name() {
        let meta = vec![("spec".to_string(), "name = \"demo-saddle\"\nanalysis = \"saddle\"\n".to_string())];
        assert_eq!(spec_name(&meta).as_deref(), Some("demo-saddle"));
        assert_eq!(spec_name(&[]), None);
    }
}
