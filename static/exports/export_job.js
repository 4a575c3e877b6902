// An export's status page: follow the export while it is queued or running, without a
// reload, and offer its file once written. The page works without this script (it has a
// refresh link); the status region is announced politely, only when something changed.

const region = document.getElementById("export-status");
const FOLLOWED = new Set(["queued", "running"]);

function show(id, visible) {
  const element = document.getElementById(id);
  if (element) element.hidden = !visible;
}

function megabytes(bytes) {
  if (bytes < 1024 * 1024) return `${Math.max(1, Math.round(bytes / 1024))} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function render(status) {
  region.dataset.state = status.state;
  region.className = `import-status job-state-${status.state}`;
  const label = region.querySelector(".job-label");
  const text = region.querySelector(".job-text");
  if (label.textContent !== status.label) label.textContent = status.label;
  if (text.textContent !== status.text) text.textContent = status.text;
  if (status.download) {
    document.querySelector("#export-download a").href = status.download;
    document.querySelector("#export-download .job-size").textContent = megabytes(status.size);
  }
  show("export-download", Boolean(status.download));
  show("export-queued-hint", status.state === "queued");
  show("export-refresh", FOLLOWED.has(status.state));
}

// Quick at first, when a small export is about to finish, then gently slower.
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
