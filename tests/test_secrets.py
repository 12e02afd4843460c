"""The .env file, env_file, and secrets that dockyard prints as ******.

Engine-free but for the last test, which runs a container and reads its environment.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import textwrap

import pytest
from invoke import Context

from conftest import DEMO_APP, REPO, assert_clean_failure, inv, load_error, write_project
from dockyard import builder, config, engine, env_files
from dockyard.engine import buildkit
from test_buildkit import log, timestamp, trace, vertex
from dockyard.containers import RunOverrides, settings_hash
from dockyard.errors import DockyardError
from dockyard.masking import MASK
from dockyard.tasks.core import Target, bind, task_options

SECRET = "hunter2-pw"  # in .env: a secret by [project] secrets
TOKEN = "s3cr3t-token"  # in an env_file: a secret by default

# The app image: its password from .env through ${DB_PASSWORD}, more from an env_file.
PROJECT = DEMO_APP.replace('name = "demo"', 'name = "demo"\nsecrets = ["DB_PASSWORD"]') + """
build_args = { DB_PASSWORD = "${DB_PASSWORD}" }

[images.app.run]
ports = ["8000:8000"]
env_file = "app.env"
environment = { DATABASE_URL = "postgres://app:${DB_PASSWORD}@db/app", DB_PASSWORD = "${DB_PASSWORD}", \
MODE = "${MODE}" }
"""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in ("DB_PASSWORD", "MODE", "DEMO_ONLY_IN_DOTENV"):
        monkeypatch.delenv(name, raising=False)
    yield
    config.load.cache_clear()


def demo(tmp_path, toml: str = PROJECT, dotenv: str | None = f"DB_PASSWORD={SECRET}\nMODE=dotenv\n",
         env_file: str = f"TOKEN={TOKEN}\nPORT=8000\n"):
    path = write_project(tmp_path, toml)
    shutil.copy(REPO / "tasks.py", tmp_path / "tasks.py")  # for `inv` in it
    if dotenv is not None:
        (tmp_path / ".env").write_text(dotenv)
    (tmp_path / "app.env").write_text(env_file)
    return path


# -- reading KEY=VALUE files as Compose does --------------------------------------------

def test_env_file_lines_are_read_as_compose_reads_them():
    text = textwrap.dedent("""\
        # a comment, then a blank line

        PLAIN=value
        export EXPORTED=yes
          SPACED = around the equals sign  
        EMPTY=
        COMMENTED=value # a comment after a blank
        HASH=a#b
        SINGLE='kept $literally \\n # too'
        DOUBLE="line\\nbreak \\"quoted\\" \\\\ $HOME" # comment
        export_LIKE=name
        PLAIN=a later line wins
        """)
    assert env_files.parse(text) == {
        "PLAIN": "a later line wins", "EXPORTED": "yes", "SPACED": "around the equals sign", "EMPTY": "",
        "COMMENTED": "value", "HASH": "a#b", "SINGLE": "kept $literally \\n # too",
        "DOUBLE": 'line\nbreak "quoted" \\ $HOME', "export_LIKE": "name",
    }


@pytest.mark.parametrize("line", ["NO_EQUALS_SIGN", "1ST=digit first", "two words=x", "=value",
                                  "OPEN='not closed", 'OPEN="not closed', "AFTER='quoted' text"])
def test_a_malformed_line_names_its_number_and_does_not_echo_it(line):
    with pytest.raises(env_files.EnvFileError) as caught:
        env_files.parse(f"GOOD=1\n{line}\n")
    message = str(caught.value)
    assert message.startswith("line 2: ") and line not in message and "not closed" not in message


# -- .env: values for ${VAR} -------------------------------------------------------------

def test_dotenv_gives_interpolation_its_values(tmp_path):
    app = config.load(demo(tmp_path)).image("app")
    environment = dict(app.run.environment)
    assert environment["DB_PASSWORD"] == SECRET and environment["MODE"] == "dotenv"
    assert environment["DATABASE_URL"] == f"postgres://app:{SECRET}@db/app"
    assert dict(app.build_args) == {"DB_PASSWORD": SECRET}


def test_the_process_environment_wins_over_dotenv(tmp_path, monkeypatch):
    monkeypatch.setenv("MODE", "shell")
    monkeypatch.setenv("DB_PASSWORD", "")  # set, though empty: still the shell's
    app = config.load(demo(tmp_path)).image("app")
    assert dict(app.run.environment)["MODE"] == "shell"
    assert dict(app.run.environment)["DB_PASSWORD"] == ""


def test_no_dotenv_is_fine(tmp_path):
    toml = PROJECT.replace("${DB_PASSWORD}", "${DB_PASSWORD:-none}").replace("${MODE}", "${MODE:-default}")
    assert dict(config.load(demo(tmp_path, toml, dotenv=None)).image("app").run.environment)["MODE"] == "default"


def test_dotenv_does_not_reach_the_container(tmp_path):
    dotenv = f"DB_PASSWORD={SECRET}\nMODE=dotenv\nDEMO_ONLY_IN_DOTENV=1\n"
    assert "DEMO_ONLY_IN_DOTENV" not in dict(config.load(demo(tmp_path, dotenv=dotenv)).image("app").run.environment)


def test_a_malformed_dotenv_line_is_one_error_naming_the_file_and_line(tmp_path):
    path = demo(tmp_path, dotenv=f"MODE=dotenv\nDB_PASSWORD {SECRET}\n")
    with pytest.raises(DockyardError) as caught:
        config.load(path)
    assert str(caught.value).startswith(f"{tmp_path / '.env'}: line 2: expected KEY=VALUE")
    assert SECRET not in str(caught.value)


def test_a_dotenv_that_is_not_a_regular_file_is_refused_not_read(tmp_path):
    path = demo(tmp_path, dotenv=None)
    os.mkfifo(tmp_path / ".env")  # no writer: reading it would wait for ever
    with pytest.raises(DockyardError) as caught:
        config.load(path)
    assert str(caught.value) == f"{tmp_path / '.env'}: a FIFO, not a regular file; dockyard reads only regular files here"


# -- env_file: variables for the container -----------------------------------------------

def test_env_file_variables_reach_the_environment_and_the_table_wins(tmp_path):
    toml = PROJECT.replace('env_file = "app.env"', 'env_file = ["app.env", "conf/more.env"]')
    path = demo(tmp_path, toml, env_file=f"TOKEN={TOKEN}\nPORT=8000\nMODE=from-file\n")
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "more.env").write_text("PORT=9000\n")
    run = config.load(path).image("app").run
    environment = dict(run.environment)
    assert environment["TOKEN"] == TOKEN
    assert environment["PORT"] == "9000"  # a later file wins
    assert environment["MODE"] == "dotenv"  # the environment table wins over the files
    assert run.env_file == (tmp_path / "app.env", tmp_path / "conf" / "more.env")


@pytest.mark.parametrize("value, where", [('"missing.env"', "images.app.run.env_file"),
                                          ('["app.env", "missing.env"]', "images.app.run.env_file[1]")])
def test_a_missing_env_file_is_one_line_naming_the_key_and_the_file(tmp_path, value, where):
    (tmp_path / "app.env").write_text("A=1\n")
    message = load_error(tmp_path, DEMO_APP + f"\n[images.app.run]\nenv_file = {value}\n")
    assert message.endswith(f": {where}: the env file {tmp_path / 'missing.env'} does not exist")


def test_an_env_file_under_a_home_that_does_not_exist_is_a_config_error(tmp_path):
    message = load_error(tmp_path, DEMO_APP + '\n[images.app.run]\nenv_file = "~no-such-user-dockyard/app.env"\n')
    assert message.endswith(": images.app.run.env_file: cannot expand '~no-such-user-dockyard/app.env' "
                            "to a home directory")


def test_a_malformed_env_file_line_names_the_key_the_file_and_the_line(tmp_path):
    (tmp_path / "app.env").write_text(f"TOKEN={TOKEN}\nPASSWORD '{SECRET}'\n")
    message = load_error(tmp_path, DEMO_APP + '\n[images.app.run]\nenv_file = "app.env"\n')
    assert f"images.app.run.env_file: {tmp_path / 'app.env'}: line 2: expected KEY=VALUE" in message
    assert SECRET not in message


def test_a_changed_env_file_value_changes_the_settings_hash(tmp_path):
    project = config.load(demo(tmp_path))
    app = project.image("app")
    config.load.cache_clear()
    changed = config.load(demo(tmp_path, env_file=f"TOKEN=another-{TOKEN}\nPORT=8000\n"))
    moved = dataclasses.replace(app, run=dataclasses.replace(app.run, env_file=(tmp_path / "elsewhere.env",)))

    def hash_of(project, spec):
        return settings_hash(project, spec, RunOverrides(), ports=[], interactive=False)

    assert hash_of(changed, changed.image("app")) != hash_of(project, app)
    assert hash_of(project, moved) == hash_of(project, app)  # the values count, not where they were


# -- what is secret, and masked ----------------------------------------------------------

def test_the_secret_names_and_values(tmp_path):
    project = config.load(demo(tmp_path))
    assert project.secrets == ("DB_PASSWORD",)
    assert project.image("app").run.secrets == {"TOKEN", "PORT", "DB_PASSWORD"}
    assert project.masked_values == {SECRET}  # an env file's values are masked by name only


def test_config_masks_secrets_in_text_and_json(tmp_path):
    demo(tmp_path)
    shown = inv(tmp_path, "config")
    as_json = inv(tmp_path, "config", "--json")
    for result in (shown, as_json):
        assert result.returncode == 0, result.stderr
        assert SECRET not in result.stdout + result.stderr and TOKEN not in result.stdout + result.stderr
    assert f'build_args = {{"DB_PASSWORD": "{MASK}"}}' in shown.stdout
    image = json.loads(as_json.stdout)["images"]["app"]
    assert image["build_args"] == {"DB_PASSWORD": MASK}
    assert image["run"]["environment"] == {
        "TOKEN": MASK, "PORT": MASK, "DATABASE_URL": f"postgres://app:{MASK}@db/app", "DB_PASSWORD": MASK,
        "MODE": "dotenv"}
    assert image["run"]["env_file"] == [str(tmp_path / "app.env")]
    # An env file's value elsewhere is left alone: PORT=8000 is masked as PORT's value only.
    assert image["run"]["ports"] == ["127.0.0.1:8000->8000/tcp"]


def test_an_env_file_in_a_build_context_is_warned_of_until_dockerignore_leaves_it_out(tmp_path):
    toml = PROJECT.replace('dir = "app"', 'dir = "."').replace('env_file = "app.env"', 'env_file = "conf/app.env"')
    path = write_project(tmp_path, toml, {".": "FROM demo/base\n"})
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "app.env").write_text(f"TOKEN={TOKEN}\n")
    (tmp_path / ".env").write_text(f"DB_PASSWORD={SECRET}\nMODE=x\n")
    warned = [line for line in config.warnings(config.load(path)) if "env file" in line]
    assert warned == [f"images.app.dir: its build context holds the env file {tmp_path / name}, with secret values: "
                      f"the engine gets it, and COPY can put it in the image; add it to {tmp_path / '.dockerignore'}"
                      for name in (".env", "conf/app.env")]
    (tmp_path / ".dockerignore").write_text("*.env\n**/*.env\n")
    config.load.cache_clear()
    assert not [line for line in config.warnings(config.load(path)) if "env file" in line]


def test_a_load_error_that_quotes_a_setting_masks_the_secret(tmp_path):
    toml = PROJECT.replace("[images.app.run]", '[images.app.run]\nrestart = "${DB_PASSWORD}"')
    demo(tmp_path, toml)
    result = inv(tmp_path, "config")
    assert_clean_failure(result, f"images.app.run.restart: '{MASK}' is not a restart policy")
    assert SECRET not in result.stderr


def test_a_task_error_that_echoes_a_secret_is_masked(tmp_path):
    path = demo(tmp_path)

    @task_options()
    def echoes(c, target):
        raise DockyardError(f"the engine refused DATABASE_URL=postgres://app:{SECRET}@db/app", code=3)

    with pytest.raises(DockyardError) as caught:
        bind(echoes, Target(path, "app"))(Context())
    assert str(caught.value) == f"the engine refused DATABASE_URL=postgres://app:{MASK}@db/app"
    assert caught.value.code == 3


def test_build_output_masks_a_secret_build_arg(tmp_path, monkeypatch):
    project = config.load(demo(tmp_path))
    chunks = [{"stream": "Step 2/3 : RUN echo $DB_PASSWORD\n"}, {"stream": f"{SECRET}\n"},
              {"aux": {"ID": "sha256:" + "a" * 64}}]
    monkeypatch.setattr(engine, "build_stream", lambda context, params, started: iter(chunks))
    output = io.StringIO()
    session = builder._Session(project, builder.BuildOptions(), builder.Output(output))
    builder._stream_build(session, project.image("app"), context=None, labels=None, with_buildkit=False)
    assert SECRET not in output.getvalue() and f"app | {MASK}" in output.getvalue()
    chunks[1:] = [{"error": f"exit {SECRET}", "errorDetail": {"message": f"exit {SECRET}"}}]
    with pytest.raises(DockyardError) as caught:
        builder._stream_build(session, project.image("app"), context=None, labels=None, with_buildkit=False)
    assert str(caught.value).endswith(f"failed: exit {MASK}")

    # BuildKit's trace: a step's output, and the failure that quotes it.
    step = "sha256:" + "b" * 64
    chunks[:] = [{"id": buildkit.TRACE, "aux": trace(vertex(step, "[2/2] RUN echo $DB_PASSWORD", (5, timestamp(1))),
                                                      log(step, f"{SECRET}\n".encode()))},
                 {"id": buildkit.TRACE, "aux": trace(vertex(step, "[2/2] RUN echo $DB_PASSWORD", (5, timestamp(1)),
                                                             (7, f"exit {SECRET}")))},
                 {"error": f"exit {SECRET}", "errorDetail": {"message": f"exit {SECRET}"}}]
    output.truncate(0)
    with pytest.raises(DockyardError) as caught:
        builder._stream_build(session, project.image("app"), context=None, labels={}, with_buildkit=True)
    assert SECRET not in output.getvalue() + str(caught.value) and f"#1 {MASK}" in output.getvalue()


@pytest.mark.integration
def test_an_env_file_value_reaches_the_container_and_no_output_shows_it(project):
    (project.root / "api.env").write_text(f"# the api's secrets\nexport API_TOKEN='{TOKEN}'\n")
    text = project.config.read_text().replace('[images.api.run]\n', '[images.api.run]\nenv_file = "api.env"\n')
    project.config.write_text(text)
    outputs = [project.inv("config"), project.inv("config", "--json"),
               project.inv("api.run", "--quiet-build", "--detach"),
               project.inv("api.run", "--no-build", "--detach", "--json"),
               project.inv("status"), project.inv("status", "--json"), project.inv("api.status"),
               project.inv("up", "--only", "api", "--json")]
    for result in outputs:
        assert TOKEN not in result.stdout + result.stderr, result.args
    assert MASK in outputs[0].stdout
    assert project.inv("api.exec", "echo token=$API_TOKEN").stdout.strip() == f"token={TOKEN}"
    assert json.loads(outputs[-1].stdout)[0]["action"] == "unchanged"  # the same value, the same hash
    # A changed value in the file makes `up` replace the container, which gets the new one.
    (project.root / "api.env").write_text(f"API_TOKEN=new-{TOKEN}\n")
    replaced = project.inv("up", "--only", "api", "--json")
    assert TOKEN not in replaced.stdout + replaced.stderr
    assert json.loads(replaced.stdout)[0]["reason"] == "settings changed"
    assert project.inv("api.exec", "echo token=$API_TOKEN").stdout.strip() == f"token=new-{TOKEN}"
