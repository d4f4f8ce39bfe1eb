"""Baselines that train against :mod:`mpg_envs`: tabular and neural policy gradients (IPG, INPG,
NPG-BR, projected PG, log barrier, NN-PG, REINFORCE), decentralized consensus policy gradient, the
papers' reproductions and bridges to Stable-Baselines3, TorchRL, RLlib and BenchMARL
(``python -m baselines``).

It depends on ``mpg_envs``; ``mpg_envs`` never imports it. :func:`torch_threads` is the thread
policy for the small torch networks trained here (one intra-op thread unless the user chose a
count; see :mod:`baselines.threads`).
"""

from baselines.threads import torch_threads

__all__ = ["torch_threads"]
