//! X's rules for a post's text, as X's own twitter-text library defines them (v3): the weighted
//! length (NFC first; every URL counts 23, bare domains such as `example.com` included; an
//! emoji sequence 2; code points in the light ranges 1; everything else 2; at most 280) and
//! the entities X links (URLs, mentions, hashtags, cashtags) with their indices.
//!
//! This wraps the `twitter-text` crate (a Rust port of the library) rather than reimplementing
//! it, with its fast (nom) parser and one upstream bug fixed (`third_party/twitter-text/
//! PATCHED.md`: bare domains were weighed as text). It passes the whole official conformance
//! suite (`third_party/x-api/`, run by `tests/conformance.rs`).
//!
//! Counting some texts without spaces is still superlinear, so a text over [`MAX_TEXT_CHARS`]
//! is not parsed: it is too long, whatever it holds.

use twitter_text::ParserBackend;
use twitter_text::extractor::{Extract, Extractor};
use twitter_text_config::Configuration;
use unicode_normalization::UnicodeNormalization;

/// The most weighted characters a post may have.
pub const MAX_WEIGHTED_LENGTH: usize = 280;
/// What any URL counts as, whatever its length (X wraps it in t.co).
pub const URL_WEIGHT: usize = 23;

/// The crate's fastest parser, patched to count as X counts (see the module comment).
const BACKEND: ParserBackend = ParserBackend::Nom;

/// The longest text that is counted at all: above X's own longest conformance case (12,076
/// characters of long URLs), while the worst text for twitter-text's parser (a run of `@a`,
/// still superlinear) takes ~16 ms in release (`cargo bench -p x-text`). A longer text is
/// refused unparsed. X may accept one (eleven URLs of up to 4,096 characters each would
/// be 45,000); this system does not.
pub const MAX_TEXT_CHARS: usize = 15_000;

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
/// A text over [`MAX_TEXT_CHARS`] is reported as over the limit without being parsed.
pub fn parse_with(text: &str, config: &Configuration) -> Parsed {
    if !is_countable(text) {
        return too_long_to_count(text, config);
    }
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

/// Whether `text` is short enough to be counted at all (at most [`MAX_TEXT_CHARS`]).
pub fn is_countable(text: &str) -> bool {
    text.chars().nth(MAX_TEXT_CHARS).is_none()
}

/// A text too long to count: invalid, its length in characters standing in for a weight
/// that was not computed. (Only a text of URLs thousands of characters long could weigh
/// less; X might take such a post, this system does not.)
fn too_long_to_count(text: &str, config: &Configuration) -> Parsed {
    let chars = text.chars().count();
    let max = config.max_weighted_tweet_length.max(1) as usize;
    Parsed {
        weighted_length: chars,
        valid: false,
        permillage: chars * 1000 / max,
        display_range: (0, text.encode_utf16().count().saturating_sub(1)),
        valid_range: (0, 0),
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

/// One entity X links in a text. `start..end` counts UTF-16 code units (a JavaScript string's
/// indices, as twitter-text reports them); `value` has no `@`, `#` or `$`.
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

/// The entities one extraction finds; none in a text too long to count (extraction is as
/// superlinear as counting).
fn extract<'a>(
    kind: EntityKind,
    text: &'a str,
    find: impl FnOnce(&Extractor, &'a str) -> Vec<twitter_text::entity::Entity<'a>>,
) -> Vec<Entity> {
    if !is_countable(text) {
        return Vec::new();
    }
    entities(kind, find(&extractor(), text))
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
    extract(EntityKind::Url, text, |x, t| x.extract_urls_with_indices(t))
}

/// The mentions, and mentions of lists, X links.
pub fn mentions(text: &str) -> Vec<Entity> {
    extract(EntityKind::Mention, text, |x, t| {
        x.extract_mentions_or_lists_with_indices(t)
    })
}

/// The hashtags X links.
pub fn hashtags(text: &str) -> Vec<Entity> {
    extract(EntityKind::Hashtag, text, |x, t| {
        x.extract_hashtags_with_indices(t)
    })
}

/// The cashtags X links.
pub fn cashtags(text: &str) -> Vec<Entity> {
    extract(EntityKind::Cashtag, text, |x, t| {
        x.extract_cashtags_with_indices(t)
    })
}

/// The user a text replies to: a mention that opens it (after spaces only).
pub fn reply_username(text: &str) -> Option<String> {
    if !is_countable(text) {
        return None;
    }
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
    // Entity indices count UTF-16 units: map each unit offset to its byte offset.
    let mut byte_at = Vec::with_capacity(text.len() + 1);
    for (at, c) in text.char_indices() {
        byte_at.extend(std::iter::repeat_n(at, c.len_utf16()));
    }
    byte_at.push(text.len());
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
    fn a_text_too_long_to_count_is_refused_unparsed() {
        let longest = "x".repeat(MAX_TEXT_CHARS);
        assert!(is_countable(&longest));
        assert_eq!(weighted_length(&longest), MAX_TEXT_CHARS);
        let over = format!("{longest}x");
        assert!(!is_countable(&over));
        assert!(!fits(&over));
        assert_eq!(weighted_length(&over), MAX_TEXT_CHARS + 1);
    }

    #[test]
    fn entity_indices_count_utf16_code_units() {
        // 😀 is two UTF-16 units: the mention starts at 3, as in a JavaScript string.
        let found = mentions("😀 @ab");
        assert_eq!((found[0].start, found[0].end), (3, 6));
    }

    #[test]
    fn url_spans_are_byte_ranges_that_slice_the_text() {
        let text = "日本😀 example.com and https://t.co/x!";
        let spans = url_spans(text);
        let sliced: Vec<&str> = spans.iter().map(|(a, b)| &text[*a..*b]).collect();
        assert_eq!(sliced, ["example.com", "https://t.co/x"]);
    }
}
