//! Reading: a page of events, every event of a filter page by page (for exports), and
//! deleting what a filter covers. The caller's readable categories bound each of them, and
//! a read has a time window (by default the hour before now, by the service's clock).

use std::sync::Arc;

use futures::Stream;
use platform::ErrorCode;
use platform::activity::Activity;
use platform::auth::Caller;
use platform::http::error::ApiError;
use serde_json::json;

use crate::access;
use crate::model::LogEvent;
use crate::service::Logs;
use crate::store::{self, Cursor, Filter};

const HOUR_MS: i64 = 3_600_000;
/// Rows per database round trip while exporting.
const EXPORT_PAGE: i64 = 1000;

/// Events the filter covers, newest first, `limit` of them after `cursor`.
pub async fn list(
    logs: &Logs,
    caller: &Caller,
    filter: Filter,
    cursor: Option<&Cursor>,
    limit: i64,
) -> Result<Vec<LogEvent>, ApiError> {
    let filter = bounded(logs, caller, filter, true)?;
    Ok(store::query(&logs.db, &filter, cursor, limit).await?)
}

/// Every event the filter covers, newest first, as a stream of pages. A page that cannot be
/// read ends the stream with its error.
pub fn export(
    logs: Arc<Logs>,
    caller: &Caller,
    filter: Filter,
) -> Result<impl Stream<Item = anyhow::Result<Vec<LogEvent>>> + Send + 'static, ApiError> {
    let filter = bounded(&logs, caller, filter, true)?;
    Ok(futures::stream::unfold(
        Some((logs, filter, None::<Cursor>)),
        |progress| async move {
            let (logs, filter, cursor) = progress?;
            match store::query(&logs.db, &filter, cursor.as_ref(), EXPORT_PAGE).await {
                Ok(events) if events.is_empty() => None,
                Ok(events) => {
                    let next = events.last().map(|e| Cursor {
                        ts: e.ts,
                        id: e.id.clone(),
                    });
                    Some((Ok(events), Some((logs, filter, next))))
                }
                Err(err) => Some((Err(err), None)),
            }
        },
    ))
}

/// Deletes every event the filter covers (`logs:delete`, and read access to its
/// categories); at least one filter is required. Recorded as `logs.deleted`.
pub async fn delete(logs: &Logs, caller: &Caller, filter: Filter) -> Result<u64, ApiError> {
    caller.require("logs:delete")?;
    let narrowed = filter.from.is_some()
        || filter.to.is_some()
        || !filter.categories.is_empty()
        || filter.service.is_some()
        || filter.level.is_some()
        || filter.actor_id.is_some()
        || filter.bot_id.is_some()
        || filter.action.is_some()
        || filter.request_id.is_some()
        || filter.text.is_some();
    let filter = bounded(logs, caller, filter, false)?;
    if !narrowed {
        return Err(ApiError::new(
            ErrorCode::InvalidData,
            "name at least one filter (for example actor_id); deleting everything is not offered",
        ));
    }
    let deleted = store::delete(&logs.db, &filter).await?;
    logs.activity
        .record(Activity::by(caller, "logs.deleted").details(json!({
            "deleted": deleted,
            "categories": filter.categories.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
            "actor_id": filter.actor_id,
            "bot_id": filter.bot_id,
            "service": filter.service,
            "action": filter.action,
            "from": filter.from.map(platform::time_fmt::rfc3339_from_millis),
            "to": filter.to.map(platform::time_fmt::rfc3339_from_millis),
        })))
        .await;
    Ok(deleted)
}

/// The filter bounded by what the caller may read: the categories asked for (all readable
/// ones if none), their own and their team's events unless they are an admin, and for a
/// read the time window, by default the hour before now.
fn bounded(
    logs: &Logs,
    caller: &Caller,
    mut filter: Filter,
    windowed: bool,
) -> Result<Filter, ApiError> {
    filter.categories = access::covered(caller, &filter.categories)?;
    filter.scope = access::scope(caller);
    if windowed {
        let to = filter.to.unwrap_or(logs.clock.now_millis() + 1);
        filter.from = Some(filter.from.unwrap_or(to - HOUR_MS));
        filter.to = Some(to);
    }
    if let (Some(from), Some(to)) = (filter.from, filter.to)
        && from >= to
    {
        return Err(ApiError::invalid_data("from must be before to"));
    }
    Ok(filter)
}
