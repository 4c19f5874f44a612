"""Paths and reference values every test module shares (one definition each).

Fixtures live in ``tests/conftest.py``; these are plain constants because
``pytest.mark.parametrize`` needs them when tests are collected.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "ALIAS_BOMB",
    "ALIAS_BOMB_FLOW",
    "DEEP_YAML",
    "FLOW_MODULES",
    "MOON",
    "NATIVE_CLASSIFIERS",
    "PNG_SIGNATURE",
    "REPO_ROOT",
    "SEED_CLASSIFIERS",
    "SEED_SCORES",
    "SEED_SPEC_DIR",
    "SEED_URL",
    "SPECS",
]

#: The repository's root folder.
REPO_ROOT = Path(__file__).resolve().parents[1]
#: Spec fixtures, one folder per case.
SPECS = REPO_ROOT / "tests" / "specs"
#: The seed's three spec files, verbatim.
SEED_SPEC_DIR = SPECS / "seed_parallel"
#: The seed's moon data.
MOON = REPO_ROOT / "data" / "moon.txt"
#: The seed's dataset URL (served offline from the copy shipped with the package).
SEED_URL = "https://www.dropbox.com/s/ovyxd3q4td7jd3m/moon.txt?dl=1"
#: The seed's test scores of its five classifiers on its moon data (rounded as the seed prints them).
SEED_SCORES = {
    "nearest_neighbours": 0.97,
    "linear_svm": 0.88,
    "rbf_svm": 0.97,
    "gaussian_process": 0.97,
    "decision_tree": 0.95,
}
#: The seed's five classifiers, in its order.
SEED_CLASSIFIERS = list(SEED_SCORES)
#: Classifiers of the session's shared native run: three of the seed's, the quick ones.
NATIVE_CLASSIFIERS = ["nearest_neighbours", "rbf_svm", "decision_tree"]
#: The first bytes of every PNG file.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: The documented ``python -m`` entry points, by ``mltoolkit`` subcommand.
FLOW_MODULES = {
    "run": "flows.ml_workflow",
    "spec": "flows.spec_workflow",
    "step": "flows.spec_step",
    "archive": "flows.archive",
}


def _alias_levels(levels: int = 9, width: int = 9) -> list[str]:
    items = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    items += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * width)}]" for n in range(1, levels)]
    return items


#: A YAML alias bomb, the mapping ``bomb: {l0: ..., l8: ...}``: 9 x 9 aliases expand to 9**9 scalars.
ALIAS_BOMB = "bomb:\n" + "".join(f"  {item}\n" for item in _alias_levels())
#: The same bomb in flow style, on one line (for ``-p key=VALUE``).
ALIAS_BOMB_FLOW = "{" + ", ".join(_alias_levels()) + "}"
#: A YAML value nested 600 lists deep (PyYAML's reader recurses: a RecursionError without a limit).
DEEP_YAML = "[" * 600 + "]" * 600
