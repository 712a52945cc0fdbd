"""What the Train panel shows, computed without the page: its form, the loss curve, the progress line, the rate.

Pure Python (no browser imports): page/train*.py feed it the trainer's
figures and write the markup it returns into the page.
"""

from __future__ import annotations

import html
import math
from collections import deque

from pyscript_app.core import train

# The loss curve keeps at most this many points: when full, every other one goes and each new
# point then stands for twice as many batches, so a long run costs the same to draw as a short one.
MAX_POINTS = 400
SMOOTHING = 0.98  # exponential moving average of the per-batch loss (about the last 50 batches)
RATE_WINDOW_S = 2.0  # digits per second: measured over the last this many seconds of training


class LossCurve:
    """The per-batch loss, smoothed (exponential moving average, bias-corrected), as SVG points.

    :meth:`extend` takes the trainer's ``losses`` list and reads only what is
    new since the last call, so a refresh costs the batches trained since, not
    the whole run.
    """

    def __init__(self, max_points: int = MAX_POINTS, smoothing: float = SMOOTHING):
        self.max_points, self.smoothing = max_points, smoothing
        self.read = 0  # losses consumed
        self.every = 1  # batches per point
        self.points: list[tuple[int, float]] = []  # (batch number, smoothed loss)
        self._ema = 0.0
        self._weight = 0.0

    def reset(self) -> None:
        self.__init__(self.max_points, self.smoothing)

    @property
    def smoothed(self) -> float | None:
        return self._ema / self._weight if self._weight else None

    def extend(self, losses) -> None:
        for loss in losses[self.read :]:
            self.read += 1
            if not math.isfinite(loss):
                continue  # (divergence: the trainer stops and says so; the curve keeps its last finite point)
            self._ema = self.smoothing * self._ema + (1.0 - self.smoothing) * loss
            self._weight = self.smoothing * self._weight + (1.0 - self.smoothing)
            if self.read % self.every == 0 or self.read == 1:
                self.points.append((self.read, self.smoothed))
                if len(self.points) > self.max_points:
                    self.every *= 2
                    self.points = [p for p in self.points if p[0] % self.every == 0 or p[0] == 1]

    def svg(self, width: int = 320, height: int = 120) -> str:
        """The curve as an SVG (id ``loss-curve``): batches across, loss up, axes labelled with the range."""
        pad_left, pad_bottom, pad_top = 34, 16, 6
        inner_w, inner_h = width - pad_left - 4, height - pad_bottom - pad_top
        points = list(self.points)
        if self.read and (not points or points[-1][0] != self.read) and self.smoothed is not None:
            points.append((self.read, self.smoothed))  # the newest batch, not yet a kept point
        top = max((v for _, v in points), default=1.0) or 1.0
        last_batch = max(points[-1][0], 2) if points else 2
        coords = " ".join(
            f"{pad_left + (b - 1) / (last_batch - 1) * inner_w:.1f},{pad_top + (1 - v / top) * inner_h:.1f}"
            for b, v in points
        )
        label = (f"Loss curve: smoothed loss {points[-1][1]:.3f} after {self.read:,} batches"
                 if points else "Loss curve: no batch trained yet")
        return (
            f'<svg id="loss-curve" class="loss-curve" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{html.escape(label)}" data-points="{len(points)}" data-batches="{self.read}">'
            f'<line class="axis" x1="{pad_left}" y1="{pad_top + inner_h}" x2="{width - 4}" y2="{pad_top + inner_h}"/>'
            f'<line class="axis" x1="{pad_left}" y1="{pad_top}" x2="{pad_left}" y2="{pad_top + inner_h}"/>'
            f'<text x="{pad_left - 3}" y="{pad_top + 8}" text-anchor="end">{top:.2f}</text>'
            f'<text x="{pad_left - 3}" y="{pad_top + inner_h}" text-anchor="end">0</text>'
            f'<text x="{width - 4}" y="{height - 3}" text-anchor="end">{self.read:,} batches</text>'
            f'<text x="{pad_left + 2}" y="{height - 3}">loss (smoothed)</text>'
            + (f'<polyline points="{coords}"/>' if len(points) > 1 else "")
            + "</svg>"
        )


class RateMeter:
    """Digits per second over the last :data:`RATE_WINDOW_S` seconds of training (pauses not counted)."""

    def __init__(self, window: float = RATE_WINDOW_S):
        self.window = window
        self.samples: deque[tuple[float, int]] = deque()  # (running time in seconds, digits seen)
        self.running_time = 0.0

    def reset(self) -> None:
        self.samples.clear()
        self.running_time = 0.0

    def add(self, elapsed: float, seen: int) -> None:
        """``elapsed`` seconds of training since the last call brought the count of digits seen to ``seen``."""
        self.running_time += elapsed
        self.samples.append((self.running_time, seen))
        while len(self.samples) > 2 and self.samples[1][0] < self.running_time - self.window:
            self.samples.popleft()

    @property
    def rate(self) -> float | None:
        if len(self.samples) < 2:
            return None
        (t0, n0), (t1, n1) = self.samples[0], self.samples[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else None


def shape_text(sizes) -> str:
    return "-".join(str(s) for s in sizes)


def trained_title(sizes) -> str:
    """The picker's name of the network trained in the page."""
    return f"Trained here: {shape_text(sizes)}"


def progress_attributes(progress: dict, test_accuracy: float | None, test_steps: int | None,
                        rate: float | None, running: bool) -> dict[str, str]:
    """The data-* attributes of #train-progress (strings; empty when not known yet)."""
    loss = progress.get("loss")
    return {
        "epoch": str(progress["epoch"]),
        "steps": str(progress["steps"]),
        "seen": str(progress["seen"]),
        "loss": "" if loss is None else repr(float(loss)),
        "smoothedLoss": "" if progress.get("smoothed_loss") is None else repr(float(progress["smoothed_loss"])),
        "testAccuracy": "" if test_accuracy is None else repr(float(test_accuracy)),
        "testSteps": "" if test_steps is None else str(test_steps),
        "rate": "" if rate is None else f"{rate:.0f}",
        "running": "true" if running else "false",
        "stopped": "true" if progress.get("stopped") else "false",
    }


def progress_html(progress: dict, test_accuracy: float | None, test_steps: int | None, rate: float | None,
                  evaluating: tuple[int, int] | None = None) -> str:
    """The progress line: epoch (and how far into it), batches, loss, test accuracy, digits per second."""
    into = progress.get("epoch_progress", 0.0)
    parts = [
        f'<span class="tp-epoch">Epoch <b>{progress["epoch"] + 1}</b> ({into:.0%} through)</span>',
        f'<span class="tp-steps"><b>{progress["steps"]:,}</b> batches, {progress["seen"]:,} digits</span>',
    ]
    smoothed = progress.get("smoothed_loss")
    parts.append(f'<span class="tp-loss">loss <b>{"–" if smoothed is None else f"{smoothed:.3f}"}</b></span>')
    if test_accuracy is None:
        acc = "not measured yet"
    else:
        acc = f"<b>{test_accuracy:.2%}</b> (after batch {test_steps:,})"
    if evaluating is not None:
        acc += f", measuring: {evaluating[0]:,} of {evaluating[1]:,}"
    parts.append(f'<span class="tp-acc">test accuracy {acc}</span>')
    parts.append(f'<span class="tp-rate"><b>{"–" if rate is None else f"{rate:,.0f}"}</b> digits/s</span>')
    return " · ".join(parts)


def download_progress(loaded: int, total: int | None) -> str:
    mb = 1024 * 1024
    if total:
        return f"Loading the training digits: {loaded / mb:.1f} MB of {total / mb:.1f} MB ({loaded / total:.0%})"
    return f"Loading the training digits: {loaded / mb:.1f} MB"


def panel_html(settings):
    """The Train panel: the settings form (one field per address key; the conv layers' filters, kernel and
    pooling fields make up the key ``conv``), the buttons, progress and live views."""
    def options(values, chosen, labels=None):
        return "".join(f'<option value="{html.escape(str(v))}"{" selected" if str(v) == str(chosen) else ""}>'
                       f'{html.escape(str(labels.get(v, v) if labels else v))}</option>' for v in values)

    hidden = []
    for i in range(train.MAX_HIDDEN):
        none = '<option value="">none</option>' if i > 0 else ""
        chosen = settings.hidden[i] if i < len(settings.hidden) else ""
        hidden.append(f'<label>Layer {i + 1} <select name="hidden" data-layer="{i + 1}">{none}'
                      f'{options(train.WIDTHS, chosen)}</select></label>')
    conv = []
    for i in range(train.MAX_CONV):
        f, k, pool = settings.conv[i] if i < len(settings.conv) else ("", 3, True)
        conv.append(f'<span class="conv-row" data-layer="{i + 1}"><label>Conv {i + 1} filters '
                    f'<select name="conv-filters" data-layer="{i + 1}"><option value="">none</option>'
                    f'{options(train.FILTERS, f)}</select></label> '
                    f'<label>kernel <select name="conv-kernel" data-layer="{i + 1}">'
                    f'{options(train.KERNELS, k, {v: f"{v}x{v}" for v in train.KERNELS})}</select></label> '
                    f'<label class="conv-pool"><input type="checkbox" name="conv-pool" data-layer="{i + 1}"{" checked" if pool else ""}> '
                    f'2x2 max pooling</label></span>')
    acts = settings.activations
    return (
        '<h2 id="title-train">Train a network</h2>'
        '<p class="sub">Train a network on the 60,000 MNIST training digits, here in your browser, and watch it learn. '
        'Changing a setting starts afresh; the address keeps the settings, so the link retrains the same network.</p>'
        '<p id="train-notes" class="url-note" role="status" hidden></p>'
        '<form id="train-form" class="train-form">'
        f'<fieldset class="conv-layers"><legend>Convolutional layers ({train.CONV_ACTIVATION}, no padding), '
        f'before the hidden layers</legend>{"".join(conv)}</fieldset>'
        f'<fieldset><legend>Hidden layers (neurons)</legend>{"".join(hidden)}</fieldset>'
        f'<label>Activation <select name="activation">{options(train.ACTIVATIONS, acts[0])}</select></label>'
        f'<label>Optimizer <select name="optimizer">{options(train.OPTIMIZERS, settings.optimizer, train.OPTIMIZER_TITLES)}</select></label>'
        f'<label>Learning rate <input name="lr" type="number" step="any" min="{train.LEARNING_RATES[0]:g}" '
        f'max="{train.LEARNING_RATES[1]:g}" inputmode="decimal"></label>'
        f'<label id="train-momentum-field">Momentum <input name="momentum" type="number" step="any" '
        f'min="{train.MOMENTUM_RANGE[0]:g}" max="{train.MOMENTUM_RANGE[1]:g}"></label>'
        f'<label>Batch size <select name="batch">{options(train.BATCH_SIZES, settings.batch_size)}</select></label>'
        f'<label>Seed <input name="seed" type="number" min="0" max="{train.SEED_MAX}" step="1"></label>'
        '</form>'
        '<p class="train-buttons">'
        '<button type="button" id="train-start" class="primary" disabled>Train</button> '
        '<button type="button" id="train-pause" class="secondary" disabled>Pause</button> '
        '<button type="button" id="train-step" class="secondary" disabled title="Train on one batch">Step</button> '
        '<button type="button" id="train-reset" class="secondary" disabled title="New initial weights from the seed">Reset</button> '
        '<button type="button" id="train-save" class="secondary" disabled title="Download the network as an export .zip">Save .zip</button></p>'
        '<p id="train-data" class="train-data" role="status" data-state="idle">The training digits load when Train mode opens.</p>'
        '<p id="train-message" class="open-error" role="alert" hidden></p>'
        '<div id="train-progress" class="train-progress" role="status" aria-live="off" data-epoch="0" data-steps="0" '
        'data-loss="" data-test-accuracy="" data-rate=""><span id="train-progress-text"></span></div>'
        '<div id="train-curve" class="train-curve"></div>'
    )
