"""CleanRL-style PPO with parameter sharing on a batched env of this package, logging the exact Nash gap.

One file to copy and change (the layout of CleanRL's ``ppo.py``: arguments at the top, ``make_env``,
``Agent``, the rollout and update loop). What differs from CleanRL:

* **the env**: ``mpg_envs.vector.make_parallel_vec`` steps ``num_envs`` copies of an N-agent game as
  arrays (observations (n, N, ...), rewards and flags (n, N)); the n x N agents are flattened into the
  batch and one actor-critic network is shared by every agent (parameter sharing);
* **agents that finish separately** (MultiTaskGridWorld): an agent that reached its goal sits out
  the rest of its copy's episode; its steps are masked out of the advantages and the loss
  (``alive``), and a copy resets when all its agents are done;
* **time limits bootstrap**: an agent truncated by the time limit (not terminated) gets
  ``gamma * V(final observation)`` added to its last reward (the exact values are those of the
  discounted game without a time limit);
* **the exact metrics**: every ``--exact-every`` updates the shared policy is tabulated on every
  evaluated state's observation (``baselines.evaluation.ExactMetrics``) and the exact Nash gap, the
  potential, the price of anarchy and each agent's value go to TensorBoard (``exact/...``) beside
  CleanRL's usual ``charts/`` and ``losses/`` scalars.

Run::

    python examples/cleanrl_ppo_exact.py                      # coordination game, N = 2
    python examples/cleanrl_ppo_exact.py --env-id mpg/MultiTaskGridWorld-v0 \\
        --env-kwargs '{"observation": "own"}' --total-timesteps 400000
    tensorboard --logdir runs

Needs torch and tensorboard (``pip install -e '.[baselines]'``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
from torch.distributions.categorical import Categorical

from baselines.evaluation import ExactMetrics
from mpg_envs.vector import ParallelVectorEnv, make_parallel_vec


@dataclass
class Args:
    exp_name: str = "cleanrl_ppo_exact"
    """the name of this experiment"""
    seed: int = 1
    """seed of the experiment"""
    out: str = ""
    """TensorBoard folder (empty: runs/<env>__<exp_name>__<seed>__<time>)"""

    # Algorithm specific arguments
    env_id: str = "mpg/Coordination-v0"
    """the id of the environment (a registered mpg/ id with an exact model)"""
    env_kwargs: dict = field(default_factory=lambda: {"n_agents": 2, "observation": "vector"})
    """the environment's arguments (JSON on the command line)"""
    total_timesteps: int = 200_000
    """total agent-steps of the experiment (env steps x live agents)"""
    learning_rate: float = 2.5e-3
    """the learning rate of the optimizer"""
    num_envs: int = 16
    """the number of copies of the game stepped at once (each with N agents)"""
    num_steps: int = 32
    """the number of steps to run in each copy per policy rollout"""
    anneal_lr: bool = True
    """toggle learning rate annealing for policy and value networks"""
    gamma: float | None = None
    """the discount factor (None: the env's, which its exact metrics use)"""
    gae_lambda: float = 0.95
    """the lambda for the general advantage estimation"""
    num_minibatches: int = 4
    """the number of mini-batches"""
    update_epochs: int = 4
    """the K epochs to update the policy"""
    norm_adv: bool = True
    """toggles advantages normalization"""
    clip_coef: float = 0.2
    """the surrogate clipping coefficient"""
    clip_vloss: bool = True
    """toggles whether or not to use a clipped loss for the value function"""
    ent_coef: float = 0.01
    """coefficient of the entropy"""
    vf_coef: float = 0.5
    """coefficient of the value function"""
    max_grad_norm: float = 0.5
    """the maximum norm for the gradient clipping"""
    target_kl: float | None = None
    """the target KL divergence threshold"""
    hidden: int = 64
    """the width of the two hidden layers"""
    exact_every: int = 10
    """updates between exact-metrics evaluations (also before the first and after the last)"""


# --------------------------------------------------------------------------- arguments
def _positive_int(s: str) -> int:
    v = int(s)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {s!r}")
    return v


def _unit_float(s: str) -> float:
    v = float(s)
    if not 0.0 <= v <= 1.0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {s!r}")
    return v


def _positive_float(s: str) -> float:
    v = float(s)
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {s!r}")
    return v


def _nonnegative_float(s: str) -> float:
    v = float(s)
    if not (v >= 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {s!r}")
    return v


def _json_object(s: str) -> dict:
    try:
        v = json.loads(s)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"must be a JSON object, got {s!r} ({err})") from None
    if not isinstance(v, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object, got {s!r}")
    return v


def _flag(s: str) -> bool:
    if s.lower() in ("1", "true", "yes"):
        return True
    if s.lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"must be true or false, got {s!r}")


_TYPES = {
    "seed": int, "out": str, "exp_name": str, "env_id": str, "env_kwargs": _json_object,
    "total_timesteps": _positive_int, "num_envs": _positive_int, "num_steps": _positive_int,
    "num_minibatches": _positive_int, "update_epochs": _positive_int, "hidden": _positive_int,
    "exact_every": _positive_int, "learning_rate": _positive_float, "gamma": _unit_float,
    "gae_lambda": _unit_float, "clip_coef": _positive_float, "ent_coef": _nonnegative_float,
    "vf_coef": _nonnegative_float, "max_grad_norm": _positive_float, "target_kl": _positive_float,
    "anneal_lr": _flag, "norm_adv": _flag, "clip_vloss": _flag,
}  # fmt: skip


def parse_args(argv: list[str] | None = None) -> Args:
    """``Args`` from the command line (``--num-envs 8``, ``--env-kwargs '{"n_agents": 3}'``)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for f in dataclasses.fields(Args):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        shown = json.dumps(default) if isinstance(default, dict) else default
        ap.add_argument(
            "--" + f.name.replace("_", "-"), type=_TYPES[f.name], default=default, help=f"(default {shown})"
        )
    return Args(**vars(ap.parse_args(argv)))


# --------------------------------------------------------------------------- env and agent
def make_env(args: Args) -> ParallelVectorEnv:
    """``num_envs`` copies of the game, stepped as arrays (observations (n, N, ...))."""
    from mpg_envs import check_env_kwargs

    check_env_kwargs(args.env_id, args.env_kwargs)  # unknown arguments: a ValueError naming them
    return make_parallel_vec(args.env_id, args.num_envs, **args.env_kwargs)


def layer_init(layer: nn.Linear, std: float = np.sqrt(2), bias_const: float = 0.0) -> nn.Linear:
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    """One actor-critic shared by every agent; index observations ("state", "own") are one-hot."""

    def __init__(self, envs: ParallelVectorEnv, hidden: int = 64):
        super().__init__()
        space = envs.observation_spaces[envs.possible_agents[0]]
        for a in envs.possible_agents:
            if (
                envs.observation_spaces[a] != space
                or envs.action_spaces[a] != envs.action_spaces[envs.possible_agents[0]]
            ):
                raise ValueError(
                    "parameter sharing needs one observation and action space for every agent; "
                    f"{a} differs (observation='vector' gives every agent the same space)"
                )
        self.n_index = int(space.n) if hasattr(space, "n") else 0  # Discrete: one-hot of n
        n_in = self.n_index or int(np.prod(space.shape))
        n_act = int(envs.action_spaces[envs.possible_agents[0]].n)
        self.critic = nn.Sequential(
            layer_init(nn.Linear(n_in, hidden)),
            nn.Tanh(),
            layer_init(nn.Linear(hidden, hidden)),
            nn.Tanh(),
            layer_init(nn.Linear(hidden, 1), std=1.0),
        )
        self.actor = nn.Sequential(
            layer_init(nn.Linear(n_in, hidden)),
            nn.Tanh(),
            layer_init(nn.Linear(hidden, hidden)),
            nn.Tanh(),
            layer_init(nn.Linear(hidden, n_act), std=0.01),
        )

    def features(self, obs: np.ndarray | torch.Tensor) -> torch.Tensor:
        """A batch of observations as the network reads them (float32, one-hot for indices)."""
        x = torch.as_tensor(np.asarray(obs))
        if self.n_index:
            return nn.functional.one_hot(x.long(), self.n_index).float()
        return x.float().reshape(x.shape[0], -1)

    def get_value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x)

    def get_action_and_value(self, x: torch.Tensor, action: torch.Tensor | None = None):
        logits = self.actor(x)
        probs = Categorical(logits=logits)
        if action is None:
            action = probs.sample()
        return action, probs.log_prob(action), probs.entropy(), self.critic(x)

    @torch.no_grad()
    def probs(self, observations: np.ndarray) -> np.ndarray:
        """Action probabilities (S, N, A) on observations (S, N, ...), as ``ExactMetrics`` wants."""
        S, N = observations.shape[:2]
        flat = np.asarray(observations).reshape(S * N, *observations.shape[2:])
        logits = self.actor(self.features(flat)).double()
        return torch.softmax(logits, dim=-1).numpy().reshape(S, N, -1)


# --------------------------------------------------------------------------- training
def setup(args: Args) -> tuple[ParallelVectorEnv, ExactMetrics]:
    """The env and its exact metrics, every size checked before anything big is allocated.

    Raises:
        ValueError: Bad env arguments, an env without exact metrics, a network or rollout buffers
            over the memory limit (``mpg_envs.TooLargeError``).
    """
    from mpg_envs import _validate as V

    envs = make_env(args)  # checks the env's arguments and the copies' arrays
    em = ExactMetrics(envs.env)  # the joint model, or per-task models (MultiTaskGridWorld, "own")
    n, N, T = args.num_envs, envs.n_agents, args.num_steps
    space = envs.observation_spaces[envs.possible_agents[0]]
    width = int(space.n) if hasattr(space, "n") else int(np.prod(space.shape, dtype=np.int64))
    n_act = max(int(envs.action_spaces[a].n) for a in envs.possible_agents)
    h = args.hidden
    params = 2 * (width * h + h * h + h * (n_act + 1) + 3 * h)  # actor + critic (weights, biases)
    V.check_bytes(
        "the actor-critic network (parameters, gradients, Adam's two moments)",
        4 * params * 4,
        advice="lower --hidden",
    )
    # the rollout: observations (int64 or float32) and their float32 features (one-hot for indices),
    # twice (the rollout and the flattened batch), plus ~12 float32 arrays of shape (T, n, N)
    V.check_bytes(
        "the rollout buffers",
        T * n * N * (2 * 8 * width + 2 * 4 * width + 12 * 4),
        advice="lower --num-steps or --num-envs",
    )
    return envs, em


def train(
    args: Args, envs: ParallelVectorEnv | None = None, em: ExactMetrics | None = None
) -> dict[str, Any]:
    """Train; returns ``rows`` (every exact evaluation), the ``agent``, ``global_step``, ``samples``
    (the entries the losses saw) and ``exact`` (the ``ExactMetrics``).

    Args:
        args: The arguments.
        envs, em: What :func:`setup` returned (None: call it).
    """
    from torch.utils.tensorboard import SummaryWriter

    from baselines.threads import torch_threads

    torch_threads()  # one thread for a small network, unless the user chose
    if envs is None or em is None:
        envs, em = setup(args)
    n, N, T = args.num_envs, envs.n_agents, args.num_steps
    obs_shape = envs.single_observation_space.shape[1:]  # one agent's observation
    gamma = envs.gamma if args.gamma is None else args.gamma
    batch_slots = T * n * N
    num_updates = max(1, args.total_timesteps // batch_slots)
    run_name = f"{args.env_id.replace('/', '_')}__{args.exp_name}__{args.seed}__{int(time.time())}"
    writer = SummaryWriter(args.out or f"runs/{run_name}")
    writer.add_text(
        "hyperparameters",
        "|param|value|\n|-|-|\n" + "\n".join(f"|{k}|{v}|" for k, v in vars(args).items()),
    )

    # seeding
    rng = np.random.default_rng(args.seed)  # minibatch shuffles
    torch.manual_seed(args.seed)

    agent = Agent(envs, args.hidden)
    optimizer = optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)

    # storage: step t, copy k, agent i
    obs_dtype = np.int64 if agent.n_index else np.float32
    obs = np.zeros((T, n, N, *obs_shape), obs_dtype)
    actions = torch.zeros((T, n, N), dtype=torch.long)
    logprobs = torch.zeros((T, n, N))
    rewards = torch.zeros((T, n, N))
    dones = torch.zeros((T, n, N))  # the agent's episode ended at this step (terminated or truncated)
    alive = torch.zeros((T, n, N), dtype=torch.bool)  # the agent acted at this step
    values = torch.zeros((T, n, N))

    rows: list[dict[str, float]] = []

    def evaluate_exact(update: int, global_step: int) -> dict[str, float]:
        row = em.evaluate_policy(agent.probs)
        for k, v in row.items():
            writer.add_scalar(f"exact/{k}", v, global_step)
        rows.append({"update": float(update), "global_step": float(global_step), **row})
        return row

    global_step = 0  # agent-steps: actions of live agents
    samples = 0  # (step, copy, agent) entries the losses saw: the live ones
    start_time = time.time()
    next_obs, infos = envs.reset(seed=args.seed)
    next_alive = torch.as_tensor(infos["alive"])
    ep_ret, ep_len = np.zeros((n, N)), np.zeros((n, N), np.int64)
    evaluate_exact(0, 0)
    v_loss = pg_loss = entropy_loss = torch.tensor(0.0)
    approx_kl = old_approx_kl = torch.tensor(0.0)
    clipfracs: list[float] = []
    for update in range(1, num_updates + 1):
        if args.anneal_lr:
            frac = 1.0 - (update - 1.0) / num_updates
            optimizer.param_groups[0]["lr"] = frac * args.learning_rate

        for step in range(T):
            obs[step] = next_obs
            alive[step] = next_alive
            global_step += int(next_alive.sum())
            with torch.no_grad():
                x = agent.features(next_obs.reshape(n * N, *obs_shape))
                action, logprob, _, value = agent.get_action_and_value(x)
            actions[step] = action.view(n, N)
            logprobs[step] = logprob.view(n, N)
            values[step] = value.view(n, N)

            next_obs, reward, terminated, truncated, infos = envs.step(actions[step].numpy())
            live = alive[step].numpy()
            ep_ret += reward  # zero for agents that sat out
            ep_len += live
            reward = reward.copy()
            cut = truncated & ~terminated  # an agent that terminates at the time limit is both
            if cut.any():  # time limit: bootstrap from the state the transition reached
                with torch.no_grad():
                    final = infos["final_obs"]
                    v_final = agent.get_value(agent.features(final.reshape(n * N, *obs_shape))).view(n, N)
                reward[cut] += gamma * v_final.numpy()[cut]
            rewards[step] = torch.as_tensor(reward, dtype=torch.float32)
            done = (terminated | truncated) & live
            dones[step] = torch.as_tensor(done, dtype=torch.float32)
            next_alive = torch.as_tensor(infos["alive"])

            if done.any():  # episode statistics per agent-episode (undiscounted, not bootstrapped)
                writer.add_scalar("charts/episodic_return", ep_ret[done].mean(), global_step)
                writer.add_scalar("charts/episodic_length", ep_len[done].mean(), global_step)
                ep_ret[done], ep_len[done] = 0.0, 0

        # GAE per (copy, agent): the chain is cut where the agent's episode ended; steps at which the
        # agent sat out (finished, copy still running) are masked and carry no advantage
        with torch.no_grad():
            next_value = agent.get_value(agent.features(next_obs.reshape(n * N, *obs_shape))).view(n, N)
            advantages = torch.zeros((T, n, N))
            lastgaelam = torch.zeros((n, N))
            for t in reversed(range(T)):
                nextvalues = next_value if t == T - 1 else values[t + 1]
                nextnonterminal = 1.0 - dones[t]
                delta = rewards[t] + gamma * nextvalues * nextnonterminal - values[t]
                lastgaelam = delta + gamma * args.gae_lambda * nextnonterminal * lastgaelam
                lastgaelam = torch.where(alive[t], lastgaelam, torch.zeros(()))
                advantages[t] = lastgaelam
            returns = advantages + values

        # flatten the batch, keeping the steps at which the agent acted
        keep = alive.reshape(-1)
        b_obs = agent.features(obs.reshape(T * n * N, *obs_shape))[keep]
        b_logprobs = logprobs.reshape(-1)[keep]
        b_actions = actions.reshape(-1)[keep]
        b_advantages = advantages.reshape(-1)[keep]
        b_returns = returns.reshape(-1)[keep]
        b_values = values.reshape(-1)[keep]
        batch_size = int(keep.sum())
        samples += batch_size

        # optimizing the policy and value network
        b_inds = np.arange(batch_size)
        clipfracs = []
        for _epoch in range(args.update_epochs):
            rng.shuffle(b_inds)
            for mb_inds in np.array_split(b_inds, min(args.num_minibatches, batch_size)):
                _, newlogprob, entropy, newvalue = agent.get_action_and_value(
                    b_obs[mb_inds], b_actions[mb_inds]
                )
                logratio = newlogprob - b_logprobs[mb_inds]
                ratio = logratio.exp()

                with torch.no_grad():
                    # calculate approx_kl http://joschu.net/blog/kl-approx.html
                    old_approx_kl = (-logratio).mean()
                    approx_kl = ((ratio - 1) - logratio).mean()
                    clipfracs += [((ratio - 1.0).abs() > args.clip_coef).float().mean().item()]

                mb_advantages = b_advantages[mb_inds]
                if args.norm_adv and len(mb_inds) > 1:
                    mb_advantages = (mb_advantages - mb_advantages.mean()) / (mb_advantages.std() + 1e-8)

                # policy loss
                pg_loss1 = -mb_advantages * ratio
                pg_loss2 = -mb_advantages * torch.clamp(ratio, 1 - args.clip_coef, 1 + args.clip_coef)
                pg_loss = torch.max(pg_loss1, pg_loss2).mean()

                # value loss
                newvalue = newvalue.view(-1)
                if args.clip_vloss:
                    v_loss_unclipped = (newvalue - b_returns[mb_inds]) ** 2
                    v_clipped = b_values[mb_inds] + torch.clamp(
                        newvalue - b_values[mb_inds], -args.clip_coef, args.clip_coef
                    )
                    v_loss_clipped = (v_clipped - b_returns[mb_inds]) ** 2
                    v_loss = 0.5 * torch.max(v_loss_unclipped, v_loss_clipped).mean()
                else:
                    v_loss = 0.5 * ((newvalue - b_returns[mb_inds]) ** 2).mean()

                entropy_loss = entropy.mean()
                loss = pg_loss - args.ent_coef * entropy_loss + v_loss * args.vf_coef

                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                optimizer.step()

            if args.target_kl is not None and approx_kl > args.target_kl:
                break

        y_pred, y_true = b_values.numpy(), b_returns.numpy()
        var_y = np.var(y_true)
        explained_var = np.nan if var_y == 0 else 1 - np.var(y_true - y_pred) / var_y

        writer.add_scalar("charts/learning_rate", optimizer.param_groups[0]["lr"], global_step)
        writer.add_scalar("losses/value_loss", v_loss.item(), global_step)
        writer.add_scalar("losses/policy_loss", pg_loss.item(), global_step)
        writer.add_scalar("losses/entropy", entropy_loss.item(), global_step)
        writer.add_scalar("losses/old_approx_kl", old_approx_kl.item(), global_step)
        writer.add_scalar("losses/approx_kl", approx_kl.item(), global_step)
        writer.add_scalar("losses/clipfrac", np.mean(clipfracs), global_step)
        writer.add_scalar("losses/explained_variance", explained_var, global_step)
        sps = int(global_step / max(time.time() - start_time, 1e-9))
        writer.add_scalar("charts/SPS", sps, global_step)
        if update % args.exact_every == 0 or update == num_updates:
            row = evaluate_exact(update, global_step)
            print(
                f"update {update}/{num_updates}, agent-steps {global_step}: exact Nash gap "
                f"{row['nash_gap']:.4f}, welfare {row['welfare']:.3f}, SPS {sps}"
            )

    writer.close()
    envs.close()
    last = rows[-1]
    print(
        f"final: {args.env_id} {json.dumps(args.env_kwargs)}, {global_step} agent-steps in "
        f"{time.time() - start_time:.1f} s: exact Nash gap {rows[0]['nash_gap']:.4f} -> "
        f"{last['nash_gap']:.4f}, welfare {rows[0]['welfare']:.3f} -> {last['welfare']:.3f}"
    )
    return {"rows": rows, "agent": agent, "global_step": global_step, "samples": samples, "exact": em}


if __name__ == "__main__":
    args = parse_args()
    try:
        envs, em = setup(args)
    except ValueError as err:  # bad env arguments or sizes: refused before anything is written
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    train(args, envs, em)
