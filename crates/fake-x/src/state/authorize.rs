//! OAuth 2.0 Authorization Code with PKCE (RFC 6749 §4.1, RFC 7636), as X runs it: the user
//! consents at `/i/oauth2/authorize`, the app is redirected back with a one-time code, and
//! redeems it at `/2/oauth2/token` with the verifier whose S256 challenge the authorize step
//! saw. Codes live 30 seconds, as X's do, and are spent by the first attempt to redeem them.

use base64::Engine;

use super::{FakeX, Principal};

/// How long an authorization code can be redeemed (X: 30 seconds).
pub const CODE_TTL_SECONDS: u64 = 30;

/// What the authorize step saw, kept under the code it issued.
#[derive(Debug, Clone)]
pub(super) struct AuthCode {
    user_id: String,
    client_id: String,
    redirect_uri: String,
    challenge: String,
    /// The `plain` method: the challenge is the verifier itself.
    plain: bool,
    scopes: Vec<String>,
    expires_at: u64,
}

/// A consented authorize request.
pub struct Consent<'a> {
    pub username: &'a str,
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub code_challenge: &'a str,
    /// `code_challenge_method=plain` (else S256).
    pub plain: bool,
    pub scopes: Vec<String>,
}

/// Why a code was not exchanged, as RFC 6749 §5.2 names it, with X's description.
#[derive(Debug, PartialEq, Eq)]
pub struct GrantRefused {
    pub error: &'static str,
    pub description: &'static str,
}

fn refused(error: &'static str, description: &'static str) -> GrantRefused {
    GrantRefused { error, description }
}

/// `BASE64URL(SHA256(verifier))`, the S256 method (RFC 7636 §4.2).
pub fn s256_challenge(verifier: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

impl FakeX {
    /// The user named consents to the app's request: a one-time code for it, or `None` when
    /// X has no such user.
    pub fn consent(&self, consent: Consent<'_>) -> Option<String> {
        let mut inner = self.inner();
        let user_id = inner
            .users
            .values()
            .find(|u| u.username.eq_ignore_ascii_case(consent.username))?
            .id
            .clone();
        let code = super::random_token("fxc-");
        let expires_at = self.unix_now() + CODE_TTL_SECONDS;
        inner.codes.insert(
            code.clone(),
            AuthCode {
                user_id,
                client_id: consent.client_id.to_string(),
                redirect_uri: consent.redirect_uri.to_string(),
                challenge: consent.code_challenge.to_string(),
                plain: consent.plain,
                scopes: consent.scopes,
                expires_at,
            },
        );
        Some(code)
    }

    /// Redeems a code (once: a failed attempt spends it too, as a replayed code is the
    /// attack it stops) for tokens, when the client, redirect URI and verifier match.
    pub(crate) fn redeem_code(
        &self,
        code: &str,
        client_id: Option<&str>,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
    ) -> Result<(String, String, Vec<String>), GrantRefused> {
        let mut inner = self.inner();
        let Some(granted) = inner.codes.remove(code) else {
            return Err(refused(
                "invalid_grant",
                "Value passed for the authorization code was invalid.",
            ));
        };
        if granted.expires_at <= self.unix_now() {
            return Err(refused(
                "invalid_grant",
                "Value passed for the authorization code was invalid.",
            ));
        }
        if client_id != Some(granted.client_id.as_str()) {
            return Err(refused(
                "invalid_client",
                "Missing valid authorization header",
            ));
        }
        if redirect_uri != Some(granted.redirect_uri.as_str()) {
            return Err(refused(
                "invalid_request",
                "Value passed for the redirect uri did not match the uri of the authorization code.",
            ));
        }
        let challenge = verifier.map(|v| {
            if granted.plain {
                v.to_string()
            } else {
                s256_challenge(v)
            }
        });
        if challenge.as_deref() != Some(granted.challenge.as_str()) {
            return Err(refused(
                "invalid_request",
                "Value passed for the code verifier did not match the code challenge.",
            ));
        }
        let scopes = granted.scopes.clone();
        let principal = Principal {
            user_id: Some(granted.user_id),
            client_id: granted.client_id,
            scopes: granted.scopes,
        };
        let (access, refresh) = self.issue_tokens(&mut inner, principal);
        Ok((access, refresh, scopes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewUser, Settings};

    fn fake() -> FakeX {
        let fake = FakeX::new(
            Settings::default(),
            platform::Clock::frozen(time::macros::datetime!(2030-03-17 09:00 UTC)),
        );
        fake.add_user(NewUser::named("storm_bot"));
        fake
    }

    fn consent(fake: &FakeX, verifier: &str) -> String {
        let challenge = s256_challenge(verifier);
        fake.consent(Consent {
            username: "storm_bot",
            client_id: "app-1",
            redirect_uri: "https://console.example/x/callback",
            code_challenge: &challenge,
            plain: false,
            scopes: vec!["tweet.write".into(), "offline.access".into()],
        })
        .expect("a code")
    }

    #[test]
    fn the_rfc_7636_example_challenge() {
        // RFC 7636, Appendix B.
        assert_eq!(
            s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn a_code_is_redeemed_once_with_its_verifier_client_and_redirect() {
        let fake = fake();
        let redirect = Some("https://console.example/x/callback");
        let code = consent(&fake, "verifier-one-verifier-one-verifier-one-0123");
        let wrong = fake.redeem_code(&code, Some("app-1"), redirect, Some("another-verifier"));
        assert_eq!(wrong.unwrap_err().error, "invalid_request");
        // The failed attempt spent the code.
        let again = fake.redeem_code(
            &code,
            Some("app-1"),
            redirect,
            Some("verifier-one-verifier-one-verifier-one-0123"),
        );
        assert_eq!(again.unwrap_err().error, "invalid_grant");

        let code = consent(&fake, "verifier-two-verifier-two-verifier-two-0123");
        let other_client = fake.redeem_code(
            &code,
            Some("app-2"),
            redirect,
            Some("verifier-two-verifier-two-verifier-two-0123"),
        );
        assert_eq!(other_client.unwrap_err().error, "invalid_client");

        let code = consent(&fake, "verifier-3-verifier-3-verifier-3-verifier-3");
        let (access, refresh, scopes) = fake
            .redeem_code(
                &code,
                Some("app-1"),
                redirect,
                Some("verifier-3-verifier-3-verifier-3-verifier-3"),
            )
            .expect("tokens");
        assert!(!refresh.is_empty(), "offline.access gives a refresh token");
        assert_eq!(scopes, ["tweet.write", "offline.access"]);
        let principal = fake.authenticate(&access).expect("a live token");
        assert_eq!(principal.client_id, "app-1");
    }

    #[test]
    fn a_code_older_than_thirty_seconds_is_refused() {
        let clock = platform::Clock::frozen(time::macros::datetime!(2030-03-17 09:00 UTC));
        let fake = FakeX::new(Settings::default(), clock.clone());
        fake.add_user(NewUser::named("storm_bot"));
        let code = consent(&fake, "verifier-4-verifier-4-verifier-4-verifier-4");
        clock.advance(std::time::Duration::from_secs(CODE_TTL_SECONDS));
        let late = fake.redeem_code(
            &code,
            Some("app-1"),
            Some("https://console.example/x/callback"),
            Some("verifier-4-verifier-4-verifier-4-verifier-4"),
        );
        assert_eq!(late.unwrap_err().error, "invalid_grant");
    }
}
