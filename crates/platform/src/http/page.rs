//! Lists, one convention everywhere: `?limit=` (default 50, at most 500) and `?cursor=` in,
//! `{"items":[...],"next_cursor":null|"..."}` out, with keyset pagination underneath.

use serde::{Deserialize, Serialize};

/// `?limit=&cursor=` on lists.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// 1 to 500, default 50.
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl Page {
    pub fn limit(&self) -> i64 {
        clamp_limit(self.limit)
    }
}

/// A requested page size within 1..=500, 50 when absent.
pub fn clamp_limit(limit: Option<i64>) -> i64 {
    limit.unwrap_or(50).clamp(1, 500)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Listing<T: Serialize> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T: Serialize> Listing<T> {
    /// A page from a query that fetched up to `limit + 1` rows: the extra row only says that
    /// there is more, and the cursor is the key of the last row kept.
    pub fn from_overfetch(mut items: Vec<T>, limit: i64, key_of: impl Fn(&T) -> String) -> Self {
        let next_cursor = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            items.last().map(key_of)
        } else {
            None
        };
        Self { items, next_cursor }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_extra_row_gives_a_cursor_and_is_dropped() {
        let page = Listing::from_overfetch(vec![1, 2, 3], 2, |n| n.to_string());
        assert_eq!(page.items, vec![1, 2]);
        assert_eq!(page.next_cursor.as_deref(), Some("2"));
        let last = Listing::from_overfetch(vec![1, 2], 2, |n| n.to_string());
        assert_eq!(last.next_cursor, None);
    }

    #[test]
    fn limits_are_clamped() {
        assert_eq!(clamp_limit(None), 50);
        assert_eq!(clamp_limit(Some(0)), 1);
        assert_eq!(clamp_limit(Some(10_000)), 500);
    }
}
