"""The page's script: starts the app in the browser. A short bootstrap; each feature is its own module.

page/: dom (elements, fetching, idle time), models (the models, the
picker, "Open your own"), view (class Page: the address, the view, switching
models, and every feature, declared when it is built), pad (drawing), card
(the neuron card, knock-outs), connections, explorer (the error explorer),
train* (Train mode), events (clicks and keys), tour. They only touch the
page; every number comes from core/ and every piece of markup from views/,
the same modules pytest runs in CPython.
"""

import asyncio
import gc
import time

import js
import pyodide_js
from pyodide.ffi import create_proxy
from pyscript import document, window

from pyscript_app.page.dom import LoadError, el, fetch_bytes, in_idle_time, listen, set_status


async def start():
    set_status("loading", "Loading numpy…", "numpy")
    try:
        await pyodide_js.loadPackage("numpy", checkIntegrity=True)
    except Exception as exc:
        raise LoadError(f"numpy could not be loaded from vendor/pyodide ({exc})") from None
    import json

    from pyscript_app.core import network as nw
    from pyscript_app.core import state
    from pyscript_app.page.atlas import Atlas
    from pyscript_app.page.card import Card
    from pyscript_app.page.connections import Connections
    from pyscript_app.page.events import on_click, on_keydown, on_pick
    from pyscript_app.page.explorer import Explorer
    from pyscript_app.page.models import Models, OpenYourOwn
    from pyscript_app.page import tour as tour_page
    from pyscript_app.page.pad import Pad
    from pyscript_app.page.receptive import Receptive
    from pyscript_app.page.train import Train
    from pyscript_app.page.view import Page
    from pyscript_app.page.why import Why

    set_status("loading", "Loading the model and the test digits…", "model")
    index_task = asyncio.ensure_future(fetch_bytes("models/index.json"))
    data_manifest = nw.parse_data_manifest(await fetch_bytes(nw.DATA_MANIFEST))
    data_task = asyncio.ensure_future(fetch_bytes("data/" + nw.testset_file(data_manifest)))
    try:
        index = nw.check_models_index(json.loads(await index_task))
    except ValueError as exc:
        raise nw.ExportError(f"models/index.json is not valid ({exc})") from None
    set_status("loading", f"Loading the {data_manifest['test']['count']:,} test digits…", "data")
    testset = nw.build_testset(data_manifest, await data_task)
    picker = el("model-picker")
    names = {str(o.value): str(o.textContent) for o in picker.options}  # pre-rendered by the build
    models = Models(index, testset, names)
    # the model the address names (start-up fetches only that one), else the default
    wanted = state.read(str(window.location.hash), state.Context(models=models.ids(), default_model=models.default))[0].model
    model_id = wanted or models.default
    try:
        await models.network(model_id)
    except Exception:
        if model_id == models.default:
            raise
        model_id = models.default  # the address names a model that does not load: the default, and say so below
        await models.network(model_id)
        window.history.replaceState(None, "", str(window.location.pathname))

    page = Page(models, testset, model_id, data_manifest, card=Card, connections=Connections, explorer=Explorer,
                pad=Pad, train=Train, open_your_own=OpenYourOwn, why=Why, atlas=Atlas,
                receptive=Receptive)
    if model_id != models.default:
        page.draw_model_parts()
    page.draw_picker()  # every model of models/index.json
    page.show(whole=model_id != models.default)
    if wanted and model_id != wanted:
        page.show_model_error(f"the model {wanted!r} named in the address could not be loaded; showing the default")
    listen(window, "hashchange", page.on_hashchange)
    button = el("random-sample")
    listen(button, "click", page.random_sample)
    button.disabled = False
    listen(document, "click", lambda event: on_click(page, event))
    listen(document, "keydown", lambda event: on_keydown(page, event))
    listen(picker, "change", lambda event: on_pick(page, event))
    listen(document, "pointermove", page.receptive.on_pointer)
    listen(document, "focusin", page.receptive.on_focus)
    picker.disabled = False
    tour_page.start()
    document.body.dataset.ready = "true"
    set_status("ready", "Ready: click a button, or any neuron.")

    def later(*_):
        # In idle time: the click path first (clicks are what a visitor does first), then the gallery
        # and the first layer. (The other models' names are the build's, in the picker: their files are
        # fetched when picked.)
        def after_clicks():
            if page.model_id == models.default:  # (another model drew its gallery with its other parts)
                page.draw_gallery()
            page.prepare()

        in_idle_time(page.warm_up_clicks(), then=after_clicks)

    window.setTimeout(create_proxy(later), 300)
    return page


async def main():
    t0 = time.perf_counter()
    # The modules, numpy and the page's objects live as long as the page (30,000 to 50,000 of them). While they
    # are made, the garbage collector would scan them again and again for nothing (12 to 22 ms of the
    # start-up, 50 to 85 ms on a slow laptop); once they are made, they are set aside from its scans, or
    # every full collection would walk them all (45 to 90 ms on a slow laptop: one long frame in the middle
    # of a stroke or of idle work). Objects made later are scanned as usual; only what is in a reference
    # cycle at the end of the start-up is never freed.
    gc.disable()
    try:
        page = await start()
    except Exception as exc:
        message = str(exc) or type(exc).__name__
        set_status("error", f"The page could not start: {message}")
        js.console.warn(f"nn-visualizer: {type(exc).__name__}: {message}")
        return None
    finally:
        gc.freeze()
        gc.enable()
    js.console.info(f"nn-visualizer: Python side ready in {(time.perf_counter() - t0) * 1000:.0f} ms; "
                    f"{gc.get_freeze_count():,} objects of the start-up left out of the garbage collector's scans")
    return page


PAGE = await main()  # noqa: F704 (top-level await: PyScript runs this module asynchronously)
