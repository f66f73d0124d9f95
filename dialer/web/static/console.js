// Régua console: no framework, no build step. Every request that changes something sends
// the session's CSRF token; confirmations ask before lifecycle changes; parts marked
// data-refresh="SECONDS" reload themselves from data-src (a server-rendered fragment).
"use strict";
(function () {
  const csrf = document.body.dataset.csrf || "";
  window.reguaFetch = function (url, options) {
    options = options || {};
    options.headers = Object.assign({"X-CSRF-Token": csrf}, options.headers || {});
    options.credentials = "same-origin";
    return fetch(url, options);
  };
  document.addEventListener("submit", function (event) {
    const form = event.target;
    const question = form.dataset.confirm;
    if (question && !window.confirm(question)) event.preventDefault();
  });
  function refresh(el) {
    const src = el.dataset.src;
    if (!src) return;
    fetch(src, {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) el.innerHTML = html; })
      .catch(function () {});
  }
  document.querySelectorAll("[data-refresh]").forEach(function (el) {
    const seconds = Math.max(2, parseInt(el.dataset.refresh, 10) || 10);
    setInterval(function () { refresh(el); }, seconds * 1000);
  });
})();
