//! Files in the state dir, which holds tokens and message bodies: created `0600` (the dir
//! `0700`), never through a symlink someone planted, and replaced atomically from a fresh
//! temporary name that cannot already exist.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Opens `path` for reading, refusing a symlink.
pub fn open_private(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Creates `path` (`0600`) if it does not exist, refusing a symlink; the contents are kept.
pub fn create_private_file(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Opens `path` for appending (creating it `0600`), refusing a symlink.
pub fn append_private(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Replaces `path` with `bytes`: written and fsynced under a new random name in the same dir
/// (`O_EXCL`, so nothing planted there is followed or reused), then renamed over it.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Empties `path` in place (whoever holds it open keeps writing into it), refusing a symlink;
/// a missing file is left missing.
pub fn truncate_private(path: &Path) -> std::io::Result<()> {
    OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?
        .set_len(0)
}

/// Creates `dir` (and its parents) `0700` if it does not exist.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// What [`private_dir`] had to change.
#[derive(Debug, PartialEq, Eq)]
pub enum DirCheck {
    Ok,
    /// It was open to others; now `0700`.
    Tightened {
        was: u32,
    },
}

/// Makes sure `dir` exists, is a directory we own and nobody else can write or read: created
/// `0700`; an existing one open to others is tightened (the caller warns); one that is a
/// symlink, not a directory, or owned by someone else is refused.
pub fn private_dir(dir: &Path) -> std::io::Result<DirCheck> {
    let refuse = |why: String| {
        std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{}: {why}", dir.display()),
        )
    };
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            create_private_dir(dir)?;
            // `recursive` applies the mode to the last component only after the umask.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
            Ok(DirCheck::Ok)
        }
        Err(e) => Err(e),
        Ok(meta) => {
            if meta.file_type().is_symlink() {
                return Err(refuse("is a symlink; give the real directory".into()));
            }
            if !meta.is_dir() {
                return Err(refuse("is not a directory".into()));
            }
            // SAFETY: geteuid has no preconditions and cannot fail.
            let me = unsafe { libc::geteuid() };
            if meta.uid() != me {
                return Err(refuse(format!(
                    "belongs to uid {}, not to you (uid {me}); others could read its tokens or plant files",
                    meta.uid()
                )));
            }
            let mode = meta.mode() & 0o777;
            if mode & 0o077 != 0 {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
                return Ok(DirCheck::Tightened { was: mode });
            }
            Ok(DirCheck::Ok)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_planted_symlink_is_neither_followed_nor_reused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "mine").unwrap();
        let link = dir.path().join("state.db");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(create_private_file(&link).is_err());
        assert!(open_private(&link).is_err());
        assert!(append_private(&link).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "mine");
        // Replacing renames over the link itself, never writing through it.
        write_private(&link, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "mine");
        assert_eq!(std::fs::read_to_string(&link).unwrap(), "new");
        let mode = std::fs::metadata(&link).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn the_state_dir_is_created_private_and_tightened_when_open() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("a/b");
        assert_eq!(private_dir(&state).unwrap(), DirCheck::Ok);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&state), 0o700);
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert_eq!(
            private_dir(&state).unwrap(),
            DirCheck::Tightened { was: 0o777 }
        );
        assert_eq!(mode(&state), 0o700);
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        assert!(private_dir(&file).is_err());
    }
}
