//! The near-duplicate fingerprint behind X's rule against posting identical or
//! substantially similar content from several accounts: the text is NFKC-folded and
//! lowercased, URLs and mentions are dropped (they vary while the message stays the same),
//! and only letters and digits are kept, so spacing, punctuation, emoji and case changes do
//! not make a message new. Its SHA-256 is what the store compares.

use unicode_normalization::UnicodeNormalization;

/// The hex SHA-256 of the text's normalized form.
pub fn fingerprint(text: &str) -> String {
    let folded: String = text.nfkc().collect::<String>().to_lowercase();
    let mut kept = String::with_capacity(folded.len());
    let mut at = 0;
    for (start, end) in x_text::url_spans(&folded) {
        kept.push_str(&folded[at..start]);
        at = end;
    }
    kept.push_str(&folded[at..]);
    let essence: String = kept
        .split_whitespace()
        .filter(|word| !word.starts_with('@'))
        .flat_map(|word| word.chars().filter(|c| c.is_alphanumeric()))
        .collect();
    sha256_hex(essence.as_bytes())
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::fingerprint;

    #[test]
    fn case_spacing_punctuation_urls_and_mentions_do_not_make_text_new() {
        let base = fingerprint("Big sale today! https://shop.example.com/a");
        assert_eq!(
            base,
            fingerprint("big   SALE today!!! https://other.example.org/b")
        );
        assert_eq!(base, fingerprint("@friend Big sale, today"));
        assert_eq!(base, fingerprint("Ｂｉｇ sale today"));
    }

    #[test]
    fn different_words_are_different() {
        assert_ne!(
            fingerprint("Big sale today"),
            fingerprint("Big sale tomorrow")
        );
    }
}
