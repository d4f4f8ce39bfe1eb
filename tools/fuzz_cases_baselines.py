# ruff: noqa: E501 -- case snippets are data: long lines keep each case readable on one line
"""The ``baselines`` case set of ``tools/fuzz_audit.py`` (``--set baselines``).

Bad input on the surfaces added after the envs: the ``dcpg``, ``train``, ``sb3`` and ``reproduce``
sub-commands of ``python -m baselines`` (run as subprocesses inside each case), DCPG and its graphs,
weights and consensus policies, the policy objects, the batched sampler and estimators, the vector
envs (``mpg_envs.vector``, ``gymnasium.make_vec``), the PettingZoo/Gymnasium registrations and the
SB3 helpers. Only public API and the CLI are used, so the same cases run against older code.

A CLI case runs ``python -P -m baselines ...`` (cwd: a fresh temporary folder, the case's memory
limit inherited, 60 s timeout) through :func:`refuse` / :func:`judge` of :data:`PRELUDE`, which
turn the process's end into the harness's terms:

* exit status 2 with ``error: ...`` on stderr and no run folder left in ``--out`` (and, for a
  refused ``--resume``, the resumed folder unchanged): raises ``CLIRefused`` (a ValueError whose
  message is stderr), so the case is ``clear`` if stderr names the bad value (or a size and limit);
* exit status 2 but a run folder left behind (or the resumed folder modified): ``CLILeftFolder``
  (not a clear type: ``unclear``);
* any other failure (a traceback, exit status 1): ``CLITraceback`` (``unclear``);
* a MemoryError in the child's traceback: MemoryError (``crash``); timeout: ``CLITimeout``, death
  by a signal: ``CLIKilled`` (both ``crash``: a hang or a kill);
* exit status 0: nothing raised (``silent`` for an error case; an accept case's ``check`` then
  asserts the result, e.g. a resumed run equal to an uninterrupted one).
"""

from __future__ import annotations

PRELUDE = r'''
import glob, hashlib, json, os, re, shutil, signal, subprocess, sys, tempfile, time
from pathlib import Path

CLI_TIMEOUT = 60
_ROOT = Path(tempfile.mkdtemp(prefix="fuzzb-"))
import atexit
atexit.register(shutil.rmtree, _ROOT, True)
_N = [0]


class CLIRefused(ValueError):
    """Exit status 2, error on stderr, nothing left behind."""


class CLILeftFolder(Exception):
    """Exit status 2 but a run folder left in --out (or the resumed folder modified)."""


class CLITraceback(Exception):
    """The command failed otherwise (a traceback, exit status 1)."""


class CLITimeout(Exception):
    """The command ran past its timeout (a hang)."""


class CLIKilled(Exception):
    """The command died by a signal."""


class CLIStarted(Exception):
    """The command started running (and ran past the timeout) instead of refusing."""


def W(name="d"):
    """A fresh, empty folder."""
    _N[0] += 1
    p = _ROOT / f"{name}{_N[0]}"
    p.mkdir()
    return str(p)


def under_file():
    """A path whose parent is a regular file."""
    f = Path(W("f")) / "afile"
    f.write_text("x")
    return str(f / "sub")


def _env():
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    return env


def _argv(args):
    return [sys.executable, "-P", "-m", "baselines", *[str(a) for a in args]]


def cli(*args, timeout=CLI_TIMEOUT):
    """Run the CLI; returns the CompletedProcess, or raises CLITimeout."""
    try:
        return subprocess.run(_argv(args), capture_output=True, text=True, timeout=timeout, cwd=W("cwd"),
                              env=_env())
    except subprocess.TimeoutExpired:
        raise CLITimeout(f"python -m baselines {' '.join(map(str, args))}: no end after {timeout} s") from None


def spawn(*args):
    return subprocess.Popen(_argv(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=W("cwd"), env=_env())


def snapshot(folder):
    """Every file under folder (except lock files) -> sha256 of its bytes."""
    out = {}
    for p in sorted(Path(folder).rglob("*")):
        if p.is_file() and p.name != ".lock":
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def judge(p, out=None, before=None, watch=None):
    """Turn a finished CLI process into the harness's outcome (see the module docstring)."""
    err = (p.stderr or "").strip()
    tail = err[-1500:]
    if p.returncode == 0:
        return p
    if p.returncode < 0:
        raise CLIKilled(f"signal {-p.returncode}: {tail}")
    if "MemoryError" in err:
        raise MemoryError(tail)
    if p.returncode == 2 and "Traceback" not in err and "error" in err:
        left = []
        if out is not None and Path(out).exists():
            left = [x.name for x in Path(out).iterdir()]
        if watch is not None and before is not None and snapshot(watch) != before:
            left.append(f"{watch} modified")
        if left:
            raise CLILeftFolder(f"{tail} [left behind: {left}]")
        raise CLIRefused(tail)
    raise CLITraceback(f"exit {p.returncode}: {tail}")


def refuse(*args, out="new", watch=None, timeout=CLI_TIMEOUT, started_is_silent=False, diverges=False):
    """Run the CLI with --out (a fresh folder unless given; None: no --out) and judge it.

    ``watch``: a folder that must be left unchanged (a refused --resume). ``diverges``: the input is
    valid until the run diverges, so the run has started and keeps its folder (the iterations before
    the divergence, as a resume would reproduce them); the error must still name the iteration.
    """
    if diverges:
        try:
            return refuse(*args, out=out, watch=watch, timeout=timeout, started_is_silent=started_is_silent)
        except CLILeftFolder as err:
            if re.search(r"iteration \d+: .*diverged", str(err)):
                raise CLIRefused(str(err).split(" [left behind")[0]) from None
            raise
    if out == "new":
        out = W("out")
    argv = list(args) + (["--out", out] if out is not None else [])
    before = snapshot(watch) if watch else None
    try:
        p = cli(*argv, timeout=timeout)
    except CLITimeout:
        if started_is_silent and out is not None and Path(out).exists() and any(Path(out).iterdir()):
            raise CLIStarted(f"ran past {timeout} s instead of refusing") from None
        raise
    return judge(p, out if (out and Path(out).is_dir()) else None, before, watch)


def ok(*args):
    """Run the CLI, which must succeed; returns the CompletedProcess."""
    p = cli(*args)
    if p.returncode != 0:
        raise RuntimeError(f"setup run failed (exit {p.returncode}): {p.stderr[-800:]}")
    return p


def run_folder(out):
    """The one run folder in out."""
    runs = [x for x in Path(out).iterdir() if x.is_dir()]
    if len(runs) != 1:
        raise RuntimeError(f"expected one run folder in {out}, got {runs}")
    return str(runs[0])


DCPG = ["dcpg", "--layout", "chain_slip", "--iters", "4", "--horizon", "10", "--eval-every", "1",
        "--checkpoint-every", "2", "--success-horizon", "10", "--no-progress"]
MLP = ["--policy", "mlp", "--hidden", "8", "--view", "1"]
TRAIN = ["train", "--env", "mpg/Coordination-v0", "--env-kwargs", "n_agents=2", "--iters", "4",
         "--eval-every", "1", "--checkpoint-every", "2", "--no-progress"]
SB3 = ["sb3", "--env", "mpg/Coordination-v0", "--env-kwargs", "n_agents=2", "--steps", "256",
       "--n-envs", "2", "--eval-every", "128", "--no-progress"]


def made(base, *extra):
    """A finished run of ``base + extra`` in a fresh folder; returns the run folder."""
    out = W("runs")
    ok(*base, *extra, "--out", out)
    return run_folder(out)


def edit_json(path, **changes):
    d = json.loads(Path(path).read_text())
    for k, v in changes.items():
        if v is _DROP:
            d.pop(k, None)
        else:
            d[k] = v
    Path(path).write_text(json.dumps(d))


_DROP = object()


def truncate(path, keep=0.5):
    b = Path(path).read_bytes()
    Path(path).write_bytes(b[: int(len(b) * keep)])


def npz_edit(path, drop=(), **arrays):
    import numpy as _np
    z = dict(_np.load(path, allow_pickle=False))
    for k in drop:
        z.pop(k, None)
    z.update(arrays)
    with open(path, "wb") as f:
        _np.savez(f, **z)


def latest(run, pattern):
    return sorted(glob.glob(os.path.join(run, pattern)))[-1]


def csv_rows(path):
    import csv
    with open(path, newline="") as f:
        return list(csv.reader(f))


def same_npz(a, b):
    import numpy as _np
    za, zb = _np.load(a, allow_pickle=False), _np.load(b, allow_pickle=False)
    assert sorted(za.files) == sorted(zb.files), (za.files, zb.files)
    for k in za.files:
        assert _np.array_equal(za[k], zb[k]), f"{k} differs"


def concurrent(*args, n=2, stagger=0.0):
    """Start n copies of one command at once; returns their CompletedProcess-like results."""
    procs = []
    for _ in range(n):
        procs.append(spawn(*args))
        if stagger:
            time.sleep(stagger)
    res = []
    for p in procs:
        try:
            so, se = p.communicate(timeout=CLI_TIMEOUT)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise CLITimeout("concurrent runs did not end") from None
        res.append(subprocess.CompletedProcess(p.args, p.returncode, so, se))
    return res


def one_refused(results, run):
    """Exactly one of two concurrent writers refused (exit 2), the other finished."""
    codes = sorted(r.returncode for r in results)
    if codes == [0, 0]:
        return  # both wrote: silent (the check of the case says what went wrong)
    if codes == [0, 2]:
        bad = next(r for r in results if r.returncode == 2)
        raise CLIRefused(bad.stderr.strip()[-1500:])
    bad = next(r for r in results if r.returncode != 0)
    judge(bad)

'''


def _q(v: object) -> str:
    return repr(str(v))


def cases(E, A, EITHER, SIZE) -> list:  # noqa: N803 - the harness's constructors
    """Every case of the set (``E``/``A``/``EITHER`` as in ``fuzz_audit``)."""
    out = []
    out += _dcpg_cli(E, A, EITHER, SIZE)
    out += _train_cli(E, A, EITHER, SIZE)
    out += _sb3_cli(E, A, EITHER, SIZE)
    out += _reproduce_cli(E, A, EITHER, SIZE)
    out += _consensus_api(E, A, EITHER, SIZE)
    out += _policies_api(E, A, EITHER, SIZE)
    out += _sampler_api(E, A, EITHER, SIZE)
    out += _vector_api(E, A, EITHER, SIZE)
    out += _registration(E, A, EITHER, SIZE)
    out += _sb3_api(E, A, EITHER, SIZE)
    return [c for c in out if c.id not in _PRUNED]


#: Variants left out to keep the set's run time near 20 min at ``--jobs 2`` (each repeats a case
#: that stays: the same check with another bad value).
_PRUNED = frozenset(
    """cli/dcpg --alpha abc|cli/dcpg --lam inf|cli/dcpg --alpha-decay nan|cli/dcpg --slip -0.1|cli/dcpg --slip nan|cli/dcpg --gamma nan|cli/dcpg --graph-p abc|cli/dcpg --episodes -1|cli/dcpg --horizon -5|cli/dcpg --iters -1|cli/dcpg --eval-every -1|cli/dcpg --checkpoint-every -2|cli/dcpg --seeds abc|cli/dcpg mlp --view -1|cli/dcpg mlp --hidden -3|cli/dcpg mlp --critic-lr 0|cli/dcpg mlp --clip 0|cli/dcpg --communicate maybe|cli/dcpg --features pixels|cli/dcpg --gradient-at later|cli/dcpg --train-start random|cli/dcpg --init ones|cli/dcpg --no-such-flag 1|cli/train --iters -1|cli/train --iters abc|cli/train --init ones|cli/train --checkpoint-every -1|cli/train --eta -1|cli/train --eta abc|cli/train --log-barrier nan|cli/train --no-such-flag 1|cli/train nn_pg --lr inf|cli/train nn_pg --hidden -3|cli/train nn_pg --bias maybe|cli/train nn_pg --optimizer lbfgs|cli/train sampled --horizon -1|cli/train sampled --batch 1.5|cli/sb3 --steps -1|cli/sb3 --steps abc|cli/sb3 --n-envs -1|cli/sb3 --seed abc|cli/sb3 --eval-every -1|consensus/ring(-1)|consensus/path(None)|consensus/star(3, center=1.5)|consensus/random_connected(4, True)|consensus/random_connected seed=1.5|consensus/random_connected max_tries=-1|consensus/from_adjacency 3-d|consensus/from_adjacency None|consensus/check_weights strings|consensus/neighbours(4)|consensus/Topology.make n=0|consensus/run_dcpg alpha=0|consensus/run_dcpg alpha='1'|consensus/run_dcpg slip=2|consensus/run_dcpg graph_p=0|consensus/run_dcpg episodes=1.5|consensus/run_dcpg horizon=True|consensus/run_dcpg iters=-1|consensus/run_dcpg eval_every=0|consensus/run_dcpg checkpoint_every=0|consensus/run_dcpg layout=None|consensus/run_dcpg hidden=[8, -1], policy='mlp'|consensus/run_dcpg hidden='8', policy='mlp', ppo_epochs=0, gradient='ppo'|policies/tabular probs obs -1|policies/softmax logits 1-d|policies/softmax init n_rows=0|policies/mlp activation gelu|policies/mlp dtype float16|policies/mlp bias=1|policies/neural nets of strings|policies/tabular tables=[]|vector/make_parallel_vec num_envs=None|vector/make_parallel_vec num_envs=2.0|vector/reset seed='1'|vector/reset state=True|vector/reset state=99|vector/step scalar|vector/step None|vector/step action -1|vector/step strings|vector/make_vec num_envs=-1|vector/make_vec reset seed=-1|sampler/rollout n_episodes=-1|sampler/rollout n_episodes=1.5|sampler/BatchSampler rng=-1|sampler/SampledEstimator batch=True|sampler/SampledEstimator tail=1.5|sampler/SampledEstimator gamma=0|sampler/ForcedActionEstimator max_states=0|sb3api/make_vec_env n_envs=1.5|sb3api/make_vec_env n_envs='2'|sb3api/ExactMetricsCallback every=1.5|sb3api/ExactMetricsCallback every=-1|sb3api/run_sb3 steps=True|sb3api/run_sb3 env_kwargs list""".split(
        "|"
    )
)


# ------------------------------------------------------------------------------------------ CLI
def _flag_cases(E, prefix: str, base: str, flags: list[tuple[str, str, str]], extra: str = "") -> list:
    """``refuse(*base, flag, value)``: one error case per (flag, value, token)."""
    out = []
    for flag, value, tok in flags:
        code = f"refuse(*{base}, {extra}{_q(flag)}, {_q(value)})"
        out.append(E(f"{prefix} {flag} {value}", code, tok))
    return out


def _dcpg_cli(E, A, EITHER, SIZE) -> list:
    p = "cli/dcpg"
    bad = [
        ("--alpha", "0", "0"),
        ("--alpha", "-1", "-1"),
        ("--alpha", "nan", "nan"),
        ("--alpha", "inf", "inf"),
        ("--alpha", "abc", "abc"),
        ("--lam", "-1", "-1"),
        ("--lam", "nan", "nan"),
        ("--lam", "inf", "inf"),
        ("--alpha-decay", "-1", "-1"),
        ("--alpha-decay", "nan", "nan"),
        ("--slip", "1.5", "1.5"),
        ("--slip", "-0.1", "-0.1"),
        ("--slip", "nan", "nan"),
        ("--gamma", "0", "0"),
        ("--gamma", "1", "1"),
        ("--gamma", "nan", "nan"),
        ("--chain-p", "1.5", "1.5"),
        ("--graph", "hexagon", "hexagon"),
        ("--graph-p", "0", "0"),
        ("--graph-p", "nan", "nan"),
        ("--graph-p", "abc", "abc"),
        ("--weights", "uniform", "uniform"),
        ("--communicate", "maybe", "maybe"),
        ("--gradient", "sarsa", "sarsa"),
        ("--gradient", "a2c", "a2c"),  # a2c needs policy=mlp
        ("--policy", "cnn", "cnn"),
        ("--features", "pixels", "pixels"),
        ("--optimizer", "rmsprop", "rmsprop"),
        ("--gradient-at", "later", "later"),
        ("--train-start", "random", "random"),
        ("--init", "ones", "ones"),
        ("--episodes", "0", "0"),
        ("--episodes", "-1", "-1"),
        ("--episodes", "1.5", "1.5"),
        ("--horizon", "0", "0"),
        ("--horizon", "-5", "-5"),
        ("--iters", "0", "0"),
        ("--iters", "-1", "-1"),
        ("--iters", "1e308", "1e308"),
        ("--iters", "99999999999999999999999999999", "99999999999999999999999999999"),
        ("--eval-every", "0", "0"),
        ("--eval-every", "-1", "-1"),
        ("--success-horizon", "0", "0"),
        ("--checkpoint-every", "0", "0"),
        ("--checkpoint-every", "-2", "-2"),
        ("--seeds", "-1", "-1"),
        ("--seeds", "abc", "abc"),
        ("--layout", "nowhere", "nowhere"),
        ("--layout", "S.Q", "Q"),
        ("--backend", "mpi", "mpi"),
        ("--no-such-flag", "1", "--no-such-flag"),
    ]
    out = _flag_cases(E, p, "DCPG", bad)
    mlp_bad = [
        ("--view", "0", "0"),
        ("--view", "-1", "-1"),
        ("--hidden", "0", "0"),
        ("--hidden", "-3", "-3"),
        ("--hidden", "a,b", "a,b"),
        ("--critic-lr", "0", "0"),
        ("--critic-lr", "nan", "nan"),
        ("--ppo-epochs", "0", "0"),
        ("--clip", "0", "0"),
        ("--clip", "nan", "nan"),
    ]
    out += _flag_cases(E, p + " mlp", "DCPG", mlp_bad, extra="*MLP, ")
    sizes = [  # a user-controlled size that scales an allocation: refused with a size and a limit
        ("--horizon", "1000000000"),
        ("--episodes", "1000000000"),
    ]
    out += [E(f"{p} {f} {v}", f"refuse(*DCPG, {_q(f)}, {_q(v)})", SIZE) for f, v in sizes]
    out += [
        E(f"{p} mlp --hidden 100000,100000", "refuse(*DCPG, *MLP[:2], '--hidden', '100000,100000')", SIZE),
        E(f"{p} mlp --view 100000", "refuse(*DCPG, *MLP[:4], '--view', '100000')", SIZE),
        A(  # far horizons are computed by repeated squaring: fast and exact, so a valid input
            f"{p} --success-horizon 1000000000",
            "ok(*DCPG, '--success-horizon', '1000000000', '--out', W('out'))",
        ),
        E(
            f"{p} --alpha 1e308 (exact)",
            "refuse(*DCPG, '--gradient', 'exact', '--alpha', '1e308', diverges=True)",
            "diverge",
        ),
        E(f"{p} --alpha 1e308 (montecarlo)", "refuse(*DCPG, '--alpha', '1e308', diverges=True)", "diverge"),
        E(f"{p} mlp --alpha 1e308", "refuse(*DCPG, *MLP, '--alpha', '1e308', diverges=True)", "diverge"),
        E(f"{p} --out under a file", "refuse(*DCPG, out=under_file())", "afile"),
        E(
            f"{p} --graph random --graph-p 1e-9 (4 tasks)",
            "refuse(*DCPG[:1], '--layout', 'no_conflict', *DCPG[3:], '--graph', 'random', '--graph-p', '1e-9')",
            "1e-09",
            "connected",
        ),
        A(
            f"{p} --layout S.G (one-row task)",
            "out = W(); ok('dcpg', '--layout', 'S.G', *DCPG[3:], '--out', out)",
            check="assert Path(run_folder(out), 'final.npz').exists()",
        ),
        A(
            f"{p} --layout two one-row tasks",
            "out = W(); ok('dcpg', '--layout', 'S.G', 'G.S', *DCPG[3:], '--out', out)",
        ),
        E(
            f"{p} --layout tasks of two shapes",
            "refuse('dcpg', '--layout', 'S.G', 'S..G', *DCPG[3:])",
            "shape",
        ),
    ]
    # ---- resume
    R = "run = made(DCPG)\n"
    out += [
        E(
            f"{p} --resume finished --iters 2 (fewer than done)",
            R + "refuse('dcpg', '--resume', run, '--iters', '2', out=None, watch=run)",
            "2",
            "4",
        ),
        E(
            f"{p} --resume finished (no --iters)",
            R + "refuse('dcpg', '--resume', run, out=None, watch=run)",
            "finished",
        ),
        E(
            f"{p} --resume --alpha (options resume must refuse)",
            R + "refuse('dcpg', '--resume', run, '--iters', '6', '--alpha', '0.5', out=None, watch=run)",
            "--alpha",
            "alpha",
        ),
        E(
            f"{p} --resume --layout",
            R + "refuse('dcpg', '--resume', run, '--layout', 'no_conflict', out=None, watch=run)",
            "--layout",
            "layout",
        ),
        E(
            f"{p} --resume --seeds",
            R + "refuse('dcpg', '--resume', run, '--seeds', '3', out=None, watch=run)",
            "--seeds",
            "seed",
        ),
        E(
            f"{p} --resume --iters 0",
            R + "refuse('dcpg', '--resume', run, '--iters', '0', out=None, watch=run)",
            "0",
        ),
        E(f"{p} --resume missing folder", "refuse('dcpg', '--resume', W() + '/nope', out=None)", "nope"),
        E(
            f"{p} --resume a file",
            "f = Path(W(), 'x.txt'); f.write_text('x')\nrefuse('dcpg', '--resume', str(f), out=None)",
            "x.txt",
        ),
        E(f"{p} --resume empty folder", "refuse('dcpg', '--resume', W(), out=None)", "config.json"),
        E(
            f"{p} --resume truncated agent checkpoint",
            R + "truncate(latest(run, 'checkpoints/agent0000_*.npz'))\nos.remove(Path(run, 'final.npz'))\n"
            "refuse('dcpg', '--resume', run, out=None, watch=run)",
            "agent0000",
        ),
        EITHER(
            f"{p} --resume truncated final.npz",
            R + "truncate(Path(run, 'final.npz'))\nrefuse('dcpg', '--resume', run, '--iters', '6', out=None, "
            "watch=run)",
            "final.npz",
            check="import numpy as np\nassert int(np.load(Path(run, 'final.npz'))['iteration']) == 6",
        ),
        E(
            f"{p} --resume theta of the wrong shape",
            R + "import numpy as np\nf = latest(run, 'checkpoints/agent0001_*.npz')\n"
            "npz_edit(f, theta=np.zeros((3, 3)))\nos.remove(Path(run, 'final.npz'))\n"
            "refuse('dcpg', '--resume', run, out=None, watch=run)",
            "agent0001",
        ),
        E(
            f"{p} --resume checkpoint without theta",
            R + "f = latest(run, 'checkpoints/agent0000_*.npz')\nnpz_edit(f, drop=['theta'])\n"
            "os.remove(Path(run, 'final.npz'))\nrefuse('dcpg', '--resume', run, out=None, watch=run)",
            "theta",
        ),
        E(
            f"{p} --resume corrupt random state",
            R + "import numpy as np\nf = latest(run, 'checkpoints/agent0000_*.npz')\n"
            "npz_edit(f, rng=np.array('{not json'))\nos.remove(Path(run, 'final.npz'))\n"
            "refuse('dcpg', '--resume', run, out=None, watch=run)",
            "agent0000",
        ),
        E(
            f"{p} --resume checkpoints/ replaced by a file",
            R + "shutil.rmtree(Path(run, 'checkpoints'))\nPath(run, 'checkpoints').write_text('x')\n"
            "os.remove(Path(run, 'final.npz'))\nrefuse('dcpg', '--resume', run, out=None, watch=run)",
            "checkpoints",
        ),
        E(
            f"{p} --resume config.json not JSON",
            R
            + "Path(run, 'config.json').write_text('{')\nrefuse('dcpg', '--resume', run, out=None, watch=run)",
            "config.json",
        ),
        E(
            f"{p} --resume config.json without a field",
            R + "edit_json(Path(run, 'config.json'), alpha=_DROP)\nos.remove(Path(run, 'final.npz'))\n"
            "refuse('dcpg', '--resume', run, out=None, watch=run)",
            "alpha",
            "config.json",
        ),
        E(
            f"{p} --resume config.json layout edited",
            R
            + "edit_json(Path(run, 'config.json'), layout='no_conflict')\nos.remove(Path(run, 'final.npz'))\n"
            "refuse('dcpg', '--resume', run, out=None, watch=run)",
            "layout",
            "no_conflict",
        ),
        E(
            f"{p} --resume config.json alpha nan",
            R + "edit_json(Path(run, 'config.json'), alpha='nan')\nos.remove(Path(run, 'final.npz'))\n"
            "refuse('dcpg', '--resume', run, out=None, watch=run)",
            "nan",
        ),
        E(
            f"{p} --resume config.json kind train",
            R
            + "edit_json(Path(run, 'config.json'), kind='train')\nrefuse('dcpg', '--resume', run, out=None, watch=run)",
            "kind",
            "train",
        ),
        E(
            f"{p} two concurrent --resume (second refused)",
            "run = made(DCPG, '--eval-every', '100000', '--checkpoint-every', '100000')\n"
            "res = concurrent('dcpg', '--resume', run, '--iters', '20000')\none_refused(res, run)",
            "pid",
            "in use",
            "lock",
            check="raise AssertionError('both concurrent resumes ran')",
        ),
        A(
            f"{p} resume after a kill equals an uninterrupted run",
            "from baselines.consensus import DCPGConfig, run_dcpg\n"
            "a = W(); ok(*DCPG, '--iters', '6', '--out', a); ra = run_folder(a)\n"
            "b = W(); cfg = DCPGConfig(layout='chain_slip', iters=6, horizon=10, eval_every=1, checkpoint_every=2,"
            " success_horizon=10, out=b)\nrun_dcpg(cfg, stop_after=3)\nrb = run_folder(b)\n"
            "ok('dcpg', '--resume', rb, '--no-progress')",
            check="same_npz(Path(ra, 'final.npz'), Path(rb, 'final.npz'))\n"
            "assert len(csv_rows(Path(ra, 'metrics.csv'))) == len(csv_rows(Path(rb, 'metrics.csv')))",
        ),
        A(
            f"{p} mlp resume after a kill equals an uninterrupted run",
            "from baselines.consensus import DCPGConfig, run_dcpg\n"
            "a = W(); ok(*DCPG, *MLP, '--iters', '6', '--out', a); ra = run_folder(a)\n"
            "b = W(); cfg = DCPGConfig(layout='chain_slip', iters=6, horizon=10, eval_every=1, checkpoint_every=2,"
            " success_horizon=10, policy='mlp', hidden='8', view=1, out=b)\nrun_dcpg(cfg, stop_after=3)\n"
            "rb = run_folder(b)\nok('dcpg', '--resume', rb, '--no-progress')",
            check="same_npz(Path(ra, 'final.npz'), Path(rb, 'final.npz'))",
        ),
        A(
            f"{p} --resume --iters extends a finished run",
            R + "ok('dcpg', '--resume', run, '--iters', '6', '--no-progress')",
            check="import numpy as np\nassert int(np.load(Path(run, 'final.npz'))['iteration']) == 6",
        ),
    ]
    return out


def _train_cli(E, A, EITHER, SIZE) -> list:
    p = "cli/train"
    bad = [
        ("--env", "mpg/Nope-v0", "mpg/Nope-v0"),
        ("--algo", "sarsa", "sarsa"),
        ("--estimator", "guess", "guess"),
        ("--obs", "pixels", "pixels"),
        ("--iters", "0", "0"),
        ("--iters", "-1", "-1"),
        ("--iters", "abc", "abc"),
        ("--init", "ones", "ones"),
        ("--eval-every", "0", "0"),
        ("--checkpoint-every", "0", "0"),
        ("--checkpoint-every", "-1", "-1"),
        ("--stop-l1", "-1", "-1"),
        ("--stop-l1", "nan", "nan"),
        ("--stop-rule", "never", "never"),
        ("--seeds", "-1", "-1"),
        ("--eta", "0", "0"),
        ("--eta", "-1", "-1"),
        ("--eta", "nan", "nan"),
        ("--eta", "inf", "inf"),
        ("--eta", "abc", "abc"),
        ("--log-barrier", "-1", "-1"),
        ("--log-barrier", "nan", "nan"),
        ("--no-such-flag", "1", "--no-such-flag"),
    ]
    out = _flag_cases(E, p, "TRAIN", bad)
    nn = [
        ("--lr", "0", "0"),
        ("--lr", "nan", "nan"),
        ("--lr", "inf", "inf"),
        ("--hidden", "-3", "-3"),
        ("--hidden", "a,b", "a,b"),
        ("--activation", "gelu", "gelu"),
        ("--dtype", "float16", "float16"),
        ("--optimizer", "lbfgs", "lbfgs"),
        ("--bias", "maybe", "maybe"),
    ]
    out += _flag_cases(E, p + " nn_pg", "TRAIN", nn, extra="'--algo', 'nn_pg', ")
    smp = [
        ("--horizon", "0", "0"),
        ("--horizon", "-1", "-1"),
        ("--batch", "0", "0"),
        ("--batch", "1.5", "1.5"),
        ("--tail", "-1", "-1"),
    ]
    out += _flag_cases(E, p + " sampled", "TRAIN", smp, extra="'--algo', 'ipg', '--estimator', 'sampled', ")
    frc = [("--samples", "0", "0"), ("--layers", "0", "0")]
    out += _flag_cases(
        E, p + " forced_visit_sum", "TRAIN", frc, extra="'--algo', 'ipg', '--estimator', 'forced_visit_sum', "
    )
    S = "'--algo', 'ipg', '--estimator', 'sampled', "
    out += [
        E(f"{p} sampled --horizon 1000000000", f"refuse(*TRAIN, {S}'--horizon', '1000000000')", SIZE),
        E(f"{p} sampled --batch 100000000", f"refuse(*TRAIN, {S}'--batch', '100000000')", SIZE),
        E(f"{p} sampled --tail 1000000000", f"refuse(*TRAIN, {S}'--tail', '1000000000')", SIZE),
        E(
            f"{p} forced --samples 1000000000",
            "refuse(*TRAIN, '--algo', 'ipg', '--estimator', 'forced', '--samples', '1000000000')",
            SIZE,
        ),
        E(
            f"{p} forced --horizon 1000000000",
            "refuse(*TRAIN, '--algo', 'ipg', '--estimator', 'forced', '--horizon', '1000000000')",
            SIZE,
        ),
        E(
            f"{p} nn_pg --hidden 100000,100000",
            "refuse(*TRAIN, '--algo', 'nn_pg', '--hidden', '100000,100000')",
            SIZE,
        ),
        E(
            f"{p} --env-kwargs foo=1",
            "refuse('train', '--env', 'mpg/Coordination-v0', '--env-kwargs', 'foo=1', "
            "'--iters', '2', '--no-progress')",
            "foo",
        ),
        E(
            f"{p} --env-kwargs n_agents=0",
            "refuse('train', '--env', 'mpg/Coordination-v0', '--env-kwargs', "
            "'n_agents=0', '--iters', '2', '--no-progress')",
            "0",
        ),
        E(
            f"{p} --env-kwargs n_agents=100000 (model size)",
            "refuse('train', '--env', 'mpg/Coordination-v0', "
            "'--env-kwargs', 'n_agents=100000', '--iters', '2', '--no-progress')",
            "100000",  # refused by the env's range of N, before any size estimate
        ),
        E(
            f"{p} --env-kwargs gamma=nan",
            "refuse('train', '--env', 'mpg/Coordination-v0', '--env-kwargs', "
            "'gamma=nan', '--iters', '2', '--no-progress')",
            "nan",
        ),
        E(
            f"{p} --env-kwargs badtoken",
            "refuse('train', '--env-kwargs', 'n_agents', '--iters', '2')",
            "n_agents",
        ),
        E(
            f"{p} --eta with nn_pg (not its option)",
            "refuse(*TRAIN, '--algo', 'nn_pg', '--eta', '0.1')",
            "--eta",
            "eta",
        ),
        E(
            f"{p} --horizon with exact (not its option)",
            "refuse(*TRAIN, '--horizon', '5')",
            "--horizon",
            "horizon",
        ),
        E(
            f"{p} --algo reinforce --estimator exact",
            "refuse(*TRAIN, '--algo', 'reinforce', '--estimator', 'exact')",
            "exact",
            "reinforce",
        ),
        E(f"{p} --eta 1e308 (diverges)", "refuse(*TRAIN, '--eta', '1e308', diverges=True)", "diverge"),
        E(
            f"{p} --stop-rule fox2022-npg without --stop-l1",
            "refuse(*TRAIN, '--stop-rule', 'fox2022-npg')",
            "stop-l1",
            "stop_l1",
        ),
        E(f"{p} --out under a file", "refuse(*TRAIN, out=under_file())", "afile"),
        E(f"{p} --out /proc (unwritable)", "refuse(*TRAIN, out='/proc/fuzz_unwritable')", "/proc"),
    ]
    R = "run = made(TRAIN)\n"
    out += [
        E(
            f"{p} --resume finished (no --iters)",
            R + "refuse('train', '--resume', run, out=None, watch=run)",
            "finished",
        ),
        E(
            f"{p} --resume finished --iters 2 (fewer)",
            R + "refuse('train', '--resume', run, '--iters', '2', out=None, watch=run)",
            "2",
            "4",
        ),
        E(
            f"{p} --resume --eta",
            R + "refuse('train', '--resume', run, '--iters', '6', '--eta', '0.5', out=None, watch=run)",
            "--eta",
            "eta",
        ),
        E(
            f"{p} --resume --algo",
            R + "refuse('train', '--resume', run, '--algo', 'ipg', out=None, watch=run)",
            "--algo",
            "algo",
        ),
        E(f"{p} --resume missing folder", "refuse('train', '--resume', W() + '/nope', out=None)", "nope"),
        E(
            f"{p} --resume truncated checkpoint",
            R + "os.remove(Path(run, 'final.npz'))\n"
            "truncate(Path(run, 'checkpoint.npz'))\nrefuse('train', '--resume', run, out=None, watch=run)",
            "checkpoint.npz",
        ),
        E(
            f"{p} --resume config.json not JSON",
            R + "os.remove(Path(run, 'final.npz'))\n"
            "Path(run, 'config.json').write_text('[1, 2')\nrefuse('train', '--resume', run, out=None, watch=run)",
            "config.json",
        ),
        E(
            f"{p} --resume config algo changed",
            R + "os.remove(Path(run, 'final.npz'))\n"
            "edit_json(Path(run, 'config.json'), algo='ipg')\nrefuse('train', '--resume', run, out=None, watch=run)",
            "algo",
            "ipg",
            "inpg",
        ),
        E(
            f"{p} --resume config without iters",
            R + "os.remove(Path(run, 'final.npz'))\n"
            "edit_json(Path(run, 'config.json'), iters=_DROP)\nrefuse('train', '--resume', run, out=None, watch=run)",
            "iters",
        ),
        E(
            f"{p} --resume checkpoint iteration > iters",
            R + "import numpy as np\nos.remove(Path(run, 'final.npz'))\n"
            "npz_edit(Path(run, 'checkpoint.npz'), iteration=np.array(50))\n"
            "refuse('train', '--resume', run, out=None, watch=run)",
            "50",
            "checkpoint.npz",
        ),
        E(
            f"{p} --resume checkpoint without estimator random state",
            "run = made(TRAIN, '--algo', 'ipg', '--estimator', 'sampled')\nos.remove(Path(run, 'final.npz'))\n"
            "npz_edit(Path(run, 'checkpoint.npz'), drop=['estimator_rng'])\n"
            "refuse('train', '--resume', run, out=None, watch=run)",
            "estimator_rng",
            "random state",
            "estimator",
        ),
        E(
            f"{p} two concurrent --resume (second refused)",
            "run = made(TRAIN, '--eval-every', '100000', '--checkpoint-every', '100000')\n"
            "res = concurrent('train', '--resume', run, '--iters', '20000')\none_refused(res, run)",
            "pid",
            "in use",
            "lock",
            check="raise AssertionError('both concurrent resumes ran')",
        ),
        A(
            f"{p} sampled resume after a kill equals an uninterrupted run",
            "from baselines.train import TrainConfig, train\n"
            "a = W(); ok(*TRAIN, '--algo', 'ipg', '--estimator', 'sampled', '--iters', '6', '--out', a); ra = run_folder(a)\n"
            "b = W(); cfg = TrainConfig(env='mpg/Coordination-v0', env_kwargs={'n_agents': 2}, algo='ipg', "
            "estimator='sampled', iters=6, eval_every=1, checkpoint_every=2, out=b)\n"
            "train(cfg, stop_after=3, progress=False, plot=False)\nrb = run_folder(b)\n"
            "ok('train', '--resume', rb, '--no-progress')",
            check="same_npz(Path(ra, 'final.npz'), Path(rb, 'final.npz'))",
        ),
    ]
    return out


def _sb3_cli(E, A, EITHER, SIZE) -> list:
    p = "cli/sb3"
    bad = [
        ("--env", "mpg/Nope-v0", "mpg/Nope-v0"),
        ("--algo", "dqn", "dqn"),
        ("--steps", "0", "0"),
        ("--steps", "-1", "-1"),
        ("--steps", "abc", "abc"),
        ("--steps", "1e308", "1e308"),
        ("--n-envs", "0", "0"),
        ("--n-envs", "-1", "-1"),
        ("--n-envs", "1.5", "1.5"),
        ("--seed", "-1", "-1"),
        ("--seed", "abc", "abc"),
        ("--eval-every", "0", "0"),
        ("--eval-every", "-1", "-1"),
    ]
    out = _flag_cases(E, p, "SB3", bad)
    out += [
        E(f"{p} --n-envs 1000000000", "refuse(*SB3, '--n-envs', '1000000000')", SIZE),
        E(
            f"{p} --steps 10**30",
            "refuse(*SB3, '--steps', str(10**30))",
            "1000000000000000000000000000000",
            SIZE,
        ),
        E(
            f"{p} --env-kwargs foo=1",
            "refuse('sb3', '--env', 'mpg/Coordination-v0', '--env-kwargs', 'foo=1', "
            "'--steps', '256', '--n-envs', '2', '--eval-every', '128', '--no-progress')",
            "foo",
        ),
        E(
            f"{p} --env-kwargs n_agents=0",
            "refuse('sb3', '--env', 'mpg/Coordination-v0', '--env-kwargs', 'n_agents=0',"
            " '--steps', '256', '--n-envs', '2', '--no-progress')",
            "0",
        ),
        E(
            f"{p} --env-kwargs observation=state",
            "refuse('sb3', '--env', 'mpg/Coordination-v0', '--env-kwargs', "
            "'observation=pixels', '--steps', '256', '--n-envs', '2', '--no-progress')",
            "pixels",
        ),
        E(
            f"{p} --env-kwargs max_cycles=-1",
            "refuse('sb3', '--env', 'mpg/Coordination-v0', '--env-kwargs', "
            "'max_cycles=-1', '--steps', '256', '--n-envs', '2', '--no-progress')",
            "-1",
        ),
        E(f"{p} --out under a file", "refuse(*SB3, out=under_file())", "afile"),
    ]
    R = "run = made(SB3)\n"
    out += [
        E(
            f"{p} --resume --algo a2c",
            R + "refuse('sb3', '--resume', run, '--algo', 'a2c', '--steps', '512', out=None, watch=run)",
            "--algo",
            "algo",
        ),
        E(
            f"{p} --resume --n-envs 4",
            R + "refuse('sb3', '--resume', run, '--n-envs', '4', '--steps', '512', out=None, watch=run)",
            "--n-envs",
            "n_envs",
        ),
        E(
            f"{p} --resume --seed 3",
            R + "refuse('sb3', '--resume', run, '--seed', '3', '--steps', '512', out=None, watch=run)",
            "--seed",
            "seed",
        ),
        E(
            f"{p} --resume --env",
            R + "refuse('sb3', '--resume', run, '--env', 'mpg/Distancing-v0', out=None, watch=run)",
            "--env",
            "env",
        ),
        EITHER(
            f"{p} --resume --steps 128 (fewer than done)",
            R + "refuse('sb3', '--resume', run, '--steps', '128', out=None, watch=run)",
            "128",
            check="rows = csv_rows(Path(run, 'exact.csv'))\nassert int(float(rows[-1][0])) == 256, rows",
        ),
        E(f"{p} --resume missing folder", "refuse('sb3', '--resume', W() + '/nope', out=None)", "nope"),
        E(
            f"{p} --resume config algo dqn",
            R + "edit_json(Path(run, 'config.json'), algo='dqn')\n"
            "refuse('sb3', '--resume', run, '--steps', '512', out=None, watch=run)",
            "dqn",
        ),
        E(
            f"{p} --resume config without steps",
            R + "edit_json(Path(run, 'config.json'), steps=_DROP)\n"
            "refuse('sb3', '--resume', run, out=None, watch=run)",
            "steps",
        ),
        E(
            f"{p} --resume config not JSON",
            R + "Path(run, 'config.json').write_text('nope')\n"
            "refuse('sb3', '--resume', run, '--steps', '512', out=None, watch=run)",
            "config.json",
        ),
        E(
            f"{p} --resume truncated model.zip",
            R + "truncate(Path(run, 'model.zip'))\n"
            "refuse('sb3', '--resume', run, '--steps', '512', out=None, watch=run)",
            "model.zip",
        ),
        EITHER(
            f"{p} --resume partial last row of exact.csv",
            R + "f = Path(run, 'exact.csv'); f.write_text(f.read_text() + '384,1.2')\n"
            "refuse('sb3', '--resume', run, '--steps', '512', out=None, watch=run)",
            "exact.csv",
            check="rows = csv_rows(Path(run, 'exact.csv'))\nassert len({len(r) for r in rows}) == 1, rows\n"
            "steps = [int(float(r[0])) for r in rows[1:]]\nassert steps == sorted(set(steps)), steps",
        ),
        EITHER(
            f"{p} --resume after a kill before the first model.zip",
            R + "os.remove(Path(run, 'model.zip'))\nf = Path(run, 'exact.csv')\n"
            "f.write_text(''.join(f.read_text().splitlines(True)[:2]))\n"
            "refuse('sb3', '--resume', run, out=None, watch=run)",
            "model.zip",
            check="rows = csv_rows(Path(run, 'exact.csv'))\nsteps = [int(float(r[0])) for r in rows[1:]]\n"
            "assert steps == sorted(set(steps)), f'duplicate rows: {steps}'",
        ),
        E(
            f"{p} two concurrent --resume (second refused)",
            R + "res = concurrent('sb3', '--resume', run, '--steps', '4096')\none_refused(res, run)",
            "pid",
            "in use",
            "lock",
            check="raise AssertionError('both concurrent resumes ran')",
        ),
        A(
            f"{p} --resume --steps extends",
            R + "ok('sb3', '--resume', run, '--steps', '512', '--no-progress')",
            check="rows = csv_rows(Path(run, 'exact.csv'))\nassert int(float(rows[-1][0])) == 512, rows",
        ),
    ]
    return out


def _reproduce_cli(E, A, EITHER, SIZE) -> list:
    p = "cli/reproduce"
    name = "'zeng2021-graphs'"
    r = f"refuse('reproduce', {name}, '--no-progress', "  # a reproduction that starts is cut at 20 s
    return [
        E(f"{p} unknown name", "refuse('reproduce', 'smith2030', '--no-progress')", "smith2030"),
        E(f"{p} --seeds -1", r + "'--seeds', '-1', timeout=20, started_is_silent=True)", "-1"),
        E(f"{p} --seeds abc", r + "'--seeds', 'abc')", "abc"),
        E(f"{p} --workers 0", r + "'--workers', '0', timeout=20, started_is_silent=True)", "0"),
        E(f"{p} --workers -1", r + "'--workers', '-1', timeout=20, started_is_silent=True)", "-1"),
        E(f"{p} --workers abc", r + "'--workers', 'abc')", "abc"),
        E(f"{p} --out under a file", r + "out=under_file(), timeout=20, started_is_silent=True)", "afile"),
        E(f"{p} --out /proc (unwritable)", r + "out='/proc/fuzz_unwritable', timeout=20)", "/proc"),
        E(
            f"{p} --docs without --full",
            r + "'--docs', W(), timeout=20, started_is_silent=True)",
            "--full",
            "full",
        ),
        E(
            f"{p} --seeds 0 0 (duplicate)",
            r + "'--seeds', '0', '0', timeout=20, started_is_silent=True)",
            "0",
        ),
    ]


# ------------------------------------------------------------------------------------------ API
def _consensus_api(E, A, EITHER, SIZE) -> list:
    p = "consensus"
    G = "from baselines.consensus import graphs as g\n"
    out = [
        E(f"{p}/ring(10**5)", G + "g.ring(10**5)", SIZE),
        E(f"{p}/ring(1e5)", G + "g.ring(1e5)", "1e5", "100000.0"),
        E(f"{p}/complete(10**5)", G + "g.complete(10**5)", SIZE),
        E(f"{p}/path(10**5)", G + "g.path(10**5)", SIZE),
        E(f"{p}/star(10**5)", G + "g.star(10**5)", SIZE),
        E(f"{p}/random_connected(10**5, 0.5)", G + "g.random_connected(10**5, 0.5)", SIZE),
        E(f"{p}/ring(0)", G + "g.ring(0)", "0"),
        E(f"{p}/ring(-1)", G + "g.ring(-1)", "-1"),
        E(f"{p}/ring(True)", G + "g.ring(True)", "True"),
        E(f"{p}/ring(1.5)", G + "g.ring(1.5)", "1.5"),
        E(f"{p}/ring('3')", G + "g.ring('3')", "'3'"),
        E(f"{p}/path(None)", G + "g.path(None)", "None"),
        E(f"{p}/star(3, center=5)", G + "g.star(3, center=5)", "5"),
        E(f"{p}/star(3, center=True)", G + "g.star(3, center=True)", "True"),
        E(f"{p}/star(3, center=1.5)", G + "g.star(3, center=1.5)", "1.5"),
        E(f"{p}/random_connected(4, 'x')", G + "g.random_connected(4, 'x')", "'x'"),
        E(f"{p}/random_connected(4, 0)", G + "g.random_connected(4, 0)", "0"),
        E(f"{p}/random_connected(4, 1.5)", G + "g.random_connected(4, 1.5)", "1.5"),
        E(f"{p}/random_connected(4, nan)", G + "g.random_connected(4, float('nan'))", "nan"),
        E(f"{p}/random_connected(4, True)", G + "g.random_connected(4, True)", "True"),
        E(f"{p}/random_connected seed='x'", G + "g.random_connected(4, 0.5, seed='x')", "'x'"),
        E(f"{p}/random_connected seed=-1", G + "g.random_connected(4, 0.5, seed=-1)", "-1"),
        E(f"{p}/random_connected seed=1.5", G + "g.random_connected(4, 0.5, seed=1.5)", "1.5"),
        E(f"{p}/random_connected max_tries=0", G + "g.random_connected(4, 0.5, max_tries=0)", "0"),
        E(f"{p}/random_connected max_tries=-1", G + "g.random_connected(4, 0.5, max_tries=-1)", "-1"),
        A(f"{p}/random_connected(4, 1.0)", G + "x = g.random_connected(4, 1.0)", check="assert x.n == 4"),
        A(
            f"{p}/from_adjacency 0/1 list",
            G + "x = g.from_adjacency([[0, 1], [1, 0]])",
            check="assert x.n == 2",
        ),
        E(f"{p}/from_adjacency non-square", G + "g.from_adjacency([[0, 1, 1], [1, 0, 1]])", "(2, 3)"),
        E(f"{p}/from_adjacency entry 2", G + "g.from_adjacency([[0, 2], [2, 0]])", "2"),
        E(f"{p}/from_adjacency nan", G + "g.from_adjacency([[0, float('nan')], [1, 0]])", "nan"),
        E(
            f"{p}/from_adjacency asymmetric",
            G + "g.from_adjacency([[0, 1, 0], [0, 0, 1], [1, 1, 0]])",
            "symmetric",
        ),
        E(f"{p}/from_adjacency self-loop", G + "g.from_adjacency([[1, 1], [1, 0]])", "self-loop"),
        E(f"{p}/from_adjacency disconnected", G + "g.from_adjacency(np.zeros((3, 3)))", "disconnected"),
        E(
            f"{p}/from_adjacency strings",
            G + "g.from_adjacency([['0', '1'], ['1', '0']])",
            "'1'",
            "<U1",
            "str",
        ),
        E(f"{p}/from_adjacency None", G + "g.from_adjacency(None)", "None"),
        E(
            f"{p}/from_adjacency ragged",
            G + "g.from_adjacency([[0, 1], [1]])",
            "[[0, 1], [1]]",
            "ragged",
            "shape",
        ),
        E(f"{p}/from_adjacency 3-d", G + "g.from_adjacency(np.zeros((2, 2, 2)))", "(2, 2, 2)"),
        E(f"{p}/make_graph('hexagon', 4)", G + "g.make_graph('hexagon', 4)", "hexagon"),
        E(f"{p}/make_graph('ring', 0)", G + "g.make_graph('ring', 0)", "0"),
        E(f"{p}/make_graph(matrix, wrong n)", G + "g.make_graph(np.ones((3, 3)) - np.eye(3), 4)", "3", "4"),
        E(f"{p}/make_graph(Graph, wrong n)", G + "g.make_graph(g.ring(3), 5)", "5"),
        E(f"{p}/make_graph(None, 3)", G + "g.make_graph(None, 3)", "None"),
        E(f"{p}/make_graph('random', 4, p='x')", G + "g.make_graph('random', 4, p='x')", "'x'"),
        E(f"{p}/make_graph('random', 4, seed='x')", G + "g.make_graph('random', 4, seed='x')", "'x'"),
        E(f"{p}/make_weights(g, 'uniform')", G + "g.make_weights(g.ring(4), 'uniform')", "uniform"),
        E(
            f"{p}/make_weights not doubly stochastic",
            G + "g.make_weights(g.complete(3), np.full((3, 3), 0.5))",
            "0.5",
            "1.5",
            "sum",
        ),
        E(f"{p}/make_weights None", G + "g.make_weights(g.ring(3), None)", "None"),
        E(
            f"{p}/check_weights negative",
            G + "w = np.full((3, 3), 1 / 3); w[0, 1] = w[1, 0] = -0.1\n"
            "w[0, 0] = w[1, 1] = 1 / 3 + 0.1 + 1 / 3 - 1 / 3\ng.check_weights(w, g.complete(3))",
            "-0.1",
        ),
        E(
            f"{p}/check_weights nan",
            G + "w = np.full((3, 3), 1 / 3); w[0, 0] = np.nan\ng.check_weights(w, g.complete(3))",
            "nan",
        ),
        E(f"{p}/check_weights wrong shape", G + "g.check_weights(np.eye(2), g.ring(3))", "(2, 2)"),
        E(
            f"{p}/check_weights off-graph weight",
            G + "g.check_weights(np.full((4, 4), 0.25), g.ring(4))",
            "0.25",
        ),
        E(f"{p}/check_weights strings", G + "g.check_weights([['a']], g.ring(1))", "'a'"),
        E(f"{p}/check_weights graph=None", G + "g.check_weights(np.eye(2), None)", "None"),
        E(f"{p}/spectral non-square", G + "g.spectral(np.ones((2, 3)) / 3)", "(2, 3)"),
        E(f"{p}/spectral nan", G + "g.spectral(np.full((2, 2), np.nan))", "nan"),
        E(f"{p}/spectral empty", G + "g.spectral(np.zeros((0, 0)))", "(0, 0)"),
        E(
            f"{p}/spectral not doubly stochastic",
            G + "g.spectral(np.array([[1.0, 1.0], [0.0, 0.0]]))",
            "doubly",
            "stochastic",
            "sum",
        ),
        E(f"{p}/spectral string", G + "g.spectral('ring')", "'ring'"),
        A(
            f"{p}/spectral ring(4) lazy Metropolis",
            G + "s = g.spectral(g.lazy_metropolis(g.ring(4)))",
            check="assert abs(s.sigma_2 - 0.5) < 1e-12, s",
        ),
        E(f"{p}/neighbours(1.5)", G + "g.ring(4).neighbours(1.5)", "1.5"),
        E(f"{p}/neighbours(-1)", G + "g.ring(4).neighbours(-1)", "-1"),
        E(f"{p}/neighbours(True)", G + "g.ring(4).neighbours(True)", "True"),
        E(f"{p}/neighbours('0')", G + "g.ring(4).neighbours('0')", "'0'"),
        E(f"{p}/neighbours(4)", G + "g.ring(4).neighbours(4)", "4"),
        E(f"{p}/Topology.make weights 'foo'", G + "g.Topology.make('ring', 4, 'foo')", "foo"),
        E(f"{p}/Topology.make n=0", G + "g.Topology.make('ring', 0)", "0"),
    ]
    C = "from baselines.consensus import DCPGConfig, run_dcpg\n"
    kw = "layout='chain_slip', iters=3, horizon=10, eval_every=1, checkpoint_every=2, success_horizon=10, out=W()"
    cfg_bad = [
        ("alpha=float('nan')", "nan"),
        ("alpha=0", "0"),
        ("alpha=True", "True"),
        ("alpha='1'", "'1'"),
        ("lam=-1", "-1"),
        ("gamma=1.0", "1.0"),
        ("slip=2", "2"),
        ("graph='hexagon'", "hexagon"),
        ("graph_p=0", "0"),
        ("weights='uniform'", "uniform"),
        ("communicate='yes'", "'yes'"),
        ("gradient='sarsa'", "sarsa"),
        ("policy='cnn'", "cnn"),
        ("episodes=0", "0"),
        ("episodes=1.5", "1.5"),
        ("horizon=0", "0"),
        ("horizon=True", "True"),
        ("iters=0", "0"),
        ("iters=-1", "-1"),
        ("seed=-1", "-1"),
        ("seed='x'", "'x'"),
        ("eval_every=0", "0"),
        ("checkpoint_every=0", "0"),
        ("success_horizon=0", "0"),
        ("layout=123", "123"),
        ("layout=[]", "[]"),
        ("layout=None", "None"),
        ("view=0, policy='mlp', hidden='8'", "0"),
        ("hidden='0', policy='mlp'", "'0'"),
        ("hidden=[8, -1], policy='mlp'", "-1"),
        ("hidden='8', policy='mlp', clip=-1, gradient='ppo'", "-1"),
        ("hidden='8', policy='mlp', ppo_epochs=0, gradient='ppo'", "0"),
        ("hidden='8', policy='mlp', critic_lr=float('inf'), gradient='a2c'", "inf"),
    ]
    for arg, tok in cfg_bad:
        kw2 = (
            kw
            if arg.split("=")[0] not in kw
            else ", ".join(x for x in kw.split(", ") if not x.startswith(arg.split("=")[0] + "="))
        )
        out.append(E(f"{p}/run_dcpg {arg}", C + f"run_dcpg(DCPGConfig({kw2}, {arg}))", tok))
    sizes = [
        ("horizon=10**9", "horizon"),
        ("episodes=10**9", "episodes"),
        ("policy='mlp', hidden='100000,100000'", "hidden"),
        ("policy='mlp', hidden='8', view=10**5", "view"),
    ]
    for arg, key in sizes:
        kw2 = ", ".join(x for x in kw.split(", ") if not x.startswith(key + "="))
        out.append(E(f"{p}/run_dcpg {arg}", C + f"run_dcpg(DCPGConfig({kw2}, {arg}))", SIZE))
    kw2 = ", ".join(x for x in kw.split(", ") if not x.startswith("success_horizon="))
    out.append(  # valid: far horizons are computed by repeated squaring, fast and exact
        A(
            f"{p}/run_dcpg success_horizon=10**9",
            C + f"r = run_dcpg(DCPGConfig({kw2}, success_horizon=10**9))",
            check="assert 0 <= r.metrics[-1]['success_task_0'] <= 1",
        )
    )
    out += [
        E(
            f"{p}/run_dcpg alpha=1e308 exact",
            C + f"run_dcpg(DCPGConfig({kw}, alpha=1e308, gradient='exact'))",
            "diverge",
        ),
        E(f"{p}/run_dcpg backend='mpi'", C + f"run_dcpg(DCPGConfig({kw}), backend='mpi')", "mpi"),
        E(f"{p}/run_dcpg resume=missing", C + "run_dcpg(resume=W() + '/nope')", "nope"),
        E(
            f"{p}/run_dcpg resume with iters=0",
            C + "r = run_dcpg(DCPGConfig(" + kw + "))\nrun_dcpg(resume=r.run_dir, iters=0)",
            "0",
        ),
        E(f"{p}/run_dcpg cfg=None", C + "run_dcpg(None)", "None"),
        E(f"{p}/run_dcpg cfg=dict", C + "run_dcpg({'iters': 3})", "dict", "{'iters': 3}"),
        A(
            f"{p}/run_dcpg exact tiny",
            C + f"r = run_dcpg(DCPGConfig({kw}, gradient='exact'))",
            check="assert np.all(np.isfinite(r.thetas))",
        ),
        E(
            f"{p}/task_features mode='pixels'",
            "from baselines.consensus.policies import task_features\n"
            "task_features(grid(layout='chain_slip').tasks, 'pixels')",
            "pixels",
        ),
        E(
            f"{p}/task_features radius=0",
            "from baselines.consensus.policies import task_features\n"
            "task_features(grid(layout='chain_slip').tasks, 'local', 0)",
            "0",
        ),
        E(
            f"{p}/task_features radius=1.5",
            "from baselines.consensus.policies import task_features\n"
            "task_features(grid(layout='chain_slip').tasks, 'local', 1.5)",
            "1.5",
        ),
        E(
            f"{p}/task_features radius=10**5",
            "from baselines.consensus.policies import task_features\n"
            "task_features(grid(layout='no_conflict').tasks, 'local', 10**5)",
            SIZE,
        ),
        E(
            f"{p}/task_features tasks=None",
            "from baselines.consensus.policies import task_features\ntask_features(None)",
            "None",
        ),
        E(
            f"{p}/TaskSet.from_env(Coordination)",
            "from baselines.consensus import TaskSet\nTaskSet.from_env(coord(n_agents=2))",
            "Coordination",
            "MultiTaskGridWorld",
        ),
    ]
    return out


def _policies_api(E, A, EITHER, SIZE) -> list:
    p = "policies"
    T = (
        "from baselines.policies.tabular import TabularPolicy, TabularSoftmaxPolicy\n"
        "env = coord(n_agents=2); m = env.model(); d = env.dynamics\n"
    )
    N = (
        "import torch\nfrom baselines.policies.neural import TorchSoftmaxPolicy\n"
        "env = coord(n_agents=2, observation='vector'); d = env.dynamics\n"
        "F = d.observation_shape('vector')[0]\n"
    )
    out = [
        E(
            f"{p}/tabular rows not stochastic",
            T + "TabularPolicy([np.full((4, 2), 0.7)] * 2)",
            "0.7",
            "1.4",
            "sum",
        ),
        E(f"{p}/tabular nan", T + "TabularPolicy([np.full((4, 2), np.nan)] * 2)", "nan"),
        E(
            f"{p}/tabular obs_mode='vector'",
            T + "TabularPolicy(exact.uniform_policy(m), obs_mode='vector')",
            "vector",
        ),
        E(f"{p}/tabular tables=None", T + "TabularPolicy(None)", "None"),
        E(f"{p}/tabular tables=[]", T + "TabularPolicy([])", "[]"),
        E(
            f"{p}/tabular too few rows: table()",
            T + "TabularPolicy([np.full((2, 2), 0.5)] * 2).table(d)",
            "2",
            "4",
        ),
        E(
            f"{p}/tabular too many agents: table()",
            T + "TabularPolicy([np.full((4, 2), 0.5)] * 3).table(d)",
            "3",
            "2",
        ),
        E(
            f"{p}/tabular wrong action count: table()",
            T + "TabularPolicy([np.full((4, 3), 1 / 3)] * 2).table(d)",
            "3",
            "2",
        ),
        E(
            f"{p}/tabular other env: table()",
            T + "pol = TabularPolicy(exact.uniform_policy(m))\npol.table(dist(n_agents=3).dynamics)",
            "Distancing",
            "4",
            "3",
        ),
        E(f"{p}/tabular table(None)", T + "TabularPolicy(exact.uniform_policy(m)).table(None)", "None"),
        E(
            f"{p}/tabular table('mpg/Coordination-v0')",
            T + "TabularPolicy(exact.uniform_policy(m)).table('mpg/Coordination-v0')",
            "'mpg/Coordination-v0'",
        ),
        E(f"{p}/tabular probs agent=5", T + "TabularPolicy(exact.uniform_policy(m)).probs(5, [0])", "5"),
        E(
            f"{p}/tabular probs agent=True",
            T + "TabularPolicy(exact.uniform_policy(m)).probs(True, [0])",
            "True",
        ),
        E(
            f"{p}/tabular probs obs out of range",
            T + "TabularPolicy(exact.uniform_policy(m)).probs(0, [99])",
            "99",
        ),
        E(f"{p}/tabular probs obs -1", T + "TabularPolicy(exact.uniform_policy(m)).probs(0, [-1])", "-1"),
        E(
            f"{p}/tabular probs obs float",
            T + "TabularPolicy(exact.uniform_policy(m)).probs(0, [0.5])",
            "0.5",
        ),
        E(
            f"{p}/tabular act wrong shape",
            T + "TabularPolicy(exact.uniform_policy(m)).act(np.zeros((3, 5), int), np.random.default_rng(0))",
            "(3, 5)",
            "5",
        ),
        A(  # numpy's convention: None draws a fresh generator from OS entropy (documented)
            f"{p}/tabular act rng=None",
            T + "x = TabularPolicy(exact.uniform_policy(m)).act(np.zeros((3, 2), int), None)",
            check="assert x.shape == (3, 2) and set(np.unique(x)) <= {0, 1}",
        ),
        E(f"{p}/softmax logits inf", T + "TabularSoftmaxPolicy([np.full((4, 2), np.inf)] * 2)", "inf"),
        E(f"{p}/softmax logits 1-d", T + "TabularSoftmaxPolicy([np.zeros(4)] * 2)", "(4,)"),
        E(f"{p}/softmax logits strings", T + "TabularSoftmaxPolicy([[['a', 'b']]])", "'a'"),
        E(
            f"{p}/softmax init('ones')",
            T + "TabularSoftmaxPolicy.init(4, (2, 2), np.random.default_rng(0), 'ones')",
            "ones",
        ),
        E(
            f"{p}/softmax init n_rows=0",
            T + "TabularSoftmaxPolicy.init(0, (2, 2), np.random.default_rng(0))",
            "0",
        ),
        E(
            f"{p}/softmax init n_rows=10**12",
            T + "TabularSoftmaxPolicy.init(10**12, (2, 2), np.random.default_rng(0))",
            SIZE,
        ),
        E(
            f"{p}/softmax init action_sizes (0,)",
            T + "TabularSoftmaxPolicy.init(4, (0,), np.random.default_rng(0))",
            "(0,)",
        ),
        E(
            f"{p}/softmax load_state_dict wrong shape",
            T + "pol = TabularSoftmaxPolicy.init(4, (2, 2), "
            "np.random.default_rng(0))\nst = pol.state_dict(); st = {k: np.zeros((9, 9)) for k in st}\n"
            "pol.load_state_dict(st)",
            "(9, 9)",
            "shape",
        ),
        E(
            f"{p}/neural 3 outputs for 2 actions: table()",
            N + "nets = [torch.nn.Linear(F, 3) for _ in range(2)]\n"
            "pol = TorchSoftmaxPolicy(nets, (2, 2), 'vector', d)\npol.table(d)",
            "3",
            "2",
        ),
        E(
            f"{p}/neural 3 outputs for 2 actions: act()",
            N
            + "nets = [torch.nn.Linear(F, 3) for _ in range(2)]\npol = TorchSoftmaxPolicy(nets, (2, 2), 'vector', d)\n"
            "pol.act(d.observe(d.states(), 'vector'), np.random.default_rng(0))",
            "3",
            "2",
        ),
        E(
            f"{p}/neural wrong input width",
            N + "nets = [torch.nn.Linear(F + 5, 2) for _ in range(2)]\n"
            "TorchSoftmaxPolicy(nets, (2, 2), 'vector', d).table(d)",
            "9",
        ),
        E(
            f"{p}/neural one net for two agents",
            N + "TorchSoftmaxPolicy([torch.nn.Linear(F, 2)], (2, 2), 'vector', d)",
            "1",
            "2",
        ),
        E(
            f"{p}/neural obs_mode='state'",
            N + "TorchSoftmaxPolicy([torch.nn.Linear(1, 2)] * 2, (2, 2), 'state', d)",
            "state",
        ),
        E(
            f"{p}/neural dynamics=None",
            N + "TorchSoftmaxPolicy([torch.nn.Linear(F, 2)] * 2, (2, 2), 'vector', None)",
            "None",
        ),
        E(
            f"{p}/neural nets of strings",
            N + "TorchSoftmaxPolicy(['a', 'b'], (2, 2), 'vector', d)",
            "'a'",
            "str",
        ),
        E(
            f"{p}/neural other env's dynamics: table()",
            N + "pol = TorchSoftmaxPolicy.mlp(d, 'vector', hidden='4', "
            "rng=np.random.default_rng(0))\npol.table(dist(n_agents=3, observation='vector').dynamics)",
            "Distancing",
            "3",
            "width",
        ),
        E(
            f"{p}/neural table(None)",
            N + "TorchSoftmaxPolicy.mlp(d, 'vector', hidden='4', rng=np.random.default_rng(0)).table(None)",
            "None",
        ),
        E(
            f"{p}/neural table('mpg/Coordination-v0')",
            N + "TorchSoftmaxPolicy.mlp(d, 'vector', hidden='4', "
            "rng=np.random.default_rng(0)).table('mpg/Coordination-v0')",
            "'mpg/Coordination-v0'",
        ),
        E(
            f"{p}/neural probs agent=2",
            N + "TorchSoftmaxPolicy.mlp(d, 'vector', hidden='4', "
            "rng=np.random.default_rng(0)).probs(2, np.zeros((1, F), np.float32))",
            "2",
        ),
        E(
            f"{p}/neural probs wrong width",
            N + "TorchSoftmaxPolicy.mlp(d, 'vector', hidden='4', "
            "rng=np.random.default_rng(0)).probs(0, np.zeros((1, F + 1), np.float32))",
            "shape",
            "width",
        ),
        E(
            f"{p}/neural probs nan obs",
            N + "TorchSoftmaxPolicy.mlp(d, 'vector', hidden='4', "
            "rng=np.random.default_rng(0)).probs(0, np.full((1, F), np.nan, np.float32))",
            "nan",
        ),
        E(f"{p}/mlp hidden='0'", N + "TorchSoftmaxPolicy.mlp(d, 'vector', hidden='0')", "'0'"),
        E(f"{p}/mlp hidden='a'", N + "TorchSoftmaxPolicy.mlp(d, 'vector', hidden='a')", "'a'"),
        E(
            f"{p}/mlp hidden=100000,100000",
            N + "TorchSoftmaxPolicy.mlp(d, 'vector', hidden='100000,100000')",
            SIZE,
        ),
        E(f"{p}/mlp hidden=(True,)", N + "TorchSoftmaxPolicy.mlp(d, 'vector', hidden=(True,))", "True"),
        E(f"{p}/mlp dtype float16", N + "TorchSoftmaxPolicy.mlp(d, 'vector', dtype='float16')", "float16"),
        E(f"{p}/mlp activation gelu", N + "TorchSoftmaxPolicy.mlp(d, 'vector', activation='gelu')", "gelu"),
        E(f"{p}/mlp obs_mode state", N + "TorchSoftmaxPolicy.mlp(d, 'state')", "state"),
        E(f"{p}/mlp rng='x'", N + "TorchSoftmaxPolicy.mlp(d, 'vector', rng='x')", "'x'"),
        E(f"{p}/mlp dynamics=None", N + "TorchSoftmaxPolicy.mlp(None, 'vector')", "None"),
        E(f"{p}/mlp bias=1", N + "TorchSoftmaxPolicy.mlp(d, 'vector', bias=1)", "1"),
        A(
            f"{p}/neural table rows sum to 1",
            N + "t = TorchSoftmaxPolicy.mlp(d, 'vector', hidden='4', rng=np.random.default_rng(0)).table(d)",
            check="assert len(t) == 2 and all(x.shape == (d.n_states, 2) for x in t)\n"
            "assert all(np.allclose(x.sum(1), 1) for x in t)",
        ),
    ]
    return out


def _sampler_api(E, A, EITHER, SIZE) -> list:
    p = "sampler"
    B = (
        "from baselines.sampler import BatchSampler, SampledEstimator, ForcedActionEstimator\n"
        "env = dist(n_agents=2); d = env.dynamics; m = env.model(); pol = exact.uniform_policy(m)\n"
    )
    out = [
        E(f"{p}/rollout n_episodes=10**9", B + "BatchSampler(d, 0).rollout(pol, 10**9, 20)", SIZE),
        E(f"{p}/rollout horizon=10**9", B + "BatchSampler(d, 0).rollout(pol, 20, 10**9)", SIZE),
        E(f"{p}/rollout n_episodes=0", B + "BatchSampler(d, 0).rollout(pol, 0, 20)", "0"),
        E(f"{p}/rollout n_episodes=-1", B + "BatchSampler(d, 0).rollout(pol, -1, 20)", "-1"),
        E(f"{p}/rollout n_episodes=True", B + "BatchSampler(d, 0).rollout(pol, True, 20)", "True"),
        E(f"{p}/rollout n_episodes=1.5", B + "BatchSampler(d, 0).rollout(pol, 1.5, 20)", "1.5"),
        E(f"{p}/rollout horizon='5'", B + "BatchSampler(d, 0).rollout(pol, 5, '5')", "'5'"),
        E(
            f"{p}/rollout policies nan",
            B + "BatchSampler(d, 0).rollout([np.full_like(pol[0], np.nan)] * 2, 5, 5)",
            "nan",
        ),
        E(
            f"{p}/rollout policies wrong rows",
            B + "BatchSampler(d, 0).rollout([np.full((3, 4), 0.25)] * 2, 5, 5)",
            "(3, 4)",
            "3",
        ),
        E(f"{p}/rollout policies one agent", B + "BatchSampler(d, 0).rollout(pol[:1], 5, 5)", "1", "2"),
        E(
            f"{p}/rollout start wrong shape",
            B + "BatchSampler(d, 0).rollout(pol, 5, 5, start=np.zeros(3, int))",
            "(3,)",
            "5",
        ),
        E(
            f"{p}/rollout start out of range",
            B + "BatchSampler(d, 0).rollout(pol, 2, 5, start=[0, 99])",
            "99",
        ),
        E(f"{p}/BatchSampler rng='x'", B + "BatchSampler(d, 'x')", "'x'"),
        E(f"{p}/BatchSampler rng=-1", B + "BatchSampler(d, -1)", "-1"),
        E(f"{p}/BatchSampler dynamics=env", B + "BatchSampler(env, 0)", "DistancingEnv"),
        E(
            f"{p}/rollout_policy n_episodes=10**9",
            B + "from baselines.policies.tabular import TabularPolicy\n"
            "BatchSampler(d, 0).rollout_policy(TabularPolicy(pol), 10**9, 20)",
            SIZE,
        ),
        E(f"{p}/rollout_policy policy=None", B + "BatchSampler(d, 0).rollout_policy(None, 5, 5)", "None"),
        E(
            f"{p}/SampledEstimator horizon=10**9",
            B + "SampledEstimator(d, 0.9, horizon=10**9, rng=0).estimate(pol)",
            SIZE,
        ),
        E(
            f"{p}/SampledEstimator batch=10**9",
            B + "SampledEstimator(d, 0.9, batch=10**9, rng=0).estimate(pol)",
            SIZE,
        ),
        E(
            f"{p}/SampledEstimator tail=10**9",
            B + "SampledEstimator(d, 0.9, tail=10**9, rng=0).estimate(pol)",
            SIZE,
        ),
        E(f"{p}/SampledEstimator horizon=0", B + "SampledEstimator(d, 0.9, horizon=0)", "0"),
        E(f"{p}/SampledEstimator batch=True", B + "SampledEstimator(d, 0.9, batch=True)", "True"),
        E(f"{p}/SampledEstimator tail=-1", B + "SampledEstimator(d, 0.9, tail=-1)", "-1"),
        E(f"{p}/SampledEstimator tail=1.5", B + "SampledEstimator(d, 0.9, tail=1.5)", "1.5"),
        E(f"{p}/SampledEstimator gamma=nan", B + "SampledEstimator(d, float('nan'))", "nan"),
        E(f"{p}/SampledEstimator gamma=0", B + "SampledEstimator(d, 0)", "0"),
        E(f"{p}/SampledEstimator gamma='0.9'", B + "SampledEstimator(d, '0.9')", "'0.9'"),
        E(
            f"{p}/SampledEstimator estimate(None)",
            B + "SampledEstimator(d, 0.9, rng=0).estimate(None)",
            "None",
        ),
        E(
            f"{p}/ForcedActionEstimator samples=10**9",
            B + "ForcedActionEstimator(d, 0.9, samples=10**9, rng=0).estimate(pol)",
            SIZE,
        ),
        E(
            f"{p}/ForcedActionEstimator horizon=10**9",
            B + "ForcedActionEstimator(d, 0.9, horizon=10**9, rng=0).estimate(pol)",
            SIZE,
        ),
        E(f"{p}/ForcedActionEstimator samples=0", B + "ForcedActionEstimator(d, 0.9, samples=0)", "0"),
        E(
            f"{p}/ForcedActionEstimator layers=0",
            B + "ForcedActionEstimator(d, 0.9, value='visit_sum', layers=0)",
            "0",
        ),
        E(
            f"{p}/ForcedActionEstimator layers=10**9",
            B + "ForcedActionEstimator(d, 0.9, value='visit_sum', layers=10**9, rng=0).estimate(pol)",
            "1000000000",
            SIZE,
        ),
        E(
            f"{p}/ForcedActionEstimator value='median'",
            B + "ForcedActionEstimator(d, 0.9, value='median')",
            "median",
        ),
        E(f"{p}/ForcedActionEstimator max_states=0", B + "ForcedActionEstimator(d, 0.9, max_states=0)", "0"),
        E(
            f"{p}/ExactEstimator(None)",
            "from baselines.estimators import ExactEstimator\nExactEstimator(None)",
            "None",
        ),
        E(
            f"{p}/ExactEstimator estimate wrong shape",
            "from baselines.estimators import ExactEstimator\n"
            "m = small()\nExactEstimator(m).estimate([np.full((3, 2), 0.5)] * 2)",
            "(3, 2)",
            "3",
        ),
        E(
            f"{p}/TaskwiseExactEstimator([])",
            "from baselines.estimators import TaskwiseExactEstimator\nTaskwiseExactEstimator([])",
            "[]",
            "empty",
            "at least",
        ),
        E(
            f"{p}/returns_to_go gamma=nan",
            "from baselines.sampler import returns_to_go\nreturns_to_go(np.zeros((2, 3, 1)), float('nan'))",
            "nan",
        ),
        A(
            f"{p}/rollout tiny",
            B + "r = BatchSampler(d, 0).rollout(pol, 3, 4)",
            check="assert r.n_episodes == 3",
        ),
    ]
    return out


def _vector_api(E, A, EITHER, SIZE) -> list:
    p = "vector"
    V = "from mpg_envs.vector import make_parallel_vec, ParallelVectorEnv\n"
    mk = "make_parallel_vec('mpg/Coordination-v0', 3, n_agents=2, max_cycles=3)"
    R = V + f"v = {mk}; v.reset(seed=0)\n"
    out = [
        E(
            f"{p}/make_parallel_vec num_envs=10**9 state",
            V + "make_parallel_vec('mpg/Coordination-v0', 10**9, n_agents=2)",
            SIZE,
        ),
        E(
            f"{p}/make_parallel_vec num_envs=10**9 own",
            V + "make_parallel_vec('mpg/Congestion-v0', 10**9, observation='own')",
            SIZE,
        ),
        E(
            f"{p}/make_parallel_vec num_envs=10**9 vector",
            V + "make_parallel_vec('mpg/Coordination-v0', 10**9, n_agents=2, observation='vector')",
            SIZE,
        ),
        E(
            f"{p}/make_parallel_vec num_envs=10**9 grid",
            V + "make_parallel_vec('mpg/MultiTaskGridWorld-v0', 10**9, layout='chain_slip')",
            SIZE,
        ),
        E(
            f"{p}/make_parallel_vec num_envs=1e9",
            V + "make_parallel_vec('mpg/Coordination-v0', 1e9)",
            "1e9",
            "1000000000.0",
        ),
        E(
            f"{p}/make_parallel_vec num_envs=10**30",
            V + "make_parallel_vec('mpg/Coordination-v0', 10**30)",
            SIZE,
        ),
        E(f"{p}/ParallelVectorEnv num_envs=10**9", V + "ParallelVectorEnv(coord(n_agents=2), 10**9)", SIZE),
    ]
    for val, tok in [
        ("0", "0"),
        ("-1", "-1"),
        ("True", "True"),
        ("1.5", "1.5"),
        ("'2'", "'2'"),
        ("None", "None"),
        ("2.0", "2.0"),
    ]:
        out.append(
            E(
                f"{p}/make_parallel_vec num_envs={val}",
                V + f"make_parallel_vec('mpg/Coordination-v0', {val})",
                tok,
            )
        )
    out += [
        A(
            f"{p}/make_parallel_vec num_envs=np.int64(2)",
            V + "v = make_parallel_vec('mpg/Coordination-v0', np.int64(2))",
            check="assert v.num_envs == 2",
        ),
        E(
            f"{p}/make_parallel_vec render_mode='ansi'",
            V + "make_parallel_vec('mpg/Coordination-v0', 2, render_mode='ansi')",
            "'ansi'",
        ),
        E(f"{p}/make_parallel_vec env_id=None", V + "make_parallel_vec(None, 2)", "None"),
        E(
            f"{p}/make_parallel_vec GridWorldTask id",
            V + "make_parallel_vec('mpg/GridWorldTask-v0', 2)",
            "'mpg/GridWorldTask-v0'",
        ),
        E(
            f"{p}/make_parallel_vec unknown kwarg",
            V + "make_parallel_vec('mpg/Coordination-v0', 2, foo=1)",
            "foo",
        ),
        E(
            f"{p}/make_parallel_vec max_cycles=-1",
            V + "make_parallel_vec('mpg/Coordination-v0', 2, max_cycles=-1)",
            "-1",
        ),
        E(
            f"{p}/ParallelVectorEnv(aec env)",
            V + "ParallelVectorEnv(coordination_v0.env(), 2)",
            "unwrapped",
            "OrderEnforcingWrapper",
        ),
        E(f"{p}/ParallelVectorEnv(None)", V + "ParallelVectorEnv(None, 2)", "None", "NoneType"),
        E(f"{p}/reset seed=-1", V + f"{mk}.reset(seed=-1)", "-1"),
        E(f"{p}/reset seed=True", V + f"{mk}.reset(seed=True)", "True"),
        E(f"{p}/reset seed=1.5", V + f"{mk}.reset(seed=1.5)", "1.5"),
        E(f"{p}/reset seed='1'", V + f"{mk}.reset(seed='1')", "'1'"),
        A(
            f"{p}/reset seed=2**70",
            V + f"v = {mk}; o, i = v.reset(seed=2**70)",
            check="assert o.shape == (3, 2)",
        ),
        A(f"{p}/reset seed np.uint64", V + f"v = {mk}; o, i = v.reset(seed=np.uint64(3))"),
        E(f"{p}/reset options='x'", V + f"{mk}.reset(options='x')", "'x'"),
        E(f"{p}/reset state=2**70", V + f"{mk}.reset(options={{'state': 2**70}})", "1180591620717411303424"),
        E(f"{p}/reset state=[0, 1] (wrong shape)", V + f"{mk}.reset(options={{'state': [0, 1]}})", "(2,)"),
        E(f"{p}/reset state=1.5", V + f"{mk}.reset(options={{'state': 1.5}})", "1.5"),
        E(f"{p}/reset state=True", V + f"{mk}.reset(options={{'state': True}})", "True"),
        E(f"{p}/reset state=-1", V + f"{mk}.reset(options={{'state': -1}})", "-1"),
        E(f"{p}/reset state=99", V + f"{mk}.reset(options={{'state': 99}})", "99"),
        E(
            f"{p}/reset state=[0, 0, 2**70]",
            V + f"{mk}.reset(options={{'state': [0, 0, 2**70]}})",
            "1180591620717411303424",
        ),
        A(
            f"{p}/reset state=np.int64(2)",
            V + f"v = {mk}; o, i = v.reset(options={{'state': np.int64(2)}})",
            check="assert i['state'].tolist() == [2, 2, 2]",
        ),
        E(f"{p}/step before reset", V + f"{mk}.step(np.zeros((3, 2), int))", "reset"),
        E(f"{p}/step float actions", R + "v.step(np.zeros((3, 2)))", "float64"),
        E(f"{p}/step nan actions", R + "v.step(np.full((3, 2), np.nan))", "nan"),
        E(f"{p}/step bool actions", R + "v.step(np.zeros((3, 2), bool))", "bool"),
        E(f"{p}/step shape (3,)", R + "v.step(np.zeros(3, int))", "(3,)"),
        E(f"{p}/step shape (2, 3)", R + "v.step(np.zeros((2, 3), int))", "(2, 3)"),
        E(f"{p}/step scalar", R + "v.step(0)", "()"),
        E(f"{p}/step None", R + "v.step(None)", "None"),
        E(f"{p}/step dict", R + "v.step({'agent_0': 0})", "agent_0"),
        E(f"{p}/step action 5", R + "v.step(np.full((3, 2), 5))", "5"),
        E(f"{p}/step action -1", R + "v.step(np.full((3, 2), -1))", "-1"),
        E(f"{p}/step action 2**70", R + "v.step([[2**70, 0]] * 3)", "1180591620717411303424"),
        E(f"{p}/step uint64 2**63", R + "v.step(np.full((3, 2), 2**63, np.uint64))", "9223372036854775808"),
        E(f"{p}/step strings", R + "v.step([['0', '1']] * 3)", "'0'", "<U1"),
        A(f"{p}/step object ints", R + "o = v.step(np.array([[0, 1]] * 3, dtype=object))[0]"),
        E(f"{p}/states before reset", V + f"{mk}.states", "reset"),
        A(
            f"{p}/autoreset: final_obs equals the observation before the reset",
            V + "v = make_parallel_vec('mpg/Coordination-v0', 4, n_agents=2, max_cycles=2)\n"
            "v.reset(seed=0)\nv.step(np.zeros((4, 2), int)); o, r, te, tr, info = v.step(np.zeros((4, 2), int))",
            check="assert tr.all() and info['_final_obs'].all() and info['alive'].all()\n"
            "assert (info['final_info']['state'] == info['final_obs'][:, 0]).all()",
        ),
        E(f"{p}/make_vec num_envs=10**9", "gymnasium.make_vec('mpg/GridWorldTask-v0', num_envs=10**9)", SIZE),
        E(
            f"{p}/make_vec num_envs=1e9",
            "gymnasium.make_vec('mpg/GridWorldTask-v0', num_envs=1e9)",
            "1e9",
            "1000000000.0",
        ),
        E(f"{p}/make_vec num_envs=0", "gymnasium.make_vec('mpg/GridWorldTask-v0', num_envs=0)", "0"),
        E(f"{p}/make_vec num_envs=-1", "gymnasium.make_vec('mpg/GridWorldTask-v0', num_envs=-1)", "-1"),
        E(f"{p}/make_vec num_envs=True", "gymnasium.make_vec('mpg/GridWorldTask-v0', num_envs=True)", "True"),
        E(
            f"{p}/make_vec max_episode_steps=True",
            "gymnasium.make_vec('mpg/GridWorldTask-v0', num_envs=2, max_episode_steps=True)",
            "True",
        ),
        E(
            f"{p}/make_vec max_episode_steps=0",
            "gymnasium.make_vec('mpg/GridWorldTask-v0', num_envs=2, max_episode_steps=0)",
            "0",
        ),
        E(
            f"{p}/make_vec render_mode='ansi'",
            "gymnasium.make_vec('mpg/GridWorldTask-v0', num_envs=2, render_mode='ansi')",
            "ansi",
            "render",
        ),
        A(
            f"{p}/make_vec reset options state=7",
            "v = gymnasium.make_vec('mpg/GridWorldTask-v0', num_envs=3)\n"
            "o, i = v.reset(seed=0, options={'state': 7})",
            check="assert o.tolist() == [7, 7, 7], o",
        ),
        E(
            f"{p}/make_vec reset options state=2**70",
            "v = gymnasium.make_vec('mpg/GridWorldTask-v0', num_envs=3)\nv.reset(options={'state': 2**70})",
            "1180591620717411303424",
        ),
        E(
            f"{p}/make_vec reset options='x'",
            "v = gymnasium.make_vec('mpg/GridWorldTask-v0', num_envs=3)\nv.reset(options='x')",
            "'x'",
        ),
        E(
            f"{p}/make_vec reset seed=-1",
            "gymnasium.make_vec('mpg/GridWorldTask-v0', num_envs=3).reset(seed=-1)",
            "-1",
        ),
        E(
            f"{p}/make_vec step nan",
            "v = gymnasium.make_vec('mpg/GridWorldTask-v0', num_envs=3); v.reset(seed=0)\n"
            "v.step(np.full(3, np.nan))",
            "nan",
        ),
        E(
            f"{p}/make_vec step 2**70",
            "v = gymnasium.make_vec('mpg/GridWorldTask-v0', num_envs=3); v.reset(seed=0)\n"
            "v.step([2**70] * 3)",
            "1180591620717411303424",
        ),
        E(
            f"{p}/make_vec step shape (2,)",
            "v = gymnasium.make_vec('mpg/GridWorldTask-v0', num_envs=3); "
            "v.reset(seed=0)\nv.step(np.zeros(2, int))",
            "array([0, 0])",
            "(2,)",
        ),
        E(
            f"{p}/make_vec step before reset",
            "gymnasium.make_vec('mpg/GridWorldTask-v0', num_envs=3).step(np.zeros(3, int))",
            "reset",
        ),
        E(
            f"{p}/make_vec sync num_envs=0",
            "gymnasium.make_vec('mpg/GridWorldTask-v0', num_envs=0, vectorization_mode='sync')",
            "0",
        ),
    ]
    return out


def _registration(E, A, EITHER, SIZE) -> list:
    p = "registration"
    out = []
    for env_id in ("Congestion", "Coordination", "Distancing", "MultiTaskGridWorld"):
        for kind in ("parallel", "aec"):
            out.append(
                E(
                    f"{p}/pettingzoo.make {kind} {env_id} max_cycles=-1",
                    f"env = pettingzoo.make({kind!r}, 'mpg/{env_id}-v0', max_cycles=-1)",
                    "max_cycles=-1",
                    check="raise AssertionError(f'max_cycles became {env.unwrapped.max_cycles}')",
                )
            )
    out += [
        E(
            f"{p}/pettingzoo.make max_cycles=True",
            "pettingzoo.make('parallel', 'mpg/Congestion-v0', max_cycles=True)",
            "True",
        ),
        E(
            f"{p}/pettingzoo.make max_cycles=0",
            "pettingzoo.make('parallel', 'mpg/Congestion-v0', max_cycles=0)",
            "0",
        ),
        E(
            f"{p}/pettingzoo.make max_cycles=-2",
            "pettingzoo.make('parallel', 'mpg/Congestion-v0', max_cycles=-2)",
            "-2",
        ),
        A(
            f"{p}/pettingzoo.make default max_cycles",
            "env = pettingzoo.make('parallel', 'mpg/Congestion-v0')",
            check="assert env.max_cycles == 20",
        ),
        A(
            f"{p}/pettingzoo.make max_cycles=5",
            "env = pettingzoo.make('aec', 'mpg/Coordination-v0', max_cycles=5)",
            check="assert env.unwrapped.max_cycles == 5",
        ),
        E(
            f"{p}/gymnasium.make max_episode_steps=True",
            "env = gymnasium.make('mpg/GridWorldTask-v0', max_episode_steps=True)",
            "True",
            check="raise AssertionError(f'max_episode_steps became {env.spec.max_episode_steps!r}')",
        ),
        E(
            f"{p}/gymnasium.make max_episode_steps=0",
            "gymnasium.make('mpg/GridWorldTask-v0', max_episode_steps=0)",
            "0",
        ),
        E(
            f"{p}/gymnasium.make max_episode_steps=1.5",
            "gymnasium.make('mpg/GridWorldTask-v0', max_episode_steps=1.5)",
            "1.5",
            "float",
        ),
        E(f"{p}/gymnasium.make max_steps=5", "gymnasium.make('mpg/GridWorldTask-v0', max_steps=5)", "5"),
        A(
            f"{p}/gymnasium.make max_episode_steps=7",
            "env = gymnasium.make('mpg/GridWorldTask-v0', max_episode_steps=7)",
            check="assert env.spec.max_episode_steps == 7",
        ),
    ]
    return out


def _sb3_api(E, A, EITHER, SIZE) -> list:
    p = "sb3api"
    S = "from baselines import sb3\n"
    out = []
    for val, tok in [("0", "0"), ("-1", "-1"), ("True", "True"), ("1.5", "1.5"), ("'2'", "'2'")]:
        out.append(
            E(
                f"{p}/make_vec_env n_envs={val}",
                S + f"sb3.make_vec_env('mpg/Coordination-v0', n_envs={val}, "
                "n_agents=2, observation='vector')",
                tok,
            )
        )
    out += [
        E(
            f"{p}/make_vec_env n_envs=10**9",
            S + "sb3.make_vec_env('mpg/Coordination-v0', n_envs=10**9, n_agents=2, observation='vector')",
            SIZE,
        ),
        E(
            f"{p}/make_vec_env n_envs=10**9 loop",
            S + "sb3.make_vec_env(lambda: coord(n_agents=2, observation='vector'), n_envs=10**9)",
            SIZE,
        ),
        E(
            f"{p}/make_vec_env seed=-1",
            S + "sb3.make_vec_env('mpg/Coordination-v0', 2, seed=-1, n_agents=2, "
            "observation='vector').reset()",
            "-1",
        ),
        E(
            f"{p}/make_vec_env seed='x'",
            S + "sb3.make_vec_env('mpg/Coordination-v0', 2, seed='x', n_agents=2, observation='vector')",
            "'x'",
        ),
        E(
            f"{p}/make_vec_env batched='yes'",
            S + "sb3.make_vec_env('mpg/Coordination-v0', 2, batched='yes', n_agents=2)",
            "'yes'",
        ),
        E(f"{p}/make_vec_env bogus id", S + "sb3.make_vec_env('mpg/Nope-v0', 2)", "mpg/Nope-v0"),
        E(f"{p}/make_vec_env env=None", S + "sb3.make_vec_env(None, 2)", "None"),
        E(f"{p}/make_vec_env foo=1", S + "sb3.make_vec_env('mpg/Coordination-v0', 2, foo=1)", "foo"),
        E(
            f"{p}/make_vec_env batched with a builder",
            S + "sb3.make_vec_env(lambda: coord(n_agents=2), 2, batched=True)",
            "batched",
            "registered",
        ),
        E(f"{p}/BatchedMPGVecEnv(None)", S + "sb3.BatchedMPGVecEnv(None)", "None"),
        E(f"{p}/SB3Policy(object())", S + "sb3.SB3Policy(object(), (2, 2), 'vector')", "object", "policy"),
        E(
            f"{p}/ExactMetricsCallback every=0",
            S + "sb3.ExactMetricsCallback(coord(n_agents=2, observation='vector'), every=0)",
            "0",
        ),
        E(
            f"{p}/ExactMetricsCallback every=-1",
            S + "sb3.ExactMetricsCallback(coord(n_agents=2, observation='vector'), every=-1)",
            "-1",
        ),
        E(
            f"{p}/ExactMetricsCallback every=True",
            S + "sb3.ExactMetricsCallback(coord(n_agents=2, observation='vector'), every=True)",
            "True",
        ),
        E(
            f"{p}/ExactMetricsCallback every=1.5",
            S + "sb3.ExactMetricsCallback(coord(n_agents=2, observation='vector'), every=1.5)",
            "1.5",
        ),
        E(f"{p}/ExactMetricsCallback env=None", S + "sb3.ExactMetricsCallback(None)", "None"),
        E(
            f"{p}/ExactMetricsCallback env=id string",
            S + "sb3.ExactMetricsCallback('mpg/Coordination-v0')",
            "'mpg/Coordination-v0'",
        ),
        E(
            f"{p}/run_sb3 algo='dqn'",
            S + "sb3.run_sb3(algo='dqn', env_kwargs={'n_agents': 2}, steps=256, n_envs=2, "
            "out=W(), progress=False)",
            "dqn",
        ),
        E(
            f"{p}/run_sb3 steps=0",
            S + "sb3.run_sb3(env_kwargs={'n_agents': 2}, steps=0, n_envs=2, out=W(), progress=False)",
            "0",
        ),
        E(
            f"{p}/run_sb3 steps=True",
            S + "sb3.run_sb3(env_kwargs={'n_agents': 2}, steps=True, n_envs=2, out=W(), progress=False)",
            "True",
        ),
        E(
            f"{p}/run_sb3 eval_every=0",
            S + "sb3.run_sb3(env_kwargs={'n_agents': 2}, steps=256, n_envs=2, "
            "eval_every=0, out=W(), progress=False)",
            "0",
        ),
        E(
            f"{p}/run_sb3 n_envs=10**9",
            S + "sb3.run_sb3(env_kwargs={'n_agents': 2}, steps=256, n_envs=10**9, out=W(), progress=False)",
            SIZE,
        ),
        E(
            f"{p}/run_sb3 env_kwargs foo",
            S + "sb3.run_sb3(env_kwargs={'foo': 1}, steps=256, n_envs=2, out=W(), progress=False)",
            "foo",
        ),
        E(
            f"{p}/run_sb3 env_kwargs list",
            S + "sb3.run_sb3(env_kwargs=[1], steps=256, n_envs=2, out=W(), progress=False)",
            "[1]",
        ),
        E(
            f"{p}/run_sb3 seed=-1",
            S + "sb3.run_sb3(env_kwargs={'n_agents': 2}, steps=256, n_envs=2, seed=-1, "
            "out=W(), progress=False)",
            "-1",
        ),
        E(f"{p}/run_sb3 resume=missing", S + "sb3.run_sb3(resume=W() + '/nope', progress=False)", "nope"),
        E(
            f"{p}/run_sb3 out under a file",
            S + "sb3.run_sb3(env_kwargs={'n_agents': 2}, steps=256, n_envs=2, "
            "out=under_file(), progress=False)",
            "afile",
        ),
    ]
    return out
