//! Each service's OpenAPI 3.1 document at `<prefix>/openapi.json` and a Swagger UI at
//! `<prefix>/docs` served from assets compiled into the binary (nothing fetched at run time).

use axum::Router;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::{
    ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Ref, RefOr,
};
use utoipa::{OpenApi as _, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

use super::error::ErrorBody;

#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(ErrorBody)))]
struct SharedComponents;

/// The skeleton every service document starts from: title, version, the error schema and the
/// service's own health route. Services merge their own paths into it.
pub fn service_document(title: &str, prefix: &str) -> OpenApi {
    let json_ref = |schema: &str| {
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(schema)))
            .build()
    };
    let health = OperationBuilder::new()
        .summary(Some(
            "Readiness of this service (its database and the queue)",
        ))
        .operation_id(Some(format!(
            "{}_health",
            title.to_lowercase().replace(' ', "_")
        )))
        .response(
            "200",
            ResponseBuilder::new()
                .description("Ready: every check answered `ok`")
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(
                            utoipa::openapi::ObjectBuilder::new()
                                .property(
                                    "status",
                                    utoipa::openapi::ObjectBuilder::new()
                                        .schema_type(utoipa::openapi::Type::String),
                                )
                                .required("status")
                                .property(
                                    "checks",
                                    utoipa::openapi::ObjectBuilder::new()
                                        .schema_type(utoipa::openapi::Type::Object),
                                )
                                .required("checks"),
                        ))
                        .build(),
                )
                .build(),
        )
        .response(
            "503",
            ResponseBuilder::new()
                .description("Not ready; `checks` says which check failed")
                .content("application/json", json_ref(ErrorBody::name().as_ref()))
                .build(),
        )
        .build();
    let mut doc = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title(format!("ViveSphere {title} API"))
                .version(env!("CARGO_PKG_VERSION"))
                .build(),
        )
        .paths(PathsBuilder::new().path(
            format!("{prefix}/health"),
            PathItem::new(HttpMethod::Get, health),
        ))
        .build();
    doc.merge(SharedComponents::openapi());
    doc
}

/// Routes serving `doc` as JSON and the offline Swagger UI.
pub fn docs_routes(prefix: &str, mut doc: OpenApi) -> Router {
    describe_responses(&mut doc);
    Router::new()
        .merge(SwaggerUi::new(format!("{prefix}/docs")).url(format!("{prefix}/openapi.json"), doc))
}

/// Gives every response a description, which OpenAPI requires and utoipa leaves out when an
/// annotation names only a status and a body: the status's reason phrase, and for an error
/// status, that the body is the error shape.
pub fn describe_responses(doc: &mut OpenApi) {
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            for (status, response) in operation.responses.responses.iter_mut() {
                if let RefOr::T(response) = response
                    && response.description.is_empty()
                {
                    response.description = describe_status(status);
                }
            }
        }
    }
}

fn describe_status(status: &str) -> String {
    let code = status.parse::<u16>().ok();
    let reason = code
        .and_then(|code| axum::http::StatusCode::from_u16(code).ok())
        .and_then(|code| code.canonical_reason())
        .unwrap_or("Response");
    match code {
        Some(400..) => {
            format!("{reason}: the error shape says why (`code`, `message`, `request_id`)")
        }
        _ => reason.to_string(),
    }
}

/// Declares the `bearer` (JWT) security scheme that services' `security(("bearer" = []))`
/// annotations refer to: `#[openapi(modifiers(&BearerAuth))]`.
pub struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token: `POST /api/v1/auth/login` with `{\"username\", \"password\"}` \
                         answers `{\"token\": …}`; paste the token here, without `Bearer`. \
                         Service clients use `POST /api/v1/auth/token` (client_credentials).",
                    ))
                    .build(),
            ),
        );
    }
}
