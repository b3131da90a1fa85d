// Small DOM helpers shared by every page, and the site header (nav + API key field).

import { getApiKey, setApiKey } from "./api.js";

/** el("div", {class: "x", dataset: {testid: "y"}, onclick: fn}, child, "text", ...) */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "testid") node.dataset.testid = value;
    else if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else if (name === "text") node.textContent = value;
    else if (name in node && typeof value !== "string") node[name] = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const byTestId = (id, root = document) => root.querySelector(`[data-testid="${id}"]`);

/** Show (or clear, with null) a readable error in an element next to the control that caused it. */
export function showError(target, err) {
  if (!target) return;
  if (!err) {
    target.hidden = true;
    target.textContent = "";
    return;
  }
  const message = typeof err === "string" ? err : err.message || String(err);
  target.textContent = message;
  target.hidden = false;
  if (typeof err !== "string") console.warn("mvcore:", message); // visible in devtools, not an error
}

/** A progress bar element: {node, set(fraction), reset()}. */
export function progressBar(testid) {
  const fill = el("div");
  const node = el("div", {
    class: "progress",
    testid,
    role: "progressbar",
    "aria-valuemin": "0",
    "aria-valuemax": "100",
    "aria-valuenow": "0",
    hidden: true,
  }, fill);
  return {
    node,
    set(fraction) {
      const pct = Math.round(Math.max(0, Math.min(1, Number(fraction) || 0)) * 100);
      node.hidden = false;
      fill.style.width = `${pct}%`;
      node.setAttribute("aria-valuenow", String(pct));
    },
    hide() {
      node.hidden = true;
    },
  };
}

/** Wire an existing .progress element from the HTML. */
export function wireProgress(node) {
  const fill = node.firstElementChild || node.appendChild(document.createElement("div"));
  return {
    node,
    set(fraction) {
      const pct = Math.round(Math.max(0, Math.min(1, Number(fraction) || 0)) * 100);
      node.hidden = false;
      fill.style.width = `${pct}%`;
      node.setAttribute("aria-valuenow", String(pct));
    },
    hide() {
      node.hidden = true;
    },
  };
}

export function formatSeconds(value) {
  const n = Number(value);
  if (!Number.isFinite(n)) return "—";
  return `${Math.round(n * 100) / 100} s`;
}

/** A path as text nodes with line-break opportunities after each "/" (no mid-name breaks). */
export function pathText(path) {
  const parts = String(path ?? "").split(/(?<=\/)/);
  const out = [];
  parts.forEach((part, i) => {
    if (i) out.push(document.createElement("wbr"));
    out.push(document.createTextNode(part));
  });
  return out;
}

export function truncate(text, max = 160) {
  const s = String(text ?? "");
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

const PAGES = [
  ["/create", "Create"],
  ["/quick-gen", "Quick-gen"],
  ["/flavors", "Flavors"],
  ["/projects", "Projects"],
];

/** Fill <header id="site-header"> with the nav and the API key field. */
export function mountHeader() {
  const header = document.getElementById("site-header");
  if (!header) return;
  header.className = "site-header";
  header.dataset.testid = "site-header";
  const here = location.pathname.replace(/\/$/, "") || "/";
  const nav = el("nav", { "aria-label": "Pages", testid: "nav" },
    PAGES.map(([href, label]) =>
      el("a", { href, testid: `nav-${label.toLowerCase()}`, "aria-current": here === href ? "page" : null }, label)));
  const input = el("input", {
    type: "password",
    id: "api-key",
    testid: "api-key",
    placeholder: "only if the server needs one",
    title: "Sent as X-API-Key (and ?api_key= on media URLs); stored in this browser",
    autocomplete: "off",
    spellcheck: "false",
    value: getApiKey(),
  });
  const state = el("span", { class: "key-state", testid: "api-key-state" });
  const refresh = () => {
    state.textContent = getApiKey() ? "key set" : "no key";
  };
  input.addEventListener("change", () => {
    setApiKey(input.value);
    refresh();
  });
  refresh();
  header.replaceChildren(
    el("a", { class: "brand", href: "/" }, "mv", el("span", {}, "core")),
    nav,
    el("form", { class: "api-key", onsubmit: (event) => { event.preventDefault(); input.dispatchEvent(new Event("change")); } },
      el("label", { for: "api-key" }, "API key"), input, state),
  );
}

/**
 * A <video> with a poster (browsers show black until a video is played).  A hidden probe
 * <video> of the same source decodes the first frame and draws it onto a canvas, which becomes
 * the poster; when that frame is (nearly) black -- the offline clips fade in from black -- a
 * later frame is used instead (see ``capturePoster``).  The visible player is never seeked, so
 * its poster stays until the user presses play.
 */
export function videoWithPoster(attrs) {
  const video = el("video", { preload: "metadata", ...attrs });
  capturePoster(video, attrs.src || "");
  return video;
}

function capturePoster(video, src) {
  if (!src) return;
  const probe = document.createElement("video");
  probe.muted = true;
  probe.preload = "auto";
  const finish = () => {
    probe.removeAttribute("src");
    probe.load();
  };
  const draw = () => {
    const canvas = document.createElement("canvas");
    const scale = Math.min(1, 480 / (probe.videoWidth || 480));
    canvas.width = Math.max(1, Math.round((probe.videoWidth || 16) * scale));
    canvas.height = Math.max(1, Math.round((probe.videoHeight || 9) * scale));
    const context = canvas.getContext("2d");
    context.drawImage(probe, 0, 0, canvas.width, canvas.height);
    const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
    let sum = 0;
    for (let i = 0; i < pixels.length; i += 16) sum += pixels[i] + pixels[i + 1] + pixels[i + 2];
    return { url: canvas.toDataURL("image/jpeg", 0.8), brightness: sum / (3 * (pixels.length / 16)) };
  };
  // Where to look, in order: the first frame, then min(1 s, a quarter), then the middle.  A frame
  // drawn right after "seeked" can still be black when the decoder is slow (a busy machine), so
  // each position is drawn twice, 150 ms apart, before moving on; the brightest frame seen wins.
  const positions = () => [0.001, Math.min(1, probe.duration / 4), probe.duration / 2];
  let step = 0;
  let redrawn = false;
  let best = null;
  const use = (frame) => {
    video.poster = frame.url;
    video.dataset.poster = frame.step ? "early-frame" : "first-frame";
    finish();
  };
  const take = () => {
    try {
      const frame = { ...draw(), step };
      if (!best || frame.brightness > best.brightness) best = frame;
      if (frame.brightness >= 12 || !(probe.duration > 0.2)) return use(frame);
      if (!redrawn) {
        redrawn = true;
        setTimeout(take, 150);
        return;
      }
      redrawn = false;
      step += 1;
      if (step < positions().length) {
        probe.currentTime = positions()[step];
        return;
      }
      use(best);
    } catch (err) {
      console.warn("mvcore: no poster for this video:", err.message); // e.g. a cross-origin cloud URL
      finish();
    }
  };
  probe.addEventListener("seeked", take);
  probe.addEventListener("loadeddata", () => { probe.currentTime = 0.001; }, { once: true });
  probe.addEventListener("error", finish, { once: true });
  probe.src = src;
}
