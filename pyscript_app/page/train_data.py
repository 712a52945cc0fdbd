"""Train mode's training digits: data/manifest.json's ``train`` entry (about 10 MB), fetched when Train mode
is first opened, with progress shown in #train-data, and checked against its sha256 (the service worker
keeps the file for offline use)."""

import asyncio
import io

import js
import numpy as np

from pyscript_app.core import export_format as fmt
from pyscript_app.core import network as nw
from pyscript_app.views import train_view
from pyscript_app.page.dom import el


class TrainingDigits:
    """The training digits, once loaded (``images``, ``labels``); loaded once, again after a failure."""

    def __init__(self, spec):
        self.spec = spec  # data/manifest.json's "train" entry
        self.images = self.labels = None
        self.loading = None  # the task fetching them

    def load(self, then):
        """Start fetching the digits unless they are here or on their way; ``then()`` once they are here."""
        if self.images is None and self.loading is None:
            self.loading = asyncio.ensure_future(self.fetch(then))

    async def fetch(self, then):
        status, spec = el("train-data"), self.spec
        try:
            if not isinstance(spec, dict) or not fmt.is_plain_file_name(spec.get("file")):
                raise nw.ExportError(f"{nw.DATA_MANIFEST} has no valid 'train' entry")
            data = await fetch_with_progress("data/" + spec["file"], status)
            if fmt.sha256(data) != spec["sha256"]:
                raise nw.ExportError(f"data/{spec['file']} is corrupt: its sha256 does not match {nw.DATA_MANIFEST}")
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                images, labels = npz["images"], npz["labels"]
            if images.shape[0] != spec.get("count", images.shape[0]) or labels.shape[0] != images.shape[0]:
                raise nw.ExportError(f"data/{spec['file']}: {images.shape[0]} images and {labels.shape[0]} labels, "
                                     f"the data manifest says {spec.get('count')}")
        except Exception as exc:  # noqa: BLE001 (said in the panel; Train mode can be opened again)
            status.textContent = f"The training digits could not be loaded: {exc}. Leave Train mode and open it again to retry."
            status.dataset.state = "error"
            self.loading = None
            return
        self.images, self.labels = images, labels
        status.textContent = f"{len(labels):,} training digits loaded ({len(data) / 1048576:.1f} MB, sha256 checked)."
        status.dataset.state = "ready"
        then()


async def fetch_with_progress(url, status):
    """The bytes at ``url``, read as they arrive, with "x MB of y MB" in ``status``."""
    try:
        response = await js.fetch(url)
    except Exception as exc:  # noqa: BLE001 (the browser's TypeError: offline, say)
        raise nw.ExportError(f"{url} could not be fetched ({exc})") from None
    if not response.ok:
        raise nw.ExportError(f"{url} could not be loaded (HTTP {response.status} {response.statusText})")
    length = response.headers.get("content-length")
    total = int(length) if length else None
    status.dataset.state = "loading"
    status.textContent = train_view.download_progress(0, total)
    reader = response.body.getReader()
    parts, loaded = [], 0
    while True:
        chunk = await reader.read()
        if chunk.done:
            break
        data = chunk.value.to_bytes()
        parts.append(data)
        loaded += len(data)
        status.textContent = train_view.download_progress(loaded, total)
        status.dataset.loaded, status.dataset.total = str(loaded), str(total or "")
    return b"".join(parts)
