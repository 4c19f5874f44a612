"""Random shell templates around one placeholder: whatever the lexer accepts, no payload runs.

Each case glues a few fragments of shell syntax (quotes, substitutions, here-documents,
pipes into interpreters, variables, groups, prefixes) around ``{v}``, fills it with a
payload and, when the value is not refused, runs the text with sh and bash. Seeded,
so a failure names a reproducible case. It found real gaps while the lexer was written
(a here-document inside ``$(...)``, ``time a[0]=1 sh -c``...).
"""

from __future__ import annotations

import contextlib
import random
import subprocess
from pathlib import Path

import pytest

from mltoolkit.errors import SpecError
from mltoolkit.yadage.packtivity import interpolate

FRAGMENTS = [
    "echo {v}", '"{v}"', "'{v}'", "$(echo {v})", '"$(echo {v})"', "`echo {v}`", "${{X:-{v}}}", '"${{X:-{v}}}"',
    "x={v}", "{v}", "# {v}", "cat <<EOF\n{v}\nEOF", "cat <<'EOF'\n{v}\nEOF", 'cat <<E"OF"\n{v}\nEOF', "<<< {v}",
    "| sh", "| cat", "&&", ";", "\n", "sh -c '{v}'", "eval {v}", "$(( {v} ))", "for i in {v}; do echo $i; done",
    "( echo {v} )", "{{ echo {v}; }}", "a=$(cat <<EOF\n{v}\nEOF\n)", "echo \\{v}", "printf %s {v} | python3",
    "case {v} in a) echo {v};; esac", "f() {{ echo {v}; }}", 'echo "a $(echo "{v}") b"', "read -r x <<< {v}",
    "cat <<-EOF\n\t{v}\n\tEOF", "echo {v}#", "echo #{v}", 'x="{v}"', 'echo "$x"', "$x", "$((x))", 'eval "$x"',
    "{{", "}}", "(", ")", "| bash", "while read l; do", "done", "if true; then", "fi", "y=$x", "$(( $y ))",
    "declare x={v}", "for x in {v}; do", "echo ${{!x}}", "a[x]=1", "X+=1", "time", "nohup", "env X=1",
    "exec", "2>&1", "<(echo {v})", "|&", "&", "!", "((x=1))", "[[ {v} == a ]]", "$1", "timeout 5", "xargs",
    "sed -n p", '<<< "$x"', "$(cat)", "bash $x", "python3 - <<EOF\nprint('$x')\nEOF",
]  # fmt: skip
PAYLOADS = [
    "a;touch {c}", "$(touch {c})", "`touch {c}`", "a\ntouch {c}", "'$(touch {c})'", '"$(touch {c})"',
    '\\"; touch {c}; #', "x\nEOF\ntouch {c}", ")\ntouch {c}\n(", "}; touch {c}; {", "a[$(touch {c})]",
    "--; touch {c}", "*; touch {c}", "a' \"b\" `c` $d \\e", ";;\ntouch {c}\n",
]  # fmt: skip
CASES_PER_SEED = 120


@pytest.mark.parametrize("seed", range(6))
def test_random_templates_never_run_a_payload(tmp_path: Path, seed: int):
    chooser = random.Random(seed)
    canary = tmp_path / "CANARY"
    ran = 0
    for case in range(CASES_PER_SEED):
        template = " ".join(chooser.choice(FRAGMENTS) for _ in range(chooser.randint(1, 4)))
        value = chooser.choice(PAYLOADS).replace("{c}", str(canary))
        try:
            text = interpolate(template, {"v": value})
        except SpecError:
            continue
        for shell in ("sh", "bash"):
            with contextlib.suppress(subprocess.TimeoutExpired):
                subprocess.run(
                    [shell, "-c", text], cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, timeout=5
                )
            assert not canary.exists(), f"seed {seed} case {case}: {template!r} with {value!r} ran as {text!r}"
        ran += 1
    assert ran > 0  # some values were accepted and run, so the check above checked something
