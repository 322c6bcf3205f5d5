//! Files in and out: the one atomic writer (temporary file, flush, rename) behind every Parquet
//! table and figure, Parquet reading, and the one check of a results destination.

use std::fs::File;
use std::path::Path;

use polars::prelude::*;

use crate::ExperimentError;
use crate::error::DestinationProblem;
use crate::table::{Row, from_frame};

/// One row per recorded time: `t`, `step`, `mean_w`, `var_w`, `finite` (paths still finite).
#[cfg(test)]
pub fn ensemble_frame(stats: &modewise_theory::EnsembleStats) -> PolarsResult<DataFrame> {
    df!(
        "t" => &stats.times,
        "step" => &stats.steps,
        "mean_w" => &stats.mean,
        "var_w" => &stats.variance,
        "finite" => stats.finite.iter().map(|&n| n as u64).collect::<Vec<u64>>(),
    )
}

/// Writes `frame` to `path` as zstd-compressed Parquet, atomically: see [`write_parquet_with`].
#[cfg(test)]
pub fn write_parquet_atomic(frame: &mut DataFrame, path: &Path) -> Result<(), ExperimentError> {
    write_parquet_with(frame, path, &[])
}

/// Writes `frame` to `path` as zstd-compressed Parquet with key-value `metadata`, through
/// [`write_atomic`].
pub fn write_parquet_with(
    frame: &mut DataFrame,
    path: &Path,
    metadata: &[(String, String)],
) -> Result<(), ExperimentError> {
    let meta = (!metadata.is_empty()).then(|| KeyValueMetadata::from_static(metadata.to_vec()));
    write_atomic(path, |file| {
        ParquetWriter::new(file)
            .with_compression(ParquetCompression::Zstd(None))
            .with_key_value_metadata(meta)
            .finish(frame)
            .map(|_| ())
            .map_err(|source| ExperimentError::Polars { path: path.to_path_buf(), source })
    })
}

/// Writes a file atomically, the one way every result file (Parquet table, SVG figure) is
/// written: `write` fills a hidden temporary file beside `path` (`.NAME.tmp-PID`, which dataset
/// readers skip), which is flushed to disk and renamed into place only once complete; the
/// directory is then flushed too where the platform allows it, so that the rename survives a
/// crash. On any error the temporary file is removed and `path` is untouched.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut File) -> Result<(), ExperimentError>,
) -> Result<(), ExperimentError> {
    let io = |source| ExperimentError::Io { path: path.to_path_buf(), source };
    let name = path.file_name().map_or("part".into(), |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let mut file = File::create(&tmp).map_err(io)?;
    let written = write(&mut file)
        .and_then(|()| file.sync_all().map_err(io))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(io));
    if written.is_err() {
        drop(file);
        let _ = std::fs::remove_file(&tmp);
        return written;
    }
    // Best effort: not every platform or file system can open and flush a directory.
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The one check of a results destination, before any training: it must not be a file, and
/// `conflict(dir)` must find nothing in it that the options forbid replacing (it returns what
/// stands in the way).
pub fn check_destination(
    dir: &Path,
    conflict: impl FnOnce(&Path) -> Option<DestinationProblem>,
) -> Result<(), ExperimentError> {
    let problem = if dir.is_file() { Some(DestinationProblem::IsFile) } else { conflict(dir) };
    match problem {
        Some(problem) => Err(ExperimentError::Destination { dir: dir.to_path_buf(), problem }),
        None => Ok(()),
    }
}

/// Creates `path` (and its parents) on the way to the destination `dir` where results will go;
/// failing, says that `dir` is not writable.
pub fn create_destination(dir: &Path, path: &Path) -> Result<(), ExperimentError> {
    std::fs::create_dir_all(path).map_err(|source| ExperimentError::Destination {
        dir: dir.to_path_buf(),
        problem: DestinationProblem::Unwritable { path: path.to_path_buf(), source },
    })
}

/// Reads the rows of a table of a results directory (or one part of a sweep), typed.
pub fn read_rows<R: Row>(path: &Path) -> Result<Vec<R>, ExperimentError> {
    from_frame(&read_parquet(path)?).map_err(|source| ExperimentError::Polars { path: path.to_path_buf(), source })
}

/// Reads a Parquet file into a data frame.
pub fn read_parquet(path: &Path) -> Result<DataFrame, ExperimentError> {
    let file = File::open(path).map_err(|source| ExperimentError::Io { path: path.to_path_buf(), source })?;
    ParquetReader::new(file).finish().map_err(|source| ExperimentError::Polars { path: path.to_path_buf(), source })
}

/// The key-value metadata of a Parquet file.
pub fn read_metadata(path: &Path) -> Result<Vec<(String, String)>, ExperimentError> {
    let file = File::open(path).map_err(|source| ExperimentError::Io { path: path.to_path_buf(), source })?;
    let mut reader = ParquetReader::new(file);
    let meta = reader.get_metadata().map_err(|source| ExperimentError::Polars { path: path.to_path_buf(), source })?;
    Ok(meta
        .key_value_metadata()
        .iter()
        .flatten()
        .map(|kv| (kv.key.clone(), kv.value.clone().unwrap_or_default()))
        .collect())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use modewise_theory::{Dynamics, EnsembleParams, ModeParams, TimeGrid};

    #[test]
    fn ensemble_round_trips_through_parquet() {
        let mode = ModeParams { depth: 2, s: 1.0, sigma: 0.3, lr: 0.01, batch: 1 }.check().unwrap();
        let grid = TimeGrid::log_spaced(0.1, 5.0, 6).unwrap();
        let stats = mode.ensemble(0.01, Dynamics::Chain, &EnsembleParams::new(200, 3, grid)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ensemble.parquet");
        write_parquet_atomic(&mut ensemble_frame(&stats).unwrap(), &path).unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["ensemble.parquet"], "no temporary file is left");
        let back = read_parquet(&path).unwrap();
        assert_eq!(back.height(), stats.times.len());
        let mean: Vec<f64> = back.column("mean_w").unwrap().f64().unwrap().into_no_null_iter().collect();
        assert_eq!(mean, stats.mean);
        let steps: Vec<u64> = back.column("step").unwrap().u64().unwrap().into_no_null_iter().collect();
        assert_eq!(steps, stats.steps);
    }

    /// The names in `dir`, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn atomic_write_replaces_the_file_whole_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        std::fs::write(&path, "old").unwrap();
        write_atomic(&path, |file| {
            // While writing, the destination still holds the old content; the data goes to the
            // hidden temporary beside it.
            assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
            let tmp = format!(".out.txt.tmp-{}", std::process::id());
            assert_eq!(names(dir.path()), [tmp, "out.txt".to_string()]);
            file.write_all(b"new").map_err(|source| ExperimentError::Io { path: path.clone(), source })
        })
        .unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(names(dir.path()), ["out.txt"]);
    }

    #[test]
    fn a_failed_atomic_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        std::fs::write(&path, "old").unwrap();
        let err = write_atomic(&path, |file| {
            file.write_all(b"half of it").unwrap();
            Err(ExperimentError::Figure { path: path.clone(), reason: "failed midway".into() })
        })
        .unwrap_err();
        assert!(err.to_string().contains("failed midway"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(names(dir.path()), ["out.txt"], "the temporary file is removed");
        // Nothing at all when there was no file before.
        let fresh = dir.path().join("fresh.txt");
        write_atomic(&fresh, |_| Err(ExperimentError::Figure { path: fresh.clone(), reason: "no".into() }))
            .unwrap_err();
        assert_eq!(names(dir.path()), ["out.txt"]);
    }

    #[test]
    fn destination_check_refuses_a_file_and_a_conflict_naming_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, "x").unwrap();
        let err = check_destination(&file, |_| None).unwrap_err();
        assert_eq!(err.to_string(), format!("{}: is a file, not a directory", file.display()));
        let err = check_destination(dir.path(), |_| Some(DestinationProblem::Taken)).unwrap_err();
        assert!(matches!(err, ExperimentError::Destination { problem: DestinationProblem::Taken, .. }), "{err}");
        assert!(err.to_string().starts_with(&format!("{}: already holds results", dir.path().display())), "{err}");
        check_destination(&dir.path().join("new"), |_| None).unwrap();
        let nested = dir.path().join("new").join("deeper");
        create_destination(&nested, &nested).unwrap();
        assert!(nested.is_dir());
        let below = file.join("below-a-file");
        let err = create_destination(&below, &below).unwrap_err();
        assert!(err.to_string().starts_with(&format!("{}: is not writable (", below.display())), "{err}");
    }

    #[test]
    fn unwritable_destination_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("x.parquet");
        let mut frame = df!("a" => [1.0f64]).unwrap();
        let err = write_parquet_atomic(&mut frame, &path).unwrap_err();
        assert!(err.to_string().contains("missing-dir"), "{err}");
        assert!(!path.exists());
    }
}
