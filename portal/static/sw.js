// The store's service worker (served at /sw.js by portal/push.py): shows Web Push messages
// and opens the store page when one is tapped. The payload is the feed's notification JSON plus
// "url": /store#n-<id>, the notification's item on that page. The worker has no CSRF token, so
// it records nothing itself: the page scrolls to the item, and store.js marks it opened once seen.
"use strict";

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("push", (event) => {
  let message = {};
  try {
    message = event.data ? event.data.json() : {};
  } catch (error) {
    message = {}; // not ours, or damaged: still show something, as browsers require
  }
  const options = {
    body: message.body || "",
    data: { url: message.url || "/store" },
  };
  // The same notification pushed twice replaces itself instead of buzzing again.
  if (message.id) options.tag = "n" + message.id;
  event.waitUntil(self.registration.showNotification(message.title || "", options));
});

// Only our own pages: a URL from elsewhere never opens from a notification.
function sameOriginUrl(raw) {
  const url = new URL(raw || "/store", self.location.origin);
  return url.origin === self.location.origin ? url.href : new URL("/store", self.location.origin).href;
}

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = sameOriginUrl(event.notification.data && event.notification.data.url);
  event.waitUntil(
    (async () => {
      const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      const open = windows.find((client) => new URL(client.url).pathname === new URL(target).pathname);
      if (open) {
        const focused = await open.focus();
        // navigate() works only on pages this worker controls; an older tab just gets focus.
        if (focused.url !== target) await focused.navigate(target).catch(() => undefined);
        return;
      }
      await self.clients.openWindow(target);
    })(),
  );
});
