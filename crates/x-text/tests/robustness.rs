//! Any text at all — arbitrary Unicode, and glued fragments of URLs, mentions, hashtags,
//! cashtags, retweet prefixes and direction marks — is counted and searched without a panic.
//! (The crate's parser once panicked slicing inside a multi-byte character after `$A.`; see
//! `third_party/twitter-text/PATCHED.md`.)

use proptest::prelude::*;

fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("example.com".to_string()),
        Just("t.co/abc".to_string()),
        Just("https://".to_string()),
        Just("http://a.b".to_string()),
        Just("www.".to_string()),
        Just("例え.jp".to_string()),
        Just("日本語".to_string()),
        Just("😀".to_string()),
        Just("👨‍👩‍👧".to_string()),
        Just("RT".to_string()),
        Just("RT:".to_string()),
        Just("$A".to_string()),
        Just("@".to_string()),
        Just("＠".to_string()),
        Just("#".to_string()),
        Just("＃".to_string()),
        Just("\u{200F}".to_string()),
        Just("\u{202A}".to_string()),
        Just("\u{FEFF}".to_string()),
        Just("e\u{301}".to_string()),
        "[a-z0-9._/:-]{1,4}",
        ".{1,3}",
    ]
}

fn check_everything(text: &str) {
    let parsed = x_text::parse(text);
    assert!(parsed.weighted_length <= text.chars().count() * 2 + 23);
    for entity in x_text::urls(text)
        .into_iter()
        .chain(x_text::mentions(text))
        .chain(x_text::hashtags(text))
        .chain(x_text::cashtags(text))
    {
        assert!(entity.start <= entity.end, "{text:?}: {entity:?}");
        assert!(
            entity.end <= text.encode_utf16().count(),
            "{text:?}: {entity:?}"
        );
    }
    let _ = x_text::reply_username(text);
    for (start, end) in x_text::url_spans(text) {
        assert!(text.get(start..end).is_some(), "{text:?}: {start}..{end}");
    }
}

proptest! {
    // No failure file: tests write nothing into the source tree.
    #![proptest_config(ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn glued_fragments_never_panic(parts in prop::collection::vec(fragment(), 1..16)) {
        check_everything(&parts.concat());
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        check_everything(&text);
    }
}

#[test]
fn the_text_that_made_the_parser_panic_is_counted() {
    let text = "$A. t.co/abc#日本語/";
    assert_eq!(x_text::urls(text).len(), 1);
    assert!(x_text::fits(text));
}
