// The collapsible "Configuration" section shared by the create and quick-gen pages:
// a "Config Flavor" select filled from GET /api/mv/get_config_flavors and a short
// preview of the chosen flavor's key values from GET /api/mv/flavors/{name}.

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
  const section = el("section", { class: "card compact", testid: "config-section" }, toggle, note, error, body);
  // Notes and errors stay visible while the section is collapsed.
  note.style.margin = error.style.margin = "0 20px 14px";
  mount.replaceChildren(section);

  let current = DEFAULT_FLAVOR;
  let previewToken = 0;

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

  const ready = (async () => {
    let names;
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
    let wanted = options.initialFlavor || DEFAULT_FLAVOR;
    if (!names.includes(wanted)) {
      note.textContent = `Flavor '${wanted}'${options.initialSource ? ` ${options.initialSource}` : ""} is not ` +
        `available on this server; using '${DEFAULT_FLAVOR}'.`;
      note.hidden = false;
      wanted = DEFAULT_FLAVOR;
    }
    setCurrent(wanted);
    return names;
  })();

  return {
    ready,
    get value() {
      return current;
    },
    setDisabled(disabled) {
      select.disabled = disabled;
    },
    element: section,
  };
}
