//! Push configs kept on disk, so that a restarted gateway delivers on: one file per task under
//! `<data>/push/` (the name is the hex of the task id), holding each config with the index of
//! the first event its webhook has not acknowledged yet.
//!
//! Durability rules kept here:
//! - a config is written and fsynced (file, then directory) before it is acknowledged to the
//!   caller, so an acknowledged config survives a crash; deleting one is as durable;
//! - a delivery cursor is written (atomically: a temporary file renamed over the old one) after
//!   each event is answered, without an fsync: a crash may roll it back, and events after it are
//!   then delivered again. Delivery is at least once; every POST names its event
//!   (`A2A-Ledger-Event-Id`), so a receiver drops what it has seen.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use a2a::TaskPushNotificationConfig;
use serde::{Deserialize, Serialize};

/// A config with its delivery cursor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    /// The config as registered (its id and task id filled in).
    pub config: TaskPushNotificationConfig,
    /// The index of the first event the webhook has not acknowledged.
    pub next: usize,
}

#[derive(Serialize, Deserialize)]
struct TaskFile {
    task: String,
    configs: Vec<Stored>,
}

/// The directory of push configs.
#[derive(Debug)]
pub struct PushStore {
    dir: PathBuf,
}

impl PushStore {
    /// Opens (creating) `<data>/push`.
    pub fn open(data: &Path) -> std::io::Result<PushStore> {
        let dir = data.join("push");
        std::fs::create_dir_all(&dir)?;
        Ok(PushStore { dir })
    }

    fn path(&self, task: &str) -> PathBuf {
        self.dir.join(format!("{}.json", hex::encode(task)))
    }

    /// Writes task `task`'s configs (removes its file when there are none); `durable` fsyncs the
    /// file and the directory before returning.
    pub fn save(&self, task: &str, configs: &[Stored], durable: bool) -> std::io::Result<()> {
        let path = self.path(task);
        if configs.is_empty() {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            }
            return if durable { sync_dir(&self.dir) } else { Ok(()) };
        }
        let body = serde_json::to_vec(&TaskFile { task: task.to_string(), configs: configs.to_vec() })
            .map_err(std::io::Error::other)?;
        let tmp = self.dir.join(format!(".{}.tmp", hex::encode(task)));
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&body)?;
            if durable {
                f.sync_all()?;
            }
        }
        std::fs::rename(&tmp, &path)?;
        if durable { sync_dir(&self.dir) } else { Ok(()) }
    }

    /// Every task's configs. A file that cannot be read is reported and skipped, never deleted.
    pub fn load_all(&self) -> std::io::Result<Vec<(String, Vec<Stored>)>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir)? {
            let path = e?.path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            match std::fs::read(&path).map_err(|e| e.to_string()).and_then(|b| {
                serde_json::from_slice::<TaskFile>(&b).map_err(|e| format!("not a push config file: {e}"))
            }) {
                Ok(f) => out.push((f.task, f.configs)),
                Err(e) => eprintln!("push: skipping {}: {e}", path.display()),
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(id: &str, task: &str) -> TaskPushNotificationConfig {
        serde_json::from_value(serde_json::json!({ "id": id, "taskId": task, "url": "https://example.com/hook" }))
            .unwrap()
    }

    #[test]
    fn configs_round_trip_and_an_empty_list_removes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let s = PushStore::open(dir.path()).unwrap();
        let a = vec![Stored { config: config("c1", "t/1"), next: 3 }];
        s.save("t/1", &a, true).unwrap();
        s.save("t-2", &[Stored { config: config("c2", "t-2"), next: 0 }], false).unwrap();
        let all = s.load_all().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all.iter().find(|(t, _)| t == "t/1").unwrap().1, a);
        s.save("t/1", &[], true).unwrap();
        assert_eq!(s.load_all().unwrap().len(), 1);
        s.save("t/1", &[], true).unwrap();
    }

    #[test]
    fn a_damaged_file_is_skipped_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let s = PushStore::open(dir.path()).unwrap();
        std::fs::write(dir.path().join("push").join("00.json"), b"{not json").unwrap();
        s.save("t", &[Stored { config: config("c", "t"), next: 1 }], true).unwrap();
        assert_eq!(s.load_all().unwrap().len(), 1);
        assert!(dir.path().join("push").join("00.json").exists());
    }
}
