// The hand-over from the create page to the quick-gen page.
//
// sessionStorage 'quickJobData' holds:
//   {
//     videoDescription: string,            // the idea
//     characterDescription: string,
//     characterReferenceImageId: string,   // "" when none was picked
//     audioId: string, audioUrl: string, audioTitle: string, audioDuration: number|null,
//     configFlavor: string,                // the flavor selected in the Configuration section
//     numberOfScenes: number|null,         // null: the flavor's number_of_scenes
//     videoType: string                    // "": the flavor's video_type
//   }

export const JOB_DATA_KEY = "quickJobData";

export function loadJobData() {
  let raw = null;
  try {
    raw = sessionStorage.getItem(JOB_DATA_KEY);
  } catch {
    return null;
  }
  if (!raw) return null;
  try {
    const data = JSON.parse(raw);
    return data && typeof data === "object" && !Array.isArray(data) ? data : null;
  } catch {
    console.warn("mvcore: ignoring unreadable sessionStorage quickJobData");
    return null;
  }
}

export function saveJobData(data) {
  sessionStorage.setItem(JOB_DATA_KEY, JSON.stringify(data));
}
