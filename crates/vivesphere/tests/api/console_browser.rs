//! The console in a real browser: Debian's Chromium, headless, driven through ChromeDriver
//! (WebDriver, with fantoccini), against the whole app and the fake X. Every page a journey
//! passes is checked with axe-core for serious and critical accessibility violations.
//!
//! Needs `chromedriver` and `chromium` (`.ci/run` installs them) and axe-core's `axe.min.js`
//! (`VIVESPHERE_TEST_AXE_JS`, which `.ci/run` installs into target/); without them the
//! journeys print SKIPPED.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::auth_helpers::PASSWORD;
use crate::bots_helpers::{BotEnv, spawn_bots};
use crate::helpers::TestApp;

/// A headless Chromium session and the ChromeDriver serving it (stopped on drop).
struct Browser {
    client: Client,
    driver: Child,
    base: String,
    axe: Option<String>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn skip(what: &str) {
    eprintln!("=== SKIPPED {what}: install chromium and chromium-driver (.ci/run does) ===");
}

fn executable(name: &str) -> Option<String> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .map(|p| p.display().to_string())
}

/// A browser on `app`, or `None` (after saying SKIPPED) where none is installed.
async fn open(app: &TestApp, what: &str) -> Option<Browser> {
    let (Some(driver_path), Some(chromium)) = (executable("chromedriver"), executable("chromium"))
    else {
        skip(what);
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let driver = Command::new(driver_path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({"binary": chromium, "args": [
            "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
            "--window-size=1280,900"]}),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let mut attempts = 0;
    let client = loop {
        match ClientBuilder::new(connector.clone())
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => break client,
            Err(err) if attempts < 100 => {
                attempts += 1;
                let _ = err;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(err) => panic!("ChromeDriver did not answer: {err}"),
        }
    };
    let axe = std::env::var("VIVESPHERE_TEST_AXE_JS")
        .ok()
        .map(|path| std::fs::read_to_string(path).expect("axe.min.js is readable"));
    if axe.is_none() {
        eprintln!(
            "=== SKIPPED the accessibility checks of {what}: VIVESPHERE_TEST_AXE_JS is not set ==="
        );
    }
    Some(Browser {
        client,
        driver,
        base: app.url(""),
        axe,
    })
}

impl Browser {
    async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        }
    }

    async fn fill(&self, css: &str, text: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    /// Sends `keys` to whatever has the focus, as a keyboard would.
    async fn press(&self, keys: &str) {
        let focused = self.client.active_element().await.unwrap();
        focused.send_keys(keys).await.unwrap();
    }

    /// Marks the page shown, so that [`Self::wait_for_new_page`] knows when another replaced it.
    async fn mark_page(&self) {
        let mark = "window.thePageBefore = true";
        self.client.execute(mark, vec![]).await.unwrap();
    }

    /// Waits (at most 10 s) until the marked page has been replaced by the next one.
    async fn wait_for_new_page(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let still = "return window.thePageBefore === true && document.readyState === 'complete'";
        loop {
            let old = self.client.execute(still, vec![]).await.ok();
            let complete = "return document.readyState === 'complete'";
            let ready = self.client.execute(complete, vec![]).await.ok();
            if old == Some(json!(false)) && ready == Some(json!(true)) {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "no new page");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks what sends a form (or follows a link) and waits for the page it leads to.
    async fn submit(&self, css: &str) {
        self.mark_page().await;
        self.click(css).await;
        self.wait_for_new_page().await;
    }
    /// Sets the composer's time to `seconds` ahead of the app's clock (the page's zone is UTC).
    async fn set_post_time(&self, app: &TestApp, seconds: u64) {
        let at = (app.clock.now() + Duration::from_secs(seconds))
            .format(&time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]"
            ))
            .unwrap();
        let set_time = "document.getElementById('post-at').value = arguments[0]";
        self.client
            .execute(set_time, vec![json!(at)])
            .await
            .unwrap();
    }

    async fn text_of(&self, css: &str) -> String {
        let element = self
            .client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|err| panic!("no {css}: {err}"));
        element.text().await.unwrap()
    }

    /// Waits (at most 10 s) until `css` matches `n` elements: a form's answer is a new page,
    /// which a click does not wait for.
    async fn wait_for_count(&self, css: &str, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.count(css).await != n {
            assert!(tokio::time::Instant::now() < deadline, "{css}: never {n}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn count(&self, css: &str) -> usize {
        self.client.find_all(Locator::Css(css)).await.unwrap().len()
    }

    /// Fails on any serious or critical axe-core violation of the page shown; and keeps a
    /// screenshot of it where `VIVESPHERE_CONSOLE_SCREENSHOTS` names a directory (docs/console.md
    /// shows those; by default the tests write nothing).
    async fn assert_accessible(&self, page: &str) {
        if let Some(violations) = self.violations().await {
            assert!(violations.is_empty(), "{page}: {violations:#?}");
        }
        self.screenshot(page).await;
    }

    /// Keeps a screenshot of what the window shows as `<page>.png` where
    /// `VIVESPHERE_CONSOLE_SCREENSHOTS` names a directory; nothing otherwise.
    async fn screenshot(&self, page: &str) {
        if let Some(dir) = std::env::var_os("VIVESPHERE_CONSOLE_SCREENSHOTS") {
            let name: String = page
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
            let png = self.client.screenshot().await.unwrap();
            std::fs::write(std::path::Path::new(&dir).join(format!("{name}.png")), png).unwrap();
        }
    }

    /// axe-core's serious and critical violations on the page shown, as readable lines
    /// (`None` without axe-core).
    async fn violations(&self) -> Option<Vec<Value>> {
        let axe = self.axe.as_ref()?;
        self.client.execute(axe, vec![]).await.unwrap();
        let script = "const done = arguments[arguments.length - 1];
            axe.run(document, {resultTypes: ['violations']})
              .then(r => done(r.violations
                .filter(v => v.impact === 'serious' || v.impact === 'critical')
                .map(v => v.id + ' (' + v.impact + '): ' + v.help + ' at '
                  + v.nodes.map(n => n.target.join(' ')).join(', '))))
              .catch(e => done(['axe did not run: ' + e]));";
        let found = self.client.execute_async(script, vec![]).await.unwrap();
        Some(found.as_array().cloned().unwrap_or_default())
    }

    /// Signs in with the tests' password and lands on the fleet.
    async fn sign_in(&self, username: &str) {
        self.goto("/").await;
        assert_eq!(self.path().await, "/console/sign-in");
        self.assert_accessible("sign-in").await;
        self.send_password(username, PASSWORD).await;
        assert!(
            self.text_of("header .who").await.contains(username),
            "signed in"
        );
    }

    /// The sign-in form sent with `username` and `password`; whatever comes next is shown.
    async fn send_password(&self, username: &str, password: &str) {
        self.goto("/console/sign-in").await;
        self.fill("#username", username).await;
        self.fill("#password", password).await;
        self.submit("form[action='/console/sign-in'] button[type=submit]")
            .await;
    }
}

async fn status_of(env: &BotEnv, token: &str, bot_id: &str) -> String {
    let bot: Value = env
        .get(&format!("/api/v1/bots/{bot_id}"), token)
        .await
        .json()
        .await
        .unwrap();
    bot["status"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_manager_signs_in_and_pauses_ten_bots_by_filter_in_a_browser() {
    let env = spawn_bots(Default::default(), &[]).await;
    let lead = env.team_manager("north_lead", "north").await;
    let mut alphas = Vec::new();
    for n in 0..10 {
        alphas.push(env.bot(&lead, &format!("alpha{n}")).await.0);
    }
    let (beta, _) = env.bot(&lead, "beta").await;
    let Some(browser) = open(&env.app, "the browser journey of a batch pause").await else {
        return;
    };
    browser.sign_in("north_lead").await;
    assert_eq!(browser.path().await, "/console/bots");
    assert_eq!(browser.count("input[name=bot_id]").await, 11);
    browser.assert_accessible("fleet").await;

    browser.fill("#f-q", "alpha").await;
    browser
        .submit("form[role=search] button[type=submit]")
        .await;
    assert_eq!(
        browser.path().await,
        "/console/bots?status=&team=&handle=&q=alpha"
    );
    assert_eq!(browser.count("input[name=bot_id]").await, 10);
    browser.mark_page().await;
    browser.click("button[value=pause-matching]").await;
    // The script asks first; the person confirms.
    let question = browser.client.get_alert_text().await.unwrap();
    assert_eq!(question, "Pause every bot this filter matches?");
    browser.client.accept_alert().await.unwrap();
    browser.wait_for_new_page().await;
    let summary = browser.text_of("p.notice[role=status]").await;
    assert_eq!(summary, "10 of 10 bots now paused.");
    browser.assert_accessible("batch result").await;
    for id in &alphas {
        assert_eq!(status_of(&env, &lead, id).await, "paused");
    }
    assert_eq!(status_of(&env, &lead, &beta).await, "active");

    // A bot's page, from the result's link.
    browser.submit("ul.results a").await;
    assert!(browser.path().await.starts_with("/console/bots/"));
    assert!(browser.text_of("h1").await.starts_with("alpha"));
    browser.assert_accessible("bot").await;
    // The check can fail: an image without a text alternative is a critical violation.
    let image = "document.querySelector('main').appendChild(document.createElement('img'))";
    browser.client.execute(image, vec![]).await.unwrap();
    if let Some(violations) = browser.violations().await {
        assert!(
            violations
                .iter()
                .any(|v| v.as_str().unwrap().starts_with("image-alt")),
            "{violations:#?}"
        );
    }
    browser.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn the_fleet_is_used_by_keyboard_alone_at_375_pixels() {
    let env = spawn_bots(Default::default(), &[]).await;
    let lead = env.team_manager("south_lead", "south").await;
    let (first, _) = env.bot(&lead, "keyboard0").await;
    let (second, _) = env.bot(&lead, "keyboard1").await;
    let Some(browser) = open(&env.app, "the keyboard journey at 375 px").await else {
        return;
    };
    browser.client.set_window_size(375, 812).await.unwrap();
    browser.sign_in("south_lead").await;
    let fits = browser
        .client
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(fits, json!(true), "nothing wider than a 375 px screen");
    browser.assert_accessible("fleet at 375 px").await;

    // Tab to the first row's box, tick it with the space bar, go back to "Pause selected"
    // and press Enter: no pointer anywhere.
    let active = || async {
        browser
            .client
            .execute(
                "const e = document.activeElement; return (e.name || '') + '=' + (e.value || '')",
                vec![],
            )
            .await
            .unwrap()
    };
    let row_box = json!(format!("bot_id={first}"));
    let mut presses = 0;
    while active().await != row_box {
        browser.press(&Key::Tab).await;
        presses += 1;
        assert!(presses < 40, "the first row's box is reachable by Tab");
    }
    browser.press(&Key::Space).await;
    let pause = json!("action=pause-selected");
    while active().await != pause {
        let back = Key::Shift + &Key::Tab.to_string();
        browser.press(&back).await;
        presses += 1;
        assert!(presses < 80, "the pause button is reachable by Shift+Tab");
    }
    browser.press(&Key::Enter).await;
    assert_eq!(
        browser.text_of("p.notice[role=status]").await,
        "1 of 1 bots now paused."
    );
    assert_eq!(status_of(&env, &lead, &first).await, "paused");
    assert_eq!(status_of(&env, &lead, &second).await, "active");
    browser.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn a_scheduled_post_turns_published_on_the_open_page_without_a_reload() {
    let env = spawn_bots(Default::default(), &[]).await;
    let lead = env.team_manager("west_lead", "west").await;
    let (bot_id, _) = env.bot(&lead, "sunrise").await;
    // Two snapshots a day apart, so the page draws its charts (and axe-core checks them).
    let taken = env.refresh_metrics(&lead, &bot_id).await;
    assert!(taken.status().is_success());
    env.app.clock.advance(Duration::from_secs(86_400));
    let lead = env.login("west_lead").await;
    let taken = env.refresh_metrics(&lead, &bot_id).await;
    assert!(taken.status().is_success());
    let Some(browser) = open(&env.app, "the browser journey of a scheduled post").await else {
        return;
    };
    browser.sign_in("west_lead").await;
    browser
        .submit(&format!("a[href='/console/bots/{bot_id}']"))
        .await;
    assert_eq!(
        browser.count("figure.chart svg[role=img]").await,
        2,
        "the charts"
    );
    browser.assert_accessible("bot").await;
    let to_charts = "document.getElementById('metrics').scrollIntoView()";
    browser.client.execute(to_charts, vec![]).await.unwrap();
    browser.screenshot("bot charts").await;

    // The counter is X's weighted count, as one types.
    browser
        .fill("#post-text", "Sunrise at 06:12 https://example.com/today")
        .await;
    let counted = "40 of 280";
    browser
        .client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath(&format!(
            "//*[@data-counter][text()='{counted}']"
        )))
        .await
        .unwrap_or_else(|_| panic!("the counter shows {counted}"));
    // Two minutes ahead on the app's clock, in the bot's zone (UTC).
    browser.set_post_time(&env.app, 120).await;
    browser.submit("button[value=schedule]").await;
    let state = "tr[id^='post-'] [data-field=state]";
    assert_eq!(browser.text_of(state).await, "scheduled");
    browser.assert_accessible("bot with a scheduled post").await;

    // The page stays as it is; only its live updates may change it.
    let mark = "window.stillTheSamePage = true";
    browser.client.execute(mark, vec![]).await.unwrap();
    env.app.clock.advance(Duration::from_secs(180));
    let published = browser
        .client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::XPath(
            "//tr[starts-with(@id,'post-')]//*[@data-field='state'][text()='published']",
        ))
        .await;
    assert!(
        published.is_ok(),
        "the state turned published on the open page"
    );
    let same = browser
        .client
        .execute("return window.stillTheSamePage === true", vec![])
        .await
        .unwrap();
    assert_eq!(same, json!(true), "no reload");
    browser.client.clone().close().await.unwrap();
}

/// Waits (at most 20 s) for an element `xpath` finds, else fails saying `what`.
async fn wait_for_xpath(browser: &Browser, xpath: &str, what: &str) {
    let found = browser
        .client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::XPath(xpath))
        .await;
    assert!(found.is_ok(), "{what}");
}

#[tokio::test]
async fn a_post_written_on_the_calendar_is_warned_of_duplicates_and_turns_published_there() {
    let env = spawn_bots(Default::default(), &[]).await;
    let lead = env.team_manager("west_lead", "west").await;
    let (first, _) = env.bot(&lead, "dawnbot").await;
    let (second, _) = env.bot(&lead, "duskbot").await;
    let at = env.in_ms(3_600_000);
    env.post(
        &lead,
        &first,
        json!({"text": "Tide tables for today.", "run_at": at}),
    )
    .await;
    let Some(browser) = open(&env.app, "the browser journey of the calendar").await else {
        return;
    };
    browser.sign_in("west_lead").await;
    browser.submit("a[href='/console/calendar']").await;
    browser.assert_accessible("calendar").await;

    // Another bot already has this text: the composer says so as one types.
    let bot = browser
        .client
        .find(Locator::Css("#post-bot"))
        .await
        .unwrap();
    bot.select_by_value(&second).await.unwrap();
    browser.fill("#post-text", "tide tables, for today!").await;
    wait_for_xpath(
        &browser,
        "//*[@data-duplicate][contains(text(), 'Another bot has this text')]",
        "the duplicate warning shows",
    )
    .await;
    browser.fill("#post-text", "Low tide at 14:02.").await;
    wait_for_xpath(
        &browser,
        "//*[@data-duplicate][not(text())]",
        "the warning goes",
    )
    .await;

    // Two minutes ahead on the app's clock, in the calendar's zone (UTC).
    browser.set_post_time(&env.app, 120).await;
    browser.submit("button[value=schedule]").await;
    assert!(browser.path().await.starts_with("/console/calendar"));
    let entry = "//li[starts-with(@id,'post-')][contains(., 'Low tide at 14:02.')]";
    wait_for_xpath(
        &browser,
        &format!("{entry}//*[@data-field='state'][text()='scheduled']"),
        "the new post is on the calendar, scheduled",
    )
    .await;
    browser
        .assert_accessible("calendar with a scheduled post")
        .await;

    // The page stays as it is; only its live updates may change it.
    browser.mark_page().await;
    env.app.clock.advance(Duration::from_secs(180));
    wait_for_xpath(
        &browser,
        &format!("{entry}//*[@data-field='state'][text()='published']"),
        "the state turned published on the open calendar",
    )
    .await;
    let same = "return window.thePageBefore === true";
    let same = browser.client.execute(same, vec![]).await.unwrap();
    assert_eq!(same, json!(true), "no reload");
    browser.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn an_admin_reveals_a_credential_finds_the_audit_record_and_searches_the_logs() {
    let env = spawn_bots(Default::default(), &[]).await;
    let (bot_id, x_user) = env.bot(&env.admin, "auditbot").await;
    // The creation's event travels through the queue before the logs can show it.
    env.recorded(&env.admin, "bot.created").await;
    let Some(browser) = open(&env.app, "the browser journey of a reveal").await else {
        return;
    };
    browser
        .send_password("admin", crate::helpers::ADMIN_PASSWORD)
        .await;
    browser.text_of("header .who").await;
    browser.goto(&format!("/console/bots/{bot_id}")).await;
    browser
        .submit("a[href$='/secrets/oauth_access_token/reveal']")
        .await;
    browser.assert_accessible("reveal confirmation").await;
    browser
        .submit("form button[type=submit]:not(.secondary)")
        .await;
    assert_eq!(browser.text_of("code.secret").await, x_user.access_token);
    browser.assert_accessible("revealed").await;

    browser.submit("nav a[href='/console/system']").await;
    browser.assert_accessible("system").await;
    browser.fill("#a-bot", &bot_id).await;
    browser
        .submit("form[aria-label='Filter the audit trail'] button")
        .await;
    let first_entry = browser
        .text_of("section[aria-labelledby=audit] tbody tr")
        .await;
    assert!(
        first_entry.contains("reveal") && first_entry.contains("oauth_access_token"),
        "{first_entry}"
    );

    browser.submit("nav a[href='/console/logs']").await;
    browser.fill("#l-q", "auditbot").await;
    browser
        .submit("form[role=search] button[type=submit]")
        .await;
    let rows = browser.count("table[data-tail] tbody tr").await;
    assert!(rows >= 1, "the bot's creation is found");
    browser.assert_accessible("logs").await;
    browser.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn an_admin_edits_a_setting_and_rolls_it_back_in_a_browser() {
    let env = spawn_bots(Default::default(), &[]).await;
    let Some(browser) = open(&env.app, "the browser journey of a setting").await else {
        return;
    };
    browser
        .send_password("admin", crate::helpers::ADMIN_PASSWORD)
        .await;
    browser.text_of("header .who").await;
    browser.submit("nav a[href='/console/settings']").await;
    browser
        .client
        .find(Locator::Css("#service"))
        .await
        .unwrap()
        .select_by_value("bot-manager")
        .await
        .unwrap();
    browser
        .submit("form[aria-label='Choose a service'] button")
        .await;
    browser.assert_accessible("settings").await;
    let grace = "#s-bot_manager-grace_seconds";
    browser.fill(grace, "120").await;
    browser
        .fill(&format!("{grace}-reason"), "late posts still go")
        .await;
    browser
        .submit("li[id='setting-bot_manager.grace_seconds'] button[type=submit]")
        .await;
    assert_eq!(
        browser
            .client
            .find(Locator::Css(grace))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("120")
    );
    // Out of the declared range: the browser itself keeps the form (the field carries the
    // range the catalog declares); the service's own refusal is the HTTP tests'.
    browser.fill(grace, "0").await;
    browser
        .click("li[id='setting-bot_manager.grace_seconds'] button[type=submit]")
        .await;
    let valid = "return document.querySelector(arguments[0]).validity.valid";
    let valid = browser
        .client
        .execute(valid, vec![json!(grace)])
        .await
        .unwrap();
    assert_eq!(valid, json!(false));
    assert_eq!(
        browser.count("ol.releases > li").await,
        1,
        "nothing was sent"
    );

    // Rolling back to before the first release: revision 0 is not offered, so restore the
    // release itself after a second change.
    browser.fill(grace, "300").await;
    browser
        .submit("li[id='setting-bot_manager.grace_seconds'] button[type=submit]")
        .await;
    browser.wait_for_count("ol.releases > li", 2).await;
    // The oldest release (set to 120) is the last in the list.
    browser.mark_page().await;
    browser.click("ol.releases > li:last-child button").await;
    browser.client.accept_alert().await.unwrap();
    browser.wait_for_new_page().await;
    // The rollback is a release too.
    browser.wait_for_count("ol.releases > li", 3).await;
    assert_eq!(
        browser
            .client
            .find(Locator::Css(grace))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("120")
    );
    assert_eq!(
        browser.count("ol.releases > li").await,
        3,
        "the rollback is a release too"
    );
    browser.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn an_admin_enrols_an_authenticator_and_signs_in_with_it_in_a_browser() {
    let app = crate::helpers::spawn(
        None,
        &[("VIVESPHERE_AUTHENTICATION__REQUIRE_MFA_FOR_ADMINS", "true")],
        None,
    )
    .await;
    let Some(browser) = open(&app, "the browser journey of a second factor").await else {
        return;
    };
    let sign_in = || browser.send_password("admin", crate::helpers::ADMIN_PASSWORD);
    sign_in().await;
    assert_eq!(browser.path().await, "/console/sign-in/enrol");
    browser.assert_accessible("enrolment").await;
    let secret = browser.text_of("code.secret").await;
    let code = crate::auth_helpers::totp_code(&secret, app.clock.unix_seconds() as u64);
    browser.fill("#code", &code).await;
    browser
        .submit("form[action='/console/sign-in/enrol'] button")
        .await;
    assert_eq!(browser.count("ul.recovery-codes li").await, 10);
    browser.assert_accessible("recovery codes").await;
    browser.submit("a[href='/console/bots']").await;
    assert!(browser.text_of("header .who").await.contains("admin"));
    browser.submit("header form button").await;
    assert_eq!(browser.path().await, "/console/sign-in");

    // Next time: the password, then the app's code (a new period's: codes are single use).
    app.clock.advance(Duration::from_secs(30));
    sign_in().await;
    assert_eq!(browser.path().await, "/console/sign-in/second-factor");
    browser.assert_accessible("second factor").await;
    let code = crate::auth_helpers::totp_code(&secret, app.clock.unix_seconds() as u64);
    browser.fill("#code", &code).await;
    browser
        .submit("form[action='/console/sign-in/second-factor'] button")
        .await;
    assert!(browser.text_of("header .who").await.contains("admin"));

    // The people and one's own account, as an admin sees them.
    browser.submit("a[href='/console/people']").await;
    assert!(
        browser.count("table").await >= 1,
        "the accounts, roles and clients"
    );
    browser.assert_accessible("people").await;
    browser.submit("a[href^='/console/people/']").await;
    assert!(
        browser.count("form[action$='/reset-password']").await == 1,
        "an account's page"
    );
    browser.assert_accessible("an account").await;
    browser.submit("a[href='/console/account']").await;
    assert!(browser.text_of("main h1").await.contains("account"));
    browser.assert_accessible("your account").await;
    browser.client.clone().close().await.unwrap();
}
