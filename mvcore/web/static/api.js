// Talking to the mvcore API: the API key, readable errors, async jobs.
//
// Every call goes through apiFetch(), which sends the X-API-Key header when a key is
// stored and turns the server's error body {"detail": {"error", "message", "details"}}
// into an ApiError whose .message is a sentence a user can act on.

const KEY_STORAGE = "mvcoreApiKey";
const FINAL = new Set(["succeeded", "failed", "cancelled"]);

export function getApiKey() {
  try {
    return (localStorage.getItem(KEY_STORAGE) || "").trim();
  } catch {
    return "";
  }
}

export function setApiKey(value) {
  const key = (value || "").trim();
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
  } catch {
    /* storage disabled: the key lives for this page only */
  }
  window.dispatchEvent(new CustomEvent("mvcore:api-key", { detail: { set: Boolean(key) } }));
}

/** A URL usable where no header can be sent (<video src>, <img src>, EventSource, downloads). */
export function mediaUrl(path) {
  const key = getApiKey();
  if (!key) return path;
  return `${path}${path.includes("?") ? "&" : "?"}api_key=${encodeURIComponent(key)}`;
}

export class ApiError extends Error {
  constructor(message, { status = 0, code = "", details = {} } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

/** Turn {"detail": {...}} (or anything else a server may answer) into an ApiError. */
export function errorFromBody(body, status, fallback) {
  const detail = body && typeof body === "object" ? body.detail : null;
  if (detail && typeof detail === "object" && !Array.isArray(detail)) {
    const details = detail.details && typeof detail.details === "object" ? detail.details : {};
    const parts = [detail.message || detail.error || fallback];
    if (Array.isArray(details.errors) && details.errors.length) {
      const fields = details.errors
        .map((e) => (typeof e === "string" ? e : [e.field, e.message].filter(Boolean).join(": ")))
        .filter(Boolean);
      if (fields.length) parts.push(fields.join("; "));
    }
    if (details.hint) parts.push(String(details.hint));
    if (Array.isArray(details.valid) && details.valid.length) parts.push(`Valid: ${details.valid.join(", ")}`);
    if (status === 401 && !getApiKey()) parts.push("Enter the API key in the field at the top of the page.");
    return new ApiError(parts.join(" — "), { status, code: detail.error || "", details });
  }
  if (typeof detail === "string" && detail) return new ApiError(detail, { status });
  return new ApiError(fallback, { status });
}

/**
 * fetch() with the API key and readable errors.
 * options: {method, json, body, headers, signal, raw}
 * Returns the parsed JSON body (or the Response when raw=true).
 */
export async function apiFetch(path, options = {}) {
  const headers = new Headers(options.headers || {});
  const key = getApiKey();
  if (key) headers.set("X-API-Key", key);
  let body = options.body;
  if (options.json !== undefined) {
    headers.set("Content-Type", "application/json");
    body = JSON.stringify(options.json);
  }
  const method = options.method || (body ? "POST" : "GET");
  let response;
  try {
    response = await fetch(path, { method, headers, body, signal: options.signal });
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(`Cannot reach the server (${method} ${path.split("?")[0]}): ${err.message || err}`);
  }
  if (options.raw && response.ok) return response;
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    throw errorFromBody(data, response.status, `${method} ${path.split("?")[0]} failed with HTTP ${response.status}`);
  }
  if (data === null && text) {
    throw new ApiError(`Unexpected non-JSON answer from ${path.split("?")[0]}`, { status: response.status });
  }
  return data;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Poll GET /api/mv/jobs/{id} until the job is final. onProgress(fraction 0..1, message, job).
 * Resolves with job.result; rejects with an ApiError carrying the job's own error.
 */
export async function pollJob(jobId, { onProgress, intervalMs = 300, statusUrl } = {}) {
  const url = statusUrl || `/api/mv/jobs/${encodeURIComponent(jobId)}`;
  let misses = 0;
  for (;;) {
    let job;
    try {
      job = await apiFetch(url);
      misses = 0;
    } catch (err) {
      // A flaky poll is retried a few times; a 4xx (unknown job, auth) is final at once.
      if ((err.status && err.status < 500) || ++misses > 5) throw err;
      await sleep(intervalMs * misses);
      continue;
    }
    if (onProgress) onProgress(Number(job.progress) || 0, job.message || job.status, job);
    if (FINAL.has(job.status)) {
      if (job.status === "succeeded") return job.result;
      if (job.status === "cancelled") throw new ApiError("The job was cancelled", { code: "CANCELLED" });
      throw errorFromBody(job.error, 0, `The ${job.kind || "job"} job failed`);
    }
    await sleep(intervalMs);
  }
}

/**
 * POST a generator endpoint with ?async=true and wait for its job.
 * Works with servers that answer synchronously (200 + result) too.
 */
export async function runJob(path, payload, { onProgress } = {}) {
  const sep = path.includes("?") ? "&" : "?";
  if (onProgress) onProgress(0, "submitting");
  const answer = await apiFetch(`${path}${sep}async=true`, { method: "POST", json: payload });
  if (answer && answer.job_id && answer.status && !answer.video_id && !answer.scenes && !answer.images) {
    return pollJob(answer.job_id, { onProgress, statusUrl: answer.status_url });
  }
  if (onProgress) onProgress(1, "done");
  return answer;
}

/** Upload a file as multipart field `data` (POST /api/audio/upload). */
export async function uploadAudio(file) {
  const form = new FormData();
  form.append("data", file, file.name);
  return apiFetch("/api/audio/upload", { method: "POST", body: form });
}

export function flavorEventsUrl() {
  return mediaUrl("/api/mv/flavors/events");
}
