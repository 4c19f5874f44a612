"""Classifier registry: names -> scikit-learn estimator factories.

The seed's five classifiers are registered under their ``inputs.yml`` names, with
the seed scripts' display names ("Nearest Neighbors", ...) as aliases. Any other
scikit-learn compatible classifier can be given by import path with parameters::

    classifiers:
      - rbf_svm
      - {name: forest, estimator: sklearn.ensemble.RandomForestClassifier,
         params: {n_estimators: 50, random_state: 0}}
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mltoolkit.errors import ClassifierConfigError, UnknownClassifierError

__all__ = [
    "DISPLAY_NAMES",
    "SEED_CLASSIFIERS",
    "ClassifierSpec",
    "build_estimator",
    "canonical_name",
    "parse_classifier",
    "registered_names",
]


def _nearest_neighbours() -> Any:
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(3)


def _linear_svm() -> Any:
    from sklearn.svm import SVC

    return SVC(kernel="linear", C=0.025)


def _rbf_svm() -> Any:
    from sklearn.svm import SVC

    return SVC(gamma=2, C=1)


def _gaussian_process() -> Any:
    from sklearn.gaussian_process import GaussianProcessClassifier
    from sklearn.gaussian_process.kernels import RBF

    return GaussianProcessClassifier(1.0 * RBF(1.0))


def _decision_tree() -> Any:
    from sklearn.tree import DecisionTreeClassifier

    return DecisionTreeClassifier(max_depth=5)


#: Registered name -> factory of a fresh, unfitted estimator (the seed's hyperparameters).
SEED_CLASSIFIERS: dict[str, Callable[[], Any]] = {
    "nearest_neighbours": _nearest_neighbours,
    "linear_svm": _linear_svm,
    "rbf_svm": _rbf_svm,
    "gaussian_process": _gaussian_process,
    "decision_tree": _decision_tree,
}

#: Registered name -> the display name the seed scripts use (also accepted as input).
DISPLAY_NAMES: dict[str, str] = {
    "nearest_neighbours": "Nearest Neighbors",
    "linear_svm": "Linear SVM",
    "rbf_svm": "RBF SVM",
    "gaussian_process": "Gaussian Process",
    "decision_tree": "Decision Tree",
}

_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]+$")


def _alias_key(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip()).lower()


_ALIASES: dict[str, str] = {}
for _name, _display in DISPLAY_NAMES.items():
    _ALIASES[_alias_key(_name)] = _name
    _ALIASES[_alias_key(_display)] = _name
_ALIASES[_alias_key("nearest_neighbors")] = "nearest_neighbours"


def registered_names() -> list[str]:
    """The classifier names accepted without an import path, in the seed's order."""
    return list(SEED_CLASSIFIERS)


def canonical_name(name: str) -> str:
    """Map a registered name or display alias to its registered name.

    Raises:
        UnknownClassifierError: ``name`` is not registered; the message lists the
            known names and the closest one.
    """
    key = _alias_key(name)
    if key in _ALIASES:
        return _ALIASES[key]
    known = registered_names()
    candidates = list(_ALIASES)
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.5)
    hint = f" Did you mean {_ALIASES[close[0]]!r}?" if close else ""
    raise UnknownClassifierError(
        f"classifier {name!r} is not registered; known names: {', '.join(known)}.{hint} "
        "Other scikit-learn classifiers can be given as "
        "{name: NAME, estimator: module.Class, params: {...}}"
    )


@dataclass(frozen=True)
class ClassifierSpec:
    """What to train: a registered name, or an import path with parameters.

    Attributes:
        name: label used in file names, the figure and the score table.
        estimator: ``module.Class`` or ``module:Class`` import path; ``None`` for
            registered names.
        params: keyword arguments for the estimator's constructor.
    """

    name: str
    estimator: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def display_name(self) -> str:
        """Seed display name for registered classifiers, else ``name``."""
        return DISPLAY_NAMES.get(self.name, self.name)


def parse_classifier(entry: Any, *, where: str = "classifiers") -> ClassifierSpec:
    """Validate one ``classifiers`` entry (a name string or a mapping).

    Raises:
        UnknownClassifierError: an unknown name string.
        ClassifierConfigError: a malformed mapping.
    """
    if isinstance(entry, ClassifierSpec):
        if entry.estimator is None:
            return ClassifierSpec(canonical_name(entry.name))
        return entry
    if isinstance(entry, str):
        return ClassifierSpec(canonical_name(entry))
    if not isinstance(entry, Mapping):
        raise ClassifierConfigError(
            f"{where}: found {type(entry).__name__} {entry!r}, expected a classifier name "
            "or a mapping {name, estimator, params}"
        )
    unknown = sorted(set(entry) - {"name", "estimator", "params"})
    if unknown:
        raise ClassifierConfigError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; allowed keys: name, estimator, params"
        )
    name = entry.get("name")
    estimator = entry.get("estimator")
    params = entry.get("params") or {}
    if estimator is None:
        if not isinstance(name, str):
            raise ClassifierConfigError(
                f"{where}: mapping without 'estimator' needs a registered 'name', found {name!r}"
            )
        if params:
            raise ClassifierConfigError(
                f"{where}.params: registered classifier {name!r} takes no params; give an "
                "'estimator' import path to set hyperparameters"
            )
        return ClassifierSpec(canonical_name(name))
    if not isinstance(estimator, str) or not re.match(r"^[A-Za-z_][\w.]*([.:][A-Za-z_]\w*)$", estimator):
        raise ClassifierConfigError(
            f"{where}.estimator: found {estimator!r}, expected an import path such as "
            "'sklearn.ensemble.RandomForestClassifier'"
        )
    if name is None:
        name = estimator.replace(":", ".").rsplit(".", 1)[-1]
    if not isinstance(name, str) or not _NAME_PATTERN.match(name):
        raise ClassifierConfigError(
            f"{where}.name: found {name!r}, expected letters, digits, '_', '-' or '.' (it names the output file)"
        )
    if not isinstance(params, Mapping) or not all(isinstance(key, str) for key in params):
        raise ClassifierConfigError(
            f"{where}.params: found {params!r}, expected a mapping of parameter names to values"
        )
    return ClassifierSpec(name=name, estimator=estimator, params=dict(params))


def _import_class(path: str, where: str) -> Any:
    module_name, _, class_name = path.replace(":", ".").rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ClassifierConfigError(
            f"{where}: cannot import module {module_name!r} ({exc}); check the spelling or install the package"
        ) from None
    try:
        return getattr(module, class_name)
    except AttributeError:
        raise ClassifierConfigError(f"{where}: module {module_name!r} has no attribute {class_name!r}") from None


def build_estimator(spec: ClassifierSpec) -> Any:
    """Return a fresh, unfitted scikit-learn classifier for ``spec``.

    Raises:
        ClassifierConfigError: the import path does not name a classifier or a
            parameter is not accepted (the message lists the valid ones).
    """
    if spec.estimator is None:
        return SEED_CLASSIFIERS[canonical_name(spec.name)]()
    where = f"classifier {spec.name!r} estimator {spec.estimator!r}"
    cls = _import_class(spec.estimator, where)
    from sklearn.base import is_classifier

    if not isinstance(cls, type):
        raise ClassifierConfigError(f"{where}: is not a class")
    try:
        estimator = cls(**dict(spec.params))
    except TypeError as exc:
        valid: list[str] = []
        with contextlib.suppress(Exception):
            valid = sorted(cls().get_params())
        allowed = f"; valid parameters: {', '.join(valid)}" if valid else ""
        raise ClassifierConfigError(f"{where}: bad params ({exc}){allowed}") from None
    if not is_classifier(estimator):
        raise ClassifierConfigError(
            f"{where}: {cls.__name__} is not a scikit-learn classifier; expected a class "
            "with fit/predict and classifier tags, e.g. sklearn.ensemble.RandomForestClassifier"
        )
    return estimator
