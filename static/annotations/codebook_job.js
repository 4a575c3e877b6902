// A codebook change made by the worker: followed while it runs (js/follow_job.js); once
// done its text is the message the change gives when made at once.

import { followJob, show } from "../js/follow_job.js";

followJob("codebook-job-status", (status) => {
  show("codebook-job-retry", status.state === "stopped");
  show("codebook-job-queued-hint", status.state === "queued");
}, "codebook-job-refresh");
