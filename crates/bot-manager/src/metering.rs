//! What a use of X costs: the kind of use X bills (a post — dearer with a URL, as X counts
//! URLs —, a delete, a read) priced from the live price table.

use crate::settings::Pricing;
use crate::store::usage::Charge;

/// The billed kind of creating a post with `text`: X prices a post that contains a URL
/// higher, and finds URLs as its own text library does.
pub fn post_kind(text: &str) -> &'static str {
    if x_text::urls(text).is_empty() {
        "post"
    } else {
        "post_with_url"
    }
}

/// `units` uses of `kind` at `pricing`.
pub fn charge(pricing: &Pricing, kind: &'static str, units: i64) -> Charge {
    let each = match kind {
        "post" => pricing.post_micros,
        "post_with_url" => pricing.post_with_url_micros,
        "delete" => pricing.delete_micros,
        "read" => pricing.read_micros,
        _ => pricing.media_upload_micros,
    };
    Charge {
        kind,
        units,
        cost_micros: each * units,
        currency: pricing.currency.clone(),
    }
}

/// Millionths as a decimal string with six places (`"0.445000"`).
pub fn money(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let micros = micros.unsigned_abs();
    format!("{sign}{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_anywhere_x_sees_one_makes_the_dearer_post() {
        assert_eq!(post_kind("Good morning"), "post");
        assert_eq!(
            post_kind("Forecast: https://example.com/f"),
            "post_with_url"
        );
        // X links bare domains too.
        assert_eq!(post_kind("see example.com today"), "post_with_url");
        assert_eq!(post_kind("an e-mail a@example.com is not a link"), "post");
    }

    #[test]
    fn costs_are_exact_millionths() {
        let pricing = Pricing::default();
        let posts = charge(&pricing, "post", 3);
        let linked = charge(&pricing, "post_with_url", 2);
        assert_eq!(posts.cost_micros + linked.cost_micros, 445_000);
        assert_eq!(charge(&pricing, "read", 7).cost_micros, 7_000);
        assert_eq!(posts.currency, "USD");
    }

    #[test]
    fn money_has_six_places_and_a_sign() {
        assert_eq!(money(445_000), "0.445000");
        assert_eq!(money(1_200_000_001), "1200.000001");
        assert_eq!(money(0), "0.000000");
        assert_eq!(money(-15_000), "-0.015000");
    }
}
