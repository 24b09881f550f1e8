// The login link carries the key in the URL fragment, which browsers never send to the
// server; post it once, get a session cookie, and take the key out of the address bar.
(function () {
  "use strict";
  const form = document.getElementById("login-form");
  const error = document.getElementById("login-error");

  async function login(key) {
    const res = await fetch("/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ key: key }),
      credentials: "same-origin",
    });
    if (res.ok) {
      window.location.replace("/");
      return;
    }
    history.replaceState(null, "", "/login");
    const body = await res.json().catch(() => ({}));
    error.textContent = body.detail || "Login failed";
    error.hidden = false;
  }

  const fragment = new URLSearchParams(window.location.hash.slice(1));
  const key = fragment.get("key");
  if (key) {
    history.replaceState(null, "", "/login");
    login(key);
  }
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    login(document.getElementById("key").value.trim());
  });
})();
