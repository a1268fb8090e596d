// The exam builder's window is typed in the educator's own time zone. The page
// arrives in UTC (so it works without scripts); here each datetime-local input
// that carries its UTC moment (data-utc) is rewritten in the browser's zone, and
// the hidden tz field tells the server which zone the typed times are in.

const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

function pad(number) {
  return String(number).padStart(2, "0");
}

function localValue(moment) {
  return (
    `${moment.getFullYear()}-${pad(moment.getMonth() + 1)}-${pad(moment.getDate())}` +
    `T${pad(moment.getHours())}:${pad(moment.getMinutes())}`
  );
}

for (const form of document.querySelectorAll("form")) {
  const field = form.querySelector("input[data-zone-input]");
  if (!field) continue;
  const moments = [...form.querySelectorAll('input[type="datetime-local"]')];
  // Times sent back with the form's errors were typed in field.value's zone and
  // carry no UTC moment: they stay in that zone, and the page says which.
  const convertible = moments.every((input) => !input.value || input.dataset.utc);
  if (field.value !== zone && convertible) {
    for (const input of moments) {
      const moment = new Date(input.dataset.utc ?? "");
      if (!Number.isNaN(moment.getTime())) input.value = localValue(moment);
    }
    field.value = zone;
  }
  const shown = field.value === zone ? `your time zone (${zone})` : field.value;
  for (const name of form.querySelectorAll("[data-zone-name]")) {
    name.textContent = shown;
  }
}
