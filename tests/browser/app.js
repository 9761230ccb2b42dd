// Demo single-page app for jwtgate's browser mode (browser.enabled with
// access_cookie: true). The functions on window.app are what an SPA calls;
// tests/browser_chromium_test.go drives them in headless Chromium.
"use strict";

// csrf returns the CSRF cookie, which the page repeats in X-CSRFToken.
function csrf() {
  const c = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
  return c ? c.slice("csrftoken=".length) : "";
}

// call fetches path on the gateway and returns {status, body}.
async function call(path, opts) {
  const r = await fetch(path, Object.assign({ credentials: "same-origin" }, opts || {}));
  let body = null;
  try {
    body = await r.json();
  } catch (e) {
    body = null;
  }
  return { status: r.status, body: body };
}

function postJSON(path, data) {
  return call(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
    body: JSON.stringify(data || {}),
  });
}

window.app = {
  // GET /auth/csrf/ sets the CSRF cookie.
  csrf: () => call("/auth/csrf/"),
  // Login: tokens go into HttpOnly cookies; the body names the user.
  login: (email, password) =>
    call("/auth/token/", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: email, password: password }),
    }),
  // Refresh from the refresh cookie (no body needed).
  refresh: () => call("/auth/token/refresh/", { method: "POST", headers: { "X-CSRFToken": csrf() } }),
  // Logout: blacklists the refresh token, revokes the access token, clears the cookies.
  logout: () => call("/auth/token/logout/", { method: "POST", headers: { "X-CSRFToken": csrf() } }),
  get: (path) => call(path),
  post: postJSON,
  passwordChange: (email, password, newPassword) =>
    postJSON("/auth/password-change/", { email: email, password: password, new_password: newPassword }),
  // api calls path and, on 401, refreshes once and calls it again.
  api: async (path) => {
    let r = await call(path);
    if (r.status !== 401) return r;
    const rr = await window.app.refresh();
    if (rr.status !== 200) return { status: rr.status, body: rr.body, refreshed: false };
    r = await call(path);
    r.refreshed = true;
    return r;
  },
  // ws opens a WebSocket, sends "ping" after the first message and
  // resolves with the messages (or the failure) within 5 s.
  ws: (path, protocols) =>
    new Promise((resolve) => {
      const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
      const s = new WebSocket(url, protocols);
      const msgs = [];
      const timer = setTimeout(() => resolve({ ok: false, why: "timeout", msgs: msgs }), 5000);
      s.onmessage = (e) => {
        msgs.push(e.data);
        if (msgs.length === 1) {
          s.send("ping");
          return;
        }
        clearTimeout(timer);
        s.close();
        resolve({ ok: true, protocol: s.protocol, msgs: msgs });
      };
      s.onerror = () => {
        clearTimeout(timer);
        resolve({ ok: false, why: "error", msgs: msgs });
      };
    }),
  cookies: () => document.cookie,
};
