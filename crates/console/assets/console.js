// The console's one script, and only an enhancement: every page works without it.
// - "Select every row" checkboxes tick the rows of their table.
// - Buttons with data-confirm ask before their form is sent.
"use strict";

document.addEventListener("change", (event) => {
  const all = event.target.closest("input[data-select-all]");
  if (!all) return;
  const table = all.closest("table");
  for (const box of table.querySelectorAll("input[name=bot_id]")) {
    box.checked = all.checked;
  }
});

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-confirm]");
  if (button && !window.confirm(button.dataset.confirm)) {
    event.preventDefault();
  }
});

// The composer's counter: X's weighted count, from the API's own counter, as one types; and
// a warning when another bot has the same text (X's rule; scheduling it would be refused).
const composer = document.querySelector("form.composer");
if (composer) {
  const field = composer.querySelector("textarea[name=text]");
  const counter = composer.querySelector("[data-counter]");
  const duplicate = composer.querySelector("[data-duplicate]");
  const bot = composer.querySelector("select[name=bot_id]");
  const csrf = composer.querySelector("input[name=csrf]").value;
  let pending = null;
  const check = () => {
    clearTimeout(pending);
    pending = setTimeout(async () => {
      const bot_id = bot ? bot.value : composer.dataset.bot;
      const answer = await fetch("/console/check-text", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ csrf, text: field.value, bot_id }),
      });
      if (!answer.ok) return;
      const check = await answer.json();
      counter.textContent = `${check.weighted_length} of ${check.max_weighted_length}` +
        (check.valid ? "" : " (too long, or nothing to post)");
      counter.classList.toggle("over", !check.valid);
      duplicate.textContent = check.duplicate_elsewhere
        ? "Another bot has this text (or nearly) within the duplicate window: X's rules " +
          "forbid the same content from several accounts, so it would be refused."
        : "";
    }, 200);
  };
  field.addEventListener("input", check);
  if (bot) bot.addEventListener("change", check);
}

// Live posts: each row follows the states the server sends, without a reload.
const live = document.querySelector("[data-live]");
if (live && window.EventSource) {
  const source = new EventSource(live.dataset.live);
  source.addEventListener("posts", (event) => {
    for (const post of JSON.parse(event.data)) {
      const row = document.getElementById("post-" + post.post_id);
      if (!row) continue;
      row.querySelector("[data-field=state]").textContent = post.state;
      row.querySelector("[data-field=error]").textContent = post.error || "";
    }
  });
}

// The logs' live tail, when asked for: new events go on top of the table as they arrive.
const follow = document.querySelector("input[data-follow]");
const tail = document.querySelector("table[data-tail]");
if (follow && tail && window.EventSource) {
  follow.closest("[hidden]").hidden = false;
  let source = null;
  follow.addEventListener("change", () => {
    if (source) { source.close(); source = null; }
    if (!follow.checked) return;
    source = new EventSource(tail.dataset.tail);
    source.addEventListener("events", (event) => {
      // The rows come rendered (and escaped) by the server, newest first.
      tail.tBodies[0].insertAdjacentHTML("afterbegin", JSON.parse(event.data).join(""));
    });
  });
}
