//! Posts as X shows them: only the fields asked for (`tweet.fields`), and the objects the
//! expansions name (`expansions`) under `includes`, polls shaped by `poll.fields`. Media and
//! users in `includes` carry their identifying fields only (`media.fields` and `user.fields`
//! are checked against X's lists, not modelled).

use serde_json::{Map, Value, json};

use super::{Inner, Post};

/// What a lookup asked to see.
#[derive(Debug, Default)]
pub(crate) struct View {
    pub tweet_fields: Vec<String>,
    pub expansions: Vec<String>,
    pub poll_fields: Vec<String>,
}

impl View {
    fn field(&self, name: &str) -> bool {
        self.tweet_fields.iter().any(|f| f == name)
    }

    fn expands(&self, name: &str) -> bool {
        self.expansions.iter().any(|e| e == name)
    }
}

/// Posts rendered, and the `includes` their expansions bring (`None` when there are none).
pub(crate) struct Rendered {
    pub data: Vec<Value>,
    pub includes: Option<Value>,
}

pub(super) fn render(
    inner: &Inner,
    posts: &[Post],
    viewer: &str,
    view: &View,
    now: u64,
) -> Rendered {
    let data = posts.iter().map(|p| post_value(p, viewer, view)).collect();
    let mut includes = Map::new();
    let mut add = |key: &str, items: Vec<Value>| {
        if !items.is_empty() {
            includes.insert(key.to_string(), Value::Array(items));
        }
    };
    if view.expands("attachments.media_keys") {
        add(
            "media",
            posts
                .iter()
                .flat_map(|p| &p.media)
                .map(media_value)
                .collect(),
        );
    }
    if view.expands("attachments.poll_ids") {
        add(
            "polls",
            posts
                .iter()
                .filter_map(|p| p.poll.as_ref())
                .map(|poll| poll_value(poll, view, now))
                .collect(),
        );
    }
    if view.expands("referenced_tweets.id") {
        let referenced = posts
            .iter()
            .flat_map(|p| referenced(p))
            .filter_map(|(_, id)| inner.posts.get(&id));
        add(
            "tweets",
            referenced
                .filter(|p| !p.deleted)
                .map(|p| post_value(p, viewer, view))
                .collect(),
        );
    }
    if view.expands("author_id") {
        let mut authors: Vec<&str> = posts.iter().map(|p| p.author_id.as_str()).collect();
        authors.dedup();
        add(
            "users",
            authors
                .iter()
                .filter_map(|id| inner.users.get(*id))
                .map(|u| json!({"id": u.id, "name": u.name, "username": u.username}))
                .collect(),
        );
    }
    Rendered {
        data,
        includes: (!includes.is_empty()).then_some(Value::Object(includes)),
    }
}

/// What a post points at: (`replied_to` | `quoted`, id).
fn referenced(post: &Post) -> Vec<(&'static str, String)> {
    let replied = post
        .reply_to
        .iter()
        .map(|(id, _)| ("replied_to", id.clone()));
    let quoted = post.quote_of.iter().map(|id| ("quoted", id.clone()));
    replied.chain(quoted).collect()
}

fn post_value(post: &Post, viewer: &str, view: &View) -> Value {
    let mut data = json!({
        "id": post.id,
        "text": post.text,
        "edit_history_tweet_ids": [post.id],
    });
    if view.field("created_at") {
        data["created_at"] = json!(platform::time_fmt::rfc3339_from_unix(
            post.created_at as i64
        ));
    }
    if view.field("author_id") {
        data["author_id"] = json!(post.author_id);
    }
    if view.field("conversation_id") {
        data["conversation_id"] = json!(post.conversation_id);
    }
    if view.field("reply_settings") {
        data["reply_settings"] = json!(post.reply_settings);
    }
    if let (true, Some((_, user))) = (view.field("in_reply_to_user_id"), &post.reply_to) {
        data["in_reply_to_user_id"] = json!(user);
    }
    if view.field("entities") {
        let mentions: Vec<Value> = x_text::mentions(&post.text)
            .into_iter()
            .filter(|m| m.list_slug.is_empty())
            .map(|m| json!({"start": m.start, "end": m.end, "username": m.value}))
            .collect();
        if !mentions.is_empty() {
            data["entities"] = json!({ "mentions": mentions });
        }
    }
    let references = referenced(post);
    if view.field("referenced_tweets") && !references.is_empty() {
        data["referenced_tweets"] = references
            .into_iter()
            .map(|(kind, id)| json!({"type": kind, "id": id}))
            .collect();
    }
    // X shows attachments when the field is asked for or an expansion needs them.
    let mut attachments = Map::new();
    if !post.media.is_empty()
        && (view.field("attachments") || view.expands("attachments.media_keys"))
    {
        attachments.insert(
            "media_keys".into(),
            post.media.iter().map(|m| json!(m.media_key)).collect(),
        );
    }
    if let Some(poll) = post
        .poll
        .as_ref()
        .filter(|_| view.field("attachments") || view.expands("attachments.poll_ids"))
    {
        attachments.insert("poll_ids".into(), json!([poll.id]));
    }
    if !attachments.is_empty() {
        data["attachments"] = Value::Object(attachments);
    }
    add_metrics(&mut data, post, viewer, view);
    data
}

fn add_metrics(data: &mut Value, post: &Post, viewer: &str, view: &View) {
    let metric = |key: &str| post.metrics.get(key).copied().unwrap_or(0);
    let pick = |keys: &[&str]| -> Value {
        keys.iter()
            .map(|k| (k.to_string(), json!(metric(k))))
            .collect::<Map<_, _>>()
            .into()
    };
    if view.field("public_metrics") {
        data["public_metrics"] = pick(&[
            "retweet_count",
            "reply_count",
            "like_count",
            "quote_count",
            "bookmark_count",
            "impression_count",
        ]);
    }
    // Private metrics are the author's alone, as on X.
    let own = viewer == post.author_id;
    if own && view.field("non_public_metrics") {
        data["non_public_metrics"] =
            pick(&["impression_count", "url_link_clicks", "user_profile_clicks"]);
    }
    if own && view.field("organic_metrics") {
        data["organic_metrics"] = pick(&[
            "impression_count",
            "like_count",
            "reply_count",
            "retweet_count",
            "url_link_clicks",
            "user_profile_clicks",
        ]);
    }
}

/// `media_key` and `type` always come; the other media fields are not modelled.
fn media_value(media: &super::Media) -> Value {
    json!({"media_key": media.media_key, "type": media.kind.as_str()})
}

fn poll_value(poll: &super::Poll, view: &View, now: u64) -> Value {
    let mut value = json!({
        "id": poll.id,
        "options": poll.options.iter().enumerate().map(|(i, label)| json!({"position": i + 1, "label": label, "votes": 0})).collect::<Vec<_>>(),
    });
    let asked = |f: &str| view.poll_fields.iter().any(|p| p == f);
    if asked("duration_minutes") {
        value["duration_minutes"] = json!(poll.duration_minutes);
    }
    if asked("end_datetime") {
        value["end_datetime"] = json!(platform::time_fmt::rfc3339_from_unix(poll.end_at as i64));
    }
    if asked("voting_status") {
        value["voting_status"] = json!(if now < poll.end_at { "open" } else { "closed" });
    }
    value
}
