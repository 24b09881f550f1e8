// The login link carries the key in the URL fragment, which browsers never send to the
// server; post it once, get a session cookie, and take the key out of the address bar.
(function () {
  "use strict";
  const form = document.getElementById("login-form");
  const button = form.querySelector("button");
  const error = document.getElementById("login-error");

  function fail(message) {
    error.textContent = message;
    error.hidden = false;
    button.disabled = false;
  }

  async function login(key) {
    button.disabled = true;
    error.hidden = true;
    try {
      const res = await fetch("/login", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ key: key }),
        credentials: "same-origin",
      });
      if (!res.ok) {
        const body = await res.json().catch(() => ({}));
        const reason = (body.errors && body.errors[0] && body.errors[0].message) || body.detail;
        return fail("Login failed: " + (reason || "HTTP " + res.status));
      }
      // A key that may not read (an ingest key) would only land on an error page.
      const probe = await fetch("/api/v1/brands", { credentials: "same-origin" });
      if (probe.status === 403) {
        await fetch("/logout", { method: "POST", credentials: "same-origin" });
        const body = await probe.json().catch(() => ({}));
        return fail("This key cannot open the dashboard: " + (body.detail || "forbidden"));
      }
      window.location.replace("/");
    } catch (e) {
      fail("Cannot reach the Sentimon server: " + e.message);
    }
  }

  const fragment = new URLSearchParams(window.location.hash.slice(1));
  const key = fragment.get("key");
  if (window.location.hash) history.replaceState(null, "", "/login");
  if (key) login(key);
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    login(document.getElementById("key").value.trim());
  });
})();
