//! Managing people in the console: an admin creates an account (its one-time password shown
//! once), changes its roles, disables it and resets its password, each through the
//! Authentication API as the admin; a Manager's same forms are the API's refusals.

use reqwest::StatusCode;
use serde_json::Value;

use crate::auth_helpers::PASSWORD;
use crate::bots_helpers::spawn_bots;
use crate::console_helpers::Visitor;
use crate::helpers::ADMIN_PASSWORD;

/// The one-time password a page shows in `<code class="secret">`.
fn shown_password(html: &str) -> String {
    let start = html
        .find(r#"<code class="secret">"#)
        .expect("a password shown")
        + 21;
    html[start..start + html[start..].find("</code>").unwrap()].to_string()
}

#[tokio::test]
async fn an_admin_creates_changes_disables_and_resets_an_account_in_the_console() {
    let env = spawn_bots(Default::default(), &[]).await;
    env.team_manager("north_lead", "north").await;
    let mut admin = Visitor::new(&env.app);
    admin.sign_in("admin", ADMIN_PASSWORD).await;
    let people = admin.get("/console/people").await;
    assert!(people.html.contains("New account"), "{}", people.html);
    let csrf = people.csrf();
    let created = admin
        .post(
            "/console/people",
            &[
                ("csrf", &csrf),
                ("username", "newcomer"),
                ("display_name", "New Comer"),
                ("team", "north"),
                ("roles", "Editor"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.html);
    let temporary = shown_password(&created.html);
    assert_eq!(created.headers["cache-control"], "no-store");
    let users: Value = env
        .get("/api/v1/auth/users?limit=100", &env.admin)
        .await
        .json()
        .await
        .unwrap();
    let user = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "newcomer")
        .expect("the account exists")
        .clone();
    assert_eq!(user["team"], "north");
    assert_eq!(user["roles"], serde_json::json!(["Editor"]));
    assert_eq!(user["must_change_password"], true);
    // The one-time password signs in, straight to the password change.
    let mut newcomer = Visitor::new(&env.app);
    let form = newcomer.get("/console/sign-in").await;
    let step = newcomer
        .post(
            "/console/sign-in",
            &[
                ("csrf", &form.csrf()),
                ("username", "newcomer"),
                ("password", &temporary),
            ],
        )
        .await;
    assert_eq!(
        step.location.as_deref(),
        Some("/console/sign-in/password"),
        "{}",
        step.html
    );

    let id = user["id"].as_str().unwrap();
    let manage = admin.get(&format!("/console/people/{id}")).await;
    assert_eq!(manage.status, StatusCode::OK, "{}", manage.html);
    let changed = admin
        .post(
            &format!("/console/people/{id}"),
            &[
                ("csrf", &csrf),
                ("display_name", "New Comer"),
                ("team", "north"),
                ("roles", "Viewer"),
                ("disabled", "true"),
            ],
        )
        .await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.html);
    let user: Value = env
        .get(&format!("/api/v1/auth/users/{id}"), &env.admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(user["roles"], serde_json::json!(["Viewer"]), "{user}");
    assert_eq!(user["disabled"], true, "{user}");

    let reset = admin
        .post(
            &format!("/console/people/{id}/reset-password"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.html);
    assert_ne!(
        shown_password(&reset.html),
        temporary,
        "a new one-time password"
    );

    // A Manager's forms are refused by the API, and change nothing.
    let mut manager = Visitor::new(&env.app);
    let fleet = manager.sign_in("north_lead", PASSWORD).await;
    let refused = manager
        .post(
            "/console/people",
            &[
                ("csrf", &fleet.csrf()),
                ("username", "intruder"),
                ("roles", "Admin"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.html);
    let users: Value = env
        .get("/api/v1/auth/users?limit=100", &env.admin)
        .await
        .json()
        .await
        .unwrap();
    assert!(!users.to_string().contains("intruder"), "{users}");
}

/// The secret a page shows in `<code class="secret">`.
fn shown_secret(html: &str) -> String {
    shown_password(html)
}

#[tokio::test]
async fn a_person_sets_up_and_turns_off_their_own_second_factor_from_their_account() {
    let env = spawn_bots(Default::default(), &[]).await;
    env.team_manager("north_lead", "north").await;
    let mut visitor = Visitor::new(&env.app);
    let fleet = visitor.sign_in("north_lead", PASSWORD).await;
    let csrf = fleet.csrf();
    let account = visitor.get("/console/account").await;
    assert!(
        account.html.contains("Set up an authenticator app"),
        "{}",
        account.html
    );

    let started = visitor
        .post("/console/account/mfa/start", &[("csrf", &csrf)])
        .await;
    assert_eq!(started.status, StatusCode::OK, "{}", started.html);
    assert!(started.html.contains("QR code of the authenticator secret"));
    let secret = shown_secret(&started.html);
    let wrong = visitor
        .post(
            "/console/account/mfa/confirm",
            &[("csrf", &csrf), ("code", "000000")],
        )
        .await;
    assert!(wrong.status.is_client_error(), "{}", wrong.status);
    let code = crate::auth_helpers::totp_code(&secret, env.app.clock.unix_seconds() as u64);
    let confirmed = visitor
        .post(
            "/console/account/mfa/confirm",
            &[("csrf", &csrf), ("code", &code)],
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.html);
    assert_eq!(
        confirmed.html.matches("<li><code>").count(),
        10,
        "ten recovery codes"
    );

    // Still signed in, and the account says so; turning it off takes the password.
    let account = visitor.get("/console/account").await;
    assert_eq!(account.status, StatusCode::OK, "{}", account.html);
    assert!(
        account.html.contains("Turn off the second factor"),
        "{}",
        account.html
    );
    let refused = visitor
        .post(
            "/console/account/mfa/remove",
            &[("csrf", &csrf), ("password", "not-it")],
        )
        .await;
    assert!(refused.status.is_client_error(), "{}", refused.status);
    let removed = visitor
        .post(
            "/console/account/mfa/remove",
            &[("csrf", &csrf), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER, "{}", removed.html);
    let account = visitor.get("/console/account").await;
    assert!(
        account.html.contains("Set up an authenticator app"),
        "{}",
        account.html
    );
}
