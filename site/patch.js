// Opened from the disk (file://), the page cannot start: browsers refuse its module scripts
// (loader.js never runs) and the WebAssembly runtime there. This plain script still runs and
// says what to do instead: use the launcher that comes with the offline bundle.
if (location.protocol === "file:") {
  const status = document.getElementById("status");
  status.dataset.state = "error";
  status.setAttribute("role", "alert");
  document.getElementById("status-text").textContent =
    "This page was opened as a file (file://), where browsers do not let it start Python. " +
    "Start it with the launcher next to the site folder instead: double-click start.command (macOS), " +
    "start.bat (Windows) or start.sh (Linux), or run `python3 start.py` there; it opens the page in " +
    "your browser (README.txt says more). From the source code: `make serve`.";
}

// One call from Python updates the view in place (pyscript_app/views/render.py's view_patch says
// what to write; page/view.py calls this). Every call from Python into the page costs (Pyodide's
// proxies): a few hundred setAttribute calls one by one are slower than re-parsing the whole
// view, so they are made here, in one go. Generic on purpose: what is drawn is Python's.
//
// json, a string or its UTF-8 bytes (Pyodide hands a Python str over one character at a time,
// bytes in one copy): [[selector, html] or [selector, rows(, kept)], ...]. An html string replaces the
// one element the selector matches (outerHTML). rows are every element the selector matches, in
// document order: [tag, number of child elements, {attribute: value}, text or null]. The attributes
// are all an element has, but those named in kept, which its elements keep as they are (neither
// written nor removed: render.py's PLACE_ATTRS, alike in every view of that shape).
// Nothing is written unless every element is there with that tag and child count; then it
// returns false, and the caller renders the whole view instead.
globalThis.nnvApplyPatch = (root, json) => {
  const ops = JSON.parse(typeof json === "string" ? json : new TextDecoder().decode(json));
  const found = ops.map(([selector]) => root.querySelectorAll(selector));
  const fits = ops.every(([, what], k) => (typeof what === "string" ? found[k].length === 1
    : found[k].length === what.length
      && what.every(([tag, children], i) => found[k][i].localName === tag && found[k][i].childElementCount === children)));
  if (!fits) return false;
  ops.forEach(([, what, kept = []], k) => {
    if (typeof what === "string") {
      found[k][0].outerHTML = what;
      return;
    }
    what.forEach(([, , attrs, text], i) => {
      const node = found[k][i];
      for (const name of node.getAttributeNames()) if (!Object.hasOwn(attrs, name) && !kept.includes(name)) node.removeAttribute(name);
      for (const name in attrs) if (node.getAttribute(name) !== attrs[name]) node.setAttribute(name, attrs[name]);
      if (text === null) return;
      const only = node.firstChild;
      if (only !== null && only.nodeType === Node.TEXT_NODE && only.nextSibling === null) {
        if (only.data !== text) only.data = text;  // the text node's data: cheaper than a new node
      } else if (node.textContent !== text) {
        node.textContent = text;
      }
    });
  });
  return true;
};
