"""Torch networks on raw observations, with their parameters as one flat vector (needs torch).

DCPG over any multi-task env (:mod:`baselines.consensus.envtasks`) trains one network per agent
and mixes the agents' parameters with the consensus step as flat float64 vectors, exactly as the
tabular and feature-MLP cases (:mod:`baselines.consensus.policies`). The networks here read what an
env returns:

* ``"cnn"``: PEDRA's ``C3F2`` (the network of the simulator paper 004 trained with; five layers:
  three convolutions and two fully connected layers, ``network/network.py`` of
  github.com/aqeelanwar/PEDRA): per-image standardisation of the RGB frame, conv 7x7 stride 4 (96
  channels, ReLU) + max-pool 3/2, conv 5x5 (64, ReLU) + max-pool 2/2, conv 3x3 'same' (64, ReLU),
  fully connected ``hidden`` (1024, ReLU), linear to the outputs. Weights and biases start from a
  normal of std 0.05 truncated at two std, as PEDRA's. Frames must be at least
  :data:`CNN_MIN_RESOLUTION` pixels per side (103 gives PEDRA's 1024 flattened features).
* ``"mlp"``: a tanh MLP on the flattened observation (a ``Discrete`` observation is one-hot);
  PyTorch's default initialisation.

:class:`FlatNet` evaluates a network at any flat parameter vector (``torch.func.functional_call``
on views of the vector), so gradients come back as flat vectors too.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from mpg_envs import _validate as V

__all__ = [
    "NETWORKS",
    "CNN_MIN_RESOLUTION",
    "FlatNet",
    "build_network",
    "network_size",
    "observation_tensor",
    "seeded_module",
]

NETWORKS = ("cnn", "mlp")
#: The smallest frame side the C3F2 network takes (its last pooling needs a 2x2 input).
CNN_MIN_RESOLUTION = 55


def _torch():
    from baselines.threads import torch_threads

    torch_threads()
    import torch

    return torch


def observation_tensor(obs_space: Any, obs: Any, kind: str) -> Any:
    """A batch of observations as the network's input tensor.

    Args:
        obs_space: The env's observation space (``Box`` or ``Discrete``).
        obs: A batch, shape (B, *obs_space.shape) (``Discrete``: (B,) ints).
        kind: ``"cnn"`` (uint8 frames kept as they are) or ``"mlp"`` (float32, flattened).

    Returns:
        ``cnn``: uint8 (B, H, W, C); ``mlp``: float32 (B, F).
    """
    torch = _torch()
    from gymnasium import spaces

    if isinstance(obs_space, spaces.Discrete):
        idx = torch.as_tensor(np.asarray(obs, dtype=np.int64) - int(obs_space.start))
        return torch.nn.functional.one_hot(idx, int(obs_space.n)).to(torch.float32)
    x = torch.as_tensor(np.asarray(obs))
    if kind == "cnn":
        return x
    return x.reshape(len(x), -1).to(torch.float32)


def _check_space(obs_space: Any, kind: str) -> tuple[int, ...]:
    from gymnasium import spaces

    if kind == "cnn":
        shape = tuple(getattr(obs_space, "shape", None) or ())
        if not isinstance(obs_space, spaces.Box) or len(shape) != 3 or shape[2] not in (1, 3, 4):
            raise ValueError(
                f"policy='cnn' reads images: a Box observation of shape (H, W, C), C in 1, 3, 4; the env "
                f"has {obs_space}; use policy='mlp'"
            )
        if min(shape[:2]) < CNN_MIN_RESOLUTION:
            raise ValueError(
                f"policy='cnn' (PEDRA's C3F2) needs frames of at least {CNN_MIN_RESOLUTION}x"
                f"{CNN_MIN_RESOLUTION} pixels; the env's are {shape[0]}x{shape[1]} (raise resolution)"
            )
        return shape
    if isinstance(obs_space, spaces.Discrete):
        return (int(obs_space.n),)
    if not isinstance(obs_space, spaces.Box):
        raise ValueError(f"policy='mlp' reads Box or Discrete observations; the env has {obs_space}")
    return (int(np.prod(obs_space.shape)),)


def network_size(kind: str, obs_space: Any, n_outputs: int, hidden: Sequence[int]) -> tuple[int, int]:
    """Sizes of the network :func:`build_network` would build, computed without building it.

    Returns:
        ``(d, a)``: d parameters, and a activations (outputs of every layer, input included) per
        observation of a forward pass.
    """
    shape = _check_space(obs_space, kind)
    hidden = tuple(int(h) for h in hidden)
    if kind == "mlp":
        sizes = [shape[0], *hidden, int(n_outputs)]
        d = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
        return d, sum(sizes) + sum(hidden)  # linear and tanh outputs
    h, w, c = shape
    convs = [(c, 96, 7), (96, 64, 5), (64, 64, 3)]
    d = sum(k * k * ci * co + co for ci, co, k in convs)
    h1, w1 = (h - 7) // 4 + 1, (w - 7) // 4 + 1
    p1h, p1w = (h1 - 3) // 2 + 1, (w1 - 3) // 2 + 1
    h2, w2 = p1h - 4, p1w - 4
    p2h, p2w = h2 // 2, w2 // 2
    flat = 64 * p2h * p2w
    hid = hidden[0] if len(hidden) == 1 else 0
    d += flat * hid + hid + hid * int(n_outputs) + int(n_outputs)
    acts = (
        2 * h * w * c + 2 * 96 * h1 * w1 + 96 * p1h * p1w + 2 * 64 * h2 * w2 + 3 * flat + 2 * hid + n_outputs
    )
    return d, acts


def build_network(kind: str, obs_space: Any, n_outputs: int, hidden: Sequence[int]) -> Any:
    """The ``torch.nn.Module`` of ``kind`` (:data:`NETWORKS`) for ``obs_space`` (see the module
    docstring); ``hidden``: cnn, the fully connected width (one value); mlp, the hidden widths."""
    torch = _torch()
    nn = torch.nn
    V.one_of("policy", kind, NETWORKS)
    shape = _check_space(obs_space, kind)
    hidden = tuple(int(h) for h in hidden)
    if kind == "mlp":
        sizes = [shape[0], *hidden]
        layers: list[Any] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.Tanh()]
        layers.append(nn.Linear(sizes[-1], n_outputs))
        return nn.Sequential(*layers)
    if len(hidden) != 1:
        raise ValueError(
            f"policy='cnn' has one fully connected hidden layer: hidden must be one width, got {hidden}"
        )
    return _c3f2_class()(shape, n_outputs, hidden[0])


@functools.cache
def _c3f2_class() -> type:
    torch = _torch()
    nn = torch.nn

    class C3F2(nn.Module):
        """PEDRA's C3F2 (see the module docstring); input uint8 (B, H, W, C)."""

        def __init__(self, shape: tuple[int, ...], n_outputs: int, hidden: int) -> None:
            super().__init__()
            h, w, c = shape
            self.features = nn.Sequential(
                nn.Conv2d(c, 96, 7, stride=4), nn.ReLU(), nn.MaxPool2d(3, 2),
                nn.Conv2d(96, 64, 5), nn.ReLU(), nn.MaxPool2d(2, 2),
                nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.Flatten(),
            )  # fmt: skip
            with torch.no_grad():
                flat = self.features(torch.zeros(1, c, h, w)).shape[1]
            self.head = nn.Sequential(nn.Linear(flat, hidden), nn.ReLU(), nn.Linear(hidden, n_outputs))
            for p in self.parameters():  # PEDRA: truncated_normal(stddev=0.05) for weights and biases
                nn.init.trunc_normal_(p, std=0.05, a=-0.1, b=0.1)

        def forward(self, x):
            x = x.to(torch.float32).permute(0, 3, 1, 2)
            # tf.image.per_image_standardization: (x - mean) / max(std, 1 / sqrt(numel))
            n = x[0].numel()
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            std = x.std(dim=(1, 2, 3), keepdim=True, correction=0).clamp(min=1.0 / math.sqrt(n))
            return self.head(self.features((x - mean) / std))

    return C3F2


class FlatNet:
    """A network evaluated at flat parameter vectors.

    Args:
        module: The ``torch.nn.Module`` (its own parameters give the layout and the initial value).
    """

    def __init__(self, module: Any) -> None:
        torch = _torch()
        self.torch = torch
        self.module = module
        params = dict(module.named_parameters())
        self.names = list(params)
        self.shapes = [tuple(p.shape) for p in params.values()]
        self.numels = [p.numel() for p in params.values()]
        #: d, the number of parameters.
        self.size = int(sum(self.numels))

    def get(self) -> np.ndarray:
        """The module's current parameters as one float64 vector, shape (d,)."""
        with self.torch.no_grad():
            return self.torch.cat([p.reshape(-1) for p in self.module.parameters()]).double().numpy()

    def forward(self, flat: Any, x: Any) -> Any:
        """The network at parameters ``flat`` (a float32 tensor (d,), gradients flow to it) on ``x``."""
        params, o = {}, 0
        for name, shape, k in zip(self.names, self.shapes, self.numels):
            params[name] = flat[o : o + k].view(shape)
            o += k
        return self.torch.func.functional_call(self.module, params, (x,))

    def value_and_grad(self, theta: np.ndarray, loss_fn) -> tuple[float, np.ndarray]:
        """``loss_fn(outputs_fn)`` and its gradient w.r.t. ``theta`` (float64 (d,)), where
        ``outputs_fn(x)`` is the network at ``theta`` on inputs ``x``."""
        torch = self.torch
        flat = torch.as_tensor(theta, dtype=torch.float32).clone().requires_grad_(True)
        value = loss_fn(lambda x: self.forward(flat, x))
        (g,) = torch.autograd.grad(value, flat)
        return float(value.detach()), g.double().numpy()

    def __call__(self, theta: np.ndarray, x: Any) -> np.ndarray:
        """Outputs at ``theta`` (float64 (d,)) on ``x``, float64 (B, out), no gradient."""
        torch = self.torch
        with torch.no_grad():
            return self.forward(torch.as_tensor(theta, dtype=torch.float32), x).double().numpy()


def seeded_module(module_factory, seed: int) -> Any:
    """``module_factory()`` built under torch seed ``seed`` (the global torch stream is left as it
    was), so that its initial parameters depend on the seed only."""
    torch = _torch()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return module_factory()
