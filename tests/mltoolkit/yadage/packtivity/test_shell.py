"""Shell quoting: each value stays literal wherever it lands in a shell command."""

from __future__ import annotations

import pytest

from mltoolkit.errors import SpecError
from mltoolkit.yadage.packtivity import StepOptions, run_step

# --- quoting ---------------------------------------------------------------------------------

PAYLOADS = [
    "x; touch {canary}",
    "x && touch {canary}",
    "x | touch {canary}",
    "$(touch {canary})",
    "`touch {canary}`",
    "x\ntouch {canary}",
    "x > {canary}",
    "it's \"double\" and 'single'",
    "two  spaces\tand a tab",
    "-n",
    "--output={canary}",
    "$HOME ${{PATH}}",
    "x' ; touch {canary} ; echo '",
    'x" ; touch {canary} ; echo "',
    "back\\slash\\",
    "",
]

CONTEXTS = {
    "bare": "printf '%s\\0' {payload} > {workdir}/args.bin",
    "double quotes": "printf '%s\\0' \"{payload}\" > {workdir}/args.bin",
    "single quotes": "printf '%s\\0' '{payload}' > {workdir}/args.bin",
    "command substitution": "printf '%s\\0' \"$(printf '%s' {payload})\" > {workdir}/args.bin",
    "here-document": "cat > {workdir}/args.bin <<EOF\n{payload}\nEOF\n",
}


@pytest.mark.parametrize("context", sorted(CONTEXTS))
@pytest.mark.parametrize("payload", PAYLOADS, ids=[f"p{i}" for i in range(len(PAYLOADS))])
def test_payload_reaches_the_command_as_one_literal_argument(make_step, tmp_path, context, payload):
    canary = tmp_path / "PWNED"
    value = payload.format(canary=canary)
    step = make_step(script=CONTEXTS[context])
    workdir = tmp_path / "step"
    run_step(step, {"payload": value}, workdir, name="quoting")
    data = (workdir / "args.bin").read_bytes().decode()
    if context == "here-document":
        assert data == value + "\n"
    else:
        assert data.split("\0")[:-1] == [value]
    assert not canary.exists()


def test_list_elements_stay_separate_words_so_for_loops_iterate(make_step, tmp_path):
    canary = tmp_path / "PWNED"
    words = ["a b", f"c; touch {canary}", "$(x)", "*"]
    step = make_step(script="for word in {words}; do printf '%s\\0' \"$word\"; done > {workdir}/args.bin")
    run_step(step, {"words": words}, tmp_path / "step")
    got = (tmp_path / "step" / "args.bin").read_bytes().decode().split("\0")[:-1]
    assert got[:3] == ["a b", f"c; touch {canary}", "$(x)"]
    assert not canary.exists()


def test_glob_wildcards_in_values_still_expand(make_step, tmp_path):
    outdir = tmp_path / "my dir"
    outdir.mkdir()
    for name in ("a.pkl", "b.pkl", "c.txt"):
        (outdir / name).write_text("x")
    step = make_step("printf '%s\\0' {ml_inputs} > {workdir}/args.bin")
    run_step(step, {"ml_inputs": [f"{outdir}/*.pkl", f"{outdir}/c.tx?"]}, tmp_path / "step")
    got = (tmp_path / "step" / "args.bin").read_bytes().decode().split("\0")[:-1]
    assert got == [f"{outdir}/a.pkl", f"{outdir}/b.pkl", f"{outdir}/c.txt"]


def test_quote_false_pastes_values_raw_like_yadage(make_step, tmp_path):
    canary = tmp_path / "PWNED"
    step = make_step("echo {payload}")
    run_step(step, {"payload": f"x; touch {canary}"}, tmp_path / "step", options=StepOptions(quote=False))
    assert canary.exists()


def test_a_value_cannot_end_a_here_document_early(make_step, tmp_path):
    step = make_step(script="cat <<EOF\n{payload}\nEOF\n")
    with pytest.raises(SpecError, match=r"contains the line 'EOF', which would end the here-document"):
        run_step(step, {"payload": "a\nEOF\ntouch x"}, tmp_path / "step", name="heredoc")
