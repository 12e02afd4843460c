"""The command line without an engine: listing, help, task identity, flags, pipes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO


def fresh_python(code: str, cwd: Path) -> str:
    """What `code` prints in a new interpreter, where nothing is imported yet; it must exit 0."""
    result = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_list_and_help_do_not_import_docker():
    code = (
        "import sys\n"
        "from invoke import Program, Collection\n"
        "import invoke\n"
        "program = invoke.Program(namespace=None, version='0')\n"
        "for argv in (['inv', '--list'], ['inv', '-h', 'httpd.run']):\n"
        "    try:\n"
        "        program.run(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "assert 'docker' not in sys.modules, 'docker was imported'\n"
        "assert 'requests' not in sys.modules, 'requests was imported'\n"
        "assert 'watchfiles' not in sys.modules, 'watchfiles was imported'\n"
        "print('clean')\n"
    )
    output = fresh_python(code, REPO)
    assert "httpd.run" in output and "--no-build" in output
    assert output.strip().endswith("clean")


IMAGE_TASKS = ["build", "run", "stop", "start", "restart", "logs", "shell", "exec", "status",
               "commit", "export", "import", "save", "load", "rm", "clean"]


def run_program(argv: list[str], capsys) -> tuple[int, str, str]:
    """Invoke's own program over the example's namespace, in this process (fast): exit
    code, stdout, stderr. An exception other than Invoke's exits escapes, as a traceback would."""
    from invoke import Program

    from dockyard import namespace

    program = Program(namespace=namespace(REPO / "containers.toml"), version="0")
    try:
        program.run(["inv", *argv])
        code = 0
    except SystemExit as e:
        code = e.code or 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_every_image_task_is_listed_and_documents_each_flag(capsys):
    code, listing, _ = run_program(["--list"], capsys)
    assert code == 0
    for name in IMAGE_TASKS:
        assert f"httpd.{name} " in listing
        code, text, errors = run_program(["-h", f"httpd.{name}"], capsys)
        assert code == 0, errors
        for line in text.split("Options:")[-1].splitlines():
            stripped = line.strip()
            if stripped.startswith("-"):
                # "  -p STRING, --port=STRING   Publish on ..." : every flag has its help text.
                assert "  " in stripped, f"flag without help in `inv -h httpd.{name}`: {line}"


def test_each_image_namespace_has_its_own_tasks_and_invoke_keeps_both_calls():
    from invoke import Executor
    from invoke.tasks import Call

    from dockyard import namespace

    ns = namespace(REPO / "containers.toml")
    httpd, busybox = ns.collections["httpd"].tasks["stop"], ns.collections["busybox"].tasks["stop"]
    assert httpd != busybox and hash(httpd) != hash(busybox)
    assert httpd == ns.collections["httpd"].tasks["stop"]
    executor = Executor(ns)
    calls = executor.dedupe([Call(httpd), Call(busybox), Call(httpd)])
    assert [c.task for c in calls] == [httpd, busybox]  # a genuine repeat still dedupes


def test_a_bound_task_needs_no_configuration_to_know_its_image():
    from dockyard import namespace

    ns = namespace(REPO / "containers.toml")
    task = ns.collections["httpd"].tasks["status"]
    assert task.target.key == "httpd" and task.target.path == REPO / "containers.toml"
    with pytest.raises(TypeError, match="expects a Context"):
        task("not a context")


def test_bound_tasks_take_no_flag_for_their_target(capsys):
    code, text, errors = run_program(["-h", "httpd.build"], capsys)
    assert code == 0, errors
    assert "--target" not in text and "--json" in text


def test_settings_cannot_retarget_a_task(monkeypatch, capsys):
    """INVOKE_DOCKYARD_IMAGE (the old collection key) is not a setting any more."""
    monkeypatch.setenv("INVOKE_DOCKYARD_IMAGE", "busybox")
    from dockyard import namespace

    task = namespace(REPO / "containers.toml").collections["httpd"].tasks["run"]
    assert task.target.key == "httpd"
    code, text, _ = run_program(["-h", "httpd.run"], capsys)
    assert code == 0 and "httpd.run" in text


@pytest.mark.parametrize("argv, words", [
    (["build", "--jobs", "x"], "--jobs 'x'"),
    (["build", "--jobs", "0"], "--jobs '0'"),
    (["build", "--jobs", "³"], "--jobs '³'"),
    (["build", "--only", ","], "--only: name at least one image"),
    (["httpd.run", "--attach", "--detach"], "contradict"),
    (["httpd.run", "--port", "²"], "--port '²'"),
    (["httpd.logs", "--tail", "x"], "--tail 'x'"),
    (["httpd.logs", "--tail", "²"], "--tail '²'"),
    (["httpd.stop", "--timeout", "x"], "--timeout 'x'"),
    (["httpd.run", "--env", "NOEQUALS"], "KEY=VALUE"),
])
def test_bad_flag_values_are_one_clear_line_before_any_engine_call(argv, words, capsys):
    code, _, errors = run_program(argv, capsys)
    assert code == 1 and words in errors, errors
    assert len(errors.strip().splitlines()) == 1, errors


def test_a_bad_setting_names_the_configuration_it_came_from(monkeypatch, capsys):
    monkeypatch.setenv("INVOKE_DOCKYARD_JOBS", "many")
    code, _, errors = run_program(["build"], capsys)
    assert code == 1 and "dockyard.jobs in Invoke's configuration 'many'" in errors, errors


def test_a_containers_toml_named_in_invoke_config_that_differs_is_one_clear_error(tmp_path, capsys):
    other = tmp_path / "invoke.yaml"
    other.write_text("dockyard:\n  config: /somewhere/else/containers.toml\n")
    code, _, errors = run_program(["-f", str(other), "config"], capsys)
    assert code == 1 and "dockyard.config is /somewhere/else/containers.toml" in errors
    assert f"made from {REPO / 'containers.toml'}" in errors
    assert len(errors.strip().splitlines()) == 1


def test_invoke_dockyard_config_chooses_the_file_the_namespace_is_made_from(tmp_path):
    import os

    from conftest import inv

    other = tmp_path / "other.toml"
    other.write_text((REPO / "containers.toml").read_text()
                     .replace('name = "dockyard-example"', 'name = "other-project"')
                     .replace('dir = "images/', f'outside_project = true\ndir = "{REPO}/images/'))
    env = {**os.environ, "INVOKE_DOCKYARD_CONFIG": str(other)}
    result = inv(REPO, "config", "--json", env=env)
    assert result.returncode == 0, result.stderr
    import json

    assert json.loads(result.stdout)["project"] == {"name": "other-project", "path": str(other), "external_volumes": [],
                                                    "engine": None, "registry": None, "secrets": []}


@pytest.mark.parametrize("argv", [["config"], ["config", "--json"], ["--list"], ["-h", "httpd.run"]])
def test_output_into_a_closed_pipe_ends_quietly_as_cat_does(argv):
    from conftest import inv_into_closed_pipe

    result = inv_into_closed_pipe(REPO, *argv)
    assert (result.returncode, result.stderr) == (141, "")


def test_the_docker_py_in_use_is_within_the_supported_range():
    from importlib.metadata import version

    major = int(version("docker").split(".")[0])
    assert major == 7, "the engine module relies on docker-py 7's private request methods"


def test_an_image_collection_finds_each_task_as_invoke_would_also_a_users_and_configured_ones():
    from invoke import Collection, task

    from dockyard.collection import namespace

    @task(default=True)
    def smoke_test(c):
        pass

    ns = namespace(REPO / "containers.toml")
    ns.add_collection(Collection("user_checks", smoke_test))  # names transformed: user-checks.smoke-test
    ns.collections["httpd"].add_task(smoke_test)
    ns.collections["api"].configure({"where": "api"})  # a configured collection: Invoke's own look-up
    names = ns.task_names  # primary names; a default task's collection name is an alias
    assert {"user-checks.smoke-test", "httpd.smoke-test", "httpd.build", "up"} <= set(names)
    assert "user-checks" in names["user-checks.smoke-test"]
    for name in [*names, "user-checks", "api.build"]:
        task, configuration = ns.task_with_config(name)
        assert (task, configuration) == Collection.task_with_config(ns, name)
    assert ns.task_with_config("api.build")[1]["where"] == "api"
    assert ns.task_with_config("httpd.build")[0].target.key == "httpd"


def test_inv_loads_tasks_py_with_invokes_own_collection_and_parser(tmp_path):
    """`inv` copies tasks.py's ``ns`` with Invoke's own Collection.from_module, untouched by
    dockyard, and parses with Invoke's own parser contexts; a plain tasks.py loads as ever."""
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "tasks.py").write_text("from invoke import task\n\n\n@task(help={'x': 'An x.'})\ndef t(c, x=1):\n    pass\n")
    code = (
        "import sys\n"
        "from invoke import Collection\n"
        "from invoke.loader import FilesystemLoader\n"
        "from invoke.parser import Parser, ParserContext\n"
        "from_module = Collection.__dict__['from_module']\n"
        "to_contexts = Collection.__dict__['to_contexts']\n"
        "def load(where):\n"
        "    module, _ = FilesystemLoader(start=where).load('tasks')\n"
        "    sys.modules.pop('tasks')\n"
        "    return Collection.from_module(module)\n"
        f"ns = load({str(REPO)!r})\n"
        "assert Collection.__dict__['from_module'] is from_module, 'Collection.from_module was replaced'\n"
        "assert Collection.__dict__['to_contexts'] is to_contexts, 'Collection.to_contexts was replaced'\n"
        "assert type(ns) is Collection, type(ns)\n"
        "contexts = ns.to_contexts()\n"
        "assert all(type(c) is ParserContext for c in contexts)\n"
        "parsed = Parser(contexts=contexts).parse_argv(['httpd.build', '--quiet'])\n"
        "assert parsed[0].name == 'httpd.build' and parsed[0].args['quiet'].value is True\n"
        "help_text = [c for c in contexts if c.name == 'httpd.run'][0].help_tuples()\n"
        "assert any('--no-build' in flag for flag, _ in help_text)\n"
        f"plain = load({str(plain)!r})\n"
        "assert type(plain) is Collection, type(plain)\n"
        "context = plain.to_contexts()[0]\n"
        "assert context.help_tuples()[0][1] == 'An x.', context.help_tuples()\n"
        "print('ok')\n"
    )
    assert fresh_python(code, tmp_path).strip() == "ok"


def test_the_tasks_of_one_kind_share_their_flags_and_each_parse_fills_in_its_own_values():
    """Every command makes a parser context per task of every image (10,000 for 500 images):
    the flags of one kind of task are made once and shared, and the parser's copies keep
    the values of `inv a.run --env A=1 b.run` (and of the next command) apart."""
    from invoke.parser import Parser

    from dockyard.collection import namespace

    ns = namespace(REPO / "containers.toml")
    contexts = {context.name: context for context in ns.to_contexts()}
    assert contexts["httpd.run"].flags["--env"] is contexts["api.run"].flags["--env"]
    for _ in range(2):
        parsed = Parser(contexts=ns.to_contexts()).parse_argv(
            ["httpd.run", "--env", "A=1", "--env", "B=2", "api.run", "httpd.run", "--env", "C=3"])
        assert [(p.name, p.args["env"].value) for p in parsed] == [
            ("httpd.run", ["A=1", "B=2"]), ("api.run", []), ("httpd.run", ["C=3"])]
    assert contexts["httpd.run"].args["env"].value == []
