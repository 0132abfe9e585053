//! The runs' workspace files, under `<data>/workspaces/<run>/`. Who may touch which path is the
//! grant's to say ([`crate::engine::grants`]); this module only knows where files are.

use std::path::{Path, PathBuf};

/// The workspaces' root.
#[derive(Debug)]
pub struct Files {
    root: PathBuf,
}

impl Files {
    /// Workspaces under `root`.
    pub fn new(root: PathBuf) -> Files {
        Files { root }
    }

    /// The workspace of `run`.
    pub fn run_dir(&self, run: &str) -> PathBuf {
        self.root.join(run)
    }

    /// The file `path` of `run`'s workspace.
    pub fn file(&self, run: &str, path: &str) -> PathBuf {
        self.root.join(run).join(path)
    }
}

/// The files under `dir` (recursively), as paths relative to `base` with their sizes; a missing
/// `dir` has none. Temporary files of unfinished writes are left out.
pub fn walk(dir: &Path, base: &Path, out: &mut Vec<(String, u64)>) -> std::io::Result<()> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in rd {
        let entry = entry?;
        let p = entry.path();
        let ft = entry.file_type()?;
        if ft.is_dir() {
            walk(&p, base, out)?;
        } else if ft.is_file() && !p.to_string_lossy().contains(".tmp-") {
            let rel = p.strip_prefix(base).expect("under base").to_string_lossy().replace('\\', "/");
            out.push((rel, entry.metadata()?.len()));
        }
    }
    Ok(())
}
