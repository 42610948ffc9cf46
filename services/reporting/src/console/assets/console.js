// WSUS console: the only script, loaded with `defer` (the CSP allows no inline code).
// Pages work without it; it adds live sync progress and confirmation prompts.
"use strict";

(function () {
  var POLL_MS = 2000;

  // Live progress of a synchronization in #sync-progress. The server renders the box;
  // this keeps its phase, counts and <progress> current, and reloads the page when a
  // sync starts or ends so the history below it is current too.
  var box = document.getElementById("sync-progress");
  if (box) {
    var rendered = box.getAttribute("data-running"); // "true", "false" or absent
    var bar = box.querySelector("progress");
    var phase = box.querySelector(".phase");
    var counts = box.querySelector(".counts");
    var text = box.querySelector(".progress-text");
    if (!bar) {
      bar = box.appendChild(document.createElement("progress"));
      bar.hidden = rendered === "false";
    }
    if (!phase && !counts && !text) {
      text = box.appendChild(document.createElement("p"));
      text.className = "progress-text";
    }
    if (!box.hasAttribute("aria-live")) box.setAttribute("aria-live", "polite");

    var show = function (p) {
      var running = p.running === true;
      box.removeAttribute("data-stale");
      if (rendered !== null && rendered !== String(running)) {
        window.location.reload();
        return;
      }
      var done = Number(p.done) || 0;
      var total = Number(p.total) || 0;
      var step = p.phase ? String(p.phase) : "starting";
      bar.hidden = !running;
      if (total > 0) {
        bar.max = total;
        bar.value = Math.min(done, total);
      } else {
        bar.removeAttribute("value"); // indeterminate until the total is known
      }
      if (phase) phase.textContent = step;
      if (counts) counts.textContent = done + " of " + total;
      if (text) {
        text.textContent = !running ? "No synchronization is running."
          : total > 0 ? step + ": " + done + " of " + total : step + "…";
      }
    };

    var poll = function () {
      if (document.hidden) return setTimeout(poll, POLL_MS); // no requests from a hidden tab
      fetch("/console/sync/progress.json", { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) {
          if (!r.ok) throw new Error("HTTP " + r.status);
          return r.json();
        })
        .then(show, function () {
          box.setAttribute("data-stale", "true"); // keep the last numbers; try again
        })
        .then(function () {
          setTimeout(poll, POLL_MS); // one request at a time, never overlapping
        });
    };
    setTimeout(poll, POLL_MS);
  }

  // Forms with data-confirm="question" ask before submitting.
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!(form instanceof HTMLFormElement)) return;
    var question = form.getAttribute("data-confirm");
    if (question !== null && !window.confirm(question)) e.preventDefault();
  });
})();
