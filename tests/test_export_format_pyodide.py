"""export_format.py in the browser's interpreter: the vendored Pyodide (under Node) reads and checks an export.

The site's own runtime (site/vendor/pyodide, trimmed and compiled as the page
gets it) runs the module unchanged: it reads a zip written by CPython, checks
it, refuses a broken one with the same message as CPython, and writes a zip
that CPython reads back.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from conftest import ROOT, SITE
from pyscript_app.core import export_format as ef
from pyscript_app.core import network as nw
from test_export_format import make_export

PYODIDE = SITE / "vendor" / "pyodide"
# the core package: numpy and the standard library only, so it runs as it is
MODULES = ["__init__.py", *(f"core/{p.name}" for p in sorted((ROOT / "pyscript_app" / "core").glob("*.py")))]

RUNNER_JS = r"""
const [indexURL, appDir, zipPath, brokenPath, outPath, code] = process.argv.slice(2);
const { pathToFileURL } = await import("node:url");
const fs = await import("node:fs");
const { loadPyodide } = await import(pathToFileURL(indexURL + "pyodide.mjs").href);
const pyodide = await loadPyodide({ indexURL });
await pyodide.loadPackage("numpy");
pyodide.FS.mkdirTree("/app/pyscript_app/core");
for (const name of fs.readdirSync(appDir, { recursive: true })) {
  if (name.endsWith(".py")) pyodide.FS.writeFile("/app/pyscript_app/" + name, fs.readFileSync(appDir + "/" + name));
}
pyodide.FS.writeFile("/good.zip", fs.readFileSync(zipPath));
pyodide.FS.writeFile("/broken.zip", fs.readFileSync(brokenPath));
pyodide.runPython(code);
fs.writeFileSync(outPath, pyodide.FS.readFile("/out.json"));
fs.writeFileSync(outPath + ".zip", pyodide.FS.readFile("/written.zip"));
"""

RUNNER_PY = r"""
import json, sys
sys.path.insert(0, "/app")
from pyscript_app.core import export_format as ef, network as nw
files = ef.read_zip(open("/good.zip", "rb").read(), "good.zip")
manifest, arrays = ef.load_export(files, "good.zip")
try:
    ef.load_export(ef.read_zip(open("/broken.zip", "rb").read(), "broken.zip"), "broken.zip")
    broken = None
except nw.ExportError as exc:
    broken = str(exc)
open("/written.zip", "wb").write(ef.write_zip(files))
json.dump({"shapes": [[list(w.shape), list(b.shape)] for w, b in arrays],
           "sums": [[float(w.astype("float64").sum()), float(b.astype("float64").sum())] for w, b in arrays],
           "broken": broken, "id": manifest["id"]}, open("/out.json", "w"))
"""


def test_export_format_runs_in_the_pages_pyodide(tmp_path):
    if not (PYODIDE / "pyodide.mjs").is_file() or shutil.which("node") is None:
        pytest.skip("needs the vendored runtime (make site) and Node")
    manifest, files, arrays = make_export()
    (tmp_path / "good.zip").write_bytes(ef.write_zip(files))
    broken = dict(files)
    del broken["hidden_2_weights.npy"]
    (tmp_path / "broken.zip").write_bytes(ef.write_zip(broken))
    app = tmp_path / "app"
    (app / "core").mkdir(parents=True)
    for name in MODULES:
        shutil.copy(ROOT / "pyscript_app" / name, app / name)
    (tmp_path / "run.mjs").write_text(RUNNER_JS)
    result = subprocess.run(
        ["node", str(tmp_path / "run.mjs"), f"{PYODIDE}/", str(app), str(tmp_path / "good.zip"),
         str(tmp_path / "broken.zip"), str(tmp_path / "out.json"), RUNNER_PY],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["id"] == manifest["id"]
    assert out["shapes"] == [[list(w.shape), list(b.shape)] for w, b in arrays]
    for (ws, bs), (w, b) in zip(out["sums"], arrays):
        assert ws == float(w.astype("float64").sum()) and bs == float(b.astype("float64").sum())
    with pytest.raises(nw.ExportError) as cpython:
        ef.load_export(ef.read_zip((tmp_path / "broken.zip").read_bytes(), "broken.zip"), "broken.zip")
    assert out["broken"] == str(cpython.value) == "hidden_2_weights.npy is missing from broken.zip (manifest.json names it in layers[1].weights.file)"
    written = (tmp_path / "out.json.zip").read_bytes()
    assert written == ef.write_zip(files)  # the same bytes as CPython writes
