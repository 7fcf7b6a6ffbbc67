// Small progressive enhancements; the portal works without JavaScript except for live updates.
document.addEventListener("htmx:afterSwap", (event) => {
  // Move focus to swapped regions that ask for it, so screen-reader users hear the new content.
  const target = event.detail.target;
  if (target && target.hasAttribute("data-focus-on-swap")) {
    target.setAttribute("tabindex", "-1");
    target.focus();
  }
});
document.addEventListener("htmx:beforeSwap", (event) => {
  // Regions marked data-htmx-errors show a refused request's field messages (HTTP 400) in place.
  const target = event.detail.target;
  if (event.detail.xhr.status === 400 && target && target.closest("[data-htmx-errors]")) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
// A page that answers a POST with something shown once (a new credential) names its own address
// (data-shown-once-at): reloading then opens that page instead of posting again, which would
// issue another credential and void the one just shown.
const shownOnce = document.querySelector("[data-shown-once-at]");
if (shownOnce) history.replaceState(null, "", shownOnce.dataset.shownOnceAt);
