// A running job's progress, live: the page's job section names the job's SSE
// stream (data-job-events); each event carries the whole job, so the bar and
// the sentence are set from it, and the page reloads once the job has ended to
// show its outcome (rendered by the server, like everything else on the page).

const ENDED = new Set(["succeeded", "failed", "dead"]);

function follow(section) {
  const url = section.dataset.jobEvents;
  if (!url) return;
  const bar = section.querySelector("[data-job-progress]");
  const status = section.querySelector("[data-job-status]");
  const stream = new EventSource(url);
  stream.addEventListener("job", (event) => {
    let job;
    try {
      job = JSON.parse(event.data);
    } catch {
      return;
    }
    const { done = 0, total = 0 } = job.progress || {};
    if (bar) {
      bar.max = Math.max(total, 1);
      bar.value = done;
      bar.textContent = String(done);
    }
    if (status) {
      status.textContent = ENDED.has(job.status)
        ? "Finished. Showing the outcome…"
        : `${done} of ${total || "?"} answers scored.`;
    }
    if (ENDED.has(job.status)) {
      stream.close();
      window.location.reload();
    }
  });
}

for (const section of document.querySelectorAll("[data-job-events]")) {
  follow(section);
}
