//! Multi-row statements: one round trip to the database for many rows instead of one per row.
//! SQL is still written once for SQLite and PostgreSQL (`$n` placeholders, `values` lists).
//!
//! A statement's text depends on how many rows it carries, and each connection caches prepared
//! statements by text. [`runs`] cuts a batch into runs whose lengths are powers of two, so a
//! statement has only a few shapes (7 for batches up to 64) and they all stay cached.

use std::ops::Range;

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection};

/// A statement being bound, as [`insert`] hands it to its `bind`.
pub type AnyQuery<'q> = Query<'q, Any, AnyArguments<'q>>;

/// The ranges of `len` items, in order, each as long as a power of two, longest first
/// (37 → 0..32, 32..36, 36..37).
pub fn runs(len: usize) -> impl Iterator<Item = Range<usize>> {
    let mut start = 0;
    std::iter::from_fn(move || {
        let left = len - start;
        if left == 0 {
            return None;
        }
        let run = 1 << left.ilog2();
        let range = start..start + run;
        start += run;
        Some(range)
    })
}

/// `rows` parenthesised groups of `columns` placeholders, numbered on from `$1`:
/// `values(2, 3)` is `($1, $2, $3), ($4, $5, $6)`.
pub fn values(rows: usize, columns: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 5);
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(row * columns + column + 1).to_string());
        }
        sql.push(')');
    }
    sql
}

/// Inserts `rows` into `into` (`table (column, …)`, `columns` of them) with one multi-row
/// statement per run of [`runs`]; `bind` binds one row's values, in column order.
pub async fn insert<T>(
    conn: &mut AnyConnection,
    into: &str,
    columns: usize,
    rows: &[T],
    bind: impl for<'q> Fn(AnyQuery<'q>, &'q T) -> AnyQuery<'q>,
) -> Result<(), sqlx::Error> {
    for run in runs(rows.len()) {
        let sql = format!("insert into {into} values {}", values(run.len(), columns));
        let mut query = sqlx::query(&sql);
        for row in &rows[run] {
            query = bind(query, row);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_powers_of_two_longest_first_and_cover_everything_in_order() {
        let all: Vec<_> = runs(37).collect();
        assert_eq!(all, vec![0..32, 32..36, 36..37]);
        assert_eq!(runs(0).count(), 0);
        assert_eq!(runs(64).collect::<Vec<_>>(), vec![0..64]);
        for len in 0..200 {
            let mut next = 0;
            for run in runs(len) {
                assert_eq!(run.start, next);
                assert!(run.len().is_power_of_two());
                next = run.end;
            }
            assert_eq!(next, len);
        }
    }

    #[test]
    fn values_number_placeholders_row_by_row() {
        assert_eq!(values(1, 1), "($1)");
        assert_eq!(values(2, 3), "($1, $2, $3), ($4, $5, $6)");
    }
}
