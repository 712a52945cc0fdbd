"""The page: wires DOM events to the numpy core. The only module that touches the browser.

Everything computed here comes from network.py / render.py / state.py, the
same modules pytest runs in CPython. This file only fetches files, sets
innerHTML and attributes, and listens for events.
"""

import asyncio
import time

import js
import pyodide_js
from pyodide.ffi import create_proxy
from pyscript import document, window

STAGES = ("runtime", "numpy", "model", "data")


def el(element_id):
    return document.getElementById(element_id)


def set_status(state, text, stage=None):
    status = el("status")
    status.dataset.state = state
    if stage is not None:
        status.dataset.stage = stage
        el("progress").value = STAGES.index(stage) + 1
    el("status-text").textContent = text


class LoadError(Exception):
    """A file the page needs could not be fetched; the message names it."""


async def fetch_bytes(url):
    try:
        response = await js.fetch(url)
    except Exception as exc:  # network failure: the browser gives a TypeError
        raise LoadError(f"{url} could not be fetched ({exc})") from None
    if not response.ok:
        raise LoadError(f"{url} could not be loaded (HTTP {response.status} {response.statusText})")
    buffer = await response.arrayBuffer()
    return buffer.to_bytes()


class Page:
    """The running page: the loaded network and test set, and what is shown."""

    def __init__(self, nw, render, state, network, testset):
        self.nw, self.render, self.state_mod = nw, render, state
        self.network, self.testset = network, testset
        self.units = {layer.name: layer.units for layer in network.layers}
        self.rng = __import__("numpy").random.default_rng()
        self.shown = None

    def current_state(self):
        return self.state_mod.parse(str(window.location.hash), self.units, len(self.testset))

    def show(self, *_):
        t0 = time.perf_counter()
        state = self.current_state()
        index = state.sample if state.sample is not None else 0
        key = (index, state.neuron, tuple(sorted((k, tuple(v)) for k, v in state.knocked_out.items())))
        if key == self.shown:
            return
        self.shown = key
        view = self.render.view_for_sample(self.network, self.testset, index, state.knocked_out, state.neuron)
        focused = document.activeElement
        refocus = (focused.dataset.layer, focused.dataset.index) if focused and focused.classList.contains("neuron") else None
        el("view").innerHTML = self.render.network_view(self.network, view)
        if refocus:
            again = document.querySelector(f'.neuron[data-layer="{refocus[0]}"][data-index="{refocus[1]}"]')
            if again:
                again.focus()
        el("view").dataset.updateMs = f"{(time.perf_counter() - t0) * 1000:.3f}"

    def random_sample(self, *_):
        current = self.current_state().sample
        index = current
        while index == current:
            index = int(self.rng.integers(len(self.testset)))
        state = self.current_state().with_(sample=index)
        window.location.hash = self.state_mod.format(state)  # the hashchange listener draws it


async def start():
    set_status("loading", "Loading numpy…", "numpy")
    try:
        await pyodide_js.loadPackage("numpy", checkIntegrity=True)
    except Exception as exc:
        raise LoadError(f"numpy could not be loaded from vendor/pyodide ({exc})") from None
    from pyscript_app import network as nw
    from pyscript_app import render, state

    set_status("loading", "Loading the model and the test digits…", "model")
    manifest = nw.parse_manifest(await fetch_bytes("model/" + nw.MANIFEST_NAME))
    model_names = nw.model_files(manifest)
    data_name = nw.dataset_files(manifest)[0]
    data_task = asyncio.ensure_future(fetch_bytes(_join("model/", data_name)))
    blobs = await asyncio.gather(*[fetch_bytes("model/" + f) for f in model_names])
    network = nw.build_network(manifest, dict(zip(model_names, blobs)))
    set_status("loading", "Loading the 10,000 MNIST test digits…", "data")
    testset = nw.build_testset(manifest, await data_task)

    page = Page(nw, render, state, network, testset)
    page.show()
    window.addEventListener("hashchange", create_proxy(page.show))
    button = el("random-sample")
    button.addEventListener("click", create_proxy(page.random_sample))
    button.disabled = False
    el("facts").innerHTML = render.model_facts(manifest)
    document.body.dataset.ready = "true"
    set_status("ready", "Ready: click a button, or any neuron.")
    return page


def _join(base, relative):
    """model/ + ../data/x.npz -> data/x.npz (URLs relative to the page)."""
    parts = []
    for part in (base + relative).split("/"):
        if part == "..":
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/".join(parts)


async def main():
    t0 = time.perf_counter()
    try:
        page = await start()
    except Exception as exc:
        message = str(exc) or type(exc).__name__
        set_status("error", f"The page could not start: {message}")
        js.console.warn(f"nn-visualizer: {type(exc).__name__}: {message}")
        return None
    js.console.info(f"nn-visualizer: Python side ready in {(time.perf_counter() - t0) * 1000:.0f} ms")
    return page


PAGE = await main()  # noqa: F704 (top-level await: PyScript runs this module asynchronously)
