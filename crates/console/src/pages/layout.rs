//! The frame of every page: the document head (the embedded stylesheet and script), a skip
//! link, the navigation and the signed-in person with the sign-out form.

use maud::{DOCTYPE, Markup, html};

use super::Person;

/// A whole page titled `title` around `body`.
pub fn page(title: &str, person: Option<&Person>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · ViveSphere console" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to the content" }
                header.top {
                    a href="/console/" { "ViveSphere" }
                    @if let Some(person) = person {
                        nav aria-label="Main" {
                            a href="/console/bots" { "Fleet" }
                            a href="/console/calendar" { "Calendar" }
                            a href="/console/logs" { "Logs" }
                            a href="/console/people" { "People" }
                            a href="/console/settings" { "Settings" }
                            a href="/console/system" { "System" }
                        }
                        span.who { "Signed in as " strong { (person.username) } " · " a href="/console/account" { "Your account" } }
                        form method="post" action="/console/sign-out" {
                            (csrf_field(&person.csrf))
                            button.secondary type="submit" { "Sign out" }
                        }
                    }
                }
                main #main { (body) }
            }
        }
    }
}

/// The hidden field that carries the session's CSRF token in a form.
pub fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}
