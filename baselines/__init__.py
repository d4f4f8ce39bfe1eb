"""Baselines that train against :mod:`mpg_envs` (IPG, INPG, NPG-BR, DCPG, SB3 via SuperSuit).

Placeholder package: the algorithms arrive with their own issue. It depends on ``mpg_envs``;
``mpg_envs`` never imports it.
"""
