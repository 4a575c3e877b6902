// An import's status page: followed while it runs (js/follow_job.js), then its collection
// and its report of what it could not keep as it was.

import { followJob, show } from "../js/follow_job.js";

followJob("import-status", (status) => {
  if (status.collection) {
    const link = document.querySelector("#import-collection a");
    link.href = status.collection.url;
    link.textContent = `Open the collection “${status.collection.title}”`;
  }
  show("import-collection", Boolean(status.collection));
  renderReport(status.report || []);
  show("import-retry", status.may_retry);
  show("import-queued-hint", status.state === "queued");
}, "import-refresh");

// The report of what the import could not keep as it was, built from text nodes only.
function renderReport(report) {
  const section = document.getElementById("import-report");
  if (!section) return;
  const parts = section.querySelector(".import-report-parts");
  if (parts.childElementCount === 0 && report.length) {
    for (const part of report) {
      const heading = document.createElement("h3");
      heading.textContent = part.what;
      const list = document.createElement("ul");
      for (const item of part.items) {
        const entry = document.createElement("li");
        entry.textContent = item;
        list.append(entry);
      }
      if (part.more) {
        const more = document.createElement("li");
        more.textContent = `… and ${part.more} more`;
        list.append(more);
      }
      parts.append(heading, list);
    }
  }
  section.hidden = report.length === 0;
}
