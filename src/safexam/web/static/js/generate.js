// The generation job's page: follows the job over its event stream and, when
// it ends, puts the drafts in place without a reload.
//
// The drafts are committed together with the job's final status (a retried job
// never leaves half a batch), so the list is fetched once the stream says the
// job has finished; until then the status line says what the worker is doing.

const FINISHED = new Set(["succeeded", "failed", "dead"]);

function plural(count, one, many) {
  return `${count} ${count === 1 ? one : many}`;
}

function statusLine(job) {
  if (job.status === "running") {
    const total = job.progress.total || 0;
    return total ? `Generating ${plural(total, "draft", "drafts")}…` : "Generating…";
  }
  return "Waiting for a worker to start…";
}

class GenerationJob {
  constructor(root) {
    this.root = root;
    this.id = root.dataset.generationJob;
    this.region = root.querySelector("#drafts");
    this.announcer = root.querySelector("[data-job-announce]");
    this.stream = null;
  }

  start() {
    if (FINISHED.has(this.root.dataset.jobStatus)) return;
    const stream = new EventSource(`/api/v1/jobs/${this.id}/events`);
    this.stream = stream;
    stream.addEventListener("job", (event) => this.update(JSON.parse(event.data)));
    stream.addEventListener("error", () => {
      // EventSource reconnects by itself; a closed one (signed out, the job
      // gone) will not, so say how to see what happened.
      if (stream.readyState === EventSource.CLOSED) {
        this.say("The progress stopped arriving. Reload the page to see the drafts.");
      }
    });
  }

  update(job) {
    this.root.dataset.jobStatus = job.status;
    if (FINISHED.has(job.status)) {
      this.stream.close();
      this.stream = null;
      this.showDrafts(job);
      return;
    }
    const line = this.region.querySelector("[data-job-line]");
    if (line) line.textContent = statusLine(job);
  }

  async showDrafts(job) {
    let response;
    try {
      response = await fetch(`/educator/generate/${this.id}/drafts`, {
        headers: { Accept: "text/html" },
        credentials: "same-origin",
      });
    } catch {
      response = null;
    }
    if (!response || !response.ok) {
      this.say("The job has finished. Reload the page to see the drafts.");
      return;
    }
    this.region.innerHTML = await response.text();
    if (job.status === "succeeded") {
      const made = job.result && typeof job.result.created === "number" ? job.result.created : null;
      this.say(made === null ? "The drafts have arrived." : `${plural(made, "draft has", "drafts have")} arrived.`);
    } else {
      this.say("Generation failed.");
    }
  }

  say(text) {
    if (this.announcer) this.announcer.textContent = text;
  }
}

for (const root of document.querySelectorAll("[data-generation-job]")) {
  new GenerationJob(root).start();
}
