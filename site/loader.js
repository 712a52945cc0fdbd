// The tiny loader: starts PyScript, and makes sure a failure to start ends in a
// readable message in the page (never a blank page or an endless spinner).
// Everything else on the page is Python (pyscript_app/).
const status = document.getElementById("status");
const text = document.getElementById("status-text");
const pageFetch = window.fetch.bind(window);

// Files the start-up needs only once Python runs (numpy, the model, the test digits): fetched now,
// in parallel with the runtime's start, and each response handed to the first plain fetch() of it.
// (A <link rel=preload> would do the same, but the browser warns about every preload still unused
// a few seconds after the load event, which on a slow machine they all are.) A request with an
// integrity (Pyodide's, for the numpy wheel) gets the bytes only if they match it.
const early = new Map();
try {
  for (const path of JSON.parse(document.getElementById("early-fetches").textContent)) {
    const url = new URL(path, document.baseURI).href;
    const response = pageFetch(url);
    response.catch(() => null); // a failure is reported when the file is asked for
    early.set(url, response);
  }
} catch (error) {
  console.warn(`nn-visualizer: no early fetches (${error.message})`);
}

async function withIntegrity(response, integrity) {
  const bytes = await response.arrayBuffer();
  const [algorithm, want] = integrity.split(/-(.*)/s);
  const digest = new Uint8Array(await crypto.subtle.digest(algorithm.replace("sha", "SHA-"), bytes));
  if (btoa(String.fromCharCode(...digest)) !== want) {
    throw new TypeError(`Failed integrity check for ${response.url || "a resource"} (${integrity})`);
  }
  return new Response(bytes, { status: response.status, statusText: response.statusText, headers: response.headers });
}

window.fetch = function fetch(input, init) {
  const url = typeof input === "string" || input instanceof URL ? new URL(input, document.baseURI).href : null;
  const options = Object.keys(init || {});
  if (url && early.has(url) && options.every((key) => key === "integrity" || (key === "method" && /^get$/i.test(init.method)))) {
    const response = early.get(url);
    early.delete(url);
    return init && init.integrity && globalThis.crypto && crypto.subtle
      ? response.then((r) => withIntegrity(r, init.integrity)) : response;
  }
  return pageFetch(input, init);
};

// A damaged file is the cause of whatever failed after it: its message replaces an earlier one.
let damaged = false;
function fail(message, { damage = false } = {}) {
  if (status.dataset.state === "error" && (damaged || !damage)) return; // keep the first, most specific message
  damaged = damaged || damage;
  status.dataset.state = "error";
  status.setAttribute("role", "alert");
  text.textContent = message;
}

// In an error state the page must not look live: body[data-ready=failed] greys the view out
// under a "Not running" notice (style.css), whoever set the error (this loader or main.py).
const notice = document.createElement("div");
notice.id = "not-running";
notice.setAttribute("role", "note");
notice.hidden = true;
notice.innerHTML = "<strong>Not running.</strong> The view below is the last one shown, not a live result. "
  + "Reload the page to try again. If the same message comes back, this copy of the site is incomplete "
  + "or damaged: build it again (<code>make site</code>) or download it again.";
const markFailed = () => {
  if (status.dataset.state !== "error") return;
  document.body.dataset.ready = "failed";
  notice.hidden = false;
  if (!notice.isConnected) document.querySelector("main").prepend(notice);
  for (const button of document.querySelectorAll(".controls button")) button.disabled = true;
};
new MutationObserver(markFailed).observe(status, { attributes: true, attributeFilter: ["data-state"] });

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
//
// A runtime file that arrives damaged (truncated, corrupted) often gives no error at all: a broken
// wasm binary stalls the start, a wheel failing Pyodide's integrity check only logs it. So each
// runtime file, once the runtime has downloaded it, is read again (from the HTTP cache, or the
// service worker's: no second download) and checked against the sha256 the build wrote into the
// page (#runtime-files). A mismatch names the file.
const expected = new Map();
try {
  const listed = JSON.parse(document.getElementById("runtime-files").textContent);
  for (const [path, [sri, size]] of Object.entries(listed)) {
    expected.set(new URL(path, document.baseURI).pathname, { path, sri, size });
  }
} catch (error) {
  console.warn(`nn-visualizer: no list of runtime files to check (${error.message})`);
}
const checked = new Set();

// The reading and hashing happen in a worker (check.js): see there why.
let checker = null;
function check(url) {
  const pathname = new URL(url).pathname, want = expected.get(pathname);
  if (!want || checked.has(pathname) || !(globalThis.crypto && crypto.subtle) || typeof Worker !== "function") return;
  checked.add(pathname);
  if (!checker) {
    checker = new Worker(new URL("./check.js", import.meta.url));
    checker.onmessage = ({ data: { url: done, problem } }) => {
      if (!problem) return;
      const { path } = expected.get(new URL(done).pathname);
      const { kind, detail } = problem;
      fail(kind === "damaged" ? `A file of the page is damaged: ${path} (${detail}).`
        : kind === "missing" ? `A file of the page failed to load: ${path} (${detail}: missing on the server)`
        : `A file of the page could not be read: ${path} (${detail})`,
        { damage: true });
    };
  }
  checker.postMessage({ url, sri: want.sri, size: want.size });
}

if (typeof PerformanceObserver === "function") {
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (entry.responseStatus >= 400 && status.dataset.state === "loading") {
        fail(`A file of the page failed to load: ${new URL(entry.name).pathname} (HTTP ${entry.responseStatus})`);
      }
      check(entry.name); // also after ready: a damaged file the start-up happened to survive is still damaged
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
  // Not reached in practice: browsers refuse module scripts from file://, so patch.js
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
