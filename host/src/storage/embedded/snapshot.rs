//! One read transaction over several queries, so that they all see the same
//! snapshot (a merge of the staging table between two of them would make a sample
//! count twice or not at all).
//!
//! rusqlite's `Connection::transaction` prepares `BEGIN` and `COMMIT` anew each
//! time, which costs as much as a small query; the API's cheapest questions run a
//! handful of index probes, so the statements are taken from the cache instead.

use rusqlite::Connection;

/// Rolls the transaction back unless it was ended (an error or a panic in between).
struct Open<'c> {
    c: &'c Connection,
    ended: bool,
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        if !self.ended {
            let _ = self
                .c
                .prepare_cached("ROLLBACK")
                .and_then(|mut s| s.execute([]));
        }
    }
}

/// Runs `f` in one read transaction on `c`.
pub(super) fn read<T>(
    c: &Connection,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    c.prepare_cached("BEGIN")?.execute([])?;
    let mut open = Open { c, ended: false };
    let out = f(c)?;
    c.prepare_cached("COMMIT")?.execute([])?;
    open.ended = true;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_query_ends_its_transaction() {
        let c = Connection::open_in_memory().expect("db");
        c.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .expect("schema");
        let failed = read(&c, |c| {
            c.query_row("SELECT nosuch FROM t", [], |r| r.get::<_, i64>(0))
        });
        assert!(failed.is_err());
        assert!(c.is_autocommit(), "the transaction was left open");
        let n = read(&c, |c| {
            c.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
        });
        assert_eq!(n.expect("count"), 1);
        assert!(c.is_autocommit());
    }

    #[test]
    fn a_panic_ends_its_transaction() {
        let c = Connection::open_in_memory().expect("db");
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = read(&c, |_| -> rusqlite::Result<()> { panic!("on purpose") });
        }));
        assert!(r.is_err());
        assert!(c.is_autocommit(), "the transaction was left open");
    }
}
