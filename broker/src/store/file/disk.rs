//! Every write of the file store goes through [`write_all_at`], which is also the seam where
//! tests make the disk full; every fsync of a segment goes through [`sync_data`], where unit
//! tests make it fail ([`set_sync_error`]).
//!
//! Two ways to simulate a disk with `n` bytes left, with no mount and no root:
//! - unit tests: [`set_free`] on the test's thread;
//! - the broker binary: the environment variable [`FREE_FILE_VAR`] names a file holding the
//!   number of bytes left (read once at start-up). While that file exists, each write spends
//!   from it; a write larger than what is left writes that much (a torn record, as a real full
//!   disk leaves) and fails with `ENOSPC`. Removing the file frees the disk. Without the
//!   variable this costs one branch per write.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Names the file of free bytes that makes the broker's disk look full (tests only).
pub const FREE_FILE_VAR: &str = "BROKER_TEST_DISK_FREE_FILE";

#[cfg(test)]
thread_local! {
    static FREE: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
    static SYNC_ERROR: std::cell::Cell<Option<i32>> = const { std::cell::Cell::new(None) };
}

/// Makes every [`sync_data`] on this thread fail with `errno` (`None`: succeed).
#[cfg(test)]
pub(crate) fn set_sync_error(errno: Option<i32>) {
    SYNC_ERROR.with(|e| e.set(errno));
}

/// `File::sync_data`, failing as [`set_sync_error`] says in unit tests.
pub(crate) fn sync_data(file: &File) -> io::Result<()> {
    #[cfg(test)]
    if let Some(errno) = SYNC_ERROR.with(|e| e.get()) {
        return Err(io::Error::from_raw_os_error(errno));
    }
    file.sync_data()
}

/// Makes the disk look as if `free` bytes were left for this thread's writes (`None`: room
/// enough).
#[cfg(test)]
pub(crate) fn set_free(free: Option<u64>) {
    FREE.with(|f| f.set(free));
}

/// The file of free bytes, when the environment names one.
fn free_file() -> Option<&'static PathBuf> {
    static FILE: OnceLock<Option<PathBuf>> = OnceLock::new();
    FILE.get_or_init(|| std::env::var_os(FREE_FILE_VAR).map(PathBuf::from))
        .as_ref()
}

/// Bytes left on the simulated disk, if one is simulated.
fn free() -> Option<u64> {
    #[cfg(test)]
    if let Some(free) = FREE.with(|f| f.get()) {
        return Some(free);
    }
    let text = std::fs::read_to_string(free_file()?).ok()?;
    Some(text.trim().parse().unwrap_or(0))
}

fn set_left(left: u64) {
    #[cfg(test)]
    if FREE.with(|f| f.get()).is_some() {
        return FREE.with(|f| f.set(Some(left)));
    }
    if let Some(path) = free_file() {
        let _ = std::fs::write(path, left.to_string());
    }
}

/// `write_all_at`, failing with `ENOSPC` after a partial write when the simulated disk has
/// too little room. Only growth takes room: overwriting bytes the file has is free, as on a
/// file system that writes in place.
pub(crate) fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    let Some(left) = free() else {
        return file.write_all_at(buf, offset);
    };
    let len = file.metadata()?.len();
    let in_place = usize::try_from(len.saturating_sub(offset)).unwrap_or(usize::MAX);
    let growth = buf.len().saturating_sub(in_place);
    let fits = usize::try_from(left).unwrap_or(usize::MAX).min(growth);
    let written = buf.len() - growth + fits;
    file.write_all_at(&buf[..written], offset)?;
    set_left(left - fits as u64);
    if written < buf.len() {
        return Err(io::Error::from_raw_os_error(libc::ENOSPC));
    }
    Ok(())
}

/// Whether an error says the file system (or the user's quota) is full.
pub(crate) fn is_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull
        || matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}
