// The service worker: makes SafeExam installable and shows a page of its own
// when the network is gone. The server puts VERSION, SHELL and OFFLINE_URL
// above this text (web/front/pwa.py).
//
// What it keeps: the static files under their content-hashed names (they can
// never change, so a kept copy is never stale) and the offline page. What it
// never keeps: a page, an API answer, a stream. A page (an exam, a result)
// always comes from the network, so nobody is shown yesterday's exam or an
// answer the server no longer holds; without a network the offline page
// stands in for it. Answers typed meanwhile wait in the exam page's own
// outbox (IndexedDB), which this worker does not touch.

const CACHE = `safexam-shell-${VERSION}`;
const SHELL_PATHS = new Set(SHELL);

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll([...SHELL, OFFLINE_URL]))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  // Files of earlier versions are dropped as soon as this version takes over.
  event.waitUntil(
    caches
      .keys()
      .then((names) =>
        Promise.all(
          names
            .filter((name) => name.startsWith("safexam-") && name !== CACHE)
            .map((name) => caches.delete(name)),
        ),
      )
      .then(() => self.clients.claim()),
  );
});

async function fromShell(request) {
  const kept = await caches.match(request, { cacheName: CACHE });
  return kept || fetch(request);
}

async function page(request) {
  try {
    return await fetch(request);
  } catch {
    const offline = await caches.match(OFFLINE_URL, { cacheName: CACHE });
    return offline || Response.error();
  }
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (SHELL_PATHS.has(url.pathname)) {
    event.respondWith(fromShell(request));
  } else if (request.mode === "navigate") {
    event.respondWith(page(request));
  }
  // Anything else (the API, streams, the manifest) goes to the network untouched.
});

// Sign-out asks for everything kept to go (js/sign-out.js also deletes the
// caches itself; this covers a page the worker controls but that has no script).
self.addEventListener("message", (event) => {
  if (event.data === "clear") {
    event.waitUntil(
      caches.keys().then((names) => Promise.all(names.map((name) => caches.delete(name)))),
    );
  }
});
