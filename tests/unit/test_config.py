"""Settings: flags > environment > TOML file > defaults, and one-line errors naming the
option; the cluster secret's sources and the local secret; the command line's errors."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from aiospark import cli, security
from aiospark.config import OPTIONS, ConfigError, options_for, resolve
from aiospark.errors import ClusterError

MASTER = {"master": "aiospark://10.0.0.5:7077"}


def write(path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_flags_win_over_variables_over_the_file_over_defaults(tmp_path):
    file = write(tmp_path / "a.toml", 'cores = 3\nmemory = "1g"\nheartbeat_interval = 2\n'
                 '[worker]\nmemory = "2g"\n')
    env = {"AIOSPARK_CONFIG": file, "AIOSPARK_WORKER_CORES": "5"}
    settings = resolve("worker", {**MASTER, "cores": "7"}, env)
    assert (settings.cores, settings.source("cores")) == (7, "flag")
    settings = resolve("worker", MASTER, env)
    assert (settings.cores, settings.label("cores")) == (5, "AIOSPARK_WORKER_CORES")
    # The [worker] table wins over the top level; both over the default.
    assert (settings.memory, settings.source("memory")) == (2 << 30, "file")
    assert settings.label("memory") == f"memory in [worker] of {file}"
    assert settings.heartbeat_interval == 2.0
    assert (settings.drain_timeout, settings.source("drain_timeout")) == (60.0, "default")


def test_each_command_has_its_own_defaults_and_a_shared_file_serves_every_role(tmp_path):
    file = write(tmp_path / "c.toml", 'master_url = "aiospark://node-1"\ncores = 2\n'
                 "[master]\nport = 9000\n[shuffle-service]\nport = 9001\n")
    env = {"AIOSPARK_CONFIG": file}
    assert resolve("master", {}, env).port == 9000
    assert resolve("shuffle-service", {}, env).port == 9001
    assert resolve("worker", {}, env).port == 0
    assert resolve("worker", {}, env).master == "aiospark://node-1:7077"
    assert resolve("status", {}, env).master == "aiospark://node-1:7077"  # cores: ignored
    assert resolve("status", {}, {}).master == "aiospark://127.0.0.1:7077"
    assert resolve("shell", {}, {}).master is None  # an embedded cluster
    assert resolve("master", {}, {}).log_level == "INFO"
    assert resolve("status", {}, {}).log_level == "WARNING"


@pytest.mark.parametrize(("command", "flags", "env", "where", "message"), [
    ("worker", {**MASTER, "memory": "lots"}, {}, "--memory", "bad memory size 'lots'"),
    ("worker", {**MASTER, "cores": "0"}, {}, "--cores", "must be at least 1, got 0"),
    ("worker", {"master": "10.0.0.5:7077"}, {}, "--master", "the scheme must be"),
    ("worker", {"master": "aiospark://:7077"}, {}, "--master", "names no host"),
    ("worker", {"master": "aiospark://h:99999"}, {}, "--master", "needs a valid port"),
    ("worker", MASTER, {"AIOSPARK_SHUFFLE_URL": "http://h/x"}, "AIOSPARK_SHUFFLE_URL",
     "only scheme, host and port"),
    ("master", {"port": "http"}, {}, "--port", "expected an integer"),
    ("master", {"host": "http://0.0.0.0"}, {}, "--host", "expected a host name"),
    ("master", {"worker_timeout": "-1"}, {}, "--worker-timeout", "more than 0 seconds"),
    ("master", {}, {"AIOSPARK_LOG_LEVEL": "loud"}, "AIOSPARK_LOG_LEVEL", "unknown log level"),
    ("status", {"log_format": "xml"}, {}, "--log-format", "unknown log format"),
])
def test_a_bad_value_is_one_error_naming_its_source(command, flags, env, where, message):
    with pytest.raises(ConfigError) as caught:
        resolve(command, flags, env)
    assert caught.value.where == where
    assert str(caught.value).startswith(f"{where}: ") and message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("text", "where", "message"), [
    ("corse = 2\n", "corse in ", "unknown key"),
    ("[wokrer]\ncores = 2\n", "[wokrer] in ", "unknown table"),
    ("[worker]\nworker_timeout = 3\n", "worker_timeout in [worker] of ", "has no such setting"),
    ("[worker]\ncores = 'two'\n", "cores in [worker] of ", "expected an integer"),
    ("[worker]\ncores = true\n", "cores in [worker] of ", "expected an integer"),
    ("cores = [\n", "--config", "is not valid TOML"),
])
def test_a_bad_file_is_refused_naming_the_key_and_the_file(tmp_path, text, where, message):
    file = write(tmp_path / "bad.toml", text)
    with pytest.raises(ConfigError) as caught:
        resolve("worker", {**MASTER, "config": file}, {})
    assert caught.value.where.startswith(where) and message in str(caught.value)
    if where != "--config":
        assert file in caught.value.where


def test_a_missing_config_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match=r"^AIOSPARK_CONFIG: cannot read .*nope\.toml"):
        resolve("master", {}, {"AIOSPARK_CONFIG": str(tmp_path / "nope.toml")})


def test_switches_come_from_flags_or_the_file(tmp_path):
    assert resolve("status", {"json": True}, {}).json is True
    assert resolve("status", {}, {}).json is False
    file = write(tmp_path / "s.toml", "[shuffle-service]\ncleanup = true\n")
    assert resolve("shuffle-service", {"config": file}, {}).cleanup is True
    bad = write(tmp_path / "b.toml", "[shuffle-service]\ncleanup = 'yes'\n")
    with pytest.raises(ConfigError, match="expected true or false"):
        resolve("shuffle-service", {"config": bad}, {})


def test_every_option_is_documented():
    text = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text()
    for option in OPTIONS:
        if option.internal:
            continue
        assert f"`{option.flag}`" in text, option.flag
        if option.env:
            assert f"`{option.env}`" in text, option.env
        if option.key != "config":
            assert f"`{option.key}`" in text, option.key
    for command in ("master", "worker", "shuffle-service", "local", "submit", "status", "shell"):
        assert f"aiospark {command}" in text
        assert options_for(command)


# -- the secret -----------------------------------------------------------------------------


def test_the_secret_comes_from_the_flag_then_the_variables_then_the_file(tmp_path):
    flag_file = write(tmp_path / "flag", "from-flag\n")
    env_file = write(tmp_path / "env", "from-env-file")
    config = write(tmp_path / "c.toml", f'secret_file = "{tmp_path / "toml"}"\n')
    write(tmp_path / "toml", "from-toml")
    for path in (flag_file, env_file, str(tmp_path / "toml")):
        os.chmod(path, 0o600)
    env = {"AIOSPARK_SECRET": "from-env", "AIOSPARK_SECRET_FILE": env_file}

    def secret(flags, env):
        return security.configured_secret(resolve("master", flags, env), env)

    assert secret({"secret_file": flag_file}, env).value == "from-flag"
    assert secret({}, env).value == "from-env"
    assert secret({}, {"AIOSPARK_SECRET_FILE": env_file}).value == "from-env-file"
    found = secret({"config": config}, {})
    assert (found.value, found.file) == ("from-toml", str(tmp_path / "toml"))
    assert secret({}, {}) is None


def test_a_missing_or_empty_secret_file_is_an_error_naming_the_option(tmp_path):
    settings = resolve("master", {"secret_file": str(tmp_path / "nope")}, {})
    with pytest.raises(ConfigError, match=r"^--secret-file: cannot read the secret file"):
        security.configured_secret(settings, {})
    empty = write(tmp_path / "empty", "\n")
    settings = resolve("master", {}, {"AIOSPARK_SECRET_FILE": empty})
    with pytest.raises(ConfigError, match=r"^AIOSPARK_SECRET_FILE: the secret file .* is empty"):
        security.configured_secret(settings, {"AIOSPARK_SECRET_FILE": empty})


def test_a_secret_file_every_user_can_read_is_warned_about(tmp_path, caplog):
    file = write(tmp_path / "secret", "s3cr3t")
    os.chmod(file, 0o644)
    assert security.read_secret_file(file, "--secret-file") == "s3cr3t"
    assert "can be read by every user" in caplog.text and "chmod 600" in caplog.text
    caplog.clear()
    os.chmod(file, 0o600)
    security.read_secret_file(file, "--secret-file")
    assert caplog.text == ""


def test_listening_beyond_loopback_needs_a_configured_secret(tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    with pytest.raises(ConfigError, match=r"^--host: refusing to listen on 0\.0\.0\.0"):
        security.server_secret(resolve("master", {"host": "0.0.0.0"}, env), "0.0.0.0", env)
    assert not (tmp_path / "aiospark").exists()
    given = {**env, "AIOSPARK_SECRET": "s"}
    assert security.server_secret(resolve("master", {}, given), "0.0.0.0", given).value == "s"
    local = security.server_secret(resolve("master", {}, env), "127.0.0.1", env)
    assert not local.configured and local.file == str(tmp_path / "aiospark" / "secret")
    with pytest.raises(ConfigError, match="needs the cluster secret"):
        security.client_secret(resolve("status", {}, env), "http://10.0.0.5:7077", env)
    assert security.client_secret(resolve("status", {}, env), "http://[::1]:7077",
                                  env).value == local.value


def test_a_driver_finds_the_secret_as_the_commands_do_from_the_environment(tmp_path,
                                                                           monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # for ~ in AIOSPARK_SECRET_FILE
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    file = write(tmp_path / "secret", "from-file\n")
    os.chmod(file, 0o600)

    def driver(extra, url="http://10.0.0.5:7077"):
        return security.client_secret(None, url, {**env, **extra})

    assert driver({"AIOSPARK_SECRET": " from-env\n", "AIOSPARK_SECRET_FILE": file}).value \
        == "from-env"
    found = driver({"AIOSPARK_SECRET_FILE": "~/secret"})
    assert (found.value, found.source, found.file) == ("from-file", "AIOSPARK_SECRET_FILE", file)
    for bad, error in ((str(tmp_path / "nope"), "cannot read"), (write(tmp_path / "e", ""),
                                                                  "is empty")):
        with pytest.raises(ConfigError, match=f"^AIOSPARK_SECRET_FILE: .*{error}"):
            driver({"AIOSPARK_SECRET_FILE": bad})
    # Nothing configured: the local secret for a master on loopback, if there is one;
    # a driver never makes it.
    with pytest.raises(ClusterError, match=r"needs the cluster secret \(nor is there a local"):
        driver({}, "http://127.0.0.1:7077")
    assert not (tmp_path / "config").exists()
    local = security.local_secret(env)
    assert driver({}, "http://127.0.0.1:7077") == local
    with pytest.raises(ClusterError, match=r"needs the cluster secret: pass secret="):
        driver({})


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_the_local_secret_is_private_and_the_same_for_processes_racing_to_make_it(tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    found: list[str] = []
    threads = [threading.Thread(target=lambda: found.append(security.local_secret(env).value))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(found)) == 1 and len(found[0]) >= 32
    file = tmp_path / "aiospark" / "secret"
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert stat.S_IMODE(file.parent.stat().st_mode) == 0o700
    assert sorted(p.name for p in file.parent.iterdir()) == ["secret"]  # no drafts left


# -- the command line -----------------------------------------------------------------------


def run_cli(argv, capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    out, err = capsys.readouterr()
    return exited.value.code, out, err


@pytest.mark.parametrize(("argv", "option"), [
    (["worker", "--master", "aiospark://127.0.0.1", "--memory", "lots"], "--memory"),
    (["worker", "--master", "localhost:7077"], "--master"),
    (["worker"], "--master"),
    (["worker", "--master", "aiospark://127.0.0.1", "--shuffle-dir", "/x"], "--shuffle-dir"),
    (["master", "--secret-file", "/nonexistent/secret"], "--secret-file"),
    (["master", "--host", "0.0.0.0", "--port", "0"], "--host"),
    (["status", "--master", "aiospark://10.9.8.7"], "--secret-file"),
    (["local", "--workers", "none"], "--workers"),
    (["master", "--no-such-flag"], "--no-such-flag"),
    (["submit"], "APP"),
])
def test_bad_command_lines_exit_2_with_one_line_naming_the_option(
    argv, option, capsys, monkeypatch, tmp_path
):
    for name in [n for n in os.environ if n.startswith("AIOSPARK_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    code, out, err = run_cli(argv, capsys)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and option in err, err
    assert err.startswith("aiospark")


@pytest.mark.parametrize("command", ["master", "worker", "shuffle-service", "local", "submit",
                                     "status", "shell"])
def test_every_command_has_help_listing_its_options(command, capsys):
    code, out, _ = run_cli([command, "--help"], capsys)
    assert code == 0 and f"usage: aiospark {command}" in out
    for option in options_for(command):
        if not option.internal:
            assert option.flag in out
    assert "--fd" not in out and "--parent-pid" not in out
