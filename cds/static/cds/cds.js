// Clinical decision support: let a region opt in to showing 400 answers (field messages) from htmx.
document.addEventListener("htmx:beforeSwap", (event) => {
  const target = event.detail.target;
  if (event.detail.xhr.status === 400 && target && target.hasAttribute("data-swap-400")) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
