//! The disk spool: every sample the buffer takes is appended to a file first, so a
//! publisher killed while the broker is away loses nothing; the next one on the same
//! destination replays what was not confirmed.
//!
//! Layout (one pair per destination and slot, under the spool directory):
//! - `NAME.spool`: records, each a 4-byte little-endian length and the sample's JSON;
//! - `NAME.done`: 8 bytes, the offset up to which every record was confirmed (or
//!   dropped by `policy=drop`).
//!
//! Appends are fsynced once per `publish` call (one per pipeline batch); the `.done`
//! offset is written after confirms without fsync: after a crash it may be behind,
//! so some confirmed samples are sent again, and the store's unique `message_id`
//! drops them. The file is truncated whenever every record is confirmed, and
//! compacted when more than half of it (and over 64 MiB) is confirmed. A torn last
//! record (a crash mid-append) is cut off at replay. The buffer's `buffer=` bound
//! bounds the unconfirmed part, so the spool holds at most what the buffer holds.
//!
//! Each file is locked while in use: a second publisher on the same destination (two
//! sinks, or two processes sharing a data directory) takes the next slot.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Past this much confirmed data at the head, the file is compacted (if that is also
/// more than half of it).
const COMPACT_ABOVE: u64 = 64 * 1024 * 1024;
/// Slots tried per destination before giving up.
const SLOTS: usize = 16;
/// A record longer than this is not one of ours: the rest of the file is cut off.
const MAX_RECORD: u32 = 256 * 1024 * 1024;

/// An open, locked spool.
#[derive(Debug)]
pub struct Spool {
    path: PathBuf,
    file: File,
    done: File,
    /// Bytes in the file.
    len: u64,
    /// Confirmed up to here.
    committed: u64,
}

/// The samples a spool held at opening: (record bytes, end offset of each record).
pub type Replayed = Vec<(Vec<u8>, u64)>;

impl Spool {
    /// Opens the first free slot for destination `name` in `dir` (created if needed)
    /// and returns what it holds beyond the confirmed offset.
    pub fn open(dir: &Path, name: &str) -> Result<(Spool, Replayed), String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the spool directory {}: {e}", dir.display()))?;
        for slot in 0..SLOTS {
            let path = dir.join(format!("{name}-{slot}.spool"));
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| format!("cannot open the spool {}: {e}", path.display()))?;
            match try_lock(&file) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => return Err(format!("cannot lock the spool {}: {e}", path.display())),
            }
            let done_path = path.with_extension("done");
            let done = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&done_path)
                .map_err(|e| format!("cannot open {}: {e}", done_path.display()))?;
            let mut spool = Spool {
                path,
                file,
                done,
                len: 0,
                committed: 0,
            };
            let replayed = spool
                .replay()
                .map_err(|e| format!("cannot read the spool {}: {e}", spool.path.display()))?;
            return Ok((spool, replayed));
        }
        Err(format!(
            "all {SLOTS} spool slots for this destination in {} are in use by other publishers",
            dir.display()
        ))
    }

    /// Where the records are.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn replay(&mut self) -> std::io::Result<Replayed> {
        let mut raw = [0u8; 8];
        self.done.seek(SeekFrom::Start(0))?;
        let committed = match self.done.read_exact(&mut raw) {
            Ok(()) => u64::from_le_bytes(raw),
            Err(_) => 0,
        };
        let mut bytes = Vec::new();
        self.file.seek(SeekFrom::Start(0))?;
        self.file.read_to_end(&mut bytes)?;
        // An offset past the end (a stale `.done`): replay everything, duplicates are
        // dropped by message id.
        let mut at = if committed as usize <= bytes.len() {
            committed as usize
        } else {
            0
        };
        let mut out = Vec::new();
        while at + 4 <= bytes.len() {
            let n = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
            let end = at + 4 + n as usize;
            if n > MAX_RECORD || end > bytes.len() {
                break;
            }
            out.push((bytes[at + 4..end].to_vec(), end as u64));
            at = end;
        }
        // Cut a torn or foreign tail so that appends follow the last whole record.
        if at < bytes.len() {
            self.file.set_len(at as u64)?;
        }
        self.len = at as u64;
        self.committed = committed.min(self.len);
        if out.is_empty() {
            self.truncate()?;
        }
        Ok(out)
    }

    /// Appends records and fsyncs; returns each record's end offset.
    pub fn append(&mut self, items: &[Vec<u8>]) -> std::io::Result<Vec<u64>> {
        let mut buf = Vec::with_capacity(items.iter().map(|i| i.len() + 4).sum());
        let mut ends = Vec::with_capacity(items.len());
        let mut end = self.len;
        for item in items {
            buf.extend_from_slice(&(item.len() as u32).to_le_bytes());
            buf.extend_from_slice(item);
            end += 4 + item.len() as u64;
            ends.push(end);
        }
        self.file.seek(SeekFrom::Start(self.len))?;
        self.file.write_all(&buf)?;
        self.file.sync_data()?;
        self.len = end;
        Ok(ends)
    }

    /// Everything up to `end` is confirmed. When that is everything, the file is
    /// emptied; returns the shift to subtract from the ends still held when the file
    /// was compacted instead (0 otherwise).
    pub fn commit(&mut self, end: u64, all_done: bool) -> std::io::Result<u64> {
        if all_done {
            self.truncate()?;
            return Ok(0);
        }
        self.committed = end.min(self.len);
        if self.committed > COMPACT_ABOVE && self.committed > self.len / 2 {
            return self.compact();
        }
        self.done.seek(SeekFrom::Start(0))?;
        self.done.write_all(&self.committed.to_le_bytes())?;
        Ok(0)
    }

    fn truncate(&mut self) -> std::io::Result<()> {
        // Offset first: a crash between the two leaves an offset past the end, which
        // replays nothing from an empty file.
        self.done.seek(SeekFrom::Start(0))?;
        self.done.write_all(&0u64.to_le_bytes())?;
        self.file.set_len(0)?;
        self.len = 0;
        self.committed = 0;
        Ok(())
    }

    /// Moves the unconfirmed tail to the head of the file.
    fn compact(&mut self) -> std::io::Result<u64> {
        let shift = self.committed;
        let mut tail = Vec::with_capacity((self.len - shift) as usize);
        self.file.seek(SeekFrom::Start(shift))?;
        self.file.read_to_end(&mut tail)?;
        // Zero the offset before moving data: a crash mid-way replays (deduped) data
        // instead of skipping any.
        self.done.seek(SeekFrom::Start(0))?;
        self.done.write_all(&0u64.to_le_bytes())?;
        self.done.sync_data()?;
        self.file.seek(SeekFrom::Start(0))?;
        self.file.write_all(&tail)?;
        self.file.set_len(tail.len() as u64)?;
        self.file.sync_data()?;
        self.len = tail.len() as u64;
        self.committed = 0;
        Ok(shift)
    }
}

/// An exclusive `flock` on `file`, held until it is closed; false when another open
/// file holds it. (`File::try_lock` needs Rust 1.89; the workspace supports 1.85.)
fn try_lock(file: &File) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor this function borrows; no memory is involved.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// A file-name-safe form of a destination (`exchange routing_key host:port vhost`).
pub fn file_name(destination: &str) -> String {
    destination
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(120)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(xs: &[&str]) -> Vec<Vec<u8>> {
        xs.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn unconfirmed_records_are_replayed_and_confirmed_ones_not() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, replayed) = Spool::open(dir.path(), "d").unwrap();
        assert!(replayed.is_empty());
        let ends = s.append(&items(&["a", "bb", "ccc"])).unwrap();
        assert_eq!(ends, vec![5, 11, 18]);
        s.commit(ends[0], false).unwrap();
        drop(s);
        let (mut s, replayed) = Spool::open(dir.path(), "d").unwrap();
        let texts: Vec<&[u8]> = replayed.iter().map(|(b, _)| b.as_slice()).collect();
        assert_eq!(texts, vec![b"bb".as_slice(), b"ccc".as_slice()]);
        // Everything confirmed: the file is emptied.
        s.commit(18, true).unwrap();
        assert_eq!(std::fs::metadata(s.path()).unwrap().len(), 0);
        drop(s);
        assert!(Spool::open(dir.path(), "d").unwrap().1.is_empty());
    }

    #[test]
    fn a_torn_tail_is_cut_and_a_held_spool_takes_the_next_slot() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = Spool::open(dir.path(), "d").unwrap();
        s.append(&items(&["whole"])).unwrap();
        let path = s.path().to_owned();
        // A second publisher on the same destination gets its own file.
        let (other, _) = Spool::open(dir.path(), "d").unwrap();
        assert_ne!(other.path(), path);
        drop(other);
        drop(s);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[9, 0, 0, 0, b'x']).unwrap();
        let (mut s, replayed) = Spool::open(dir.path(), "d").unwrap();
        assert_eq!(replayed.len(), 1);
        assert_eq!(replayed[0].0, b"whole");
        let ends = s.append(&items(&["next"])).unwrap();
        assert_eq!(ends, vec![9 + 8]);
    }

    #[test]
    fn names_are_safe_file_names() {
        assert_eq!(
            file_name("ceilo metering.sample 127.0.0.1:5672 /"),
            "ceilo_metering.sample_127.0.0.1_5672__"
        );
    }
}
