"""The README's reproduction tables and docs/reproductions.md are what the committed summaries
(docs/results/*.json, written by ``python -m baselines reproduce all --full --docs``) render to."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import assert_same

from baselines.experiments import (
    FIGURES,
    README_END,
    README_START,
    REPRODUCTIONS,
    load_committed,
    render_docs,
    render_readme_block,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def committed():
    summaries = load_committed(ROOT)
    assert set(summaries) == set(REPRODUCTIONS), "every reproduction has a committed summary"
    return summaries


def test_committed_summaries_are_full_runs(committed):
    for name, s in committed.items():
        assert s["name"] == name and s["full"] is True and s["seeds"] is None


@pytest.mark.parametrize("name", sorted(REPRODUCTIONS))
def test_every_summary_number_is_rederived_from_its_per_run_records(committed, name):
    """A summary stores the per-run records it was computed from; every aggregate (fractions,
    intervals, means, paired tests, verdicts) is recomputed from them, so an edited per-run value
    or an edited aggregate fails here."""
    results = committed[name]["results"]
    assert_same(REPRODUCTIONS[name].rederive(results), results)


def test_readme_tables_equal_the_committed_summaries(committed):
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index(README_START) : readme.index(README_END) + len(README_END)]
    assert block == render_readme_block(committed), (
        "README.md's reproduction tables differ from docs/results/*.json: run "
        "`python -m baselines reproduce all --full --docs`"
    )


def test_docs_page_equals_the_committed_summaries(committed):
    assert (ROOT / "docs" / "reproductions.md").read_text() == render_docs(committed)


def test_every_figure_is_committed_and_linked():
    readme = (ROOT / "README.md").read_text()
    page = (ROOT / "docs" / "reproductions.md").read_text()
    for figs in FIGURES.values():
        for f in figs:
            assert (ROOT / "docs" / "figures" / f).stat().st_size > 20_000, f
            assert f"figures/{f}" in page
    for link in re.findall(r"\]\((docs/[^)]+)\)", readme):
        assert (ROOT / link).exists(), link


def test_readme_benchmark_tables_equal_the_committed_reference():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_common", ROOT / "benchmarks" / "common.py")
    common = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(common)
    readme = (ROOT / "README.md").read_text()
    block = readme[
        readme.index(common.README_START) : readme.index(common.README_END) + len(common.README_END)
    ]
    assert block == common.render_readme_tables(), (
        "README.md's benchmark tables differ from benchmarks/results/*.json: rerun the benchmarks with "
        "--update-reference"
    )


def test_readme_python_examples_run(tmp_path, monkeypatch):
    """Every ```python block of the README runs as written (in a scratch folder: they write files)."""
    pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert len(blocks) >= 2
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {})
