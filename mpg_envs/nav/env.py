"""Indoor visual navigation on MiniWorld: four environments, one Gymnasium env each, and a
PettingZoo parallel env with one agent per environment (the multi-task setting of paper 004 §5.2).

Install the extra first: ``pip install -e ".[nav]"`` (brings ``miniworld==2.1.0``). Importing
:mod:`mpg_envs` never imports MiniWorld; making an env does, and without the extra it raises an
:class:`ImportError` naming that install line.

Rendering. MiniWorld renders through OpenGL; without a display it uses Mesa's EGL when
``pyglet.options["headless"] = True`` is set before ``miniworld`` (and pyglet's window module) is
first imported. Making an env sets it unless pyglet's window module was already imported by the
user (e.g. to show a window on a display): then the user's setting is kept.

The four environments (PEDRA's "indoor long, cloud, frogeyes, pyramid" differ in hallway
structure, wall colours, lighting and furniture; ours differ the same ways):

========== ============================================== ================================
name       layout                                          textures / light
========== ============================================== ================================
hallway    a long 2 m wide corridor with two 90° turns      concrete walls, bright white light
rooms      six 5x5 m rooms in a 3x2 grid joined by doors    brick walls, wood floor, warm light
hall       a 14x14 m hall with boxes, barrels and cones     drywall, marble floor, dim blue light
pyramid    a 7-sided irregular hall around a central block  rock walls, low ceiling, dark red light
========== ============================================== ================================

First frames and top views: ``docs/figures/nav_<name>.png`` (``scripts/nav_figures.py``).

.. image:: ../../docs/figures/nav_hallway.png
.. image:: ../../docs/figures/nav_rooms.png
.. image:: ../../docs/figures/nav_hall.png
.. image:: ../../docs/figures/nav_pyramid.png

Actions. The agent moves forward every step. The paper's drone has 25 actions, yaw x pitch
angles; on a ground plane there is no altitude, and a quadrotor's pitch sets its forward speed,
so action ``a`` is yaw ``YAWS[a // 5]`` (degrees, turned before the move; -30, -15, 0, 15, 30)
and forward step ``SPEEDS[a % 5]`` (metres: 0.1 ... 0.3). Turning in place is not possible.

Reward. :func:`mpg_envs.nav.reward.depth_window_reward` of the depth map seen after the step
(in [0, 1]: open space ahead is worth more); ``crash_reward`` (-1) at a collision.

Episode end. A collision terminates the episode: MiniWorld refuses a move that would make the
agent (radius 0.4 m) intersect a wall or an obstacle, and the agent then stays where it was.
``max_episode_steps`` (default 500) truncates (also a step that crashes at the limit, as
the package's other envs do, so that "all truncated" ends the episode for wrappers).
``info["distance"]`` is the length of the path actually moved since the reset (the sum of
the position changes), so the mean safe flight (MSF) is exact; ``info["collision"]`` says
whether this step crashed.

Observations: RGB ``uint8`` of shape ``(resolution, resolution, 3)``; ``resolution`` defaults to
64 (what trains on 2 cores; the paper's 103 is available, see ``benchmarks/bench_nav.py``).
Resets are deterministic given the seed (agent start pose and obstacle positions are drawn from
the env's ``np_random``; no domain randomisation).
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import sys
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from mpg_envs import _validate as V
from mpg_envs.nav.reward import MAX_DEPTH, depth_window_reward

#: Environment names, in the order of the multi-task env's agents.
ENVIRONMENTS = ("hallway", "rooms", "hall", "pyramid")
#: Yaw per action group, degrees (positive = left).
YAWS = (-30.0, -15.0, 0.0, 15.0, 30.0)
#: Forward step per action within a group, metres.
SPEEDS = (0.1, 0.15, 0.2, 0.25, 0.3)
N_ACTIONS = len(YAWS) * len(SPEEDS)
#: Largest accepted camera resolution (pixels per side).
MAX_RESOLUTION = 1024
INSTALL_HINT = 'pip install -e ".[nav]"'


def _miniworld() -> Any:
    """Import MiniWorld headless, or raise an ImportError naming the extra."""
    if "miniworld" not in sys.modules:
        try:
            import pyglet
        except ImportError as err:
            raise ImportError(
                f"the navigation envs need MiniWorld (and pyglet): install the extra with {INSTALL_HINT}"
            ) from err
        if "pyglet.window" not in sys.modules:
            pyglet.options["headless"] = True
    try:
        import miniworld
        import miniworld.entity
        import miniworld.miniworld
        import miniworld.params
    except ImportError as err:
        raise ImportError(
            f"the navigation envs need MiniWorld: install the extra with {INSTALL_HINT}"
        ) from err
    return miniworld


# name -> (wall, floor, ceiling textures, ambient light, light colour)
_LOOKS = {
    "hallway": ("concrete", "floor_tiles_bw", "ceiling_tiles", 0.55, (0.8, 0.8, 0.8)),
    "rooms": ("brick_wall", "wood_planks", "ceiling_tile_noborder", 0.45, (0.8, 0.65, 0.45)),
    "hall": ("drywall", "marble", "concrete_tiles", 0.3, (0.45, 0.55, 0.8)),
    "pyramid": ("rock", "asphalt", "stucco", 0.3, (0.8, 0.45, 0.35)),
}


def check_environment(environment: Any) -> str:
    """The environment name, or a ValueError listing the known ones."""
    if not isinstance(environment, str) or environment not in ENVIRONMENTS:
        raise ValueError(f"environment must be one of {list(ENVIRONMENTS)}; got {environment!r}")
    return environment


def check_resolution(resolution: Any) -> int:
    """The camera resolution (pixels per side), or a ValueError saying what is allowed."""
    value = V.positive_int("resolution", resolution)
    if value > MAX_RESOLUTION:
        raise ValueError(f"resolution must be an int in [1, {MAX_RESOLUTION}]; got {resolution!r}")
    return value


def _check_action(action: Any) -> int:
    if isinstance(action, np.ndarray) and action.shape == ():
        action = action.item()
    if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)):
        raise ValueError(f"action must be an int in [0, {N_ACTIONS - 1}]; got {action!r}")
    if not 0 <= int(action) < N_ACTIONS:
        raise ValueError(f"action must be an int in [0, {N_ACTIONS - 1}]; got {action!r}")
    return int(action)


@functools.cache
def _env_class() -> type:
    """Build the MiniWorld subclass (MiniWorld is imported here, not at module import)."""
    mw = _miniworld()
    MiniWorldEnv = mw.miniworld.MiniWorldEnv
    Box, Ball, MeshEnt = mw.entity.Box, mw.entity.Ball, mw.entity.MeshEnt

    class IndoorNavEnv(MiniWorldEnv):
        """One indoor navigation environment (see the module docstring)."""

        metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

        def __init__(
            self,
            environment: str = "hallway",
            resolution: int = 64,
            max_episode_steps: int = 500,
            crash_reward: float = -1.0,
            render_mode: str | None = None,
        ) -> None:
            self.environment = check_environment(environment)
            resolution = check_resolution(resolution)
            max_episode_steps = V.positive_int("max_episode_steps", max_episode_steps)
            self.crash_reward = V.finite_real("crash_reward", crash_reward)
            if render_mode not in (None, "rgb_array"):
                raise ValueError(f"render_mode must be None or 'rgb_array'; got {render_mode!r}")
            wall, floor, ceil, ambient, light = _LOOKS[environment]
            self._tex = {"wall_tex": wall, "floor_tex": floor, "ceil_tex": ceil}
            params = mw.params.DEFAULT_PARAMS.no_random()
            params.set("light_ambient", [ambient] * 3)
            params.set("light_color", list(light))
            self._distance = 0.0
            # MiniWorld prints "Falling back to num_samples=4" for every frame buffer on Mesa; the
            # fallback is expected here (antialiasing samples are capped): keep stdout clean
            with contextlib.redirect_stdout(io.StringIO()):
                super().__init__(
                    max_episode_steps=max_episode_steps,
                    obs_width=resolution,
                    obs_height=resolution,
                    window_width=256,
                    window_height=256,
                    params=params,
                    domain_rand=False,
                    render_mode=render_mode,
                )
            self.action_space = spaces.Discrete(N_ACTIONS)

        # ---- layouts -------------------------------------------------------------------
        def _gen_world(self) -> None:
            getattr(self, f"_gen_{self.environment}")()

        def _gen_hallway(self) -> None:
            a = self.add_rect_room(min_x=0, max_x=14, min_z=0, max_z=2, **self._tex)
            b = self.add_rect_room(min_x=12, max_x=14, min_z=2, max_z=12, **self._tex)
            c = self.add_rect_room(min_x=14, max_x=28, min_z=10, max_z=12, **self._tex)
            self.connect_rooms(a, b, min_x=12, max_x=14)
            self.connect_rooms(b, c, min_z=10, max_z=12)
            self.place_agent(room=a, dir=self.np_random.uniform(-0.2, 0.2), max_x=3)

        def _gen_rooms(self) -> None:
            size, gap = 5.0, 0.4
            grid = {}
            for i in range(3):
                for j in range(2):
                    x0, z0 = i * (size + gap), j * (size + gap)
                    grid[i, j] = self.add_rect_room(
                        min_x=x0, max_x=x0 + size, min_z=z0, max_z=z0 + size, **self._tex
                    )
            for i in range(3):
                for j in range(2):
                    x0, z0 = i * (size + gap), j * (size + gap)
                    if i < 2:
                        self.connect_rooms(
                            grid[i, j], grid[i + 1, j], min_z=z0 + 1.5, max_z=z0 + 3.5, max_y=2.2
                        )
                    if j < 1:
                        self.connect_rooms(
                            grid[i, j], grid[i, j + 1], min_x=x0 + 1.5, max_x=x0 + 3.5, max_y=2.2
                        )
            self.place_agent(room=grid[0, 0])

        def _gen_hall(self) -> None:
            room = self.add_rect_room(min_x=0, max_x=14, min_z=0, max_z=14, **self._tex)
            colors = ("red", "green", "blue", "yellow", "purple", "grey")
            for k in range(8):
                self.place_entity(
                    Box(color=colors[k % len(colors)], size=float(self.np_random.uniform(0.6, 1.4)))
                )
            for k in range(4):
                self.place_entity(MeshEnt(mesh_name="barrel", height=1.0) if k % 2 else MeshEnt("cone", 0.8))
            self.place_entity(Ball(color="blue", size=0.8))
            self.place_agent(room=room)

        def _gen_pyramid(self) -> None:
            k = 7
            radii = (7.0, 5.5, 6.5, 4.5, 7.0, 5.0, 6.0)
            angles = [-2 * math.pi * i / k for i in range(k)]
            outline = np.array([[r * math.cos(t), r * math.sin(t)] for r, t in zip(radii, angles)])
            self.add_room(outline=outline, wall_height=2.2, **self._tex)
            self.place_entity(
                Box(color="grey", size=np.array([2.0, 2.2, 2.0])), pos=np.array([0.0, 0.0, 0.0]), dir=0.0
            )
            # beside the central block, facing round it (the way with room to fly)
            dir_ = float(self.np_random.uniform(math.pi / 2 - 0.3, math.pi / 2 + 0.3))
            x, z = self.np_random.uniform(2.6, 3.6), self.np_random.uniform(-0.5, 0.5)
            self.place_agent(dir=dir_, pos=np.array([x, 0.0, z]))  # clear of the block (radius 1.41)

        # ---- dynamics ------------------------------------------------------------------
        def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
            obs, info = super().reset(seed=V.seed(seed, "seed"), options=options)
            self._distance = 0.0
            info = dict(info, distance=0.0, collision=False)
            return obs, info

        def step(self, action: Any):
            a = _check_action(action)
            self.step_count += 1
            self.turn_agent(YAWS[a // len(SPEEDS)])
            before = np.array(self.agent.pos, dtype=np.float64)
            moved_ok = self.move_agent(SPEEDS[a % len(SPEEDS)], 0.0)
            self._distance += float(np.linalg.norm(np.asarray(self.agent.pos, dtype=np.float64) - before))
            obs = self.render_obs()
            collision = not moved_ok
            if collision:
                reward = self.crash_reward
            else:
                # MiniWorld's render_depth() renders the frame again and reads this depth buffer
                reward = depth_window_reward(self.obs_fb.get_depth_map(0.04, 100.0), max_depth=MAX_DEPTH)
            truncated = self.step_count >= self.max_episode_steps  # also on a crash at the limit
            info = {"distance": self._distance, "collision": collision}
            return obs, float(reward), collision, truncated, info

        def render(self):
            if self.render_mode == "rgb_array":
                return self.render_obs()
            return None

        def render_top(self) -> np.ndarray:
            """The top view of the layout with the agent (RGB ``uint8``)."""
            return self.render_top_view()

    IndoorNavEnv.__name__ = IndoorNavEnv.__qualname__ = "IndoorNavEnv"
    IndoorNavEnv.__module__ = __name__
    return IndoorNavEnv


def make_env(environment: str = "hallway", **kwargs: Any) -> gymnasium.Env:
    """The Gymnasium env of one environment (the entry point of ``mpg/IndoorNav-<Name>-v0``).

    Args:
        environment: One of :data:`ENVIRONMENTS`.
        **kwargs: ``resolution`` (64), ``max_episode_steps`` (500), ``crash_reward`` (-1.0),
            ``render_mode`` (None or ``"rgb_array"``).

    Raises:
        ImportError: MiniWorld is not installed (the message names ``pip install -e ".[nav]"``).
        ValueError: Unknown environment or bad keyword values.
    """
    check_environment(environment)
    unknown = sorted(set(kwargs) - {"resolution", "max_episode_steps", "crash_reward", "render_mode"})
    if unknown:
        raise ValueError(
            f"unknown keyword argument(s) {unknown}; allowed: "
            "['environment', 'resolution', 'max_episode_steps', 'crash_reward', 'render_mode']"
        )
    if "resolution" in kwargs:
        check_resolution(kwargs["resolution"])
    return _env_class()(environment=environment, **kwargs)


def _entry(environment: str):
    def entry(**kwargs: Any) -> gymnasium.Env:
        return make_env(environment, **kwargs)

    return entry


hallway_entry, rooms_entry, hall_entry, pyramid_entry = (_entry(e) for e in ENVIRONMENTS)


def task_env_makers(
    resolution: int = 64,
    max_cycles: int = 500,
    crash_reward: float = -1.0,
    environments: tuple[str, ...] = ENVIRONMENTS,
) -> list[functools.partial]:
    """One Gymnasium env maker per agent of ``mpg/IndoorNav-v0`` (its tasks), checked without
    building an env (no MiniWorld needed); arguments as :class:`IndoorNavParallelEnv`.

    DCPG's ``torch.distributed`` backend calls only its own rank's maker: each rank renders its
    own world.
    """
    resolution = check_resolution(resolution)
    max_cycles = V.positive_int("max_cycles", max_cycles)
    crash_reward = V.finite_real("crash_reward", crash_reward)
    if isinstance(environments, str) or not isinstance(environments, (list, tuple)) or not environments:
        raise ValueError(
            f"environments must be a non-empty list of names from {list(ENVIRONMENTS)}; got {environments!r}"
        )
    return [
        functools.partial(
            make_env,
            environment=check_environment(e),
            resolution=resolution,
            max_episode_steps=max_cycles,
            crash_reward=crash_reward,
        )  # fmt: skip
        for e in environments
    ]


class IndoorNavParallelEnv(ParallelEnv):
    """All four environments at once, agent ``agent_i`` in ``ENVIRONMENTS[i]`` (multi-task).

    Each agent flies in its own world; an agent that collides (terminated) or reaches
    ``max_cycles`` steps (truncated) leaves ``agents`` while the others go on (agents finish
    separately, as in ``mpg/MultiTaskGridWorld-v0``). Rewards, observations and infos are those
    of the single-environment envs.

    Args:
        resolution: Camera pixels per side (1 ... 1024; default 64).
        max_cycles: Step limit per agent (>= 1; default 500).
        crash_reward: Reward of a collision step (default -1.0).
        environments: Which environments, in agent order (default all four).
    """

    metadata = {"name": "IndoorNav-v0", "render_modes": ["rgb_array"], "is_parallelizable": True}

    def __init__(
        self,
        resolution: int = 64,
        max_cycles: int = 500,
        crash_reward: float = -1.0,
        environments: tuple[str, ...] = ENVIRONMENTS,
        render_mode: str | None = None,
    ) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array'; got {render_mode!r}")
        makers = task_env_makers(resolution, max_cycles, crash_reward, environments)
        self.max_cycles = int(max_cycles)
        self.environments = tuple(m.keywords["environment"] for m in makers)
        self.render_mode = render_mode
        self._envs = [m() for m in makers]
        self.possible_agents = [f"agent_{i}" for i in range(len(self._envs))]
        self.agents: list[str] = []
        self._by_agent = dict(zip(self.possible_agents, self._envs))
        self.observation_spaces = {a: e.observation_space for a, e in self._by_agent.items()}
        self.action_spaces = {a: e.action_space for a, e in self._by_agent.items()}

    def observation_space(self, agent: str) -> spaces.Space:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self.action_spaces[agent]

    def reset(self, seed: int | None = None, options: dict | None = None):
        self.agents = list(self.possible_agents)
        seeds = [None] * len(self._envs)
        if seed is not None:
            seeds = [
                int(s) for s in np.random.SeedSequence(V.seed(seed, "seed")).generate_state(len(self._envs))
            ]
        obs, infos = {}, {}
        for (agent, env), s in zip(self._by_agent.items(), seeds):
            obs[agent], infos[agent] = env.reset(seed=s)
        return obs, infos

    def step(self, actions: dict):
        if not isinstance(actions, dict):
            raise ValueError(f"actions must be a dict agent -> action; got {type(actions).__name__}")
        missing = [a for a in self.agents if a not in actions]
        unknown = [a for a in actions if a not in self.possible_agents]
        if missing or unknown:  # actions of agents that already finished are ignored
            raise ValueError(
                f"actions must have one entry per live agent {self.agents}; missing {missing}, "
                f"unknown agents {unknown}"
            )
        obs, rew, term, trunc, infos = {}, {}, {}, {}, {}
        for agent in self.agents:
            o, r, te, tr, info = self._by_agent[agent].step(actions[agent])
            obs[agent], rew[agent], term[agent], trunc[agent], infos[agent] = o, r, te, tr, info
        self.agents = [a for a in self.agents if not (term[a] or trunc[a])]
        return obs, rew, term, trunc, infos

    def render(self):
        if self.render_mode == "rgb_array":
            return np.concatenate([e.render_obs() for e in self._envs], axis=1)
        return None

    def close(self) -> None:
        for e in self._envs:
            e.close()


def parallel_env(**kwargs: Any) -> IndoorNavParallelEnv:
    """The PettingZoo parallel env; keyword arguments as in :class:`IndoorNavParallelEnv`."""
    return IndoorNavParallelEnv(**kwargs)


def env(**kwargs: Any):
    """The AEC version (PettingZoo's ``parallel_to_aec`` of :func:`parallel_env`)."""
    from pettingzoo.utils.conversions import parallel_to_aec

    return parallel_to_aec(parallel_env(**kwargs))
