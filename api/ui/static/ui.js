// The dashboard's only script: confirmations, the time-travel slider's label, and the task list's live refresh
// (it asks /ui/tasks/rows?since=<log head> every few seconds; 204 means nothing changed, else new rows).
"use strict";
document.addEventListener("submit", (event) => {
  const question = event.target.dataset && event.target.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});
document.addEventListener("DOMContentLoaded", () => {
  const range = document.getElementById("as_of_range"), shown = document.getElementById("as_of_value");
  if (range && shown) range.addEventListener("input", () => { shown.textContent = range.value; });
  const live = document.getElementById("live"), rows = document.getElementById("rows");
  if (!live || !rows) return;
  let head = live.dataset.head, busy = false;
  const refresh = async () => {
    if (busy || document.hidden) return;
    busy = true;
    try {
      const url = live.dataset.rows + (live.dataset.rows.includes("?") ? "&" : "?") + "since=" + encodeURIComponent(head);
      const answer = await fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } });
      if (answer.status === 200) {
        rows.innerHTML = await answer.text();
        head = answer.headers.get("X-Ledger-Head") || head;
        live.dataset.head = head;
        live.textContent = "live · updated " + new Date().toLocaleTimeString();
      }
      live.classList.toggle("stale", !answer.ok);
    } catch (e) {
      live.classList.add("stale");
    } finally {
      busy = false;
    }
  };
  window.setInterval(refresh, 3000);
});
