// The offline page stands in for a page that could not be loaded; once the
// network is back the page that was asked for is loaded again (an exam page
// then sends the answers its outbox kept on this device).
window.addEventListener("online", () => window.location.reload());
document.querySelector("[data-retry]")?.addEventListener("click", () => window.location.reload());
