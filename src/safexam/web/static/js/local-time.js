// Moments arrive in the page as UTC (<time datetime="…Z" data-local>), with a
// UTC text that works without scripts. Here they are rewritten in the reader's
// own time zone and language, and the footer says which zone that is.

const format = new Intl.DateTimeFormat(undefined, {
  weekday: "short",
  day: "numeric",
  month: "short",
  year: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  timeZoneName: "short",
});

// A time of day to the second (data-local="clock"), where moments minutes apart are compared.
const clock = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});

export function localize(root = document) {
  for (const element of root.querySelectorAll("time[data-local]")) {
    const moment = new Date(element.dateTime);
    if (Number.isNaN(moment.getTime())) continue;
    element.textContent = (element.dataset.local === "clock" ? clock : format).format(moment);
    element.title = moment.toISOString();
  }
  const zone = format.resolvedOptions().timeZone;
  for (const element of root.querySelectorAll("[data-local-zone]")) {
    element.textContent = `Times are shown in your time zone (${zone}).`;
  }
}

localize();
