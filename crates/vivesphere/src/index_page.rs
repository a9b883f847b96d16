//! `GET /api/` (and `/` where no console runs): a small page that names what this process
//! serves and links each service's API docs, so someone who opens the address in a browser
//! finds their way. Plain HTML, no script, nothing from another origin.

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;

/// A service this process answers for: its name and route prefix (`/api/v1/bots`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Listed {
    pub service: &'static str,
    pub prefix: &'static str,
}

/// The page for `services`, in the order given.
pub fn render(services: &[Listed]) -> String {
    let rows: String = services
        .iter()
        .map(|s| {
            format!(
                "<li><strong>{service}</strong>: <a href=\"{prefix}/docs/\">API docs</a> · \
                 <a href=\"{prefix}/openapi.json\">OpenAPI</a> · \
                 <a href=\"{prefix}/health\">health</a></li>\n",
                service = s.service,
                prefix = s.prefix
            )
        })
        .collect();
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>ViveSphere Bot Manager</title></head><body>\n\
         <h1>ViveSphere Bot Manager</h1>\n\
         <p>Sign in with <code>POST /api/v1/auth/login</code> and use the token as \
         <code>Authorization: Bearer …</code> (each docs page has an Authorize button).</p>\n\
         <ul>\n{rows}</ul>\n\
         <p><a href=\"/health/ready\">readiness</a> · <a href=\"/metrics\">metrics</a></p>\n\
         </body></html>\n"
    )
}

/// Where the index page answers: `/api/` always, and `/` too unless the console runs in this
/// process, in which case `/` sends people to the console.
pub fn router(services: Vec<Listed>, console_here: bool) -> Router {
    let page = render(&services);
    let index = get(move || {
        let page = page.clone();
        async move { ([(CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response() }
    });
    let router = Router::new().route("/api/", index.clone());
    if console_here {
        router.route("/", get(|| async { Redirect::to("/console/") }))
    } else {
        router.route("/", index)
    }
}
