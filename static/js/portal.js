// Small progressive enhancements; the portal works without JavaScript except for live updates.
document.addEventListener("htmx:afterSwap", (event) => {
  // Move focus to swapped regions that ask for it, so screen-reader users hear the new content.
  const target = event.detail.target;
  if (target && target.hasAttribute("data-focus-on-swap")) {
    target.setAttribute("tabindex", "-1");
    target.focus();
  }
});
