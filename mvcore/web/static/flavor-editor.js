// The in-browser flavor editor on the Flavors page (only when the server runs with
// MVCORE_FLAVOR_EDITING=true).  Every edit is validated on the server as you type
// (POST /api/mv/flavors/{name}/validate: file:line errors, nothing written) and the prompts
// are rendered from the draft (POST .../render with the draft files).  Save writes atomically
// and is refused while the draft is invalid; History lists the last saves of the file.

import { apiFetch } from "./api.js";
import { el, showError } from "./ui.js";

const TYPING_PAUSE_MS = 300;
const PREVIEW_INPUTS = { idea: "a heist at a bakery", character_description: "a raccoon in a flat cap" };

export function mountEditor(mount) {
  const title = el("h2", { style: "margin: 0", testid: "editor-title" }, "Edit");
  const fileSelect = el("select", { testid: "editor-file", "aria-label": "File" });
  const text = el("textarea", { rows: 14, spellcheck: "false", testid: "editor-text", class: "code",
    "aria-label": "File content" });
  const state = el("div", { class: "status", testid: "editor-state", role: "status", "aria-live": "polite" });
  const errors = el("ul", { class: "error-list", testid: "editor-errors" });
  const saveButton = el("button", { type: "button", testid: "editor-save", disabled: true }, "Save");
  const saveError = el("div", { class: "error", testid: "editor-save-error", hidden: true });
  const historyList = el("ul", { class: "history-list", testid: "editor-history" });
  const preview = el("div", { testid: "editor-preview" });
  const off = el("div", { class: "note", testid: "editor-off", hidden: true });
  const body = el("div", { testid: "editor-body", hidden: true },
    el("div", { class: "row" }, el("label", {}, "File "), fileSelect, saveButton, state),
    text, errors, saveError,
    el("h3", {}, "Preview of the prompts (from the draft)"), preview,
    el("h3", {}, "History of this file"), historyList);
  const card = el("section", { class: "card", testid: "editor" }, el("div", { class: "row" }, title), off, body);
  mount.replaceChildren(card);

  let flavor = null;
  let files = {};
  let original = "";
  let timer = null;
  let token = 0;
  let valid = false;
  let enabled = null;

  async function isEnabled() {
    if (enabled !== null) return enabled;
    try {
      enabled = Boolean((await apiFetch("/api/mv/flavors/editor")).enabled);
    } catch {
      enabled = false;
    }
    return enabled;
  }

  function current() {
    return fileSelect.value;
  }

  async function open(name) {
    flavor = name;
    title.textContent = `Edit: ${name}`;
    if (!(await isEnabled())) {
      off.textContent = "Editing in the browser is off. Start the server with MVCORE_FLAVOR_EDITING=true " +
        "(and an API_KEY when others can reach it) to edit flavor files here.";
      off.hidden = false;
      body.hidden = true;
      return;
    }
    try {
      files = (await apiFetch(`/api/mv/flavors/${encodeURIComponent(name)}/files`)).files || {};
    } catch (err) {
      off.textContent = `'${name}' cannot be edited here: ${err.message}`;
      off.hidden = false;
      body.hidden = true;
      return;
    }
    off.hidden = true;
    body.hidden = false;
    const names = Object.keys(files);
    const keep = names.includes(current()) ? current() : names.find((f) => files[f] !== null) || names[0];
    fileSelect.replaceChildren(...names.map((f) => el("option", { value: f }, files[f] === null ? `${f} (new)` : f)));
    fileSelect.value = keep;
    load();
  }

  function load() {
    original = files[current()] ?? "";
    text.value = original;
    showError(saveError, null);
    check();
    loadHistory();
  }

  function schedule() {
    clearTimeout(timer);
    state.textContent = "checking…";
    timer = setTimeout(check, TYPING_PAUSE_MS);
  }

  async function check() {
    const mine = ++token;
    const draft = { [current()]: text.value };
    saveButton.disabled = true;
    try {
      const [result, rendered] = await Promise.all([
        apiFetch(`/api/mv/flavors/${encodeURIComponent(flavor)}/validate`, { method: "POST", json: { files: draft } }),
        apiFetch(`/api/mv/flavors/${encodeURIComponent(flavor)}/render`, {
          method: "POST", json: { ...PREVIEW_INPUTS, files: draft } }).catch((err) => ({ error: err })),
      ]);
      if (mine !== token) return;
      valid = Boolean(result.ok);
      errors.replaceChildren(...(result.errors || []).map((e) => el("li", { testid: "editor-error" }, e.text)));
      const changed = text.value !== original;
      state.textContent = valid ? (changed ? "valid — not saved yet" : "valid, saved") : `${result.errors.length} error(s)`;
      state.dataset.state = valid ? "valid" : "invalid";
      saveButton.disabled = !valid || !changed;
      saveButton.title = valid ? "" : "Fix the errors first: an invalid file is never saved";
      renderPreview(rendered);
    } catch (err) {
      if (mine !== token) return;
      state.textContent = "";
      showError(saveError, `Could not check the draft: ${err.message}`);
    }
  }

  function renderPreview(rendered) {
    if (rendered.error) {
      preview.replaceChildren(el("div", { class: "error" }, `No preview: ${rendered.error.message}`));
      return;
    }
    const generators = rendered.generators || {};
    preview.replaceChildren(...Object.entries(generators).map(([name, call]) => el("details", {
      testid: "editor-preview-item", dataset: { generator: name }, open: name === "create_scenes" },
    el("summary", {}, `${name} · ${call.replicate ? call.replicate.model : ""}`),
    call.prompt ? el("pre", { class: "prompt", testid: "editor-preview-prompt" }, call.prompt) : null,
    el("pre", { class: "prompt" }, JSON.stringify(call.parameters, null, 1)))));
  }

  async function loadHistory() {
    try {
      const data = await apiFetch(`/api/mv/flavors/${encodeURIComponent(flavor)}/files/${encodeURIComponent(current())}/history`);
      const entries = data.entries || [];
      historyList.replaceChildren(...(entries.length ? entries.map((entry) => el("li", { testid: "editor-history-item" },
        `${new Date(entry.saved_at * 1000).toLocaleString()} · ${entry.bytes} bytes `,
        el("button", { type: "button", class: "secondary", testid: "editor-restore",
          onclick: () => restore(entry.id) }, "Restore"))) : [el("li", { class: "muted" }, "No earlier saves.")]));
    } catch (err) {
      historyList.replaceChildren(el("li", { class: "error" }, `No history: ${err.message}`));
    }
  }

  async function save() {
    showError(saveError, null);
    saveButton.disabled = true;
    state.textContent = "saving…";
    try {
      const result = await apiFetch(`/api/mv/flavors/${encodeURIComponent(flavor)}/files/${encodeURIComponent(current())}`,
        { method: "PUT", json: { content: text.value } });
      original = files[current()] = text.value;
      state.textContent = `saved — generation ${result.generation}`;
      state.dataset.state = "saved";
      loadHistory();
    } catch (err) {
      state.textContent = "";
      showError(saveError, err);
      check();
    }
  }

  async function restore(id) {
    showError(saveError, null);
    try {
      await apiFetch(`/api/mv/flavors/${encodeURIComponent(flavor)}/files/${encodeURIComponent(current())}/history/${id}/restore`,
        { method: "POST" });
      const data = await apiFetch(`/api/mv/flavors/${encodeURIComponent(flavor)}/files`);
      files = data.files || files;
      load();
      state.textContent = "restored";
    } catch (err) {
      showError(saveError, err);
    }
  }

  text.addEventListener("input", schedule);
  fileSelect.addEventListener("change", load);
  saveButton.addEventListener("click", save);
  window.addEventListener("mvcore:api-key", () => { enabled = null; if (flavor) open(flavor); });
  return { open };
}
