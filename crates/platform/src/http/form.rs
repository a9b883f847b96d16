//! `application/x-www-form-urlencoded` and URI component encoding, for the few places that
//! build them by hand (OAuth form bodies, otpauth URIs).

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// A form body from name/value pairs.
pub fn form_body(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_characters_are_escaped_and_unreserved_kept() {
        assert_eq!(
            form_body(&[("a", "x y&z=1"), ("b", "ok-_.~")]),
            "a=x%20y%26z%3D1&b=ok-_.~"
        );
        assert_eq!(percent_encode("é"), "%C3%A9");
    }
}
