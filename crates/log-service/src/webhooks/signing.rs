//! Standard Webhooks signatures: a secret is `whsec_` and base64 of 32 random bytes; the
//! signature is `v1,` and base64 of HMAC-SHA256 under those bytes over
//! `{webhook-id}.{webhook-timestamp}.{body}`. While a secret is being rotated out, both
//! sign, separated by a space, so receivers holding either verify.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::hmac;

const PREFIX: &str = "whsec_";

/// A new signing secret, as the receiver is given it.
pub fn new_secret() -> String {
    format!(
        "{PREFIX}{}",
        STANDARD.encode(platform::sealing::random_bytes::<32>())
    )
}

/// The HMAC key bytes of a `whsec_` secret.
fn key_bytes(secret: &str) -> anyhow::Result<Vec<u8>> {
    let encoded = secret.strip_prefix(PREFIX).unwrap_or(secret);
    Ok(STANDARD.decode(encoded)?)
}

/// One `v1,<base64>` signature of `body` under `secret`.
pub fn sign(secret: &str, message_id: &str, timestamp: i64, body: &[u8]) -> anyhow::Result<String> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, &key_bytes(secret)?);
    let mut context = hmac::Context::with_key(&key);
    context.update(message_id.as_bytes());
    context.update(b".");
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    Ok(format!("v1,{}", STANDARD.encode(context.sign().as_ref())))
}

/// The `webhook-signature` header: one signature per secret that signs now.
pub fn signature_header(
    secrets: &[&str],
    message_id: &str,
    timestamp: i64,
    body: &[u8],
) -> anyhow::Result<String> {
    let signatures = secrets
        .iter()
        .map(|secret| sign(secret, message_id, timestamp, body))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(signatures.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example in the Standard Webhooks specification.
    #[test]
    fn the_specification_s_example_signs_to_its_published_signature() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap(),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn each_secret_signs_and_secrets_differ() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert_eq!(key_bytes(&a).unwrap().len(), 32);
        let header = signature_header(&[&a, &b], "msg_1", 7, b"{}").unwrap();
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(
            parts,
            [
                sign(&a, "msg_1", 7, b"{}").unwrap(),
                sign(&b, "msg_1", 7, b"{}").unwrap()
            ]
        );
        assert_ne!(sign(&a, "msg_1", 8, b"{}").unwrap(), parts[0]);
    }
}
