"""Shows BenchMARL's Hydra command line the tasks of :mod:`baselines.benchmarl_tasks`.

Hydra imports every module of the ``hydra_plugins`` namespace package of any installed
distribution and asks each ``SearchPathPlugin`` to extend the config search path. For a BenchMARL
app (its search path holds BenchMARL's ``conf``), this plugin appends this package's task configs
(``baselines/benchmarl_conf/task/mpg/<name>.yaml``) and registers the ``mpg/<name>`` tasks in
BenchMARL's task registry, so that::

    python -m benchmarl.run algorithm=mappo task=mpg/coordination

works without editing BenchMARL. Other Hydra apps are left alone, and this module imports neither
BenchMARL nor torch unless a BenchMARL app runs.
"""

from __future__ import annotations

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

#: Where the task configs are (``task/mpg/*.yaml`` inside).
CONFIG_PATH = "pkg://baselines.benchmarl_conf"


def _is_benchmarl(search_path: ConfigSearchPath) -> bool:
    for element in search_path.get_path():
        path = (element.path or "").replace("\\", "/").rstrip("/")
        if path in ("pkg://benchmarl.conf", "pkg://benchmarl/conf") or path.endswith("/benchmarl/conf"):
            return True
    return False


class MPGEnvsBenchMARLSearchPathPlugin(SearchPathPlugin):
    """Adds the ``mpg/...`` task configs to BenchMARL's config search path and registers the tasks."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        if not _is_benchmarl(search_path):
            return
        import baselines.benchmarl_tasks  # noqa: F401 - registers mpg/<name> in BenchMARL's registry

        search_path.append(provider="mpg-envs", path=CONFIG_PATH)
