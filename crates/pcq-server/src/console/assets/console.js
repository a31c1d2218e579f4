// pcq console: progressive enhancement only; every page works without this script.
"use strict";

// Buttons with data-confirm ask before their form is sent.
document.addEventListener("click", function (event) {
  var button = event.target.closest("button[data-confirm]");
  if (button && !window.confirm(button.getAttribute("data-confirm"))) {
    event.preventDefault();
  }
});

// A decision form's Deny button needs a reason: say so before sending rather than after.
document.addEventListener("click", function (event) {
  var button = event.target.closest("form.decision button.deny");
  if (!button) return;
  var select = button.form.querySelector("select[name=reason]");
  if (select && !select.value) {
    event.preventDefault();
    select.setCustomValidity("Choose the reason for the denial.");
    select.reportValidity();
    select.addEventListener("change", function () { select.setCustomValidity(""); }, { once: true });
  }
});

// The request journal's live tail: every 2 s, the entries after the last one shown.
(function () {
  var table = document.getElementById("journal");
  if (!table) return;
  var body = table.tBodies[0];
  var status = document.getElementById("tail-status");
  var after = table.getAttribute("data-after");
  var url = table.getAttribute("data-tail");
  var limit = 200;

  function cell(row, text, className) {
    var td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function add(entry) {
    var row = document.createElement("tr");
    cell(row, entry.time);
    cell(row, entry.method);
    var path = cell(row, "");
    var code = document.createElement("code");
    code.textContent = entry.path;
    path.appendChild(code);
    if (entry.fault) {
      path.appendChild(document.createElement("br"));
      var fault = document.createElement("span");
      fault.className = "muted";
      fault.textContent = "fault " + entry.fault;
      path.appendChild(fault);
    }
    cell(row, String(entry.status) + (entry.replayed ? " (replayed)" : ""));
    cell(row, entry.caller);
    cell(row, entry.ms, "num");
    body.insertBefore(row, body.firstChild);
  }

  function poll() {
    fetch(url + "?after=" + encodeURIComponent(after), {
      credentials: "same-origin",
      headers: { "Accept": "application/json" }
    })
      .then(function (answer) {
        if (!answer.ok) throw new Error("status " + answer.status);
        return answer.json();
      })
      .then(function (page) {
        // Newest first: add the oldest first so the newest ends on top.
        for (var i = page.entries.length - 1; i >= 0; i--) add(page.entries[i]);
        while (body.rows.length > limit) body.deleteRow(body.rows.length - 1);
        after = String(page.after);
        if (status) status.textContent = "Live: updated " + new Date().toLocaleTimeString();
      })
      .catch(function (error) {
        if (status) status.textContent = "Live updates paused (" + error.message + "); use Refresh.";
      })
      .finally(function () { window.setTimeout(poll, 2000); });
  }
  window.setTimeout(poll, 2000);
})();
