"""The pure analysis: data_prep, classify, merge_and_plot (no Prefect)."""

from __future__ import annotations

import numpy as np
import pytest

from mltoolkit import ClassifierResult, PreppedData, classify, data_prep, merge_and_plot
from mltoolkit.analysis.classifiers import ClassifierSpec
from mltoolkit.analysis.plotting import build_figure
from mltoolkit.errors import ClassifierConfigError, UnknownClassifierError
from tests.constants import SEED_SCORES


@pytest.fixture(scope="module")
def prepped(repo_root) -> PreppedData:
    return data_prep(repo_root / "data" / "moon.txt")


@pytest.mark.parametrize("name, expected", SEED_SCORES.items())
def test_classify_reproduces_the_seed_scores(prepped, name, expected):
    result = classify(prepped, name)
    assert isinstance(result, ClassifierResult)
    assert result.name == name
    assert round(result.score, 2) == expected
    assert hasattr(result.estimator, "predict")


def test_data_prep_shapes_and_split(prepped):
    assert prepped.X.shape == (100, 2)
    assert prepped.X_train.shape == (60, 2) and prepped.X_test.shape == (40, 2)
    assert prepped.y_train.shape == (60,) and prepped.y_test.shape == (40,)
    # StandardScaler: zero mean, unit variance over all rows
    assert np.allclose(prepped.X.mean(axis=0), 0.0, atol=1e-9)
    assert np.allclose(prepped.X.std(axis=0), 1.0, atol=1e-9)
    assert set(np.unique(prepped.y)) == {0, 1}
    assert len(prepped.source_sha256) == 64


@pytest.mark.parametrize("field", ["X", "X_train", "X_test", "y_train", "y_test"])
def test_data_prep_is_deterministic(repo_root, prepped, field):
    again = data_prep(repo_root / "data" / "moon.txt")
    assert np.array_equal(getattr(again, field), getattr(prepped, field))


def test_display_names_are_aliases(prepped):
    assert classify(prepped, "Nearest Neighbors").name == "nearest_neighbours"
    assert classify(prepped, "RBF SVM").score == classify(prepped, "rbf_svm").score


def test_import_path_classifier_with_params(prepped):
    entry = {
        "name": "forest",
        "estimator": "sklearn.ensemble.RandomForestClassifier",
        "params": {"n_estimators": 7, "random_state": 0},
    }
    result = classify(prepped, entry)
    assert result.name == "forest"
    assert result.estimator.n_estimators == 7
    assert 0.5 <= result.score <= 1.0
    spec = ClassifierSpec("lr", "sklearn.linear_model:LogisticRegression", {"C": 2.0})
    assert classify(prepped, spec).estimator.C == 2.0


def test_unknown_classifier_lists_known_names_and_closest(prepped):
    with pytest.raises(UnknownClassifierError) as info:
        classify(prepped, "rbf_svn")
    message = str(info.value)
    assert "'rbf_svn'" in message and "known names" in message
    assert "Did you mean 'rbf_svm'?" in message
    assert [name for name in SEED_SCORES if name not in message] == []


@pytest.mark.parametrize(
    "entry, fragment",
    [
        ({"name": "x", "estimator": "sklearn.preprocessing.StandardScaler"}, "not a scikit-learn classifier"),
        ({"name": "x", "estimator": "sklearn.nosuchmodule.Thing"}, "cannot import module"),
        ({"name": "x", "estimator": "sklearn.svm.NoSuchSVC"}, "has no attribute 'NoSuchSVC'"),
        ({"name": "x", "estimator": "sklearn.svm.SVC", "params": {"gama": 2}}, "valid parameters"),
        ({"name": "x", "estimator": "not a path"}, "expected an import path"),
        ({"name": "x", "estimator": "sklearn.svm.SVC", "colour": 1}, "unknown key(s) 'colour'"),
    ],
)
def test_bad_import_path_classifiers(prepped, entry, fragment):
    with pytest.raises(ClassifierConfigError) as info:
        classify(prepped, entry)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_figure_has_one_panel_per_classifier_plus_input(prepped):
    results = [classify(prepped, name) for name in ("rbf_svm", "decision_tree", "linear_svm")]
    figure = build_figure(prepped, results)
    titles = [axes.get_title() for axes in figure.axes]
    assert titles == ["Input data", "RBF SVM", "Decision Tree", "Linear SVM"]
    # the score is printed in each classifier panel, as in the seed
    texts = [[text.get_text() for text in axes.texts] for axes in figure.axes[1:]]
    assert texts == [[f"{result.score:.2f}".lstrip("0")] for result in results]


def test_merge_and_plot_writes_a_png(tmp_path, prepped):
    results = [classify(prepped, name) for name in SEED_SCORES]
    path = merge_and_plot(prepped, results, tmp_path / "out" / "ml_results.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    from matplotlib.image import imread

    height, width = imread(path).shape[:2]
    assert (width, height) == (1500, 300)  # the seed's figsize=(15, 3) at 100 dpi, six panels
    assert not list((tmp_path / "out").glob(".*tmp"))


def test_hyperparameter_rejected_when_fitting_is_a_config_error(prepped):
    entry = {"name": "bad", "estimator": "sklearn.svm.SVC", "params": {"C": -1}}
    with pytest.raises(ClassifierConfigError) as info:
        classify(prepped, entry)
    assert "The 'C' parameter of SVC must be" in str(info.value)
    assert "fix the params of classifier 'bad'" in str(info.value)
