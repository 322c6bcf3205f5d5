//! End-to-end tests of what a person opens: `report.html` in every results directory (an
//! experiment's, the directory of several, a sweep's), loaded in a real headless browser, and the
//! figures in the formats asked for (`--format png,pdf`), read back as images and documents.

mod common;

use std::path::Path;
use std::process::Output;

use common::stderr;

const SPEC: &str = r#"
name = "tiny"
analysis = "saddle"
[train]
dims = [4, 6, 4]
lr = 0.05
batch = 8
steps = 200
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
sde_paths = 40
chain_paths = 40
"#;

fn modewise(args: &[&str]) -> Output {
    common::output_within(&mut common::command(args))
}

/// The names of the files of `dir` ending in `.ext`, sorted.
fn files(dir: &Path, ext: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(&format!(".{ext}")))
        .collect();
    names.sort();
    names
}

/// The `width` and `height` attributes of an SVG document's root element, in pixels.
fn svg_size(svg: &str) -> (u32, u32) {
    let root = &svg[svg.find("<svg").unwrap()..];
    let root = &root[..root.find('>').unwrap()];
    let get = |name: &str| {
        let at = root.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        root[at..at + root[at..].find('"').unwrap()].parse::<u32>().unwrap()
    };
    (get("width"), get("height"))
}

/// Checks that `NAME.png` beside each `NAME.svg` of `dir` is a PNG image of the SVG's size, and
/// (with `pdf`) that `NAME.pdf` is a one-page PDF document of it; without, that there is none.
fn check_converted(dir: &Path, pdf: bool) {
    let svgs = files(dir, "svg");
    assert!(!svgs.is_empty(), "figures in {}", dir.display());
    for svg in &svgs {
        let (w, h) = svg_size(&std::fs::read_to_string(dir.join(svg)).unwrap());
        let png = std::fs::read(dir.join(svg.replace(".svg", ".png"))).unwrap_or_else(|e| panic!("{svg}: png: {e}"));
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{svg}: PNG signature");
        // The IHDR chunk comes first: its width and height, big-endian.
        assert_eq!(&png[12..16], b"IHDR");
        let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
        assert_eq!((be(16), be(20)), (w, h), "{svg}: the PNG has the SVG's size");
        assert!(png.len() > 2_000, "{svg}: an image with content ({} bytes)", png.len());
        let pdf_path = dir.join(svg.replace(".svg", ".pdf"));
        if !pdf {
            assert!(!pdf_path.exists(), "{svg}: no PDF unless asked for");
            continue;
        }
        let pdf = std::fs::read(pdf_path).unwrap_or_else(|e| panic!("{svg}: pdf: {e}"));
        assert!(pdf.starts_with(b"%PDF-1."), "{svg}: PDF header");
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.trim_end().ends_with("%%EOF"), "{svg}: a complete PDF");
        assert_eq!(text.matches("/Type /Page\n").count() + text.matches("/Type /Page ").count(), 1, "{svg}: one page");
        // The page is the SVG's size (one pixel a point, at 72 dpi).
        let media = &text[text.find("/MediaBox [").unwrap() + 11..];
        let media: Vec<f64> =
            media[..media.find(']').unwrap()].split_whitespace().map(|v| v.parse().unwrap()).collect();
        assert!((media[2] - f64::from(w)).abs() < 1.0 && (media[3] - f64::from(h)).abs() < 1.0, "{svg}: {media:?}");
    }
}

/// `report.html` of a run: written by the run itself, self-contained (no file or address it
/// loads), with the verdict table (criteria and intervals), the per-claim summary, the run's
/// metadata, the spec and the loading snippet; in Chromium it loads without a console message
/// and holds every figure as an `<svg>`. `--format png,pdf` writes both beside every SVG, and
/// `modewise report` writes the page (and the formats) again; a format it cannot write is refused.
#[test]
fn a_run_writes_report_html_that_a_browser_shows_with_every_figure_and_the_formats_asked_for() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("tiny.toml");
    std::fs::write(&spec, SPEC).unwrap();
    let out = tmp.path().join("res");
    let o = modewise(&["run", spec.to_str().unwrap(), "--out", out.to_str().unwrap(), "--format", "png,pdf"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let page_path = out.join("report.html");
    assert!(stderr(&o).contains(&format!("tiny: report {}", page_path.display())), "{}", stderr(&o));
    check_converted(&out, true);
    let page = std::fs::read_to_string(&page_path).unwrap();
    for needle in [
        "<h2 id=\"claims\">",
        "<table id=\"verdict-table\">",
        "<th>ci_low</th><th>ci_high</th><th>n</th><th>tolerance</th><th>criterion</th>",
        "<th>control</th><th>expected</th><th>premise</th>",
        "peak_before_learned",
        "<th>git_commit</th>",
        "<th>command_line</th>",
        "<th>device</th>",
        "name = \"tiny\"",
        "import polars as pl",
        "import pandas as pd",
        "import duckdb",
        "summary.parquet",
    ] {
        assert!(page.contains(needle), "report.html lacks {needle}");
    }
    // Every verdict row of the table: one per row of summary.parquet.
    let summary = modewise_experiments::read_parquet(&out.join("summary.parquet")).unwrap();
    let table = &page[page.find("<table id=\"verdict-table\">").unwrap()..];
    let table = &table[..table.find("</table>").unwrap()];
    assert_eq!(table.matches("<tr").count(), summary.height() + 1, "a header and one row per verdict");
    // Self-contained: nothing is loaded from a file or an address.
    for outside in ["src=", "href=", "<link", "<script", "url("] {
        assert!(!page.contains(outside), "report.html loads something: {outside}");
    }
    let svgs = files(&out, "svg");
    assert!(svgs.contains(&"modes.svg".to_string()) && svgs.contains(&"variance.svg".to_string()), "{svgs:?}");
    if let Some(dom) = common::check_report_in_browser(&out, &svgs) {
        assert!(dom.contains("peak_before_learned"), "the verdicts are in the DOM");
        let shot = tmp.path().join("report.png");
        let browser = common::chromium().unwrap();
        let (_, console) = common::chromium_load(&browser, &page_path, &format!("--screenshot={}", shot.display()));
        assert!(console.is_empty(), "{console:?}");
        let png = std::fs::read(&shot).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a screenshot was taken");
    }

    // `report` writes the page and the formats again.
    for f in ["report.html", "modes.pdf", "modes.png"] {
        std::fs::remove_file(out.join(f)).unwrap();
    }
    let rep = modewise(&["report", out.to_str().unwrap(), "--format", "pdf"]);
    assert!(rep.status.success(), "{}", stderr(&rep));
    assert!(out.join("report.html").is_file() && out.join("modes.pdf").is_file(), "{}", stderr(&rep));
    assert!(!out.join("modes.png").exists(), "only the formats asked for");
    assert!(stderr(&rep).contains(&format!("report {}", page_path.display())), "{}", stderr(&rep));

    // A format it cannot write: one line naming the flag, exit 2, nothing written.
    let bad_out = tmp.path().join("bad");
    let bad = modewise(&["run", spec.to_str().unwrap(), "--out", bad_out.to_str().unwrap(), "--format", "svg,gif"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert_eq!(stderr(&bad).trim_end(), "error: --format: must be svg, png or pdf (got `gif`)");
    assert!(!bad_out.exists());
}

/// Several experiments run as one unit (as the demo does): each experiment's directory has its
/// page, and the directory itself one that links them; `report` writes them all again. Each
/// page loads in Chromium with its experiment's figures.
#[test]
fn a_directory_of_experiments_gets_a_page_per_experiment_and_one_that_links_them() {
    let tmp = tempfile::tempdir().unwrap();
    let one = |name: &str| {
        SPEC.replace("name = \"tiny\"", &format!("[[experiment]]\nname = \"{name}\""))
            .replace("[train", "[experiment.train")
            .replace("[overlays]", "[experiment.overlays]")
            .replace("steps = 200", "steps = 80")
    };
    let file = tmp.path().join("pair.toml");
    std::fs::write(&file, format!("{}\n{}", one("first"), one("second"))).unwrap();
    let out = tmp.path().join("pair");
    let o = modewise(&["run", file.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let check = || {
        let index = std::fs::read_to_string(out.join("report.html")).unwrap();
        for e in ["first", "second"] {
            assert!(index.contains(&format!("<a href=\"{e}/report.html\">{e}</a>")), "{index}");
            let page = std::fs::read_to_string(out.join(e).join("report.html")).unwrap();
            assert!(page.contains(&format!("modewise results: {e}")), "{e}");
            common::check_report_in_browser(&out.join(e), &files(&out.join(e), "svg"));
        }
        assert!(index.contains("claim 1 (peak before learned)"), "{index}");
        // The index itself loads cleanly (it has no figure of its own).
        common::check_report_in_browser(&out, &[]);
    };
    check();
    for e in ["report.html", "first/report.html", "second/report.html"] {
        std::fs::remove_file(out.join(e)).unwrap();
    }
    let rep = modewise(&["report", out.to_str().unwrap()]);
    assert!(rep.status.success(), "{}", stderr(&rep));
    check();
}

/// A sweep's page (written by `modewise report` on its directory): the figures that compare the
/// points and every point's figures, the verdicts with the points' coordinates, the manifest
/// and a loading snippet for the Hive layout; it loads in Chromium with every figure.
#[test]
fn a_sweep_report_html_shows_every_point_and_the_comparisons() {
    let tmp = tempfile::tempdir().unwrap();
    let sweep = SPEC
        .replace("steps = 200", "steps = 60")
        .replace("[overlays]", "[sweep]\n\"train.lr\" = [0.02, 0.05]\n[overlays]");
    let file = tmp.path().join("grid.toml");
    std::fs::write(&file, sweep).unwrap();
    let out = tmp.path().join("grid");
    let o = modewise(&["sweep", file.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rep = modewise(&["report", out.to_str().unwrap(), "--format", "png"]);
    assert!(rep.status.success(), "{}", stderr(&rep));
    let page = std::fs::read_to_string(out.join("report.html")).unwrap();
    for needle in [
        "<th>run_index</th><th>sweep_train_lr</th>",
        "hive_partitioning",
        "\"train.lr\" = [0.02, 0.05]",
        "2 complete points",
    ] {
        assert!(page.contains(needle), "report.html lacks {needle}");
    }
    let mut figures: Vec<String> =
        files(&out.join("figures"), "svg").into_iter().map(|f| format!("figures/{f}")).collect();
    assert!(figures.iter().any(|f| f.starts_with("figures/sweep_")), "{figures:?}");
    for i in 0..2 {
        let point = out.join(format!("figures/run_index={i}"));
        check_converted(&point, false);
        figures.extend(files(&point, "svg").into_iter().map(|f| format!("figures/run_index={i}/{f}")));
    }
    common::check_report_in_browser(&out, &figures);
}
