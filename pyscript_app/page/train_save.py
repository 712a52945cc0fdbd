"""Train mode's Save: the network being trained as an export ``.zip`` (the same format as
``export_weights.py --zip``; "Open your own" and ``--from-export`` accept it), downloaded by the browser."""

import js
from pyodide.ffi import create_proxy, to_js
from pyscript import window

from pyscript_app.core import export_write
from pyscript_app.views import train_view
from pyscript_app.page.dom import js_object


def export_zip(trainer, model_id, data_manifest, test_accuracy):
    """The export of ``trainer``'s weights as .zip bytes (ValueError: they cannot be exported, say diverged).
    ``test_accuracy`` is stated when it was measured on these weights (else None)."""
    test = data_manifest.get("test")
    manifest, files = trainer.to_export(model_id=model_id, title=train_view.trained_title(trainer.sizes),
                                        dataset=test and {k: test[k] for k in ("file", "sha256", "count")},
                                        test_accuracy=test_accuracy)
    return export_write.zip_bytes(manifest, files)


def download(data, name):
    """Hand ``data`` to the browser as a download called ``name``."""
    blob = js.Blob.new(to_js([js.Uint8Array.new(to_js(data))]), js_object(type="application/zip"))
    url = js.URL.createObjectURL(blob)
    link = js.document.createElement("a")
    link.href, link.download = url, name
    js.document.body.appendChild(link)
    link.click()
    link.remove()
    window.setTimeout(create_proxy(lambda *_: js.URL.revokeObjectURL(url)), 10_000)


def save(trainer, model_id, data_manifest, test_accuracy):
    """Download the export of ``trainer``'s weights; the reason as a message if it cannot be made, else None."""
    try:
        data = export_zip(trainer, model_id, data_manifest, test_accuracy)
    except ValueError as exc:
        return str(exc)
    download(data, f"trained-{train_view.shape_text(trainer.sizes)}-step{trainer.steps}.zip")
    return None
