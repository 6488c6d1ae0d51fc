"""The paper's printed figures: what Table 1's "2.7K" and "128M" mean, whether our
counts agree with them, and, where they do not, an explanation in arithmetic.

Its params column counts weights (no biases) in units of K = 1024: conv2 has
64*64 + 64*3*3*192 = 114,688 = 112 x 1024 weights, printed "112K", and the
classifier 1024*1000 = 1,024,000 = 1000 x 1024, printed "1000K" (with K = 1000
they would read 115K and 1024K). Its ops column counts multiply-adds in
M = 10^6: 3a has 163,328 weights x 28*28 = 128.05M, printed "128M". A printed
figure is taken to mean what it rounds from: "2.7K" is 2.65K to 2.75K.

``explain`` takes one row of ``googlenet.summary.row_summaries`` (our counts).
"""
import math
from typing import NamedTuple

PARAM_UNIT, OPS_UNIT = 1024, 10 ** 6
CLOSE = 0.02           # "~": within 2%, but outside the printed precision


class Printed(NamedTuple):
    text: str        # "2.7K"
    low: float       # in units (weights, multiply-adds): what it rounds from
    high: float

    @property
    def value(self):
        return (self.low + self.high) / 2


def printed(text):
    """A figure as printed in Table 1: "2.7K" -> 2.65K..2.75K in weights (K = 1024)."""
    unit = {"K": PARAM_UNIT, "M": OPS_UNIT}[text[-1]]
    number = text[:-1]
    half_step = 0.5 * 10 ** -(len(number.split(".")[1]) if "." in number else 0)
    return Printed(text, (float(number) - half_step) * unit, (float(number) + half_step) * unit)


def agreement(ours, figure):
    """"=" within the printed precision, "~" within 2%, "!" further off."""
    if figure.low <= ours <= figure.high:
        return "="
    return "~" if abs(ours - figure.value) <= CLOSE * ours else "!"


def positions(summary):
    """Output positions (OH x OW) at which the row's weights are applied."""
    return math.prod(summary.out_shape[1:]) if len(summary.out_shape) == 3 else 1


def explain(summary):
    """Sentences explaining a row whose printed figures disagree with our arithmetic."""
    row, n = summary.row, positions(summary)
    params, ops = printed(row.paper_params), printed(row.paper_ops)
    side = round(n ** 0.5)
    lines = [f"{row.name}: {summary.formula} = {summary.weights:,} weights ({summary.weights / PARAM_UNIT:.1f}K); "
             f"x {side}x{side} = {n:,} output positions: {summary.multiply_adds / OPS_UNIT:.1f}M "
             f"multiply-adds."]
    consistent = params.low * n <= ops.high and ops.low <= params.high * n
    lines.append(f"Printed: {params.text} x {n:,} = {params.value * n / OPS_UNIT:.1f}M against "
                 f"{ops.text} printed ops: the two printed figures "
                 f"{'agree' if consistent else 'disagree'} with each other.")
    if agreement(summary.multiply_adds, ops) != "!":
        lines.append(f"Our ops match the printed ops, so the printed params are the odd one out: "
                     f"{ops.text} / {n:,} = {ops.value / n / PARAM_UNIT:.1f}K weights, "
                     f"as the widths give.")
    elif consistent and summary.input_weights_per_channel:
        per_channel = summary.input_weights_per_channel
        others = summary.weights - summary.in_channels * per_channel
        depth = (params.value - others) / per_channel
        on_input = f"({params.value:,.0f} - {others:,} weights not on the input)" if others else \
            f"{params.value:,.0f} weights"
        lines.append(f"Both printed figures fit an input depth of {depth:.3g} instead of "
                     f"{summary.in_channels}: {on_input} / {per_channel:,} weights per input channel.")
    return lines
