"""The feature maps' pictures (one sprite a map layer), painted in the frame after a view's values.

Browser-side. An update of the view in place (page/view.py's draw_view)
writes a click's values at once: every channel's peak, the dense layers, the
output. Encoding a CNN's sprites, and the browser's decoding and restyling of
them, cost about as much again, so they follow in the next animation frame,
with the connections (page/connections.py): each frame stays within its
1/60 s, and the maps are on screen one frame after the values. Any number of
views before that frame draw the maps of the last one only.
"""

from pyodide.ffi import to_js
from pyscript import window

from pyscript_app.page.dom import AfterValues, el
from pyscript_app.views import render


class FeatureMaps:
    def __init__(self):
        self.pending = None  # (network, view) whose maps are still to be drawn
        self.after_values = AfterValues(self.draw)

    def later(self, network, view):
        """The view was updated in place without its maps: draw them in the frame after the values'."""
        self.pending = (network, view)
        self.after_values.request()

    def drawn(self):
        """The view was rendered whole, its maps with it: nothing is pending."""
        self.pending = None

    def draw(self):
        if self.pending is None:
            return
        (network, view), self.pending = self.pending, None
        patch = render.maps_patch(network, view)
        if patch is not None:  # (a view since replaced by another shape's: nnvApplyPatch writes nothing)
            window.nnvApplyPatch(el("view"), to_js(patch.encode()))


_maps = None


def feature_maps() -> FeatureMaps:
    """The page's one FeatureMaps (made at its first use, in the browser)."""
    global _maps
    if _maps is None:
        _maps = FeatureMaps()
    return _maps
