"""Every case the bench knows, in the order it runs them: name -> function, target, description.

A case is a function ``(bench, row)`` in the module of its family (build, run, startup,
artifacts, clean). It sets up what it needs in the ``Bench`` workspace, fills ``row`` through
``harness.alternate`` (dockyard side, baseline side, round by round) and raises ``CaseError``
when something fails. Its target is the highest acceptable ratio of median wall times,
dockyard / baseline. A new family (``inv up``/``down``, ``push``, swarm ``deploy``) gets its
own module here and its cases an entry below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from bench.cases import artifacts, build, clean, registry, run, services, startup, swarm
from bench.harness import Row
from bench.workspace import Bench


@dataclass(frozen=True)
class Case:
    name: str
    function: Callable[[Bench, Row], None]
    target: float | None  # highest ratio dockyard / baseline; None: reported, no target
    description: str
    rss_limit_mib: float | None = None  # dockyard's peak RSS must stay under this too
    hot_path: str | None = None  # its label in the report's summary of the hot-path ratios


ARCHIVE_RATIO = 1 / 0.9  # an archive may stream at 90% of the docker CLI's speed
ARCHIVE_RSS_MIB = 100.0  # and must not hold it in memory

CASES = [
    Case("noop-httpd", build.noop_httpd, 0.2,
         "`inv httpd.build` with everything up to date vs the tutorial's build-httpd.sh "
         "(`docker rmi $tag; docker build -t $tag .`).",
         hot_path="no-op `inv httpd.build` vs build-httpd.sh"),
    Case("one-file-change", build.one_file_change, 1.1,
         "One file of images/busybox-httpd changed (different content every round, on both "
         "sides): `inv httpd.build` vs `docker build -t TAG dir`.",
         hot_path="build after a one-file change vs `docker build`"),
    Case("run-until-page", run.run_until_page, 1.2,
         "`inv httpd.run` (it waits for readiness) vs run-httpd.sh followed by a python poll "
         "loop until /cgi-bin/hello-world answers 200."),
    Case("list", startup.list_tasks, 1.3,
         "`inv --list` in the project vs `inv --list` over a tasks.py with one no-op task "
         "(invoke exits 1 on a tasks.py without tasks). Runs 4 x --rounds rounds.",
         hot_path="`inv --list` vs bare Invoke"),
    Case("noop-50", build.noop_50, 0.1,
         "50 images in chains (depth 5) and branches, all built: `inv build` vs 50 cached "
         "`docker build` in dependency order. Then one leaf changes: `inv build` must rebuild "
         "that leaf only (a check row).",
         hot_path="no-op `inv build` of 50 images vs 50 cached `docker build`"),
    Case("parallel-8", build.parallel_8, None,
         "8 independent images, each with a changed file every round and a RUN that writes "
         "20 MiB: `inv build --jobs 4` vs 8 `docker build` one after another (no target: on "
         "2 cores the daemon may be the limit)."),
    Case("export-1g", artifacts.export_1g, ARCHIVE_RATIO,
         "`inv big.export -o X --force` vs `docker export -o Y` of dockyard's own container of "
         "a --size-mib image. Not available when `inv --list` lacks the task.",
         rss_limit_mib=ARCHIVE_RSS_MIB),
    Case("save-1g", artifacts.save_1g, ARCHIVE_RATIO,
         "`inv big.save -o X --force` vs `docker save -o Y TAG`.",
         rss_limit_mib=ARCHIVE_RSS_MIB),
    Case("clean-200", clean.clean_200, 1.0,
         "200 stopped containers of the project each round: `inv clean --yes` vs "
         "`docker rm $(docker ps -aq --filter label=dockyard.owner=P)`. At most 3 rounds."),
    Case("up", services.up, 1.2,
         "`inv up` of the example's services (api, then httpd) from nothing to all ready vs a bash "
         "script: network create, docker run each, poll httpd's page that reads from the api.",
         hot_path="`inv up` vs network create + docker run each + poll"),
    Case("down", services.down, 1.0,
         "`inv down` of the running services vs `docker rm -f` of both + `docker network rm`."),
    Case("push", registry.push, 1.2,
         "One file of the httpd image changed and rebuilt (untimed) on both sides each round: "
         "`inv httpd.push --registry R` vs `docker push R/TAG` of the same image, to a loopback "
         "docker-registry the case starts.",
         hot_path="`inv httpd.push` after one layer changed vs `docker push`"),
    Case("up-noop", services.up_noop, 0.3,
         "`inv up` when nothing changed (it leaves both running) vs the same up script run again.",
         hot_path="no-op `inv up` vs the up script"),
    Case("deploy", swarm.deploy, 1.2,
         "`inv httpd.deploy --replicas 3` from no service to every task answering vs `docker service create "
         "--replicas 3 --publish mode=host,target=PORT ...` + a poll of `docker service ps` and each task's "
         "page. Makes the engine a single-node swarm for the case when it is in none.",
         hot_path="`inv httpd.deploy --replicas 3` vs `docker service create` + poll"),
    Case("deploy-overlay", swarm.deploy_overlay, None,
         "The same, with the baseline also creating an attachable overlay network and attaching the service "
         "to it, as dockyard does for a project's services (no target: it shows what the network costs)."),
]

BY_NAME = {case.name: case for case in CASES}
