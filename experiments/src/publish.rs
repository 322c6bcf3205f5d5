//! Publishing a results directory: the destination resolved (a symbolic link followed, names
//! that cannot hold results refused), the advisory lock beside it that keeps a second writer
//! out, the staging directory beside it where the results are built, and the atomic exchange
//! that puts them in place, so that the destination always holds either the complete old
//! results or the complete new ones.
//!
//! Beside a destination `DIR` (in its parent) live, while a writer works on it, the lock file
//! `.DIR.lock` and the staging directory `.DIR.staging-PID` (`DIR` shortened with a hash when
//! it is long, so that the names stay within the 255 bytes a file name may have). Both are
//! removed when the writer ends; a writer killed by SIGKILL leaves its staging directory,
//! which the next writer into `DIR` removes (it holds the lock, so no live writer owns it).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::ExperimentError;
use crate::error::DestinationProblem;

/// The longest file name most file systems accept, in bytes.
const NAME_MAX: usize = 255;
/// Destination names longer than this are shortened (with a hash) in the names of the lock
/// file and the staging directory.
const SHORT_NAME: usize = 96;

/// A results directory about to be written: where it really is (a symbolic link followed), its
/// parent, and the name its lock file and staging directory are built from.
#[derive(Debug, Clone)]
pub(crate) struct Destination {
    /// The directory as the user named it (for messages).
    pub(crate) shown: PathBuf,
    /// The directory itself (a symbolic link's target).
    pub(crate) dir: PathBuf,
    /// Its parent directory.
    pub(crate) parent: PathBuf,
    /// Its name, shortened when long (see [`SHORT_NAME`]).
    pub(crate) short: String,
}

impl Destination {
    /// Resolves `dir`: a symbolic link is followed to its target (which must exist); the root,
    /// `.` and `..` (which name no directory below a parent) and names longer than 255 bytes
    /// are refused, and so is a file.
    pub(crate) fn resolve(dir: &Path) -> Result<Self, ExperimentError> {
        let refuse = |problem| ExperimentError::Destination { dir: dir.to_path_buf(), problem };
        let mut real = dir.to_path_buf();
        if std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink()) {
            real = std::fs::canonicalize(dir).map_err(|_| {
                let target = std::fs::read_link(dir).unwrap_or_default();
                refuse(DestinationProblem::DanglingLink { target })
            })?;
        }
        if real.is_file() {
            return Err(refuse(DestinationProblem::IsFile));
        }
        let name = real.file_name().ok_or_else(|| refuse(DestinationProblem::NoName))?;
        let name = name.to_string_lossy().into_owned();
        if name.len() > NAME_MAX {
            return Err(refuse(DestinationProblem::NameTooLong { bytes: name.len() }));
        }
        let parent = real.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
        Ok(Self { shown: dir.to_path_buf(), dir: real, parent, short: short_name(&name) })
    }

    /// The error for `problem` with this destination, as the user named it.
    pub(crate) fn refuse(&self, problem: DestinationProblem) -> ExperimentError {
        ExperimentError::Destination { dir: self.shown.clone(), problem }
    }

    /// The lock file beside the destination.
    fn lock_path(&self) -> PathBuf {
        self.parent.join(format!(".{}.lock", self.short))
    }

    /// The prefix of the staging directories beside the destination.
    fn staging_prefix(&self) -> String {
        format!(".{}.staging-", self.short)
    }
}

/// `name` if it is short, else its first bytes and a hash of the whole (FNV-1a, stable across
/// versions and platforms, so a later run finds the names an earlier one left).
fn short_name(name: &str) -> String {
    if name.len() <= SHORT_NAME {
        return name.to_string();
    }
    let mut cut = SHORT_NAME - 17;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}-{:016x}", &name[..cut], fnv1a(name.as_bytes()))
}

/// The 64-bit FNV-1a hash of `bytes` (stable across versions and platforms).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The directories created on the way to a destination, removed again (when still empty) if
/// the work fails, so that refused or failed work leaves no empty directories behind.
#[derive(Debug, Default)]
pub(crate) struct Created(Vec<PathBuf>);

impl Created {
    /// Creates `path` and its missing ancestors, remembering which were created; failing, says
    /// that `dest` is not writable (and removes what it created).
    pub(crate) fn create(dest: &Path, path: &Path) -> Result<Self, ExperimentError> {
        let mut missing = Vec::new();
        let mut p = Some(path);
        while let Some(dir) = p.filter(|d| !d.as_os_str().is_empty() && std::fs::symlink_metadata(d).is_err()) {
            missing.push(dir.to_path_buf());
            p = dir.parent();
        }
        let mut created = Created::default();
        for dir in missing.into_iter().rev() {
            match std::fs::create_dir(&dir) {
                Ok(()) => created.0.push(dir),
                // Another process (a shard of the same sweep) created it meanwhile: not ours.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {}
                Err(source) => {
                    created.undo();
                    return Err(ExperimentError::Destination {
                        dir: dest.to_path_buf(),
                        problem: DestinationProblem::Unwritable { path: dir, source },
                    });
                }
            }
        }
        Ok(created)
    }

    /// Removes the directories created, innermost first, where they are still empty.
    pub(crate) fn undo(&mut self) {
        for dir in self.0.drain(..).rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// The advisory lock of a destination (`flock` on its lock file, taken without waiting): while
/// one process holds it, no other writes the destination. Dropping it removes the lock file.
#[derive(Debug)]
pub(crate) struct Lock {
    file: File,
    path: PathBuf,
}

impl Lock {
    /// Takes the lock of `dest`, or says which process holds it.
    pub(crate) fn acquire(dest: &Destination) -> Result<Self, ExperimentError> {
        let path = dest.lock_path();
        let unwritable = |source| dest.refuse(DestinationProblem::Unwritable { path: path.clone(), source });
        loop {
            let mut file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(&path)
                .map_err(unwritable)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    let mut text = String::new();
                    let _ = file.read_to_string(&mut text);
                    return Err(dest.refuse(DestinationProblem::Busy { pid: text.trim().parse().ok() }));
                }
                Err(std::fs::TryLockError::Error(source)) => return Err(unwritable(source)),
            }
            // The holder before us removes the file before it unlocks it: a lock taken on a file
            // that is no longer the one at `path` protects nothing, so take it again.
            if same_file(&file, &path) {
                // Best effort: the pid only names the holder in another writer's message.
                let _ = file.set_len(0).and_then(|()| write!(file, "{}", std::process::id()));
                return Ok(Self { file, path });
            }
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// Whether the open `file` is the file at `path`.
fn same_file(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        path.exists()
    }
}

/// Removes what killed writers of `dest` left beside it (it must hold the lock, so every
/// staging directory of `dest` is stale): their staging directories, and restores the old
/// results a killed fallback publish had moved aside (`….staging-PID-old`) when the destination
/// is missing.
pub(crate) fn clean_stale(dest: &Destination, _lock: &Lock) {
    let prefix = dest.staging_prefix();
    let Ok(entries) = dest.parent.read_dir() else { return };
    let mut stale: Vec<(PathBuf, bool)> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let rest = name.strip_prefix(&prefix)?;
            let (pid, old) = match rest.strip_suffix("-old") {
                Some(pid) => (pid, true),
                None => (rest, false),
            };
            pid.parse::<u32>().ok().map(|_| (entry.path(), old))
        })
        .collect();
    // Old results first, so that they are restored before any other leftover is removed.
    stale.sort_by_key(|(_, old)| !old);
    for (path, old) in stale {
        if old && std::fs::symlink_metadata(&dest.dir).is_err() && std::fs::rename(&path, &dest.dir).is_ok() {
            continue;
        }
        let _ = std::fs::remove_dir_all(&path);
    }
}

/// Creates the staging directory of `dest`, which also proves that the destination's parent
/// is writable before any work. The caller holds the lock (and has removed what killed writers
/// left, [`clean_stale`]).
pub(crate) fn create_staging(dest: &Destination, _lock: &Lock) -> Result<PathBuf, ExperimentError> {
    let staging = dest.parent.join(format!("{}{}", dest.staging_prefix(), std::process::id()));
    std::fs::create_dir(&staging)
        .map_err(|source| dest.refuse(DestinationProblem::Unwritable { path: staging.clone(), source }))?;
    Ok(staging)
}

/// Puts the complete `staging` directory in place of `dest`, replacing what is there. On Linux
/// one `renameat2(RENAME_EXCHANGE)` swaps the two directories atomically (the old results end
/// up in `staging` and are removed), so a kill at any moment leaves either the old or the new
/// results at `dest`; elsewhere (or on a file system without the exchange) the old results are
/// renamed aside first and restored by the next writer if a kill comes between the two renames.
pub(crate) fn publish(staging: &Path, dest: &Destination, _lock: &Lock) -> Result<(), ExperimentError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ExperimentError::Io { path, source }
    };
    if std::fs::symlink_metadata(&dest.dir).is_err() {
        std::fs::rename(staging, &dest.dir).map_err(io(&dest.dir))?;
    } else if exchange(staging, &dest.dir).map_err(io(&dest.dir))? {
        std::fs::remove_dir_all(staging).map_err(io(staging))?;
    } else {
        let old = PathBuf::from(format!("{}-old", staging.display()));
        std::fs::rename(&dest.dir, &old).map_err(io(&dest.dir))?;
        std::fs::rename(staging, &dest.dir).map_err(io(&dest.dir))?;
        std::fs::remove_dir_all(&old).map_err(io(&old))?;
    }
    // Best effort: not every platform or file system can open and flush a directory.
    if let Ok(d) = File::open(&dest.parent) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Swaps `a` and `b` atomically: `Ok(true)` when done, `Ok(false)` where the platform or the
/// file system cannot (the caller falls back to two renames).
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<bool> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other);
    let (a, b) = (c(a)?, c(b)?);
    // SAFETY: both paths are valid NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        return Ok(true);
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP) => Ok(false),
        _ => Err(err),
    }
}

/// Swaps `a` and `b` atomically: not available here (see the Linux version).
#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> std::io::Result<bool> {
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn long_names_are_shortened_with_a_stable_hash() {
        assert_eq!(short_name("res"), "res");
        let long = "x".repeat(250);
        let short = short_name(&long);
        assert!(short.len() <= SHORT_NAME && short.starts_with("xxx"), "{short}");
        assert_eq!(short, short_name(&long));
        assert_ne!(short, short_name(&"x".repeat(249)));
        assert!(short_name(&"é".repeat(100)).len() <= SHORT_NAME);
    }

    #[test]
    fn publishing_exchanges_the_directories_and_leaves_nothing_beside() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = Destination::resolve(&tmp.path().join("res")).unwrap();
        for round in ["first", "second"] {
            let lock = Lock::acquire(&dest).unwrap();
            assert_eq!(std::fs::read_to_string(dest.lock_path()).unwrap(), std::process::id().to_string());
            clean_stale(&dest, &lock);
            let staging = create_staging(&dest, &lock).unwrap();
            std::fs::write(staging.join("data"), round).unwrap();
            publish(&staging, &dest, &lock).unwrap();
            drop(lock);
            assert_eq!(std::fs::read_to_string(tmp.path().join("res/data")).unwrap(), round);
            assert_eq!(names(tmp.path()), ["res"]);
        }
    }

    #[test]
    fn a_second_writer_is_refused_while_the_lock_is_held() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = Destination::resolve(&tmp.path().join("res")).unwrap();
        let lock = Lock::acquire(&dest).unwrap();
        let err = Lock::acquire(&dest).unwrap_err();
        let pid = std::process::id();
        assert!(
            matches!(err, ExperimentError::Destination { problem: DestinationProblem::Busy { pid: Some(p) }, .. } if p == pid),
            "{err}"
        );
        drop(lock);
        drop(Lock::acquire(&dest).unwrap());
        assert!(names(tmp.path()).is_empty(), "the lock file goes with the lock");
    }

    #[test]
    fn what_a_killed_writer_left_is_cleaned_or_restored() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = Destination::resolve(&tmp.path().join("res")).unwrap();
        // A fallback publish killed between its two renames: the old results aside, no
        // destination, and a complete staging directory.
        std::fs::create_dir(tmp.path().join(".res.staging-4000000-old")).unwrap();
        std::fs::write(tmp.path().join(".res.staging-4000000-old/data"), "old").unwrap();
        std::fs::create_dir(tmp.path().join(".res.staging-4000000")).unwrap();
        std::fs::create_dir(tmp.path().join(".res.staging-5.staging-1")).unwrap();
        let lock = Lock::acquire(&dest).unwrap();
        clean_stale(&dest, &lock);
        let staging = create_staging(&dest, &lock).unwrap();
        assert_eq!(std::fs::read_to_string(tmp.path().join("res/data")).unwrap(), "old", "the old results are back");
        let mine = staging.file_name().unwrap().to_string_lossy().into_owned();
        let mut expected = vec![".res.lock".to_string(), ".res.staging-5.staging-1".into(), mine, "res".into()];
        expected.sort();
        assert_eq!(names(tmp.path()), expected, "another destination's staging directory stays");
    }

    #[cfg(unix)]
    #[test]
    fn destinations_that_cannot_hold_results_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let problem = |p: &Path| match Destination::resolve(p) {
            Err(ExperimentError::Destination { problem, .. }) => problem.to_string(),
            other => panic!("{p:?}: {other:?}"),
        };
        assert_eq!(problem(Path::new("/")), DestinationProblem::NoName.to_string());
        assert!(problem(&tmp.path().join("y".repeat(300))).contains("300 bytes"));
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(tmp.path().join("missing"), &link).unwrap();
        assert!(problem(&link).contains("missing"), "{}", problem(&link));
        std::fs::create_dir(tmp.path().join("target")).unwrap();
        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("target"), &link).unwrap();
        let dest = Destination::resolve(&link).unwrap();
        assert_eq!(dest.dir, tmp.path().join("target").canonicalize().unwrap(), "a link is followed");
    }

    /// Moved from the destination check of `io` (now `Destination::resolve`,
    /// `check_destination` and `Created::create`), assertions kept.
    #[test]
    fn destination_check_refuses_a_file_and_a_conflict_naming_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, "x").unwrap();
        let err = crate::check_destination(&file, false).unwrap_err();
        assert_eq!(err.to_string(), format!("{}: is a file, not a directory", file.display()));
        std::fs::write(dir.path().join("results"), "x").unwrap();
        let err = crate::check_destination(dir.path(), false).unwrap_err();
        assert!(matches!(err, ExperimentError::Destination { problem: DestinationProblem::Taken, .. }), "{err}");
        assert!(err.to_string().starts_with(&format!("{}: already holds results", dir.path().display())), "{err}");
        crate::check_destination(dir.path(), true).unwrap();
        crate::check_destination(&dir.path().join("new"), false).unwrap();
        let nested = dir.path().join("new").join("deeper");
        Created::create(&nested, &nested).unwrap();
        assert!(nested.is_dir());
        let below = file.join("below-a-file");
        let err = Created::create(&below, &below).unwrap_err();
        assert!(err.to_string().starts_with(&format!("{}: is not writable (", below.display())), "{err}");
    }

    #[test]
    fn created_directories_are_removed_again_when_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let deep = tmp.path().join("a/b/c");
        let mut created = Created::create(&deep, &deep).unwrap();
        assert!(deep.is_dir());
        created.undo();
        assert!(names(tmp.path()).is_empty());
        let mut created = Created::create(&deep, &deep).unwrap();
        std::fs::write(tmp.path().join("a/keep"), "x").unwrap();
        created.undo();
        assert_eq!(names(&tmp.path().join("a")), ["keep"], "a directory holding something stays");
    }
}
