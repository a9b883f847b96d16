//! A property of the whole publishing path: no post that passes the Bot Manager's checks is
//! refused by X for its shape or length. Generated posts — texts made of words, URLs, bare
//! domains, emoji, CJK, mentions, hashtags, combining marks; zero to four media — go through
//! `check_text` and `check_media`, and those that pass are sent by the real X client to the
//! fake X, which validates them as X's document and twitter-text say. It may refuse a
//! duplicate (a generated text repeats); never a shape or a length.

use std::sync::Arc;

use platform::config::Secret;
use proptest::prelude::*;

use crate::model::{check_media, check_text};
use crate::settings::XApiSettings;
use crate::xapi::XClient;

/// A piece of a generated text.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z]{1,12}",
        "[0-9]{1,6}",
        Just("https://example.com/a/very/long/path?with=query&and=more".to_string()),
        Just("http://t.co/x".to_string()),
        Just("example.com".to_string()),
        Just("x.com".to_string()),
        Just("www.example.org/page".to_string()),
        Just("sub.domain.co.uk".to_string()),
        Just("😀".to_string()),
        Just("👨‍👩‍👧".to_string()),
        Just("🇫🇷".to_string()),
        Just("👍🏽".to_string()),
        "[日本語中文한국어]{1,8}",
        "@[a-z_]{1,15}",
        "#[a-z]{1,10}",
        "\\$[A-Z]{1,4}",
        Just("e\u{301}".to_string()),
        Just("…".to_string()),
        Just("–".to_string()),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..40).prop_map(|pieces| pieces.join(" "))
}

struct Fake {
    fake: Arc<fake_x::FakeX>,
    client: XClient,
    token: Secret,
    media: Vec<String>,
    runtime: tokio::runtime::Runtime,
}

fn fake() -> Fake {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let settings = fake_x::Settings {
        post_limit: u32::MAX,
        daily_post_limit: u32::MAX,
        ..Default::default()
    };
    let fake = Arc::new(fake_x::FakeX::new(settings, platform::Clock::system()));
    let user = fake.add_user(fake_x::NewUser::named("prop"));
    let media = (0..4)
        .map(|_| {
            fake.add_media(&user.user_id, fake_x::MediaKind::Photo)
                .unwrap()
                .media_id
        })
        .collect();
    let url = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let router = fake_x::router(fake.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        url
    });
    let client = XClient::new(&XApiSettings {
        base_url: url,
        ..Default::default()
    })
    .unwrap();
    Fake {
        fake,
        client,
        token: Secret::new(user.access_token),
        media,
        runtime,
    }
}

proptest! {
    // No failure file: tests write nothing into the source tree (a failure prints its
    // minimal input instead).
    #![proptest_config(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_post_the_bot_manager_accepts_x_accepts(text in text(), media in 0usize..=4) {
        thread_local! { static FAKE: Fake = fake(); }
        FAKE.with(|x| {
            let ids = &x.media[..media];
            check_media(ids).unwrap();
            let Ok(text) = check_text(&text, !ids.is_empty()) else {
                // Refused here: too long or blank, which X refuses too (same x_text rules).
                return Ok(());
            };
            let answer = x.runtime.block_on(x.client.create_post(&x.token, &text, ids));
            let answer = answer.map_err(|e| TestCaseError::fail(e.to_string()))?;
            let refused_as_duplicate = answer.problem().is_duplicate_content();
            prop_assert!(
                answer.status == 201 || refused_as_duplicate,
                "X refused {text:?} with {} media: {} {}", ids.len(), answer.status, answer.body
            );
            prop_assert!(x.fake.contract_violations().is_empty());
            Ok(())
        })?;
    }
}
