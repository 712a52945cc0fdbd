"""The first-visit tour: a few steps, each pointing at one part of the page.

Pure Python: the steps and their markup. ``tour_page.py`` shows them in the
page, remembers (in the browser's local storage) that the tour was
dismissed, and reopens it from the Tour button.
"""

from __future__ import annotations

import html
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    title: str
    text: str
    target: str  # a CSS selector of what the step points at
    keep_clear: str = ""  # a CSS selector of all that the text talks about (by default the target): the panel
    # goes where it covers least of it


STEPS = (
    Step("A digit goes in", "This is one handwritten digit from the test set, as the grey pixels the network "
         "reads. Get random prediction shows another one.", "#input-panel"),
    Step("Layer by layer", "Each square is a neuron of a hidden layer; its colour is how strongly it fires for "
         "this digit (the legend gives the scale). A convolutional layer shows one picture per channel instead: "
         "its feature map, where the channel fires on the digit. Lines show the strongest connections between layers.",
         "#view .layer"),
    Step("The answer", "The output layer gives a probability for each class. The longest bar is the network's "
         "answer; the input panel says whether it is right.", "#view .layer.output",
         "#view .layer.output, #verdict"),
    Step("Look inside a neuron", "Click any neuron (or Tab to it and press Enter) to see its weights, its bias, "
         "what each input sends in, the test digits that excite it most, and an image made to excite it.",
         "#view .layer .grid"),
    Step("Why this answer?", "The map shows which pixels pushed the network towards its answer (red) or away "
         "(blue). Fool it asks for the smallest change that makes it read another digit; the curves show how "
         "quickly each network gives way.", "#why", "#why-map, #attack-toggle, #robustness-slot"),
    Step("Try it yourself", "Draw your own digit and watch the layers follow your pen, train a network of your "
         "own, open the atlas to see where all 10,000 test digits land in each layer, or the error explorer to "
         "see which digits the network confuses.", "#draw-toggle"),
)

STORAGE_KEY = "nnv-tour-dismissed"

# Where the panel may go, in the order it is preferred: out of the way of the buttons at the top of the page.
CORNERS = ("bottom-right", "bottom-left", "top-right", "top-left")
MARGIN = 16  # px between the panel and the window's edges (site/style.css, .tour)


def _overlap(a, b) -> float:
    """The area two rectangles (left, top, right, bottom) share."""
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def corner_clear_of(rects, panel: tuple[float, float], window: tuple[float, float]) -> str:
    """The corner of the window for the panel (its width and height): the first of ``CORNERS`` where it covers
    none of ``rects`` ((left, top, right, bottom) in the window); where every corner covers some, the one that
    covers least of them."""
    (width, height), (window_w, window_h) = panel, window

    def covered(corner):
        left = window_w - MARGIN - width if corner.endswith("right") else MARGIN
        top = window_h - MARGIN - height if corner.startswith("bottom") else MARGIN
        return sum(_overlap((left, top, left + width, top + height), r) for r in rects)

    return min(CORNERS, key=lambda c: (covered(c), CORNERS.index(c)))


def step_html(index: int) -> str:
    """The tour's content at step ``index`` (0-based)."""
    step, last = STEPS[index], len(STEPS) - 1
    back = "" if index == 0 else '<button type="button" class="secondary" data-tour="back">Back</button>'
    forward = ('<button type="button" class="primary" data-tour="done">Done</button>' if index == last
               else '<button type="button" class="primary" data-tour="next">Next</button>')
    return (
        f'<p class="tour-count">Step {index + 1} of {len(STEPS)}</p>'
        f'<h2 id="tour-title">{html.escape(step.title)}</h2>'
        f'<p id="tour-text">{html.escape(step.text)}</p>'
        f'<p class="tour-actions">{back}{forward}'
        '<button type="button" class="secondary" data-tour="skip">Skip the tour</button></p>'
    )
