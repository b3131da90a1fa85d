// Projects page: create a project, list projects, follow one over SSE, regenerate a scene.

import { apiFetch, mediaUrl } from "./api.js";
import { byTestId, el, formatSeconds, mountHeader, showError, truncate, wireProgress } from "./ui.js";

mountHeader();

const form = byTestId("create-form");
const createButton = byTestId("create-project");
const createStatus = byTestId("create-status");
const createError = byTestId("create-error");
const rows = byTestId("project-rows");
const listError = byTestId("list-error");
const view = byTestId("project-view");
const scenesBox = byTestId("scenes");
const statusBadge = byTestId("project-status");
const liveBadge = byTestId("live-badge");
const liveText = byTestId("live-text");
const progress = wireProgress(byTestId("project-progress"));
const stage = byTestId("project-stage");
const projectError = byTestId("project-error");
const finalBox = byTestId("final");
const finalVideo = byTestId("final-video");

let current = null; // project id shown
let stream = null; // its EventSource
const shownSrc = new Map(); // video element -> URL shown (so a refresh does not restart playback)

const BADGE = { completed: "badge ok", failed: "badge error", pending: "badge", processing: "badge warn", composing: "badge warn" };

// ------------------------------------------------------------------------------------- create
async function loadFlavors() {
  const select = byTestId("flavor");
  try {
    const data = await apiFetch("/api/mv/get_config_flavors");
    select.replaceChildren(...(data.flavors || ["default"]).map((name) => el("option", { value: name }, name)));
  } catch (err) {
    showError(createError, err);
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  showError(createError, null);
  const song = byTestId("song").files[0];
  const body = new FormData();
  body.set("mode", "music-video");
  body.set("prompt", byTestId("prompt").value);
  body.set("characterDescription", byTestId("character").value);
  body.set("configFlavor", byTestId("flavor").value);
  const reference = byTestId("reference").value.trim();
  if (reference) body.set("characterReferenceImageId", reference);
  if (song) body.set("audio", song, song.name);
  createButton.disabled = true;
  createStatus.textContent = "Creating…";
  try {
    const made = await apiFetch("/api/mv/projects", { method: "POST", body });
    createStatus.textContent = made.message;
    await loadList();
    select(made.projectId);
  } catch (err) {
    createStatus.textContent = "";
    showError(createError, err);
  } finally {
    createButton.disabled = false;
  }
});

// --------------------------------------------------------------------------------------- list
async function loadList() {
  try {
    const data = await apiFetch("/api/mv/projects");
    showError(listError, null);
    if (!data.projects.length) {
      rows.replaceChildren(el("tr", {}, el("td", { colspan: "5", class: "muted" }, "No projects yet.")));
      return;
    }
    rows.replaceChildren(...data.projects.map((p) =>
      el("tr", { testid: `project-row-${p.projectId}`, class: p.projectId === current ? "selected" : null,
                 style: "cursor: pointer", onclick: () => select(p.projectId) },
        el("td", {}, truncate(p.conceptPrompt, 80)),
        el("td", {}, el("span", { class: BADGE[p.status] || "badge" }, p.status)),
        el("td", {}, `${p.completedScenes}/${p.sceneCount}`),
        el("td", {}, p.configFlavor || "default"),
        el("td", { class: "muted" }, new Date(p.createdAt).toLocaleString()))));
  } catch (err) {
    showError(listError, err);
  }
}
byTestId("refresh-list").addEventListener("click", loadList);

// ---------------------------------------------------------------------------------- the view
function setVideo(video, url) {
  if (!url) return;
  const src = mediaUrl(url);
  if (shownSrc.get(video) === url) return;
  shownSrc.set(video, url);
  video.src = src;
}

function sceneCard(scene) {
  const seq = scene.sequence;
  let card = byTestId(`scene-${seq}`, scenesBox);
  if (!card) {
    const video = el("video", { controls: true, preload: "metadata", testid: `scene-video-${seq}` });
    card = el("div", { class: "card scene-card", testid: `scene-${seq}` },
      el("div", {},
        el("h3", {}, `Scene ${seq}`, el("span", { class: "badge", testid: `scene-status-${seq}` })),
        el("p", { class: "muted", testid: `scene-prompt-${seq}` }),
        el("p", { class: "status", testid: `scene-info-${seq}` }),
        el("div", { class: "error", testid: `scene-error-${seq}`, hidden: true }),
        el("div", { class: "row" },
          el("button", { type: "button", class: "secondary", testid: `regenerate-${seq}`,
                         onclick: () => regenerate(seq, false) }, "Regenerate video"),
          el("button", { type: "button", class: "secondary", testid: `relipsync-${seq}`,
                         onclick: () => regenerate(seq, true) }, "Redo lipsync"))),
      el("div", { class: "video-box" }, video));
    scenesBox.append(card);
  }
  const badge = byTestId(`scene-status-${seq}`, card);
  badge.className = BADGE[scene.status] || "badge";
  badge.textContent = scene.status;
  byTestId(`scene-prompt-${seq}`, card).textContent = truncate(scene.prompt, 220);
  const lipsynced = scene.lipSyncedVideoClipUrl ? "lipsynced" : scene.needsLipSync ? "lipsync pending" : "no lipsync";
  byTestId(`scene-info-${seq}`, card).textContent =
    `${formatSeconds(scene.duration)} · ${lipsynced} · retries ${scene.retryCount}`;
  showError(byTestId(`scene-error-${seq}`, card), scene.errorMessage || null);
  setVideo(byTestId(`scene-video-${seq}`, card), scene.lipSyncedVideoClipUrl || scene.videoClipUrl);
  const busy = !["completed", "failed"].includes(current && view.dataset.status);
  for (const id of [`regenerate-${seq}`, `relipsync-${seq}`]) byTestId(id, card).disabled = busy;
}

function render(project) {
  view.dataset.status = project.status;
  byTestId("project-title").textContent = truncate(project.conceptPrompt, 90);
  const config = project.metadata?.config || {};
  byTestId("project-meta").textContent =
    `${project.projectId} · flavor ${config.flavor_used || "default"} (generation ${config.generation ?? "?"})`;
  statusBadge.className = BADGE[project.status] || "badge";
  statusBadge.textContent = project.status;
  progress.set(project.progress?.fraction || 0);
  stage.textContent = `${project.completedScenes}/${project.sceneCount} scenes done · stage: ${project.progress?.stage}`;
  showError(projectError, project.errorMessage || null);
  finalBox.hidden = !project.finalOutputUrl;
  setVideo(finalVideo, project.finalOutputUrl);
  for (const scene of project.scenes) sceneCard(scene);
}

function follow(projectId) {
  if (stream) stream.close();
  liveBadge.dataset.state = "connecting";
  liveText.textContent = "connecting…";
  stream = new EventSource(mediaUrl(`/api/mv/projects/${projectId}/events`));
  stream.addEventListener("open", () => {
    liveBadge.dataset.state = "live";
    liveText.textContent = "live";
  });
  stream.addEventListener("project", (event) => {
    const project = JSON.parse(event.data);
    if (project.projectId !== current) return;
    const before = view.dataset.status;
    render(project);
    if (before !== project.status) loadList();
    if (project.status === "completed" || project.status === "failed") {
      // the server ends the stream here; close it so the browser does not reconnect
      stream.close();
      liveBadge.dataset.state = "idle";
      liveText.textContent = "up to date";
    }
  });
  stream.addEventListener("deleted", () => {
    stream.close();
    view.hidden = true;
    loadList();
  });
  stream.addEventListener("error", () => {
    liveBadge.dataset.state = "offline";
    liveText.textContent = "reconnecting…";
  });
}

async function select(projectId) {
  current = projectId;
  history.replaceState(null, "", `#${projectId}`);
  scenesBox.replaceChildren();
  shownSrc.clear();
  view.hidden = false;
  try {
    render(await apiFetch(`/api/mv/projects/${projectId}`));
  } catch (err) {
    showError(projectError, err);
    return;
  }
  follow(projectId);
}

async function regenerate(sequence, lipsync) {
  showError(projectError, null);
  try {
    const answer = await apiFetch(`/api/mv/projects/${current}/scenes/${sequence}/regenerate`,
      { method: "POST", json: { lipsync } });
    view.dataset.status = answer.status;
    statusBadge.className = BADGE[answer.status] || "badge";
    statusBadge.textContent = answer.status;
    follow(current);
  } catch (err) {
    showError(projectError, err);
  }
}

byTestId("delete-project").addEventListener("click", async () => {
  if (!current) return;
  try {
    await apiFetch(`/api/mv/projects/${current}`, { method: "DELETE" });
    if (stream) stream.close();
    view.hidden = true;
    current = null;
    history.replaceState(null, "", location.pathname);
    loadList();
  } catch (err) {
    showError(projectError, err);
  }
});

loadFlavors();
loadList();
if (location.hash.length > 1) select(decodeURIComponent(location.hash.slice(1)));
