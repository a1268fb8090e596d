// The offline page stands in for a page that could not be loaded; once the
// network is back the page that was asked for is loaded again (an exam page
// then sends the answers its outbox kept on this device).
const reload = () => window.location.reload();
window.addEventListener("online", reload);
document.querySelector("[data-retry]")?.addEventListener("click", reload);
// Online already, yet the page did not load: the server was unreachable, or
// the network came back while the page was being fetched. Try again a few
// seconds later, at a random moment so that a whole room does not ask at once.
if (navigator.onLine) window.setTimeout(reload, 3000 + Math.random() * 3000);
