"""Weight initialisation schemes from the tutorials, applied to Linear and Conv layers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from torch import Tensor, nn

SCHEMES: dict[str, Callable[[Tensor], Tensor] | None] = {
    "default": None,  # keep PyTorch's own initialisation
    "xavier_uniform": nn.init.xavier_uniform_,
    "xavier_normal": nn.init.xavier_normal_,
    # He init, as tutorial 004; gain sqrt(2) suits the ReLU networks here.
    "kaiming_uniform": partial(nn.init.kaiming_uniform_, nonlinearity="relu"),
    "kaiming_normal": partial(nn.init.kaiming_normal_, nonlinearity="relu"),
    # LeCun normal is He normal with gain 1: std = 1 / sqrt(fan_in).
    "lecun_normal": partial(nn.init.kaiming_normal_, nonlinearity="linear"),
}

LAYER_TYPES: dict[str, tuple[type[nn.Module], ...]] = {
    "linear": (nn.Linear,),
    "conv": (nn.Conv1d, nn.Conv2d, nn.Conv3d),
}


class WeightInit:
    """Re-initialise the weights of the chosen layer types; optionally zero their biases.

    ``layers`` exists because tutorial 003 re-initialised only its Linear layers and left the
    convolutions at PyTorch's default.
    """

    def __init__(self, scheme: str = "default", zero_bias: bool = True,
                 layers: Sequence[str] = ("linear", "conv")) -> None:
        if scheme not in SCHEMES:
            raise ValueError(f"init.scheme={scheme!r} is unknown; choose one of "
                             f"{', '.join(SCHEMES)}")
        unknown = [layer for layer in layers if layer not in LAYER_TYPES]
        if unknown:
            raise ValueError(f"init.layers has unknown entries {unknown}; use any of "
                             f"{', '.join(LAYER_TYPES)}")
        self.scheme = scheme
        self.zero_bias = zero_bias
        self.layers = tuple(layers)

    def __call__(self, network: nn.Module) -> None:
        weight_init = SCHEMES[self.scheme]
        if weight_init is None:
            return
        types = tuple(t for layer in self.layers for t in LAYER_TYPES[layer])
        for module in network.modules():
            if isinstance(module, types):
                weight_init(module.weight)
                if self.zero_bias and module.bias is not None:
                    nn.init.zeros_(module.bias)

    def __repr__(self) -> str:
        return (f"WeightInit(scheme={self.scheme!r}, zero_bias={self.zero_bias}, "
                f"layers={list(self.layers)})")
