// Quick-gen page: scenes → a clip per scene → per-clip lipsync → (auto) stitch → final video.

import { mediaUrl, runJob } from "./api.js";
import { createConfigSection } from "./config-section.js";
import { loadJobData } from "./job-data.js";
import { byTestId, el, formatSeconds, mountHeader, showError, videoWithPoster, wireProgress } from "./ui.js";

mountHeader();

const DEFAULT_CLIP_SECONDS = 8;
const STATE_KEY = "quickGenState";

const job = loadJobData();
const jobKey = job ? JSON.stringify(job) : "";

// --------------------------------------------------------------------------- state
// scenes[i] = {description, negative_description, video_ids: [..latest last], videos: {id: {duration, lipsync}},
//              lipsync: bool, start: number|null, end: number|null, timesEdited: bool}
const state = {
  scenes: [],
  final: null, // {video_id, total_duration, num_clips, video_ids, audio_overlay_applied}
  useSong: false,
  previous: null, // {scenes, final}: the set "Regenerate scenes" replaced, restorable
};
const busy = { scenes: false, stitch: false, clips: new Set() };

function restore() {
  try {
    const raw = sessionStorage.getItem(STATE_KEY);
    if (!raw) return;
    const saved = JSON.parse(raw);
    if (!saved || saved.jobKey !== jobKey || !Array.isArray(saved.scenes)) return;
    state.scenes = saved.scenes;
    state.final = saved.final || null;
    state.useSong = Boolean(saved.useSong);
    state.previous = saved.previous && Array.isArray(saved.previous.scenes) ? saved.previous : null;
  } catch {
    console.warn("mvcore: ignoring unreadable saved quick-gen state");
  }
}

function persist() {
  try {
    sessionStorage.setItem(STATE_KEY, JSON.stringify({ jobKey, ...state }));
  } catch {
    /* storage full or disabled: the page still works, it just forgets on reload */
  }
}

const songDuration = () => {
  const n = Number(job && job.audioDuration);
  return Number.isFinite(n) && n > 0 ? n : null;
};
const hasAudio = () => Boolean(job && job.audioId);
const latestId = (scene) => (scene.video_ids.length ? scene.video_ids[scene.video_ids.length - 1] : null);

function clipDuration(scene) {
  const id = latestId(scene);
  const known = id && scene.videos[id] && Number(scene.videos[id].duration);
  if (known) return known;
  // No clip yet: assume the length of the most recent clip of any scene, else 8 s.
  for (let i = state.scenes.length - 1; i >= 0; i--) {
    const other = state.scenes[i];
    const oid = latestId(other);
    const d = oid && other.videos[oid] && Number(other.videos[oid].duration);
    if (d) return d;
  }
  return DEFAULT_CLIP_SECONDS;
}

/** Default song range of a scene: where its clip sits in the stitched video, clamped to the song. */
function defaultTimes(index) {
  let start = 0;
  for (let i = 0; i < index; i++) start += clipDuration(state.scenes[i]);
  let end = start + clipDuration(state.scenes[index]);
  const song = songDuration();
  if (song !== null) {
    end = Math.min(end, song);
    start = Math.min(start, song);
  }
  const round = (n) => Math.round(n * 1000) / 1000;
  return { start: round(start), end: round(end) };
}

// --------------------------------------------------------------------------- config + input data
const config = createConfigSection(byTestId("config-mount"), {
  initialFlavor: (job && job.configFlavor) || "default",
  initialSource: "from the create page",
  onChange(name) {
    const node = byTestId("input-config-flavor");
    node.textContent = name;
    node.classList.remove("muted");
  },
});

function renderInputData() {
  const text = (id, value, empty = "—") => {
    const node = byTestId(id);
    node.textContent = value || empty;
    node.classList.toggle("muted", !value);
  };
  byTestId("input-data-missing").hidden = Boolean(job);
  text("input-video-description", job && job.videoDescription);
  text("input-character", job && job.characterDescription);
  const ref = byTestId("input-reference");
  if (job && job.characterReferenceImageId) {
    const img = el("img", {
      src: mediaUrl(`/api/mv/get_character_reference/${encodeURIComponent(job.characterReferenceImageId)}`),
      alt: "Character reference",
      testid: "input-reference-image",
      onerror: () => {
        ref.replaceChildren(el("span", { class: "error" }, "The reference image could not be loaded."));
      },
    });
    ref.replaceChildren(img);
  } else {
    text("input-reference", "", "none picked");
  }
  const song = songDuration();
  text("input-audio", job && job.audioId ? `${job.audioTitle || "Untitled song"}${song ? ` (${formatSeconds(song)})` : ""}` : "",
    "none — lipsync needs a song");
  text("input-number-of-scenes", job && job.numberOfScenes ? String(job.numberOfScenes) : "", "flavor default");
  text("input-video-type", job && job.videoType, "flavor default");
  if (!byTestId("input-config-flavor").textContent) text("input-config-flavor", "", "loading…");
}

const inputToggle = byTestId("input-data-toggle");
inputToggle.addEventListener("click", () => {
  const open = inputToggle.getAttribute("aria-expanded") !== "true";
  inputToggle.setAttribute("aria-expanded", String(open));
  document.getElementById("input-data-body").hidden = !open;
});

// --------------------------------------------------------------------------- scenes
const scenesButton = byTestId("generate-scenes");
const confirmBox = byTestId("regenerate-confirm");
const restoreBox = byTestId("restore-scenes-box");
const allClipsButton = byTestId("generate-all-clips");
const scenesStatus = byTestId("scenes-status");
const scenesError = byTestId("scenes-error");
const scenesNote = byTestId("scenes-note");
const scenesProgress = wireProgress(byTestId("scenes-progress"));
const scenesBox = byTestId("scenes");
const cards = []; // per scene: the DOM parts updateScene() touches

function updateAllClipsButton() {
  const missing = state.scenes.filter((s, i) => !latestId(s) && !busy.clips.has(i)).length;
  allClipsButton.hidden = !state.scenes.length;
  allClipsButton.disabled = !missing || busy.scenes;
  allClipsButton.textContent = missing ? `Generate all clips (${missing})` : "Generate all clips";
  allClipsButton.title = missing ? "Generate a clip for every scene that has none, two at a time"
    : "Every scene has a clip; use a scene's Regenerate button to redo one";
}

// Two clip jobs at a time: enough to keep a worker busy, not so many the queue fills up.
allClipsButton.addEventListener("click", async () => {
  const todo = state.scenes.map((s, i) => i).filter((i) => !latestId(state.scenes[i]) && !busy.clips.has(i));
  const next = async () => {
    while (todo.length) {
      const index = todo.shift();
      if (state.scenes[index] && !latestId(state.scenes[index])) await generateClip(index);
    }
  };
  await Promise.all([next(), next()]);
});

function updateScenesButton() {
  updateAllClipsButton();
  renderRestore();
  scenesButton.textContent = state.scenes.length ? "Regenerate scenes" : "Generate scenes";
  const clipsRunning = busy.clips.size > 0;
  scenesButton.disabled = !job || busy.scenes || clipsRunning;
  scenesButton.title = !job
    ? "Start on the Create page: it hands over the description, character and song"
    : clipsRunning ? "Wait for the running clip jobs to finish" : "";
}


/** What regenerating would throw away, in words; "" when there is nothing to lose. */
function workAtStake() {
  const clips = state.scenes.reduce((n, s) => n + s.video_ids.length, 0);
  const parts = [];
  if (state.scenes.length) parts.push(`${state.scenes.length} scene${state.scenes.length > 1 ? "s" : ""}`);
  if (clips) parts.push(`${clips} clip${clips > 1 ? "s" : ""}`);
  if (state.final) parts.push("the final video");
  return clips || state.final ? parts.join(", ") : "";
}

scenesButton.addEventListener("click", () => {
  if (!job) return;
  const stake = workAtStake();
  if (!stake) {
    writeScenes();
    return;
  }
  byTestId("regenerate-confirm-text").textContent =
    `Regenerating replaces ${stake}. The current set stays restorable until you regenerate again. `;
  confirmBox.hidden = false;
  byTestId("regenerate-confirm-yes").focus();
});
byTestId("regenerate-confirm-yes").addEventListener("click", () => {
  confirmBox.hidden = true;
  writeScenes();
});
byTestId("regenerate-confirm-no").addEventListener("click", () => { confirmBox.hidden = true; });
byTestId("restore-scenes").addEventListener("click", () => {
  if (!state.previous) return;
  const current = { scenes: state.scenes, final: state.final };
  state.scenes = state.previous.scenes;
  state.final = state.previous.final;
  state.previous = current.scenes.length ? current : null; // restoring can be undone the same way
  persist();
  renderScenes();
  renderFinal();
  updateAllScenes();
});

function renderRestore() {
  const previous = state.previous;
  restoreBox.hidden = !previous || busy.scenes;
  if (!previous) return;
  const clips = previous.scenes.reduce((n, s) => n + s.video_ids.length, 0);
  byTestId("restore-scenes-text").textContent = `Previous set: ${previous.scenes.length} scene(s), ${clips} clip(s)` +
    `${previous.final ? ", a final video" : ""}. `;
}

async function writeScenes() {
  showError(scenesError, null);
  scenesNote.hidden = true;
  busy.scenes = true;
  updateScenesButton();
  scenesStatus.textContent = "Writing scenes…";
  scenesProgress.set(0);
  const payload = {
    idea: job.videoDescription,
    character_description: job.characterDescription,
    config_flavor: config.value,
  };
  if (job.numberOfScenes) payload.number_of_scenes = Number(job.numberOfScenes);
  if (job.videoType) payload.video_type = job.videoType;
  try {
    const result = await runJob("/api/mv/create_scenes", payload, {
      onProgress: (p, message) => { scenesProgress.set(p); scenesStatus.textContent = message || "Writing scenes…"; },
    });
    const scenes = Array.isArray(result && result.scenes) ? result.scenes : [];
    if (!scenes.length) throw new Error("The server returned no scenes.");
    if (workAtStake()) state.previous = { scenes: state.scenes, final: state.final };
    state.scenes = scenes.map((s) => ({
      description: String(s.description || ""),
      negative_description: String(s.negative_description || ""),
      video_ids: [],
      videos: {},
      lipsync: false,
      start: null,
      end: null,
      timesEdited: false,
    }));
    state.final = null;
    const meta = (result.metadata && result.metadata.config) || {};
    scenesStatus.textContent = `${scenes.length} scene${scenes.length > 1 ? "s" : ""} · flavor ` +
      `${meta.flavor_used || config.value}${meta.generation ? ` (generation ${meta.generation})` : ""}`;
    if (meta.fallback) {
      scenesNote.textContent = `Flavor '${meta.flavor_requested}' is not usable right now; the server used ` +
        `'${meta.flavor_used}'. See the Flavors page for its errors.`;
      scenesNote.hidden = false;
    }
    persist();
    renderScenes();
    renderFinal();
  } catch (err) {
    scenesStatus.textContent = "";
    showError(scenesError, err);
  } finally {
    scenesProgress.hide();
    busy.scenes = false;
    updateAllScenes();
  }
}

function renderScenes() {
  cards.length = 0;
  scenesBox.replaceChildren(...state.scenes.map((scene, index) => buildCard(scene, index)));
  state.scenes.forEach((_, index) => updateScene(index));
}

function buildCard(scene, index) {
  const description = el("textarea", { rows: 5, testid: "scene-description" });
  description.value = scene.description;
  description.addEventListener("input", () => { scene.description = description.value; persist(); });
  const negative = el("textarea", { rows: 3, testid: "scene-negative" });
  negative.value = scene.negative_description;
  negative.addEventListener("input", () => { scene.negative_description = negative.value; persist(); });

  const button = el("button", { type: "button", testid: "scene-video-button" }, "Generate video");
  const checkbox = el("input", { type: "checkbox", testid: "scene-lipsync-checkbox" });
  const lipsyncLabel = el("label", { class: "check", testid: "scene-lipsync" }, checkbox, "Lipsync");
  const start = el("input", { type: "number", min: "0", step: "0.1", testid: "scene-start", "aria-label": "Song start (s)" });
  const end = el("input", { type: "number", min: "0", step: "0.1", testid: "scene-end", "aria-label": "Song end (s)" });
  const times = el("span", { class: "times", testid: "scene-times" }, "song", start, "→", end, "s");
  const progress = wireProgress(el("div", { class: "progress", testid: "scene-progress", hidden: true }, el("div")));
  const status = el("div", { class: "status", testid: "scene-status" });
  const error = el("div", { class: "error", testid: "scene-error", hidden: true });
  const videoBox = el("div", { class: "video-box", testid: "scene-video-box" });
  const history = el("div", { class: "history", testid: "scene-history" });
  const badge = el("span", { class: "badge", testid: "scene-badge", hidden: true });

  checkbox.addEventListener("change", () => {
    scene.lipsync = checkbox.checked;
    persist();
    updateScene(index);
  });
  const onTimes = () => {
    scene.timesEdited = true;
    scene.start = start.value === "" ? null : Number(start.value);
    scene.end = end.value === "" ? null : Number(end.value);
    persist();
  };
  start.addEventListener("change", onTimes);
  end.addEventListener("change", onTimes);
  button.addEventListener("click", () => {
    if (scene.lipsync && latestId(scene)) lipsyncScene(index);
    else generateClip(index);
  });

  const card = el("section", { class: "card scene-card", testid: "scene-card", dataset: { index: String(index) } },
    el("div", {},
      el("h3", {}, `Scene ${index + 1}`, badge),
      el("div", { class: "field" }, el("label", {}, "Description"), description),
      el("div", { class: "field" }, el("label", {}, "Negative description"), negative)),
    el("div", {},
      videoBox,
      el("div", { class: "video-controls" }, button, lipsyncLabel, times),
      progress.node,
      status,
      error,
      history));
  cards[index] = { card, button, checkbox, lipsyncLabel, start, end, times, progress, status, error, videoBox,
    history, badge, description, negative, shownId: undefined };
  return card;
}

function updateScene(index) {
  const scene = state.scenes[index];
  const c = cards[index];
  if (!scene || !c) return;
  const running = busy.clips.has(index);
  const id = latestId(scene);

  // The player shows the latest clip of the scene.
  if (c.shownId !== id) {
    c.shownId = id;
    if (id) {
      const video = videoWithPoster({
        controls: true,
        preload: "metadata",
        playsInline: true,
        testid: "scene-video",
        dataset: { videoId: id },
        src: mediaUrl(`/api/mv/get_video/${encodeURIComponent(id)}`),
      });
      video.addEventListener("error", () => showError(c.error, "This clip could not be loaded by the browser."));
      c.videoBox.replaceChildren(video);
    } else {
      c.videoBox.replaceChildren(el("div", { class: "video-placeholder" }, "No clip yet"));
    }
  }
  const info = id ? scene.videos[id] || {} : {};
  c.badge.hidden = !id;
  c.badge.textContent = info.lipsync ? "lipsynced" : `clip v${scene.video_ids.length}`;
  c.badge.className = `badge${info.lipsync ? " ok" : ""}`;
  c.history.textContent = scene.video_ids.length > 1
    ? `versions: ${scene.video_ids.map((v, i) => `v${i + 1}${scene.videos[v] && scene.videos[v].lipsync ? " (lipsync)" : ""}`).join(" → ")}`
    : "";

  // Lipsync checkbox: needs a song and a clip to put it on.
  let why = "";
  if (!hasAudio()) why = "No song: add audio on the Create page to lipsync";
  else if (!id) why = "Generate the clip first, then regenerate it with lipsync";
  const times = scene.timesEdited ? { start: scene.start, end: scene.end } : defaultTimes(index);
  const song = songDuration();
  if (!why && song !== null && !scene.timesEdited && times.start >= song) {
    why = `The song (${formatSeconds(song)}) ends before this clip starts (${formatSeconds(times.start)})`;
  }
  if (why && scene.lipsync) scene.lipsync = false;
  c.checkbox.checked = scene.lipsync;
  c.checkbox.disabled = Boolean(why) || running;
  c.lipsyncLabel.title = why || "Put the song's range onto this clip";
  c.lipsyncLabel.classList.toggle("disabled", Boolean(why));
  c.times.hidden = !hasAudio();
  if (!scene.timesEdited) {
    c.start.value = times.start ?? "";
    c.end.value = times.end ?? "";
  }
  c.start.disabled = c.end.disabled = running || !scene.lipsync;

  c.button.disabled = running || busy.scenes;
  if (running) c.button.textContent = c.button.dataset.running || "Working…";
  else if (scene.lipsync && id) c.button.textContent = "Regenerate with lipsync";
  else c.button.textContent = id ? "Regenerate" : "Generate video";
  c.description.disabled = c.negative.disabled = running;
}

function updateAllScenes() {
  state.scenes.forEach((_, index) => updateScene(index));
  updateScenesButton();
  updateStitchButton();
}

async function clipJob(index, label, work) {
  const c = cards[index];
  busy.clips.add(index);
  c.button.dataset.running = label;
  showError(c.error, null);
  c.status.textContent = `${label}`;
  c.progress.set(0);
  updateAllScenes();
  try {
    return await work((p, message) => {
      c.progress.set(p);
      c.status.textContent = `${label} ${Math.round(p * 100)}%${message ? ` · ${message}` : ""}`;
    });
  } catch (err) {
    c.status.textContent = "";
    showError(c.error, err);
    return null;
  } finally {
    c.progress.hide();
    busy.clips.delete(index);
    updateAllScenes();
  }
}

async function generateClip(index) {
  const scene = state.scenes[index];
  const c = cards[index];
  if (!scene.description.trim()) {
    showError(c.error, "The scene description is empty.");
    return;
  }
  const result = await clipJob(index, "Generating…", (onProgress) =>
    runJob("/api/mv/generate_video", {
      prompt: scene.description.trim(),
      negative_prompt: scene.negative_description.trim() || null,
      character_reference_id: (job && job.characterReferenceImageId) || null,
      config_flavor: config.value,
    }, { onProgress }));
  if (!result) return;
  if (!result.video_id) {
    showError(c.error, "The server answered without a video_id.");
    return;
  }
  const used = (result.metadata && result.metadata.parameters_used) || {};
  scene.videos[result.video_id] = { duration: Number(used.duration) || DEFAULT_CLIP_SECONDS, lipsync: false };
  scene.video_ids.push(result.video_id);
  c.status.textContent = `Clip ready (${formatSeconds(scene.videos[result.video_id].duration)})` +
    (result.storage_warning ? ` — warning: ${result.storage_warning}` : "");
  persist();
  updateAllScenes();
}

async function lipsyncScene(index) {
  const scene = state.scenes[index];
  const c = cards[index];
  const sourceId = latestId(scene);
  const times = scene.timesEdited ? { start: scene.start, end: scene.end } : defaultTimes(index);
  const song = songDuration();
  const problems = [];
  if (!hasAudio()) problems.push("There is no song to lipsync to.");
  if (times.start === null || !Number.isFinite(times.start) || times.start < 0) problems.push("Start must be 0 or more.");
  if (times.end === null || !Number.isFinite(times.end) || times.end <= times.start) {
    problems.push("End must be after start.");
  }
  if (song !== null && Number.isFinite(times.start) && times.start >= song) {
    problems.push(`Start is past the end of the song (${formatSeconds(song)}).`);
  }
  if (problems.length) {
    showError(c.error, problems.join(" "));
    return;
  }
  const end = song !== null ? Math.min(times.end, song) : times.end;
  const result = await clipJob(index, "Lipsyncing…", (onProgress) =>
    runJob("/api/mv/lipsync", {
      video_id: sourceId,
      audio_id: job.audioId,
      start_time: times.start,
      end_time: end,
      config_flavor: config.value,
    }, { onProgress }));
  if (!result) return;
  if (!result.video_id) {
    showError(c.error, "The server answered without a video_id.");
    return;
  }
  const source = scene.videos[sourceId] || {};
  scene.videos[result.video_id] = { duration: source.duration || clipDuration(scene), lipsync: true, source: sourceId };
  scene.video_ids.push(result.video_id);
  scene.lipsync = false; // one lipsync per click; tick again to redo it
  c.status.textContent = `Lipsynced to the song from ${formatSeconds(times.start)} to ${formatSeconds(end)}` +
    (result.storage_warning ? ` — warning: ${result.storage_warning}` : "");
  persist();
  updateAllScenes();
  requestStitch("auto");
}

// --------------------------------------------------------------------------- stitch + final video
const restitchButton = byTestId("restitch");
const stitchStatus = byTestId("stitch-status");
const stitchError = byTestId("stitch-error");
const stitchWarning = byTestId("stitch-warning");
const stitchProgress = wireProgress(byTestId("stitch-progress"));
const songBox = byTestId("use-song-soundtrack");
const songLabel = byTestId("use-song-soundtrack-label");
let stitchPending = null;

function currentClipIds() {
  return state.scenes.map(latestId).filter(Boolean);
}

function updateStitchButton() {
  const ids = currentClipIds();
  restitchButton.disabled = busy.stitch || ids.length === 0;
  restitchButton.title = ids.length ? `Stitch the latest clip of ${ids.length} scene(s)` : "Generate at least one clip first";
  songBox.checked = state.useSong && hasAudio();
  songBox.disabled = !hasAudio() || busy.stitch;
  songLabel.classList.toggle("disabled", !hasAudio());
  songLabel.title = hasAudio()
    ? "Lay the whole song over the stitched video and mute the clips' own audio"
    : "No song: add audio on the Create page";
}

songBox.addEventListener("change", () => {
  state.useSong = songBox.checked;
  persist();
});
restitchButton.addEventListener("click", () => requestStitch("manual"));

function requestStitch(reason) {
  if (busy.stitch) {
    stitchPending = reason; // run once more with the newest clips when the current stitch ends
    stitchStatus.textContent = "Another stitch is queued…";
    return;
  }
  stitch(reason);
}

async function stitch(reason) {
  showError(stitchError, null);
  stitchWarning.hidden = true;
  const ids = currentClipIds();
  if (!ids.length) {
    showError(stitchError, "Generate at least one clip first.");
    return;
  }
  busy.stitch = true;
  updateStitchButton();
  stitchProgress.set(0);
  const label = reason === "auto" ? "Re-stitching after lipsync…" : "Stitching…";
  stitchStatus.textContent = label;
  const payload = { video_ids: ids, config_flavor: config.value };
  if (state.useSong && hasAudio()) {
    payload.audio_overlay_id = job.audioId;
    payload.suppress_video_audio = true;
  }
  try {
    const result = await runJob("/api/mv/stitch-videos", payload, {
      onProgress: (p, message) => {
        stitchProgress.set(p);
        stitchStatus.textContent = `${label} ${Math.round(p * 100)}%${message ? ` · ${message}` : ""}`;
      },
    });
    if (!result || !result.video_id) throw new Error("The server answered without a video_id.");
    const meta = result.metadata || {};
    state.final = {
      video_id: result.video_id,
      total_duration: meta.total_duration ?? null,
      num_clips: meta.num_clips ?? ids.length,
      video_ids: ids,
      audio_overlay_applied: Boolean(result.audio_overlay_applied),
    };
    if (result.audio_overlay_warning) {
      stitchWarning.textContent = result.audio_overlay_warning;
      stitchWarning.hidden = false;
    }
    stitchStatus.textContent = `Stitched ${state.final.num_clips} clip(s)`;
    persist();
    renderFinal();
  } catch (err) {
    stitchStatus.textContent = "";
    showError(stitchError, reason === "auto" ? `Automatic re-stitch failed: ${err.message}` : err);
  } finally {
    stitchProgress.hide();
    busy.stitch = false;
    updateStitchButton();
    if (stitchPending) {
      const next = stitchPending;
      stitchPending = null;
      stitch(next);
    }
  }
}

let finalShown;
function renderFinal() {
  const box = byTestId("final-box");
  const download = byTestId("final-download");
  const meta = byTestId("final-meta");
  const final = state.final;
  if (!final) {
    finalShown = null;
    box.replaceChildren(el("div", { class: "video-placeholder", testid: "final-placeholder" },
      "The stitched video appears here (automatically after a lipsync, or with “Re-stitch with current clips”)."));
    download.hidden = true;
    meta.textContent = "";
    return;
  }
  const path = `/api/mv/get_video/${encodeURIComponent(final.video_id)}`;
  if (finalShown !== final.video_id) {
    finalShown = final.video_id;
    const video = videoWithPoster({
      controls: true,
      preload: "auto",
      playsInline: true,
      testid: "final-video",
      dataset: { videoId: final.video_id, expectedDuration: String(final.total_duration ?? "") },
      src: mediaUrl(path),
    });
    video.addEventListener("error", () => showError(stitchError, "The final video could not be loaded by the browser."));
    box.replaceChildren(video);
  }
  download.href = mediaUrl(path);
  download.setAttribute("download", `mv-${final.video_id}.mp4`);
  download.hidden = false;
  const lipsynced = state.scenes.filter((s) => {
    const id = latestId(s);
    return id && s.videos[id] && s.videos[id].lipsync;
  }).length;
  meta.textContent = `${final.num_clips} clip(s)` +
    (final.total_duration !== null ? ` · ${formatSeconds(final.total_duration)}` : "") +
    (lipsynced ? ` · ${lipsynced} lipsynced` : "") +
    (final.audio_overlay_applied ? " · song as soundtrack" : "");
}

// --------------------------------------------------------------------------- start
restore();
renderInputData();
renderScenes();
renderFinal();
updateAllScenes();
