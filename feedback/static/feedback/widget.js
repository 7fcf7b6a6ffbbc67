// The feedback button's panel: show the form's field errors (HTTP 400) and let people close it.
document.addEventListener("htmx:beforeSwap", (event) => {
  const target = event.detail.target;
  if (event.detail.xhr.status === 400 && target && target.closest(".feedback-form, .feedback-panel, #feedback-comments, .feedback-vote")) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
document.addEventListener("click", (event) => {
  const close = event.target.closest("[data-feedback-close]");
  if (!close) return;
  const panel = close.closest(".feedback-panel");
  if (panel) {
    panel.innerHTML = "";
    const button = document.getElementById("feedback-button");
    if (button) button.focus();
  } else {
    window.location.assign("/feedback/");
  }
});
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  const panel = document.getElementById("feedback-panel");
  if (!panel || !panel.contains(document.activeElement)) return;
  panel.innerHTML = "";
  const button = document.getElementById("feedback-button");
  if (button) button.focus();
});
