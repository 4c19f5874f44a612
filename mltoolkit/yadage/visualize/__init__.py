"""Pictures of a workflow *instance*: the analogue of yadage's ``--visualize``.

yadage wrote ``_yadage/yadage_workflow_instance.pdf``; :func:`write_workflow_pictures`
writes ``workflow.dot``, ``workflow.svg`` and ``workflow.png`` of a
:class:`~mltoolkit.yadage.planner.WorkflowRun`, after or during a run
(:func:`write_workdir_pictures` puts them in the work directory's ``_mltoolkit/``):

* one box per step, labelled with the step's name (``classification_2``) and its
  state, filled by state (``COMPLETED`` green, ``CACHED`` blue, ``FAILED`` red,
  ``RUNNING`` orange, ``PENDING`` grey);
* one ``init`` ellipse per scope (the root and every subworkflow instance);
* a frame per stage holding its steps, and inside a stage that runs a
  subworkflow, a frame per instance scope (``/map/0``) holding that instance's
  ``init`` and stage frames;
* a dashed box for a stage that has no step (yet): ``not applied`` while its
  dependencies are not ready (or never were, in a failed run), ``no steps``
  when it was applied but scheduled nothing;
* an arrow ``A -> B`` when B's stage depends on A's (see
  :mod:`~mltoolkit.yadage.visualize.dependencies`); arrows point downstream.

Large stages: a stage with more than ``collapse_threshold`` boxes (default 50;
its steps, plus the ``init`` and boxes of its subworkflow instances) is drawn as
ONE box ``stage (N steps: X completed, Y failed)`` (a second line counts cached,
running and pending steps), coloured by the worst state inside it. This keeps a
1,000-step scatter to a few nodes; ``collapse_threshold=None`` draws every step.

The package: :mod:`.scopes` (what is drawn) and :mod:`.dependencies` (the
arrows) build a :class:`networkx.DiGraph` (:mod:`.graph`); :mod:`.dot` writes it
as DOT and runs graphviz; :mod:`.layout` and :mod:`.draw` lay it out with
networkx's layering and draw it with matplotlib; :mod:`.svg` gives both SVGs
the same ids, classes and ``data-`` attributes. Only the DOT text is needed to
import this module's root: networkx and matplotlib load on the first picture.

Rendering: when graphviz's ``dot`` is on ``PATH`` (and ``use_graphviz`` is not
``False``) the SVG and PNG come from ``dot`` on the written ``.dot`` file;
otherwise (or when ``dot`` fails and ``use_graphviz`` is ``None``) from
matplotlib. Either way every box is an SVG ``<g>`` with an ``id``
(``step-classify_2``, ``step-map-0-stage1``...), the classes ``node`` and one of
``step``, ``init``, ``collapsed`` or ``pending-stage``, and ``data-id`` (the
step id) and ``data-state``; frames carry ``stage-cluster`` / ``scope-cluster``.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from mltoolkit.errors import VisualizationError, WorkdirError
from mltoolkit.workdir.artifacts import atomic_write_bytes, atomic_write_text
from mltoolkit.workdir.layout import WorkdirLayout
from mltoolkit.yadage.planner import WorkflowRun
from mltoolkit.yadage.visualize.style import DEFAULT_COLLAPSE_THRESHOLD, STATE_COLOURS

__all__ = [
    "DEFAULT_COLLAPSE_THRESHOLD",
    "STATE_COLOURS",
    "VisualizationError",
    "write_workdir_pictures",
    "write_workflow_pictures",
]

log = logging.getLogger(__name__)

_KINDS = ("dot", "svg", "png")


def _check_arguments(basename: object, collapse_threshold: object, graphviz_timeout: object) -> None:
    if (
        not isinstance(basename, str)
        or basename in ("", ".", "..")
        or "\0" in basename
        or any(separator in basename for separator in ("/", "\\", os.sep))
    ):
        raise VisualizationError(
            f"basename {basename!r} is not a plain file name; pass a name without folders, e.g. 'workflow'"
        )
    if collapse_threshold is not None and (
        isinstance(collapse_threshold, bool) or not isinstance(collapse_threshold, int) or collapse_threshold < 1
    ):
        raise VisualizationError(
            f"collapse_threshold {collapse_threshold!r} is not a positive integer; pass e.g. 50, or None "
            "to draw every step"
        )
    if isinstance(graphviz_timeout, bool) or not isinstance(graphviz_timeout, (int, float)) or not graphviz_timeout > 0:
        raise VisualizationError(f"graphviz_timeout {graphviz_timeout!r} is not a positive number of seconds")


def _make_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise WorkdirError(f"{folder}: exists and is not a folder; pass a folder for the workflow pictures")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WorkdirError(f"{folder}: cannot create the pictures folder ({error.strerror or error})") from None


def _write(
    run: WorkflowRun, paths: dict[str, Path], use_graphviz: bool | None, threshold: int | None, timeout: float
) -> dict[str, Path]:
    from mltoolkit.yadage.visualize.dot import dot_text, render_with_graphviz
    from mltoolkit.yadage.visualize.graph import build_graph
    from mltoolkit.yadage.visualize.svg import annotate_svg

    graph = build_graph(run, threshold)
    atomic_write_text(paths["dot"], dot_text(graph, paths["dot"].stem))
    dot = shutil.which("dot") if use_graphviz is not False else None
    if use_graphviz and dot is None:
        raise VisualizationError(
            "graphviz 'dot' is not on PATH; install graphviz or pass use_graphviz=None (or False) to draw "
            "with matplotlib"
        )
    if dot is not None:
        try:
            nodes = graph.digraph.number_of_nodes()
            svg = render_with_graphviz(dot, paths["dot"], "svg", timeout, nodes).decode("utf-8")
            png = render_with_graphviz(dot, paths["dot"], "png", timeout, nodes)
            atomic_write_text(paths["svg"], annotate_svg(svg, graph, add_titles=False))
            atomic_write_bytes(paths["png"], png)
            return paths
        except VisualizationError as error:
            if use_graphviz:
                raise
            log.warning("%s; drawing with matplotlib instead", error)
    from mltoolkit.yadage.visualize.draw import draw_pictures

    png, svg = draw_pictures(graph)
    atomic_write_text(paths["svg"], annotate_svg(svg, graph, add_titles=True))
    atomic_write_bytes(paths["png"], png)
    return paths


def write_workflow_pictures(
    run: WorkflowRun,
    out_dir: str | os.PathLike[str],
    *,
    basename: str = "workflow",
    use_graphviz: bool | None = None,
    collapse_threshold: int | None = DEFAULT_COLLAPSE_THRESHOLD,
    graphviz_timeout: float = 60.0,
) -> dict[str, Path]:
    """Write ``<basename>.dot``, ``.svg`` and ``.png`` of a workflow instance into ``out_dir``.

    The pictures show every step of ``run`` (finished or still running) with its
    state, an ``init`` node per scope, a frame per stage and per subworkflow
    instance, and an arrow from each step to the steps whose stages depend on
    it; see the package docstring for the details. Every file is written
    atomically (temporary file + rename). Call it from the thread that drives
    the run (between ``advance``/``record_*`` calls): it reads the run without locking.

    Args:
        run: the run to draw (``run_workflow``'s result, or one still being driven).
        out_dir: folder for the pictures, created if missing (yadage used ``WORKDIR/_yadage``).
        basename: file name without suffix.
        use_graphviz: ``None`` (default) renders with graphviz's ``dot`` when it is on
            ``PATH`` and falls back to matplotlib if it is missing or fails;
            ``True`` requires ``dot``; ``False`` always draws with matplotlib.
        collapse_threshold: draw a stage with more boxes than this as one
            summary box; ``None`` never collapses.
        graphviz_timeout: seconds each ``dot`` call may take.

    Returns:
        ``{"dot": path, "svg": path, "png": path}``.

    Raises:
        VisualizationError: bad ``basename`` / ``collapse_threshold`` / ``graphviz_timeout``,
            or ``use_graphviz=True`` and ``dot`` is missing or fails.
        WorkdirError: ``out_dir`` is not a folder or cannot be created.
    """
    _check_arguments(basename, collapse_threshold, graphviz_timeout)
    folder = Path(out_dir)
    _make_folder(folder)
    paths = {kind: folder / f"{basename}.{kind}" for kind in _KINDS}
    return _write(run, paths, use_graphviz, collapse_threshold, float(graphviz_timeout))


def write_workdir_pictures(
    run: WorkflowRun,
    workdir: str | os.PathLike[str],
    *,
    use_graphviz: bool | None = None,
    collapse_threshold: int | None = DEFAULT_COLLAPSE_THRESHOLD,
    graphviz_timeout: float = 60.0,
) -> dict[str, Path]:
    """Write the pictures of ``run`` where the work directory keeps them (``_mltoolkit/workflow.*``).

    The same pictures and errors as :func:`write_workflow_pictures`; the paths come
    from :meth:`~mltoolkit.workdir.layout.WorkdirLayout.picture`.
    """
    _check_arguments("workflow", collapse_threshold, graphviz_timeout)
    layout = WorkdirLayout(workdir)
    paths = {kind: layout.picture(kind) for kind in _KINDS}
    _make_folder(paths["dot"].parent)
    return _write(run, paths, use_graphviz, collapse_threshold, float(graphviz_timeout))
