"""Hydra plugin of mpg-envs: BenchMARL's command line sees the ``mpg/...`` tasks (see
``mpg_envs_benchmarl.py``)."""
