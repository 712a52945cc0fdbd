"""The "why" panel as HTML: the attribution map, "Make it a ...", the robustness curves; the card's dream.

Pure Python + numpy (no browser imports); the numbers come from core/why.py.
"""

from __future__ import annotations

import html
import math

import numpy as np

from pyscript_app.core import why
from pyscript_app.views import render, render_inside

METHOD_NOTES = {
    "gradxinput": (
        "Gradient × input: how fast the answer's log-probability changes with each pixel, times the pixel. "
        "Quick and exact for this digit, but only local: a pixel that is already saturating can matter and still show little."
    ),
    "ig": (
        "Integrated gradients: the gradient averaged along a straight path from a black image to this digit, "
        "times the pixel. The shares add up to the change in log-probability from black to this digit (the sum "
        "shown). For a network of ReLU units the path is cut where a unit switches on or off and each piece is "
        "summed exactly; otherwise the average takes at least "
        f"{why.IG_STEPS} gradients along the path. It depends on the choice of black as the starting point."
    ),
    "occlusion": (
        f"Occlusion: a {why.OCCLUSION_PATCH} × {why.OCCLUSION_PATCH} black square slides over the digit; each pixel "
        "gets how much the log-probability drops, on average, when it is hidden. Easy to trust, but coarse, and it "
        "only sees what a black patch removes (never what missing ink would add)."
    ),
}


# From this probability on, gradient x input of the class's log-probability is small wherever the pixels are:
# d log p / d logit is 1 - p for the class itself, so 1 % or less of the logit's own gradient.
SURE_LOG_P = math.log(0.99)


def _floats(values) -> str:
    return ",".join(repr(float(v)) for v in np.asarray(values, dtype=np.float64).reshape(-1))


def _limit(values) -> float:
    top = float(np.max(np.abs(values))) if np.size(values) else 0.0
    return top if top > 0 and math.isfinite(top) else 1.0


def attribution_figure(network, att: why.Attribution, sample: int | None = None) -> str:
    """``#attribution``: the map (red: pushes towards the class, blue: away) with its numbers as data, and the
    test digit it explains (``data-sample``; empty for a drawing)."""
    shape = tuple(network.image_shape)
    values = np.nan_to_num(att.values, nan=0.0, posinf=0.0, neginf=0.0)
    limit = _limit(values)
    _, a, b = att.target
    labels = network.class_labels
    what = f"digit {labels[a]}" if b is None else f"{labels[a]} rather than {labels[b]}"
    rgb = render_inside.diverging_rgb(values.reshape(shape), limit)
    sentence = ""
    if not np.any(values):
        sentence = '<p class="note" id="attribution-flat">Every pixel gets 0 here: nothing in this digit moves the answer (a blank input, or units that are all off or saturated).</p>'
    elif att.method == "gradxinput" and b is None and att.value > SURE_LOG_P:
        sentence = (f'<p class="note" id="attribution-sure">The network is sure of {html.escape(labels[a])} '
                    f'({render.percent(math.exp(att.value))}): its log-probability is already close to its top, 0, and '
                    'no pixel moves it much, so every share here is tiny (the gradient saturates). Integrated '
                    'gradients follows the digit from black and shows which pixels brought the answer here.</p>')
    total = f"sum of the map {render_inside.signed_or_tiny(att.total, 3)}"
    if att.method == "ig":
        how = (f"exact over {att.steps} pieces of the path" if getattr(att, "exact", False)
               else f"{att.steps} gradients along the path")
        total = f"{how} &middot; {total}"
    if att.baseline_value is not None:
        total += (f" = log-probability change from black {render_inside.signed(att.value - att.baseline_value, 3)}"
                  f" (off by {render_inside.signed(att.total - (att.value - att.baseline_value), 3)})")
    return (
        f'<figure id="attribution" class="attribution" data-method="{att.method}" data-class="{html.escape(att.label)}" '
        f'data-sample="{"" if sample is None else int(sample)}" '
        f'data-values="{_floats(values)}" data-sum="{repr(float(att.total))}" data-value="{repr(float(att.value))}">'
        f'<img class="wimg" src="{render.png_data_url(rgb)}" alt="{html.escape(f"Why {what}: red pixels push towards it, blue ones away")}">'
        f'<figcaption>Why <b>{html.escape(what)}</b>: {why.METHOD_TITLES[att.method]}'
        f'<span class="att-sum" id="attribution-sum"> &middot; {total}</span></figcaption>'
        + render_inside.diverging_legend(limit, "share of the log-probability") + sentence + '</figure>'
    )


def method_buttons(current: str) -> str:
    return '<div class="why-methods" role="group" aria-label="Attribution method">' + "".join(
        f'<button type="button" class="secondary small" data-action="why-method" data-method="{m}" '
        f'data-focus-key="why-method-{m}" aria-pressed="{"true" if m == current else "false"}">{why.METHOD_TITLES[m]}</button>'
        for m in why.METHODS) + "</div>"


def class_picker(network, target) -> str:
    labels = network.class_labels
    a, b = (target if isinstance(target, tuple) else (target, None))
    options = "".join(f'<option value="{k}"{" selected" if k == a else ""}>{html.escape(l)}</option>' for k, l in enumerate(labels))
    versus = '<option value="">nothing</option>' + "".join(
        f'<option value="{k}"{" selected" if k == b else ""}>{html.escape(l)}</option>' for k, l in enumerate(labels))
    return (
        '<span class="why-class"><label for="why-class">class</label> '
        f'<select id="why-class" data-action="why-class" data-focus-key="why-class">{options}</select> '
        f'<label for="why-versus">versus</label> <select id="why-versus" data-action="why-versus" data-focus-key="why-versus">{versus}</select></span>'
    )


def contrast_buttons(network, att: why.Attribution, probs) -> str:
    """"Why A and not B?" for the next most likely classes: a contrast is one click away."""
    _, a, b = att.target
    if b is not None or probs is None:
        return ""
    labels = network.class_labels
    others = [int(k) for k in np.argsort(-np.asarray(probs), kind="stable") if int(k) != a][:3]
    return ('<div class="why-not" role="group" aria-label="Why this class and not another">'
            f'<span class="note">Why {html.escape(labels[a])} and not</span>' + "".join(
                f'<button type="button" class="secondary small" data-action="why-not" data-a="{a}" data-b="{k}" data-focus-key="why-versus">{html.escape(labels[k])}</button>'
                for k in others) + "</div>")


def why_panel(network, att: why.Attribution, target_given: bool, probs=None, sample: int | None = None) -> str:
    """The attribution part of the panel: method buttons, class choice, the map and the method's note."""
    _, a, b = att.target
    target = a if b is None else (a, b)
    note = f'<details class="note-details"><summary aria-label="What this method means">?</summary><p>{METHOD_NOTES[att.method]}</p></details>'
    default = "" if target_given else ' <span class="note">(the network\'s answer; pick another class or a contrast)</span>'
    return (
        f'<div class="why-map">{method_buttons(att.method)}{note}'
        f'<p class="why-target">{class_picker(network, target)}{default}</p>'
        f'{contrast_buttons(network, att, probs)}{attribution_figure(network, att, sample)}</div>'
    )


def why_waiting() -> str:
    """The attribution part of the panel while no digit is shown (an empty pad): nothing to explain yet."""
    return ('<div class="why-map"><p class="note" id="why-waiting">Nothing drawn yet. Draw a digit on the pad: this map '
            'then shows which of its pixels push the network towards its answer, and which away.</p></div>')


def grey_image(u, shape, element_id: str, alt: str, attrs: str = "") -> str:
    pixels = np.clip(np.rint(np.asarray(u, dtype=np.float64).reshape(shape) * 255), 0, 255).astype(np.uint8)
    return render.digit_image(pixels, element_id, alt, attrs, cls="digit small")


def attack_buttons(network, current: int | None, enabled: bool = True) -> str:
    """One button per class; disabled while there is no digit to change."""
    labels = network.class_labels
    return '<div class="attack-targets" role="group" aria-label="Make it a ...">' + "".join(
        f'<button type="button" class="secondary small" data-action="attack" data-attack-target="{k}" data-focus-key="attack-{k}"'
        f'{" aria-current=true" if k == current else ""}{"" if enabled else " disabled"}>{html.escape(l)}</button>'
        for k, l in enumerate(labels)) + "</div>"


def attack_result(network, result: why.Attack, applied: bool, can_apply: bool = True) -> str:
    shape = tuple(network.image_shape)
    labels = network.class_labels
    if not result.found:
        return (f'<div id="attack-result" class="attack-result" data-target="{result.target}" data-found="false" '
                f'data-epsilon="" data-prediction="{result.prediction}" data-pixels="{_floats(result.pixels)}">'
                f'<p class="warn">{html.escape(result.message)}.</p></div>')
    change = result.change
    limit = _limit(change)
    rgb = render_inside.diverging_rgb(change.reshape(shape), limit)
    apply = (
        '<button type="button" class="secondary" data-action="attack-undo" id="attack-undo" data-focus-key="attack-apply">Undo</button>' if applied else
        '<button type="button" class="primary small" data-action="attack-apply" id="attack-apply" data-focus-key="attack-apply">Apply: show it in the network</button>'
    ) if can_apply else ""
    return (
        f'<div id="attack-result" class="attack-result" data-target="{result.target}" data-found="true" '
        f'data-epsilon="{repr(float(result.epsilon))}" data-prediction="{result.prediction}" '
        f'data-confidence="{repr(float(result.confidence))}" data-moved="{result.moved}" data-pixels="{_floats(result.pixels)}">'
        '<div class="attack-images">'
        f'<figure>{grey_image(result.pixels, shape, "attack-digit", "the changed digit")}<figcaption>changed digit</figcaption></figure>'
        f'<figure><img class="wimg" src="{render.png_data_url(rgb)}" alt="the change: red added, blue removed"><figcaption>the change (&times;{1 / limit:.1f})</figcaption></figure>'
        '</div>'
        f'<p>Now read as <b>{html.escape(labels[result.prediction])}</b> ({render.percent(result.confidence)}). '
        f'No pixel changed by more than <b>{result.epsilon:.3f}</b> (epsilon, of 1); '
        f'{result.moved} pixel{"s" if result.moved != 1 else ""} moved by more than {why.MOVED}.</p>'
        + (f'<p class="note">{html.escape(result.message)}.</p>' if result.message else "")
        + f'<p>{apply}</p></div>'
    )


def attack_panel(network, result: why.Attack | None, applied: bool, note: str = "", can_apply: bool = True,
                 waiting: bool = False) -> str:
    """The attack's buttons, ``note`` and its result; ``waiting``: no digit is shown, the buttons are disabled."""
    if waiting:
        body = ""
    elif result is None:
        body = '<p class="note">Pick a class: the smallest change that makes the network answer it is searched for.</p>'
    else:
        body = attack_result(network, result, applied, can_apply)
    return (
        f'{attack_buttons(network, None if result is None else result.target, not waiting)}'
        + (f'<p class="note">{html.escape(note)}</p>' if note else "") + body +
        '<details class="note-details"><summary aria-label="How the change is found">?</summary><p>'
        f'Gradient steps push the target class\'s log-probability up, {why.ATTACK_STEPS} at most, with every pixel kept within '
        'epsilon of the original and within black to white. The smallest epsilon that works is searched for. A network '
        'that can be fooled by changes this small has not learned what a person sees in the digit.</p></details>'
    )


def robustness_svg(curves: dict, epsilons=why.ROBUSTNESS_EPSILONS, width: int = 300, height: int = 150,
                   so_far: tuple | None = None) -> str:
    """Test accuracy against epsilon, one line per model: ``curves`` maps a title to accuracies (or None).
    ``so_far`` (title, accuracies, digits done, total): a curve being measured, drawn dashed in its colour."""
    left, bottom, top, right = 34, 22, 8, 8
    eps = np.asarray(epsilons, dtype=np.float64)
    top_eps = float(eps.max()) or 1.0

    def x(e):
        return left + (width - left - right) * e / top_eps

    def y(a):
        return top + (height - top - bottom) * (1 - a)

    palette = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9")
    lines, keys = [], []
    for n, (title, acc) in enumerate(curves.items()):
        measuring = so_far is not None and acc is None and title == so_far[0]
        if measuring:
            acc = so_far[1]
        if acc is None:
            continue
        colour = palette[n % len(palette)]
        points = " ".join(f"{x(e):.1f},{y(float(a)):.1f}" for e, a in zip(eps, acc))
        dashes = ' stroke-dasharray="5 4" class="so-far"' if measuring else ""
        lines.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dashes} points="{points}"/>')
        which = f" so far ({so_far[2]:,} of {so_far[3]:,} digits)" if measuring else ""
        keys.append(f'<li><span class="swatch" style="background:{colour}"></span>{html.escape(title)}{which}: '
                    f'{render.percent(float(acc[0]))} &rarr; {render.percent(float(acc[-1]))} at {top_eps:g}</li>')
    axes = (f'<line x1="{left}" y1="{y(0)}" x2="{width - right}" y2="{y(0)}" stroke="#888"/>'
            f'<line x1="{left}" y1="{y(0)}" x2="{left}" y2="{y(1)}" stroke="#888"/>'
            + "".join(f'<text x="{left - 4}" y="{y(a) + 4:.1f}" text-anchor="end" font-size="10">{int(a * 100)}%</text>' for a in (0, 0.5, 1))
            + "".join(f'<text x="{x(e):.1f}" y="{height - 6}" text-anchor="middle" font-size="10">{e:g}</text>' for e in (0, top_eps / 2, top_eps)))
    return (f'<svg class="robustness" viewBox="0 0 {width} {height}" role="img" aria-label="Test accuracy against epsilon">'
            f'{axes}{"".join(lines)}</svg><ul class="robust-key">{"".join(keys)}</ul>')


def robustness_panel(curves: dict, progress: str, model_id: str, by_model: dict, compute_ms: float | None = None,
                     so_far: tuple | None = None) -> str:
    """The curves; ``#robustness`` carries the shown model's own (data-model, -epsilons, -accuracy, -compute-ms)
    once measured; while it is measured, ``so_far`` (title, accuracies, digits done, total) is its curve over
    the digits done (dashed; data-so-far-digits, data-so-far-accuracy)."""
    mine = by_model.get(model_id)
    data = "" if mine is None else (f' data-model="{html.escape(model_id)}" data-epsilons="{_floats(why.ROBUSTNESS_EPSILONS)}" '
                                     f'data-accuracy="{_floats(mine)}"'
                                     + ("" if compute_ms is None else f' data-compute-ms="{compute_ms:.1f}"'))
    if mine is None and so_far is not None:
        data = f' data-so-far-digits="{so_far[2]}" data-so-far-accuracy="{_floats(so_far[1])}"'
    return (
        f'<div class="robust" id="robustness"{data}><h3>How robust is it?</h3>'
        f'<p class="note" id="robustness-progress" role="status">{html.escape(progress)}</p>'
        + robustness_svg(curves, so_far=so_far) +
        '<p class="note">Test accuracy when every test digit gets one step of the change that hurts its true class most '
        '(each pixel moved by epsilon, black to white kept). Every network looked at is drawn, to compare.</p></div>'
    )


def dream_pending(done: int, total: int) -> str:
    return (f'<p class="note" id="dream-progress" role="status">Searching for the image that excites it most: '
            f'step {done} of {total}</p>')


def wants_later(why_later: str = "Shown when training is paused: the weights change too often.") -> str:
    return f'<h3>What it wants</h3><p class="note" id="card-wants-later">{html.escape(why_later)}</p>'


def dream_html(network, layer_name: str, index: int, dream: why.Dream, profile: why.UnitProfile,
               rival: tuple[float, int] | None = None) -> str:
    """The card's "what it wants": the image that excites the unit most, against the best test digit.

    ``rival`` (a dense hidden unit's): the highest net input over the test digits, and that digit. The
    comparison is then of net inputs, what the dream raised, and they are shown when both activations
    read the same: where tanh or a sigmoid is flat both may read 1.0000 while one net input is well
    above the other."""
    shape = tuple(network.image_shape)
    layer = network.layer(layer_name)
    shown = render.percent(dream.activation) if layer.is_output else f"{dream.activation:.4f}"
    best_text = render.percent(profile.best) if layer.is_output else f"{profile.best:.4f}"
    if rival is not None:
        ours, best, best_index = dream.objective, rival[0], rival[1]
        if shown == best_text:  # (otherwise the activations' order is the net inputs')
            shown += f" (net input {ours:+.3f})"
            best_text += f", net input {best:+.3f}"
    else:
        ours, best, best_index = dream.activation, profile.best, profile.best_index
    compare = "more than" if ours > best else ("as much as" if ours == best else "less than")
    return (
        f'<figure id="neuron-dream" data-pixels="{_floats(dream.pixels)}" data-activation="{repr(float(dream.activation))}" '
        f'data-objective="{repr(float(dream.objective))}" data-best="{repr(float(profile.best))}">'
        + grey_image(dream.pixels, shape, "", f"the image that excites {render_inside.unit_name(network, layer_name, index)} most")
        + f'<figcaption>What it wants: {shown}, {compare} the best test digit'
        + (f' (#{best_index}, {best_text})' if best_index is not None else f' ({best_text})')
        + (f'. Black where fewer than {why.INK_SHARE:.0%} of the test digits have ink.' if dream.kept_to_ink else '')
        + '</figcaption></figure>'
    )


def class_means_svg(network, means) -> str:
    labels = network.class_labels
    m = np.nan_to_num(np.asarray(means, dtype=np.float64))
    limit = _limit(m)
    width, height, base = 200, 60, 48
    bar = width / len(m)
    bars = "".join(
        f'<rect x="{i * bar + 1:.1f}" y="{base - max(v, 0) / limit * 40:.1f}" width="{bar - 2:.1f}" height="{abs(v) / limit * 40:.1f}" fill="{"#b2182b" if v >= 0 else "#2166ac"}"><title>{html.escape(labels[i])}: {v:.3f}</title></rect>'
        f'<text x="{i * bar + bar / 2:.1f}" y="{height - 2}" text-anchor="middle" font-size="9">{html.escape(labels[i])}</text>'
        for i, v in enumerate(m))
    return (f'<svg class="class-means" id="card-class-means" data-values="{_floats(m)}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="mean activation per class">{bars}</svg>')


def wants_section(network, testset, dream_part: str, profile: why.UnitProfile, current) -> str:
    thumbs = "".join(render_inside.thumb(testset, int(i), "Show test digit {i} (labelled {label})", current) for i in profile.least)
    return (
        '<section class="wants"><h3>What it wants</h3>'
        f'<div id="dream-slot">{dream_part}</div>'
        '<h3>Test digits that excite it least</h3>'
        f'<div class="top-digits" id="card-least" data-samples="{",".join(str(int(i)) for i in profile.least)}">{thumbs}</div>'
        '<h3>Mean activation per class</h3>' + class_means_svg(network, profile.means) + '</section>'
    )
