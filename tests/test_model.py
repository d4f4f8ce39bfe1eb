"""TabularModel: validation, read-only arrays, action and state conversions."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from mpg_envs import congestion_v0
from mpg_envs.model import TabularModel


def _args(**over):
    S, A = 2, 4
    P = np.zeros((S * A, S))
    P[:, 1] = 1.0
    kw = dict(n_agents=2, action_sizes=(2, 2), P=P, R=np.zeros((2, S, A)), mu=[1.0, 0.0], gamma=0.9)
    kw.update(over)
    return kw


def test_valid_model_and_read_only():
    m = TabularModel(**_args())
    assert (m.n_states, m.n_joint_actions) == (2, 4)
    assert isinstance(m.P, sp.csr_matrix)
    with pytest.raises(ValueError):
        m.R[0, 0, 0] = 1.0
    with pytest.raises(ValueError):
        m.P.data[0] = 0.5
    with pytest.raises(AttributeError):
        m.gamma = 0.5


def test_joint_action_round_trip():
    m = TabularModel(**_args(action_sizes=(2, 2)))
    acts = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(m.joint_index(acts), [0, 1, 2, 3])
    assert m.joint_index([1, 0]) == 2
    np.testing.assert_array_equal(m.agent_actions(np.arange(4)), acts)
    np.testing.assert_array_equal(m.joint_actions, acts)
    big = congestion_v0.parallel_env(n_agents=5, width=3, n_layers=1).model()
    j = np.arange(big.n_joint_actions)
    np.testing.assert_array_equal(big.joint_index(big.agent_actions(j)), j)
    with pytest.raises(ValueError, match="out of range"):
        m.joint_index([2, 0])
    with pytest.raises(TypeError, match="integers"):
        m.joint_index([0.5, 0.0])
    with pytest.raises(ValueError, match="trailing dimension"):
        m.joint_index([0, 0, 0])
    with pytest.raises(ValueError, match="joint action indices"):
        m.agent_actions(4)


def test_state_conversions():
    m = congestion_v0.parallel_env(n_agents=2).model()
    for s in range(m.n_states):
        assert m.state_index(m.state_of(s)) == s
    assert m.state_of(0).tolist() == [0, 0]
    assert m.state_of(m.n_states - 1).tolist() == [5, 5]
    with pytest.raises(ValueError, match="not a state"):
        m.state_index([0, 1])
    with pytest.raises(ValueError, match="state index must be in"):
        m.state_of(10)
    with pytest.raises(ValueError, match="no state table"):
        TabularModel(**_args()).state_index([0])


@pytest.mark.parametrize(
    "over, match",
    [
        ({"n_agents": 0}, "n_agents must be a positive integer"),
        ({"action_sizes": (2,)}, "action_sizes must hold 2"),
        ({"P": np.tile([1.2, -0.2], (8, 1))}, "negative"),
        ({"P": np.full((8, 2), 0.6)}, "rows must sum to 1"),
        ({"P": np.full((6, 2), 0.5)}, "shape"),
        ({"P": np.full((8, 2), np.nan)}, "non-finite"),
        ({"R": np.zeros((2, 2, 3))}, "R must have shape"),
        ({"R": np.full((2, 2, 4), np.inf)}, "R has non-finite"),
        ({"mu": [0.5, 0.6]}, "mu must sum to 1"),
        ({"mu": [1.0]}, "mu must be"),
        ({"gamma": 0.0}, "gamma must be in"),
        ({"gamma": 1.5}, "gamma must be in"),
        ({"terminal": np.array([0, 1])}, "terminal must be a bool"),
        ({"terminal": np.array([True, False])}, "terminal states must be absorbing"),
        ({"phi": np.zeros((2, 3))}, "phi must be"),
        ({"gamma": 1.0}, "gamma = 1 needs every policy to reach a terminal state"),
    ],
)
def test_invalid_models(over, match):
    with pytest.raises(ValueError, match=match):
        TabularModel(**_args(**over))


def test_terminal_reward_must_be_zero_and_gamma_one_ok_when_proper():
    R = np.zeros((2, 2, 4))
    R[0, 1, 0] = 1.0
    with pytest.raises(ValueError, match="zero reward"):
        TabularModel(**_args(R=R, terminal=np.array([False, True])))
    m = TabularModel(**_args(terminal=np.array([False, True]), gamma=1.0))
    assert m.gamma == 1.0


def test_gamma_one_trap_detected_only_when_some_policy_loops():
    """State 0 loops forever under joint action 0 only: gamma = 1 must be refused."""
    P = np.zeros((8, 2))
    P[:, 1] = 1.0
    P[0] = [1.0, 0.0]
    with pytest.raises(ValueError, match="stay forever"):
        TabularModel(**_args(P=P, terminal=np.array([False, True]), gamma=1.0))
    P[0] = [0.5, 0.5]  # loops with probability 1/2 per step: still terminates a.s.
    TabularModel(**_args(P=P, terminal=np.array([False, True]), gamma=1.0))
