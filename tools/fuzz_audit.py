"""Bad-input audit of ``mpg_envs``: every case in its own subprocess, with a memory limit and a timeout.

Each case is a snippet of Python run against the package: an env constructor with a bad keyword
argument, ``reset``/``step`` misuse, a ``TabularModel`` with a bad field, an ``exact`` function with a
bad policy, ``mu``, ``agent``, ``rng`` or ``obs_map``, or a huge size. A case expects one of

* ``error``: the input is invalid and must raise;
* ``accept``: the input is valid (e.g. a float32 policy, an ``np.int64`` seed) and must work; an
  optional ``check`` snippet then asserts that the result is right;
* ``either``: a clear error or a correct result are both fine (e.g. a large but finite size).

Every case runs in a fresh interpreter with ``RLIMIT_AS`` (default 3 GiB) and a wall-clock timeout
(default 30 s), so a memory bomb or a hang cannot take the machine down. Outcomes:

=================  ==========================================================================
``clear``          an ``error`` case raised ValueError, TypeError, ModelTooLargeError or
                   RuntimeError (or a subclass) whose message names the bad value (its repr) or, for size
                   cases, an explicit size and limit
``accepted``       an ``accept``/``either`` case ran and its check passed
``unclear``        any other exception, or a message that does not name the value
``silent``         an ``error`` case raised nothing, or a check found a wrong result
``rejected``       an ``accept`` case raised (a valid input refused)
``crash``          timeout, memory limit (MemoryError), or death by a signal
=================  ==========================================================================

Usage::

    PYTHONPATH=. python tools/fuzz_audit.py                 # the envs set, table + JSON
    PYTHONPATH=. python tools/fuzz_audit.py -k gamma -v     # cases whose id contains "gamma"
    PYTHONPATH=. python tools/fuzz_audit.py --out /tmp/audit.json --jobs 2

Case sets (``--set``):

* ``envs`` (default, the original cases; results in ``tools/results/fuzz_audit.json``): the
  environments, their models and ``exact``.
* ``baselines`` (``tools/fuzz_cases_baselines.py``; results in
  ``tools/results/fuzz_audit_baselines.json``): the surfaces added after them -- the ``dcpg``,
  ``train``, ``sb3`` and ``reproduce`` sub-commands of ``python -m baselines`` (each case runs the
  CLI as a subprocess and prepares run folders to resume, damage, edit or resume twice at once),
  DCPG and its graphs and weights, policies, sampler and estimators, the vector envs, the
  PettingZoo/Gymnasium registrations and the SB3 helpers. A CLI refusal is ``clear`` only with
  exit status 2, ``error: ...`` naming the value on stderr, no run folder left in ``--out`` and a
  refused ``--resume``'s folder unchanged; a CLI that runs past its 60 s is a hang (``crash``).
  Its cases run with a 100 s timeout (``--timeout`` still overrides it).
* ``all``: both.

Before/after counts of one set (e.g. on a base commit and on a branch)::

    git worktree add --detach /tmp/base <commit>
    PYTHONPATH=/tmp/base python tools/fuzz_audit.py --set baselines --jobs 2 \
        --out tools/results/fuzz_audit_baselines_before.json
    PYTHONPATH=. python tools/fuzz_audit.py --set baselines --jobs 2 -v

The table gives the counts per outcome, the JSON every case with its outcome, message and time;
``-v`` prints every case that is not clear or accepted, grouped by surface (the id's prefix).

The package under test is whatever ``import mpg_envs`` finds through ``PYTHONPATH`` (the children
run with ``python -P`` from the temporary directory, so the current directory does not shadow it);
the table and the JSON name the package each case ran against. The cases use only the public API,
so the same script audits older versions of the package.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

OUTCOMES = ("clear", "accepted", "unclear", "silent", "rejected", "crash")
#: Exceptions the baselines set's CLI helpers raise for a hang or a death by a signal (crash), and
#: for a command that ran instead of refusing (silent).
CRASH_RAISED = ("MemoryError", "CLITimeout", "CLIKilled")
SILENT_RAISED = ("CLIStarted",)
SETS = ("envs", "baselines", "all")
CLEAR_TYPES = ("ValueError", "TypeError", "ModelTooLargeError", "RuntimeError")
SIZE = "<size>"  # marker: the message must give an explicit size and a limit
RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_OUT = RESULTS / "fuzz_audit.json"
DEFAULT_OUTS = {"envs": DEFAULT_OUT, "baselines": RESULTS / "fuzz_audit_baselines.json",
                "all": RESULTS / "fuzz_audit_all.json"}  # fmt: skip
#: Per-case timeouts of the sets (seconds) unless --timeout is given.
SET_TIMEOUTS = {"envs": 30.0, "baselines": 100.0}

# Run in the child before every case.
PRELUDE = r'''
import numpy as np
import scipy.sparse as sp
import gymnasium
import pettingzoo
import mpg_envs
from mpg_envs import exact, TabularModel, ModelTooLargeError
from mpg_envs import congestion_v0, coordination_v0, distancing_v0, multitask_gridworld_v0
from mpg_envs.core import sample_step, sample_initial, build_model

cong = congestion_v0.parallel_env
dist = distancing_v0.parallel_env
coord = coordination_v0.parallel_env
grid = multitask_gridworld_v0.parallel_env
try:  # the zero-sum game (absent from older versions of the package)
    from mpg_envs import tugofwar_v0, zerosum

    tug = tugofwar_v0.parallel_env
except ImportError:
    tug = zerosum = None


def task(**kw):
    if "max_steps" in kw:  # the env's own argument: gymnasium.make takes max_episode_steps instead
        from mpg_envs.gridworld import GridWorldTaskEnv

        return GridWorldTaskEnv(**kw)
    return gymnasium.make("mpg/GridWorldTask-v0", **kw).unwrapped


def ready(env, seed=0):
    env.reset(seed=seed)
    return env


def zeros(env):
    return {a: 0 for a in env.agents}


def small():
    """A 2-agent congestion model, S = 10, actions (2, 2)."""
    return cong(n_agents=2, gamma=0.9).model()


def uni(m):
    return exact.uniform_policy(m)


def pure(m, a=0):
    return [np.eye(k)[np.full(m.n_states, a)] for k in m.action_sizes]


def model_args(**over):
    """Arguments of a valid 2-state, 2-agent TabularModel, with some fields replaced."""
    P = np.tile([0.5, 0.5], (8, 1))
    args = dict(n_agents=2, action_sizes=(2, 2), P=P, R=np.zeros((2, 2, 4)), mu=[0.5, 0.5], gamma=0.9)
    args.update(over)
    return args


def tm(**over):
    return TabularModel(**model_args(**over))
'''

# Run in the child for every case: executes the snippet and reports the outcome as JSON.
CHILD = r"""
import json, sys, traceback
case = json.loads(sys.argv[1])
ns = {}
exec(compile(PRELUDE, "<prelude>", "exec"), ns)
res = {"raised": None, "message": "", "check_failed": None, "package": ns["mpg_envs"].__path__[0]}
try:
    exec(compile(case["code"], "<case>", "exec"), ns)
except MemoryError as e:
    res["raised"] = "MemoryError"
    res["message"] = repr(e)
except BaseException as e:  # noqa: BLE001
    res["raised"] = type(e).__name__
    res["bases"] = [c.__name__ for c in type(e).__mro__]
    res["message"] = str(e)[:2000]
    res["where"] = traceback.format_exc(limit=-2)[-800:]
else:
    if case.get("check"):
        try:
            exec(compile(case["check"], "<check>", "exec"), ns)
        except BaseException as e:  # noqa: BLE001
            res["check_failed"] = f"{type(e).__name__}: {str(e)[:500]}"
print("@@RESULT@@" + json.dumps(res))
"""


@dataclass
class Case:
    """One audit case.

    Attributes:
        id: Unique name, ``area/what``.
        code: Snippet to run after the prelude.
        expect: ``"error"``, ``"accept"`` or ``"either"``.
        bad: Strings of which one must appear in the error message (the bad value's repr), or
            ``SIZE`` for an explicit size and limit. Unused for ``accept``.
        check: Snippet run after ``code`` succeeded; an exception in it means a wrong result.
        set: The case set (``"envs"`` or ``"baselines"``): which prelude runs before the case.
    """

    id: str
    code: str
    expect: str = "error"
    bad: tuple[str, ...] = ()
    check: str = ""
    set: str = "envs"


def E(id: str, code: str, *bad: str, check: str = "") -> Case:
    """An invalid input that must raise a clear error naming one of ``bad``."""
    return Case(id, code, "error", tuple(bad), check)


def A(id: str, code: str, check: str = "") -> Case:
    """A valid edge input that must be accepted (and pass ``check``)."""
    return Case(id, code, "accept", (), check)


def EITHER(id: str, code: str, *bad: str, check: str = "") -> Case:
    """Either a clear error naming one of ``bad`` or a correct result."""
    return Case(id, code, "either", tuple(bad), check)


# ------------------------------------------------------------------------------------------ cases
def _ctor_cases() -> list[Case]:
    """Constructor keyword arguments of every registered env."""
    out: list[Case] = []
    common = [  # (kwarg expression, expected token in the message)
        ("gamma=True", "True"),
        ("gamma=0", "0"),
        ("gamma=-0.5", "-0.5"),
        ("gamma=1.5", "1.5"),
        ("gamma=float('nan')", "nan"),
        ("gamma='0.9'", "'0.9'"),
        ("gamma=None", "None"),
        ("gamma=[0.9]", "[0.9]"),
        ("max_cycles=True", "True"),
        ("max_cycles=0", "0"),
        ("max_cycles=-3", "-3"),
        ("max_cycles=2.5", "2.5"),
        ("max_cycles='10'", "'10'"),
        ("max_cycles=None", "None"),
        ("max_cycles=float('inf')", "inf"),
        ("observation='pixels'", "'pixels'"),
        ("observation=None", "None"),
        ("render_mode='video'", "'video'"),
        ("render_mode=True", "True"),
        ("no_such_option=1", "'no_such_option'"),
    ]
    envs = {"cong": "cong", "dist": "dist", "coord": "coord", "grid": "grid", "tug": "tug"}
    for short, fn in envs.items():
        for kw, tok in common:
            out.append(E(f"{short}/{kw}", f"{fn}({kw})", tok))
    out += [
        # congestion
        E("cong/n_agents=0", "cong(n_agents=0)", "0"),
        E("cong/n_agents=-3", "cong(n_agents=-3)", "-3"),
        E("cong/n_agents=2.5", "cong(n_agents=2.5)", "2.5"),
        E("cong/n_agents=True", "cong(n_agents=True)", "True"),
        E("cong/n_agents='4'", "cong(n_agents='4')", "'4'"),
        E("cong/n_agents=None", "cong(n_agents=None)", "None"),
        E("cong/n_layers=0", "cong(n_layers=0)", "0"),
        E("cong/n_layers=True", "cong(n_layers=True)", "True"),
        E("cong/n_layers=1.0", "cong(n_layers=1.0)", "1.0"),
        E("cong/width=0", "cong(width=0)", "0"),
        E("cong/width=True", "cong(width=True)", "True"),
        E("cong/width=2.0", "cong(width=2.0)", "2.0"),
        E("cong/reward='square'", "cong(reward='square')", "'square'"),
        E("cong/reward=[1.0]", "cong(reward=[1.0])", "[1.0]"),
        E("cong/reward=nan", "cong(reward=[1.0, float('nan'), 0.3, 0.25])", "nan"),
        E("cong/reward=True", "cong(reward=True)", "True"),
        E("cong/reward=None", "cong(reward=None)", "None"),
        E("cong/reward=bools", "cong(reward=[True, False, True, False])", "True"),
        E("cong/reward=callable-nan", "cong(reward=lambda l: l * np.nan)", "nan"),
        E("cong/load='node'", "cong(load='node')", "'node'"),
        E("cong/load=None", "cong(load=None)", "None"),
        E("cong/at_sink='loop'", "cong(at_sink='loop')", "'loop'"),
        E("cong/restart_reward=nan", "cong(restart_reward=float('nan'))", "nan"),
        E("cong/restart_reward=True", "cong(restart_reward=True)", "True"),
        E("cong/restart_reward='1'", "cong(restart_reward='1')", "'1'"),
        E("cong/slip=True", "cong(slip=True)", "True"),
        E("cong/slip=1.5", "cong(slip=1.5)", "1.5"),
        E("cong/slip=-0.1", "cong(slip=-0.1)", "-0.1"),
        E("cong/slip=nan", "cong(slip=float('nan'))", "nan"),
        E("cong/slip='0.1'", "cong(slip='0.1')", "'0.1'"),
        E("cong/slip=None", "cong(slip=None)", "None"),
        E("cong/graph='cycle'", "cong(graph='cycle')", "'cycle'"),
        E("cong/graph=None", "cong(graph=None)", "None"),
        E("cong/ring+terminate", "cong(graph='ring', at_sink='terminate')", "'terminate'"),
        E("cong/gamma=1+restart", "cong(gamma=1.0)", "1.0"),
        E("cong/gamma=np.int64(1)+restart", "cong(gamma=np.int64(1))", "1"),
        A(
            "cong/gamma=np.int64(1)+terminate",
            "env = cong(gamma=np.int64(1), at_sink='terminate')",
            check="assert env.gamma == 1.0 and env.model().gamma == 1.0",
        ),
        A(
            "cong/gamma=np.float32",
            "env = cong(gamma=np.float32(0.9))",
            check="assert abs(env.gamma - 0.9) < 1e-6",
        ),
        A(
            "cong/n_agents=np.int64",
            "env = ready(cong(n_agents=np.int64(3)))",
            check="assert env.num_agents == 3",
        ),
        A(
            "cong/max_cycles=np.int64",
            "env = cong(max_cycles=np.int64(5))",
            check="assert env.max_cycles == 5",
        ),
        A(
            "cong/slip=np.float32",
            "env = cong(slip=np.float32(0.25), n_agents=2)",
            check="assert abs(env.dynamics.slip - 0.25) < 1e-7",
        ),
        A("cong/slip=1-int", "env = cong(slip=1, n_agents=2)", check="assert env.dynamics.slip == 1.0"),
        # congestion: sizes
        E("cong/width=1e5", "cong(width=10**5, n_agents=1)", SIZE),
        E("cong/n_layers=1e7", "cong(n_layers=10**7, n_agents=1)", SIZE),
        E("cong/n_agents=100", "cong(n_agents=100)", SIZE),
        E("cong/n_agents=1e6,width=3", "cong(n_agents=10**6, width=3)", SIZE),
        E("cong/n_agents=1e9", "cong(n_agents=10**9)", SIZE),
        E("cong/n_agents=1e18,width=1", "cong(n_agents=10**18, width=1)", SIZE),
        EITHER(
            "cong/width=1000,N=1:model",
            "m = cong(width=1000, n_agents=1, gamma=0.9).model()",
            SIZE,
            check="assert m.n_states == 2002 and m.n_joint_actions == 1000",
        ),
        EITHER(
            "cong/width=300,N=2:model",
            "m = cong(width=300, n_agents=2, gamma=0.9).model()",
            SIZE,
            check="assert m.n_states == 2 + 2 * 300**2",
        ),
        E("cong/width=1000:model", "cong(width=1000).model()", SIZE),
        A("cong/width=1000:step", "env = ready(cong(width=1000)); env.step({a: 999 for a in env.agents})"),
        EITHER(
            "cong/n_agents=2e4,width=1",
            "env = ready(cong(n_agents=20000, width=1)); env.step(zeros(env))",
            SIZE,
        ),
        EITHER(
            "cong/vector,N=1e4,width=1",
            "env = ready(cong(n_agents=10**4, width=1, observation='vector')); env.step(zeros(env))",
            SIZE,
        ),
        EITHER(
            "cong/rgb,width=300",
            "env = ready(cong(width=300, n_agents=1, render_mode='rgb_array')); env.render()",
            SIZE,
        ),
        EITHER(
            "cong/rgb,n_layers=3000",
            "env = ready(cong(n_layers=3000, width=1, n_agents=1, render_mode='rgb_array')); env.render()",
            SIZE,
        ),
        E("cong/model(max_transitions=True)", "cong(n_agents=2).model(max_transitions=True)", "True"),
        E("cong/model(max_transitions=-1)", "cong(n_agents=2).model(max_transitions=-1)", "-1"),
        E("cong/model(max_transitions='x')", "cong(n_agents=2).model(max_transitions='x')", "'x'"),
        E("cong/model(max_transitions=10)", "cong(n_agents=2).model(max_transitions=10)", SIZE),
        # distancing
        E("dist/n_agents=0", "dist(n_agents=0)", "0"),
        E("dist/n_agents=True", "dist(n_agents=True)", "True"),
        E("dist/n_agents=2.5", "dist(n_agents=2.5)", "2.5"),
        E("dist/n_agents='8'", "dist(n_agents='8')", "'8'"),
        E("dist/weights=[]", "dist(weights=[])", "[]"),
        E("dist/weights=nan", "dist(weights=[1, float('nan')])", "nan"),
        E("dist/weights='abcd'", "dist(weights='abcd')", "'abcd'"),
        E("dist/weights=2d", "dist(weights=[[1, 2], [3, 4]])", "[[1, 2], [3, 4]]"),
        E("dist/weights=bools", "dist(weights=[True, 2.0])", "True"),
        E("dist/weights=5", "dist(weights=5)", "5"),
        E("dist/weights=None", "dist(weights=None)", "None"),
        E("dist/weights=str-item", "dist(weights=[1, 'a'])", "'a'"),
        E("dist/penalty=True", "dist(penalty=True)", "True"),
        E("dist/penalty=inf", "dist(penalty=float('inf'))", "inf"),
        E("dist/penalty='100'", "dist(penalty='100')", "'100'"),
        E("dist/safe_threshold=True", "dist(safe_threshold=True)", "True"),
        E("dist/safe_threshold=9", "dist(safe_threshold=9)", "9"),
        E("dist/distancing_threshold=-1", "dist(distancing_threshold=-1)", "-1"),
        E("dist/distancing_threshold='2'", "dist(distancing_threshold='2')", "'2'"),
        E("dist/mu=bools", "dist(mu=(True, False))", "True"),
        E("dist/mu=3", "dist(mu=(0.2, 0.3, 0.5))", "(0.2, 0.3, 0.5)"),
        E("dist/mu=neg", "dist(mu=(-0.5, 1.5))", "-0.5"),
        E("dist/mu=None", "dist(mu=None)", "None"),
        E("dist/gamma=1", "dist(gamma=1.0)", "1.0"),
        E("dist/observation=own", "dist(observation='own')", "'own'"),
        A("dist/gamma=np.float32", "env = dist(gamma=np.float32(0.9))"),
        A(
            "dist/n_agents=np.int64",
            "env = ready(dist(n_agents=np.int64(3)))",
            check="assert env.num_agents == 3",
        ),
        EITHER(
            "dist/weights=range(1,1001)",
            "env = ready(dist(weights=range(1, 1001))); env.step(zeros(env))",
            SIZE,
        ),
        EITHER(
            "dist/weights=range(1,1001),N=2:model",
            "m = dist(weights=range(1, 1001), n_agents=2).model()",
            SIZE,
            check="assert m.n_joint_actions == 10**6",
        ),
        EITHER(
            "dist/K=1e5,N=1:model",
            "m = dist(weights=np.ones(10**5), n_agents=1).model()",
            SIZE,
            check="assert m.n_joint_actions == 10**5",
        ),
        EITHER("dist/n_agents=1e5", "env = ready(dist(n_agents=10**5)); env.step(zeros(env))", SIZE),
        E("dist/n_agents=1e8", "ready(dist(n_agents=10**8))", SIZE),
        EITHER(
            "dist/vector,N=2e4",
            "env = ready(dist(n_agents=20000, observation='vector')); env.step(zeros(env))",
            SIZE,
        ),
        EITHER(
            "dist/rgb,K=1e5",
            "env = ready(dist(weights=np.ones(10**5), render_mode='rgb_array')); env.render()",
            SIZE,
        ),
        EITHER(
            "dist/rgb,N=1e4", "env = ready(dist(n_agents=10**4, render_mode='rgb_array')); env.render()", SIZE
        ),
        # tug of war (zero-sum) and its minimax oracle
        E("tug/n_positions=1", "tug(n_positions=1)", "1"),
        E("tug/n_positions=10**9", "tug(n_positions=10**9)", "1000000000"),
        E("tug/n_positions=2.0", "tug(n_positions=2.0)", "2.0"),
        E("tug/slip=-0.1", "tug(slip=-0.1)", "-0.1"),
        E("tug/heads_bonus=nan", "tug(heads_bonus=float('nan'))", "nan"),
        E("tug/position_reward=1e309", "tug(position_reward=1e309)", "inf"),
        E("tug/gamma=1", "tug(gamma=1)", "1"),
        E("zerosum/shapley coord", "zerosum.shapley(coord(n_agents=2).model())", "6.0"),
        E("zerosum/shapley tol=0", "zerosum.shapley(tug().model(), tol=0)", "0"),
        E("zerosum/matrix nan", "zerosum.solve_matrix_game([[1.0, float('nan')]])", "nan"),
        A(
            "zerosum/matrix 1e300",
            "sol = zerosum.solve_matrix_game([[1e300, -1e300], [-1e300, 1e300]])",
            check="assert abs(sol.value) < 1e288 and abs(sol.row[0] - 0.5) < 1e-9",
        ),
        # coordination
        E("coord/n_agents=1", "coord(n_agents=1)", "1"),
        E("coord/n_agents=9", "coord(n_agents=9)", "9"),
        E("coord/n_agents=True", "coord(n_agents=True)", "True"),
        E("coord/n_agents=3.0", "coord(n_agents=3.0)", "3.0"),
        E("coord/eps=True", "coord(eps=True)", "True"),
        E("coord/eps=1.5", "coord(eps=1.5)", "1.5"),
        E("coord/eps=nan", "coord(eps=float('nan'))", "nan"),
        E("coord/eps=None", "coord(eps=None)", "None"),
        E("coord/gamma=1", "coord(gamma=1)", "1"),
        E("coord/gamma=np.int64(1)", "coord(gamma=np.int64(1))", "1"),
        A(
            "coord/n_agents=np.int64",
            "env = ready(coord(n_agents=np.int64(2)))",
            check="assert env.num_agents == 2",
        ),
        A("coord/eps=np.float32", "env = coord(eps=np.float32(0.2))"),
        A("coord/gamma=np.float64", "env = coord(gamma=np.float64(0.5))", check="assert env.gamma == 0.5"),
        # multi-task gridworld
        E("grid/layout=5", "grid(layout=5)", "5"),
        E("grid/layout=None", "grid(layout=None)", "None"),
        E("grid/layout='fig2'", "grid(layout='fig2')", "'fig2'"),
        E("grid/layout=[]", "grid(layout=[])", "[]"),
        E("grid/layout=['S.G', 3]", "grid(layout=['S.G', 3])", "3"),
        E("grid/layout=bad-char", "grid(layout=['S.X'])", "'X'"),
        E("grid/layout=no-start-cell", "grid(layout=['G'])", "'G'"),
        E("grid/slip=True", "grid(slip=True)", "True"),
        E("grid/slip=1.5", "grid(slip=1.5)", "1.5"),
        E("grid/slip='0.1'", "grid(slip='0.1')", "'0.1'"),
        E("grid/slip=nan", "grid(slip=float('nan'))", "nan"),
        E("grid/chain_p=True", "grid(layout='chain_slip', chain_p=True)", "True"),
        E("grid/chain_p=2", "grid(layout='chain_slip', chain_p=2.0)", "2.0"),
        E("grid/chain_p='0.7'", "grid(layout='chain_slip', chain_p='0.7')", "'0.7'"),
        E("grid/chain_p=nan", "grid(layout='chain_slip', chain_p=float('nan'))", "nan"),
        E("grid/gamma=1", "grid(gamma=1.0)", "1.0"),
        EITHER(
            "grid/slip on chain_reversed",
            "m0 = grid(layout='chain_reversed', gamma=0.9, slip=0.0).model()\n"
            "m1 = grid(layout='chain_reversed', gamma=0.9, slip=0.5).model()",
            "0.5",
            check="assert (m0.P != m1.P).nnz > 0",
        ),
        EITHER(
            "grid/slip on chain_slip",
            "m0 = grid(layout='chain_slip', gamma=0.9, slip=0.0).model()\n"
            "m1 = grid(layout='chain_slip', gamma=0.9, slip=0.5).model()",
            "0.5",
            check="assert (m0.P != m1.P).nnz > 0",
        ),
        A("grid/slip=np.float32", "env = grid(slip=np.float32(0.1))"),
        A("grid/gamma=np.float32", "env = grid(gamma=np.float32(0.9))"),
        EITHER("grid/huge grid", "env = ready(grid(layout=['S' + '.' * 10**6 + 'G']))", SIZE),
        EITHER("grid/4000 cells", "env = ready(grid(layout=['S' + '.' * 4000 + 'G']))", SIZE),
        E("grid/1000 tasks joint", "grid(layout=['S.G'] * 1000)", SIZE),
        EITHER(
            "grid/rgb 300 tasks",
            "env = ready(grid(layout=['S' + '.' * 800 + 'G'] * 300, render_mode='rgb_array')); env.render()",
            SIZE,
        ),
        E("grid/model too large", "grid().model()", SIZE),
    ]
    return out


def _reset_step_cases() -> list[Case]:
    """reset/step misuse on the PettingZoo envs and the Gymnasium GridWorldTask-v0."""
    return [
        E("reset/seed=True", "cong().reset(seed=True)", "True"),
        E("reset/seed=-1", "cong().reset(seed=-1)", "-1"),
        E("reset/seed=1.5", "cong().reset(seed=1.5)", "1.5"),
        E("reset/seed='a'", "cong().reset(seed='a')", "'a'"),
        A(
            "reset/seed=np.int64",
            "e1 = cong(); o1, _ = e1.reset(seed=np.int64(3)); e2 = cong(); e2.reset(seed=3)",
            check="e1.step(zeros(e1)); e2.step(zeros(e2)); assert e1.state_index() == e2.state_index()\n"
            "assert e1.np_random.random() == e2.np_random.random()",
        ),
        A("reset/seed=np.int64 dist", "ready(dist(), seed=np.int64(7))"),
        A("reset/seed=np.uint32 coord", "ready(coord(), seed=np.uint32(7))"),
        E("reset/options=list", "cong().reset(options=[1])", "[1]"),
        E("reset/options=str", "cong().reset(options='state')", "'state'"),
        E("reset/state=True", "cong(n_agents=2).reset(options={'state': True})", "True"),
        E("reset/state=1.0", "cong(n_agents=2).reset(options={'state': 1.0})", "1.0"),
        E("reset/state=-1", "cong(n_agents=2).reset(options={'state': -1})", "-1"),
        E("reset/state=10", "cong(n_agents=2).reset(options={'state': 10})", "10"),
        E("reset/state=2**70", "cong(n_agents=2).reset(options={'state': 2**70})", str(2**70)),
        E("reset/state='s'", "cong(n_agents=2).reset(options={'state': 's'})", "'s'"),
        E(
            "reset/state=desc off graph",
            "cong(n_agents=2).reset(options={'state': np.array([0, 3])})",
            "[0, 3]",
            "array([0, 3])",
        ),
        E(
            "reset/state=desc float",
            "cong(n_agents=2).reset(options={'state': np.array([1.0, 2.0])})",
            "[1., 2.]",
            "array([1., 2.])",
        ),
        E("reset/state=desc wrong len", "cong(n_agents=2).reset(options={'state': [1, 2, 3]})", "[1, 2, 3]"),
        A(
            "reset/state=0-d array",
            "env = cong(n_agents=2); env.reset(options={'state': np.array(3)})",
            check="assert env.state_index() == 3",
        ),
        A(
            "reset/state=np.int32",
            "env = cong(n_agents=2); env.reset(options={'state': np.int32(4)})",
            check="assert env.state_index() == 4",
        ),
        A(
            "reset/state=0-d array coord",
            "env = coord(n_agents=2); env.reset(options={'state': np.array(2)})",
            check="assert env.state_index() == 2",
        ),
        A(
            "reset/state=desc list",
            "env = cong(n_agents=2); env.reset(options={'state': [1, 2]})",
            check="assert env.dynamics.index(np.array([[1, 2]]))[0] == env.state_index()",
        ),
        E(
            "reset/state=wall cell (grid)",
            "env = grid(layout=['S.W.G']); env.reset(options={'state': np.array([2])})",
            "2",
            "wall",
        ),
        E(
            "reset/state=wall index (grid)",
            "env = grid(layout=['S.W.G']); env.reset(options={'state': 2})",
            "2",
            "wall",
        ),
        E(
            "reset/state=wall (task)",
            "env = task(layout=['S.W.G']); env.reset(options={'state': 2})",
            "2",
            "wall",
        ),
        E("reset/state=0-d bool", "cong(n_agents=2).reset(options={'state': np.array(True)})", "True"),
        E("step/before reset", "cong().step({})", "reset"),
        E("step/not a dict", "env = ready(cong(n_agents=2)); env.step([0, 1])", "list"),
        E("step/missing agent", "env = ready(cong(n_agents=2)); env.step({'agent_0': 0})", "'agent_1'"),
        E(
            "step/unknown agent",
            "env = ready(cong(n_agents=2)); env.step({'agent_0': 0, 'agent_1': 0, 'x': 1})",
            "'x'",
        ),
        E(
            "step/action=True",
            "env = ready(cong(n_agents=2)); env.step({'agent_0': True, 'agent_1': 0})",
            "True",
        ),
        E(
            "step/action=1.0",
            "env = ready(cong(n_agents=2)); env.step({'agent_0': 1.0, 'agent_1': 0})",
            "1.0",
        ),
        E(
            "step/action=nan",
            "env = ready(cong(n_agents=2)); env.step({'agent_0': float('nan'), 'agent_1': 0})",
            "nan",
        ),
        E("step/action=2", "env = ready(cong(n_agents=2)); env.step({'agent_0': 2, 'agent_1': 0})", "2"),
        E("step/action=-1", "env = ready(cong(n_agents=2)); env.step({'agent_0': -1, 'agent_1': 0})", "-1"),
        E(
            "step/action=2**70",
            "env = ready(cong(n_agents=2)); env.step({'agent_0': 2**70, 'agent_1': 0})",
            str(2**70),
        ),
        E(
            "step/action=None",
            "env = ready(cong(n_agents=2)); env.step({'agent_0': None, 'agent_1': 0})",
            "None",
        ),
        E(
            "step/action=array2",
            "env = ready(cong(n_agents=2)); env.step({'agent_0': np.array([0, 1]), 'agent_1': 0})",
            "array([0, 1])",
        ),
        A(
            "step/action=np.uint8",
            "env = ready(cong(n_agents=2)); env.step({'agent_0': np.uint8(1), 'agent_1': 0})",
        ),
        A(
            "step/action=0-d array",
            "env = ready(coord(n_agents=2)); env.step({'agent_0': np.array(1), 'agent_1': 0})",
        ),
        E(
            "step/after truncation",
            "env = ready(cong(n_agents=2, max_cycles=1)); env.step(zeros(env)); "
            "env.step({'agent_0': 0, 'agent_1': 0})",
            "reset",
        ),
        E("task/seed=True", "task().reset(seed=True)", "True"),
        A("task/seed=np.int64", "env = task(); env.reset(seed=np.int64(5))"),
        E("task/task=True", "task(task=True)", "True"),
        E("task/task=4", "task(task=4)", "4"),
        E("task/task=1.0", "task(task=1.0)", "1.0"),
        E("task/max_steps=True", "task(max_steps=True)", "True"),
        E("task/max_steps=0", "task(max_steps=0)", "0"),
        A("task/max_steps=np.int64", "env = task(max_steps=np.int64(3))", check="assert env.max_steps == 3"),
        E("task/slip=True", "task(slip=True)", "True"),
        E("task/gamma=True", "task(gamma=True)", "True"),
        E("task/chain_p=True", "task(layout='chain_slip', chain_p=True)", "True"),
        E(
            "task/render_mode='video'",
            "from mpg_envs.gridworld import GridWorldTaskEnv\nGridWorldTaskEnv(render_mode='video')",
            "'video'",
        ),
        E("task/state=-1", "task().reset(options={'state': -1})", "-1"),
        E("task/state=1.0", "task().reset(options={'state': 1.0})", "1.0"),
        A(
            "task/state=0-d array",
            "env = task(); o, _ = env.reset(options={'state': np.array(5)})",
            check="assert o == 5",
        ),
        E("task/options=list", "task().reset(options=[1])", "[1]"),
        E("task/step before reset", "task().step(0)", "reset"),
        E("task/action=True", "env = task(); env.reset(seed=0); env.step(True)", "True"),
        E("task/action=4", "env = task(); env.reset(seed=0); env.step(4)", "4"),
        E("task/action=0.5", "env = task(); env.reset(seed=0); env.step(0.5)", "0.5"),
        E(
            "task/step after truncation",
            "env = task(max_steps=1); env.reset(seed=0); o, r, term, trunc, _ = env.step(2)\n"
            "assert trunc and not term\nenv.step(2)",
            "reset",
        ),
        E(
            "task/step after termination",
            "env = task(layout='chain_reversed'); env.reset(seed=0); env.step(0); env.step(0); env.step(0)",
            "reset",
        ),
        E("render/observation_index('pixels')", "cong().observation_index('pixels')", "'pixels'"),
        E(
            "render/render_rgb bad policy",
            "env = ready(grid()); env.render_rgb(np.ones((100, 2)) / 2)",
            "(100, 2)",
        ),
        E(
            "render/draw_tasks bad policy",
            "from mpg_envs.gridworld import draw_tasks, layout_tasks\n"
            "draw_tasks(layout_tasks('no_conflict'), policy='x')",
            "'x'",
        ),
    ]


def _model_cases() -> list[Case]:
    """TabularModel with bad fields and its conversions."""
    return [
        E(
            "model/n_agents=True",
            "tm(n_agents=True, action_sizes=(2,), P=np.full((4, 2), 0.5), R=np.zeros((1, 2, 2)))",
            "True",
        ),
        E("model/n_agents=0", "tm(n_agents=0)", "0"),
        E("model/n_agents=2.0", "tm(n_agents=2.0)", "2.0"),
        E("model/n_agents='2'", "tm(n_agents='2')", "'2'"),
        E("model/action_sizes=floats", "tm(action_sizes=(2.7, 2.2))", "(2.7, 2.2)", "2.7"),
        E(
            "model/action_sizes=bools",
            "tm(action_sizes=(True, True), P=np.full((2, 2), 0.5), R=np.zeros((2, 2, 1)))",
            "True",
        ),
        E("model/action_sizes=3", "tm(action_sizes=3)", "3"),
        E("model/action_sizes='ab'", "tm(action_sizes='ab')", "'ab'"),
        E("model/action_sizes=(2, 0)", "tm(action_sizes=(2, 0))", "(2, 0)"),
        E("model/action_sizes=(2,)", "tm(action_sizes=(2,))", "(2,)"),
        E("model/action_sizes=huge", "tm(action_sizes=(10**12, 10**12))", "1000000000000"),
        E("model/P='x'", "tm(P='x')", "'x'"),
        E("model/P=None", "tm(P=None)", "None"),
        E("model/P negative", "tm(P=np.tile([1.2, -0.2], (8, 1)))", "-0.2"),
        E("model/P nan", "tm(P=np.full((8, 2), np.nan))", "nan"),
        E("model/P rows", "tm(P=np.full((8, 2), 0.6))", "1.2"),
        E("model/P shape", "tm(P=np.full((6, 2), 0.5))", "(6, 2)"),
        E("model/P 1-d", "tm(P=np.full(8, 0.5))", "(8,)"),
        E("model/R shape", "tm(R=np.zeros((2, 2, 3)))", "(2, 2, 3)"),
        E("model/R inf", "tm(R=np.full((2, 2, 4), np.inf))", "inf"),
        E("model/R str", "tm(R='x')", "'x'"),
        E("model/mu sums", "tm(mu=[0.5, 0.6])", "1.1"),
        E("model/mu negative", "tm(mu=[-0.5, 1.5])", "-0.5"),
        E("model/mu nan", "tm(mu=[np.nan, 1.0])", "nan"),
        E("model/mu shape", "tm(mu=[1.0])", "(1,)", "[1.0]"),
        E("model/mu None", "tm(mu=None)", "None"),
        E("model/mu bools", "tm(mu=[True, False])", "True"),
        E("model/gamma=True", "tm(gamma=True)", "True"),
        E("model/gamma=0", "tm(gamma=0.0)", "0.0"),
        E("model/gamma=1.5", "tm(gamma=1.5)", "1.5"),
        E("model/gamma='0.9'", "tm(gamma='0.9')", "'0.9'"),
        E("model/gamma=None", "tm(gamma=None)", "None"),
        E("model/gamma=nan", "tm(gamma=float('nan'))", "nan"),
        E("model/gamma=array", "tm(gamma=np.array([0.9, 0.8]))", "0.9"),
        A(
            "model/gamma=np.int64(1) absorbing",
            "P = np.zeros((8, 2)); P[:, 1] = 1\n"
            "m = tm(P=P, terminal=np.array([False, True]), gamma=np.int64(1))",
            check="assert m.gamma == 1.0 and type(m.gamma) is float",
        ),
        A("model/gamma=np.float32", "m = tm(gamma=np.float32(0.5))", check="assert m.gamma == 0.5"),
        A(
            "model/n_agents=np.int64",
            "m = tm(n_agents=np.int64(2), action_sizes=np.array([2, 2]))",
            check="assert m.n_agents == 2 and m.action_sizes == (2, 2) and type(m.action_sizes[0]) is int",
        ),
        E("model/terminal ints", "tm(terminal=np.array([0, 1]))", "int"),
        E("model/terminal shape", "tm(terminal=np.array([True]))", "(1,)"),
        E("model/terminal not absorbing", "tm(terminal=np.array([True, False]))", "state 0"),
        E("model/phi shape", "tm(phi=np.zeros((2, 3)))", "(2, 3)"),
        E("model/phi nan", "tm(phi=np.full((2, 4), np.nan))", "nan"),
        E("model/states duplicate", "tm(states=np.array([[0, 1], [0, 1]]))", "[0, 1]"),
        E("model/states shape", "tm(states=np.zeros((3, 1), int))", "(3, 1)"),
        E("model/states float", "tm(states=np.array([[0.5], [1.5]]))", "float"),
        E("model/gamma=1 trap", "tm(gamma=1.0, terminal=np.array([False, False]))", "1.0", "gamma = 1"),
        E("model/joint_index float", "small().joint_index([0.0, 1.0])", "float"),
        E("model/joint_index range", "small().joint_index([0, 2])", "[0, 2]"),
        E("model/joint_index bool", "small().joint_index([True, False])", "bool", "True"),
        E("model/agent_actions -1", "small().agent_actions(-1)", "-1"),
        E("model/agent_actions 1.5", "small().agent_actions(1.5)", "1.5"),
        E("model/state_index missing", "small().state_index([7, 7])", "(7, 7)", "[7, 7]"),
        E("model/state_of True", "small().state_of(True)", "True"),
        E("model/state_of 1.5", "small().state_of(1.5)", "1.5"),
        E("model/state_of -1", "small().state_of(-1)", "-1"),
        E("model/state_of 10", "small().state_of(10)", "10"),
        A(
            "model/state_of np.int64",
            "m = small(); s = m.state_of(np.int64(3))",
            check="assert m.state_index(s) == 3",
        ),
        A(
            "model/state_of 0-d",
            "m = small(); s = m.state_of(np.array(3))",
            check="assert m.state_index(s) == 3",
        ),
    ]


def _exact_cases() -> list[Case]:
    """Every public exact function with bad policies, mu, agent, rng, obs_map."""
    pol_bad = [  # (name, expression of a bad policy for model m, token)
        ("None", "None", "None"),
        ("dict", "{'agent_0': 1}", "{'agent_0': 1}"),
        ("one agent", "uni(m)[:1]", "1"),
        ("(S,A) array", "np.full((m.n_states, 2), 0.5)", "(10, 2)"),
        ("wrong shape", "[np.full((m.n_states, 3), 1 / 3)] * 2", "(10, 3)"),
        ("rows", "[np.full((m.n_states, 2), 0.6)] * 2", "1.2"),
        ("nan", "[np.full((m.n_states, 2), np.nan)] * 2", "nan"),
        ("negative", "[np.tile([1.5, -0.5], (m.n_states, 1))] * 2", "-0.5"),
        ("strings", "[np.full((m.n_states, 2), 'a')] * 2", "'a'"),
        ("None entry", "[None, uni(m)[1]]", "None"),
        ("bool", "[np.eye(2, dtype=bool)[np.zeros(m.n_states, int)]] * 2", "bool"),
        ("ragged", "[[[1.0, 0.0], [1.0]]] * 2", "[1.0]"),
    ]
    out: list[Case] = []
    for name, expr, tok in pol_bad:
        for fn in ("evaluate", "nash_gap"):
            out.append(E(f"exact/{fn}(policy={name})", f"m = small()\nexact.{fn}(m, {expr})", tok))
    for fn in (
        "marginal_q",
        "advantages",
        "policy_gradient",
        "transition_matrix",
        "joint_policy",
        "potential_value",
        "values_q_occupancy",
        "occupancy",
        "visitation",
    ):
        out.append(
            E(f"exact/{fn}(policy=rows)", f"m = small()\nexact.{fn}(m, [np.full((10, 2), 0.6)] * 2)", "1.2")
        )
    out += [
        E(
            "exact/best_response(policy=nan)",
            "m = small()\nexact.best_response(m, [np.full((10, 2), np.nan)] * 2, 0)",
            "nan",
        ),
        E(
            "exact/price_of_anarchy(policy=rows)",
            "m = coord(n_agents=2).model()\nexact.price_of_anarchy(m, [np.full((4, 2), 0.6)] * 2)",
            "1.2",
        ),
        E("exact/evaluate(model='x')", "exact.evaluate('x', [])", "'x'"),
        E("exact/nash_gap(model=None)", "exact.nash_gap(None, [])", "None"),
        E("exact/uniform_policy(model=3)", "exact.uniform_policy(3)", "3"),
        E("exact/social_optimum(model='m')", "exact.social_optimum('m')", "'m'"),
        # float32 and other accepted policies
        A(
            "exact/evaluate float32",
            "m = small(); p = exact.random_policy(m, np.random.default_rng(1))\n"
            "v64 = exact.evaluate(m, p); v32 = exact.evaluate(m, [x.astype(np.float32) for x in p])",
            check="assert np.allclose(v32, v64, atol=1e-5, rtol=1e-5)",
        ),
        A(
            "exact/nash_gap float32",
            "m = small(); p = exact.random_policy(m, np.random.default_rng(2))\n"
            "g64 = exact.nash_gap(m, p); g32 = exact.nash_gap(m, [x.astype(np.float32) for x in p])",
            check="assert abs(g32.gap - g64.gap) < 1e-5",
        ),
        A(
            "exact/float32 softmax 8 actions",
            "m = dist(n_agents=2, weights=np.arange(1.0, 9.0), gamma=0.9).model()\n"
            "rng = np.random.default_rng(3)\n"
            "lg = [rng.normal(size=(2, 8)).astype(np.float32) * 3 for _ in range(2)]\n"
            "p32 = [np.exp(l - l.max(1, keepdims=True)) for l in lg]\n"
            "p32 = [(p / p.sum(1, keepdims=True)).astype(np.float32) for p in p32]\n"
            "v = exact.evaluate(m, p32)",
            check="p64 = [p.astype(np.float64) / p.astype(np.float64).sum(1, keepdims=True) for p in p32]\n"
            "assert np.allclose(v, exact.evaluate(m, p64), rtol=1e-5)",
        ),
        A("exact/policies as 3-d array", "m = small(); v = exact.evaluate(m, np.full((2, 10, 2), 0.5))"),
        A(
            "exact/policies as tuple of lists",
            "m = small(); v = exact.evaluate(m, tuple([[0.5, 0.5]] * 10 for _ in range(2)))",
        ),
        E(
            "exact/float32 far from stochastic",
            "m = small()\nexact.evaluate(m, [np.full((10, 2), 0.501, np.float32)] * 2)",
            "1.00",
        ),
        E(
            "exact/float16 not stochastic",
            "m = small()\nexact.evaluate(m, [np.full((10, 2), 0.6, np.float16)] * 2)",
            "1.2",
        ),
        # nash gap sign
        A(
            "exact/nash_gap >= 0 at equilibrium",
            "m = coord(n_agents=3).model()\ng = exact.nash_gap(m, pure(m, 0))",
            check="assert g.gap >= 0 and g.worst >= 0 and (g.per_state >= 0).all() and (g.at_mu >= 0).all() "
            "and (g.worst_state >= 0).all()",
        ),
        A(
            "exact/nash_gap >= 0 uniform congestion",
            "m = cong(n_agents=4, gamma=0.99).model()\ng = exact.nash_gap(m, uni(m))",
            check="assert g.gap >= 0 and g.worst >= 0 and (g.per_state >= 0).all()",
        ),
        A(
            "exact/nash_gap >= 0 distancing eq",
            "m = dist(n_agents=4).model()\nrng = np.random.default_rng(0)\n"
            "gs = [exact.nash_gap(m, exact.random_policy(m, rng, deterministic=True)) for _ in range(10)]",
            check="assert all(g.gap >= 0 and (g.per_state >= 0).all() for g in gs)",
        ),
        # agent
        E("exact/best_response(agent=True)", "m = small()\nexact.best_response(m, uni(m), True)", "True"),
        E("exact/best_response(agent=2)", "m = small()\nexact.best_response(m, uni(m), 2)", "2"),
        E("exact/best_response(agent=-1)", "m = small()\nexact.best_response(m, uni(m), -1)", "-1"),
        E("exact/best_response(agent=1.0)", "m = small()\nexact.best_response(m, uni(m), 1.0)", "1.0"),
        E("exact/best_response(agent='0')", "m = small()\nexact.best_response(m, uni(m), '0')", "'0'"),
        A(
            "exact/best_response(agent=np.int64)",
            "m = small()\nbr = exact.best_response(m, uni(m), np.int64(1))",
            check="assert br.agent == 1",
        ),
        # mu
        E(
            "exact/occupancy(mu=negative)",
            "m = small()\nexact.occupancy(m, uni(m), mu=np.r_[-1.0, 2.0, np.zeros(8)])",
            "-1.0",
        ),
        E(
            "exact/occupancy(mu=shape)",
            "m = small()\nexact.occupancy(m, uni(m), mu=[1.0, 0.0])",
            "(2,)",
            "[1.0, 0.0]",
        ),
        E(
            "exact/occupancy(mu=nan)",
            "m = small()\nexact.occupancy(m, uni(m), mu=np.full(10, np.nan))",
            "nan",
        ),
        E("exact/occupancy(mu=sum)", "m = small()\nexact.occupancy(m, uni(m), mu=np.ones(10))", "10.0"),
        E("exact/occupancy(mu='x')", "m = small()\nexact.occupancy(m, uni(m), mu='x')", "'x'"),
        E(
            "exact/visitation(mu=negative)",
            "m = small()\nexact.visitation(m, uni(m), mu=np.r_[-1.0, 2.0, np.zeros(8)])",
            "-1.0",
        ),
        E(
            "exact/visitation(mu=shape)",
            "m = small()\nexact.visitation(m, uni(m), mu=np.ones(3) / 3)",
            "(3,)",
        ),
        E(
            "exact/visitation(mu=bools)",
            "m = small()\nexact.visitation(m, uni(m), mu=np.eye(10, dtype=bool)[0])",
            "bool",
        ),
        A(
            "exact/visitation(mu=list)",
            "m = small()\nd = exact.visitation(m, uni(m), mu=[1.0] + [0.0] * 9)",
            check="assert abs(d.sum() - 1) < 1e-9",
        ),
        # rng
        A(
            "exact/random_policy(rng=0)",
            "m = small()\np = exact.random_policy(m, 0)",
            check="q = exact.random_policy(m, np.random.default_rng(0))\n"
            "assert all(np.array_equal(a, b) for a, b in zip(p, q))",
        ),
        A("exact/random_policy(rng=None)", "m = small()\np = exact.random_policy(m, None)"),
        A("exact/random_policy(rng=np.int64)", "m = small()\np = exact.random_policy(m, np.int64(4))"),
        E("exact/random_policy(rng='a')", "m = small()\nexact.random_policy(m, 'a')", "'a'"),
        E("exact/random_policy(rng=True)", "m = small()\nexact.random_policy(m, True)", "True"),
        E("exact/random_policy(rng=-1)", "m = small()\nexact.random_policy(m, -1)", "-1"),
        E("exact/random_policy(rng=1.5)", "m = small()\nexact.random_policy(m, 1.5)", "1.5"),
        A(
            "exact/potential_residual(rng=0)",
            "m = small()\nc = exact.potential_residual(m, 0, n_samples=2)",
            check="c2 = exact.potential_residual(m, np.random.default_rng(0), n_samples=2)\n"
            "assert c.max_residual == c2.max_residual",
        ),
        A("exact/cycle_residual(rng=0)", "m = small()\nc = exact.cycle_residual(m, 0, n_cycles=2)"),
        A("exact/cycle_residual(rng=None)", "m = small()\nc = exact.cycle_residual(m, None, n_cycles=2)"),
        E("exact/cycle_residual(rng='x')", "m = small()\nexact.cycle_residual(m, 'x')", "'x'"),
        E("exact/potential_residual(rng=[1])", "m = small()\nexact.potential_residual(m, [1.5])", "[1.5]"),
        A(
            "exact/random_policy(rng=Generator)",
            "m = small()\np = exact.random_policy(m, np.random.default_rng(1))",
        ),
        # n_samples / n_cycles
        E(
            "exact/potential_residual(n_samples=True)",
            "m = small()\nexact.potential_residual(m, 0, n_samples=True)",
            "True",
        ),
        E(
            "exact/potential_residual(n_samples=0)",
            "m = small()\nexact.potential_residual(m, 0, n_samples=0)",
            "0",
        ),
        E(
            "exact/potential_residual(n_samples=1.5)",
            "m = small()\nexact.potential_residual(m, 0, n_samples=1.5)",
            "1.5",
        ),
        E(
            "exact/potential_residual(n_samples=1e13)",
            "m = small()\nexact.potential_residual(m, 0, n_samples=10**13)",
            "10000000000000",
            SIZE,
        ),
        E(
            "exact/cycle_residual(n_cycles=True)",
            "m = small()\nexact.cycle_residual(m, 0, n_cycles=True)",
            "True",
        ),
        E(
            "exact/cycle_residual(n_cycles='3')",
            "m = small()\nexact.cycle_residual(m, 0, n_cycles='3')",
            "'3'",
        ),
        E(
            "exact/cycle_residual(n_cycles=1e13)",
            "m = small()\nexact.cycle_residual(m, 0, n_cycles=10**13)",
            "10000000000000",
            SIZE,
        ),
        # obs_map
        E(
            "exact/obs_map negative",
            "m = small()\nexact.random_policy(m, 0, obs_map=-np.ones((2, 10), int))",
            "-1",
        ),
        E(
            "exact/obs_map float",
            "m = small()\nexact.random_policy(m, 0, obs_map=np.zeros((2, 10)))",
            "float",
        ),
        E(
            "exact/obs_map shape",
            "m = small()\nexact.cycle_residual(m, 0, obs_map=np.zeros((2, 3), int))",
            "(2, 3)",
        ),
        E(
            "exact/obs_map huge label",
            "m = small()\nom = np.zeros((2, 10), int); om[0, 0] = 10**12\n"
            "exact.random_policy(m, 0, obs_map=om)",
            "1000000000000",
            SIZE,
        ),
        E("exact/obs_map 'own'", "m = small()\nexact.cycle_residual(m, 0, obs_map='own')", "'own'"),
        E(
            "exact/obs_map bool",
            "m = small()\nexact.potential_residual(m, 0, obs_map=np.zeros((2, 10), bool))",
            "bool",
        ),
        A(
            "exact/obs_map own",
            "env = cong(n_agents=2, gamma=0.9)\nm = env.model()\n"
            "c = exact.cycle_residual(m, 0, n_cycles=2, obs_map=env.observation_index('own'))",
            check="assert c.max_residual < 1e-9",
        ),
        # random_policy other args
        E("exact/random_policy(agents=[5])", "m = small()\nexact.random_policy(m, 0, agents=[5])", "5"),
        E(
            "exact/random_policy(agents=[True])",
            "m = small()\nexact.random_policy(m, 0, agents=[True])",
            "True",
        ),
        E("exact/random_policy(agents=3)", "m = small()\nexact.random_policy(m, 0, agents=3)", "3"),
        E(
            "exact/random_policy(deterministic='yes')",
            "m = small()\nexact.random_policy(m, 0, deterministic='yes')",
            "'yes'",
        ),
        # softmax_policy, l1_distance, joint_q
        E("exact/softmax_policy(None)", "exact.softmax_policy(None)", "None"),
        E("exact/softmax_policy(1-d)", "exact.softmax_policy([np.zeros(3)])", "(3,)"),
        E("exact/softmax_policy(nan)", "exact.softmax_policy([np.array([[np.nan, 0.0]])])", "nan"),
        E("exact/softmax_policy(str)", "exact.softmax_policy([np.array([['a', 'b']])])", "'a'"),
        A(
            "exact/softmax_policy(list)",
            "p = exact.softmax_policy([[[0.0, 0.0]]])",
            check="assert np.allclose(p[0], 0.5)",
        ),
        A(
            "exact/softmax_policy(-inf)",
            "p = exact.softmax_policy([np.array([[0.0, -np.inf]])])",
            check="assert np.allclose(p[0], [[1.0, 0.0]])",
        ),
        E("exact/l1_distance(None)", "exact.l1_distance(None, None)", "None"),
        E("exact/l1_distance(shapes)", "exact.l1_distance([np.ones((2, 2))], [np.ones((3, 2))])", "(3, 2)"),
        E("exact/l1_distance(lengths)", "exact.l1_distance([np.ones((2, 2))], [])", "0"),
        E("exact/l1_distance(nan)", "exact.l1_distance([np.full((2, 2), np.nan)], [np.ones((2, 2))])", "nan"),
        E("exact/joint_q(V shape)", "m = small()\nexact.joint_q(m, np.zeros((2, 3)))", "(2, 3)"),
        E("exact/joint_q(V nan)", "m = small()\nexact.joint_q(m, np.full((2, 10), np.nan))", "nan"),
        # price of anarchy, multitask
        E(
            "exact/price_of_anarchy(optimum='x')",
            "m = coord(n_agents=2).model()\nexact.price_of_anarchy(m, uni(m), optimum='x')",
            "'x'",
        ),
        E("exact/multitask_value([])", "exact.multitask_value([], np.ones((5, 2)) / 2)", "[]"),
        E("exact/multitask_value(models='x')", "exact.multitask_value('x', np.ones((5, 2)) / 2)", "'x'"),
        E(
            "exact/multitask_value(policy shape)",
            "ms = grid(layout='chain_slip').task_models()\nexact.multitask_value(ms, np.ones((5, 3)) / 3)",
            "(5, 3)",
        ),
        E(
            "exact/multitask_gradient(policy nan)",
            "ms = grid(layout='chain_slip').task_models()\n"
            "exact.multitask_gradient(ms, np.full((5, 2), np.nan))",
            "nan",
        ),
        A(
            "exact/multitask_value float32",
            "ms = grid(layout='chain_slip').task_models()\n"
            "v = exact.multitask_value(ms, np.full((5, 2), 0.5, np.float32))",
        ),
        E(
            "exact/multitask_value(mixed models)",
            "ms = [grid(layout='chain_slip').task_models()[0], small()]\n"
            "exact.multitask_value(ms, np.ones((5, 2)) / 2)",
            "2",
        ),
        # core helpers
        E(
            "core/sample_step(rng='x')",
            "env = cong(n_agents=2)\nd = env.dynamics\n"
            "sample_step(d, d.states()[:1], np.zeros((1, 2), int), 'x')",
            "'x'",
        ),
        A(
            "core/sample_step(rng=0)",
            "env = cong(n_agents=2)\nd = env.dynamics\n"
            "nx, r = sample_step(d, d.states()[:1], np.zeros((1, 2), int), 0)",
        ),
        E(
            "core/sample_step(actions out of range)",
            "env = cong(n_agents=2)\nd = env.dynamics\nsample_step(d, d.states()[:1], np.full((1, 2), 5), 0)",
            "5",
        ),
        E(
            "core/sample_step(actions shape)",
            "env = cong(n_agents=2)\nd = env.dynamics\n"
            "sample_step(d, d.states()[:2], np.zeros((2, 3), int), 0)",
            "(2, 3)",
        ),
        E(
            "core/sample_step(actions float)",
            "env = cong(n_agents=2)\nd = env.dynamics\nsample_step(d, d.states()[:1], np.zeros((1, 2)), 0)",
            "float",
        ),
        E("core/sample_initial(n=-1)", "sample_initial(cong().dynamics, -1, 0)", "-1"),
        E("core/sample_initial(n=True)", "sample_initial(cong().dynamics, True, 0)", "True"),
        A(
            "core/sample_initial(rng=None)",
            "x = sample_initial(cong().dynamics, 3, None)",
            check="assert x.shape == (3, 4)",
        ),
        E("core/build_model(gamma=True)", "build_model(cong(n_agents=2).dynamics, True)", "True"),
        E(
            "core/build_model(max_transitions=0)",
            "build_model(cong(n_agents=2).dynamics, 0.9, max_transitions=0)",
            "0",
        ),
    ]
    return out


def _more_cases() -> list[Case]:
    """Direct uses of the building blocks: Task, GridSpec, dynamics, long chains, low precision."""
    chain = (
        "S = 200_000\nrows = np.arange(S)\n"
        "P = sp.csr_matrix((np.ones(S), (rows, np.minimum(rows + 1, S - 1))), shape=(S, S))\n"
        "term = np.zeros(S, bool); term[-1] = True\nmu = np.zeros(S); mu[0] = 1.0\n"
    )
    return [
        A(
            "model/gamma=1 long chain",
            chain + "m = TabularModel(n_agents=1, action_sizes=(1,), P=P, "
            "R=np.zeros((1, S, 1)), mu=mu, gamma=1.0, terminal=term)",
            check="assert m.gamma == 1.0",
        ),
        E(
            "model/gamma=1 long chain with a loop",
            chain + "P = P.tolil(); P[S // 2, S // 2 + 1] = 0.0; "
            "P[S // 2, S // 2] = 1.0\nTabularModel(n_agents=1, action_sizes=(1,), P=P.tocsr(), "
            "R=np.zeros((1, S, 1)), mu=mu, gamma=1.0, terminal=term)",
            "gamma = 1",
        ),
        A(
            "model/P float32",
            "m = tm(P=np.full((8, 2), 0.3, np.float32) + np.array([0.0, 0.4], np.float32))",
            check="assert abs(m.P.sum(axis=1) - 1).max() < 1e-12",
        ),
        A(
            "model/mu float32",
            "m = tm(mu=np.array([0.1, 0.9], np.float32))",
            check="assert abs(m.mu.sum() - 1) < 1e-12",
        ),
        A("dist/mu float32", "env = dist(mu=np.array([0.1, 0.9], np.float32))"),
        E(
            "task/Task P nan",
            "from mpg_envs.gridworld import Task\n"
            "Task(np.full((2, 1, 2), np.nan), np.zeros(2), np.zeros(2, bool), [1.0, 0.0], (1, 2))",
            "nan",
        ),
        E(
            "task/Task start nan",
            "from mpg_envs.gridworld import Task\n"
            "Task(np.full((2, 1, 2), 0.5), np.zeros(2), np.zeros(2, bool), [np.nan, 1.0], (1, 2))",
            "nan",
        ),
        E(
            "task/Task P rows",
            "from mpg_envs.gridworld import Task\n"
            "Task(np.full((2, 1, 2), 0.6), np.zeros(2), np.zeros(2, bool), [1.0, 0.0], (1, 2))",
            "0.6",
        ),
        E(
            "task/GridSpec float cell",
            "from mpg_envs.gridworld import GridSpec\nGridSpec((3, 3), goals=((1, 1.5),))",
            "1.5",
        ),
        E(
            "task/GridSpec short cell",
            "from mpg_envs.gridworld import GridSpec\nGridSpec((3, 3), goals=((1,),))",
            "(1,)",
        ),
        E("task/GridSpec shape", "from mpg_envs.gridworld import GridSpec\nGridSpec((3.0, 3))", "3.0"),
        E("task/GridSpec huge", "from mpg_envs.gridworld import GridSpec\nGridSpec((10**6, 10**6))", SIZE),
        E(
            "task/chain_tasks p=True",
            "from mpg_envs.gridworld import chain_tasks\nchain_tasks('slip', True)",
            "True",
        ),
        E("task/chain_tasks variant=1", "from mpg_envs.gridworld import chain_tasks\nchain_tasks(1)", "1"),
        EITHER(
            "grid/40x40 cells",
            "rows = ['.' * 40] * 40; rows[0] = 'S' + '.' * 39; rows[-1] = '.' * 39 + 'G'\n"
            "env = ready(grid(layout=['/'.join(rows)] * 2, slip=0.1))\nms = env.task_models()",
            SIZE,
            check="assert ms[0].n_states == 1600",
        ),
        E(
            "grid/most_likely_path max_len=True",
            "from mpg_envs.gridworld import most_likely_path, chain_tasks\n"
            "most_likely_path(chain_tasks()[0], np.full((5, 2), 0.5), max_len=True)",
            "True",
        ),
        E(
            "exact/visitation gamma=1 mu on terminal",
            "m = cong(n_agents=2, at_sink='terminate', gamma=1.0).model()\n"
            "mu = np.zeros(m.n_states); mu[-1] = 1.0\nd = exact.visitation(m, uni(m), mu=mu)",
            "terminal",
        ),
        E(
            "exact/cycle_residual one agent",
            "m = cong(n_agents=1).model()\nexact.cycle_residual(m, 0)",
            "N=1",
        ),
        A(
            "exact/one-hot int policy",
            "m = small()\nv = exact.evaluate(m, [np.eye(2, dtype=np.int64)[np.zeros(10, int)]] * 2)",
        ),
        A(
            "exact/nash_gap float32 ~ float64",
            "m = dist(n_agents=3, gamma=0.9).model()\n"
            "p = exact.random_policy(m, 5)\ng64 = exact.nash_gap(m, p)\n"
            "g32 = exact.nash_gap(m, [x.astype(np.float32) for x in p])",
            check="assert abs(g32.gap - g64.gap) <= 1e-6 * max(1.0, abs(g64.gap))",
        ),
        E(
            "core/sample_step(state off the graph)",
            "d = cong(n_agents=2).dynamics\nsample_step(d, np.array([[0, 99]]), np.zeros((1, 2), int), 0)",
            "[0, 99]",
        ),
        A("core/Dynamics.sample_initial(rng=0)", "x = cong(n_agents=2).dynamics.sample_initial(3, 0)"),
        A(
            "core/Dynamics.sample_initial ring (rng=None)",
            "x = cong(n_agents=2, graph='ring').dynamics.sample_initial(3, None)",
        ),
        A("core/grid sample_initial(rng=0)", "x = grid(layout='chain_slip').dynamics.sample_initial(3, 0)"),
        EITHER(
            "dist/n_agents=11:model",
            "m = dist(n_agents=11).model()",
            SIZE,
            check="assert m.n_joint_actions == 4**11",
        ),
        E("dist/n_agents=12:model", "dist(n_agents=12).model()", SIZE),
        EITHER(
            "cong/width=1,n_agents=1e5,n_layers=100:model",
            "m = cong(width=1, n_agents=10**5, n_layers=100).model()",
            SIZE,
        ),
        A(
            "task/reset state=np.int64",
            "env = task(); o, _ = env.reset(options={'state': np.int64(7)})",
            check="assert o == 7",
        ),
        E("task/reset seed=-3", "task().reset(seed=-3)", "-3"),
        E("aec/step(5)", "env = congestion_v0.env(n_agents=2); env.reset(seed=0); env.step(5)", "5"),
        E("aec/step(0.5)", "env = distancing_v0.env(n_agents=2); env.reset(seed=0); env.step(0.5)", "0.5"),
        E(
            "aec/step(True)",
            "env = coordination_v0.env(n_agents=2); env.reset(seed=0); env.step(True)",
            "True",
        ),
        A(
            "aec/step(np.int64)",
            "env = multitask_gridworld_v0.env(layout='chain_slip'); env.reset(seed=0)\n"
            "env.step(np.int64(1)); env.step(np.int64(0))",
        ),
    ]


def baselines_cases() -> list[Case]:
    """The ``baselines`` set (``tools/fuzz_cases_baselines.py``), ids prefixed by nothing new."""
    import fuzz_cases_baselines as fb

    out = fb.cases(E, A, EITHER, SIZE)
    for c in out:
        c.set = "baselines"
    return out


def cases(which: str = "envs") -> list[Case]:
    """The audit cases of a set (ids are unique)."""
    out: list[Case] = []
    if which in ("envs", "all"):
        out += _ctor_cases() + _reset_step_cases() + _model_cases() + _exact_cases() + _more_cases()
    if which in ("baselines", "all"):
        out += baselines_cases()
    ids = Counter(c.id for c in out)
    dup = [i for i, n in ids.items() if n > 1]
    if dup:
        raise RuntimeError(f"duplicate case ids: {dup}")
    return out


# ------------------------------------------------------------------------------------------ running
_SIZE_WORDS = ("limit", "max_", "too many", "too large", "over the", "at most")


def _names_value(case: Case, message: str) -> bool:
    for tok in case.bad:
        if tok == SIZE:
            low = message.lower()
            if any(w in low for w in _SIZE_WORDS) and any(ch.isdigit() for ch in message):
                return True
        elif tok in message:
            return True
    return False


def classify(case: Case, res: dict) -> str:
    """Outcome of a case from the child's report (see the module docstring)."""
    raised = res.get("raised")
    if res.get("crash") or raised in CRASH_RAISED:
        return "crash"
    if raised in SILENT_RAISED:
        return "silent"
    if raised is None:
        if res.get("check_failed"):
            return "silent"
        return "silent" if case.expect == "error" else "accepted"
    if case.expect == "accept":
        return "rejected"
    types = set(res.get("bases") or [raised])
    if types & set(CLEAR_TYPES) and _names_value(case, res.get("message", "")):
        return "clear"
    return "unclear"


def _limit(mem_bytes: int):
    def set_limits() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return set_limits


def _prelude(case: Case) -> str:
    if case.set == "baselines":
        import fuzz_cases_baselines as fb

        return PRELUDE + fb.PRELUDE
    return PRELUDE


def run_case(case: Case, *, timeout: float, mem_bytes: int) -> dict:
    """Run one case in a fresh interpreter; returns the child's report plus timing."""
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    script = f"PRELUDE = {_prelude(case)!r}\n{CHILD}"
    t0 = time.perf_counter()
    child = subprocess.Popen(  # -P and a neutral cwd: import mpg_envs from PYTHONPATH, not from '.'
        [sys.executable, "-P", "-c", script, json.dumps(asdict(case))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_limit(mem_bytes),
        env=env,
        cwd=tempfile.gettempdir(),
        start_new_session=True,  # its own process group: a timeout also ends the CLI runs it started
    )
    try:
        stdout, stderr = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        child.communicate()
        return {"crash": f"timeout after {timeout:g} s", "seconds": time.perf_counter() - t0}
    proc = subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr)
    seconds = time.perf_counter() - t0
    marker = "@@RESULT@@"
    line = next((ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith(marker)), None)
    if line is None:
        why = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit code {proc.returncode}"
        return {"crash": f"{why}: {proc.stderr.strip()[-500:]}", "seconds": seconds}
    res = json.loads(line[len(marker) :])
    res["seconds"] = seconds
    return res


def surface(case_id: str) -> str:
    """The surface a case id belongs to: ``cli/<command>`` for CLI cases, else the id's prefix."""
    if case_id.startswith("cli/"):
        return case_id.split()[0]
    return case_id.split("/")[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", choices=SETS, default="envs", dest="which",
                        help="case set: envs (default), baselines or all (see the docstring)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON results (default: tools/results/fuzz_audit[_<set>].json)")  # fmt: skip
    parser.add_argument("-k", default="", help="run only cases whose id contains this string")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds per case (default: 30 for envs, 100 for baselines)")  # fmt: skip
    parser.add_argument("--mem-gib", type=float, default=3.0, help="RLIMIT_AS per case in GiB (default 3)")
    parser.add_argument("--jobs", type=int, default=1, help="cases run at once (default 1)")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every case that is not clear")
    args = parser.parse_args(argv)

    if args.out is None:
        args.out = DEFAULT_OUTS[args.which]
    selected = [c for c in cases(args.which) if args.k in c.id]
    if args.list:
        for c in selected:
            print(f"{c.expect:7s} {c.id}")
        return 0
    mem = int(args.mem_gib * 2**30)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        reports = list(
            pool.map(
                lambda c: run_case(c, timeout=args.timeout or SET_TIMEOUTS[c.set], mem_bytes=mem), selected
            )
        )
    rows = []
    for case, res in zip(selected, reports):
        outcome = classify(case, res)
        rows.append({**asdict(case), "outcome": outcome, **res})
    shown = sorted(rows, key=lambda r: surface(r["id"])) if args.which != "envs" else rows
    for r in shown:
        if args.verbose and r["outcome"] not in ("clear", "accepted"):
            detail = r.get("crash") or r.get("check_failed") or f"{r.get('raised')}: {r.get('message')}"
            print(f"[{r['outcome']:8s}] {r['id']}: {str(detail)[:300]}")
    counts = Counter(r["outcome"] for r in rows)
    by_expect = {
        e: Counter(r["outcome"] for r in rows if r["expect"] == e) for e in ("error", "accept", "either")
    }
    packages = sorted({r["package"] for r in rows if r.get("package")})
    print(f"\nmpg_envs from {', '.join(packages)}; {len(rows)} cases in {time.perf_counter() - t0:.0f} s\n")
    print(f"{'expect':8s}" + "".join(f"{o:>10s}" for o in OUTCOMES) + f"{'total':>10s}")
    for e, cnt in by_expect.items():
        print(f"{e:8s}" + "".join(f"{cnt[o]:>10d}" for o in OUTCOMES) + f"{sum(cnt.values()):>10d}")
    print(f"{'all':8s}" + "".join(f"{counts[o]:>10d}" for o in OUTCOMES) + f"{len(rows):>10d}")
    if args.which != "envs":  # the baselines set: counts per surface too
        print(f"\n{'surface':16s}" + "".join(f"{o:>10s}" for o in OUTCOMES) + f"{'total':>10s}")
        for name in sorted({surface(r["id"]) for r in rows}):
            cnt = Counter(r["outcome"] for r in rows if surface(r["id"]) == name)
            print(f"{name:16s}" + "".join(f"{cnt[o]:>10d}" for o in OUTCOMES) + f"{sum(cnt.values()):>10d}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    summary = {o: counts[o] for o in OUTCOMES} | {"total": len(rows)}
    payload = {"package": packages, "summary": summary, "cases": rows}
    if args.which != "envs":
        payload["set"] = args.which
    args.out.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
