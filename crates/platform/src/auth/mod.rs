//! Token verification for every service: the claims the Authentication service puts in its
//! JWTs, a verifier that checks them against the published JWKS and the revocation list, and
//! the axum extractor handlers use to require an authenticated caller and a permission.

mod caller;
mod claims;
mod extract;
mod keys;
mod replicas;
mod service_secrets;
mod service_tokens;
mod verifier;

pub use caller::{ADMIN_ROLE, Caller, Reach, check_team_name};
pub use claims::{Claims, Revocation, RevocationKind, TokenUse};
pub use extract::{Authenticated, bearer_token};
pub use keys::{HttpKeySource, Jwk, JwkSet, KeySource};
pub use replicas::Replicas;
pub use service_secrets::{service_secret, service_secret_path};
pub use service_tokens::ServiceTokens;
pub use verifier::{TokenError, TokenVerifier};

/// Subject of the fan-out events that announce revocations (`auth.revocations.<kind>`).
pub const REVOCATION_SUBJECT_FILTER: &str = "auth.revocations.>";
