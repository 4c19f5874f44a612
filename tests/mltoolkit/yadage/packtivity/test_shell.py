"""Shell quoting: each value stays literal wherever it lands in a shell command."""

from __future__ import annotations

import pytest

from mltoolkit.errors import SpecError
from mltoolkit.yadage.packtivity import StepOptions, interpolate, run_step

# --- where a value may go: the lexer's reading of templates (pure, no process) -------------------

ACCEPTED = [
    # (template, value, text the shell gets)
    ("echo {v}", "a b", "echo 'a b'"),
    ("echo {v}", ["a b", "c"], "echo 'a b' c"),
    ('echo "{v}"', 'a"$b`c\\', 'echo "a\\"\\$b\\`c\\\\"'),
    ("echo '{v}'", "it's", "echo 'it'\\''s'"),
    ("X={v} cmd", "a;b", "X='a;b' cmd"),
    ("cmd > {v}", "a b", "cmd > 'a b'"),
    ("echo $(printf %s {v})", "a b", "echo $(printf %s 'a b')"),
    ('echo "$(printf %s "{v}")"', "$x", 'echo "$(printf %s "\\$x")"'),
    ("cat <<EOF\n{v}\nEOF", "$(x)`y`\\", "cat <<EOF\n\\$(x)\\`y\\`\\\\\nEOF"),
    ("cat <<'EOF'\n{v}\nEOF", "$(x)", "cat <<'EOF'\n$(x)\nEOF"),
    ("cat <<'EOF'\n$(date) {v}\nEOF", "$(x)", "cat <<'EOF'\n$(date) $(x)\nEOF"),
    ("cat <<EOF\n{v} $HOME\nEOF", "a; $b", "cat <<EOF\na; \\$b $HOME\nEOF"),
    ("cat <<-EOF\n\t{v}\n\tEOF", "\tEOFx", "cat <<-EOF\n\t\tEOFx\n\tEOF"),
    ("# {v}\necho", "x\nrm -rf y", "# x\\nrm -rf y\necho"),
    ("timeout 60 python x.py --in {v}", "a b", "timeout 60 python x.py --in 'a b'"),
    ("nohup env A=1 B={v} python x.py", "a b", "nohup env A=1 B='a b' python x.py"),
    ("python -W ignore -c 'import sys' {v}", "a b", "python -W ignore -c 'import sys' 'a b'"),
    ("sh -c 'echo \"$1\"' sh {v}", "a;b", "sh -c 'echo \"$1\"' sh 'a;b'"),
    ("bash run.sh {v} | tee log", "a b", "bash run.sh 'a b' | tee log"),
    ("awk '{{print $1}}' {v}", "a b", "awk '{print $1}' 'a b'"),
    ("[ -f {v} ] && test {v} = x", "a b", "[ -f 'a b' ] && test 'a b' = x"),
    ("export PATH={v}:$PATH", "/a b/bin", "export PATH='/a b/bin':$PATH"),
    ("f() {{ echo {v}; }}", "a b", "f() { echo 'a b'; }"),
    ("python - <<EOF\nprint('{v}')\nEOF", "plain_1", "python - <<EOF\nprint('plain_1')\nEOF"),
    ("echo $(( {v} + 1 ))", "-3", "echo $(( -3 + 1 ))"),
    ("echo `basename {v}`", "/a/b.txt", "echo `basename /a/b.txt`"),
    ("for c in {v}; do echo $c; done", ["x", "y z"], "for c in x 'y z'; do echo $c; done"),
    ("timeout {v} python x.py", "60", "timeout 60 python x.py"),
    ("python3 /s/run.py <<EOF\n{v}\nEOF", "a'b $(x)", "python3 /s/run.py <<EOF\na'b \\$(x)\nEOF"),
    ("grep x <<< {v}", "a b", "grep x <<< 'a b'"),
    ('x={v}; echo "$x" "${{X:-$x}}"', "a;b", 'x=\'a;b\'; echo "$x" "${X:-$x}"'),
    ("x={v}; cat <<EOF\n$x\nEOF", "$(y)", "x='$(y)'; cat <<EOF\n$x\nEOF"),
    # the file's content reaches $n, not its name: the name may be any value
    ("n=$(cat {v} || echo 0); echo $((n + 1))", "a b", "n=$(cat 'a b' || echo 0); echo $((n + 1))"),
    ("n=$(date > {v}); $n", "a b", "n=$(date > 'a b'); $n"),
    ("printf %s {v} | sed -e s/a/b/ | wc -c", "a b", "printf %s 'a b' | sed -e s/a/b/ | wc -c"),
]

REFUSED = [
    # (template, value, words of the position named in the one-line error)
    ("{v} --flag", "a b", "the command name"),
    ("{v}", "LD_PRELOAD=/x.so", "the command name"),
    ("$CMD {v}", "a b", "a command only known when the script runs"),
    ("echo `echo {v}`", "a b", "inside backticks"),
    ('echo "`echo {v}`"', "a b", "inside backticks"),
    ('echo "${{X:-{v}}}"', "a b", "inside ${...}"),
    ("echo ${{X:-{v}}}", "a b", "inside ${...}"),
    ("echo $'{v}'", "a b", "inside $'...'"),
    ("echo $(( {v} + 1 ))", "y", "in arithmetic"),
    ("(( n = {v} ))", "a[$(x)]", "in arithmetic"),
    ("let n={v}", "y", "'let'"),
    ("[[ {v} -eq 1 ]]", "y", "arithmetic comparison"),
    ("[ {v} -ge 1 ]", "y", "arithmetic comparison"),
    ("test -v {v}", "a[$(x)]", "-v"),
    ("printf -v {v} %s x", "a[$(x)]", "-v"),
    ("read {v}", "a[$(x)]", "a variable name"),
    ("unset {v}", "a[$(x)]", "a variable name"),
    ("declare {v}=1", "a[$(x)]", "a variable name given to 'declare'"),
    ("declare -i n={v}", "y", "an integer variable"),
    ("for {v} in a b; do :; done", "a b", "a loop variable's name"),
    ("function {v} {{ :; }}", "a b", "a function's name"),
    ("sh -c 'echo {v}'", "a;b", "the code sh -c runs"),
    ("a[0]=1 sh -c '{v}'", "a;b", "the code sh -c runs"),
    ("time a[0]=1 sh -c '{v}'", "a;b", "the code sh -c runs"),
    ("echo {v} | bash $x", "a b", "piped into a command that reads its input as code"),
    ("bash $opts '{v}'", "a b", "after one only known when the script runs"),
    ("sed $opts '{v}' f", "a b", "after one only known when the script runs"),
    ("python {v} x", "-c", "an option or the script of 'python'"),
    ("x=$(cat <<EOF\n{v}\nEOF\n)", ")\ntouch y\n(", "in a here-document inside (...) or $(...)"),
    ("X+=1 sh -c '{v}'", "a;b", "the code sh -c runs"),
    ('bash -ec "echo {v}"', "a;b", "the code bash -ec runs"),
    ("python3 -c 'print(\"{v}\")'", 'a")', "the code python -c runs"),
    ("perl -e 'print \"{v}\"'", 'a"; system("x', "the code perl -e runs"),
    ("eval echo {v}", "a;b", "'eval'"),
    ("trap 'echo {v}' EXIT", "a;b", "'trap'"),
    ("xargs -I{{}} sh -c {v}", "a b", "'xargs'"),
    ("sudo {v}", "a b", "'sudo'"),
    ("find . -exec {v} ;", "a b", "'find'"),
    ("awk '{v}' file", "BEGIN{system(1)}", "the program text of 'awk'"),
    ("sed -e '{v}' file", "1e id", "the program sed -e runs"),
    ("root -b -q 'plot.C(\"{v}\")'", 'a"); gSystem->Exec("x', "'root'"),
    ("echo {v} | sh", "a b", "piped into a command that reads its input as code"),
    ("python -W ignore -c \"print('{v}')\"", "a')", "the code python -c runs"),
    ("python -W ignore <<EOF\nprint('{v}')\nEOF", "a')", "input of a command that may read it as code"),
    ("timeout {v} python x.py", "6 0", "the duration given to 'timeout'"),
    ("cat <<EOF\n$(echo {v})\nEOF", "a; b", "after a substitution in an unquoted here-document"),
    ("cat <<EOF\n`date` {v}\nEOF", "a; b", "after a substitution in an unquoted here-document"),
    ("a[{v}]=1", "y", "in an array subscript"),
    ("read 'x' a[{v}]", "y", "in an array subscript"),
    ("echo ${{x:{v}}}", "y", "in a subscript or offset inside ${...}"),
    ("echo ${{x:1:{v}}}", "y", "in a subscript or offset inside ${...}"),
    ("echo ${{a[{v}]}}", "y", "in a subscript or offset inside ${...}"),
    ("declare -n ref={v}", "a[$(x)]", "a variable name a reference points to"),
    ("coproc {v}", "a b", "'coproc'"),
    # groups: what is inside a { } / ( ) / if / while piped into code is input of that code
    ("{{ echo {v}; }} | sh", "a b", "piped into a command that reads its input as code"),
    ("( echo {v} ) | sh", "a b", "piped into a command that reads its input as code"),
    ("if true; then echo {v}; fi | bash", "a b", "piped into a command that reads its input as code"),
    ("echo {v} | while read l; do eval $l; done", "a b", "piped into a command that reads its input as code"),
    # values kept in variables: restricted by where the variable is expanded later
    ('x="{v}"; echo "$x" | sh', "a b", "kept in $x, then used in this position: a value piped"),
    ("n={v}; echo $((n + 1))", "a[$(x)]", "kept in $n, then used in this position: in arithmetic"),
    ("n={v}; echo $(($n + 1))", "a[$(x)]", "kept in $n, then used in this position: in arithmetic"),
    ("x={v}; $x", "a b", "kept in $x, then used in this position: the command name"),
    ('x={v}; y=$x; eval "$y"', "a b", "kept in $x, then used in this position: kept in $y"),
    ("for i in {v}; do echo $((i)); done", "y", "kept in $i, then used in this position: in arithmetic"),
    ("x={v}; echo ${{!x}}", "a[$(x)]", "kept in $x, then used in this position: as the name of a variable"),
    ("read x <<< {v}; echo $((x))", "y", "kept in $x, then used in this position: in arithmetic"),
    ("x={v}; [[ $x -eq 1 ]]", "y", "kept in $x, then used in this position: an arithmetic comparison"),
    ('x={v}; python3 /s/run.py "$x" | sh', "a b", "kept in $x, then used in this position: a value piped"),
    ("n=$(echo {v}); echo $((n + 1))", "y", "kept in $n, then used in this position: in arithmetic"),
    ("n=$(cat <<< {v}); echo $((n + 1))", "y", "kept in $n, then used in this position: in arithmetic"),
    ("x={v}; echo `echo $x`", "a b", "kept in $x, then used in this position: inside backticks"),
    ("export X={v}; echo ${{Y:$X}}", "y", "kept in $X, then used in this position: in a subscript or offset"),
    ("echo {v} |\n  python", "a b", "piped into a command that reads its input as code"),
    ("printf %s {v} | xargs rm", "a b", "piped into a command that reads its input as code"),
    ("python3 <<EOF\nprint('{v}')\nEOF", "a'b", "input of a command that may read it as code"),
    ("sh <<< {v}", "a b", "input of a command that may read it as code"),
    ("while read l; do :; done <<EOF\n{v}\nEOF", "a b", "input of a command that may read it as code"),
    ("source <(echo {v})", "a b", "inside a process substitution"),
    ("cat <<{v}\nx\nEOF", "EOF", "in a here-document's delimiter"),
    ("cat <<EOF\nE{v}\nEOF", "OF", "in a here-document"),
    ("echo \\{v}", "a b", "right after a backslash or a $"),
    ("echo ${v}", "a b", "right after a backslash or a $"),
    ('echo "\\{v}"', "$(x)", "right after a backslash or a $"),
    ("x=$(case a in a) echo;; esac); echo {v}", "a b", "after a 'case' inside parentheses"),
    ("echo {v}", "a\0b", "contains a NUL character"),
]


@pytest.mark.parametrize(("template", "value", "expected"), ACCEPTED)
def test_values_in_data_positions_are_quoted_for_their_place(template, value, expected):
    assert interpolate(template, {"v": value}) == expected


@pytest.mark.parametrize(("template", "value", "position"), REFUSED)
def test_values_where_the_shell_reads_more_than_data_must_be_plain(template, value, position):
    with pytest.raises(SpecError) as refused:
        interpolate(template, {"v": value}, where="stage 's' step s")
    message = str(refused.value)
    assert message.startswith("stage 's' step s: parameter 'v' (line ") and "\n" not in message
    assert position in message
    assert "--unsafe-no-quoting" in message


#: positions that take some value (not a here-document's delimiter, not a value with NUL)
TAKES_PLAIN = [case for case in REFUSED if not any(w in case[2] for w in ("NUL", "delimiter", "here-document"))]


@pytest.mark.parametrize(("template", "value", "position"), TAKES_PLAIN)
def test_the_same_positions_take_plain_values(template, value, position):
    numeric = ("arithmetic", "'let'", "integer", "subscript")
    plain = "42" if any(word in position for word in numeric) else "plain_value"
    assert plain in interpolate(template, {"v": plain})


def test_a_template_is_lexed_once_and_each_value_still_judged_on_its_own(monkeypatch):
    """Every step of a stage fills the same template: its lexing is kept, never what a value made of it."""
    from mltoolkit.yadage.packtivity import shell

    lexed: list[str] = []
    real = shell.lex_shell
    monkeypatch.setattr(shell, "lex_shell", lambda text, classify: lexed.append(text) or real(text, classify))
    shell._lexed.cache_clear()
    template = "X=1 ; eval {v}; cat <<EOF\n{v}\nEOF"
    assert interpolate(template, {"v": "plain"}) == "X=1 ; eval plain; cat <<EOF\nplain\nEOF"
    with pytest.raises(SpecError, match="parameter 'v'"):
        interpolate(template, {"v": "a; rm -rf x"})
    assert interpolate(template, {"v": "plain2"}) == "X=1 ; eval plain2; cat <<EOF\nplain2\nEOF"
    assert len(lexed) == 1
    shell._lexed.cache_clear()


def test_a_cmd_is_read_by_the_same_rules(make_step, tmp_path):
    step = make_step("printf '%s|' {v} \"{v}\" '{v}' > out; {w} >/dev/null 2>&1; true")
    run_step(step, {"v": "a'b\"c $(x)", "w": "true"}, tmp_path / "s")
    assert (tmp_path / "s" / "out").read_text() == "a'b\"c $(x)|" * 3
    with pytest.raises(SpecError, match=r"parameter 'w' \(line 1, the command name\)"):
        run_step(step, {"v": "a", "w": "a b"}, tmp_path / "t")
    assert not (tmp_path / "t" / "_packtivity").exists()


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
    with pytest.raises(SpecError, match=r"makes the line 'EOF', which would end the here-document early"):
        run_step(step, {"payload": "a\nEOF\ntouch x"}, tmp_path / "step", name="heredoc")
