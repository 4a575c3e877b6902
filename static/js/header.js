// The site header on narrow screens: its links fold behind a Menu button.
const header = document.querySelector(".site-header");
const button = header?.querySelector(".menu-button");
const menu = document.getElementById("site-menu");

if (header && button && menu) {
  header.classList.add("has-menu");
  button.hidden = false;
  const setOpen = (open) => {
    menu.classList.toggle("open", open);
    button.setAttribute("aria-expanded", String(open));
  };
  button.addEventListener("click", () => setOpen(button.getAttribute("aria-expanded") !== "true"));
  menu.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && button.getAttribute("aria-expanded") === "true" && getComputedStyle(button).display !== "none") {
      setOpen(false);
      button.focus();
    }
  });
}
