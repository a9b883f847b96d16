//! Forged and misused tokens: every way a token can be wrong is refused, by /validate and by
//! the extractor every service uses.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::auth_helpers::*;
use crate::helpers::{ADMIN_PASSWORD, spawn_app};

/// Refused by /validate (INVALID_TOKEN) and by an ordinary protected route (UNAUTHORIZED).
async fn assert_refused(app: &crate::helpers::TestApp, token: &str, why: &str) {
    assert_eq!(
        validate(app, token).await,
        StatusCode::UNAUTHORIZED,
        "/validate accepted {why}"
    );
    assert_eq!(
        get(app, "/api/v1/auth/me", token).await.status(),
        StatusCode::UNAUTHORIZED,
        "/me accepted {why}"
    );
}

#[tokio::test]
async fn a_token_signed_with_the_real_key_and_good_claims_is_accepted() {
    // The control for every forgery below: the same signing path with untouched claims.
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let (kid, pkcs8) = signing_key(&app).await;
    let token = sign(&kid, &pkcs8, &claims(&app, &subject_of(&admin)), json!({}));
    assert_eq!(validate(&app, &token).await, StatusCode::OK);
}

#[tokio::test]
async fn bent_claims_are_refused() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let sub = subject_of(&admin);
    let (kid, pkcs8) = signing_key(&app).await;
    let now = app.clock.unix_seconds();
    let cases: Vec<(&str, Value)> = vec![
        (
            "expired",
            json!({"exp": now - 120, "iat": now - 1000, "nbf": now - 1000}),
        ),
        ("not yet valid", json!({"nbf": now + 300})),
        ("another issuer", json!({"iss": "someone-else"})),
        ("another audience", json!({"aud": "other-system"})),
        (
            "a service audience on a user token",
            json!({"aud": "vivesphere:logging"}),
        ),
        (
            "an MFA-pending token",
            json!({"token_use": "mfa_pending", "aud": "vivesphere:mfa"}),
        ),
        ("a token without exp", json!({"exp": null})),
    ];
    for (why, changes) in cases {
        let mut forged = claims(&app, &sub);
        for (key, value) in changes.as_object().unwrap() {
            if value.is_null() {
                forged.as_object_mut().unwrap().remove(key);
            } else {
                forged[key] = value.clone();
            }
        }
        assert_refused(&app, &sign(&kid, &pkcs8, &forged, json!({})), why).await;
    }
}

#[tokio::test]
async fn alg_none_hs256_with_the_public_key_and_key_headers_are_refused() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let sub = subject_of(&admin);
    let (kid, pkcs8) = signing_key(&app).await;
    let body = URL_SAFE_NO_PAD.encode(claims(&app, &sub).to_string());

    let none_header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": kid}).to_string());
    assert_refused(&app, &format!("{none_header}.{body}."), "alg none").await;

    // HS256 keyed with the published public key (the classic confusion attack).
    let jwks: Value = app
        .get("/api/v1/auth/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    let public = URL_SAFE_NO_PAD
        .decode(jwks["keys"][0]["x"].as_str().unwrap())
        .unwrap();
    let hs_header = URL_SAFE_NO_PAD.encode(json!({"alg": "HS256", "kid": kid}).to_string());
    let input = format!("{hs_header}.{body}");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &public);
    let mac = ring::hmac::sign(&key, input.as_bytes());
    assert_refused(
        &app,
        &format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.as_ref())),
        "HS256 with the public key",
    )
    .await;

    for header in [
        json!({"jku": "https://evil.example/jwks.json"}),
        json!({"x5u": "https://evil.example/cert.pem"}),
        json!({"jwk": {"kty": "OKP", "crv": "Ed25519", "x": jwks["keys"][0]["x"]}}),
    ] {
        assert_refused(
            &app,
            &sign(&kid, &pkcs8, &claims(&app, &sub), header.clone()),
            &header.to_string(),
        )
        .await;
    }
}

#[tokio::test]
async fn an_unknown_kid_or_a_foreign_key_is_refused() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let sub = subject_of(&admin);
    let foreign =
        ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    assert_refused(
        &app,
        &sign(
            "made-up-kid",
            foreign.as_ref(),
            &claims(&app, &sub),
            json!({}),
        ),
        "unknown kid",
    )
    .await;
    let (kid, _) = signing_key(&app).await;
    assert_refused(
        &app,
        &sign(&kid, foreign.as_ref(), &claims(&app, &sub), json!({})),
        "the right kid, a foreign key",
    )
    .await;
}

#[tokio::test]
async fn tampered_claims_break_the_signature() {
    let app = spawn_app().await;
    let body = login_ok(&app, "admin", ADMIN_PASSWORD).await;
    let admin = admin_token(&app).await;
    let viewer = token_of(&app, &admin, "vera", &["Viewer"]).await;
    let parts: Vec<&str> = viewer.split('.').collect();
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    payload["perms"] = json!(["users:admin"]);
    payload["roles"] = json!(["Admin"]);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        parts[2]
    );
    assert_refused(&app, &tampered, "tampered claims").await;
    assert_refused(
        &app,
        body["refresh_token"].as_str().unwrap(),
        "a refresh token as an access token",
    )
    .await;
}

#[tokio::test]
async fn rotated_keys_stay_published_so_issued_tokens_stay_valid() {
    let app = spawn_app().await;
    let before = admin_token(&app).await;
    // The CLI path, against the same storage the running app uses.
    let url_env = app
        .postgres_url
        .as_deref()
        .map(|url| ("VIVESPHERE_DATABASE__URL", url));
    let mut options = crate::helpers::options(&app.data_dir, None, url_env.as_slice());
    // The command runs at the app's time.
    options.clock = app.clock.clone();
    let (kid, signs_from) = vivesphere::app::rotate_signing_keys(&options)
        .await
        .unwrap();
    let jwks: Value = app
        .get("/api/v1/auth/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 2, "{jwks}");
    assert!(kids.contains(&kid.as_str()));
    for key in jwks["keys"].as_array().unwrap() {
        assert_eq!(key["kty"], "OKP");
        assert_eq!(key["alg"], "EdDSA");
        assert!(key.get("d").is_none(), "no private part is ever published");
    }
    assert_eq!(validate(&app, &before).await, StatusCode::OK);

    // Publish before sign: until the lead time (authentication.signing_key_lead_seconds,
    // 600 s) has passed, new tokens are still signed by the old key, which every verifier
    // already has; then by the new one, which they have had for as long.
    let old_kid = kid_of(&before);
    assert_ne!(old_kid, kid);
    assert_eq!(kid_of(&admin_token(&app).await), old_kid);
    assert!(signs_from >= app.clock.unix_seconds() + 599, "{signs_from}");
    // Within a minute the replica looks again and learns when the next key takes over…
    app.clock.advance(std::time::Duration::from_secs(61));
    assert_eq!(kid_of(&admin_token(&app).await), old_kid);
    // (the app's clock also moves on with real time: a few seconds of margin for a login)
    let until =
        |at: i64| std::time::Duration::from_secs((at - app.clock.unix_seconds()).max(0) as u64);
    app.clock.advance(until(signs_from - 3));
    assert_eq!(kid_of(&admin_token(&app).await), old_kid);
    // …and switches then.
    app.clock.advance(until(signs_from));
    let after = admin_token(&app).await;
    assert_eq!(kid_of(&after), kid);
    assert_eq!(validate(&app, &after).await, StatusCode::OK);
    assert_eq!(
        validate(&app, &before).await,
        StatusCode::OK,
        "old tokens live on"
    );
}

/// The `kid` in a token's header.
fn kid_of(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let header = URL_SAFE_NO_PAD.decode(header).unwrap();
    serde_json::from_slice::<Value>(&header).unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_string()
}
