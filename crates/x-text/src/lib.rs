//! X's rules for a post's text, as X's own twitter-text library defines them (v3): the weighted
//! length (NFC first; every URL counts 23, bare domains such as `example.com` included; an
//! emoji sequence 2; code points in the light ranges 1; everything else 2; at most 280) and
//! the entities X links (URLs, mentions, hashtags, cashtags) with their indices.
//!
//! This wraps the `twitter-text` crate (a Rust port of the library) rather than reimplementing
//! it: it passes the whole official conformance suite (`third_party/x-api/`, run by
//! `tests/conformance.rs`). One choice is ours: its default parser backend (nom) extracts a
//! bare domain but weighs it as plain text (`x.com` counts 5 where X and the JavaScript
//! reference count 23), so a post of eleven bare domains would be refused here and accepted at
//! X, and a bare `x.com` the other way round. The `External` backend (pest grammar with TLD
//! lookup) weighs every extracted URL as X does and passes the same suite, so it is the one
//! used everywhere below.

use twitter_text::ParserBackend;
use twitter_text::extractor::{Extract, Extractor};
use twitter_text_config::Configuration;
use unicode_normalization::UnicodeNormalization;

/// The most weighted characters a post may have.
pub const MAX_WEIGHTED_LENGTH: usize = 280;
/// What any URL counts as, whatever its length (X wraps it in t.co).
pub const URL_WEIGHT: usize = 23;

/// The parser backend that counts as X counts (see the module comment).
const BACKEND: ParserBackend = ParserBackend::External;

/// twitter-text's v3 configuration: the one X applies to posts.
pub fn config() -> &'static Configuration {
    twitter_text_config::config_v3()
}

/// The text as X stores it: NFC.
pub fn normalize(text: &str) -> String {
    text.nfc().collect()
}

/// What X's `parseTweet` says of a text. Ranges are inclusive, in UTF-16 code units, as
/// twitter-text reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    pub weighted_length: usize,
    /// Within 280, not empty, and free of the characters X refuses (U+FFFE, U+FEFF, U+FFFF).
    pub valid: bool,
    /// The weighted length per mille of the limit (what a length meter shows).
    pub permillage: usize,
    pub display_range: (usize, usize),
    pub valid_range: (usize, usize),
}

/// Parses `text` under `config` (v3 for posts; the conformance suite also checks v1 and v2).
pub fn parse_with(text: &str, config: &Configuration) -> Parsed {
    let parsed = twitter_text::parse_with_parser_backend(text, config, true, BACKEND);
    let count = |n: i32| n.max(0) as usize;
    Parsed {
        weighted_length: count(parsed.weighted_length),
        valid: parsed.is_valid,
        permillage: count(parsed.permillage),
        display_range: (
            count(parsed.display_text_range.start()),
            count(parsed.display_text_range.end()),
        ),
        valid_range: (
            count(parsed.valid_text_range.start()),
            count(parsed.valid_text_range.end()),
        ),
    }
}

/// Parses `text` as X parses a post.
pub fn parse(text: &str) -> Parsed {
    parse_with(text, config())
}

/// X's weighted length of `text` (normalized to NFC first).
pub fn weighted_length(text: &str) -> usize {
    if text.is_empty() {
        return 0;
    }
    parse(text).weighted_length
}

/// Whether `text` may be a post's text: within 280 and free of the characters X refuses. The
/// empty text fits (a post of media only); whether a post needs text is the caller's rule.
pub fn fits(text: &str) -> bool {
    text.is_empty() || parse(text).valid
}

/// What an entity is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntityKind {
    Url,
    Mention,
    Hashtag,
    Cashtag,
}

/// One entity X links in a text. `start..end` counts code points, as the conformance suite and
/// X's entity indices do; `value` has no `@`, `#` or `$`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity {
    pub kind: EntityKind,
    pub value: String,
    /// For a mention of a list (`@user/list`), the list's slug with its `/`; otherwise empty.
    pub list_slug: String,
    pub start: usize,
    pub end: usize,
}

fn extractor() -> Extractor {
    Extractor::with_parser_backend(BACKEND)
}

fn entities(kind: EntityKind, found: Vec<twitter_text::entity::Entity<'_>>) -> Vec<Entity> {
    found
        .iter()
        .map(|e| Entity {
            kind,
            value: e.get_value().to_string(),
            list_slug: e.get_list_slug().to_string(),
            start: e.get_start().max(0) as usize,
            end: e.get_end().max(0) as usize,
        })
        .collect()
}

/// The URLs X links, with and without a protocol (`example.com` is one).
pub fn urls(text: &str) -> Vec<Entity> {
    entities(EntityKind::Url, extractor().extract_urls_with_indices(text))
}

/// The mentions, and mentions of lists, X links.
pub fn mentions(text: &str) -> Vec<Entity> {
    entities(
        EntityKind::Mention,
        extractor().extract_mentions_or_lists_with_indices(text),
    )
}

/// The hashtags X links.
pub fn hashtags(text: &str) -> Vec<Entity> {
    entities(
        EntityKind::Hashtag,
        extractor().extract_hashtags_with_indices(text),
    )
}

/// The cashtags X links.
pub fn cashtags(text: &str) -> Vec<Entity> {
    entities(
        EntityKind::Cashtag,
        extractor().extract_cashtags_with_indices(text),
    )
}

/// The user a text replies to: a mention that opens it (after spaces only).
pub fn reply_username(text: &str) -> Option<String> {
    extractor()
        .extract_reply_username(text)
        .map(|e| e.get_value().to_string())
}

/// X's validators for a username, a list, a hashtag and a URL, each as a whole string.
pub fn validator() -> twitter_text::validator::Validator {
    twitter_text::validator::Validator::with_parser_backend(BACKEND)
}

/// Byte ranges of the URLs in `text` (for slicing it).
pub fn url_spans(text: &str) -> Vec<(usize, usize)> {
    let byte_at: Vec<usize> = text
        .char_indices()
        .map(|(at, _)| at)
        .chain([text.len()])
        .collect();
    let byte = |index: usize| byte_at.get(index).copied().unwrap_or(text.len());
    urls(text)
        .into_iter()
        .map(|url| (byte(url.start), byte(url.end)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin_counts_one_per_character() {
        assert_eq!(weighted_length("hello world"), 11);
        assert!(fits(&"a".repeat(280)));
        assert!(!fits(&"a".repeat(281)));
    }

    #[test]
    fn cjk_counts_two() {
        assert_eq!(weighted_length("日本語"), 6);
        assert!(fits(&"字".repeat(140)));
        assert!(!fits(&"字".repeat(141)));
    }

    #[test]
    fn a_url_counts_23_whatever_its_length() {
        let long = format!("https://example.com/{}", "a".repeat(200));
        assert_eq!(weighted_length(&long), 23);
        assert_eq!(weighted_length("see https://x.co now"), 4 + 23 + 4);
        assert_eq!(weighted_length("www.example.org."), 23 + 1);
        let many = [long.as_str(); 11].join(" ");
        assert_eq!(weighted_length(&many), 263);
    }

    /// What X and its JavaScript reference library (twitter-text 3.1.0) count; the crate's
    /// default backend counts these as plain text.
    #[test]
    fn a_bare_domain_counts_23_as_at_x() {
        assert_eq!(weighted_length("x.com"), 23);
        assert_eq!(weighted_length("example.com"), 23);
        assert_eq!(weighted_length("see example.com now"), 4 + 23 + 4);
        // Eleven bare domains: 11 × 23 + 10 spaces, which X accepts.
        let eleven = ["example.com"; 11].join(" ");
        assert_eq!(weighted_length(&eleven), 263);
        assert!(fits(&eleven));
        // Thirteen do not fit (13 × 23 + 12 = 311), though the raw text is 155 characters.
        assert!(!fits(&["example.com"; 13].join(" ")));
    }

    #[test]
    fn a_url_inside_a_word_is_not_one() {
        assert_eq!(weighted_length("xhttp://a"), 9);
        assert_eq!(weighted_length("http://"), 7);
    }

    #[test]
    fn emoji_count_two_with_their_modifiers_and_joiners() {
        assert_eq!(weighted_length("😀"), 2);
        assert_eq!(weighted_length("👍🏽"), 2);
        assert_eq!(weighted_length("👨‍👩‍👧"), 2);
        assert_eq!(weighted_length("🇫🇷"), 2);
        assert_eq!(weighted_length("❤️"), 2);
    }

    #[test]
    fn text_is_nfc_normalized_before_counting() {
        assert_eq!(weighted_length("e\u{301}"), 1);
        assert_eq!(normalize("e\u{301}"), "é");
    }

    #[test]
    fn characters_x_refuses_make_a_text_unfit_whatever_its_length() {
        assert!(!fits("hello\u{FFFE}"));
        assert!(!fits("\u{FEFF}"));
        assert!(fits(""));
    }

    #[test]
    fn url_spans_are_byte_ranges_that_slice_the_text() {
        let text = "日本 example.com and https://t.co/x!";
        let spans = url_spans(text);
        let sliced: Vec<&str> = spans.iter().map(|(a, b)| &text[*a..*b]).collect();
        assert_eq!(sliced, ["example.com", "https://t.co/x"]);
    }
}
