// Registers the service worker (served at /sw.js, so its scope is the whole
// site). It keeps only the hashed static files and the offline page; see
// web/front/service-worker.js.
//
// Not on the page right after signing out: sign-out has just removed the
// worker and everything it kept (js/sign-out.js), and a shared computer should
// keep nothing of the session that ended. The next page registers it again.
const justSignedOut = new URLSearchParams(window.location.search).has("signed_out");
if ("serviceWorker" in navigator && !justSignedOut) {
  window.addEventListener("load", () => {
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {
      // No worker (a private window, an old browser): the site works as before,
      // only the offline page and the installed app are missing.
    });
  });
}
