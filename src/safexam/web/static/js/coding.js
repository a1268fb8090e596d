// The coding workspace of a coding question: the editor over the code's text
// area, Run and Submit code, and each test's status as it arrives.
//
// The text area stays in the page, hidden: it holds the code, and each edit is
// copied into it with a bubbling "input" event, so the exam page's outbox saves
// the code like any other answer. The editor (CodeMirror, vendor/codemirror.js)
// is loaded only here, and only when a coding question is on the page.

import { announce } from "./announce.js";

const LANGUAGE_NAMES = {
  python: "Python",
  c: "C",
  cpp: "C++",
  java: "Java",
  javascript: "JavaScript",
};

const VERDICTS = {
  accepted: "Passed",
  wrong_answer: "Failed: wrong answer",
  compile_error: "Failed: did not compile",
  runtime_error: "Failed: the program stopped with an error",
  time_limit: "Failed: took too long",
  memory_limit: "Failed: used too much memory",
  output_limit: "Failed: printed too much",
  internal_error: "Not judged: the judge failed",
};

function plural(count, one, many) {
  return `${count} ${count === 1 ? one : many}`;
}

function seconds(total) {
  if (total < 60) return plural(total, "second", "seconds");
  const minutes = Math.ceil(total / 60);
  return plural(minutes, "minute", "minutes");
}

// The wait in words coarse enough not to change at every refresh of the
// estimate: the status line is a live region, read out at each change.
function waitWords(total) {
  if (total < 10) return "a few seconds to wait";
  if (total < 60) return "less than a minute to wait";
  const minutes = Math.round(total / 60);
  return `about ${plural(minutes, "minute", "minutes")} to wait`;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// A refused request, in words and with a next step; never the raw body.
function refusal(status, body, what) {
  const error = (body && body.error) || {};
  const wait = error.details && error.details.retry_after;
  const message = error.message || "";
  if (status === 429) {
    if (/in progress/i.test(message)) {
      return { text: `Your previous ${what} of this question is still being judged. Wait for its result, then try again.`, wait };
    }
    const limit = message.replace(/^Too many \w+: /i, "");
    return {
      text: `You have reached the limit of ${what === "submission" ? "submissions" : "runs"} (${limit}). You can try again in ${seconds(wait || 60)}.`,
      wait,
    };
  }
  if (status === 409) {
    return { text: "This exam has ended, so code can no longer be run or submitted. The code you saved is kept." };
  }
  if (status === 403 && error.code === "csrf_failed") {
    return { text: "This page is out of date. Reload it (your answers are kept) and try again." };
  }
  if (status === 403) return { text: "You are not allowed to run code in this exam." };
  if (status === 401) return { text: "You have been signed out. Sign in again in a new tab, then come back and try again." };
  if (status === 404) return { text: "This question is no longer on your exam. Reload the page." };
  if (status === 422) return { text: `Your code was not sent: ${message || "something in it was refused"}.` };
  if (status === 503) {
    return { text: `The code runner is busy or unavailable. Try again in ${seconds(wait || 5)}.`, wait };
  }
  return { text: `Your ${what} could not be sent (the server answered ${status}). Try again in a moment.` };
}

class Workspace {
  constructor(section, page, createEditor) {
    this.section = section;
    this.page = page;
    this.questionId = section.dataset.questionId;
    this.select = section.querySelector('select[name="language"]');
    this.textarea = section.querySelector('textarea[name="source"]');
    this.starters = JSON.parse(this.textarea.dataset.starterCode || "{}");
    this.customInput = section.querySelector("[data-custom-input]");
    this.runButton = section.querySelector("[data-run]");
    this.submitButton = section.querySelector("[data-submit-code]");
    this.results = section.querySelector("[data-results]");
    this.status = section.querySelector("[data-status]");
    this.error = section.querySelector("[data-coding-error]");
    this.detail = section.querySelector("[data-result-detail]");
    this.visibleTests = [...section.querySelectorAll("[data-visible-test]")].map((n) => n.dataset.visibleTest);
    this.stream = null;
    this.language = this.select.value;
    this.edited = !this.isStarter(this.textarea.value, this.language);

    const host = section.querySelector("[data-editor]");
    const label = section.querySelector("[data-source-label]");
    this.editor = createEditor(host, {
      value: this.textarea.value,
      language: this.language,
      label: label.textContent.trim(),
      onChange: (value) => this.onEdit(value),
    });
    // The editor's own events carry the host as their target; the page hears
    // about an edit once, from the text area, after it holds the new code.
    host.addEventListener("input", (event) => event.stopPropagation());
    this.customInput.addEventListener("input", (event) => event.stopPropagation());
    this.customInput.addEventListener("change", (event) => event.stopPropagation());
    // The label named the text area; now it names (and focuses) the editor.
    label.removeAttribute("for");
    label.addEventListener("click", () => this.editor.focus());
    this.textarea.hidden = true;
    host.hidden = false;
    section.querySelector("[data-editor-help]").hidden = false;
    section.querySelector("[data-coding-actions]").hidden = false;

    this.select.addEventListener("change", () => this.onLanguage());
    this.runButton.addEventListener("click", () => this.send("run"));
    this.submitButton.addEventListener("click", () => this.send("submission"));
  }

  isStarter(value, language) {
    return value.trim() === (this.starters[language] || "").trim();
  }

  onEdit(value) {
    this.textarea.value = value;
    this.edited = !this.isStarter(value, this.language);
    this.textarea.dispatchEvent(new Event("input", { bubbles: true }));
  }

  onLanguage() {
    const language = this.select.value;
    const name = LANGUAGE_NAMES[language] || language;
    try {
      this.editor.setLanguage(language);
    } catch {
      // A language the editor has no mode for keeps the current highlighting;
      // the server says whether the question allows it.
    }
    this.language = language;
    if (!this.edited) {
      const starter = this.starters[language] || "";
      this.editor.setValue(starter);
      this.textarea.value = starter;
      this.textarea.dispatchEvent(new Event("input", { bubbles: true }));
      announce(`Language: ${name}. The editor shows the starter code for ${name}.`);
    } else {
      announce(`Language: ${name}. Your code is kept as it is.`);
    }
  }

  showError(text) {
    this.error.textContent = text;
    this.error.hidden = false;
    this.results.hidden = false;
  }

  setBusy(busy) {
    this.runButton.disabled = busy;
    this.submitButton.disabled = busy;
  }

  async send(what) {
    const route = what === "run" ? "runs" : "submissions";
    const body = {
      question_id: this.questionId,
      language: this.select.value,
      source: this.editor.getValue(),
    };
    if (what === "run" && this.customInput.value !== "") body.stdin = this.customInput.value;
    this.error.hidden = true;
    this.setBusy(true);
    let response;
    try {
      response = await fetch(`/api/v1/sessions/${this.page.sessionId}/${route}`, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": this.page.csrf },
        body: JSON.stringify(body),
      });
    } catch {
      this.setBusy(false);
      this.showError(`Your ${what} could not be sent: the connection to the server failed. Your code is kept; try again when you are back online.`);
      return;
    }
    if (response.status !== 202) {
      let answer = null;
      try {
        answer = await response.json();
      } catch {
        answer = null;
      }
      const { text, wait } = refusal(response.status, answer, what);
      // The error is an alert: announced once, without the page's announcer.
      this.showError(text);
      // A limit with a known end: the buttons come back when it has passed.
      window.setTimeout(() => this.setBusy(false), wait ? wait * 1000 : 0);
      return;
    }
    const queued = await response.json();
    this.follow(queued.id, what, body.stdin !== undefined);
  }

  follow(id, what, custom) {
    if (this.stream) this.stream.close();
    this.current = { id, what, custom };
    this.results.hidden = false;
    this.render({ status: "queued", tests: [], tests_done: 0, tests_total: 0, queue_position: null });
    const stream = new EventSource(`/api/v1/submissions/${id}/events`);
    this.stream = stream;
    let lastStatus = null;
    stream.addEventListener("submission", (event) => {
      const state = JSON.parse(event.data);
      this.render(state);
      if (state.status !== lastStatus) {
        lastStatus = state.status;
        this.section.dataset.codingStatus = state.status;
      }
      if (state.status === "done" || state.status === "error") {
        stream.close();
        this.stream = null;
        this.setBusy(false);
      }
    });
    stream.addEventListener("error", () => {
      // EventSource reconnects by itself; a closed one (the submission is gone,
      // or we were signed out) will not.
      if (stream.readyState === EventSource.CLOSED) {
        this.showError("The results stopped arriving. Reload the page to see them.");
        this.setBusy(false);
      }
    });
  }

  statusLine(state) {
    const what = this.current.what === "run" ? "Run" : "Submission";
    if (state.status === "queued") {
      if (state.queue_position) {
        const wait = state.estimated_wait_seconds ? `, ${waitWords(state.estimated_wait_seconds)}` : "";
        return `${what} queued: number ${state.queue_position} in line${wait}.`;
      }
      return `${what} queued.`;
    }
    if (state.status === "running") {
      return state.tests_total
        ? `${what} running: ${state.tests_done} of ${plural(state.tests_total, "test", "tests")} done.`
        : `${what} running.`;
    }
    if (state.status === "error") return `${what} could not be judged: the judge failed. Try again.`;
    const passed = state.tests.filter((t) => t.verdict === "accepted").length;
    let line = `${what} judged: ${passed} of ${plural(state.tests.length, "test", "tests")} passed.`;
    if (state.verdict === "compile_error") line = `${what} judged: your code did not compile.`;
    if (this.current.what === "submission" && state.score !== null && state.max_score !== null) {
      line += ` Score: ${state.score} out of ${state.max_score}.`;
    }
    return line;
  }

  render(state) {
    const line = this.statusLine(state);
    if (this.status.textContent !== line) this.status.textContent = line;
    const detail = [];
    if (state.compile_output) {
      const block = element("div", "compile-output");
      block.append(element("h4", "", "Compiler output"), element("pre", "", state.compile_output));
      detail.push(block);
    }
    const list = element("ul", "test-results");
    const results = state.tests || [];
    // Results arrive in the tests' order: the visible ones line up with the
    // visible tests, and the hidden ones are only counted.
    const visible = results.filter((t) => !t.hidden);
    const names = this.expectedTests();
    names.forEach((name, index) => {
      let waiting = state.status === "running" ? "Running" : state.status === "queued" ? "Queued" : "Not judged";
      // In a run every test is visible, so the one being judged is known.
      if (state.status === "running" && this.current.what === "run" && index > visible.length) {
        waiting = "Queued";
      }
      list.append(this.testRow(visible[index] || { name }, waiting));
    });
    const hiddenTotal = this.current.what === "submission" ? state.tests_total - this.visibleTests.length : 0;
    if (hiddenTotal > 0) {
      const hidden = results.filter((t) => t.hidden);
      const passed = hidden.filter((t) => t.verdict === "accepted").length;
      let text = `${plural(hiddenTotal, "test", "tests")}, queued`;
      if (state.status === "done") text = `${passed} of ${hiddenTotal} passed`;
      else if (state.status === "running") text = `${hidden.length} of ${hiddenTotal} judged, ${passed} passed`;
      else if (state.status === "error") text = "not judged";
      const item = element("li", "test-result hidden-tests");
      if (state.status === "done") item.dataset.state = passed === hiddenTotal ? "passed" : "failed";
      item.append(element("span", "test-name", "Hidden tests"), element("span", "test-status", text));
      list.append(item);
    }
    if (list.children.length) detail.push(list);
    this.detail.replaceChildren(...detail);
  }

  expectedTests() {
    if (this.current.custom) return ["custom input"];
    return this.visibleTests.length ? this.visibleTests : ["no input"];
  }

  testRow(test, waiting) {
    const item = element("li", "test-result");
    item.dataset.testName = test.name;
    let word = waiting;
    if (test.verdict) word = VERDICTS[test.verdict] || test.verdict;
    if (this.current.custom && test.verdict === "accepted") word = "Finished";
    item.dataset.state = test.verdict ? (test.verdict === "accepted" ? "passed" : "failed") : waiting.toLowerCase();
    item.append(element("span", "test-name", test.name), element("span", "test-status", word));
    if (test.verdict) {
      // A hidden test comes without its time until results are released.
      const facts = test.time_ms === undefined ? [] : [`${test.time_ms} ms`];
      if (test.memory_kb) {
        facts.push(test.memory_kb < 1024 ? `${test.memory_kb} KB` : `${Math.round(test.memory_kb / 1024)} MB`);
      }
      if (facts.length) item.append(element("span", "test-facts", facts.join(", ")));
      if (test.stdout !== undefined && (test.stdout || test.stderr)) {
        const output = element("div", "test-output");
        if (test.stdout) output.append(element("p", "io-label", "Your program printed"), element("pre", "", test.stdout));
        if (test.stderr) output.append(element("p", "io-label", "Errors"), element("pre", "", test.stderr));
        item.append(output);
      }
    }
    return item;
  }
}

export async function mount(section, page) {
  const { createEditor } = await import("../vendor/codemirror.js");
  return new Workspace(section, page, createEditor);
}
