// The collapsible "Configuration" section shared by the create and quick-gen pages:
// a "Config Flavor" select filled from GET /api/mv/get_config_flavors and a short
// preview of the chosen flavor's key values from GET /api/mv/flavors/{name}.
// When the chosen flavor is broken (GET /api/mv/flavors says status error or invalid) a notice
// says so, with its first error and a link to the Flavors page -- the values shown are then its
// last good ones (or default's), which is what requests get.  Entering an API key reloads the
// list in place; so does coming back to the tab (the flavor may have been fixed meanwhile).

import { apiFetch } from "./api.js";
import { el, showError, truncate } from "./ui.js";

export const DEFAULT_FLAVOR = "default";

// What the preview shows: [config type, key, label].
const PREVIEW_KEYS = [
  ["parameters", "number_of_scenes", "Scenes"],
  ["parameters", "video_type", "Video type"],
  ["parameters", "camera_angle", "Camera"],
  ["parameters", "video_characteristics", "Look"],
  ["image_params", "video_duration", "Clip length (s)"],
  ["image_params", "video_aspect_ratio", "Aspect ratio"],
  ["image_params", "video_model", "Video model"],
  ["image_params", "model", "Image model"],
  ["scene_prompts", "scene_model", "Scene model"],
];

/**
 * mount: the element to fill. options:
 *   initialFlavor  flavor to select once the list is known (unknown names fall back to 'default' with a note)
 *   initialSource  words for the note, e.g. "from the create page"
 *   onChange(name) called whenever the selection changes (also once after loading)
 *   onPreview(resolution) called with the GET /api/mv/flavors/{name} body
 */
export function createConfigSection(mount, options = {}) {
  const bodyId = `config-body-${Math.random().toString(36).slice(2, 8)}`;
  const summary = el("span", { class: "summary", testid: "config-summary" }, `Flavor: ${DEFAULT_FLAVOR}`);
  const toggle = el("button", {
    type: "button",
    class: "collapsible-header",
    testid: "config-toggle",
    "aria-expanded": "false",
    "aria-controls": bodyId,
  }, el("span", { class: "chevron", "aria-hidden": "true" }), "Configuration", summary);
  const select = el("select", { id: `${bodyId}-select`, testid: "config-flavor-select", disabled: true },
    el("option", { value: DEFAULT_FLAVOR }, DEFAULT_FLAVOR));
  const loading = el("div", { class: "status", testid: "config-loading" }, "Loading flavors…");
  const note = el("div", { class: "note", testid: "config-note", hidden: true });
  const error = el("div", { class: "error", testid: "config-error", hidden: true });
  const broken = el("div", { class: "error", testid: "config-broken", role: "status", hidden: true });
  const preview = el("dl", { class: "preview", testid: "config-preview" });
  const previewError = el("div", { class: "error", testid: "config-preview-error", hidden: true });
  const details = el("a", { href: "/flavors", testid: "config-details-link" }, "All values and where they come from →");
  const body = el("div", { class: "collapsible-body", id: bodyId, testid: "config-body", hidden: true },
    el("div", { class: "field" },
      el("label", { for: select.id }, "Config Flavor"),
      select,
      loading,
      el("div", { class: "status" }, "Prompts and parameters used for every request of this run.")),
    preview,
    previewError,
    el("div", { class: "status" }, details));
  const section = el("section", { class: "card compact", testid: "config-section" },
    toggle, note, error, broken, body);
  // Notes and errors stay visible while the section is collapsed.
  note.style.margin = error.style.margin = broken.style.margin = "0 20px 14px";
  mount.replaceChildren(section);

  let current = DEFAULT_FLAVOR;
  let previewToken = 0;
  let statusToken = 0;
  let statuses = new Map();

  function renderBroken(name) {
    const row = statuses.get(name);
    const errors = row && Array.isArray(row.errors) ? row.errors : [];
    if (!row || (row.status === "ok" && !errors.length)) {
      broken.hidden = true;
      broken.replaceChildren();
      section.dataset.flavorStatus = row ? row.status : "";
      return;
    }
    section.dataset.flavorStatus = row.status;
    const first = errors.length ? errors[0].text || `${errors[0].file}:${errors[0].line}: ${errors[0].message}` : "";
    const serving = row.status === "error"
      ? "requests still get its last valid version, shown below"
      : `requests for it get '${DEFAULT_FLAVOR}'`;
    broken.replaceChildren(
      el("strong", { testid: "config-broken-status" }, `Flavor '${name}' is broken (${row.status})`),
      ` — ${serving}.`,
      first ? el("div", { class: "key", testid: "config-broken-error" }, first) : null,
      errors.length > 1 ? el("div", { class: "status" }, `and ${errors.length - 1} more`) : null,
      el("a", { href: `/flavors#${encodeURIComponent(name)}`, testid: "config-broken-link" },
        "See and fix it on the Flavors page →"),
    );
    broken.hidden = false;
  }

  async function loadStatus() {
    const token = ++statusToken;
    try {
      const data = await apiFetch("/api/mv/flavors");
      if (token !== statusToken) return;
      statuses = new Map((Array.isArray(data.flavors) ? data.flavors : []).map((row) => [row.name, row]));
    } catch {
      if (token !== statusToken) return;
      statuses = new Map();  // the list error above already says why
    }
    renderBroken(current);
  }

  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    body.hidden = !open;
  });

  function setCurrent(name) {
    current = name;
    select.value = name;
    summary.textContent = `Flavor: ${name}`;
    details.href = `/flavors#${encodeURIComponent(name)}`;
    section.dataset.flavor = name;
    if (options.onChange) options.onChange(name);
    loadPreview(name);
    renderBroken(name);
  }

  async function loadPreview(name) {
    const token = ++previewToken;
    preview.replaceChildren(el("dt", {}, "Loading…"), el("dd", {}, ""));
    showError(previewError, null);
    try {
      const data = await apiFetch(`/api/mv/flavors/${encodeURIComponent(name)}`);
      if (token !== previewToken) return;
      const rows = [];
      if (data.fallback) {
        rows.push(el("dt", {}, "Uses"), el("dd", {}, `${data.flavor_used} (fallback)`));
      }
      for (const [type, key, label] of PREVIEW_KEYS) {
        const config = data.configs && data.configs[type];
        if (!config || !config.values || !(key in config.values)) continue;
        const value = config.values[key];
        const layer = config.provenance && config.provenance[key] ? config.provenance[key].layer : "";
        rows.push(
          el("dt", {}, label),
          el("dd", { dataset: { key, testid: `preview-${key}` } },
            truncate(typeof value === "string" ? value : JSON.stringify(value), 90),
            layer ? el("span", { class: "muted" }, `  · ${layer}`) : null),
        );
      }
      preview.replaceChildren(...rows);
      if (options.onPreview) options.onPreview(data);
    } catch (err) {
      if (token !== previewToken) return;
      preview.replaceChildren();
      showError(previewError, `Could not load the preview of '${name}': ${err.message}`);
    }
  }

  select.addEventListener("change", () => setCurrent(select.value));

  async function loadNames(wantedName, source) {
    let names;
    showError(error, null);
    try {
      const data = await apiFetch("/api/mv/get_config_flavors");
      names = Array.isArray(data && data.flavors) ? data.flavors.filter((n) => typeof n === "string") : [];
      if (!names.length) {
        showError(error, "The server lists no flavors; using 'default'.");
      }
    } catch (err) {
      names = [];
      showError(error, `Could not load the flavor list: ${err.message} — using 'default'.`);
    }
    if (!names.includes(DEFAULT_FLAVOR)) names.unshift(DEFAULT_FLAVOR);
    select.replaceChildren(...names.map((n) => el("option", { value: n }, n)));
    select.disabled = false;
    loading.hidden = true;
    await loadStatus();
    let wanted = wantedName || DEFAULT_FLAVOR;
    note.hidden = true;
    if (!names.includes(wanted)) {
      const row = statuses.get(wanted);
      note.textContent = `Flavor '${wanted}'${source ? ` ${source}` : ""} is not ` +
        `available on this server${row ? " (it is broken, see below)" : ""}; using '${DEFAULT_FLAVOR}'.`;
      note.hidden = false;
      if (row) {  // broken and never loaded, so not in the list: say why, use 'default'
        setCurrent(DEFAULT_FLAVOR);
        renderBroken(wanted);
        return names;
      }
      wanted = DEFAULT_FLAVOR;
    }
    setCurrent(wanted);
    return names;
  }

  const ready = loadNames(options.initialFlavor, options.initialSource);
  window.addEventListener("mvcore:api-key", () => { loadNames(current, null); });
  window.addEventListener("focus", () => { loadStatus(); });

  return {
    ready,
    get value() {
      return current;
    },
    setDisabled(disabled) {
      select.disabled = disabled;
    },
    refreshStatus: loadStatus,
    element: section,
  };
}
