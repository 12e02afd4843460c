"""Whatever containers.toml holds, loading it gives a ProjectSpec or a DockyardError.

Documents have the real shape (project, images with tag, dir, dockerfile, run, base ...)
with hostile values in every place: NUL, over-long strings and paths, other scripts'
digits, bad URLs, unbalanced quotes, deep nesting, wrong types, ${VAR} references.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockyard import config
from conftest import toml_text
from dockyard.errors import DockyardError


HOSTILE = [
    "", " ", "\0", "a\0b", "\n", "/", "~", "~nobody-here/x",
    "127.0.0.256:18200:18200", "999.999.999.999:1:1", "\u0661\u0662\u0667.0.0.1:80:80", "[::1]:80:80",
    "[::1:80:80", "[1:2:3:4:5:6:7:8:9]:80:80", "\u0668\u0660:80", "80:\u00b2", "80:80/icmp", "0:0",
    "on-failure:\u00b2", "on-failure:", "on-failure:99999999999",
    "http://127.0.0.1:abc/x", "http://[::1/x", "http://a b/", "http://h/\x07", "http://h:99999/", "http://[::g]/",
    "httpd -f -p '18200", 'sh -c "x', "\\", "${DOCKYARD_FUZZ_SET}", "${DOCKYARD_FUZZ_UNSET}", "${", "${1}", "$$",
    "${DOCKYARD_FUZZ_SET:-x}", "app", "base", "app/Dockerfile", "Dockerfile", "rootfs.sh", "demo/app", "demo/base",
    "busybox:latest", "UPPER", "a:b:c", "./app:/data", "data:/data:ro", "x:relative", "\ufffd",
    "tcp://h:99999", "tcp://[::1", "ssh://x@h:99999", "tcp://h", "tcp://h:\u0661", "tcp://[::g]:1", "ssh://@:",
    "tcp://h:1?x#y", "/tmp,exec", "/tmp:size=1g:x", "/tmp:=", "/tmp:,", "/:size=1m",
]
# Over-long names and paths: ENAMETOOLONG from the file system, not a crash.
long_strings = st.tuples(st.sampled_from(["p", "d/", "../", "./", "${DOCKYARD_FUZZ_SET}"]),
                         st.integers(min_value=100, max_value=2000)).map(lambda pair: pair[0] * pair[1])

strings = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(max_size=12),
    st.text(alphabet="0123456789\u0660\u0661\u06f1\u0967\uff11\u00b2.:[]/", max_size=16),
    long_strings,
)
scalars = st.one_of(strings, st.integers(), st.floats(), st.booleans())
odd = st.one_of(scalars, st.lists(scalars, max_size=3), st.dictionaries(strings, scalars, max_size=2))


def field(realistic: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly a plausible value, sometimes a hostile string or a value of the wrong type.

    Mostly plausible, so that a document often gets past its first problem and the
    checks further in (ports, URLs, paths, the graph) see hostile values too.
    """
    return st.sampled_from(range(10)).flatmap(lambda n: realistic if n < 7 else strings if n < 9 else odd)


def name(realistic: st.SearchStrategy) -> st.SearchStrategy:
    """A table's key: mostly plausible, sometimes hostile."""
    return st.sampled_from(range(10)).flatmap(lambda n: realistic if n < 8 else strings)


def string_lists(realistic: st.SearchStrategy) -> st.SearchStrategy:
    return field(st.lists(st.one_of(realistic, strings), max_size=3))


ports = st.sampled_from(["8000:8000", "9000", "0.0.0.0:8080:80", "[::1]:8000:8000", "53:53/udp"])
urls = st.sampled_from(["http://localhost:8000/", "https://[::1]:8443/x", "http://127.0.0.1:8000/cgi-bin/x"])

ready = st.fixed_dictionaries({}, optional={
    "url": field(urls), "port": field(st.sampled_from([8000, 9000, 0, -1, 2**70])),
    "timeout": field(st.sampled_from([1, 30.5, 0, -1, math.inf, math.nan, 86400])),
})
run = st.fixed_dictionaries({}, optional={
    "name": field(st.sampled_from(["app", "web-1", "a.b_c"])),
    "ports": string_lists(ports),
    "environment": field(st.dictionaries(strings, scalars, max_size=3)),
    "command": st.one_of(field(st.sampled_from(["httpd -f -p 8000", "sh -c 'echo hi'"])), string_lists(strings)),
    "user": field(st.just("www-data")),
    "volumes": string_lists(st.sampled_from(["data:/data", "./app:/app:ro", "/tmp:/host"])),
    "workdir": field(st.just("/www")),
    "restart": field(st.sampled_from(["no", "always", "unless-stopped", "on-failure", "on-failure:3"])),
    "ready": field(ready),
    "init": field(st.booleans()),
})
base = st.fixed_dictionaries({}, optional={
    "pull": field(st.just("busybox:latest")),
    "rootfs": field(st.just("rootfs.sh")),
    "changes": string_lists(st.just('CMD ["sh"]')),
})
image = st.fixed_dictionaries(
    {"tag": field(st.sampled_from(["demo/app", "demo/base", "localhost:5000/x:V1"])),
     "dir": field(st.sampled_from(["app", "base", "missing"]))},
    optional={
        "dockerfile": field(st.sampled_from(["Dockerfile", "../base/rootfs.sh"])),
        "build_args": field(st.dictionaries(strings, scalars, max_size=2)),
        "labels": field(st.dictionaries(st.one_of(strings, st.just("dockyard.key")), scalars, max_size=2)),
        "base": field(base),
        "run": field(run),
        "engine": field(st.sampled_from(["tcp://lab:2376", "ssh://me@lab", "lab", "tcp://lab:99999", "tcp://[::1"])),
    },
)
documents = st.fixed_dictionaries(
    {"project": field(st.fixed_dictionaries({"name": field(st.just("demo"))})),
     "images": field(st.dictionaries(name(st.sampled_from(["app", "base", "web"])), image, min_size=1, max_size=3))},
)


def nested(depth: int, open_: str, close: str) -> str:
    return "x = " + open_ * depth + close * depth + "\n"


raw_texts = st.one_of(
    st.integers(1, 3000).map(lambda n: nested(n, "[", "]")),
    st.integers(1, 600).map(lambda n: "x = " + "{a = " * n + "1" + "}" * n + "\n"),
    st.integers(1, 5000).map(lambda n: ".".join(["a"] * n) + " = 1\n"),
    st.integers(1, 5000).map(lambda n: "[" + ".".join(["t"] * n) + "]\n"),
    st.integers(4000, 5000).map(lambda n: "x = " + "9" * n + "\n"),
    st.text(max_size=200),
)
dockerfiles = st.one_of(
    st.sampled_from([
        "FROM demo/base\n", "ARG BASE=demo/base\nFROM ${BASE}\n", "ARG B=demo/app\nFROM $B\n", "FROM ${X:-demo/base}\n",
        "FROM scratch\n", "FROM\n", "ARG\nFROM $\n", "FROM ${A:+\n", "FROM \\\n",
        # ten-fold a line: 9.5 MB at the fifth, unless the expansion is bounded
        "ARG A0=" + "x" * 95 + "".join(f"\nARG A{i}=" + "${A%d}" % (i - 1) * 10 for i in range(1, 6)) + "\nFROM ${A5}\n",
    ]),
    st.text(max_size=80),
)


def assert_loads_or_fails_cleanly(project_dir: Path, content: str) -> None:
    """``content`` as containers.toml loads, or fails with one line naming the file."""
    path = project_dir / "containers.toml"
    path.write_bytes(content.encode("utf-8", "surrogatepass"))
    config.load.cache_clear()
    with mock.patch.dict(os.environ, {"DOCKYARD_FUZZ_SET": "set"}):
        os.environ.pop("DOCKYARD_FUZZ_UNSET", None)
        try:
            project = config.load(path)
        except DockyardError as e:
            assert str(e).startswith(str(path)) and "\n" not in str(e), str(e)
            return
    assert isinstance(project, config.ProjectSpec)


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    (root / "app").mkdir()
    (root / "base").mkdir()
    (root / "base" / "rootfs.sh").write_text("exit 0\n")
    (root / "base" / "Dockerfile").write_text("FROM scratch\n")
    return root


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=st.one_of(documents.map(toml_text), documents.map(toml_text), raw_texts,
                         st.tuples(documents.map(toml_text), st.text(max_size=40)).map("".join),
                         st.binary(max_size=64).map(lambda b: b.decode("latin-1"))),
       dockerfile=dockerfiles)
def test_load_returns_a_project_or_raises_dockyard_error(project_dir: Path, content: str, dockerfile: str):
    (project_dir / "app" / "Dockerfile").write_text(dockerfile, encoding="utf-8")
    assert_loads_or_fails_cleanly(project_dir, content)


def hostile(realistic: st.SearchStrategy) -> st.SearchStrategy:
    """Half plausible, half hostile: for the checks deep in one image's run table."""
    return st.one_of(realistic, strings, odd)


hostile_run = st.fixed_dictionaries({}, optional={
    "name": hostile(st.just("web")),
    "ports": st.lists(hostile(ports), max_size=3),
    "environment": st.dictionaries(strings, scalars, max_size=3),
    "command": st.one_of(strings, st.lists(strings, max_size=3)),
    "volumes": st.lists(hostile(st.just("data:/data")), max_size=2),
    "restart": hostile(st.just("on-failure:3")),
    "tmpfs": st.lists(hostile(st.sampled_from(["/tmp", "/run:size=64m,noexec", "/x:mode=1777,uid=0"])), max_size=3),
    "cpus": hostile(st.sampled_from([0.5, 1e300, 1e-12, 1e10, 2**70, -1, math.inf])),
    "pids": hostile(st.sampled_from([-1, 0, 100, 2**63, 2**70, -2**70])),
    "memory": hostile(st.sampled_from(["6m", "999999999999g", "1b", "9223372036854775807b"])),
    "ready": st.fixed_dictionaries({}, optional={"url": hostile(urls), "port": hostile(st.just(8000)),
                                                 "timeout": hostile(st.just(5))}),
})


@settings(max_examples=100, deadline=None)
@given(run_table=hostile_run)
def test_hostile_run_tables_load_or_raise_dockyard_error(project_dir: Path, run_table: dict):
    (project_dir / "app" / "Dockerfile").write_text("FROM scratch\n")
    document = {"project": {"name": "demo"}, "images": {"app": {"tag": "demo/app", "dir": "app", "run": run_table}}}
    assert_loads_or_fails_cleanly(project_dir, toml_text(document))
