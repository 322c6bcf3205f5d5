//! Files in and out: the one atomic writer (temporary file, flush, rename) behind every Parquet
//! table, figure and sweep manifest, and Parquet reading.

use std::fs::File;
use std::path::Path;

use polars::prelude::*;

use crate::ExperimentError;
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
/// [`write_atomic`]. A write that fails in the file system (a full disk) is reported by its
/// cause, not by the Parquet encoder's view of it ("Invalid thrift: transport error").
pub fn write_parquet_with(
    frame: &mut DataFrame,
    path: &Path,
    metadata: &[(String, String)],
) -> Result<(), ExperimentError> {
    write_atomic(path, |file| encode_parquet(frame, metadata, file, path))
}

/// Encodes `frame` as Parquet into `out` (see [`write_parquet_with`]).
fn encode_parquet(
    frame: &mut DataFrame,
    metadata: &[(String, String)],
    out: &mut impl std::io::Write,
    path: &Path,
) -> Result<(), ExperimentError> {
    // The Arrow schema that Arrow readers (pyarrow, and DuckDB through it) take the column
    // types from, at polars' oldest compatibility level: text as plain large strings, not the
    // `string_view` the encoder would name, which DuckDB 0.10 and 1.0 cannot read from an Arrow
    // table. The Parquet column types are the same either way (UTF-8 byte arrays).
    let schema = polars_parquet::write::schema_to_metadata_key(&frame.schema().to_arrow(CompatLevel::oldest()));
    let mut pairs = vec![(schema.key, schema.value.unwrap_or_default())];
    pairs.extend(metadata.iter().cloned());
    let meta = Some(KeyValueMetadata::from_static(pairs));
    let mut recording = Recording { inner: out, error: None };
    let encoded = ParquetWriter::new(&mut recording)
        .with_compression(ParquetCompression::Zstd(None))
        .with_key_value_metadata(meta)
        .finish(frame);
    match (encoded, recording.error) {
        (Ok(_), _) => Ok(()),
        (Err(_), Some(source)) => Err(ExperimentError::Io { path: path.to_path_buf(), source }),
        (Err(source), None) => Err(ExperimentError::Polars { path: path.to_path_buf(), source }),
    }
}

/// A writer that keeps the first I/O error of the writer it wraps (and passes a copy on).
struct Recording<'a, W> {
    inner: &'a mut W,
    error: Option<std::io::Error>,
}

impl<W: std::io::Write> Recording<'_, W> {
    fn keep(&mut self, e: std::io::Error) -> std::io::Error {
        let copy = std::io::Error::new(e.kind(), e.to_string());
        self.error.get_or_insert(e);
        copy
    }
}

impl<W: std::io::Write> std::io::Write for Recording<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf).map_err(|e| self.keep(e))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush().map_err(|e| self.keep(e))
    }
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

/// Reads the rows of a table of a results directory (or one part of a sweep), typed.
pub fn read_rows<R: Row>(path: &Path) -> Result<Vec<R>, ExperimentError> {
    from_frame(&read_parquet(path)?).map_err(|source| ExperimentError::Polars { path: path.to_path_buf(), source })
}

/// Reads the rows of a table written as a Hive dataset in `dir`
/// (`dir/<table>/run_index=<i>/part.parquet`, [`crate::Table::part_path`]), typed, the parts in
/// the order of their `run_index`; no rows where the table's folder is missing. The partition
/// value is the folder's name, not a column of the rows.
pub fn read_partitioned<R: Row>(dir: &Path) -> Result<Vec<R>, ExperimentError> {
    let folder = dir.join(R::TABLE.name());
    if !folder.is_dir() {
        return Ok(Vec::new());
    }
    let io = |source| ExperimentError::Io { path: folder.clone(), source };
    let mut parts = Vec::new();
    for entry in std::fs::read_dir(&folder).map_err(io)? {
        let name = entry.map_err(io)?.file_name();
        if let Some(i) = name.to_str().and_then(|n| n.strip_prefix("run_index=")).and_then(|i| i.parse::<usize>().ok())
        {
            parts.push(i);
        }
    }
    parts.sort_unstable();
    let mut rows = Vec::new();
    for i in parts {
        rows.extend(read_rows::<R>(&R::TABLE.part_path(dir, i))?);
    }
    Ok(rows)
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

    /// A writer whose device fills after `room` bytes.
    struct FillingUp {
        room: usize,
    }

    impl std::io::Write for FillingUp {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if buf.len() > self.room {
                return Err(std::io::Error::from_raw_os_error(28)); // ENOSPC
            }
            self.room -= buf.len();
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_full_disk_is_reported_as_a_full_disk() {
        let mut frame = df!("a" => (0..10_000).map(f64::from).collect::<Vec<_>>()).unwrap();
        let path = Path::new("out/x.parquet");
        let err = encode_parquet(&mut frame, &[], &mut FillingUp { room: 100 }, path).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ExperimentError::Io { .. }), "{err:?}");
        assert!(text.starts_with("out/x.parquet: No space left on device"), "{text}");
        assert!(!text.contains("thrift"), "{text}");
        let mut sink = Vec::new();
        encode_parquet(&mut frame, &[], &mut sink, path).unwrap();
        assert!(sink.starts_with(b"PAR1"));
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
