"""The Stable-Baselines3 bridge: parameter-sharing vector env semantics and exact metrics of SB3 policies."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")
torch = pytest.importorskip("torch")

import pettingzoo  # noqa: E402
from stable_baselines3 import PPO  # noqa: E402

import mpg_envs  # noqa: E402, F401
from baselines.sb3 import ExactMetricsCallback, SB3Policy, make_vec_env  # noqa: E402
from mpg_envs import exact  # noqa: E402


def _rollout(venv, steps: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    obs = [venv.reset()]
    out = []
    for _ in range(steps):
        o, r, d, info = venv.step(rng.integers(0, venv.action_space.n, venv.num_envs))
        obs.append(o)
        out.append((r, d, info))
    return np.stack(obs), out


@pytest.mark.parametrize("batched", [True, False])
def test_seeding_one_seed_same_episodes_other_seed_differs(batched):
    kw = dict(n_envs=3, layout="no_conflict", slip=0.5, batched=batched)
    a, _ = _rollout(make_vec_env("mpg/MultiTaskGridWorld-v0", seed=1, **kw), 40)
    b, _ = _rollout(make_vec_env("mpg/MultiTaskGridWorld-v0", seed=1, **kw), 40)
    c, _ = _rollout(make_vec_env("mpg/MultiTaskGridWorld-v0", seed=2, **kw), 40)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # the copies of one vector env differ from each other (each its own seed or share of the stream)
    N = 4
    assert not np.array_equal(a[:, 0:N], a[:, N : 2 * N])


@pytest.mark.parametrize("batched", [True, False])
def test_time_limit_is_a_truncation_with_terminal_observation_and_episode_stats(batched):
    venv = make_vec_env(
        "mpg/Coordination-v0",
        n_envs=2,
        seed=0,
        batched=batched,
        n_agents=2,
        observation="vector",
        max_cycles=5,
    )
    _, steps = _rollout(venv, 5)
    assert not any(d.any() for _, d, _ in steps[:4])
    r, d, info = steps[4]
    assert d.all()
    for i in info:
        assert i["TimeLimit.truncated"] is True and i["episode"]["l"] == 5
        assert i["terminal_observation"].shape == venv.observation_space.shape


@pytest.mark.parametrize("batched", [True, False])
def test_agents_that_finish_separately_keep_their_slot_until_the_copy_ends(batched):
    # first chain, two agents: agent_0 reaches its goal S1 from S3 after two L moves
    venv = make_vec_env(
        "mpg/MultiTaskGridWorld-v0",
        n_envs=1,
        seed=0,
        batched=batched,
        layout="chain_reversed",
        observation="vector",
    )
    first = venv.reset()
    o, r, d, info = venv.step(np.array([0, 1]))  # agent_1: R in S3 -> S4
    assert not d.any()
    o, r, d, info = venv.step(np.array([0, 1]))  # agent_0 -> S1 (goal); agent_1: R reversed in S4 -> S3
    assert d.tolist() == [True, False] and r[0] == 1.0
    assert info[0]["TimeLimit.truncated"] is False and info[0]["episode"] == {"r": 1.0, "l": 2}
    assert not o[0].any()  # a dead slot sees zeros ...
    o, r, d, info = venv.step(np.array([1, 0]))  # ... whatever it plays; agent_1: L in S3 -> S2
    assert r[0] == 0.0 and not d[0] and not o[0].any()
    o, r, d, info = venv.step(np.array([1, 1]))  # agent_1: R reversed in S2 -> S1, task 2's -1
    assert d.tolist() == [True, True] and r[1] == -1.0
    assert "episode" not in info[0]  # the dead stretch is closed, not counted as an episode
    np.testing.assert_array_equal(o, first)  # the copy restarted from its start state


SB3_KEYS = ("terminal_observation", "TimeLimit.truncated", "episode")


@pytest.mark.parametrize(
    ("env_id", "kw"),
    [
        ("mpg/MultiTaskGridWorld-v0", dict(layout="chain_reversed", max_cycles=6, observation="vector")),
        ("mpg/MultiTaskGridWorld-v0", dict(layout="chain_slip", max_cycles=5)),
        ("mpg/Coordination-v0", dict(n_agents=2, max_cycles=4, observation="vector")),
    ],
    ids=["chain_reversed", "chain_slip", "coordination"],
)
def test_batched_and_loop_envs_agree_step_for_step_with_one_copy(env_id, kw):
    fast = make_vec_env(env_id, n_envs=1, seed=3, batched=True, **kw)
    slow = make_vec_env(env_id, n_envs=1, seed=3, batched=False, **kw)
    assert type(fast).__name__ == "BatchedMPGVecEnv" and type(slow).__name__ == "MPGVecEnv"
    np.testing.assert_array_equal(fast.reset(), slow.reset())
    rng = np.random.default_rng(0)
    seen = {k: 0 for k in ("dead", "closed", "truncated", "terminated")}
    for _ in range(300):
        act = rng.integers(0, fast.action_space.n, fast.num_envs)
        o1, r1, d1, i1 = fast.step(act)
        o2, r2, d2, i2 = slow.step(act)
        np.testing.assert_array_equal(o1, o2)
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(d1, d2)
        assert r1.dtype == r2.dtype == np.float32 and o1.dtype == o2.dtype
        for a, b in zip(i1, i2):
            assert set(a) == {k for k in SB3_KEYS if k in b}  # the batched infos: only SB3's keys
            if "terminal_observation" in a:
                x, y = a["terminal_observation"], b["terminal_observation"]
                np.testing.assert_array_equal(x, y)
                assert x.dtype == y.dtype and x.shape == y.shape == fast.observation_space.shape
                seen["closed"] += "episode" not in a
            assert a.get("TimeLimit.truncated") is b.get("TimeLimit.truncated")
            assert a.get("episode") == b.get("episode")
            seen["truncated"] += a.get("TimeLimit.truncated", False)
            seen["terminated"] += "episode" in a and not a["TimeLimit.truncated"]
        seen["dead"] += int(np.any([not o.any() for o in o1]))
    assert seen["truncated"] > 10, seen
    if env_id == "mpg/MultiTaskGridWorld-v0":  # agents finish separately: dead slots, closed later
        assert seen["terminated"] > 10 and seen["closed"] > 10 and seen["dead"] > 10, seen


def test_batched_env_refuses_bad_input_and_reaches_the_template_env():
    with pytest.raises(ValueError, match="batched=True needs a registered id"):
        make_vec_env(lambda: None, batched=True)
    with pytest.raises(ValueError, match="batched must be True or False"):
        make_vec_env("mpg/Coordination-v0", batched=1, n_agents=2)
    venv = make_vec_env("mpg/Coordination-v0", n_envs=2, seed=0, n_agents=2, observation="vector")
    assert venv.num_envs == 4 and venv.get_attr("max_cycles") == [100] * 4
    assert venv.env_method("model", indices=[0])[0].n_states == 4
    with pytest.raises(AttributeError, match="cannot set 'max_cycles'"):
        venv.set_attr("max_cycles", 3)
    venv.reset()
    with pytest.raises(ValueError, match="actions must hold one action per slot, 4 in all"):
        venv.step(np.zeros(3, np.int64))


def test_exact_metrics_of_an_sb3_policy(tmp_path):
    torch.set_num_threads(1)
    venv = make_vec_env("mpg/Coordination-v0", n_envs=2, seed=0, n_agents=2, observation="vector")
    env = pettingzoo.make("parallel", "mpg/Coordination-v0", n_agents=2, observation="vector")
    cb = ExactMetricsCallback(env, every=256, csv_path=tmp_path / "exact.csv")
    model = PPO("MlpPolicy", venv, n_steps=64, batch_size=64, n_epochs=2, seed=0).learn(512, callback=cb)
    assert [r["timesteps"] for r in cb.rows] == [0, 256, 512]
    m = env.unwrapped.model()
    tables = SB3Policy(model, m.action_sizes, "vector").table(env.unwrapped.dynamics)
    assert cb.rows[-1]["nash_gap"] == pytest.approx(exact.nash_gap(m, tables).gap, rel=1e-12)
    assert (tmp_path / "exact.csv").read_text().count("\n") == 4  # header + 3 rows
    # the tabulation agrees with the actions SB3 itself samples (an independent path: predict)
    obs = env.unwrapped.dynamics.observe(env.unwrapped.dynamics.states()[:1], "vector")[0]  # (N, F)
    for i in range(2):
        draws = np.array(
            [model.predict(np.repeat(obs[i : i + 1], 4000, axis=0))[0] for _ in range(2)]
        ).ravel()
        freq = np.bincount(draws, minlength=2) / draws.size
        np.testing.assert_allclose(freq, tables[i][0], atol=0.03)


def test_exact_metrics_on_a_default_multitask_layout_decompose_over_tasks(tmp_path):
    """The default 10x10 layouts have a 572 GiB joint model: the callback evaluates the shared
    policy on each task's own model (observation "own"), as the CLI run does."""
    from baselines.evaluation import ExactMetrics
    from baselines.sb3 import run_sb3

    torch.set_num_threads(1)
    kw = dict(layout="no_conflict", observation="own", max_cycles=20)
    venv = make_vec_env("mpg/MultiTaskGridWorld-v0", n_envs=2, seed=0, **kw)
    env = pettingzoo.make("parallel", "mpg/MultiTaskGridWorld-v0", **kw)
    cb = ExactMetricsCallback(env, every=128)
    model = PPO("MlpPolicy", venv, n_steps=32, batch_size=64, n_epochs=1, seed=0).learn(256, callback=cb)
    em = ExactMetrics("mpg/MultiTaskGridWorld-v0", **kw)
    assert em.decomposed
    with torch.no_grad():
        t, _ = model.policy.obs_to_tensor(np.arange(100))
        p = model.policy.get_distribution(t).distribution.probs.double().numpy()  # (100 cells, 4)
    want = em(np.repeat(p[:, None], 4, axis=1))
    assert list(cb.rows[-1]) == ["timesteps", *em.fields()]
    for k, v in want.items():
        assert cb.rows[-1][k] == pytest.approx(v, rel=1e-9, abs=1e-12), k
    folder = run_sb3(
        env="mpg/MultiTaskGridWorld-v0", env_kwargs=kw, steps=128, n_envs=2, eval_every=64, out=tmp_path,
        progress=False,
    )  # fmt: skip
    assert (folder / "exact.csv").read_text().count("\n") == 1 + 3


def test_cli_run_folder_resumes_and_refuses_bad_input(tmp_path, capsys):
    import csv

    from baselines.cli import main
    from baselines.sb3 import run_sb3

    kw = dict(steps=512, n_envs=2, eval_every=256, out=tmp_path, progress=False)
    run = run_sb3(env_kwargs={"n_agents": 2}, **kw)
    rows = list(csv.DictReader(open(run / "exact.csv")))
    assert [int(float(r["timesteps"])) for r in rows] == [0, 256, 512] and (run / "model.zip").exists()
    # resuming without --steps keeps the run's own length: nothing to do
    assert main(["sb3", "--resume", str(run), "--no-progress"]) == 0
    assert len(list(csv.DictReader(open(run / "exact.csv")))) == 3
    # a kill between an evaluation's row and its model save leaves a row the model has not reached
    with open(run / "exact.csv", "a") as f:
        f.write("768.0" + ",0" * (len(rows[0]) - 1) + "\n")
    # a later resume continues the step count with the saved model, rewriting rows from there on
    run_sb3(resume=run, steps=1024, progress=False)
    its = [int(float(r["timesteps"])) for r in csv.DictReader(open(run / "exact.csv"))]
    assert its == [0, 256, 512, 768, 1024]
    assert main(["sb3", "--algo", "ppo", "--steps", "0", "--out", str(tmp_path)]) == 2
    assert "steps must be a positive integer" in capsys.readouterr().err
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text('{"kind": "dcpg"}')
    assert main(["sb3", "--resume", str(tmp_path / "other")]) == 2
    assert "not an sb3 run" in capsys.readouterr().err


def test_make_vec_env_refuses_bad_input():
    with pytest.raises(ValueError, match="env must be a registered id or a function"):
        make_vec_env(123)
    with pytest.raises(ValueError, match="env_kwargs go with a registered id"):
        make_vec_env(lambda: None, n_agents=2)
    with pytest.raises(ValueError, match="n_envs must be a positive integer, got 0"):
        make_vec_env("mpg/Coordination-v0", n_envs=0, n_agents=2, observation="vector")


def test_parameter_sharing_needs_equal_spaces():
    import gymnasium

    def make():
        env = pettingzoo.make("parallel", "mpg/Coordination-v0", n_agents=2, observation="vector")
        spaces = {"agent_0": gymnasium.spaces.Discrete(2), "agent_1": gymnasium.spaces.Discrete(3)}
        env.action_space = spaces.__getitem__
        return env

    with pytest.raises(ValueError, match="parameter sharing needs one observation and action space"):
        make_vec_env(make, n_envs=1)


# ------------------------------------------------------------------ sb3 run folders: refusals, damage, kills
@pytest.fixture(scope="module")
def sb3_run(tmp_path_factory):
    """A finished tiny run (rows at 0, 64 and 128 agent-steps); tests copy it before damaging it."""
    from baselines.sb3 import run_sb3

    out = tmp_path_factory.mktemp("sb3runs")
    return run_sb3(env_kwargs={"n_agents": 2}, steps=128, n_envs=2, eval_every=64, out=out, progress=False)


def _copy(run, tmp_path, name="run"):
    import shutil

    dst = tmp_path / name
    shutil.copytree(run, dst)
    return dst


def _files(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name != ".lock"}


def _timesteps(folder):
    import csv

    rows = list(csv.reader(open(folder / "exact.csv")))
    assert all(len(r) == len(rows[0]) for r in rows), rows
    return [float(r[0]) for r in rows[1:]]


@pytest.mark.parametrize(
    "extra",
    [["--algo", "a2c"], ["--n-envs", "3"], ["--seed", "1"], ["--eval-every", "32"], ["--out", "x"],
     ["--env", "mpg/Congestion-v0"], ["--env-kwargs", "n_agents=3"], ["--algo", "ppo", "--steps", "256"]],
)  # fmt: skip
def test_sb3_resume_refuses_options_that_define_the_run(sb3_run, tmp_path, capsys, extra):
    from baselines.cli import main

    run = _copy(sb3_run, tmp_path)
    before = _files(run)
    assert main(["sb3", "--resume", str(run), "--no-progress", *extra]) == 2
    flag = extra[0]
    err = capsys.readouterr().err
    assert f"options cannot be changed (got {flag}); only --steps extends it" in err, err
    assert _files(run) == before


def test_sb3_resume_api_refuses_options_and_shorter_steps(sb3_run, tmp_path):
    from baselines.sb3 import run_sb3

    run = _copy(sb3_run, tmp_path)
    before = _files(run)
    with pytest.raises(
        ValueError, match=r"options cannot be changed \(got algo, n_envs\); only steps extends"
    ):
        run_sb3(resume=run, algo="a2c", n_envs=3, progress=False)
    with pytest.raises(ValueError, match=r"steps must be an integer in \[128, .*\] .* got 64"):
        run_sb3(resume=run, steps=64, progress=False)
    with pytest.raises(ValueError, match=r"steps must be an integer in \[128, .*\] .* got 200.0"):
        run_sb3(resume=run, steps=200.0, progress=False)
    assert _files(run) == before


def _edit_config(**kw):
    def edit(run):
        import json

        cfg = json.loads((run / "config.json").read_text())
        for k, v in kw.items():
            if v is None:
                cfg.pop(k)
            else:
                cfg[k] = v
        (run / "config.json").write_text(json.dumps(cfg))

    return edit


def _truncate(name, keep):
    def edit(run):
        data = (run / name).read_bytes()
        (run / name).write_bytes(data[:keep])

    return edit


@pytest.mark.parametrize(
    "damage, match",
    [
        (
            _edit_config(algo="dqn"),
            r"config.json: algo must be one of \['ppo', 'a2c'\], got 'dqn'; restore it",
        ),
        (
            _edit_config(algo="a2c"),
            "model.zip: a PPO model, but config.json says algo 'a2c'; restore config.json",
        ),
        (_edit_config(steps=None), r"config.json: not an sb3 run config \(no \['steps'\]\); restore it"),
        (_edit_config(steps="9"), "config.json: steps must be a positive integer, got '9'"),
        (
            _edit_config(seed=5),
            r"config.json: differs from the config the saved model was trained with \(seed 5",
        ),
        (
            _edit_config(env_kwargs={"n_agents": 2, "observation": "vector", "gamma": 0.5}),
            "differs from the config",
        ),
        (_edit_config(n_envs=3), "differs from the config the saved model was trained with"),
        (_edit_config(kind="dcpg"), "config.json: not an sb3 run"),
        (_truncate("model.zip", 500), "model.zip: cannot read the saved model"),
        (_truncate("model.zip", 0), "model.zip: cannot read the saved model"),
        (lambda run: (run / "exact.csv").unlink(), "exact.csv: missing, but model.zip is at 128 agent-steps"),
        (_truncate("exact.csv", 20), "exact.csv: no row at the saved model's 128 agent-steps"),
        (
            lambda run: (run / "exact.csv").write_text(
                (run / "exact.csv").read_text().replace("nash_gap,", "gap,", 1)
            ),
            "exact.csv: unexpected header",
        ),
        (
            lambda run: (run / "exact.csv").write_text(
                (run / "exact.csv").read_text().replace("\n64.0,", "\n6x,")
            ),
            "exact.csv: line 3 is damaged",
        ),
        (
            lambda run: (run / "exact.csv").write_text(
                (run / "exact.csv").read_text().replace("\n64.0,", "\n0.0,")
            ),
            "exact.csv: line 3 is at timesteps 0, not after the row before it",
        ),
    ],
)
def test_sb3_damaged_run_folder_is_one_clear_error(sb3_run, tmp_path, capsys, damage, match):
    import re

    from baselines.cli import main

    run = _copy(sb3_run, tmp_path)
    damage(run)
    before = _files(run)
    assert main(["sb3", "--resume", str(run), "--steps", "256", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {run}/") and re.search(match, err), err
    assert "; " in err  # "<file>: <what>; <what to do>"
    assert _files(run) == before


def test_sb3_partial_last_row_is_dropped_on_resume(sb3_run, tmp_path):
    from baselines.sb3 import run_sb3

    run = _copy(sb3_run, tmp_path)
    with open(run / "exact.csv", "a") as f:
        f.write("3")  # a kill cut the next row short after its first character
    run_sb3(resume=run, steps=256, progress=False)
    assert _timesteps(run) == [0, 64, 128, 192, 256]


def test_sb3_kill_before_the_first_save_resumes_to_the_uninterrupted_rows(sb3_run, tmp_path):
    from baselines.sb3 import run_sb3

    # what a kill between the first exact.csv row and the first model.zip leaves behind
    run = tmp_path / "killed"
    run.mkdir()
    (run / "config.json").write_bytes((sb3_run / "config.json").read_bytes())
    lines = (sb3_run / "exact.csv").read_bytes().splitlines(keepends=True)
    (run / "exact.csv").write_bytes(b"".join(lines[:2]))  # header and the timesteps-0 row
    run_sb3(resume=run, progress=False)
    assert (run / "exact.csv").read_bytes() == (sb3_run / "exact.csv").read_bytes()


def test_sb3_kill_before_a_save_drops_the_rows_after_the_model(sb3_run, tmp_path):
    from baselines.sb3 import run_sb3

    run = _copy(sb3_run, tmp_path)
    lines = (run / "exact.csv").read_bytes().splitlines(keepends=True)
    run_sb3(resume=run, steps=192, progress=False)  # the model at 192, its row written
    extended = (run / "exact.csv").read_bytes()
    with open(run / "exact.csv", "ab") as f:  # the row at 256 written, its model.zip not
        f.write(lines[-1].replace(b"128.0,", b"256.0,", 1))
    run_sb3(resume=run, steps=256, progress=False)
    assert _timesteps(run) == [0, 64, 128, 192, 256]
    assert (run / "exact.csv").read_bytes().startswith(extended)


def test_sb3_second_writer_is_refused_before_it_writes(sb3_run, tmp_path, capsys):
    from baselines.cli import main
    from baselines.runs import RunFolder

    run = _copy(sb3_run, tmp_path)
    before = _files(run)
    with RunFolder(run).lock():  # another writer holds the folder
        assert main(["sb3", "--resume", str(run), "--steps", "256", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "is writing this run folder" in err and "pid" in err, err
    assert _files(run) == before


def test_sb3_run_holds_the_lock_while_it_writes(tmp_path):
    from baselines.runs import RunFolder, RunInUseError
    from baselines.sb3 import ExactMetricsCallback, run_sb3

    seen = []
    original = ExactMetricsCallback.evaluate

    def evaluate(self):
        folder = RunFolder(next(tmp_path.iterdir()))
        with pytest.raises(RunInUseError):
            with folder.lock():
                pass
        seen.append(True)
        return original(self)

    ExactMetricsCallback.evaluate = evaluate
    try:
        run_sb3(env_kwargs={"n_agents": 2}, steps=64, n_envs=2, eval_every=64, out=tmp_path, progress=False)
    finally:
        ExactMetricsCallback.evaluate = original
    assert len(seen) == 2


@pytest.mark.parametrize(
    "argv, match",
    [
        (
            ["--env-kwargs", "foo=1"],
            "unknown env keyword argument(s) ['foo'] for mpg/Coordination-v0; allowed: [",
        ),
        (["--env-kwargs", "n_agents=0"], "n_agents must be an integer in [2, 8]"),
        (["--env-kwargs", "n_agents=2", "n_agents=3"], "--env-kwargs: n_agents given more than once"),
        (["--env-kwargs", "render_mode=ansi"], "ParallelVectorEnv does not render"),
        (["--env", "mpg/Nope-v0"], "unknown env 'mpg/Nope-v0'; registered: ["),
        (
            ["--env", "mpg/MultiTaskGridWorld-v0", "--env-kwargs", "observation=vector"],
            "own' (the agent's cell, what a shared multi-task policy reads) they decompose",
        ),
        (
            ["--env", "mpg/Congestion-v0", "--env-kwargs", "n_agents=20"],
            "the exact model has S=2,097,154 states",
        ),
        (["--steps", "0"], "steps must be a positive integer, got 0"),
        (["--steps", str(2**53 + 1)], "steps must be a positive integer of at most 9,007,199,254,740,992"),
        (["--n-envs", "-1"], "n_envs must be a positive integer, got -1"),
        (["--n-envs", "1000000000"], "the SB3 run (3,000,000,000 slots = 1,000,000,000 copies x 3 agents"),
        (["--seed", "-1"], "seed must be an integer in [0, 4,294,967,295], got -1"),
        (["--seed", str(2**32)], "seed must be an integer in [0, 4,294,967,295], got 4294967296"),
        (["--eval-every", "0"], "eval_every must be a positive integer, got 0"),
    ],
)
def test_sb3_refusals_name_the_value_and_leave_no_run_folder(tmp_path, capsys, argv, match):
    from baselines.cli import main

    out = tmp_path / "out"
    assert main(["sb3", "--n-envs", "2", "--steps", "64", *argv, "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and match in err, err
    assert not out.exists() or not any(out.iterdir())


def test_sb3_memory_guard_fires_before_sb3_allocates(tmp_path, monkeypatch, capsys):
    from baselines.cli import main

    monkeypatch.setenv("MPG_MAX_BYTES", str(10**6))
    out = tmp_path / "out"
    argv = ["sb3", "--env-kwargs", "n_agents=2", "--n-envs", "1000", "--out", str(out), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "the SB3 run (2,000 slots = 1,000 copies x 2 agents" in err and "MPG_MAX_BYTES" in err, err
    assert not out.exists() or not any(out.iterdir())


def test_sb3_public_functions_refuse_bad_arguments_naming_them(tmp_path):
    from baselines.sb3 import MPGVecEnv

    C, kw = "mpg/Coordination-v0", dict(n_agents=2, observation="vector")
    for seed in (-1, 1.5, float("nan"), "3", True):
        with pytest.raises(ValueError, match="seed must be None or a non-negative integer"):
            make_vec_env(C, n_envs=1, seed=seed, **kw)
    with pytest.raises(ValueError, match=r"unknown env keyword argument\(s\) \['foo'\] for .*; allowed: \["):
        make_vec_env(C, batched=False, foo=1)
    with pytest.raises(ValueError, match="unknown env 'mpg/Nope'; registered"):
        make_vec_env("mpg/Nope", batched=False)
    # the loop env measures one copy and refuses a count that cannot fit before building the others
    with pytest.raises(ValueError, match=r"1,000,000,000 env objects \(~[\d,]+ bytes each"):
        MPGVecEnv(lambda: pettingzoo.make("parallel", C, **kw), n_envs=10**9)
    env = pettingzoo.make("parallel", C, **kw)
    for every in (0, -5, float("nan"), None, True):
        with pytest.raises(ValueError, match="every must be a positive integer"):
            ExactMetricsCallback(env, every=every)
    with pytest.raises(TypeError, match="env must be one of our parallel envs"):
        ExactMetricsCallback("mpg/Coordination-v0")
    with pytest.raises(ValueError, match="csv_path must be a file to append rows to"):
        ExactMetricsCallback(env, csv_path=tmp_path)
    model = PPO("MlpPolicy", make_vec_env(C, n_envs=1, seed=0, **kw), n_steps=8, batch_size=8)
    with pytest.raises(TypeError, match="model must be a Stable-Baselines3 model"):
        SB3Policy(None, (2, 2), "vector")
    with pytest.raises(ValueError, match=r"action_sizes \(3, 3\) do not match the model's action space"):
        SB3Policy(model, (3, 3), "vector")
    with pytest.raises(ValueError, match="obs_mode must be one of"):
        SB3Policy(model, (2, 2), "bogus")
    # another mode than the model's (state indices of a 4-state game fed to a 4-feature network)
    with pytest.raises(
        ValueError, match=r"obs must be a batch of the model's observations .* got shape \(4,\)"
    ):
        SB3Policy(model, (2, 2), "state").table(env.unwrapped.dynamics)


def test_callback_reuses_given_exact_metrics_only_for_its_own_env():
    from baselines.evaluation import ExactMetrics

    env = pettingzoo.make("parallel", "mpg/Coordination-v0", n_agents=2, observation="vector")
    em = ExactMetrics(env)
    assert ExactMetricsCallback(env, metrics=em).metrics is em
    other = pettingzoo.make("parallel", "mpg/Coordination-v0", n_agents=2, observation="vector")
    with pytest.raises(ValueError, match="metrics must be ExactMetrics of this env"):
        ExactMetricsCallback(other, metrics=em)
    with pytest.raises(ValueError, match="metrics must be ExactMetrics of this env"):
        ExactMetricsCallback(env, metrics="em")
