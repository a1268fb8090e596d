// Reading a question's answer from its inputs, by kind: the shapes the
// autosave route accepts (src/safexam/exams/kinds/). null means "nothing can
// be saved": an empty number field, or text that is not a number.
//
// Clearing an answer saves the cleared shape wherever the kind has one, so a
// cleared answer stays cleared after a reload: short text {"text": ""},
// multiple choice {"choices": []}, code with an empty source. A number has no
// empty shape (the route wants a number) and a single choice cannot be
// unticked: there the last saved answer stands, and the page says so.

// Digits with one decimal point or comma, an optional sign and exponent:
// "3.5", "-2", ",5", "1e-3". Thousands separators are not numbers here, so
// "1,000" reads as 1 (a decimal comma), and the page shows how it was read.
const NUMBER = /^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?$/;

export function parseNumber(text) {
  const trimmed = text.trim().replace(/\s+/g, "");
  if (trimmed === "") return { empty: true };
  if (!NUMBER.test(trimmed)) {
    return { problem: "This is not a number yet. Type digits, such as 42, -3.5 or 0.25." };
  }
  const value = Number(trimmed.replace(",", "."));
  if (!Number.isFinite(value)) return { problem: "This number is too large to save." };
  return { value, comma: trimmed.includes(",") };
}

const readers = {
  mcq_single(section) {
    const picked = section.querySelector('input[type="radio"]:checked');
    return picked ? { choice: picked.value } : null;
  },
  mcq_multi(section) {
    const picked = [...section.querySelectorAll('input[type="checkbox"]:checked')];
    return { choices: picked.map((input) => input.value) };
  },
  numeric(section) {
    const parsed = parseNumber(section.querySelector('input[name="value"]').value);
    return "value" in parsed ? { value: parsed.value } : null;
  },
  short_text(section) {
    return { text: section.querySelector('input[name="text"]').value };
  },
  coding(section) {
    const language = section.querySelector('select[name="language"]');
    const source = section.querySelector('textarea[name="source"]');
    return { language: language.value, source: source.value };
  },
};

export function readAnswer(section) {
  const reader = readers[section.dataset.kind];
  return reader ? reader(section) : null;
}

// Whether an answer (as read or as saved) says anything: for the navigator and
// the review. Code counts once it is more than the starter code it began as.
export function hasContent(kind, answer, starter = "") {
  if (!answer) return false;
  switch (kind) {
    case "mcq_single":
      return Boolean(answer.choice);
    case "mcq_multi":
      return (answer.choices || []).length > 0;
    case "numeric":
      return typeof answer.value === "number";
    case "short_text":
      return (answer.text || "").trim() !== "";
    case "coding":
      return !["", starter.trim()].includes((answer.source || "").trim());
    default:
      return false;
  }
}

// The fields an answer is read from (a coding workspace has others, such as
// the input of a trial run, whose changes are no answer's).
export function isAnswerField(target) {
  const name = target && target.name;
  if (typeof name !== "string") return false;
  return /^choices?-/.test(name) || ["value", "text", "language", "source"].includes(name);
}

// Fields whose every keystroke is an input event: their saves wait for a
// pause in typing. Choices and the language are saved at once.
export function isTyped(target) {
  return (
    target instanceof HTMLTextAreaElement ||
    (target instanceof HTMLInputElement && target.type === "text")
  );
}

// Put an answer back into the inputs (from the outbox after a reload).
export function writeAnswer(section, answer) {
  switch (section.dataset.kind) {
    case "mcq_single":
      for (const input of section.querySelectorAll('input[type="radio"]')) {
        input.checked = input.value === answer.choice;
      }
      break;
    case "mcq_multi":
      for (const input of section.querySelectorAll('input[type="checkbox"]')) {
        input.checked = (answer.choices || []).includes(input.value);
      }
      break;
    case "numeric":
      section.querySelector('input[name="value"]').value = String(answer.value);
      break;
    case "short_text":
      section.querySelector('input[name="text"]').value = answer.text;
      break;
    case "coding":
      // Before any editor is mounted over the text area: it starts from this value.
      section.querySelector('select[name="language"]').value = answer.language;
      section.querySelector('textarea[name="source"]').value = answer.source;
      break;
  }
}
