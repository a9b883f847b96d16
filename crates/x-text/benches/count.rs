//! `cargo bench -p x-text`: how long X's count takes, per text — a typical post, and the
//! longest texts counted at all (`MAX_TEXT_CHARS`), including the runs without spaces on
//! which every twitter-text parser is superlinear. Prints a table; asserts nothing.

use std::hint::black_box;
use std::time::{Duration, Instant};

fn time_per_call(text: &str) -> Duration {
    let mut calls = 0u32;
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(500) || calls < 3 {
        black_box(x_text::parse(black_box(text)));
        calls += 1;
    }
    started.elapsed() / calls
}

fn main() {
    let max = x_text::MAX_TEXT_CHARS;
    let typical = "Launch day! 🚀 Read the notes at https://example.com/releases/2031/v2 or \
                   example.org/docs — thanks @alice and @bob_x #release $ACME 日本語もあります. "
        .repeat(2);
    let long_url = format!("https://example.com/{}", "a".repeat(850));
    let cases: Vec<(&str, String)> = vec![
        ("a typical post (~250 characters)", typical),
        (
            "11 URLs of 870 characters",
            [long_url.as_str(); 11].join(" "),
        ),
        ("words, MAX_TEXT_CHARS", "hello world ".repeat(max / 12)),
        ("one run of x, MAX_TEXT_CHARS", "x".repeat(max)),
        ("a.a.a…, MAX_TEXT_CHARS", "a.".repeat(max / 2)),
        ("éééé…, MAX_TEXT_CHARS", "é".repeat(max)),
        ("@a@a@a…, MAX_TEXT_CHARS (the worst)", "@a".repeat(max / 2)),
        ("over MAX_TEXT_CHARS (not parsed)", "x".repeat(max * 4)),
    ];
    println!("{:<36} {:>14} {:>10}", "text", "per count", "weight");
    for (name, text) in cases {
        let per = time_per_call(&text);
        let weight = x_text::weighted_length(&text);
        println!(
            "{name:<36} {:>11.1} µs {weight:>10}",
            per.as_secs_f64() * 1e6
        );
    }
}
