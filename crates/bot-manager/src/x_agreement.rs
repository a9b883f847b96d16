//! A property of the whole publishing path: no post that passes the Bot Manager's checks is
//! refused by X for its shape or length. Generated posts — texts made of words, URLs, bare
//! domains, emoji, CJK, mentions, hashtags, combining marks; zero to four media; replies and
//! quotes (of a live post, or of well- and ill-formed ids), polls of any size and duration,
//! reply settings — go through `check_text`, `check_media` and `check_options`, and those
//! that pass are sent by the real X client to the fake X, which validates them as X's
//! document and twitter-text say. It may refuse a duplicate (a generated text repeats) or a
//! reply to a post that is not there; never a shape or a length.

use std::sync::Arc;

use platform::config::Secret;
use proptest::prelude::*;

use crate::model::{Poll, PostOptions, ReplySettings, check_media, check_options, check_text};
use crate::settings::XApiSettings;
use crate::xapi::{PostContent, XClient};

/// The live post that generated replies and quotes may point at.
const ROOT: &str = "root";

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
    prop::collection::vec(piece(), 1..30).prop_map(|pieces| pieces.join(" "))
}

/// A post id to reply to or quote: the live root, or any string that may or may not be one.
fn post_id() -> impl Strategy<Value = String> {
    prop_oneof![Just(ROOT.to_string()), "[0-9]{1,21}", "[0-9a-z-]{0,6}"]
}

/// Options near X's limits on both sides, mostly valid so that most cases reach the fake.
fn options() -> impl Strategy<Value = PostOptions> {
    let choices = prop::collection::vec("[a-zé日😀 ]{0,26}", 1..=5);
    let minutes = prop_oneof![4 => 5u32..=10_080, 1 => 0u32..20_000];
    let poll = (choices, minutes).prop_map(|(options, duration_minutes)| Poll {
        options,
        duration_minutes,
    });
    let settings = prop_oneof![
        Just(ReplySettings::Following),
        Just(ReplySettings::MentionedUsers),
        Just(ReplySettings::Subscribers),
    ];
    (
        prop::option::weighted(0.3, post_id()),
        prop::option::weighted(0.2, post_id()),
        prop::option::weighted(0.5, poll),
        prop::option::of(settings),
    )
        .prop_map(|(reply, quote, poll, reply_settings)| PostOptions {
            reply_to_x_post_id: reply,
            quote_x_post_id: quote,
            poll,
            reply_settings,
        })
}

struct Fake {
    fake: Arc<fake_x::FakeX>,
    client: XClient,
    token: Secret,
    media: Vec<String>,
    root: String,
    runtime: tokio::runtime::Runtime,
}

fn fake() -> Fake {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let settings = fake_x::Settings {
        // A thousand posts from one account: no posting limit may stop them.
        post_limit: u32::MAX,
        daily_post_limit: u32::MAX,
        user_3h_post_limit: u32::MAX,
        app_daily_post_limit: u32::MAX,
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
    let token = Secret::new(user.access_token);
    let root = PostContent {
        text: "the root",
        media_ids: &[],
        options: &PostOptions::default(),
    };
    let created = runtime.block_on(client.create_post(&token, &root)).unwrap();
    let root = created.body["data"]["id"].as_str().unwrap().to_string();
    Fake {
        fake,
        client,
        token,
        media,
        root,
        runtime,
    }
}

proptest! {
    // No failure file: tests write nothing into the source tree (a failure prints its
    // minimal input instead).
    #![proptest_config(ProptestConfig {
        cases: 1000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_post_the_bot_manager_accepts_x_accepts(
        text in text(),
        media in prop_oneof![3 => Just(0usize), 1 => 1usize..=4],
        mut options in options(),
    ) {
        thread_local! { static FAKE: Fake = fake(); }
        FAKE.with(|x| {
            for id in [&mut options.reply_to_x_post_id, &mut options.quote_x_post_id].into_iter().flatten() {
                if id == ROOT {
                    id.clone_from(&x.root);
                }
            }
            let ids = &x.media[..media];
            check_media(ids).unwrap();
            // Refused here (blank, too long, a malformed id, a poll out of X's limits, or
            // members X makes exclusive): X refuses these too, as the fake's own tests show.
            if check_options(&options, !ids.is_empty()).is_err() {
                return Ok(());
            }
            let Ok(text) = check_text(&text, !ids.is_empty()) else {
                return Ok(());
            };
            let post = PostContent { text: &text, media_ids: ids, options: &options };
            let answer = x.runtime.block_on(x.client.create_post(&x.token, &post));
            let answer = answer.map_err(|e| TestCaseError::fail(e.to_string()))?;
            let problem = answer.problem();
            let target_gone = problem.status == 403 && problem.detail.contains("deleted or not visible");
            prop_assert!(
                answer.status == 201 || problem.is_duplicate_content() || target_gone,
                "X refused {text:?} with {} media and {options:?}: {} {}",
                ids.len(), answer.status, answer.body
            );
            prop_assert!(x.fake.contract_violations().is_empty());
            Ok(())
        })?;
    }
}
