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

function textNodes(root = layer()) {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {
    acceptNode: (n) => (runOf(n) ? NodeFilter.FILTER_ACCEPT : NodeFilter.FILTER_REJECT),
  });
  const nodes = [];
  while (walker.nextNode()) nodes.push(walker.currentNode);
  return nodes;
}

function runStart(textNode) { return Number(runOf(textNode).dataset.o); }

// Offset of a DOM boundary point (container, offset) in the text layer, in code points.
function offsetOf(container, offset, root = layer()) {
  if (container.nodeType === Node.TEXT_NODE && runOf(container)) {
    return runStart(container) + codePoints(container.data.slice(0, offset));
  }
  // An element boundary (or stray whitespace): the first text run at or after it.
  const point = document.createRange();
  point.setStart(container, offset);
  const nodes = textNodes(root);
  for (const node of nodes) {
    if (point.comparePoint(node, 0) >= 0) return runStart(node);
  }
  const last = nodes[nodes.length - 1];
  return last ? runStart(last) + codePoints(last.data) : 0;
}

function selectedRange(root = layer()) {
  const selection = window.getSelection();
  if (!selection || selection.rangeCount === 0 || selection.isCollapsed) return null;
  const range = selection.getRangeAt(0);
  if (!root || !root.contains(range.startContainer) || !root.contains(range.endContainer)) return null;
  const start = offsetOf(range.startContainer, range.startOffset, root);
  const end = offsetOf(range.endContainer, range.endOffset, root);
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

// Narrow screens and touch: the button sits at the bottom of the screen, where a thumb
// reaches it and the system's own selection menu and handles (drawn by the selection) do
// not cover it; an editor or a card opens there too, as a sheet below the passage.
const narrow = window.matchMedia("(max-width: 60rem)");
const touch = window.matchMedia("(pointer: coarse)");
function docked() { return narrow.matches || touch.matches; }

let pressed = null; // the selection when the button was pressed, should a tap clear it
function updateSelection() {
  if (!canAnnotate || editorOpen()) return;
  pending = selectedRange();
  if (!pending) {
    if (!pressed) annotateButton.hidden = true;
    return;
  }
  annotateButton.hidden = false;
  annotateButton.classList.toggle("docked", docked());
  if (docked()) {
    annotateButton.style.top = annotateButton.style.left = "";
    return;
  }
  const top = window.scrollY + pending.rect.bottom + 6;
  const left = window.scrollX + Math.max(8, pending.rect.left);
  annotateButton.style.top = `${top}px`;
  annotateButton.style.left = `${left}px`;
}

// A selection made by touch (long-press, then the handles) fires no mouseup or keyup:
// selectionchange is the one event every way of selecting sends.
let selectionTimer = null;
document.addEventListener("selectionchange", () => {
  clearTimeout(selectionTimer);
  selectionTimer = setTimeout(() => { updateSelection(); showCaret(); }, 80);
});
document.addEventListener("mouseup", () => setTimeout(updateSelection, 0));
document.addEventListener("keyup", (event) => {
  if (event.key.startsWith("Arrow") || event.key === "Shift" || event.key === "End" || event.key === "Home") {
    updateSelection();
  }
});
annotateButton.addEventListener("mousedown", (event) => event.preventDefault()); // keep the selection
annotateButton.addEventListener("pointerdown", () => { pressed = pending; });
annotateButton.addEventListener("click", () => {
  const chosen = pending || pressed;
  pressed = null;
  if (chosen) openEditor({ mode: "create", ...chosen });
});

document.addEventListener("keydown", (event) => {
  const typing = event.target.closest && event.target.closest("input, textarea, select, [contenteditable]");
  if (event.key === "Escape" && editorOpen() && !picker.open) {
    event.preventDefault();
    closeEditor();
    return;
  }
  if (event.key === "Escape" && !editorOpen() && !dialog.open && closeCard()) {
    event.preventDefault();
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
// behaves like a read-only document in caret browsing: Tab into it, move a caret with the
// arrows (or click where to start), then extend with Shift+arrows. The caret starts at the
// top of the screen; PageUp, PageDown and Space still scroll.
const EXTEND = {
  ArrowRight: ["forward", "character"], ArrowLeft: ["backward", "character"],
  ArrowDown: ["forward", "line"], ArrowUp: ["backward", "line"],
  End: ["forward", "lineboundary"], Home: ["backward", "lineboundary"],
};
document.addEventListener("keydown", (event) => {
  const root = event.target.closest ? event.target.closest(".picker-layer") || layer() : layer();
  if (!root || !EXTEND[event.key] || !root.contains(event.target) || event.altKey || event.metaKey) return;
  const selection = window.getSelection();
  if (selection.rangeCount === 0 || !root.contains(selection.anchorNode)) {
    const first = textNodes(root).find((node) => node.parentElement.getBoundingClientRect().bottom > 0);
    if (!first) return;
    selection.collapse(first, 0);
  }
  const [direction, unit] = EXTEND[event.key];
  selection.modify(event.shiftKey ? "extend" : "move", direction, event.ctrlKey && unit === "character" ? "word" : unit);
  event.preventDefault();
  keepCaretInView(selection);
  showCaret();
  updateSelection();
});

// The caret itself: browsers draw none in read-only text, so it is drawn here, where the
// collapsed selection is, while the text has the focus.
const caret = el("span", { class: "reading-caret", "aria-hidden": "true" });
caret.hidden = true;
document.body.append(caret);
function caretRect(selection) {
  const range = selection.getRangeAt(0).cloneRange();
  range.collapse(false);
  let rect = range.getClientRects()[0];
  if (!rect && range.startContainer.nodeType === Node.TEXT_NODE && range.startOffset > 0) {
    range.setStart(range.startContainer, range.startOffset - 1); // a caret at a line's end
    const rects = range.getClientRects();
    const last = rects[rects.length - 1];
    if (last) rect = { left: last.right, top: last.top, height: last.height, bottom: last.bottom };
  }
  return rect || null;
}
function showCaret() {
  const selection = window.getSelection();
  const root = document.activeElement?.closest?.(".picker-layer, #text-layer");
  const rect = root && selection.rangeCount && selection.isCollapsed && root.contains(selection.anchorNode)
    ? caretRect(selection) : null;
  caret.hidden = !rect;
  if (!rect) return;
  // In the passage picker (a modal dialog, above the page) the caret is drawn in the dialog.
  const host = root.closest("dialog") || document.body;
  if (caret.parentNode !== host) host.append(caret);
  const origin = host === document.body
    ? { left: -window.scrollX, top: -window.scrollY }
    : { left: host.getBoundingClientRect().left + host.clientLeft - host.scrollLeft, top: host.getBoundingClientRect().top + host.clientTop - host.scrollTop };
  caret.style.left = `${rect.left - origin.left}px`;
  caret.style.top = `${rect.top - origin.top}px`;
  caret.style.height = `${rect.height}px`;
}
function keepCaretInView(selection) {
  const rect = selection.rangeCount ? caretRect(selection) : null;
  if (!rect) return;
  const picker = selection.anchorNode?.parentElement?.closest(".picker-layer");
  const box = picker ? picker.getBoundingClientRect() : { top: 0, bottom: window.innerHeight };
  const scroller = picker || window;
  if (rect.top < box.top + 8) scroller.scrollBy(0, rect.top - box.top - 8);
  else if (rect.bottom > box.bottom - 8) scroller.scrollBy(0, rect.bottom - box.bottom + 8);
}
document.addEventListener("focusout", () => setTimeout(showCaret, 0));
document.addEventListener("focusin", () => setTimeout(showCaret, 0));
window.addEventListener("resize", showCaret);

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

function openEditor({ mode, start, end, quote, uuid, etag, note = "", tags = [], visibility = "collection", citations = [], citationLabels = [] }) {
  closeEditor();
  annotateButton.hidden = true;
  const panel = document.querySelector(".ann-panel");
  const form = el("form", { class: "editor", "aria-label": mode === "create" ? "New annotation" : "Edit annotation" });
  const heading = el("h3", { text: mode === "create" ? "New annotation" : "Edit annotation", tabindex: "-1" });
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
  const suggestions = el("ul", { class: "suggestions floating", id: "editor-suggestions", role: "listbox", "aria-label": "Tag suggestions" });
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
    // The collection's codebook comes first, each code with what it means.
    const { data } = await api("GET", `/api/tags/?q=${encodeURIComponent(query)}&source=${encodeURIComponent(reader.dataset.source)}`);
    if (tagInput.value.trim() !== query || !data) return;
    // The list asked for on focus can answer after the focus has moved on: it stays shut.
    if (document.activeElement !== tagInput) { lastQuery = null; return; }
    const options = data.tags.filter((t) => !chosen.some((c) => c.toLowerCase() === t.toLowerCase()));
    const codes = new Map((data.codes || []).map((code) => [code.name, code]));
    // A list can arrive after the user has moved into the one before it (the list for the
    // empty box, fetched on focus, answers after a few letters are typed): the tag they
    // highlighted stays highlighted if the new list still offers it, so Enter adds what they see.
    const highlighted = active >= 0 ? suggestions.children[active]?.dataset.tag : undefined;
    suggestions.replaceChildren(...options.map((tag, i) => {
      const option = el("li", { role: "option", id: `suggestion-${i}`, "aria-selected": "false", "data-tag": tag });
      const code = codes.get(tag);
      if (code) {
        option.classList.add("code");
        if (code.colour) option.append(el("span", { class: `swatch code-${code.colour}`, "aria-hidden": "true" }));
        option.append(el("span", { class: "name", text: tag }));
        if (code.description) option.append(el("span", { class: "help", text: ` — ${code.description}` }));
      } else {
        option.append(el("span", { class: "name", text: tag }));
      }
      option.addEventListener("mousedown", (event) => { event.preventDefault(); addTag(tag); tagInput.focus(); });
      return option;
    }));
    suggestions.hidden = options.length === 0;
    tagInput.setAttribute("aria-expanded", String(options.length > 0));
    active = -1;
    tagInput.removeAttribute("aria-activedescendant");
    if (options.includes(highlighted)) highlight(options.indexOf(highlighted));
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
      if (active >= 0 && items[active]) addTag(items[active].dataset.tag);
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
  // A choice by pointer keeps the focus (mousedown is cancelled), so any blur leaves the list.
  tagInput.addEventListener("blur", hideSuggestions);

  // Note, with a preview rendered by the server's own sanitising renderer.
  const noteInput = el("textarea", { id: "editor-note", rows: "4" });
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
    if (data.unresolved?.length) {
      preview.append(el("p", { class: "cite-warning", text: `Unknown citation keys (no source you can see has them): ${data.unresolved.join(", ")}` }));
    }
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

  const citeBox = citationEditor(citations, citationLabels, errorBox);
  const save = el("button", { type: "submit", class: "primary", text: "Save" });
  const cancel = el("button", { type: "button", text: "Cancel" });
  cancel.addEventListener("click", closeEditor);

  // Save stays in sight (a sticky footer) however long the citations make the form.
  form.append(
    heading, quoteBox, errorBox,
    el("label", { for: "editor-tags", text: "Tags" }),
    el("div", { class: "tag-field" }, el("div", { class: "tag-input" }, chips, tagInput), suggestions),
    el("p", { class: "help", id: "editor-tags-help", text: "Enter or comma adds a tag; Backspace removes the last." }),
    el("div", { class: "note-head" }, el("label", { for: "editor-note", text: "Note (Markdown)" }), previewButton),
    noteInput, preview,
    citeBox.element,
    el("div", { class: "editor-footer" },
      el("div", { class: "visibility-field" }, el("label", { for: "editor-visibility", text: "Visible to" }), visibilitySelect),
      el("div", { class: "editor-actions" }, save, cancel, el("span", { class: "help", text: "Esc cancels" }))),
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
    body.push(...citeBox.bodies());
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

  clearActive();
  panel.prepend(form);
  editor = { form, mode };
  // The passage stays marked while its editor is open (the selection goes with the focus).
  const range = rangeFor(start, end);
  if (range && window.Highlight && CSS.highlights) CSS.highlights.set("scholion-passage", new Highlight(range));
  if (docked()) {
    form.classList.add("sheet");
    document.body.classList.add("has-sheet");
    placeAbove(range?.getBoundingClientRect(), form);
    // On a touch screen, focusing the tag box would raise the keyboard over the passage.
    (touch.matches ? heading : tagInput).focus({ preventScroll: true });
  } else {
    tagInput.focus({ preventScroll: true });
    reveal(form);
  }
}

function closeEditor({ restoreFocus = true } = {}) {
  if (!editor) return;
  editor.form.remove();
  editor = null;
  if (window.Highlight && CSS.highlights) CSS.highlights.delete("scholion-passage");
  document.body.classList.remove("has-sheet");
  if (restoreFocus) layer()?.focus({ preventScroll: true });
}

// The DOM range of code points [start, end) of the text layer.
function pointAt(offset, root = layer()) {
  for (const node of textNodes(root)) {
    const base = runStart(node);
    const chars = [...node.data];
    if (offset >= base && offset <= base + chars.length) return [node, chars.slice(0, offset - base).join("").length];
  }
  return null;
}
function rangeFor(start, end) {
  const from = pointAt(start);
  const to = pointAt(end);
  if (!from || !to) return null;
  const range = document.createRange();
  range.setStart(...from);
  range.setEnd(...to);
  return range;
}

// Desktop: the editor opens at the top of the panel; the window moves as little as it can
// for the whole form (and so Save) to be in sight, keeping the passage on screen if it can.
function reveal(form) {
  const panel = form.closest(".ann-panel");
  if (panel) panel.scrollTop = 0;
  const rect = form.getBoundingClientRect();
  if (rect.top < 0) window.scrollBy(0, rect.top - 12);
  else if (rect.bottom > window.innerHeight) window.scrollBy(0, Math.min(rect.top - 12, rect.bottom - window.innerHeight + 12));
}

// A sheet covers the bottom of the screen: scroll what it is about (a passage, a highlight)
// into the room above it.
function placeAbove(rect, sheet) {
  if (!rect) return;
  const room = sheet.getBoundingClientRect().top;
  const want = Math.max(8, (room - rect.height) / 2);
  window.scrollBy(0, rect.top - want);
}

// --- Refresh from the server (the single renderer of highlights) ------------------------

async function refresh() {
  const response = await fetch(location.pathname + location.search, { credentials: "same-origin" });
  const doc = new DOMParser().parseFromString(await response.text(), "text/html");
  // (A source without a text layer has its notes only.)
  layer()?.replaceChildren(...doc.getElementById("text-layer").childNodes);
  const panel = document.querySelector(".ann-panel");
  panel.replaceWith(doc.querySelector(".ann-panel"));
  addEntryActions();
  applyFilters();
}

const status = el("p", { class: "visually-hidden", role: "status", "aria-live": "polite" });
document.body.append(status);
function announce(message) { status.textContent = message; }

// --- Highlights and entries ------------------------------------------------------------

function entries() { return [...document.querySelectorAll("#ann-list .ann")]; }

// Each entry's buttons (copy its passage link; edit and delete one's own) are made here, not
// sent with every entry: they work only with this script, and on a page of hundreds of
// annotations they were a sixth of its bytes.
function addEntryActions() {
  const [passages, passagesEnd] = reader.dataset.passages.split("/0-1/");
  for (const entry of entries()) {
    if (entry.querySelector(":scope > .ann-actions")) continue;
    const uuid = entry.dataset.ann;
    const actions = el("p", { class: "ann-actions" },
      el("button", {
        type: "button", class: "link", text: "Copy link", "aria-label": "Copy link to this passage",
        "data-copy": `${passages}/${entry.dataset.start}-${entry.dataset.end}/${passagesEnd}`,
      }));
    if (reader.dataset.user && entry.dataset.author === reader.dataset.user) {
      actions.append(
        el("button", { type: "button", class: "link", text: "Edit", "data-edit": uuid }),
        el("button", { type: "button", class: "link danger", text: "Delete", "data-delete": uuid }));
    }
    if (reader.dataset.canNote === "true") {
      actions.append(el("button", { type: "button", class: "link", text: "Reply", "data-reply": uuid, "aria-label": "Reply to this annotation" }));
    }
    entry.append(actions);
  }
  addCommentActions();
}

// Replies and notes on the whole source: Reply on a note, Edit and Delete on one's own.
function addCommentActions() {
  const own = (node) => reader.dataset.user && node.dataset.author === reader.dataset.user;
  for (const node of document.querySelectorAll(".source-note, .reply")) {
    if (node.querySelector(":scope > .ann-actions")) continue;
    const uuid = node.dataset.comment;
    const actions = el("p", { class: "ann-actions" });
    const kind = node.classList.contains("reply") ? "reply" : "note";
    if (kind === "note" && reader.dataset.canNote === "true") {
      actions.append(el("button", { type: "button", class: "link", text: "Reply", "data-reply": uuid, "aria-label": "Reply to this note" }));
    }
    if (own(node)) {
      actions.append(
        el("button", { type: "button", class: "link", text: "Edit", "data-edit-comment": uuid, "aria-label": `Edit this ${kind}` }),
        el("button", { type: "button", class: "link danger", text: "Delete", "data-delete-comment": uuid, "aria-label": `Delete this ${kind}` }));
    }
    if (!actions.childNodes.length) continue;
    // A note's buttons go before its thread; a reply's at its end.
    const thread = node.querySelector(":scope > .replies");
    if (thread) thread.before(actions); else node.append(actions);
  }
  const addNote = document.getElementById("add-source-note");
  if (addNote) addNote.hidden = false;
}
addEntryActions();

// A small form for the text of a reply or a note: Markdown, like an annotation's note.
function openCommentForm({ after, label, text = "", withVisibility = false, submitLabel, send, done }) {
  document.querySelector("form.comment-form")?.remove();
  const id = `comment-text-${Date.now()}`;
  const textarea = el("textarea", { id, rows: "3", required: "", "aria-describedby": `${id}-help` });
  textarea.value = text;
  const errorBox = el("div", { class: "error", role: "alert" });
  const form = el("form", { class: "comment-form" },
    el("label", { for: id, text: label }), textarea,
    el("p", { class: "help", id: `${id}-help`, text: "Markdown: *emphasis*, **strong**, [links](https://…)." }));
  let visibility = null;
  if (withVisibility) {
    visibility = el("select", { id: `${id}-visibility` },
      el("option", { value: "collection", text: "Collection members" }),
      el("option", { value: "private", text: "Private (only me)" }),
      el("option", { value: "public", text: "Public" }));
    form.append(el("label", { for: visibility.id, text: "Who can see it" }), visibility);
  }
  const submit = el("button", { type: "submit", class: "primary", text: submitLabel });
  const cancel = el("button", { type: "button", text: "Cancel" });
  form.append(errorBox, el("div", { class: "editor-actions" }, submit, cancel));
  cancel.addEventListener("click", () => { form.remove(); after.focus?.(); });
  form.addEventListener("keydown", (event) => { if (event.key === "Escape") cancel.click(); });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!textarea.value.trim()) { errorBox.textContent = "Write something first."; return; }
    submit.disabled = true;
    const { response, data } = await send(textarea.value, visibility?.value);
    submit.disabled = false;
    if (!response.ok) { errorBox.textContent = data?.error || `Saving failed (${response.status}).`; return; }
    form.remove();
    await refresh();
    done(data.id.split("/").pop());
  });
  after.after(form);
  textarea.focus();
  return form;
}

function focusComment(uuid, message) {
  announce(message);
  const node = document.getElementById(`c-${uuid}`);
  if (!node) return;
  node.setAttribute("tabindex", "-1");
  node.scrollIntoView({ block: "nearest" });
  node.focus({ preventScroll: true });
}

function replyTo(uuid, opener) {
  openCommentForm({
    after: opener.closest(".ann-actions"), label: "Your reply", submitLabel: "Post reply",
    send: (text) => api("POST", reader.dataset.api, {
      "@context": "http://www.w3.org/ns/anno.jsonld", type: "Annotation", motivation: "replying",
      target: new URL(`${reader.dataset.api}${uuid}`, location.origin).href,
      body: { type: "TextualBody", value: text, format: "text/markdown", purpose: "replying" },
    }),
    done: (saved) => focusComment(saved, "Reply posted."),
  });
}

function addSourceNote(opener) {
  openCommentForm({
    after: opener.closest("p"), label: "Note on this source", submitLabel: "Save note", withVisibility: true,
    send: (text, visibility) => api("POST", reader.dataset.api, {
      "@context": "http://www.w3.org/ns/anno.jsonld", type: "Annotation", motivation: "commenting",
      target: new URL(location.pathname.replace(/passages\/.*$/, ""), location.origin).href,
      body: { type: "TextualBody", value: text, format: "text/markdown", purpose: "commenting" },
      visibility,
    }),
    done: (saved) => focusComment(saved, "Note saved."),
  });
}

async function editComment(uuid, opener) {
  const { response, data } = await api("GET", `${reader.dataset.api}${uuid}`);
  if (!response.ok) { announce("This could not be loaded."); return; }
  const etag = response.headers.get("ETag");
  const isReply = data.motivation === "replying";
  openCommentForm({
    after: opener.closest(".ann-actions"), label: isReply ? "Edit your reply" : "Edit your note",
    text: data.body[0].value, submitLabel: "Save",
    send: (text) => api("PUT", `${reader.dataset.api}${uuid}`, {
      type: "Annotation", body: { type: "TextualBody", value: text, format: "text/markdown" },
    }, etag ? { "If-Match": etag } : {}),
    done: (saved) => focusComment(saved, isReply ? "Reply updated." : "Note updated."),
  });
}
function entryFor(uuid) { return document.getElementById(`a-${uuid}`); }

function clearActive() {
  document.querySelectorAll(".is-active").forEach((node) => node.classList.remove("is-active"));
  document.querySelectorAll(".ann.sheet").forEach((node) => node.classList.remove("sheet"));
  if (!editorOpen()) document.body.classList.remove("has-sheet");
}

function activateEntry(uuid) {
  const entry = entryFor(uuid);
  if (!entry) return;
  clearActive();
  entry.classList.add("is-active");
  const marks = [...document.querySelectorAll("mark[data-anns]")].filter((mark) => mark.dataset.anns.split(" ").includes(uuid));
  marks.forEach((mark) => mark.classList.add("is-active"));
  if (docked() && marks.length) {
    // On a narrow screen the card opens over the bottom of the text, its highlight above it,
    // rather than in the panel far below the text.
    entry.classList.add("sheet");
    document.body.classList.add("has-sheet");
    if (!entry.querySelector(".sheet-close")) {
      entry.prepend(el("button", { type: "button", class: "sheet-close", "aria-label": "Close this annotation", text: "×" }));
    }
    const first = marks[0].getBoundingClientRect();
    const last = marks[marks.length - 1].getBoundingClientRect();
    placeAbove({ top: first.top, height: last.bottom - first.top }, entry);
  } else {
    entry.scrollIntoView({ block: "nearest", behavior: "smooth" });
  }
  entry.focus({ preventScroll: true });
}

function closeCard() {
  const card = document.querySelector(".ann.sheet");
  if (!card) return false;
  const mark = document.querySelector(`#text-layer mark[data-anns~="${CSS.escape(card.dataset.ann)}"]`);
  clearActive();
  (mark || layer()).focus({ preventScroll: true });
  return true;
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
  if (event.target.closest(".sheet-close")) {
    closeCard();
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
      citations: bodies.filter((b) => b.purpose === "linking"),
      citationLabels: [...(entryFor(uuid)?.querySelectorAll(".citations > li") || [])].map((li) => li.textContent.trim()),
      visibility: data.visibility || "collection",
    });
    return;
  }
  const copy = event.target.closest("[data-copy]");
  if (copy) {
    copyLink(new URL(copy.dataset.copy, location.origin).href);
    return;
  }
  const remove = event.target.closest("[data-delete]");
  if (remove) { confirmDelete(remove.dataset.delete, remove); return; }
  const reply = event.target.closest("[data-reply]");
  if (reply) { replyTo(reply.dataset.reply, reply); return; }
  if (event.target.closest("#add-source-note")) { addSourceNote(event.target); return; }
  const editing = event.target.closest("[data-edit-comment]");
  if (editing) { editComment(editing.dataset.editComment, editing); return; }
  const removing = event.target.closest("[data-delete-comment]");
  if (removing) confirmDelete(removing.dataset.deleteComment, removing, "comment");
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
const confirmTitle = el("h2", { id: "confirm-title", text: "Delete this annotation?" });
const confirmText = el("p", { text: "" });
dialog.append(
  confirmTitle,
  confirmText,
  el("form", { method: "dialog", class: "editor-actions" },
    el("button", { value: "delete", class: "primary danger-button", text: "Delete" }),
    el("button", { value: "cancel", text: "Keep it" })),
);
document.body.append(dialog);

function plural(n, one, many) { return n === 1 ? `1 ${one}` : `${n} ${many}`; }

// Deleting an annotation or a note deletes its replies too: the question says how many.
function confirmDelete(uuid, opener, kind = "annotation") {
  const node = kind === "annotation" ? entryFor(uuid) : document.getElementById(`c-${uuid}`);
  const replies = Number(node?.dataset.replies || 0);
  const isReply = node?.classList.contains("reply");
  const what = kind === "annotation" ? "annotation" : (isReply ? "reply" : "note");
  confirmTitle.textContent = `Delete this ${what}?`;
  let text = kind === "annotation" ? "Its highlight, tags and note are removed." : "Its text is removed.";
  if (replies) text += ` Its ${plural(replies, "reply", "replies")} will be deleted with it.`;
  // The server keeps a deleted annotation for a while (Undo); a reply or a note it does not.
  const after = kind === "annotation" && !replies ? "You can undo it for a few seconds." : "This cannot be undone.";
  confirmText.textContent = `${text} ${after}`;
  dialog.returnValue = "";
  dialog.showModal();
  dialog.addEventListener("close", async () => {
    if (dialog.returnValue !== "delete") { opener.focus(); return; }
    const { response, data } = await api("DELETE", `${reader.dataset.api}${uuid}`);
    if (response.status !== 204) { announce(data?.error || "Deleting failed."); return; }
    await refresh();
    if (kind === "annotation") {
      announce("Annotation deleted. Undo is offered for a few seconds.");
      offerUndo(uuid);
    } else {
      announce(`${what[0].toUpperCase()}${what.slice(1)} deleted.`);
      layer()?.focus({ preventScroll: true });
    }
  }, { once: true });
}

// Undo: the server keeps a deleted annotation for some minutes; the offer shows for a few
// seconds, and stays while the pointer or the focus is on it (time enough to reach it).
const toast = el("div", { class: "toast", role: "group", "aria-label": "Deleted" });
toast.hidden = true;
document.body.append(toast);
let toastTimer = null;
function dismissToast({ restoreFocus = false } = {}) {
  clearTimeout(toastTimer);
  const hadFocus = toast.contains(document.activeElement);
  toast.hidden = true;
  toast.replaceChildren();
  if (restoreFocus || hadFocus) layer()?.focus({ preventScroll: true });
}
function offerUndo(uuid) {
  const undo = el("button", { type: "button", class: "primary", text: "Undo" });
  toast.replaceChildren(el("span", { text: "Annotation deleted." }), undo);
  toast.hidden = false;
  const wait = () => { clearTimeout(toastTimer); toastTimer = setTimeout(() => dismissToast(), 8000); };
  toast.onmouseenter = toast.onfocusin = () => clearTimeout(toastTimer);
  toast.onmouseleave = toast.onfocusout = wait;
  toast.onkeydown = (event) => { if (event.key === "Escape") { event.preventDefault(); dismissToast({ restoreFocus: true }); } };
  undo.addEventListener("click", async () => {
    undo.disabled = true;
    const { response, data } = await api("POST", `${reader.dataset.api}${uuid}/restore`);
    dismissToast();
    if (!response.ok) { announce(data?.error || "Undo failed."); return; }
    await refresh();
    announce("Annotation restored.");
    activateEntry(uuid);
  });
  undo.focus({ preventScroll: true });
  wait();
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

// A passage or annotation named in the URL is shown on arrival: an annotation's entry in
// the panel, and its highlight in the text (in a long text, far below the first screen).
if (location.hash.startsWith("#a-")) {
  const uuid = location.hash.slice(3);
  activateEntry(uuid);
  // On a narrow screen activateEntry has put the highlight above its card already.
  if (!docked()) document.querySelector(`#text-layer mark[data-anns~="${CSS.escape(uuid)}"]`)?.scrollIntoView({ block: "center" });
}
const passage = document.querySelector("#text-layer [data-passage]");
if (passage) passage.scrollIntoView({ block: "center" });

// --- Copy a passage link ----------------------------------------------------------------

async function copyLink(url) {
  try {
    await navigator.clipboard.writeText(url);
  } catch {
    // No clipboard permission (an insecure origin, say): copy through a hidden field.
    const field = el("textarea", { class: "visually-hidden", "aria-hidden": "true" });
    field.value = url;
    document.body.append(field);
    field.select();
    document.execCommand("copy");
    field.remove();
  }
  announce(`Link copied: ${url}`);
}

// --- Citations in the editor ------------------------------------------------------------
// Each citation is kept as the W3C body the API takes (a SpecificResource, purpose "linking").

const PASSAGE_LINK = /\/sources\/([0-9a-f-]{36})\/(?:passages\/(\d+)-(\d+)\/?)?/i;
const LOCATOR_LABELS = [["page", "Page"], ["paragraph", "Paragraph"], ["section", "Section"], ["chapter", "Chapter"], ["line", "Line"], ["folio", "Folio"]];
const REFERENCE_TYPES = [["webpage", "Web page"], ["article-journal", "Journal article"], ["article-newspaper", "Newspaper article"], ["report", "Report"], ["book", "Book"], ["document", "Other document"]];
let fieldCount = 0;

function field(label, input, help) {
  fieldCount += 1;
  input.id = input.id || `cite-field-${fieldCount}`;
  const wrap = el("div", { class: "cite-field" }, el("label", { for: input.id, text: label }), input);
  if (help) {
    const helpId = `${input.id}-help`;
    input.setAttribute("aria-describedby", helpId);
    wrap.append(el("p", { class: "help", id: helpId, text: help }));
  }
  return wrap;
}

function selectOf(options) {
  return el("select", {}, ...options.map(([value, text]) => el("option", { value, text })));
}

function citationEditor(initial, initialLabels, errorBox) {
  const items = initial.map((body, i) => ({ body, label: initialLabels[i] || body.source }));
  const list = el("ul", { class: "citations editing", "aria-label": "Citations in this annotation" });
  const sourceButton = el("button", { type: "button", "aria-expanded": "false", text: "Cite a source…" });
  const externalButton = el("button", { type: "button", "aria-expanded": "false", text: "External reference…" });
  const area = el("div", { class: "cite-area" });
  const element = el("fieldset", { class: "cite-editor" },
    el("legend", { text: "Citations" }), list,
    el("div", { class: "editor-actions" }, sourceButton, externalButton), area);

  function render() {
    list.replaceChildren(...items.map((item, i) => {
      const remove = el("button", { type: "button", class: "link danger", "aria-label": `Remove citation ${item.label}`, text: "Remove" });
      remove.addEventListener("click", () => { items.splice(i, 1); render(); sourceButton.focus(); });
      return el("li", {}, el("span", { text: item.label }), " ", remove);
    }));
  }
  function closeArea() {
    area.replaceChildren();
    sourceButton.setAttribute("aria-expanded", "false");
    externalButton.setAttribute("aria-expanded", "false");
  }
  function add(body, label) {
    items.push({ body, label });
    render();
    closeArea();
    announce(`Citation added: ${label}`);
    sourceButton.focus();
  }
  function commonFields() {
    const label = selectOf(LOCATOR_LABELS);
    const locator = el("input", { type: "text", maxlength: "100" });
    const comment = el("input", { type: "text", maxlength: "1000" });
    const part = el("div", { class: "cite-row" }, field("Locator type", label), field("Locator", locator, "e.g. 4 or 12–14"));
    let filled = "";  // what prefill put in the locator, so a locator the user typed is kept
    return {
      nodes: [part, field("Comment", comment)],
      prefill(where) {
        if (locator.value.trim() && locator.value !== filled) return;
        locator.value = filled = where ? where.labels : "";
        if (where) label.value = where.unit;
      },
      apply(body) {
        if (locator.value.trim()) { body.locator = locator.value.trim(); body.locatorLabel = label.value; }
        if (comment.value.trim()) body.comment = comment.value.trim();
        return body;
      },
    };
  }

  sourceButton.addEventListener("click", () => {
    if (sourceButton.getAttribute("aria-expanded") === "true") { closeArea(); return; }
    closeArea();
    sourceButton.setAttribute("aria-expanded", "true");
    area.replaceChildren(sourcePicker());
    area.querySelector("input").focus({ preventScroll: true });
    area.scrollIntoView({ block: "nearest" });
  });
  externalButton.addEventListener("click", () => {
    if (externalButton.getAttribute("aria-expanded") === "true") { closeArea(); return; }
    closeArea();
    externalButton.setAttribute("aria-expanded", "true");
    area.replaceChildren(externalForm());
    area.querySelector("input").focus({ preventScroll: true });
    area.scrollIntoView({ block: "nearest" });
  });

  function sourcePicker() {
    const search = el("input", {
      type: "search", id: "cite-search", autocomplete: "off", role: "combobox", "aria-autocomplete": "list",
      "aria-expanded": "false", "aria-controls": "cite-results",
    });
    const results = el("ul", { class: "suggestions", id: "cite-results", role: "listbox", "aria-label": "Sources" });
    results.hidden = true;
    const chosenBox = el("div", { class: "cite-chosen" });
    const box = el("div", { class: "cite-panel" },
      field("Find a source", search, "Title, author or citation key; or paste a passage link."),
      results, chosenBox);
    let chosen = null;
    let passage = null;
    let active = -1;
    let lastQuery = null;
    const common = commonFields();
    const passageText = el("p", { class: "cite-passage", "aria-live": "polite" });
    const pickButton = el("button", { type: "button", text: "Pick a passage…" });
    const addButton = el("button", { type: "button", class: "primary", text: "Add citation" });

    function choose(source, picked = null) {
      chosen = source;
      passage = picked;
      results.hidden = true;
      search.setAttribute("aria-expanded", "false");
      passageText.textContent = picked ? `Passage: “${picked.exact}”` : "Whole source (no passage chosen).";
      chosenBox.replaceChildren(
        el("p", { class: "cite-title" }, el("strong", { text: source.title || "Source" }), source.citation_key ? ` [@${source.citation_key}]` : ""),
        passageText, el("div", { class: "editor-actions" }, pickButton), ...common.nodes,
        el("div", { class: "editor-actions" }, addButton));
      pickButton.focus();
    }
    pickButton.addEventListener("click", async () => {
      const picked = await pickPassage(chosen);
      if (picked) {
        passage = picked;
        passageText.textContent = `Passage: “${picked.exact}”`;
        // A passage of a PDF (or an EPUB) is cited by its page (chapter) unless one is typed.
        common.prefill(picked.where);
      }
      addButton.focus();
    });
    addButton.addEventListener("click", () => {
      const body = { type: "SpecificResource", purpose: "linking", source: new URL(chosen.url, location.origin).href };
      if (passage) {
        // Offsets only: the server takes the quote from the text layer itself.
        body.selector = [{ type: "TextPositionSelector", start: passage.start, end: passage.end }];
      }
      common.apply(body);
      const label = passage ? `${chosen.title}: “${passage.exact}”` : chosen.title;
      add(body, label);
    });
    function highlight(index) {
      const options = [...results.children];
      options.forEach((item, i) => item.setAttribute("aria-selected", String(i === index)));
      active = index;
      if (options[index]) search.setAttribute("aria-activedescendant", options[index].id);
    }
    async function lookup() {
      const query = search.value.trim();
      const link = query.match(PASSAGE_LINK);
      if (link) {
        const start = link[2] ? Number(link[2]) : null;
        const end = link[3] ? Number(link[3]) : null;
        const url = `/sources/${link[1]}/`;
        // A pasted link: the title comes from the search (only sources the user can see).
        const { data } = await api("GET", `${reader.dataset.sourceSearch}?q=${link[1]}`);
        const known = data?.sources.find((s) => s.uuid === link[1].toLowerCase());
        const source = known || { uuid: link[1], title: "Linked source", url };
        let picked = null;
        if (start !== null) picked = { start, end, exact: await passageQuote(url, start, end) };
        choose(source, picked);
        return;
      }
      if (query === lastQuery) return;
      lastQuery = query;
      const { data } = await api("GET", `${reader.dataset.sourceSearch}?q=${encodeURIComponent(query)}`);
      if (search.value.trim() !== query || !data) return;
      // As with tags: a source the user highlighted in the list before stays highlighted.
      const highlighted = active >= 0 ? results.children[active]?.source.uuid : undefined;
      results.replaceChildren(...data.sources.map((source, i) => {
        const who = source.creators.length ? ` — ${source.creators.join("; ")}` : "";
        const option = el("li", { role: "option", id: `cite-result-${i}`, "aria-selected": "false" },
          el("span", { text: source.title }), el("span", { class: "help", text: `${who} ${source.year} @${source.citation_key}` }));
        option.addEventListener("mousedown", (event) => { event.preventDefault(); choose(source); });
        option.source = source;
        return option;
      }));
      results.hidden = data.sources.length === 0;
      if (!results.hidden) results.scrollIntoView({ block: "nearest" });
      search.setAttribute("aria-expanded", String(data.sources.length > 0));
      active = -1;
      search.removeAttribute("aria-activedescendant");
      const keep = data.sources.findIndex((source) => source.uuid === highlighted);
      if (keep >= 0) highlight(keep);
    }
    search.addEventListener("input", lookup);
    search.addEventListener("keydown", (event) => {
      const options = [...results.children];
      if (event.key === "ArrowDown" && options.length) {
        event.preventDefault();
        results.hidden = false;
        highlight((active + 1) % options.length);
      } else if (event.key === "ArrowUp" && options.length) {
        event.preventDefault();
        highlight((active - 1 + options.length) % options.length);
      } else if (event.key === "Enter") {
        event.preventDefault();
        if (active >= 0 && options[active]) choose(options[active].source);
        else lookup();
      } else if (event.key === "Escape" && !results.hidden) {
        event.preventDefault();
        event.stopPropagation();
        results.hidden = true;
      }
    });
    return box;
  }

  function externalForm() {
    const url = el("input", { type: "url", placeholder: "https://…" });
    const doi = el("input", { type: "text", placeholder: "10.1234/abc" });
    const title = el("input", { type: "text", maxlength: "500" });
    const creators = el("input", { type: "text" });
    const publisher = el("input", { type: "text", maxlength: "300" });
    const published = el("input", { type: "text", maxlength: "10", placeholder: "YYYY-MM-DD" });
    const accessed = el("input", { type: "date" });
    const kind = selectOf(REFERENCE_TYPES);
    const common = commonFields();
    const addButton = el("button", { type: "button", class: "primary", text: "Add reference" });
    addButton.addEventListener("click", () => {
      if (!url.value.trim() && !doi.value.trim()) {
        errorBox.textContent = "An external reference needs a URL or a DOI.";
        url.focus();
        return;
      }
      errorBox.textContent = "";
      const reference = { type: kind.value };
      if (title.value.trim()) reference.title = title.value.trim();
      const names = creators.value.split(";").map((n) => n.trim()).filter(Boolean);
      if (names.length) reference.creators = names;
      if (publisher.value.trim()) reference.publisher = publisher.value.trim();
      if (published.value.trim()) reference.datePublished = published.value.trim();
      if (accessed.value) reference.dateAccessed = accessed.value;
      if (url.value.trim()) reference.url = url.value.trim();
      if (doi.value.trim()) reference.doi = doi.value.trim();
      const body = { type: "SpecificResource", purpose: "linking",
        source: doi.value.trim() ? `https://doi.org/${doi.value.trim().replace(/^(https?:\/\/(dx\.)?doi\.org\/|doi:)/i, "")}` : url.value.trim(),
        reference };
      common.apply(body);
      add(body, reference.title || body.source);
    });
    return el("div", { class: "cite-panel" },
      field("URL", url), field("DOI", doi), field("Title", title),
      field("Creators", creators, "Separate names with semicolons: Family, Given; …"),
      el("div", { class: "cite-row" }, field("Published", published), field("Accessed", accessed)),
      field("Publisher or site", publisher), field("Type", kind), ...common.nodes,
      el("div", { class: "editor-actions" }, addButton));
  }

  render();
  return { element, bodies: () => items.map((item) => item.body) };
}

// The cited source's text layer, fetched from its reading page, shown in a dialog to select in.
async function loadLayer(url) {
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) return null;
  const doc = new DOMParser().parseFromString(await response.text(), "text/html");
  return doc.getElementById("text-layer");
}

async function passageQuote(url, start, end) {
  const fetched = await loadLayer(url);
  if (!fetched) return "";
  const chars = [];
  for (const run of fetched.querySelectorAll("[data-o]")) {
    const base = Number(run.dataset.o);
    [...run.textContent].forEach((ch, i) => { if (base + i >= start && base + i < end) chars.push(ch); });
  }
  return chars.join("");
}

// The pages (or chapters) a passage lies on, from the marks the reading page puts before each
// one's first block ("page 12", "chapter 3"): { unit, labels: "12" or "12–13" }, or null.
function divisionOf(layer, start, end) {
  const found = [];
  let pending = null;
  for (const node of layer.querySelectorAll(".page-mark, [data-s]")) {  // in document order
    if (node.classList.contains("page-mark")) { pending = node; continue; }
    if (!pending) continue;
    const named = pending.getAttribute("aria-label") || "";
    const space = named.indexOf(" ");
    found.push({ unit: named.slice(0, space), label: named.slice(space + 1), start: Number(node.dataset.s) });
    pending = null;
  }
  const holding = (offset) => found.filter((d) => d.start <= offset).pop();
  const first = holding(start);
  const last = holding(Math.max(end - 1, start));
  if (!first || !last) return null;
  return { unit: first.unit, labels: first === last ? first.label : `${first.label}–${last.label}` };
}

const picker = el("dialog", { class: "picker", "aria-labelledby": "picker-title" });
document.body.append(picker);

function pickPassage(source) {
  return new Promise(async (resolve) => {
    const fetched = await loadLayer(source.url);
    const pickerLayer = el("div", { class: "picker-layer text-layer", tabindex: "0", "aria-label": `Text of ${source.title}` });
    if (fetched) pickerLayer.append(...fetched.childNodes);
    else pickerLayer.append(el("p", { text: "This source's text could not be loaded." }));
    const chosenText = el("p", { class: "cite-passage", "aria-live": "polite", text: "Select a passage in the text (mouse, or Shift+arrows)." });
    const use = el("button", { type: "button", class: "primary", text: "Use this passage", disabled: "" });
    const cancel = el("button", { type: "button", text: "Cancel" });
    let selected = null;
    const track = () => {
      const range = selectedRange(pickerLayer);
      if (!range) return;
      selected = { start: range.start, end: range.end, exact: range.quote, where: divisionOf(pickerLayer, range.start, range.end) };
      chosenText.textContent = `Selected: “${range.quote}”`;
      use.removeAttribute("disabled");
    };
    pickerLayer.addEventListener("mouseup", () => setTimeout(track, 0));
    pickerLayer.addEventListener("keyup", () => setTimeout(track, 0));
    picker.replaceChildren(
      el("h2", { id: "picker-title", text: `Pick a passage of “${source.title}”` }),
      pickerLayer, chosenText, el("div", { class: "editor-actions" }, use, cancel));
    const finish = (value) => { picker.close(); resolve(value); };
    use.addEventListener("click", () => finish(selected));
    cancel.addEventListener("click", () => finish(null));
    picker.addEventListener("cancel", () => resolve(null), { once: true });
    picker.showModal();
    pickerLayer.focus();
  });
}
