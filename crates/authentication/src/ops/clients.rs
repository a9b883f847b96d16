//! Administering service clients (`clients:admin`): list, register (the secret is shown
//! once; only its hash is kept), delete.

use platform::activity::Activity;
use platform::auth::Caller;
use platform::{ApiError, ErrorCode};
use serde::{Deserialize, Serialize};

use super::roles::check_permissions;
use super::users::valid_username;
use crate::service::Authentication;
use crate::store::clients::{self, ServiceClient};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"client_id": "report-exporter", "audiences": ["logging"], "scopes": ["logs:read"], "description": "Nightly export of the activity log"}))]
pub struct CreateClient {
    pub client_id: String,
    /// Target names this client may call (`bot-manager`, `logging`, …).
    pub audiences: Vec<String>,
    pub scopes: Vec<String>,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedClient {
    pub client: ServiceClient,
    /// Shown once; only its hash is kept.
    pub client_secret: String,
}

pub async fn list(a: &Authentication, caller: &Caller) -> Result<Vec<ServiceClient>, ApiError> {
    caller.require("clients:admin")?;
    Ok(clients::list(&a.db).await?)
}

pub async fn create(
    a: &Authentication,
    caller: &Caller,
    body: CreateClient,
) -> Result<CreatedClient, ApiError> {
    caller.require("clients:admin")?;
    if !valid_username(&body.client_id) {
        return Err(ApiError::invalid_data(
            "client_id: 3 to 64 letters, digits, '.', '_' or '-'",
        ));
    }
    if body.audiences.is_empty() || !body.audiences.iter().all(|a| valid_username(a)) {
        return Err(ApiError::invalid_data(
            "audiences: one or more target names",
        ));
    }
    check_permissions(&body.scopes)?;
    let (client, client_secret) = clients::create(
        &a.db,
        &body.client_id,
        &body.audiences,
        &body.scopes,
        &body.description,
        a.clock.unix_seconds(),
    )
    .await?
    .ok_or_else(|| ApiError::new(ErrorCode::Conflict, "that client_id is taken"))?;
    a.activity
        .record(Activity::by(caller, "client.created").subject(client.client_id.clone()))
        .await;
    Ok(CreatedClient {
        client,
        client_secret,
    })
}

pub async fn delete(a: &Authentication, caller: &Caller, client_id: &str) -> Result<(), ApiError> {
    caller.require("clients:admin")?;
    if !clients::delete(&a.db, client_id).await? {
        return Err(ApiError::not_found("no such client"));
    }
    a.activity
        .record(Activity::by(caller, "client.deleted").subject(client_id.to_string()))
        .await;
    Ok(())
}
