"""Run Python in the site's vendored Pyodide under Node.js, with numpy, and get its output back.

    from pyodide_node import run_python
    out = run_python("import numpy; print(numpy.__version__)", site / "vendor" / "pyodide")

The repository is mounted read-only at ``/repo`` (so ``import pyscript_app``
works after ``sys.path.insert(0, "/repo")``); the code's standard output comes
back as text. The browser's numpy is this very wheel (no BLAS), so what runs
here is what runs in the page, minus the page.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

RUNNER_JS = r"""
const [indexURL, repo, scriptPath] = process.argv.slice(2);
const { pathToFileURL } = await import("node:url");
const fs = await import("node:fs");
const { loadPyodide } = await import(pathToFileURL(indexURL + "pyodide.mjs").href);
const pyodide = await loadPyodide({ indexURL, stdout: (line) => console.log(line), stderr: (line) => console.error(line) });
await pyodide.loadPackage("numpy", { messageCallback: () => {}, errorCallback: (m) => console.error(m) });
pyodide.FS.mkdir("/repo");
pyodide.FS.mount(pyodide.FS.filesystems.NODEFS, { root: repo }, "/repo");
await pyodide.runPythonAsync(fs.readFileSync(scriptPath, "utf8"));
"""


class PyodideError(RuntimeError):
    pass


def pyodide_dir(site: Path = ROOT / "site") -> Path:
    folder = Path(site) / "vendor" / "pyodide"
    if not (folder / "pyodide.mjs").is_file():
        raise PyodideError(f"{folder} has no pyodide.mjs: build the site first (make site)")
    return folder


def run_python(code: str, pyodide: Path | None = None, repo: Path = ROOT, timeout: float = 600, node: str = "node") -> str:
    """Run ``code`` in Pyodide under Node; return its standard output (PyodideError on failure)."""
    pyodide = Path(pyodide) if pyodide else pyodide_dir()
    with tempfile.TemporaryDirectory(prefix="pyodide-node-") as tmp:
        runner = Path(tmp) / "run.mjs"
        runner.write_text(RUNNER_JS)
        script = Path(tmp) / "script.py"
        script.write_text(code)
        try:
            done = subprocess.run([node, str(runner), str(pyodide.resolve()) + "/", str(Path(repo).resolve()), str(script)],
                                  capture_output=True, text=True, timeout=timeout)
        except FileNotFoundError:
            raise PyodideError(f"`{node}` was not found: Node.js is needed (as for npm ci)") from None
        except subprocess.TimeoutExpired:
            raise PyodideError(f"Pyodide under Node did not finish within {timeout:.0f} s") from None
    if done.returncode != 0:
        raise PyodideError(f"Pyodide under Node failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    return done.stdout


def last_json(output: str):
    """The last line of ``output`` that is a JSON value (what a script printed as its result)."""
    for line in reversed(output.strip().splitlines()):
        try:
            return json.loads(line)
        except ValueError:
            continue
    raise PyodideError(f"no JSON result in the output: {output[-500:]!r}")
