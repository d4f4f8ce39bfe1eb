"""Quickstart: make the congestion game, play a few steps, and analyse its exact model.

Run: ``python examples/quickstart.py``
"""

from __future__ import annotations

import numpy as np
import pettingzoo

import mpg_envs  # noqa: F401  (registers the mpg/ environments)
from mpg_envs import exact

env = pettingzoo.make("parallel", "mpg/Congestion-v0", n_agents=4)
obs, infos = env.reset(seed=0)
for _ in range(3):
    obs, rewards, terminations, truncations, infos = env.step(
        {agent: env.action_space(agent).sample() for agent in env.agents}
    )
print("rewards after 3 steps:", rewards)

model = env.unwrapped.model()  # TabularModel, built from the same dynamics the simulator runs
print(model)
uniform = [np.full((model.n_states, k), 1 / k) for k in model.action_sizes]
V = exact.evaluate(model, uniform)  # V for every agent and state, shape (N, S)
print("V_i(mu) under uniform play:", V @ model.mu)
gap = exact.nash_gap(model, uniform)  # per-agent best-response improvement at mu, and worst state
print(f"Nash gap at mu: {gap.gap:.2e}; worst state: {gap.worst:.2e}")
print(f"price of anarchy: {exact.price_of_anarchy(model, uniform):.4f}")
cert = exact.cycle_residual(model, rng=np.random.default_rng(0))  # potential-free MPG test
print(f"4-cycle residual (global-state policies): {cert.max_residual:.3g} (relative {cert.relative:.2g})")
own = exact.cycle_residual(
    model, rng=np.random.default_rng(0), obs_map=env.unwrapped.observation_index("own")
)
print(f"4-cycle residual (own-position policies): {own.max_residual:.3g}")
