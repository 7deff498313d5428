//! Paging of list endpoints: `?after=<key>&limit=<n>` in, `{"items": […], "next_after": key}`
//! out. `next_after` is the last item's key when the page is full, so a client asks again with
//! it until it comes back `null`.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Items per page when the request names no `limit`.
pub const DEFAULT_PAGE_SIZE: i64 = 100;

/// The largest `limit` a request may ask for.
pub const MAX_PAGE_SIZE: i64 = 1000;

/// The paging parameters of a list request, before validation.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct PageQuery {
    /// Items after this key (an id, or a transaction number).
    pub after: Option<String>,
    /// How many items at most ([`DEFAULT_PAGE_SIZE`] when absent, up to [`MAX_PAGE_SIZE`]).
    pub limit: Option<i64>,
}

impl PageQuery {
    /// The requested page size; an error message when it is outside 1 to [`MAX_PAGE_SIZE`].
    pub fn limit(&self) -> Result<i64, String> {
        let limit = self.limit.unwrap_or(DEFAULT_PAGE_SIZE);
        if (1..=MAX_PAGE_SIZE).contains(&limit) {
            Ok(limit)
        } else {
            Err(format!("limit must be between 1 and {MAX_PAGE_SIZE}"))
        }
    }

    /// `after` as a transaction number (0, the start, when absent or empty).
    pub fn after_number(&self) -> Result<i64, String> {
        match self.after.as_deref().map(str::trim) {
            None | Some("") => Ok(0),
            Some(after) => after
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| format!("after {after:?} is not a transaction number")),
        }
    }

    /// `after` as text ("" when absent).
    pub fn after_text(&self) -> &str {
        self.after.as_deref().unwrap_or("")
    }
}

/// The response body for one page of `items` asked for with `limit`; `key` gives an item's
/// paging key.
pub fn page<T: Serialize, K: Serialize>(items: &[T], limit: i64, key: impl Fn(&T) -> K) -> Value {
    let full = usize::try_from(limit).is_ok_and(|limit| items.len() == limit);
    let next_after = full.then(|| items.last().map(key)).flatten();
    json!({"items": items, "next_after": next_after})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(after: Option<&str>, limit: Option<i64>) -> PageQuery {
        PageQuery {
            after: after.map(str::to_owned),
            limit,
        }
    }

    #[test]
    fn the_limit_defaults_and_is_bounded() {
        assert_eq!(query(None, None).limit(), Ok(DEFAULT_PAGE_SIZE));
        assert_eq!(query(None, Some(MAX_PAGE_SIZE)).limit(), Ok(MAX_PAGE_SIZE));
        for bad in [0, -1, MAX_PAGE_SIZE + 1] {
            let err = query(None, Some(bad)).limit().unwrap_err();
            assert!(err.contains("between 1 and 1000"), "{bad}: {err}");
        }
    }

    #[test]
    fn after_as_a_number_starts_at_zero_and_refuses_other_text() {
        assert_eq!(query(None, None).after_number(), Ok(0));
        assert_eq!(query(Some(""), None).after_number(), Ok(0));
        assert_eq!(query(Some("41"), None).after_number(), Ok(41));
        for bad in ["-1", "x", "1.5", "99999999999999999999"] {
            assert!(query(Some(bad), None).after_number().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_full_page_names_its_last_key_and_a_short_one_ends_the_listing() {
        let full = page(&[1, 2, 3], 3, |n| n * 10);
        assert_eq!(full, json!({"items": [1, 2, 3], "next_after": 30}));
        let short = page(&[1, 2], 3, |n| n * 10);
        assert_eq!(short, json!({"items": [1, 2], "next_after": null}));
        let empty = page::<i32, i32>(&[], 3, |n| *n);
        assert_eq!(empty, json!({"items": [], "next_after": null}));
    }
}
