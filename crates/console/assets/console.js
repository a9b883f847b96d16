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
