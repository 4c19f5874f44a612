"""The figure is the seed's figure: its geometry and styling, drawn by the seed's own code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.constants import MOON

SEED_NAMES = ["Nearest Neighbors", "Linear SVM", "RBF SVM", "Gaussian Process", "Decision Tree"]
REGISTERED = ["nearest_neighbours", "linear_svm", "rbf_svm", "gaussian_process", "decision_tree"]


def seed_figure(path: Path) -> None:
    """The seed's drawing code, written out with plain matplotlib and scikit-learn (its parameters)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from sklearn.gaussian_process import GaussianProcessClassifier
    from sklearn.gaussian_process.kernels import RBF
    from sklearn.model_selection import train_test_split
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    data = np.loadtxt(MOON, skiprows=1)
    X, y = StandardScaler().fit_transform(data[:, :2]), data[:, 2].astype(int)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, random_state=42)
    classifiers = [
        KNeighborsClassifier(3),
        SVC(kernel="linear", C=0.025),
        SVC(gamma=2, C=1),
        GaussianProcessClassifier(1.0 * RBF(1.0)),
        DecisionTreeClassifier(max_depth=5),
    ]
    h = 0.02
    x_min, x_max = X[:, 0].min() - 0.5, X[:, 0].max() + 0.5
    y_min, y_max = X[:, 1].min() - 0.5, X[:, 1].max() + 0.5
    xx, yy = np.meshgrid(np.arange(x_min, x_max, h), np.arange(y_min, y_max, h))

    figure = plt.figure(figsize=(15, 3))
    cm = plt.cm.RdBu
    cm_bright = ListedColormap(["#FF0000", "#0000FF"])

    def points(ax):
        ax.scatter(X_train[:, 0], X_train[:, 1], c=y_train, cmap=cm_bright, edgecolors="k")
        ax.scatter(X_test[:, 0], X_test[:, 1], c=y_test, cmap=cm_bright, alpha=0.6, edgecolors="k")
        ax.set_xlim(xx.min(), xx.max())
        ax.set_ylim(yy.min(), yy.max())
        ax.set_xticks(())
        ax.set_yticks(())

    ax = plt.subplot(1, len(classifiers) + 1, 1)
    ax.set_title("Input data")
    points(ax)
    for i, (name, clf) in enumerate(zip(SEED_NAMES, classifiers), start=2):
        ax = plt.subplot(1, len(classifiers) + 1, i)
        clf.fit(X_train, y_train)
        score = clf.score(X_test, y_test)
        if hasattr(clf, "decision_function"):
            Z = clf.decision_function(np.c_[xx.ravel(), yy.ravel()])
        else:
            Z = clf.predict_proba(np.c_[xx.ravel(), yy.ravel()])[:, 1]
        ax.contourf(xx, yy, Z.reshape(xx.shape), cmap=cm, alpha=0.8)
        points(ax)
        ax.set_title(name)
        ax.text(xx.max() - 0.3, yy.min() + 0.3, f"{score:.2f}".lstrip("0"), size=15, horizontalalignment="right")
    plt.tight_layout()
    plt.savefig(path)
    plt.close(figure)


def our_figure(path: Path, names: list[str] = REGISTERED, **options) -> Path:
    from mltoolkit.analysis.ml import classify, data_prep
    from mltoolkit.analysis.plotting import save_figure

    prepped = data_prep(str(MOON))
    return save_figure(prepped, [classify(prepped, name) for name in names], path, **options)


def pixels(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


@pytest.fixture(scope="module")
def figures(tmp_path_factory) -> tuple[np.ndarray, np.ndarray]:
    folder = tmp_path_factory.mktemp("figures")
    seed_figure(folder / "seed.png")
    our_figure(folder / "ours.png")
    return pixels(folder / "seed.png"), pixels(folder / "ours.png")


def test_the_figure_has_the_seeds_size(figures):
    seed, ours = figures
    assert seed.shape == ours.shape == (300, 1500, 3)


def test_the_figure_differs_from_the_seeds_in_at_most_one_percent_of_its_pixels(figures):
    seed, ours = figures
    differing = np.any(np.abs(seed - ours) > 8, axis=2).mean()
    assert differing <= 0.01, f"{differing:.2%} of the pixels differ"


def test_other_panel_counts_keep_the_seeds_panels_and_a_larger_rendering_keeps_the_shape(tmp_path):
    assert pixels(our_figure(tmp_path / "two.png", ["nearest_neighbours", "decision_tree"])).shape == (300, 750, 3)
    assert pixels(our_figure(tmp_path / "large.png", dpi=200)).shape == (600, 3000, 3)


def test_the_spec_paths_step_scripts_draw_the_same_bytes_as_the_native_flow(tmp_path):
    from mltoolkit.analysis.fun_with_ml import classification, data_prep, merge_and_plot

    prepped = tmp_path / "prepped.pkl"
    assert data_prep.main(["--dataset", str(MOON), "--outfile", str(prepped)]) == 0
    pickles = [tmp_path / f"{name}.pkl" for name in REGISTERED]
    for name, path in zip(REGISTERED, pickles):
        assert classification.main(["--prepped_data", str(prepped), "--classifier", name, "--outfile", str(path)]) == 0
    assert merge_and_plot.main([str(prepped), str(tmp_path / "spec.png"), *map(str, pickles)]) == 0

    assert (tmp_path / "spec.png").read_bytes() == our_figure(tmp_path / "native.png").read_bytes()
