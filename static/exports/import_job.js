// An import's status page: follow the import while it is queued or running, without a
// reload. The page works without this script (it has a refresh link); this asks the job's
// JSON state now and then and rewrites the status region, which screen readers announce
// politely, only when something changed.

const region = document.getElementById("import-status");
const FOLLOWED = new Set(["queued", "running"]);

function show(id, visible) {
  const element = document.getElementById(id);
  if (element) element.hidden = !visible;
}

function render(status) {
  region.dataset.state = status.state;
  region.className = `import-status job-state-${status.state}`;
  const label = region.querySelector(".job-label");
  const text = region.querySelector(".job-text");
  if (label.textContent !== status.label) label.textContent = status.label;
  if (text.textContent !== status.text) text.textContent = status.text;

  if (status.collection) {
    const link = document.querySelector("#import-collection a");
    link.href = status.collection.url;
    link.textContent = `Open the collection “${status.collection.title}”`;
  }
  show("import-collection", Boolean(status.collection));
  renderReport(status.report || []);
  show("import-retry", status.may_retry);
  show("import-queued-hint", status.state === "queued");
  show("import-refresh", FOLLOWED.has(status.state));
}

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

// Quick at first, when a small import is about to finish, then gently slower.
let polls = 0;
function delay() {
  polls += 1;
  return Math.min(500 + polls * 250, 5000);
}

async function poll() {
  let status;
  try {
    const response = await fetch(region.dataset.url, {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
      cache: "no-store",
    });
    // Logged out meanwhile (a redirect to the login page) or gone: the refresh link stays.
    if (!response.ok || !response.headers.get("Content-Type")?.includes("json")) return;
    status = await response.json();
  } catch {
    setTimeout(poll, 10000); // the network or the server is down for a moment: try later
    return;
  }
  render(status);
  if (FOLLOWED.has(status.state)) setTimeout(poll, delay());
}

if (region && FOLLOWED.has(region.dataset.state)) setTimeout(poll, delay());
