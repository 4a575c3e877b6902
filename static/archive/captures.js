// Lists of captures (the archive page, My captures, a capture's page): follow the ones still
// queued or running, without a reload. The pages work without this script; it asks for the
// unfinished captures' state now and then and rewrites each one's status, which screen
// readers announce politely, only when something changed.

const list = document.querySelector("ul.captures");
const FOLLOWED = new Set(["queued", "running"]);

function followed() {
  return [...list.querySelectorAll("li.capture")].filter((item) => FOLLOWED.has(item.dataset.state));
}

function render(item, status) {
  const changed = item.dataset.state !== status.state;
  item.dataset.state = status.state;
  item.className = `capture job-state-${status.state}`;
  const label = item.querySelector(".job-label");
  const text = item.querySelector(".job-text");
  if (label.textContent !== status.label) label.textContent = status.label;
  if (text.textContent !== status.text) text.textContent = status.text;
  const source = item.querySelector(".capture-source");
  if (status.source) source.href = status.source.url;
  source.hidden = !status.source;
  item.querySelector(".capture-retry").hidden = !status.may_retry;
  // A capture's own page shows its provenance once done: reload it to show it.
  if (changed && status.finished && item.closest("[data-reload-when-finished]")) {
    window.location.reload();
  }
}

// Quick at first, when a capture is about to finish, then gently slower.
let polls = 0;
function delay() {
  polls += 1;
  return Math.min(750 + polls * 250, 5000);
}

async function poll() {
  const items = followed();
  if (!items.length) return;
  const url = new URL(list.dataset.statusUrl, window.location.href);
  for (const item of items) url.searchParams.append("uuid", item.dataset.uuid);
  let statuses;
  try {
    const response = await fetch(url, {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
      cache: "no-store",
    });
    // Logged out meanwhile (a redirect to the login page): the page's own links stay.
    if (!response.ok || !response.headers.get("Content-Type")?.includes("json")) return;
    statuses = (await response.json()).captures;
  } catch {
    setTimeout(poll, 10000); // the network or the server is down for a moment: try later
    return;
  }
  for (const status of statuses) {
    const item = list.querySelector(`li.capture[data-uuid="${status.uuid}"]`);
    if (item) render(item, status);
  }
  if (followed().length) setTimeout(poll, delay());
}

if (list && followed().length) setTimeout(poll, delay());
