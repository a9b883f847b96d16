//! The bots a caller reaches, and a bot's field metadata (never values).

use platform::ApiError;
use platform::auth::Caller;

use crate::model::{BotId, FieldName};
use crate::service::BotData;
use crate::store::bots::{self, BotRow, BotSummary};
use crate::store::secrets::{self, FieldMeta};

pub async fn list(
    data: &BotData,
    caller: &Caller,
    limit: i64,
    cursor: Option<&str>,
) -> Result<Vec<BotSummary>, ApiError> {
    data.require(caller, "botdata:read", "list", None, None)
        .await?;
    Ok(bots::list(&data.db, caller.reach(), limit, cursor).await?)
}

pub async fn metadata(
    data: &BotData,
    caller: &Caller,
    bot_id: &BotId,
    field: Option<&FieldName>,
) -> Result<(BotRow, Vec<FieldMeta>), ApiError> {
    data.require(caller, "botdata:read", "read", Some(bot_id), field)
        .await?;
    let bot = data.reachable(caller, "read", bot_id, field).await?;
    let fields = secrets::metadata(&data.db, bot_id.as_str(), field.map(FieldName::as_str)).await?;
    if field.is_some() && fields.is_empty() {
        return Err(ApiError::not_found("no such field"));
    }
    Ok((bot, fields))
}
