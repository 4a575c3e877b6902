// An uploaded file read by the worker: follow it while it is queued or running, without a
// reload, and offer its source once its text layer exists. The page works without this
// script (it has a refresh link); the status region is announced politely when it changes.

const region = document.getElementById("upload-status");
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
  if (status.source) {
    document.querySelector("#upload-source a.button").href = status.source.url;
    document.querySelector("#upload-source a.upload-edit").href = status.source.edit;
  }
  show("upload-source", Boolean(status.source));
  show("upload-retry", status.state === "stopped");
  show("upload-refresh", FOLLOWED.has(status.state));
}

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
