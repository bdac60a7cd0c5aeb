"""What ``aiospark shell`` shows for an error in a typed line: the line's frames, as the plain
Python REPL does, not the console's machinery (issue 16, item 9)."""

from __future__ import annotations

import pytest

from tests.cluster.test_cli_commands import run, user_env

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(180)]


def test_shell_tracebacks_show_only_the_users_frames(tmp_path):
    script = "\n".join([
        "undefined_name",
        "def half(x):",
        "    return x / 0",
        "",
        "half(1)",
        "await asyncio.sleep(0, result=also_undefined)",
        "await ctx.parallelize([1, 2], 2).map(lambda x: x // 0).collect()",
        "print('still here')",
        "",
    ])
    done = run(["shell", "--workers", "1"], user_env(tmp_path), stdin=script)
    assert done.returncode == 0, done.stderr
    err = done.stderr
    assert "still here" in done.stdout
    assert (
        "Traceback (most recent call last):\n"
        '  File "<aiospark shell>", line 1, in <module>\n'
        "NameError: name 'undefined_name' is not defined\n"
    ) in err, err
    assert (
        "Traceback (most recent call last):\n"
        '  File "<aiospark shell>", line 1, in <module>\n'
        '  File "<aiospark shell>", line 2, in half\n'
        "ZeroDivisionError: division by zero\n"
    ) in err, err
    assert "NameError: name 'also_undefined' is not defined" in err, err
    assert "concurrent/futures" not in err and "commands/shell.py" not in err, err
    assert "asyncio/" not in err, err
    # The job's remote traceback names the shell's line, not "<dynamic-code>".
    assert '"<aiospark shell>", line 1, in <lambda>' in err and "<dynamic-code>" not in err, err
