//! `backup-monitor backup --output FILE`: a consistent copy of the database, safe while
//! `serve` runs (`db::backup`). The copy is written beside FILE under a temporary name,
//! checked, synced, and only then given FILE's name, so FILE is never a half-written copy;
//! an existing FILE is replaced only with `--force`.

use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use super::STDOUT;
use crate::config::Settings;
use crate::db::backup::copy;
use crate::output;

/// Pages copied per step (4 MiB with SQLite's default 4 KiB pages); each step is followed by
/// a pause as long as it took.
const PAGES_PER_STEP: i32 = 1024;

pub fn run(settings: &Settings, output: &Path, force: bool) -> anyhow::Result<()> {
    let source = settings.database_path();
    let target = Target::check(output, &source, force)?;
    let partial = Partial::create(&target)?;
    let copied = copy(&source, &partial.path, PAGES_PER_STEP)?;
    File::open(&partial.path)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot sync the copy {}", partial.path.display()))?;
    partial.into_place(&target, force)?;
    // The new name must reach the disk too; a file system that cannot sync a directory
    // (EINVAL) has nothing more to do.
    let _ = File::open(&target.dir).and_then(|d| d.sync_all());
    let bytes = fs::metadata(&target.path)
        .with_context(|| format!("cannot read {}", target.path.display()))?
        .len();
    output::println(&format!(
        "wrote {}: {bytes} bytes ({:.1} MiB), schema version {}, integrity check ok",
        target.path.display(),
        bytes as f64 / 1_048_576.0,
        copied.schema_version
    ))
    .context(STDOUT)
}

/// Where the copy goes, checked before anything is copied.
struct Target {
    /// The file, absolute.
    path: PathBuf,
    dir: PathBuf,
    name: String,
}

impl Target {
    fn check(output: &Path, source: &Path, force: bool) -> anyhow::Result<Self> {
        let shown = output.display();
        let Some(name) = output.file_name().and_then(|n| n.to_str()) else {
            bail!("--output {shown}: give the copy's file name (valid UTF-8)");
        };
        if output.is_dir() {
            bail!("--output {shown} is a directory: give the copy's file name");
        }
        let parent = output
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let dir = parent.canonicalize().with_context(|| {
            format!(
                "--output {shown}: directory {} does not exist",
                parent.display()
            )
        })?;
        let path = dir.join(name);
        if let Ok(database) = source.canonicalize() {
            let own = |suffix: &str| {
                let mut p = database.clone().into_os_string();
                p.push(suffix);
                PathBuf::from(p)
            };
            let canonical = path.canonicalize().unwrap_or_else(|_| path.clone());
            if ["", "-wal", "-shm", "-journal"]
                .iter()
                .any(|s| own(s) == canonical)
            {
                bail!("--output {shown} is the database itself (or one of its files): write the copy elsewhere");
            }
        }
        if !force && fs::symlink_metadata(&path).is_ok() {
            bail!("{shown} exists: give --force to replace it");
        }
        Ok(Self {
            path,
            dir,
            name: name.to_owned(),
        })
    }
}

/// The copy while it is being written: `.<name>.partial-<pid>` beside the target, readable
/// by its owner only (a copy holds the installation's badge secret and the tokens' hashes).
/// Removed when dropped, unless it was put in place.
struct Partial {
    path: PathBuf,
}

impl Partial {
    fn create(target: &Target) -> anyhow::Result<Self> {
        let path = target
            .dir
            .join(format!(".{}.partial-{}", target.name, std::process::id()));
        let open = || {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
        };
        // A leftover of a copy that died with this same process id: ours to replace.
        let created = match open() {
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                fs::remove_file(&path).and_then(|()| open())
            }
            other => other,
        };
        created.with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self { path })
    }

    /// Gives the copy the target's name: replacing the target with `force`, else only if
    /// there is still no such file (a hard link cannot overwrite; a file system without hard
    /// links gets a check and a rename).
    fn into_place(self, target: &Target, force: bool) -> anyhow::Result<()> {
        let placed = if force {
            fs::rename(&self.path, &target.path)
        } else {
            match fs::hard_link(&self.path, &target.path) {
                Ok(()) => fs::remove_file(&self.path),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    bail!(
                        "{} was created while the copy was written: give --force to replace it",
                        target.path.display()
                    )
                }
                Err(_) if fs::symlink_metadata(&target.path).is_ok() => {
                    bail!(
                        "{} exists: give --force to replace it",
                        target.path.display()
                    )
                }
                Err(_) => fs::rename(&self.path, &target.path),
            }
        };
        placed.with_context(|| format!("cannot write {}", target.path.display()))
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
        let mut journal = self.path.clone().into_os_string();
        journal.push("-journal");
        let _ = fs::remove_file(journal);
    }
}
