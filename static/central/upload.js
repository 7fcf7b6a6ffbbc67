// Chunked, resumable upload of an OMOP extract (central/api.py): hash the whole file in slices
// (filehash.js: memory stays one slice, whatever the file's size), create the upload with that
// SHA-256, send each chunk with its offset and SHA-256, then complete. After a failure the upload
// resumes from the server's received_bytes (also after a reload: the id is kept per file).
import { sha256OfFile } from "./filehash.js";

(function () {
  "use strict";

  function hex(buffer) {
    return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function sha256(data) {
    return hex(await crypto.subtle.digest("SHA-256", data));
  }

  function messageOf(body) {
    const error = body && body.error;
    if (!error) return "The upload failed.";
    const fields = Object.values(error.fields || {}).flat();
    return fields.length ? fields.join(" ") : error.message;
  }

  async function call(url, options, csrf) {
    const headers = Object.assign({ "X-CSRFToken": csrf, Accept: "application/json" }, options.headers || {});
    const response = await fetch(url, Object.assign({}, options, { headers, credentials: "same-origin" }));
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      const err = new Error(messageOf(body));
      err.status = response.status;
      throw err;
    }
    return body;
  }

  function start(form) {
    const input = form.querySelector("input[type=file]");
    const bar = document.getElementById("central-progress");
    const text = document.getElementById("central-progress-text");
    const errorBox = document.getElementById("central-error");
    const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
    const api = form.dataset.api;
    const chunkSize = parseInt(form.dataset.chunk, 10);

    function percentOf(done, total) {
      const percent = total ? Math.floor((100 * done) / total) : 100;
      bar.value = percent;
      bar.textContent = percent + "%";
      return percent;
    }

    function show(sent, total) {
      text.textContent = percentOf(sent, total) + "% sent (" + sent + " of " + total + " bytes)";
    }

    function showChecking(read, total) {
      text.textContent = "Checking file " + percentOf(read, total) + "%";
    }

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      errorBox.hidden = true;
      const file = input.files[0];
      if (!file) return;
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        showChecking(0, file.size);
        const whole = await sha256OfFile(file, chunkSize, showChecking);
        show(0, file.size);
        const key = "central-upload:" + form.dataset.dataset + ":" + whole;
        let upload = null;
        const known = window.localStorage.getItem(key);
        if (known) {
          upload = await call(api + known + "/", { method: "GET" }, csrf).catch(() => null);
          if (upload && upload.status !== "receiving") upload = null;
        }
        if (!upload) {
          upload = await call(api, {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ dataset: parseInt(form.dataset.dataset, 10), filename: file.name, size: file.size, sha256: whole }),
          }, csrf);
          window.localStorage.setItem(key, String(upload.id));
        }
        let offset = upload.received_bytes;
        let failures = 0;
        while (offset < file.size) {
          const chunk = await file.slice(offset, offset + chunkSize).arrayBuffer();
          try {
            upload = await call(api + upload.id + "/chunk/", {
              method: "PUT",
              headers: { "Content-Type": "application/octet-stream", "Upload-Offset": String(offset), "Chunk-SHA256": await sha256(chunk) },
              body: chunk,
            }, csrf);
            failures = 0;
          } catch (err) {
            failures += 1;
            if (failures > 5 || (err.status && err.status !== 400 && err.status < 500)) throw err;
            upload = await call(api + upload.id + "/", { method: "GET" }, csrf);
          }
          offset = upload.received_bytes;
          show(offset, file.size);
        }
        upload = await call(api + upload.id + "/complete/", { method: "POST" }, csrf);
        window.localStorage.removeItem(key);
        window.location.assign(form.dataset.page.replace(/0\/$/, upload.id + "/"));
      } catch (err) {
        errorBox.textContent = err.message;
        errorBox.hidden = false;
        button.disabled = false;
      }
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const form = document.getElementById("central-upload-form");
    if (form) start(form);
  });
})();
