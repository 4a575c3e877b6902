// An uploaded file read by the worker: followed while it is read (js/follow_job.js), then
// its source offered once its text layer exists.

import { followJob, show } from "../js/follow_job.js";

followJob("upload-status", (status) => {
  if (status.source) {
    document.querySelector("#upload-source a.button").href = status.source.url;
    document.querySelector("#upload-source a.upload-edit").href = status.source.edit;
  }
  show("upload-source", Boolean(status.source));
  show("upload-retry", status.state === "stopped");
}, "upload-refresh");
