// Registers the service worker (served at /sw.js, so its scope is the whole
// site). It keeps only the hashed static files and the offline page; see
// web/front/service-worker.js.
if ("serviceWorker" in navigator) {
  window.addEventListener("load", () => {
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {
      // No worker (a private window, an old browser): the site works as before,
      // only the offline page and the installed app are missing.
    });
  });
}
