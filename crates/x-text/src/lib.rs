//! X's weighted post length, as twitter-text v3 counts it: the text is NFC-normalized, every
//! URL counts as 23, an emoji (with its modifiers, joiners and variation selectors) as 2,
//! code points in the light ranges (Latin, Greek, Cyrillic, … up to U+10FF and some
//! punctuation) as 1, and everything else (CJK, for one) as 2. The limit is 280.
//!
//! URLs are recognised when they start with `http://`, `https://` or `www.`; twitter-text
//! also links bare domains (`example.com`), which this does not try to guess.

use unicode_normalization::UnicodeNormalization;

/// The most weighted characters a post may have.
pub const MAX_WEIGHTED_LENGTH: usize = 280;
/// What any URL counts as, whatever its length (X wraps it in t.co).
pub const URL_WEIGHT: usize = 23;

/// twitter-text v3's ranges that weigh 1; the rest weigh 2.
const LIGHT_RANGES: &[(u32, u32)] = &[(0, 4351), (8192, 8205), (8208, 8223), (8242, 8247)];

/// The text as X stores it: NFC.
pub fn normalize(text: &str) -> String {
    text.nfc().collect()
}

/// Byte ranges of the URLs in `text`.
pub fn url_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut search_from = 0;
    while search_from < text.len() {
        let rest = &text[search_from..];
        let Some(found) = ["https://", "http://", "www."]
            .iter()
            .filter_map(|prefix| find_ascii_case_insensitive(rest, prefix).map(|at| (at, prefix)))
            .min_by_key(|(at, _)| *at)
        else {
            break;
        };
        let (offset, prefix) = found;
        let start = search_from + offset;
        // A URL starts a word: `xhttp://` is not one.
        let starts_word = text[..start]
            .chars()
            .next_back()
            .is_none_or(|c| c.is_whitespace() || "([{<\"'".contains(c));
        let host_start = start + prefix.len();
        let mut end = host_start;
        for (i, c) in text[host_start..].char_indices() {
            if c.is_whitespace() || "<>\"".contains(c) {
                break;
            }
            end = host_start + i + c.len_utf8();
        }
        // Trailing punctuation ends a sentence, not the URL.
        while end > host_start && text[..end].ends_with(['.', ',', '!', '?', ')', ';', ':']) {
            end -= 1;
        }
        let has_host = end > host_start;
        if starts_word && has_host {
            spans.push((start, end));
        }
        search_from = end.max(host_start);
    }
    spans
}

fn find_ascii_case_insensitive(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

fn is_light(c: char) -> bool {
    let c = c as u32;
    LIGHT_RANGES.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c))
}

/// Pictographs that start an emoji (the common blocks; enough for X's count).
fn is_emoji_base(c: char) -> bool {
    matches!(c as u32,
        0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0x2300..=0x23FF | 0x2B00..=0x2BFF)
}

/// Code points that belong to the emoji before them.
fn is_emoji_modifier(c: char) -> bool {
    matches!(c as u32, 0xFE0F | 0xFE0E | 0x1F3FB..=0x1F3FF | 0x20E3 | 0xE0020..=0xE007F)
}

fn is_regional_indicator(c: char) -> bool {
    (0x1F1E6..=0x1F1FF).contains(&(c as u32))
}

/// Weighted length of plain text (no URLs in it).
fn weigh_plain(text: &str) -> usize {
    let chars: Vec<char> = text.chars().collect();
    let mut weight = 0;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if is_emoji_base(c) {
            // One emoji: its modifiers, a flag's second letter, and ZWJ-joined parts.
            let mut j = i + 1;
            if is_regional_indicator(c) && chars.get(j).copied().is_some_and(is_regional_indicator)
            {
                j += 1;
            }
            loop {
                match chars.get(j) {
                    Some(&m) if is_emoji_modifier(m) => j += 1,
                    Some('\u{200D}') if chars.get(j + 1).is_some() => j += 2,
                    _ => break,
                }
            }
            weight += 2;
            i = j;
        } else {
            weight += if is_light(c) { 1 } else { 2 };
            i += 1;
        }
    }
    weight
}

/// X's weighted length of `text` (normalized to NFC first).
pub fn weighted_length(text: &str) -> usize {
    let text = normalize(text);
    let mut weight = 0;
    let mut at = 0;
    for (start, end) in url_spans(&text) {
        weight += weigh_plain(&text[at..start]) + URL_WEIGHT;
        at = end;
    }
    weight + weigh_plain(&text[at..])
}

/// Whether `text` fits in one post.
pub fn fits(text: &str) -> bool {
    weighted_length(text) <= MAX_WEIGHTED_LENGTH
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
        // 11 URLs and spaces: 11*23 + 10 = 263 fits, although the raw text is far longer.
        let many = [long.as_str(); 11].join(" ");
        assert_eq!(weighted_length(&many), 263);
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
        // "é" as e + combining acute is two code points, one after NFC.
        assert_eq!(weighted_length("e\u{301}"), 1);
        assert_eq!(normalize("e\u{301}"), "é");
    }

    #[test]
    fn light_punctuation_ranges_count_one() {
        // En dash (U+2013) and prime (U+2032) are in the light ranges; the ellipsis
        // (U+2026) is not.
        assert_eq!(weighted_length("–′"), 2);
        assert_eq!(weighted_length("…"), 2);
    }
}
