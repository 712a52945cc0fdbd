"""The models: the shipped ones (models/index.json), the user's own, the picker and "Open your own".

Browser-side. A shipped model's files are fetched once, when it is first
shown; a model opened by the user is read from the files they chose or
dropped (nothing leaves the browser) and checked by the same loader as the
shipped ones (export_format). A refused file is named in #open-model-error,
and the model on screen stays as it was.
"""

import asyncio

from pyscript_app.core import explain

from pyscript_app.views import render
from pyscript_app.core import export_format as fmt
from pyscript_app.core import network as nw
from pyscript_app.page.dom import el, fetch_bytes, listen


class Models:
    """Every model the page knows: id -> manifest (None until fetched), the networks loaded."""

    def __init__(self, index, testset, names=None):
        nw.check_models_index(index)
        self.default = index["default"]
        self.shipped = list(index["models"])
        self.order = list(self.shipped)  # the picker's order: the shipped models, then the user's
        self.manifests = {m: None for m in self.shipped}
        self.networks = {}
        self.user = set()
        self.testset = testset
        self.loading = {}  # id -> the task fetching it
        self.names = dict(names or {})  # id -> the picker's text for a model whose manifest is not fetched yet

    def ids(self):
        return list(self.order)

    async def network(self, model_id):
        """The network of a model, fetched (once) and checked first if need be."""
        if model_id in self.networks:
            return self.networks[model_id]
        if model_id not in self.loading:
            self.loading[model_id] = asyncio.ensure_future(self._fetch(model_id))
        try:
            return await self.loading[model_id]
        finally:
            self.loading.pop(model_id, None)

    async def _fetch(self, model_id):
        base = f"models/{model_id}/"
        name = f"{model_id}/{nw.MANIFEST_NAME}"
        manifest = nw.parse_manifest(await fetch_bytes(base + nw.MANIFEST_NAME), name)
        files = nw.model_files(manifest)
        blobs = await asyncio.gather(*[fetch_bytes(base + f) for f in files])
        return self.add(model_id, manifest, dict(zip(files, blobs)), name)

    def add(self, model_id, manifest, files, name, user=False):
        network = nw.build_network(manifest, files, name)
        nw.check_fits(network, self.testset, name)
        explain.fill_activation_stats(network, self.testset)  # (exports usually state them: then free)
        self.manifests[model_id] = manifest
        self.networks[model_id] = network
        if user:
            self.user.add(model_id)
            if model_id not in self.order:
                self.order.append(model_id)
        return network

    def install(self, model_id, network, manifest):
        """A model built in the page (Train mode's network): added to the picker, or replacing itself."""
        self.manifests[model_id] = manifest
        self.networks[model_id] = network
        if model_id not in self.order:
            self.order.append(model_id)

    def set_test_accuracy(self, model_id, value):
        """Record the test accuracy measured on the weights of ``model_id`` (None: not measured on these);
        True if that changed what its card says."""
        manifest = self.manifests.get(model_id)
        if manifest is None:
            return False
        training = manifest.setdefault("training", {})
        if training.get("test_accuracy") == value:
            return False
        training["test_accuracy"] = value
        return True

    def picker_html(self, current):
        options = render.model_picker([(m, self.manifests.get(m), m in self.user) for m in self.order], current)
        for model_id, name in self.names.items():  # (the build's names, until the manifests come)
            if self.manifests.get(model_id) is None:
                options = options.replace(f'value="{model_id}">{model_id}<', f'value="{model_id}">{render.html.escape(name)}<', 1)
        return options

    def card_html(self, model_id):
        return render.model_card(model_id, self.manifests[model_id], model_id in self.user)

    # --- the user's own
    def next_user_id(self):
        k = 1
        while f"own-{k}" in self.manifests:
            k += 1
        return f"own-{k}"


def export_files(picked):
    """[(file name, bytes)] the user gave -> (files by name, the name to cite for the manifest).

    One .zip is opened (its files at the top or in one folder); otherwise the
    files are the export's own: a manifest.json (or the one .json given) and its .npy files.
    """
    if len(picked) == 1 and picked[0][0].lower().endswith(".zip"):
        zip_name, data = picked[0]
        return fmt.read_zip(data, zip_name), f"{zip_name}: {nw.MANIFEST_NAME}"
    files = dict(picked)
    if nw.MANIFEST_NAME not in files:
        jsons = [n for n in files if n.lower().endswith(".json")]
        if len(jsons) != 1:
            names = ", ".join(sorted(files)) or "nothing"
            raise nw.ExportError(
                f"no {nw.MANIFEST_NAME} among the files given ({names}): open the export's .zip, "
                f"or its {nw.MANIFEST_NAME} together with its .npy files"
            )
        files[nw.MANIFEST_NAME] = files.pop(jsons[0])
        return files, jsons[0]
    return files, nw.MANIFEST_NAME


def open_user_model(models, picked):
    """Check the files the user gave and add their model; returns its id (ExportError if refused)."""
    files, name = export_files(picked)
    manifest = nw.parse_manifest(files[nw.MANIFEST_NAME], name)
    model_id = models.next_user_id()
    models.add(model_id, manifest, files, name, user=True)
    return model_id


class OpenYourOwn:
    """#open-model (a file input) and drag-and-drop onto the page."""

    def __init__(self, page):
        self.page = page
        self.input = el("open-model")
        listen(self.input, "change", self.on_change)
        from pyscript import document

        listen(document, "dragover", self.on_dragover)
        listen(document, "drop", self.on_drop)
        self.input.disabled = False

    def on_change(self, *_):
        files = [self.input.files.item(i) for i in range(self.input.files.length)]
        asyncio.ensure_future(self.open(files))

    def on_dragover(self, event):
        if event.dataTransfer is not None:
            event.preventDefault()
            event.dataTransfer.dropEffect = "copy"

    def on_drop(self, event):
        if event.dataTransfer is None or not event.dataTransfer.files.length:
            return
        event.preventDefault()
        files = event.dataTransfer.files
        asyncio.ensure_future(self.open([files.item(i) for i in range(files.length)]))

    async def open(self, files):
        page = self.page
        try:
            picked = [(str(f.name), (await f.arrayBuffer()).to_bytes()) for f in files]
            model_id = open_user_model(page.models, picked)
        except nw.ExportError as exc:
            page.show_model_error(str(exc))
            return
        except Exception as exc:  # noqa: BLE001 (an unreadable file, say): named, the page goes on
            page.show_model_error(f"the files could not be read ({type(exc).__name__}: {exc})")
            return
        finally:
            self.input.value = ""  # the same file can be opened again
        page.show_model_error("")
        page.go(model=model_id)
