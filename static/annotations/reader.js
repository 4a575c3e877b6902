// Reading page: select a passage, annotate it, and move between highlights and the panel.
// Reading works without this script; the server renders every highlight. Offsets sent to the
// API are Unicode code points of the text layer: every text run carries data-o, its offset.

const reader = document.querySelector(".reader");
const MEDIA = "application/ld+json";

function codePoints(str) {
  let n = 0;
  for (const _ of str) n += 1;
  return n;
}

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

async function api(method, url, body, headers = {}) {
  const init = { method, headers: { Accept: MEDIA, "X-CSRFToken": csrfToken(), ...headers }, credentials: "same-origin" };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = MEDIA;
  }
  const response = await fetch(url, init);
  let data = null;
  if (response.status !== 204) {
    try { data = await response.json(); } catch { data = null; }
  }
  return { response, data };
}

// --- Offsets --------------------------------------------------------------------------

function layer() { return document.getElementById("text-layer"); }

function runOf(node) {
  const el = node.nodeType === Node.TEXT_NODE ? node.parentElement : node;
  return el ? el.closest("[data-o]") : null;
}

function textNodes() {
  const walker = document.createTreeWalker(layer(), NodeFilter.SHOW_TEXT, {
    acceptNode: (n) => (runOf(n) ? NodeFilter.FILTER_ACCEPT : NodeFilter.FILTER_REJECT),
  });
  const nodes = [];
  while (walker.nextNode()) nodes.push(walker.currentNode);
  return nodes;
}

function runStart(textNode) { return Number(runOf(textNode).dataset.o); }

// Offset of a DOM boundary point (container, offset) in the text layer, in code points.
function offsetOf(container, offset) {
  if (container.nodeType === Node.TEXT_NODE && runOf(container)) {
    return runStart(container) + codePoints(container.data.slice(0, offset));
  }
  // An element boundary (or stray whitespace): the first text run at or after it.
  const point = document.createRange();
  point.setStart(container, offset);
  const nodes = textNodes();
  for (const node of nodes) {
    if (point.comparePoint(node, 0) >= 0) return runStart(node);
  }
  const last = nodes[nodes.length - 1];
  return last ? runStart(last) + codePoints(last.data) : 0;
}

function selectedRange() {
  const selection = window.getSelection();
  if (!selection || selection.rangeCount === 0 || selection.isCollapsed) return null;
  const range = selection.getRangeAt(0);
  const root = layer();
  if (!root || !root.contains(range.startContainer) || !root.contains(range.endContainer)) return null;
  const start = offsetOf(range.startContainer, range.startOffset);
  const end = offsetOf(range.endContainer, range.endOffset);
  if (end <= start) return null;
  return { start, end, quote: selection.toString(), rect: range.getBoundingClientRect() };
}

// --- The "Annotate" button -------------------------------------------------------------

const canAnnotate = reader && reader.dataset.canAnnotate === "true";
let pending = null; // the selection the button would annotate
const annotateButton = document.createElement("button");
annotateButton.type = "button";
annotateButton.className = "primary annotate-button";
annotateButton.textContent = "Annotate";
annotateButton.setAttribute("aria-keyshortcuts", "a");
annotateButton.hidden = true;
document.body.append(annotateButton);

function updateSelection() {
  if (!canAnnotate || editorOpen()) return;
  pending = selectedRange();
  if (!pending) {
    annotateButton.hidden = true;
    return;
  }
  annotateButton.hidden = false;
  const top = window.scrollY + pending.rect.bottom + 6;
  const left = window.scrollX + Math.max(8, pending.rect.left);
  annotateButton.style.top = `${top}px`;
  annotateButton.style.left = `${left}px`;
}

document.addEventListener("mouseup", () => setTimeout(updateSelection, 0));
document.addEventListener("keyup", (event) => {
  if (event.key.startsWith("Arrow") || event.key === "Shift" || event.key === "End" || event.key === "Home") {
    updateSelection();
  }
});
annotateButton.addEventListener("mousedown", (event) => event.preventDefault()); // keep the selection
annotateButton.addEventListener("click", () => {
  if (pending) openEditor({ mode: "create", ...pending });
});

document.addEventListener("keydown", (event) => {
  const typing = event.target.closest && event.target.closest("input, textarea, select, [contenteditable]");
  if (event.key === "Escape" && editorOpen()) {
    event.preventDefault();
    closeEditor();
    return;
  }
  if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
  if ((event.key === "a" || event.key === "A") && canAnnotate && !editorOpen()) {
    const range = selectedRange();
    if (range) {
      event.preventDefault();
      openEditor({ mode: "create", ...range });
    }
  }
});

// Keyboard selection. Browsers extend a selection with Shift+arrows but cannot start one in
// read-only text unless caret browsing is on; Selection.modify does both, so the text layer
// behaves like a read-only document: Tab into it, then Shift+arrows select.
const EXTEND = {
  ArrowRight: ["forward", "character"], ArrowLeft: ["backward", "character"],
  ArrowDown: ["forward", "line"], ArrowUp: ["backward", "line"],
  End: ["forward", "lineboundary"], Home: ["backward", "lineboundary"],
};
document.addEventListener("keydown", (event) => {
  const root = layer();
  if (!root || !event.shiftKey || !EXTEND[event.key] || !root.contains(event.target)) return;
  const selection = window.getSelection();
  if (selection.rangeCount === 0 || !root.contains(selection.anchorNode)) {
    const first = textNodes().find((node) => node.parentElement.getBoundingClientRect().bottom > 0);
    if (!first) return;
    selection.collapse(first, 0);
  }
  const [direction, unit] = EXTEND[event.key];
  selection.modify("extend", direction, event.ctrlKey && unit === "character" ? "word" : unit);
  event.preventDefault();
  updateSelection();
});

// --- The editor ------------------------------------------------------------------------

let editor = null;
function editorOpen() { return editor !== null; }

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

function openEditor({ mode, start, end, quote, uuid, etag, note = "", tags = [], visibility = "collection" }) {
  closeEditor();
  annotateButton.hidden = true;
  const panel = document.querySelector(".ann-panel");
  const form = el("form", { class: "editor", "aria-label": mode === "create" ? "New annotation" : "Edit annotation" });
  const heading = el("h3", { text: mode === "create" ? "New annotation" : "Edit annotation" });
  const quoteBox = el("blockquote", { text: quote });
  const errorBox = el("div", { class: "error", role: "alert" });

  // Tags: chips, an input, and a listbox of suggestions.
  const chosen = [...tags];
  const chips = el("ul", { class: "tags chips", "aria-label": "Tags added" });
  const tagInput = el("input", {
    type: "text", id: "editor-tags", autocomplete: "off", role: "combobox",
    "aria-autocomplete": "list", "aria-expanded": "false", "aria-controls": "editor-suggestions",
    "aria-describedby": "editor-tags-help",
  });
  const suggestions = el("ul", { class: "suggestions", id: "editor-suggestions", role: "listbox", "aria-label": "Tag suggestions" });
  suggestions.hidden = true;
  let active = -1;

  function renderChips() {
    chips.replaceChildren(...chosen.map((tag, i) => {
      const remove = el("button", { type: "button", class: "link", "aria-label": `Remove tag ${tag}`, text: "×" });
      remove.addEventListener("click", () => { chosen.splice(i, 1); renderChips(); tagInput.focus(); });
      return el("li", { class: "tag" }, `${tag} `, remove);
    }));
  }
  function addTag(value) {
    const tag = value.trim().replace(/,+$/, "").trim();
    if (tag && !chosen.some((t) => t.toLowerCase() === tag.toLowerCase())) chosen.push(tag);
    tagInput.value = "";
    hideSuggestions();
    renderChips();
  }
  function hideSuggestions() {
    suggestions.hidden = true;
    active = -1;
    tagInput.setAttribute("aria-expanded", "false");
    tagInput.removeAttribute("aria-activedescendant");
  }
  function highlight(index) {
    const items = [...suggestions.children];
    items.forEach((item, i) => item.setAttribute("aria-selected", String(i === index)));
    active = index;
    if (items[index]) tagInput.setAttribute("aria-activedescendant", items[index].id);
  }
  let lastQuery = null;
  async function suggest() {
    const query = tagInput.value.trim();
    if (query === lastQuery) return;
    lastQuery = query;
    const { data } = await api("GET", `/api/tags/?q=${encodeURIComponent(query)}`);
    if (tagInput.value.trim() !== query || !data) return;
    const options = data.tags.filter((t) => !chosen.some((c) => c.toLowerCase() === t.toLowerCase()));
    suggestions.replaceChildren(...options.map((tag, i) => {
      const option = el("li", { role: "option", id: `suggestion-${i}`, "aria-selected": "false", text: tag });
      option.addEventListener("mousedown", (event) => { event.preventDefault(); addTag(tag); tagInput.focus(); });
      return option;
    }));
    suggestions.hidden = options.length === 0;
    tagInput.setAttribute("aria-expanded", String(options.length > 0));
    active = -1;
  }
  tagInput.addEventListener("input", () => {
    if (tagInput.value.includes(",")) {
      tagInput.value.split(",").slice(0, -1).forEach(addTag);
      tagInput.value = tagInput.value.split(",").pop();
    }
    suggest();
  });
  tagInput.addEventListener("focus", suggest);
  tagInput.addEventListener("keydown", (event) => {
    const items = [...suggestions.children];
    if (event.key === "ArrowDown" && items.length) {
      event.preventDefault();
      suggestions.hidden = false;
      highlight((active + 1) % items.length);
    } else if (event.key === "ArrowUp" && items.length) {
      event.preventDefault();
      highlight((active - 1 + items.length) % items.length);
    } else if (event.key === "Enter") {
      event.preventDefault();
      if (active >= 0 && items[active]) addTag(items[active].textContent);
      else if (tagInput.value.trim()) addTag(tagInput.value);
    } else if (event.key === "Backspace" && tagInput.value === "" && chosen.length) {
      chosen.pop();
      renderChips();
    } else if (event.key === "Escape" && !suggestions.hidden) {
      event.preventDefault();
      event.stopPropagation();
      hideSuggestions();
    }
  });
  tagInput.addEventListener("blur", () => setTimeout(hideSuggestions, 100));

  // Note, with a preview rendered by the server's own sanitising renderer.
  const noteInput = el("textarea", { id: "editor-note", rows: "5" });
  noteInput.value = note;
  const preview = el("div", { class: "preview note", "aria-live": "polite" });
  preview.hidden = true;
  const previewButton = el("button", { type: "button", "aria-pressed": "false", text: "Preview" });
  previewButton.addEventListener("click", async () => {
    if (!preview.hidden) {
      preview.hidden = true;
      noteInput.hidden = false;
      previewButton.setAttribute("aria-pressed", "false");
      previewButton.textContent = "Preview";
      noteInput.focus();
      return;
    }
    const { response, data } = await api("POST", "/api/preview/", { note: noteInput.value });
    if (!response.ok) { errorBox.textContent = data?.error || "The preview failed."; return; }
    preview.innerHTML = data.html || "<p><em>Nothing to preview.</em></p>"; // sanitised by the server
    preview.hidden = false;
    noteInput.hidden = true;
    previewButton.setAttribute("aria-pressed", "true");
    previewButton.textContent = "Write";
  });

  const visibilitySelect = el("select", { id: "editor-visibility" },
    el("option", { value: "private", text: "Private (only me)" }),
    el("option", { value: "collection", text: "Collection members" }),
    el("option", { value: "public", text: "Public" }));
  visibilitySelect.value = visibility;

  const save = el("button", { type: "submit", class: "primary", text: "Save" });
  const cancel = el("button", { type: "button", text: "Cancel" });
  cancel.addEventListener("click", closeEditor);

  form.append(
    heading, quoteBox, errorBox,
    el("label", { for: "editor-tags", text: "Tags" }),
    el("div", { class: "tag-input" }, chips, tagInput),
    suggestions,
    el("p", { class: "help", id: "editor-tags-help", text: "Enter or comma adds a tag; Backspace removes the last." }),
    el("label", { for: "editor-note", text: "Note (Markdown)" }),
    noteInput, preview,
    el("div", { class: "editor-actions" }, previewButton),
    el("label", { for: "editor-visibility", text: "Visible to" }),
    visibilitySelect,
    el("div", { class: "editor-actions" }, save, cancel, el("span", { class: "help", text: "Esc cancels" })),
  );
  renderChips();

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (tagInput.value.trim()) addTag(tagInput.value);
    errorBox.textContent = "";
    save.disabled = true;
    const body = [];
    if (noteInput.value.trim()) {
      body.push({ type: "TextualBody", value: noteInput.value, format: "text/markdown", purpose: "commenting" });
    }
    for (const tag of chosen) body.push({ type: "TextualBody", value: tag, purpose: "tagging" });
    const doc = {
      "@context": "http://www.w3.org/ns/anno.jsonld",
      type: "Annotation",
      target: { source: new URL(location.pathname, location.origin).href,
                selector: [{ type: "TextPositionSelector", start, end }] },
      body,
      visibility: visibilitySelect.value,
    };
    const result = mode === "create"
      ? await api("POST", reader.dataset.api, doc)
      : await api("PUT", `${reader.dataset.api}${uuid}`, doc, etag ? { "If-Match": etag } : {});
    save.disabled = false;
    if (!result.response.ok) {
      errorBox.textContent = result.response.status === 412
        ? "Someone changed this annotation since you opened it. Copy your text, then reload the page."
        : (result.data?.error || `Saving failed (${result.response.status}).`);
      return;
    }
    const saved = result.data.id.split("/").pop();
    closeEditor({ restoreFocus: false });
    await refresh();
    announce(mode === "create" ? "Annotation saved." : "Annotation updated.");
    activateEntry(saved);
  });

  panel.prepend(form);
  editor = { form, mode };
  form.scrollIntoView({ block: "nearest" });
  tagInput.focus();
}

function closeEditor({ restoreFocus = true } = {}) {
  if (!editor) return;
  editor.form.remove();
  editor = null;
  if (restoreFocus) layer().focus({ preventScroll: true });
}

// --- Refresh from the server (the single renderer of highlights) ------------------------

async function refresh() {
  const response = await fetch(location.pathname + location.search, { credentials: "same-origin" });
  const doc = new DOMParser().parseFromString(await response.text(), "text/html");
  layer().replaceChildren(...doc.getElementById("text-layer").childNodes);
  const panel = document.querySelector(".ann-panel");
  panel.replaceWith(doc.querySelector(".ann-panel"));
  applyFilters();
}

const status = el("p", { class: "visually-hidden", role: "status", "aria-live": "polite" });
document.body.append(status);
function announce(message) { status.textContent = message; }

// --- Highlights and entries ------------------------------------------------------------

function entries() { return [...document.querySelectorAll("#ann-list .ann")]; }
function entryFor(uuid) { return document.getElementById(`a-${uuid}`); }

function clearActive() {
  document.querySelectorAll(".is-active").forEach((node) => node.classList.remove("is-active"));
}

function activateEntry(uuid) {
  const entry = entryFor(uuid);
  if (!entry) return;
  clearActive();
  entry.classList.add("is-active");
  document.querySelectorAll("mark[data-anns]").forEach((mark) => {
    if (mark.dataset.anns.split(" ").includes(uuid)) mark.classList.add("is-active");
  });
  entry.scrollIntoView({ block: "nearest", behavior: "smooth" });
  entry.focus({ preventScroll: true });
}

function showHighlight(uuid) {
  const marks = [...document.querySelectorAll("mark[data-anns]")].filter((m) => m.dataset.anns.split(" ").includes(uuid));
  if (!marks.length) return;
  clearActive();
  marks.forEach((mark) => mark.classList.add("is-active"));
  entryFor(uuid)?.classList.add("is-active");
  marks[0].scrollIntoView({ block: "center", behavior: "smooth" });
}

document.addEventListener("click", async (event) => {
  const mark = event.target.closest("mark[data-anns]");
  if (mark && window.getSelection().isCollapsed) {
    // The innermost (shortest) annotation on this run is the one meant.
    const ids = mark.dataset.anns.split(" ");
    const length = (id) => { const e = entryFor(id); return e ? Number(e.dataset.end) - Number(e.dataset.start) : Infinity; };
    ids.sort((a, b) => length(a) - length(b));
    activateEntry(ids[0]);
    return;
  }
  const goto = event.target.closest("[data-goto]");
  if (goto) {
    event.preventDefault();
    showHighlight(goto.dataset.goto);
    return;
  }
  const edit = event.target.closest("[data-edit]");
  if (edit) {
    const uuid = edit.dataset.edit;
    const { response, data } = await api("GET", `${reader.dataset.api}${uuid}`);
    if (!response.ok) { announce("This annotation could not be loaded."); return; }
    const bodies = data.body || [];
    openEditor({
      mode: "edit", uuid, etag: response.headers.get("ETag"),
      start: data.target.selector[0].start, end: data.target.selector[0].end,
      quote: data.target.selector[1].exact,
      note: bodies.find((b) => b.purpose === "commenting")?.value || "",
      tags: bodies.filter((b) => b.purpose === "tagging").map((b) => b.value),
      visibility: data.visibility || "collection",
    });
    return;
  }
  const remove = event.target.closest("[data-delete]");
  if (remove) confirmDelete(remove.dataset.delete, remove);
});

// Keyboard users reach a highlight's entry with Enter on a focused highlight.
document.addEventListener("keydown", (event) => {
  const mark = event.target.closest && event.target.closest("mark[data-anns]");
  if (mark && (event.key === "Enter" || event.key === " ")) {
    event.preventDefault();
    mark.click();
  }
});

// --- Delete, asking first --------------------------------------------------------------

const dialog = el("dialog", { class: "confirm", "aria-labelledby": "confirm-title" });
dialog.append(
  el("h2", { id: "confirm-title", text: "Delete this annotation?" }),
  el("p", { text: "Its highlight, tags and note are removed. This cannot be undone." }),
  el("form", { method: "dialog", class: "editor-actions" },
    el("button", { value: "delete", class: "primary danger-button", text: "Delete" }),
    el("button", { value: "cancel", text: "Keep it" })),
);
document.body.append(dialog);

function confirmDelete(uuid, opener) {
  dialog.returnValue = "";
  dialog.showModal();
  dialog.addEventListener("close", async () => {
    if (dialog.returnValue !== "delete") { opener.focus(); return; }
    const { response, data } = await api("DELETE", `${reader.dataset.api}${uuid}`);
    if (response.status !== 204) { announce(data?.error || "Deleting failed."); return; }
    await refresh();
    announce("Annotation deleted.");
    layer().focus({ preventScroll: true });
  }, { once: true });
}

// --- Filters ---------------------------------------------------------------------------

function applyFilters() {
  const tag = document.getElementById("filter-tag")?.value || "";
  const author = document.getElementById("filter-author")?.value || "";
  const shown = new Set();
  for (const entry of entries()) {
    const tags = entry.dataset.tags ? entry.dataset.tags.split("\u001f") : [];
    const visible = (!tag || tags.includes(tag)) && (!author || entry.dataset.author === author);
    entry.hidden = !visible;
    if (visible) shown.add(entry.dataset.ann);
  }
  document.querySelectorAll("mark[data-anns]").forEach((mark) => {
    mark.classList.toggle("is-dimmed", !mark.dataset.anns.split(" ").some((id) => shown.has(id)));
  });
}
document.addEventListener("change", (event) => {
  if (event.target.matches("#filter-tag, #filter-author")) applyFilters();
});

// Highlights are focusable so the keyboard can reach annotations from the text.
function makeMarksFocusable() {
  document.querySelectorAll("mark[data-anns]").forEach((mark) => {
    if (!mark.hasAttribute("tabindex")) mark.tabIndex = 0;
  });
}
new MutationObserver(makeMarksFocusable).observe(document.body, { childList: true, subtree: true });
makeMarksFocusable();

// A passage or annotation named in the URL is shown on arrival.
if (location.hash.startsWith("#a-")) activateEntry(location.hash.slice(3));
const passage = document.querySelector("#text-layer [data-passage]");
if (passage) passage.scrollIntoView({ block: "center" });
