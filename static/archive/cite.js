// "Cite this source": a Copy button for each format copies exactly the text shown.
// Without the Clipboard API (a page not served over HTTPS, say) the text is selected and
// copied the old way, or left selected for the reader to copy; either way a polite live
// region says what happened. The buttons stay hidden until this script shows them.

const box = document.getElementById("cite-box");

function announce(status, message) {
  // Emptied first, so that the same message twice is announced twice.
  status.textContent = "";
  requestAnimationFrame(() => { status.textContent = message; });
}

function select(element) {
  const range = document.createRange();
  range.selectNodeContents(element);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

async function copyText(text) {
  if (!navigator.clipboard || !window.isSecureContext) return false;
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

if (box) {
  const status = box.querySelector(".cite-status");
  for (const button of box.querySelectorAll("button.copy")) button.hidden = false;
  box.addEventListener("click", async (event) => {
    const button = event.target.closest("button.copy");
    if (!button) return;
    const shown = document.getElementById(button.dataset.copyFrom);
    const what = button.getAttribute("aria-label").replace(/^Copy /, "");
    if (await copyText(shown.textContent)) {
      announce(status, `Copied ${what}`);
      return;
    }
    select(shown);
    let copied = false;
    try { copied = document.execCommand("copy"); } catch { copied = false; }
    announce(status, copied ? `Copied ${what}` : `${what} selected: press Ctrl+C (⌘C on a Mac) to copy it`);
  });
}
