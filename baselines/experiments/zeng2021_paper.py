"""Paper 004 (Zeng et al. 2021) Table 1 as printed, in one place for the reproductions that put
their numbers beside it (:mod:`~baselines.experiments.zeng2021_nav`, the MiniWorld navigation
reproduction, and :mod:`~baselines.experiments.zeng2021_nn`, its grid-world analog).

Mean safe flight (MSF: distance flown before the first collision, PEDRA's Unreal units) of each
policy in each of the paper's four environments ("indoor long, cloud, frogeyes, pyramid" =
Env0..Env3), mean +- std over the paper's (unstated number of) runs; only the means are kept here.
"""

from __future__ import annotations

__all__ = ["PAPER", "PAPER_SUMS", "PAPER_ROWS", "PAPER_ENVS"]

#: Table 1's rows (SA-i: agent i trained alone in Env i; DCPG: the consensus policy).
PAPER_ROWS = ("SA-0", "SA-1", "SA-2", "SA-3", "DCPG")
#: Table 1's columns, the PEDRA environments.
PAPER_ENVS = ("indoor long", "cloud", "frogeyes", "pyramid")
#: Paper 004 Table 1: mean safe flight, mean +- std, rows SA-0..SA-3 and DCPG, columns Env0..Env3.
PAPER = {
    "REINFORCE": [[15.9, 4.5, 4.1, 3.6], [3.0, 55.4, 9.7, 8.1], [1.5, 0.8, 21.1, 2.0], [2.3, 0.8, 8.6, 40.1],
                  [25.2, 67.9, 40.5, 61.8]],
    "A2C": [[21.8, 7.0, 15.1, 14.9], [1.3, 54.1, 2.8, 6.4], [1.8, 3.9, 105.2, 9.9], [1.1, 1.4, 15.8, 78.6],
            [25.2, 50.1, 165.8, 159.6]],
    "PPO": [[28.3, 11.2, 8.7, 13.5], [1.1, 75.3, 1.6, 1.6], [2.5, 3.0, 63.2, 15.6], [1.9, 1.2, 14.3, 139.0],
            [26.3, 66.7, 144.0, 195.2]],
}  # fmt: skip
#: The sums Table 1 prints. Two in the A2C block are not the sums of their rows: SA-1 prints 59.4
#: (its entries add to 64.6) and DCPG 380.7 (400.7).
PAPER_SUMS = {
    "REINFORCE": [28.1, 76.2, 25.4, 51.8, 195.4],
    "A2C": [58.8, 59.4, 120.8, 96.9, 380.7],
    "PPO": [61.7, 79.6, 84.3, 156.4, 432.2],
}
