// Web Push sign-up on the store page: fills <section id="push-panel"> (portal/push.py).
//
// Push needs a secure context (https, or localhost). A store WiFi page on plain http is not
// one, and then the panel says so plainly: offers still appear on the open page (store.js).
// Otherwise: register /sw.js, offer "Allow notifications", subscribe with the box's VAPID key,
// send the subscription to the portal, and offer "Turn off". No inline script (strict CSP):
// everything is built with DOM APIs, and every sentence comes from the section's data-label-*
// attributes (translated by the server), with English only as a fallback.
"use strict";

(() => {
  const panel = document.getElementById("push-panel");
  if (!panel) return;

  const FALLBACK = {
    heading: "Notifications when this page is closed",
    insecure:
      "Notifications when this page is closed need a secure (https) connection; this store's " +
      "WiFi page is http, so offers appear here while the page is open.",
    unsupported:
      "This browser cannot show notifications when the page is closed, so offers appear here " +
      "while the page is open.",
    intro: "Get offers and notes from friends even when this page is closed.",
    allow: "Allow notifications",
    off: "Turn off",
    on: "Notifications are on for this phone.",
    offDone: "Notifications are off. Offers still appear here while the page is open.",
    denied:
      "Notifications are blocked for this site. You can allow them in your browser's site " +
      "settings; offers still appear here while the page is open.",
    failed: "Notifications could not be turned on. Offers still appear here while the page is open.",
    working: "One moment…",
  };
  const label = (name) => panel.dataset["label" + name[0].toUpperCase() + name.slice(1)] || FALLBACK[name];
  const urls = {
    key: panel.dataset.keyUrl || "/push/key",
    subscribe: panel.dataset.subscribeUrl || "/push/subscribe",
    unsubscribe: panel.dataset.unsubscribeUrl || "/push/unsubscribe",
    worker: panel.dataset.workerUrl || "/sw.js",
  };
  const tokenMeta = document.querySelector('meta[name="csrf-token"]');
  const csrfToken = tokenMeta ? tokenMeta.content : "";

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  // Replace the panel's content: a heading, a sentence (announced), and any buttons.
  function show(sentence, ...buttons) {
    const status = element("p", sentence, "push-status");
    status.setAttribute("role", "status");
    panel.replaceChildren(element("h2", label("heading")), status, ...buttons);
    panel.hidden = false;
  }

  function button(text, onClick) {
    const node = element("button", text);
    node.type = "button";
    node.addEventListener("click", async () => {
      node.disabled = true;
      try {
        await onClick();
      } catch (error) {
        show(label("failed"));
      }
    });
    return node;
  }

  async function postJSON(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      // Flask-WTF checks the Referer on https POSTs; the page's policy is same-origin anyway.
      referrerPolicy: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken },
      body: JSON.stringify(body),
    });
    let answer = {};
    try {
      answer = await response.json();
    } catch (error) {
      answer = {};
    }
    if (!response.ok) throw new Error(answer.error || label("failed"));
    return answer;
  }

  // The VAPID key as pushManager.subscribe wants it: URL-safe base64 → bytes.
  function keyBytes(base64url) {
    const base64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
    return Uint8Array.from(binary, (character) => character.charCodeAt(0));
  }

  function sameKey(buffer, bytes) {
    if (!buffer) return false;
    const other = new Uint8Array(buffer);
    return other.length === bytes.length && other.every((value, index) => value === bytes[index]);
  }

  function showOn(registration, subscription, sentence) {
    show(
      sentence || label("on"),
      button(label("off"), async () => {
        show(label("working"));
        await postJSON(urls.unsubscribe, { endpoint: subscription.endpoint });
        await subscription.unsubscribe();
        showOff(registration, label("offDone"));
      }),
    );
  }

  function showOff(registration, sentence) {
    show(
      sentence || label("intro"),
      button(label("allow"), async () => {
        const permission = await Notification.requestPermission();
        if (permission !== "granted") {
          show(label("denied"));
          return;
        }
        show(label("working"));
        const subscription = await registration.pushManager.subscribe({
          userVisibleOnly: true,
          applicationServerKey: await serverKey(),
        });
        try {
          await postJSON(urls.subscribe, subscription.toJSON());
        } catch (error) {
          await subscription.unsubscribe(); // the portal refused it: do not leave it half on
          showOff(registration, error.message);
          return;
        }
        showOn(registration, subscription);
      }),
    );
  }

  let cachedKey = null;
  async function serverKey() {
    if (!cachedKey) {
      const response = await fetch(urls.key, { credentials: "same-origin" });
      if (!response.ok) throw new Error(label("failed"));
      cachedKey = keyBytes((await response.json()).publicKey);
    }
    return cachedKey;
  }

  async function start() {
    if (!window.isSecureContext) {
      show(label("insecure"));
      return;
    }
    if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
      show(label("unsupported"));
      return;
    }
    if (Notification.permission === "denied") {
      show(label("denied"));
      return;
    }
    const registration = await navigator.serviceWorker.register(urls.worker, { scope: "/" });
    let subscription = await registration.pushManager.getSubscription();
    if (subscription && !sameKey(subscription.options.applicationServerKey, await serverKey())) {
      // Made with a key this box no longer has: pushes would be refused (403). Start afresh.
      await subscription.unsubscribe();
      subscription = null;
    }
    if (!subscription) {
      showOff(registration);
      return;
    }
    // Sent again on each visit: whoever shops on this phone now gets its pushes, and a
    // subscription the browser renewed reaches the portal.
    await postJSON(urls.subscribe, subscription.toJSON());
    showOn(registration, subscription);
  }

  start().catch(() => show(label("failed")));
})();
