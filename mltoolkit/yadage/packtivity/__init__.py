"""Phase 5 of the spec loader: run one step (a *packtivity*) and publish its results.

:func:`run_step` is the pure analogue of ``packtivity-run``: it fills the step's
parameters into its command or script, runs it in the step's environment with its
output captured, and evaluates the publisher. Modules: :mod:`.interpolate`
(placeholders), :mod:`.shell` with :mod:`.shell_lexer`, :mod:`.shell_reader`,
:mod:`.shell_words`, :mod:`.shell_commands` and :mod:`.shell_variables` (shell
values), :mod:`.pycode` (Python values),
:mod:`.environments` (image map, Docker, the ``python`` on PATH), :mod:`.execute`
(the process), :mod:`.publishers`, and :mod:`.step`, which strings them together.

**Interpolation.** ``{name}`` takes a parameter, ``{workdir}`` the step's folder;
Python ``str.format`` syntax as in yadage (``{x[0]}``, ``{n:03d}``, ``{{`` for a
brace); a list becomes its elements separated by spaces.

**No value ever runs as code** (where we are deliberately better than yadage, which
pastes values into the shell as they are). The guarantee: a value -- from ``-p``, an
inputs file, an init file's name or anything an upstream step published -- is never
read as syntax by the shell or Python interpreter that runs the step's ``cmd`` or
``script``, nor by a shell or interpreter the template visibly hands it to. The
template is read with its placeholders replaced by markers, so values cannot change
how it is read, and each value is put in by the rule of the place it stands in:

*Shell* (``cmd``, ``sh``/``bash``/... scripts), read by :mod:`.shell_lexer`:

* a shell word -- an argument, a redirection target, ``X={v}``, ``for c in {list}``,
  ``{outdir}/*.pkl`` -- is quoted: one literal word per value (per list element),
  glob wildcards ``*``, ``?``, ``[a-z]`` left active outside the quotes so patterns
  still expand (a value naming an existing file is quoted whole);
* inside the template's ``'...'``: ``'`` becomes ``'\\''``; inside ``"..."``:
  backslash, ``$``, backtick and ``"`` are backslash-escaped; in a here-document:
  backslash, ``$`` and backtick are escaped
  (nothing for a quoted delimiter, ``<<'EOF'``, ``<<E"OF"``, ``<<\\EOF``), and a value
  that would complete the delimiter line is refused; in a comment: line breaks are
  written as ``\\n`` so the value stays in the comment;
* only *plain* values -- letters, digits and ``_ . / : + , -``, not starting with
  ``-`` -- where the shell would read more than data: the command name; inside
  backticks, ``${...}`` and ``$'...'``; right after ``$`` or ``\\``; the code
  argument of ``sh -c``, ``bash -c``, ``python -c``, ``perl -e``..., the program of
  ``awk``/``sed``/``jq``, any argument of ``eval``, ``trap``, ``alias``, ``root``;
  arguments of commands that run commands (``xargs``, ``sudo``, ``ssh``, ``find``,
  ``docker``...) or of a command only known at run time (``$CMD {v}``); names that
  bash evaluates (``read``, ``unset``, ``declare``/``export`` names, ``printf -v``,
  ``test -v``, loop variables, function names); a here-document or here-string read
  by anything but a data command (``cat``, ``tee``, ``grep``..., or an interpreter
  running a script file); anything piped into a command that reads its input as code
  (``sh``, ``python`` without a script); and everything after shell syntax the
  lexer does not follow (a ``case`` inside ``$(...)``, a ``(`` inside a word);
* only integers in arithmetic (``$((...))``, ``((...))``, ``let``, ``-eq`` and the
  other arithmetic comparisons), which bash evaluates names and subscripts in;
* never in a here-document's delimiter, and never a NUL character.

``exec``, ``env A=1``, ``nohup``, ``nice``, ``time`` and ``timeout 60`` in front of a
command are seen through, so ``timeout 60 python x.py {v}`` is judged as
``python x.py {v}``: ``{v}`` is a script argument. What is inside ``{ ...; }``,
``( ... )``, ``if ... fi``, ``while ... done`` counts as input of whatever the group
is piped into. A value kept in a shell variable (``x={v}``, ``declare``/``export``,
``for x in {v}``, ``read x <<< {v}``) takes the restriction of every place the
script expands that variable (``$x``, ``${x...}``, or a bare ``x`` in arithmetic:
``n={v}; echo $((n + 1))`` takes integers only, since bash evaluates the contents).

*Python* (``interpreter: python...``), read with :mod:`tokenize` by :mod:`.pycode`:
a whole expression token (``x = {v}``) becomes a Python literal of the value
(``repr``-style, for JSON-like data); inside a string literal the value is escaped
for that literal (f-string text doubles braces, bytes use ``\\xNN``; a raw string
takes only values that need no escape); an f-string ``{...}`` field takes a literal
when one fits; a comment gets its line breaks escaped and may not declare the file's
encoding; glued to a name (``x_{v}``) or anywhere else: only ``[A-Za-z0-9_]``.

*Any other interpreter*: plain values only.

A refused value stops the step before anything runs, with one line naming the
stage, step, parameter, line and position, and how to fix it. What the runner
cannot see: a program that reads an argument as code or as an option that it was
handed as data (``make {v}``, ``git {v}``: a value starting with ``-`` is still one
argument), a value the script hands on through positional parameters or a file and
then runs itself (``f() { eval "$1"; }; f {v}``, ``echo {v} > x.sh; sh x.sh``). ``quote=False``
(``--unsafe-no-quoting``) pastes values raw, as yadage does; callers warn loudly.

**Processes.** ``string-interpolated-cmd`` runs ``sh -c CMD``;
``interpolated-script-cmd`` writes the script to ``<workdir>/_packtivity/<name>.script``
(``.py`` for Python) and runs ``INTERPRETER SCRIPT`` (yadage's local backend cannot
run scripts at all). Both run in the step's folder, in a new session (a timeout
kills the whole process group). Output (stdout and stderr, interleaved) goes to
``<workdir>/_packtivity/<name>.run.log`` and, line by line, to ``on_output``; the
final command text is kept in ``<workdir>/_packtivity/<name>.command``. Nothing is
created outside the step's folder: the private folder and its files are checked
after resolving links, and relative published paths must stay inside the folder.

**Environments.** ``localproc-env`` runs on this machine; ``noop-env`` runs
nothing and only publishes; ``docker-encapsulated`` (:func:`place_step`): an image
with an entry the user gave in the *image map* (``--image-map`` or a map file) runs
as that entry says, whether or not an engine answers -- an explicit choice wins;
otherwise it runs in Docker when an engine answers (probed once per ``DOCKER_HOST``),
and else by the built-in entry (``danikam/sklearn``, the seed's image: ``toolkit``).
``local`` runs the command here as is (optionally with ``/container/path=/host/path``
mounts applied as path rewrites); ``toolkit`` maps ``/fun_with_ml`` onto
``mltoolkit/analysis/fun_with_ml`` and puts a ``python`` on ``PATH`` that is this
interpreter (or the warm zygote). An image with neither is an
:class:`EnvironmentUnavailableError` naming both fixes.

In Docker (:mod:`.docker`, :mod:`.containers`) a step runs ``docker run --rm --init`` of the
image's id with a unique ``--name``, as the invoking user (``--user uid:gid``), with
the run's folder and the step's folder mounted at their own paths, ``par_mounts``
and bundled datasets (known dataset URLs, :func:`mltoolkit.analysis.data.known_dataset_file`)
mounted read-only, the spec's ``workdir`` as working directory and
``$MLTOOLKIT_DOCKER_NETWORK`` as ``--network`` when set. A missing image is pulled;
one that cannot be is a one-line error. A timeout or interrupt removes the
container (``docker rm --force``). :attr:`StepResult.where` says where a step ran.

**Publishers.** ``interpolated-pub`` (``glob`` -> sorted matches when any,
``relative_paths`` -> joined to the workdir), ``frompar-pub``, ``fromglob-pub``
(sorted), ``fromyaml-pub``, ``constant-pub``, ``fromparjq-pub``.
"""

from __future__ import annotations

from mltoolkit.errors import EnvironmentUnavailableError
from mltoolkit.yadage.packtivity.docker import (
    CONTAINER_LABEL,
    DockerRun,
    docker_available,
    docker_command,
    docker_problem,
)
from mltoolkit.yadage.packtivity.environments import (
    DEFAULT_IMAGE_MAP,
    TOOLKIT_MOUNT,
    TOOLKIT_SCRIPTS_DIR,
    ImageMapping,
    Placement,
    lookup_image,
    parse_image_map,
    place_step,
)
from mltoolkit.yadage.packtivity.interpolate import interpolate
from mltoolkit.yadage.packtivity.publishers import publish
from mltoolkit.yadage.packtivity.shell import is_shell, quote_keep_globs
from mltoolkit.yadage.packtivity.step import (
    DOCKER_NETWORK_VARIABLE,
    StepOptions,
    StepResult,
    environment_identity,
    run_step,
)

__all__ = [
    "CONTAINER_LABEL",
    "DEFAULT_IMAGE_MAP",
    "DOCKER_NETWORK_VARIABLE",
    "TOOLKIT_MOUNT",
    "TOOLKIT_SCRIPTS_DIR",
    "DockerRun",
    "EnvironmentUnavailableError",
    "ImageMapping",
    "Placement",
    "StepOptions",
    "StepResult",
    "docker_available",
    "docker_command",
    "docker_problem",
    "environment_identity",
    "interpolate",
    "is_shell",
    "lookup_image",
    "parse_image_map",
    "place_step",
    "publish",
    "quote_keep_globs",
    "run_step",
]
