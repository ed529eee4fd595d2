//! Pages of code that ran once, at start-up, taken out of the process's memory.
//!
//! Starting a service runs a lot of code once: parsing the command line and the
//! configuration, scanning every library of the plugin directory (each library's
//! start-up code, read-only data and layout descriptions), checking layouts, opening
//! the store. Most pipelines then use a few libraries (the default one runs code from
//! two of the seven built-in ones) and a part of the host. The pages touched once
//! would stay mapped, and counted in the process's resident memory, for its whole
//! life: an idle agent held about 24 MB, 18 MB of it such pages of its files. Once
//! the services are wired, the read-only mappings of the executable and of every
//! plugin library that were never written are unmapped page by page
//! (`MADV_DONTNEED`): their pages are the file's own, so nothing is lost, and what
//! the services run is mapped again on its first use (from the page cache). The agent
//! does the same after each poll cycle, whose code would otherwise stay mapped, with
//! the neighbouring pages each fault brings in, until the next one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Every plugin library loaded by this process (canonical paths, as
/// `/proc/self/maps` names them).
static LOADED: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// Records that the library mapped from `path` was loaded.
pub(crate) fn loaded(path: &Path) {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    LOADED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(path);
}

/// Set (to anything but empty or `0`) to leave the pages resident, to compare.
pub const KEEP_ENV: &str = "CEILO_KEEP_START_UP_PAGES";

/// What [`release_start_up_pages`] advised.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Released {
    /// Files (the executable and plugin libraries).
    pub files: usize,
    /// Bytes of address space (not all of it was resident).
    pub bytes: u64,
}

/// Hands back the pages of the executable and of every loaded plugin library. Called
/// once the services are wired and after each reload (which scans and wires again);
/// the pages the running services need come back on their first use.
pub fn release_start_up_pages() -> Released {
    if std::env::var(KEEP_ENV).is_ok_and(|v| !v.is_empty() && v != "0") {
        return Released::default();
    }
    let mut ours = LOADED.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if let Ok(exe) = std::fs::canonicalize("/proc/self/exe") {
        ours.insert(exe);
    }
    let smaps = match std::fs::read_to_string("/proc/self/smaps") {
        Ok(m) => m,
        Err(e) => {
            tracing::debug!(target: "ceilo::loader", "cannot read /proc/self/smaps: {e}");
            return Released::default();
        }
    };
    let mut files = BTreeSet::new();
    let mut done = Released::default();
    for m in mappings(&smaps) {
        // Only mappings that were never written: their pages are the file's own, so
        // dropping them loses nothing. Written ones (relocated data, .data, .bss)
        // hold anonymous copies and are left alone, and nothing can write to a
        // mapping without write permission.
        if !ours.contains(m.path) || m.writable || m.anonymous_kib != 0 {
            continue;
        }
        // SAFETY: the range is a whole read-only mapping of this process with no
        // private (written) pages, read from its smaps: MADV_DONTNEED unmaps its
        // pages, and each access after reads the same bytes from the page cache
        // (or the file) again. The range cannot have been given to anything else
        // since smaps was read: the executable and loaded libraries are never
        // unmapped (libraries are never unloaded).
        let rc = unsafe {
            libc::madvise(
                m.start as *mut libc::c_void,
                m.end - m.start,
                libc::MADV_DONTNEED,
            )
        };
        if rc == 0 {
            done.bytes += (m.end - m.start) as u64;
            files.insert(m.path);
        }
    }
    done.files = files.len();
    tracing::debug!(target: "ceilo::loader", files = done.files, bytes = done.bytes, "start-up pages of the executable and plugin libraries handed back");
    done
}

/// The least time between two [`release_after_work`] that hand pages back: a pipeline
/// polling every second does not read smaps every second.
const AFTER_WORK_EVERY: Duration = Duration::from_secs(5);

/// When pages were last handed back after work.
static LAST_AFTER_WORK: Mutex<Option<Instant>> = Mutex::new(None);

/// Hands back the pages of the executable and plugin libraries again after a burst of
/// work (an agent's poll cycle), at most once per 5 s. A cycle's code faults in with
/// its cached neighbours (the kernel maps up to 64 KiB around each fault), so an idle
/// agent otherwise holds several times the code its cycles run; handed back, the next
/// cycle maps what it runs again from the page cache (minor faults, no disk reads).
/// Returns `None` when it was too soon.
pub fn release_after_work() -> Option<Released> {
    due(&LAST_AFTER_WORK, Instant::now()).then(release_start_up_pages)
}

/// Whether `now` is [`AFTER_WORK_EVERY`] or more past `last` (then it becomes `last`).
fn due(last: &Mutex<Option<Instant>>, now: Instant) -> bool {
    let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
    if last.is_some_and(|t| now.saturating_duration_since(t) < AFTER_WORK_EVERY) {
        return false;
    }
    *last = Some(now);
    true
}

/// One mapping of a file, from `/proc/self/smaps`.
#[derive(Debug, PartialEq, Eq)]
struct Mapping<'a> {
    start: usize,
    end: usize,
    writable: bool,
    path: &'a Path,
    /// Private pages (copies made by writes), in KiB.
    anonymous_kib: u64,
}

/// The file mappings of an smaps text, each with its `Anonymous:` figure.
fn mappings(smaps: &str) -> Vec<Mapping<'_>> {
    let mut out: Vec<Mapping<'_>> = Vec::new();
    // Whether the last header line was a file mapping (its fields follow).
    let mut in_file = false;
    for line in smaps.lines() {
        if let Some(rest) = line.strip_prefix("Anonymous:") {
            if let (true, Some(last)) = (in_file, out.last_mut()) {
                // Unreadable: counted as written, so the mapping is left alone.
                last.anonymous_kib = rest
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .unwrap_or(u64::MAX);
            }
            continue;
        }
        match header(line) {
            Some(Some(m)) => {
                out.push(m);
                in_file = true;
            }
            Some(None) => in_file = false,
            None => {}
        }
    }
    out
}

/// A mapping's header line: `Some(Some(_))` for a file, `Some(None)` for another
/// mapping (anonymous, stack, vdso), `None` for a field line.
fn header(line: &str) -> Option<Option<Mapping<'_>>> {
    let mut fields = line.splitn(6, ' ');
    let range = fields.next()?;
    let (start, end) = range.split_once('-')?;
    let (Ok(start), Ok(end)) = (
        usize::from_str_radix(start, 16),
        usize::from_str_radix(end, 16),
    ) else {
        return None;
    };
    let perms = fields.next().unwrap_or_default();
    let path = fields.nth(3).unwrap_or_default().trim_start();
    if !path.starts_with('/') {
        return Some(None);
    }
    Some(Some(Mapping {
        start,
        end,
        writable: perms.contains('w'),
        path: Path::new(path),
        // Until its `Anonymous:` line says otherwise: not to be touched.
        anonymous_kib: u64::MAX,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55cfd19fe000-55cfd1f80000 r--p 00000000 fe:00 5458092                    /opt/ceilo
Rss:                1800 kB
Anonymous:             0 kB
55cfd1f80000-55cfd2f8f000 r-xp 00581000 fe:00 5458092                    /opt/ceilo
Rss:                8448 kB
Anonymous:             0 kB
55cfd2f8f000-55cfd3030000 r--p 0158f000 fe:00 5458092                    /opt/ceilo
Rss:                 644 kB
Anonymous:           628 kB
55cfd3030000-55cfd3031000 rw-p 01630000 fe:00 5458092                    /opt/ceilo
Anonymous:             4 kB
7ffd1000-7ffd2000 rw-p 00000000 00:00 0                          [stack]
Anonymous:             4 kB
7ffd3000-7ffd4000 r--p 00000000 00:00 0
Anonymous:             0 kB
";

    #[test]
    fn reads_file_mappings_and_what_was_written_in_them() {
        let m = mappings(SMAPS);
        let summary: Vec<(usize, bool, u64)> = m
            .iter()
            .map(|m| (m.start, m.writable, m.anonymous_kib))
            .collect();
        assert_eq!(
            summary,
            [
                (0x55cfd19fe000, false, 0),
                (0x55cfd1f80000, false, 0),
                (0x55cfd2f8f000, false, 628),
                (0x55cfd3030000, true, 4),
            ]
        );
        assert!(m.iter().all(|m| m.path == Path::new("/opt/ceilo")));
        assert_eq!(m[1].end, 0x55cfd2f8f000);
    }

    #[test]
    fn a_mapping_without_its_anonymous_line_counts_as_written() {
        let m = mappings("1000-2000 r-xp 00000000 fe:00 1 /opt/x\nRss: 4 kB\n");
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].anonymous_kib, u64::MAX);
    }

    #[test]
    fn hands_back_the_executables_pages_and_keeps_running() {
        let released = release_start_up_pages();
        assert!(released.files >= 1, "{released:?}");
        assert!(released.bytes > 0, "{released:?}");
        // The code whose pages were dropped still runs (they are read in again).
        assert_eq!(mappings(SMAPS).len(), 4);
    }

    #[test]
    fn after_work_pages_are_handed_back_at_most_once_per_interval() {
        let last = Mutex::new(None);
        let t0 = Instant::now();
        assert!(due(&last, t0), "the first time");
        assert!(!due(&last, t0 + Duration::from_secs(1)), "too soon");
        assert!(!due(
            &last,
            t0 + AFTER_WORK_EVERY - Duration::from_millis(1)
        ));
        assert!(due(&last, t0 + AFTER_WORK_EVERY));
        assert!(!due(&last, t0 + AFTER_WORK_EVERY + Duration::from_secs(1)));
    }
}
