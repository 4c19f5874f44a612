"""Phase 5 of the spec loader: run one step (a *packtivity*) and publish its results.

Modules: :mod:`.interpolate` (placeholders), :mod:`.shell` (quoting), :mod:`.environments`
(image map, Docker, the ``python`` on PATH), :mod:`.execute` (the process),
:mod:`.publishers`, and :mod:`.step` (:func:`run_step`, which strings them together).

:func:`run_step` is the pure analogue of ``packtivity-run``: it fills the step's
parameters into its command or script, runs it in the step's environment with
its output captured, and evaluates the publisher.

**Interpolation.** ``{name}`` takes a parameter, ``{workdir}`` the step's folder;
Python ``str.format`` syntax as in yadage (``{x[0]}``, ``{n:03d}``, ``{{`` for a
brace); a list becomes its elements separated by spaces.

**Quoting** (where we are deliberately better than yadage, which pastes values into
the shell as they are). With ``StepOptions.quote`` (the default) every value
interpolated into a shell command is quoted for the place it lands in:

* outside quotes: each value (each list element) becomes one shell word
  (``shlex.quote``), so ``a; touch PWNED``, ``$(...)``, backticks, ``>``, quotes,
  newlines and spaces stay literal; glob wildcards (``*``, ``?``, ``[abc]``) stay
  *outside* the quotes so ``{outdir}/*.pkl`` still expands, and ``for c in {list}``
  still iterates over the elements;
* inside ``'...'`` or ``"..."`` of the template: escaped for that quoting, so the
  value stays inside the template's string;
* inside a here-document: ``$``, backticks and backslashes are escaped (nothing for
  a quoted ``<<'EOF'``), and a value that contains the terminator line is refused.

``quote=False`` reproduces yadage's raw pasting (callers should warn loudly).
Scripts whose ``interpreter`` is not a POSIX shell (``python``...) get raw values:
quoting is a shell notion.

**Processes.** ``string-interpolated-cmd`` runs ``sh -c CMD``;
``interpreted-script-cmd`` writes the script to ``<workdir>/_packtivity/<name>.script``
(``.py`` for Python) and runs ``INTERPRETER SCRIPT`` (yadage's local backend cannot
run scripts at all). Both run in the step's folder, in a new session (a timeout kills
the whole process group). Output (stdout and stderr, interleaved) goes to
``<workdir>/_packtivity/<name>.run.log`` and, line by line, to ``on_output``; the
final command text is kept in ``<workdir>/_packtivity/<name>.command``.

**Environments.** ``localproc-env`` runs on this machine; ``noop-env`` runs
nothing and only publishes; ``docker-encapsulated`` runs ``docker run`` when a
Docker engine answers (probed once) and otherwise looks the image up in the
*image map*: ``local`` runs the command here as is (optionally with
``/container/path=/host/path`` mounts applied as path rewrites); ``toolkit``
(built in for ``danikam/sklearn``, the seed's image) maps ``/fun_with_ml`` onto
``mltoolkit/analysis/fun_with_ml`` and puts a ``python`` on ``PATH`` that is this
interpreter (or the warm zygote). An image with neither is an
:class:`EnvironmentUnavailableError` naming both fixes.

**Publishers.** ``interpolated-pub`` (``glob`` -> sorted matches when any,
``relative_paths`` -> joined to the workdir), ``frompar-pub``, ``fromglob-pub``
(sorted), ``fromyaml-pub``, ``constant-pub``, ``fromparjq-pub``.
"""

from __future__ import annotations

from mltoolkit.errors import EnvironmentUnavailableError
from mltoolkit.yadage.packtivity.environments import (
    DEFAULT_IMAGE_MAP,
    TOOLKIT_MOUNT,
    TOOLKIT_SCRIPTS_DIR,
    ImageMapping,
    docker_available,
    docker_command,
    lookup_image,
    parse_image_map,
)
from mltoolkit.yadage.packtivity.interpolate import interpolate
from mltoolkit.yadage.packtivity.publishers import publish
from mltoolkit.yadage.packtivity.shell import is_shell, quote_keep_globs
from mltoolkit.yadage.packtivity.step import StepOptions, StepResult, run_step

__all__ = [
    "DEFAULT_IMAGE_MAP",
    "TOOLKIT_MOUNT",
    "TOOLKIT_SCRIPTS_DIR",
    "EnvironmentUnavailableError",
    "ImageMapping",
    "StepOptions",
    "StepResult",
    "docker_available",
    "docker_command",
    "interpolate",
    "is_shell",
    "lookup_image",
    "parse_image_map",
    "publish",
    "quote_keep_globs",
    "run_step",
]
