//! X's official twitter-text conformance suite (`third_party/x-api/twitter-text-conformance`),
//! every case of every section, read from its YAML files as published. Each section prints
//! its count; a failing case is named with its description.

use serde_norway::Value;

/// An extraction under test: the text in, the entities out.
type Extraction = fn(&str) -> Vec<x_text::Entity>;
/// A whole-string validator under test.
type Validation<'a> = &'a dyn Fn(&str) -> bool;

fn suite(file: &str) -> Value {
    let path = format!(
        "{}/../../third_party/x-api/twitter-text-conformance/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn cases<'a>(file: &'a Value, section: &str) -> &'a [Value] {
    file["tests"][section]
        .as_sequence()
        .unwrap_or_else(|| panic!("section {section} is missing"))
}

fn text(case: &Value) -> &str {
    case["text"].as_str().expect("every case has a text")
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|items| {
            items
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Runs `check` on every case of a section; fails naming each case that differs.
fn run(file: &Value, section: &str, check: impl Fn(&Value) -> Result<(), String>) {
    let all = cases(file, section);
    let failures: Vec<String> = all
        .iter()
        .filter_map(|case| {
            check(case)
                .err()
                .map(|why| format!("{:?}: {why}", case["description"].as_str().unwrap_or("")))
        })
        .collect();
    println!(
        "{section}: {} of {} pass",
        all.len() - failures.len(),
        all.len()
    );
    assert!(failures.is_empty(), "{section}:\n{}", failures.join("\n"));
    assert!(!all.is_empty(), "{section} has no cases");
}

fn same<T: PartialEq + std::fmt::Debug>(got: T, expected: T) -> Result<(), String> {
    if got == expected {
        Ok(())
    } else {
        Err(format!("got {got:?}, expected {expected:?}"))
    }
}

fn int(value: &Value, key: &str) -> usize {
    value[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is a number")) as usize
}

fn check_weighting(
    config: &twitter_text_config::Configuration,
) -> impl Fn(&Value) -> Result<(), String> {
    move |case| {
        let e = &case["expected"];
        let parsed = x_text::parse_with(text(case), config);
        same(
            parsed,
            x_text::Parsed {
                weighted_length: int(e, "weightedLength"),
                valid: e["valid"].as_bool().unwrap(),
                permillage: int(e, "permillage"),
                display_range: (int(e, "displayRangeStart"), int(e, "displayRangeEnd")),
                valid_range: (int(e, "validRangeStart"), int(e, "validRangeEnd")),
            },
        )
    }
}

#[test]
fn the_v3_configuration_is_xs_published_one() {
    let path = format!(
        "{}/../../third_party/x-api/twitter-text-conformance/config-v3.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let published = twitter_text_config::Configuration::configuration_from_json(
        &std::fs::read_to_string(path).unwrap(),
    );
    assert_eq!(&published, x_text::config());
    assert_eq!(
        published.max_weighted_tweet_length as usize,
        x_text::MAX_WEIGHTED_LENGTH
    );
    assert_eq!(
        published.transformed_url_length as usize,
        x_text::URL_WEIGHT
    );
}

#[test]
fn weighted_length_v3_with_discounted_emoji() {
    let validate = suite("validate.yml");
    run(
        &validate,
        "WeightedTweetsWithDiscountedEmojiCounterTest",
        check_weighting(x_text::config()),
    );
}

#[test]
fn unicode_directional_markers() {
    let validate = suite("validate.yml");
    run(
        &validate,
        "UnicodeDirectionalMarkerCounterTest",
        check_weighting(x_text::config()),
    );
}

/// The rules X used before v3 (v2: emoji not discounted; v1: 140 characters), still part of
/// the suite: the same parser under their configurations.
#[test]
fn earlier_weighting_rules() {
    let validate = suite("validate.yml");
    run(
        &validate,
        "WeightedTweetsCounterTest",
        check_weighting(twitter_text_config::config_v2()),
    );
    run(&validate, "tweets", |case| {
        let valid = x_text::parse_with(text(case), twitter_text_config::config_v1()).valid;
        same(valid, case["expected"].as_bool().unwrap())
    });
}

#[test]
fn whole_string_validation() {
    let validate = suite("validate.yml");
    let validator = x_text::validator();
    let sections: [(&str, Validation); 5] = [
        ("usernames", &|t| validator.is_valid_username(t)),
        ("lists", &|t| validator.is_valid_list(t)),
        ("hashtags", &|t| validator.is_valid_hashtag(t)),
        ("urls", &|t| validator.is_valid_url(t)),
        ("urls_without_protocol", &|t| {
            validator.is_valid_url_without_protocol(t)
        }),
    ];
    for (section, is_valid) in sections {
        run(&validate, section, |case| {
            same(is_valid(text(case)), case["expected"].as_bool().unwrap())
        });
    }
}

fn values(found: Vec<x_text::Entity>) -> Vec<String> {
    found.into_iter().map(|e| e.value).collect()
}

#[test]
fn extraction_without_indices() {
    let extract = suite("extract.yml");
    let sections: [(&str, Extraction); 6] = [
        ("urls", x_text::urls),
        ("tco_urls_with_params", x_text::urls),
        ("hashtags", x_text::hashtags),
        ("hashtags_from_astral", x_text::hashtags),
        ("cashtags", x_text::cashtags),
        ("mentions", x_text::mentions),
    ];
    for (section, extract_from) in sections {
        run(&extract, section, |case| {
            let mut found = extract_from(text(case));
            // `mentions` lists mentioned users; lists are `mentions_or_lists`' business.
            if section == "mentions" {
                found.retain(|e| e.list_slug.is_empty());
            }
            same(values(found), strings(&case["expected"]))
        });
    }
}

#[test]
fn extraction_with_indices() {
    let extract = suite("extract.yml");
    let sections: [(&str, &str, Extraction); 6] = [
        ("urls_with_indices", "url", x_text::urls),
        ("urls_with_directional_markers", "url", x_text::urls),
        ("hashtags_with_indices", "hashtag", x_text::hashtags),
        ("cashtags_with_indices", "cashtag", x_text::cashtags),
        ("mentions_with_indices", "screen_name", x_text::mentions),
        (
            "mentions_or_lists_with_indices",
            "screen_name",
            x_text::mentions,
        ),
    ];
    for (section, key, extract_from) in sections {
        run(&extract, section, |case| {
            let got: Vec<(String, String, usize, usize)> = extract_from(text(case))
                .into_iter()
                .map(|e| (e.value, e.list_slug, e.start, e.end))
                .collect();
            let expected: Vec<(String, String, usize, usize)> = case["expected"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|e| {
                    let at = e["indices"].as_sequence().unwrap();
                    (
                        e[key].as_str().unwrap().to_string(),
                        e["list_slug"].as_str().unwrap_or("").to_string(),
                        at[0].as_u64().unwrap() as usize,
                        at[1].as_u64().unwrap() as usize,
                    )
                })
                .collect();
            same(got, expected)
        });
    }
}

#[test]
fn replies() {
    let extract = suite("extract.yml");
    run(&extract, "replies", |case| {
        same(
            x_text::reply_username(text(case)),
            case["expected"].as_str().map(String::from),
        )
    });
}

#[test]
fn every_published_top_level_domain() {
    let tlds = suite("tlds.yml");
    for kind in ["country", "generic"] {
        run(&tlds, kind, |case| {
            same(values(x_text::urls(text(case))), strings(&case["expected"]))
        });
    }
}

/// Every section of the suite is run above: a new section in a newer copy fails here until
/// it is.
#[test]
fn no_section_of_the_suite_is_left_out() {
    let run_here = [
        (
            "validate.yml",
            "tweets usernames lists hashtags urls urls_without_protocol WeightedTweetsCounterTest WeightedTweetsWithDiscountedEmojiCounterTest UnicodeDirectionalMarkerCounterTest",
        ),
        (
            "extract.yml",
            "mentions mentions_with_indices mentions_or_lists_with_indices replies urls urls_with_indices urls_with_directional_markers tco_urls_with_params hashtags hashtags_from_astral hashtags_with_indices cashtags cashtags_with_indices",
        ),
        ("tlds.yml", "country generic"),
    ];
    for (file, sections) in run_here {
        let mut published: Vec<String> = suite(file)["tests"]
            .as_mapping()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap().to_string())
            .collect();
        published.sort();
        let mut ours: Vec<String> = sections.split(' ').map(String::from).collect();
        ours.sort();
        assert_eq!(published, ours, "{file}");
    }
}
