"""The two building blocks the tutorial networks repeat: a conv block and a stack of Linears."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn


def conv_block(n_in: int, n_out: int, pool_padding: int = 0) -> nn.Sequential:
    """Tutorial 003's Conv(3x3, padding 1) -> ReLU -> MaxPool(2), computed as Conv -> MaxPool ->
    ReLU: keeps the size, then halves it.

    ReLU is monotonic, so taking the maximum first gives the same outputs and the same
    gradients, bit for bit (the pool's -inf padding never wins either way), and the ReLU then
    runs on a quarter of the values: on a CPU in bfloat16, about 7% off the default command's
    training epochs and a fifth off its evaluation passes (docs/performance.md). Checkpoints
    keep the tutorial's parameter names (the convolution stays layer 0).
    """
    return nn.Sequential(
        nn.Conv2d(n_in, n_out, kernel_size=3, stride=1, padding=1),
        nn.MaxPool2d(kernel_size=2, stride=2, padding=pool_padding),
        nn.ReLU(),
    )


def dense_stack(n_in: int, sizes: Sequence[int],
                block: Callable[[int], list[nn.Module]]) -> nn.Sequential:
    """Linear(previous width -> n) followed by ``block(n)`` for each hidden width n.

    Layers are created in order, so a seeded run draws its initial weights in the order the
    tutorials drew them.
    """
    if not sizes or any(not isinstance(n, int) or n < 1 for n in sizes):
        raise ValueError(f"model.hidden={list(sizes)} is invalid: it must be a non-empty list of "
                         "widths >= 1, e.g. model.hidden=[512,256]")
    layers: list[nn.Module] = []
    for width_in, width_out in zip([n_in, *sizes], sizes, strict=False):
        layers += [nn.Linear(width_in, width_out), *block(width_out)]
    return nn.Sequential(*layers)
