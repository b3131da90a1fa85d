// Flavors page: list + status, resolved values with provenance, live updates over SSE.

import { apiFetch, flavorEventsUrl } from "./api.js";
import { mountEditor } from "./flavor-editor.js";
import { byTestId, el, mountHeader, pathText, showError } from "./ui.js";

mountHeader();
const editor = mountEditor(byTestId("editor-mount"));

const rowsBody = byTestId("flavor-rows");
const listError = byTestId("list-error");
const errorsBody = byTestId("errors-body");
const statusError = byTestId("status-error");
const reloadInfo = byTestId("reload-info");
const detailTitle = byTestId("detail-title");
const detailMeta = byTestId("detail-meta");
const detailNote = byTestId("detail-note");
const detailError = byTestId("detail-error");
const detailBody = byTestId("detail-body");
const badge = byTestId("live-badge");
const badgeText = byTestId("live-text");

let selected = decodeURIComponent(location.hash.slice(1)) || "default";
let generation = null;
let refreshToken = 0;
let statusByName = new Map();
let shownDetail = null;

// --------------------------------------------------------------------------- rendering
function layerClass(layer) {
  const base = String(layer || "").split(":")[0];
  return `badge layer-${base}`;
}

// Server paths are shown relative to the directory that holds the flavor roots (as in the error
// texts: "flavors/example/parameters.yaml:3"); the full path is in the tooltip.
let pathRoots = [];

function computeRoots(flavors) {
  const roots = new Set();
  for (const row of flavors) {
    if (row.origin !== "dir" || typeof row.source !== "string" || !row.source.startsWith("/")) continue;
    const flavorRoot = row.source.replace(/\/+$/, "").replace(/\/[^/]+$/, "");
    const parent = flavorRoot.replace(/\/[^/]+$/, "");
    roots.add(`${parent}/`);
  }
  pathRoots = [...roots].sort((a, b) => b.length - a.length);
}

function shortPath(path) {
  const text = String(path ?? "");
  for (const root of pathRoots) if (text.startsWith(root) && text.length > root.length) return text.slice(root.length);
  const builtin = text.indexOf("/mvcore/builtin/");
  return builtin >= 0 ? text.slice(builtin + 1) : text;
}

function pathCell(attrs, path) {
  return el("td", { ...attrs, title: path || null }, path ? pathText(shortPath(path)) : "—");
}

function where(prov) {
  if (!prov || !prov.file) return "";
  return prov.line ? `${prov.file}:${prov.line}` : prov.file;
}

function valueText(value) {
  if (typeof value === "string") return value.replace(/\n$/, "");
  return JSON.stringify(value);
}

function statusCell(row) {
  const errors = Array.isArray(row.errors) ? row.errors : [];
  const warnings = Array.isArray(row.warnings) ? row.warnings : [];
  const cell = el("td", { testid: "flavor-status" });
  let kind = "ok";
  let label = row.status || "ok";
  if (errors.length || (row.status && row.status !== "ok")) {
    kind = "error";
    label = "error";
  }
  cell.append(el("span", { class: `badge ${kind}`, testid: "status-badge", dataset: { status: row.status || "" } }, label));
  if (row.status && row.status !== "ok" && row.status !== label) cell.append(" ", el("span", { class: "muted" }, row.status));
  if (errors.length) {
    cell.append(el("ul", { class: "error-list", testid: "flavor-row-errors" },
      errors.map((e) => el("li", {}, e.text || `${e.file}:${e.line}: ${e.message}`))));
  }
  if (row.serving === false) {
    cell.append(el("div", { class: "status", testid: "flavor-serving" }, "not served — requests for it fall back to 'default'"));
  } else if (errors.length) {
    cell.append(el("div", { class: "status", testid: "flavor-serving" }, "still serving its last valid version"));
  }
  if (warnings.length) {
    cell.append(el("ul", { class: "error-list", style: "color: var(--warn)" },
      warnings.map((w) => el("li", {}, w.text || w.message))));
  }
  return cell;
}

function renderList(data) {
  const flavors = Array.isArray(data.flavors) ? data.flavors : [];
  statusByName = new Map(flavors.map((row) => [row.name, row]));
  const before = pathRoots.join("|");
  computeRoots(flavors);
  if (shownDetail && before !== pathRoots.join("|")) renderDetail(shownDetail);
  updateDetailNote();
  const shadowed = Array.isArray(data.shadowed) ? data.shadowed : [];
  const rows = flavors.map((row) => {
    const shadows = shadowed.filter((s) => s.name === row.name);
    const tr = el("tr", {
      class: "clickable",
      testid: "flavor-row",
      dataset: { name: row.name },
      tabindex: "0",
      "aria-selected": String(row.name === selected),
      onclick: () => select(row.name),
      onkeydown: (event) => { if (event.key === "Enter" || event.key === " ") { event.preventDefault(); select(row.name); } },
    },
    el("td", { class: "key", testid: "flavor-name" }, row.name),
    el("td", {}, row.description || el("span", { class: "muted" }, "—"),
      row.tags && row.tags.length ? el("div", { class: "status" }, row.tags.join(" · ")) : null),
    el("td", { class: "source", testid: "flavor-source", title: row.source || null },
      row.source ? pathText(shortPath(row.source)) : "—",
      row.origin ? el("div", {}, row.origin) : null,
      shadows.length ? el("div", { style: "color: var(--warn)" }, `shadows ${shadows.map((s) => s.shadowed).join(", ")}`) : null),
    statusCell(row));
    return tr;
  });
  for (const s of shadowed) {
    rows.push(el("tr", { testid: "flavor-row-shadowed", dataset: { name: s.name } },
      el("td", { class: "key muted" }, s.name),
      el("td", { class: "muted" }, "A second source with this name; it is not used."),
      pathCell({ class: "source" }, s.shadowed),
      el("td", { testid: "flavor-status" },
        el("span", { class: "badge warn", testid: "status-badge", dataset: { status: "shadowed" } }, "shadowed"),
        el("div", { class: "status" }, `by ${s.used}`))));
  }
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: "4", class: "muted" }, "No flavors.")));
  rowsBody.replaceChildren(...rows);
}

function renderStatus(data) {
  const errors = Array.isArray(data.errors) ? data.errors : [];
  const warnings = Array.isArray(data.warnings) ? data.warnings : [];
  const parts = [];
  if (errors.length) {
    parts.push(el("ul", { class: "error-list", testid: "error-list" },
      errors.map((e) => el("li", { testid: "error-item" }, e.text || `${e.file}:${e.line}: ${e.message}`))));
  } else {
    parts.push(el("div", { class: "ok-text", testid: "no-errors" }, "No errors — every flavor file is valid."));
  }
  if (warnings.length) {
    parts.push(el("ul", { class: "error-list", style: "color: var(--warn)", testid: "warning-list" },
      warnings.map((w) => el("li", {}, w.text || w.message))));
  }
  errorsBody.className = "";
  errorsBody.replaceChildren(...parts);
  const loaded = data.loaded_at ? new Date(data.loaded_at * 1000).toLocaleTimeString() : "?";
  reloadInfo.textContent = `generation ${data.generation} · loaded ${loaded}` +
    (data.last_reload_seconds !== undefined ? ` in ${Math.round(data.last_reload_seconds * 1000)} ms` : "") +
    (data.watch ? ` · watch: ${data.watch}` : "");
}

function renderDetail(data) {
  detailTitle.textContent = `Resolved values: ${data.flavor_requested || selected}`;
  detailMeta.textContent = `generation ${data.generation}`;
  shownDetail = data;
  updateDetailNote();
  const configs = data.configs || {};
  const sections = Object.entries(configs).map(([type, config]) => {
    const values = config.values || {};
    const provenance = config.provenance || {};
    const rows = Object.keys(values).map((key) => {
      const prov = provenance[key] || {};
      return el("tr", { testid: "value-row", dataset: { type, key } },
        el("td", { class: "key" }, key),
        el("td", { class: "value", testid: "value" }, valueText(values[key])),
        el("td", {}, el("span", { class: layerClass(prov.layer), testid: "layer" }, prov.layer || "?")),
        pathCell({ class: "where", testid: "where" }, where(prov)));
    });
    return el("div", { class: "config-type", testid: "config-type", dataset: { type } },
      el("h3", {}, type),
      el("table", { class: "values" },
        el("colgroup", {}, el("col", { style: "width: 22%" }), el("col", { style: "width: 46%" }),
          el("col", { style: "width: 12%" }), el("col", { style: "width: 20%" })),
        el("thead", {}, el("tr", {}, el("th", {}, "Key"), el("th", {}, "Value"), el("th", {}, "Layer"),
          el("th", {}, "File:line"))),
        el("tbody", {}, rows.length ? rows : [el("tr", {}, el("td", { colspan: "4", class: "muted" }, "no values"))])));
  });
  detailBody.replaceChildren(...sections);
  detailBody.dataset.flavor = data.flavor_requested || selected;
  detailBody.dataset.generation = String(data.generation);
}

// The note above the values: fallback, or errors while the last valid version keeps serving.
function updateDetailNote() {
  const data = shownDetail;
  if (!data) return;
  const name = data.flavor_requested || selected;
  const status = statusByName.get(name);
  const errors = status && Array.isArray(status.errors) ? status.errors.length : 0;
  if (data.fallback) {
    detailNote.textContent = `'${name}' cannot be used right now${errors ? " (see its errors above)" : ""}; ` +
      `requests for it get '${data.flavor_used}', shown here.`;
    detailNote.hidden = false;
  } else if (errors) {
    detailNote.textContent = `'${name}' has ${errors} error${errors > 1 ? "s" : ""} (see above); ` +
      "the values below are its last valid version, which requests still get.";
    detailNote.hidden = false;
  } else {
    detailNote.hidden = true;
  }
}

function markSelected() {
  for (const tr of rowsBody.querySelectorAll("tr[data-testid='flavor-row']")) {
    tr.setAttribute("aria-selected", String(tr.dataset.name === selected));
  }
}

// --------------------------------------------------------------------------- data
async function loadDetail(token) {
  const name = selected;
  try {
    const data = await apiFetch(`/api/mv/flavors/${encodeURIComponent(name)}`);
    if (token !== refreshToken || name !== selected) return;
    showError(detailError, null);
    renderDetail(data);
  } catch (err) {
    if (token !== refreshToken || name !== selected) return;
    detailBody.replaceChildren();
    showError(detailError, `Could not load '${name}': ${err.message}`);
  }
}

async function refresh() {
  const token = ++refreshToken;
  const list = apiFetch("/api/mv/flavors").then(
    (data) => {
      if (token !== refreshToken) return;
      showError(listError, null);
      renderList(data);
      setGeneration(data.generation);
    },
    (err) => { if (token === refreshToken) showError(listError, `Could not load the flavor list: ${err.message}`); },
  );
  const status = apiFetch("/api/mv/flavors/status").then(
    (data) => {
      if (token !== refreshToken) return;
      showError(statusError, null);
      renderStatus(data);
    },
    (err) => {
      if (token !== refreshToken) return;
      errorsBody.replaceChildren();
      showError(statusError, `Could not load the reload status: ${err.message}`);
    },
  );
  await Promise.all([list, status, loadDetail(token)]);
}

function select(name) {
  selected = name;
  history.replaceState(null, "", `#${encodeURIComponent(name)}`);
  markSelected();
  loadDetail(refreshToken);
  editor.open(name);
}

// --------------------------------------------------------------------------- live badge
function setGeneration(value) {
  if (value === undefined || value === null) return;
  generation = value;
  badge.dataset.generation = String(value);
  renderBadge();
}

function renderBadge() {
  const state = badge.dataset.state;
  const gen = generation === null ? "" : ` · generation ${generation}`;
  badgeText.textContent = state === "live" ? `live${gen}` : state === "offline" ? `reconnecting…${gen}` : `connecting…${gen}`;
}

let source = null;
function connect() {
  if (source) source.close();
  badge.dataset.state = "connecting";
  renderBadge();
  source = new EventSource(flavorEventsUrl());
  source.addEventListener("open", () => {
    badge.dataset.state = "live";
    renderBadge();
  });
  source.addEventListener("hello", (event) => {
    badge.dataset.state = "live";
    const data = parse(event);
    // After a reconnect we may have missed reloads: catch up.
    if (data && generation !== null && data.generation !== undefined && data.generation !== generation) refresh();
    setGeneration(data && data.generation);
  });
  source.addEventListener("reload", (event) => {
    badge.dataset.state = "live";
    const data = parse(event);
    setGeneration(data && data.generation);
    badge.classList.add("flash");
    setTimeout(() => badge.classList.remove("flash"), 800);
    refresh();
  });
  source.addEventListener("ping", () => {
    badge.dataset.state = "live";
    renderBadge();
  });
  source.addEventListener("error", () => {
    // EventSource reconnects by itself; CLOSED means it gave up (e.g. 401), so retry later.
    badge.dataset.state = "offline";
    renderBadge();
    if (source.readyState === EventSource.CLOSED) setTimeout(connect, 3000);
  });
}

function parse(event) {
  try {
    return JSON.parse(event.data);
  } catch {
    console.warn("mvcore: unreadable event", event.type);
    return null;
  }
}

window.addEventListener("mvcore:api-key", () => {
  connect();
  refresh();
});
window.addEventListener("hashchange", () => {
  const name = decodeURIComponent(location.hash.slice(1));
  if (name && name !== selected) select(name);
});

refresh();
connect();
editor.open(selected);
