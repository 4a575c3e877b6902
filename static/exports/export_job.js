// An export's status page: followed while it is prepared (js/follow_job.js), then its file
// offered once written.

import { followJob, show } from "../js/follow_job.js";

function megabytes(bytes) {
  if (bytes < 1024 * 1024) return `${Math.max(1, Math.round(bytes / 1024))} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

followJob("export-status", (status) => {
  if (status.download) {
    document.querySelector("#export-download a").href = status.download;
    document.querySelector("#export-download .job-size").textContent = megabytes(status.size);
  }
  show("export-download", Boolean(status.download));
  show("export-queued-hint", status.state === "queued");
}, "export-refresh");
