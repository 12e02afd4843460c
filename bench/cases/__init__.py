"""Every case the bench knows, in the order it runs them: name -> function, target, description.

A case is a function ``(bench, row)`` in the module of its family (build, run, startup,
artifacts, clean). It sets up what it needs in the ``Bench`` workspace, fills ``row`` through
``harness.alternate`` (baseline, dockyard side, bare Invoke, round by round) and raises
``CaseError`` when something fails. Its target limits one figure of the median wall times
(``target_kind``): the gross ratio dockyard / baseline, the net ratio (dockyard - bare Invoke)
/ baseline, or the net seconds dockyard - bare Invoke. A new family (``inv up``/``down``, ``push``, swarm ``deploy``) gets its
own module here and its cases an entry below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from bench.cases import artifacts, build, clean, registry, run, services, startup, swarm, watch
from bench.harness import Row
from bench.workspace import Bench


@dataclass(frozen=True)
class Case:
    name: str
    function: Callable[[Bench, Row], None]
    target: float | None  # the highest acceptable figure of target_kind; None: reported, no target
    description: str
    target_kind: str = "gross"  # harness.TARGET_KINDS: "gross", "net" (ratio) or "net seconds"
    rss_limit_mib: float | None = None  # dockyard's peak RSS must stay under this too
    hot_path: str | None = None  # its label in the report's summary of the hot-path ratios


ARCHIVE_RATIO = 1 / 0.9  # an archive may stream at 90% of the docker CLI's speed
ARCHIVE_RSS_MIB = 100.0  # and must not hold it in memory

CASES = [
    Case("noop-httpd", build.noop_httpd, 0.05,
         "`inv httpd.build` with everything up to date vs the tutorial's build-httpd.sh "
         "(`docker rmi $tag; docker build -t $tag .`).",
         target_kind="net", hot_path="no-op `inv httpd.build` vs build-httpd.sh"),
    Case("one-file-change", build.one_file_change, 0.8,
         "One file of images/busybox-httpd changed (different content every round, on both "
         "sides): `inv httpd.build` (BuildKit where the engine offers it) vs the classic "
         "`docker build -t TAG dir`.",
         hot_path="build after a one-file change vs classic `docker build`"),
    Case("one-file-change-buildkit", build.one_file_change_buildkit, 1.0,
         "The same one-file change: `inv httpd.build` vs `DOCKER_BUILDKIT=1 /usr/bin/docker build "
         "-t TAG dir` (Debian's 20.10 CLI: the newer CLI on PATH wants buildx for BuildKit).",
         target_kind="net", hot_path="build after a one-file change vs `DOCKER_BUILDKIT=1 docker build`"),
    Case("noop-big-context", build.noop_big_context, 0.15,
         "`inv big.build` with nothing changed over a --context-mib context of 20,000 files vs the "
         "tutorial's build script without its rmi (`docker build -t TAG .` of the unchanged context). "
         "Target in seconds: dockyard's median less bare Invoke's.",
         target_kind="net seconds", hot_path="no-op `inv big.build` over a big context (net seconds)"),
    Case("run-until-page", run.run_until_page, 1.0,
         "`inv httpd.run` (it waits for readiness) vs run-httpd.sh followed by a python poll "
         "loop until /cgi-bin/hello-world answers 200.",
         target_kind="net", hot_path="`inv httpd.run` until the page vs run-httpd.sh + poll"),
    Case("exec", run.exec_true, 1.5,
         "`inv httpd.exec true` vs `docker exec NAME true`, each in its own running httpd "
         "container (started once, untimed).",
         target_kind="net", hot_path="`inv httpd.exec true` vs `docker exec NAME true`"),
    Case("list", startup.list_tasks, 1.3,
         "`inv --list` in the project vs `inv --list` over a tasks.py with one no-op task "
         "(invoke exits 1 on a tasks.py without tasks). Runs 4 x --rounds rounds.",
         hot_path="`inv --list` vs bare Invoke"),
    Case("noop-50", build.noop_50, 0.1,
         "50 images in chains (depth 5) and branches, all built: `inv build` vs 50 cached "
         "`docker build` in dependency order. Then one leaf changes: `inv build` must rebuild "
         "that leaf only (a check row).",
         hot_path="no-op `inv build` of 50 images vs 50 cached `docker build`"),
    Case("noop-500", build.noop_500, 0.5,
         "The same with 500 images (50 trees of 10): `inv build` vs 500 cached `docker build` in "
         "dependency order, then one leaf changed (a check row). Target in seconds: dockyard's "
         "median less bare Invoke's.",
         target_kind="net seconds", hot_path="no-op `inv build` of 500 images (net seconds)"),
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
         "`docker rm $(docker ps -aq --filter label=dockyard.owner=P)`. At most 3 rounds.",
         target_kind="net", hot_path="`inv clean` of 200 vs `docker rm`"),
    Case("up", services.up, 1.2,
         "`inv up` of the example's services (api, then httpd) from nothing to all ready vs a bash "
         "script: network create, docker run each, poll httpd's page that reads from the api.",
         hot_path="`inv up` vs network create + docker run each + poll"),
    Case("down", services.down, 1.0,
         "`inv down` of the running services vs `docker rm -f` of both + `docker network rm`.",
         target_kind="net", hot_path="`inv down` vs the down script"),
    Case("push", registry.push, 1.2,
         "One file of the httpd image changed and rebuilt (untimed) on both sides each round: "
         "`inv httpd.push --registry R` vs `docker push R/TAG` of the same image, to a loopback "
         "docker-registry the case starts.",
         target_kind="net", hot_path="`inv httpd.push` after one layer changed vs `docker push`"),
    Case("up-noop", services.up_noop, 0.3,
         "`inv up` when nothing changed (it leaves both running) vs the same up script run again.",
         hot_path="no-op `inv up` vs the up script"),
    Case("deploy", swarm.deploy, 1.2,
         "`inv httpd.deploy --replicas 3` from no service to every task answering vs `docker service create "
         "--replicas 3 --publish mode=host,target=PORT ...` + a poll of `docker service ps` and each task's "
         "page. Makes the engine a single-node swarm for the case when it is in none.",
         hot_path="`inv httpd.deploy --replicas 3` vs `docker service create` + poll"),
    Case("watch-sync", watch.watch_sync, 0.3,
         "A running `inv httpd.run --watch`: the time from a write to index.html (synced) to the page showing "
         "it vs the docker CLI loop (the edit, `docker build`, `docker rm -f`, `docker run`, a poll). Target in "
         "seconds: dockyard's median.",
         target_kind="seconds", hot_path="write to served, synced by `--watch` (seconds)"),
    Case("watch-rebuild", watch.watch_rebuild, 0.6,
         "The same edit without the sync table: the watch rebuilds httpd and replaces its container vs the "
         "same docker CLI loop.",
         hot_path="write to served, rebuilt by `--watch` vs the docker CLI loop"),
    Case("deploy-overlay", swarm.deploy_overlay, None,
         "The same, with the baseline also creating an attachable overlay network and attaching the service "
         "to it, as dockyard does for a project's services (no target: it shows what the network costs)."),
]

BY_NAME = {case.name: case for case in CASES}
