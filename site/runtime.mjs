// The Python runtime, started at once (start-up speed, issue 7).
//
// PyScript's config names this module as its interpreter ("interpreter": "./runtime.mjs").
// PyScript imports it only after about 0.3 s of its own start-up work and then calls
// loadPyodide(); loader.js imports it first thing instead, so Pyodide is already starting
// (and then fetching and compiling numpy) while PyScript loads. PyScript gets that same
// instance, with its own stdout/stderr handlers attached.
//
// Only JavaScript can do this: it is the moment before any Python exists.
import { loadPyodide as loadVendored, version } from "./vendor/pyodide/pyodide.mjs";

export { version };

const indexURL = new URL("./vendor/pyodide/", import.meta.url).href;

// Started when this module is first evaluated (by loader.js, which reports a failure).
export const started = loadVendored({ indexURL });

// numpy: fetched and compiled as soon as the interpreter exists, while PyScript sets itself up.
// The app (main.py) still calls loadPackage("numpy") itself: that call waits for this one, and it
// is the one that reports a failure in the page (a second attempt gives the same, specific error).
started.then((pyodide) => pyodide.loadPackage("numpy", { checkIntegrity: true, messageCallback: () => {} }))
  .catch(() => {});

// What PyScript calls (with { indexURL, stdout, stderr }): the instance started above.
export async function loadPyodide({ stdout, stderr } = {}) {
  const pyodide = await started;
  if (stdout) pyodide.setStdout({ batched: stdout });
  if (stderr) pyodide.setStderr({ batched: stderr });
  return pyodide;
}
