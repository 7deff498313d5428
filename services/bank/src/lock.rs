//! One stack per data directory: two brokers on one store, or two sets of replicas on one
//! SQLite file from different stacks, would corrupt or confuse each other.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

use anyhow::{bail, Context};

/// An exclusive lock on `<data dir>/bank.lock`, held while the stack runs (released by the
/// kernel when the process ends, however it ends).
pub struct DataLock {
    _file: File,
}

impl DataLock {
    /// Takes the lock, or says which process holds it.
    pub fn acquire(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join("bank.lock");
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        // SAFETY: flock(2) on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            bail!(
                "another bank (pid {}) is running on {}: stop it first, or use another --data-dir",
                holder.trim(),
                data_dir.display()
            );
        }
        file.set_len(0).context("truncating the lock file")?;
        file.rewind().context("rewinding the lock file")?;
        write!(file, "{}", std::process::id()).context("writing the lock file")?;
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_stack_on_the_same_data_directory_is_refused_with_the_holders_pid() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataLock::acquire(dir.path()).unwrap();
        let err = DataLock::acquire(dir.path()).err().unwrap().to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        DataLock::acquire(dir.path()).unwrap();
    }
}
