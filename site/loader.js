// The tiny loader: starts PyScript, and makes sure a failure to start ends in a
// readable message in the page (never a blank page or an endless spinner).
// Everything else on the page is Python (pyscript_app/).
const status = document.getElementById("status");
const text = document.getElementById("status-text");

function fail(message) {
  if (status.dataset.state === "error") return; // keep the first, most specific message
  status.dataset.state = "error";
  status.setAttribute("role", "alert");
  text.textContent = message;
}

// A script, stylesheet or module that fails to load (404, offline) fires a
// non-bubbling "error" event on its element: catch it in the capture phase.
addEventListener("error", (event) => {
  const t = event.target;
  if (t && t !== window && (t.src || t.href)) {
    fail(`A file of the page failed to load: ${new URL(t.src || t.href).pathname}`);
  } else if (status.dataset.state === "loading") {
    fail(`The page could not start: ${event.message || "unknown error"}`);
  }
}, true);

// Files fetched by the runtime itself (the wasm binary, the standard library)
// give no error event when missing: Pyodide then just stops. Resource timing
// reports their HTTP status, so a failed fetch during start-up names the file.
if (typeof PerformanceObserver === "function") {
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (entry.responseStatus >= 400 && status.dataset.state === "loading") {
        fail(`A file of the page failed to load: ${new URL(entry.name).pathname} (HTTP ${entry.responseStatus})`);
      }
    }
  }).observe({ type: "resource", buffered: true });
}

addEventListener("unhandledrejection", (event) => {
  if (status.dataset.state !== "loading") return;
  const reason = event.reason;
  fail(`The Python runtime could not start: ${(reason && reason.message) || reason}`);
});

// Watchdog: if no stage has progressed for this long, say so instead of spinning.
const STALL_SECONDS = 120;
let stall;
const rearm = () => {
  clearTimeout(stall);
  stall = setTimeout(() => {
    if (status.dataset.state === "loading") {
      fail(`Loading stopped making progress (stage: ${status.dataset.stage}) for ${STALL_SECONDS} s. Check your connection and reload.`);
    }
  }, STALL_SECONDS * 1000);
};
new MutationObserver(rearm).observe(status, { attributes: true, childList: true, subtree: true });
rearm();

if (location.protocol === "file:") {
  // Not reached in practice: browsers refuse module scripts from file://, so file-check.js
  // (a plain script) tells the user to start the page with the launcher instead.
} else {
  import("./vendor/pyscript/core.js").then(({ hooks }) => {
    // A Python exception that escapes the page's script (at import time, say) goes to PyScript's
    // stderr, and PyScript's error plugin, which would print it into the page, is off. Keep the
    // last one, so that if PyScript is done and the page never became ready, the status names it.
    let lastError = "";
    hooks.main.onReady.add((pyScript) => {
      const { stderr } = pyScript.io;
      pyScript.io.stderr = (error, ...rest) => {
        lastError = String((error && error.message) || error);
        return stderr(error, ...rest);
      };
    });
    addEventListener("py:all-done", () => {
      if (status.dataset.state !== "loading") return;
      const last = lastError.trim().split("\n").pop();
      fail(`The page's Python code stopped before it was ready: ${last || "see the browser's console"}`);
    });
  }, (error) => {
    fail(`Could not load PyScript (vendor/pyscript/core.js): ${error.message}`);
  });
}

// --- offline copy (service worker), over http(s) only: see offline.js ---
if (location.protocol !== "file:" && "serviceWorker" in navigator) {
  import("./offline.js").catch((error) => console.warn(`nn-visualizer: offline support did not load: ${error.message}`));
}
