// Create page: idea, character + reference images, song, flavor → sessionStorage 'quickJobData'.

import { apiFetch, mediaUrl, runJob, uploadAudio } from "./api.js";
import { createConfigSection } from "./config-section.js";
import { loadJobData, saveJobData } from "./job-data.js";
import { byTestId, el, formatSeconds, mountHeader, showError, wireProgress } from "./ui.js";

mountHeader();

const saved = loadJobData() || {};
const state = {
  images: saved.characterReferenceImageId ? [{ id: saved.characterReferenceImageId }] : [],
  selectedRef: saved.characterReferenceImageId || "",
  audio: saved.audioId
    ? { audioId: saved.audioId, audioUrl: saved.audioUrl, audioTitle: saved.audioTitle, audioDuration: saved.audioDuration }
    : null,
  busy: new Set(),
};

const idea = byTestId("idea");
const character = byTestId("character-description");
const videoType = byTestId("video-type");
const scenes = byTestId("number-of-scenes");
idea.value = saved.videoDescription || "";
character.value = saved.characterDescription || "";
videoType.value = saved.videoType || "";
scenes.value = saved.numberOfScenes ? String(saved.numberOfScenes) : "";

const config = createConfigSection(byTestId("config-mount"), {
  initialFlavor: saved.configFlavor || "default",
  initialSource: "(remembered from the last run)",
  onPreview(data) {
    // Blank fields mean "the flavor's value": show it as the placeholder.
    const params = (data.configs && data.configs.parameters && data.configs.parameters.values) || {};
    videoType.placeholder = params.video_type ? `flavor default: ${params.video_type}` : "flavor default";
    scenes.placeholder = params.number_of_scenes ? `flavor default: ${params.number_of_scenes}` : "flavor default";
  },
});

const continueButton = byTestId("continue");
function setBusy(name, busy) {
  if (busy) state.busy.add(name);
  else state.busy.delete(name);
  continueButton.disabled = state.busy.size > 0;
  continueButton.title = state.busy.size ? "Wait for the running upload or generation to finish" : "";
}

// ------------------------------------------------------------ character references
const refsButton = byTestId("generate-refs");
const refsError = byTestId("refs-error");
const refsStatus = byTestId("refs-status");
const refsProgress = wireProgress(byTestId("refs-progress"));
const grid = byTestId("ref-grid");
const selectedLine = byTestId("ref-selected");

function renderRefs() {
  grid.replaceChildren(
    ...state.images.map((image, index) => {
      const img = el("img", {
        src: mediaUrl(`/api/mv/get_character_reference/${encodeURIComponent(image.id)}`),
        alt: `Character reference ${index + 1}`,
        onerror: () => showError(refsError, `Character reference ${index + 1} could not be loaded.`),
      });
      return el("button", {
        type: "button",
        testid: "ref-image",
        dataset: { imageId: image.id },
        "aria-pressed": String(image.id === state.selectedRef),
        title: "Use this image as the character reference",
        onclick: () => {
          state.selectedRef = image.id === state.selectedRef ? "" : image.id;
          renderRefs();
        },
      }, img);
    }),
  );
  if (state.selectedRef) {
    const index = state.images.findIndex((i) => i.id === state.selectedRef);
    selectedLine.textContent = index >= 0
      ? `Reference image ${index + 1} picked.`
      : "Reference image from the last run picked.";
  } else {
    selectedLine.textContent = state.images.length
      ? "Click an image to use it as the character reference."
      : "No reference image picked (optional).";
  }
}

refsButton.addEventListener("click", async () => {
  showError(refsError, null);
  const description = character.value.trim();
  if (!description) {
    showError(refsError, "Describe the character first.");
    refsError.dataset.kind = "missing";
    character.focus();
    return;
  }
  refsButton.disabled = true;
  setBusy("refs", true);
  refsStatus.textContent = "Generating…";
  refsProgress.set(0);
  try {
    const result = await runJob(
      "/api/mv/generate_character_reference",
      { character_description: description, num_images: 4, config_flavor: config.value },
      { onProgress: (p, message) => { refsProgress.set(p); refsStatus.textContent = message || "Generating…"; } },
    );
    const images = Array.isArray(result && result.images) ? result.images.slice(0, 4) : [];
    if (!images.length) throw new Error("The server returned no images.");
    state.images = images;
    state.selectedRef = "";
    refsStatus.textContent = `${images.length} image${images.length > 1 ? "s" : ""} generated` +
      (result.storage_warning ? ` (warning: ${result.storage_warning})` : "");
    renderRefs();
  } catch (err) {
    refsStatus.textContent = "";
    showError(refsError, err);
  } finally {
    refsProgress.hide();
    refsButton.disabled = false;
    setBusy("refs", false);
  }
});

// ------------------------------------------------------------ audio
const fileInput = byTestId("audio-file");
const urlInput = byTestId("audio-url");
const downloadButton = byTestId("audio-download");
const audioError = byTestId("audio-error");
const audioStatus = byTestId("audio-status");
const audioInfo = byTestId("audio-info");
const player = byTestId("audio-player");

function renderAudio() {
  if (!state.audio) {
    audioInfo.hidden = true;
    player.removeAttribute("src");
    return;
  }
  audioInfo.hidden = false;
  byTestId("audio-title").textContent = state.audio.audioTitle || "Untitled song";
  byTestId("audio-duration").textContent = formatSeconds(state.audio.audioDuration);
  const src = mediaUrl(`/api/audio/get/${encodeURIComponent(state.audio.audioId)}`);
  if (player.getAttribute("src") !== src) player.setAttribute("src", src);
}

function audioFrom(result) {
  return {
    audioId: result.audio_id,
    audioUrl: result.audio_url || `/api/audio/get/${result.audio_id}`,
    audioTitle: result.title || result.filename || "Untitled song",
    audioDuration: Number(result.duration) || null,
  };
}

async function withAudioBusy(label, work) {
  showError(audioError, null);
  fileInput.disabled = urlInput.disabled = downloadButton.disabled = true;
  setBusy("audio", true);
  audioStatus.textContent = label;
  try {
    const result = await work();
    if (!result || !result.audio_id) throw new Error("The server answered without an audio_id.");
    state.audio = audioFrom(result);
    audioStatus.textContent = result.storage_warning ? `Stored with a warning: ${result.storage_warning}` : "";
    renderAudio();
  } catch (err) {
    audioStatus.textContent = "";
    showError(audioError, err);
  } finally {
    fileInput.disabled = urlInput.disabled = downloadButton.disabled = false;
    setBusy("audio", false);
  }
}

fileInput.addEventListener("change", () => {
  const file = fileInput.files && fileInput.files[0];
  if (!file) return;
  withAudioBusy(`Uploading ${file.name}…`, () => uploadAudio(file)).then(() => {
    fileInput.value = "";
  });
});

downloadButton.addEventListener("click", () => {
  const url = urlInput.value.trim();
  if (!url) {
    showError(audioError, "Paste the URL of a song first.");
    return;
  }
  withAudioBusy("Fetching the song…", () => apiFetch("/api/audio/download", { method: "POST", json: { url } }));
});

byTestId("audio-remove").addEventListener("click", () => {
  state.audio = null;
  renderAudio();
});

// ------------------------------------------------------------ continue
const continueError = byTestId("continue-error");
function missingFields() {
  const missing = [];
  if (!idea.value.trim()) missing.push("a video description");
  if (!character.value.trim()) missing.push("a character description");
  return missing;
}

function showMissing(missing) {
  showError(continueError, `Add ${missing.join(" and ")} first.`);
  continueError.dataset.kind = "missing";
}

// A "fill this in first" message follows the fields: it shrinks as they are filled and goes away
// when nothing is missing any more (it used to stay until the next click).
function followMissing() {
  if (continueError.dataset.kind === "missing" && !continueError.hidden) {
    const missing = missingFields();
    if (missing.length) showMissing(missing);
    else {
      showError(continueError, null);
      delete continueError.dataset.kind;
    }
  }
  if (refsError.dataset.kind === "missing" && character.value.trim()) {
    showError(refsError, null);
    delete refsError.dataset.kind;
  }
}
idea.addEventListener("input", followMissing);
character.addEventListener("input", followMissing);

continueButton.addEventListener("click", async () => {
  showError(continueError, null);
  delete continueError.dataset.kind;
  const missing = missingFields();
  if (missing.length) {
    showMissing(missing);
    return;
  }
  let numberOfScenes = null;
  if (scenes.value.trim()) {
    numberOfScenes = Number.parseInt(scenes.value, 10);
    if (!Number.isInteger(numberOfScenes) || numberOfScenes < 1 || numberOfScenes > 32) {
      showError(continueError, "Number of scenes must be a whole number from 1 to 32 (or blank for the flavor's).");
      return;
    }
  }
  await config.ready;
  const data = {
    videoDescription: idea.value.trim(),
    characterDescription: character.value.trim(),
    characterReferenceImageId: state.selectedRef || "",
    audioId: state.audio ? state.audio.audioId : "",
    audioUrl: state.audio ? state.audio.audioUrl : "",
    audioTitle: state.audio ? state.audio.audioTitle : "",
    audioDuration: state.audio ? state.audio.audioDuration : null,
    configFlavor: config.value,
    numberOfScenes,
    videoType: videoType.value.trim(),
  };
  try {
    saveJobData(data);
  } catch (err) {
    showError(continueError, `Could not hand the data over to quick-gen (sessionStorage): ${err.message}`);
    return;
  }
  window.location.href = "/quick-gen";
});

renderRefs();
renderAudio();
