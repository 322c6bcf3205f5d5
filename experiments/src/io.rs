//! Parquet input and output: data frames written atomically (temporary file, then rename).

use std::fs::File;
use std::path::Path;

use modewise_theory::EnsembleStats;
use polars::prelude::*;

use crate::ExperimentError;

/// One row per recorded time: `t`, `step`, `mean_w`, `var_w`, `finite` (paths still finite).
pub fn ensemble_frame(stats: &EnsembleStats) -> PolarsResult<DataFrame> {
    df!(
        "t" => &stats.times,
        "step" => &stats.steps,
        "mean_w" => &stats.mean,
        "var_w" => &stats.variance,
        "finite" => stats.finite.iter().map(|&n| n as u64).collect::<Vec<u64>>(),
    )
}

/// Writes `frame` to `path` as zstd-compressed Parquet, atomically: see [`write_parquet_with`].
pub fn write_parquet_atomic(frame: &mut DataFrame, path: &Path) -> Result<(), ExperimentError> {
    write_parquet_with(frame, path, &[])
}

/// Writes `frame` to `path` as zstd-compressed Parquet with key-value `metadata`, atomically:
/// the data goes to a hidden temporary file beside `path` (`.NAME.tmp-PID`, which dataset
/// readers skip), is flushed to disk, and is renamed into place only once complete. On an error
/// the temporary file is removed and `path` is untouched.
pub fn write_parquet_with(
    frame: &mut DataFrame,
    path: &Path,
    metadata: &[(String, String)],
) -> Result<(), ExperimentError> {
    let io = |source| ExperimentError::Io { path: path.to_path_buf(), source };
    let name = path.file_name().map_or("part".into(), |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let file = File::create(&tmp).map_err(io)?;
    let meta = (!metadata.is_empty()).then(|| KeyValueMetadata::from_static(metadata.to_vec()));
    let written = ParquetWriter::new(&file)
        .with_compression(ParquetCompression::Zstd(None))
        .with_key_value_metadata(meta)
        .finish(frame);
    if let Err(source) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(ExperimentError::Polars { path: path.to_path_buf(), source });
    }
    if let Err(e) = file.sync_all().and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(())
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
