// The exam's code editor: CodeMirror 6 with the five languages SafeExam runs.
//
// Built by `make assets` (scripts/build-editor.sh) into one ES module,
// src/safexam/web/static/vendor/codemirror.js, which the exam page imports
// only when a coding question is on it.
//
// The editor lives in a shadow root on purpose: CodeMirror adds its styles
// with a <style> element on a document, which the page's Content-Security-Policy
// (style-src 'self', nothing inline) refuses, but as a constructed style sheet
// on a shadow root, which the policy does not govern.
//
// Keyboard users are never trapped: Tab indents, but Escape then Tab moves focus
// on (CodeMirror's tab focus mode), and Ctrl-M (Shift-Alt-M on macOS) turns
// "Tab moves focus" on for good.

import { indentWithTab, defaultKeymap, history, historyKeymap } from "@codemirror/commands";
import { cpp } from "@codemirror/lang-cpp";
import { java } from "@codemirror/lang-java";
import { javascript } from "@codemirror/lang-javascript";
import { python } from "@codemirror/lang-python";
import {
  bracketMatching,
  defaultHighlightStyle,
  foldGutter,
  foldKeymap,
  indentOnInput,
  indentUnit,
  syntaxHighlighting,
} from "@codemirror/language";
import { Annotation, Compartment, EditorState } from "@codemirror/state";
import {
  EditorView,
  drawSelection,
  dropCursor,
  highlightActiveLine,
  highlightActiveLineGutter,
  highlightSpecialChars,
  keymap,
  lineNumbers,
} from "@codemirror/view";

/** The names SafeExam gives its languages (safexam.core.languages), each with its mode. */
const MODES = {
  python: () => python(),
  c: () => cpp(),
  cpp: () => cpp(),
  java: () => java(),
  javascript: () => javascript(),
};

export const LANGUAGE_NAMES = Object.freeze(Object.keys(MODES));

// Marks the changes made by setValue, so that onChange reports only the student's.
const External = Annotation.define();

const theme = EditorView.theme({
  "&": {
    fontSize: "1rem",
    border: "1px solid #6b6b6b",
    borderRadius: "4px",
    backgroundColor: "#ffffff",
    color: "#1a1a1a",
  },
  "&.cm-focused": {
    outline: "3px solid #1d4ed8",
    outlineOffset: "2px",
  },
  ".cm-scroller": {
    fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, 'Liberation Mono', monospace",
    lineHeight: "1.5",
    minHeight: "12rem",
    maxHeight: "32rem",
  },
  ".cm-content": { padding: "0.5rem 0" },
  ".cm-gutters": {
    backgroundColor: "#f3f4f6",
    color: "#4b5563",
    borderRight: "1px solid #d1d5db",
  },
  ".cm-activeLine": { backgroundColor: "#f1f5ff" },
  ".cm-activeLineGutter": { backgroundColor: "#e0e7ff", color: "#1a1a1a" },
});

// Typing over a selection is done here rather than by the browser: Chrome,
// replacing a selection that spans lines, writes style="" attributes into the
// editor (to carry the old text's look), which the Content-Security-Policy
// refuses with an error in the console; CodeMirror redraws the lines anyway.
const typeOverSelection = EditorView.domEventHandlers({
  beforeinput(event, view) {
    if (event.inputType !== "insertText" || !event.data || view.composing) return false;
    if (view.state.selection.ranges.every((range) => range.empty)) return false;
    event.preventDefault();
    view.dispatch(view.state.replaceSelection(event.data), {
      userEvent: "input.type",
      scrollIntoView: true,
    });
    return true;
  },
});

function modeOf(language) {
  const mode = MODES[language];
  if (!mode) throw new Error(`no editor mode for language ${language}`);
  return mode();
}

/**
 * Create an editor inside `host` (an element; the editor goes into its shadow root).
 *
 * options: value (the text), language (one of LANGUAGE_NAMES), label (the accessible
 * name, e.g. "Code for question 2"), onChange(value) called after each edit by the
 * student (not after setValue).
 *
 * Returns { view, getValue(), setValue(text), setLanguage(name), focus(), destroy() }.
 */
export function createEditor(host, { value = "", language = "python", label = "Code", onChange = null } = {}) {
  const root = host.shadowRoot || host.attachShadow({ mode: "open" });
  const languageSlot = new Compartment();
  const extensions = [
    lineNumbers(),
    highlightActiveLineGutter(),
    highlightSpecialChars(),
    history(),
    foldGutter(),
    drawSelection(),
    dropCursor(),
    EditorState.allowMultipleSelections.of(true),
    indentOnInput(),
    indentUnit.of("    "),
    syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
    bracketMatching(),
    highlightActiveLine(),
    keymap.of([...defaultKeymap, ...historyKeymap, ...foldKeymap, indentWithTab]),
    languageSlot.of(modeOf(language)),
    theme,
    // A long line wraps, so the page never scrolls sideways on a narrow screen.
    EditorView.lineWrapping,
    // The text is the editor's one tab stop; saying so (it is focusable anyway)
    // lets checkers see that its scrolling area can be reached by keyboard.
    EditorView.contentAttributes.of({ "aria-label": label, tabindex: "0" }),
    typeOverSelection,
    EditorView.updateListener.of((update) => {
      if (!update.docChanged || !onChange) return;
      if (update.transactions.every((tr) => tr.annotation(External))) return;
      onChange(update.state.doc.toString());
    }),
  ];
  const view = new EditorView({
    root,
    parent: root,
    state: EditorState.create({ doc: value, extensions }),
  });
  return {
    view,
    getValue: () => view.state.doc.toString(),
    setValue(text) {
      view.dispatch({
        changes: { from: 0, to: view.state.doc.length, insert: text },
        annotations: [External.of(true)],
      });
    },
    setLanguage(name) {
      view.dispatch({ effects: languageSlot.reconfigure(modeOf(name)) });
    },
    focus: () => view.focus(),
    destroy: () => view.destroy(),
  };
}
