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
