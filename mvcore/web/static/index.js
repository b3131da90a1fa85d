// Landing page: links and a one-line server health summary.

import { apiFetch } from "./api.js";
import { byTestId, mountHeader, showError } from "./ui.js";

mountHeader();

const health = byTestId("health");
try {
  const data = await apiFetch("/health");
  health.textContent =
    `${data.status} · mvcore ${data.version} · provider ${data.provider} · ` +
    `${data.flavors} flavors · generation ${data.generation}`;
  health.classList.add("ok-text");
} catch (err) {
  health.textContent = "Server not reachable";
  showError(byTestId("health-error"), err);
}
