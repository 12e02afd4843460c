"""Clean cases: ``inv clean`` against ``docker rm`` of the same stopped containers.

clean-200: 200 created (never started) containers of one project, made afresh each round.
"""

from __future__ import annotations

from bench.harness import CaseError, Row, Sample, alternate, checked, docker, measure, run
from bench.workspace import Bench


def clean_200(bench: Bench, row: Row) -> None:
    bench.main_project()
    if "clean" not in bench.task_names(bench.main):
        row.mark_not_available("`inv --list` shows no clean task yet")
        return
    root = bench.generated_project("cl", {"httpd": (bench.base, 'CMD ["sh"]\n')})
    project = f"{bench.prefix}-cl"
    checked(measure(bench.inv_cmd("build", "--quiet"), root), "setup inv build (clean project)")
    tag = bench.tag("httpd", project)
    count = 200

    def ours() -> list[str]:
        return docker("ps", "-aq", "--filter", f"label=dockyard.owner={project}").split()

    def make_containers() -> None:
        script = (f"seq {count} | xargs -P 8 -I{{}} docker create --label dockyard.owner={project} "
                  f"--label dockyard.image=httpd {tag} >/dev/null")
        run(["bash", "-c", script])
        made = len(ours())
        if made != count:
            raise CaseError(f"setup made {made} containers, expected {count}")

    def side(argv: list[str], what: str) -> Sample:
        make_containers()
        s = checked(measure(argv, root), what)
        left = len(ours())
        if left:
            raise CaseError(f"{what} left {left} of the {count} stopped containers")
        return s

    rounds = min(bench.args.rounds, 3)
    alternate(row, rounds,
              lambda i: side(bench.inv_cmd("clean", "--yes"), "inv clean --yes"),
              lambda i: side(["bash", "-c", f"docker rm $(docker ps -aq --filter label=dockyard.owner={project})"],
                             "docker rm $(docker ps -aq ...)"), bench.bare_invoke)
    row.note = f"{count} created (never started) containers per round on each side; {rounds} rounds"

