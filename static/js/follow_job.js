// A job's status page (an upload read on the worker, an export, an import): follow the job
// while it is queued or running, without a reload. The page works without this (it has a
// refresh link); its status region, announced politely, is rewritten only when it changed.
// Each page's module adds what its job offers once done (``more``).

const FOLLOWED = new Set(["queued", "running"]);

export function show(id, visible) {
  const element = document.getElementById(id);
  if (element) element.hidden = !visible;
}

export function followJob(regionId, more, refreshId) {
  const region = document.getElementById(regionId);
  if (!region) return;

  function render(status) {
    region.dataset.state = status.state;
    region.className = `import-status job-state-${status.state}`;
    const label = region.querySelector(".job-label");
    const text = region.querySelector(".job-text");
    if (label.textContent !== status.label) label.textContent = status.label;
    if (text.textContent !== status.text) text.textContent = status.text;
    more(status);
    show(refreshId, FOLLOWED.has(status.state));
  }

  // Quick at first, when a small job is about to finish, then gently slower.
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

  if (FOLLOWED.has(region.dataset.state)) setTimeout(poll, delay());
}
