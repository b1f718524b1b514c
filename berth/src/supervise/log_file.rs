//! The supervised command's log: lines appended to a file that is renamed
//! to `FILE.1` (replacing the previous one) when it grows past a size, so a
//! chatty or crash-looping service never fills the disk.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// An append-only log file rotated by size.
pub struct LogFile {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
}

impl LogFile {
    /// Opens (or creates) `path` for appending.
    pub fn open(path: &Path, max_bytes: u64) -> std::io::Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_owned(),
            file,
            size,
            max_bytes,
        })
    }

    /// Appends `line`; a write that fails is dropped (the command keeps
    /// running whether or not its log can be written).
    pub fn write_line(&mut self, line: &str) {
        if self.size >= self.max_bytes {
            let _ = self.rotate();
        }
        if writeln!(self.file, "{line}").is_ok() {
            self.size += line.len() as u64 + 1;
        }
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let mut old = self.path.clone().into_os_string();
        old.push(".1");
        std::fs::rename(&self.path, old)?;
        *self = Self::open(&self.path, self.max_bytes)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_past_the_size_and_keeps_one_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/agent.log");
        let mut log = LogFile::open(&path, 20).unwrap();
        for n in 0..6 {
            log.write_line(&format!("line {n} ....."));
        }
        let current = std::fs::read_to_string(&path).unwrap();
        let old = std::fs::read_to_string(dir.path().join("logs/agent.log.1")).unwrap();
        assert_eq!(old, "line 2 .....\nline 3 .....\n");
        assert_eq!(current, "line 4 .....\nline 5 .....\n");
        // Reopening counts what is there: the next line rotates.
        let mut again = LogFile::open(&path, 20).unwrap();
        again.write_line("line 6 .....");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "line 6 .....\n");
    }
}
