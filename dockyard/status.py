"""What `status` reports for an image's container: plain data, and a table for people."""

from __future__ import annotations

from datetime import datetime, timezone

from . import engine
from .builder import freshness
from .containers import left_behind
from .engine import ports as engine_ports
from .files import UnusableFile
from .config import ImageSpec, ProjectSpec
from .labels import container_is_ours

COLUMNS = ("image", "container", "state", "ports", "uptime", "image_id", "build")


def image_status(project: ProjectSpec, spec: ImageSpec) -> dict:
    """One row: numbers as numbers (ports, exit code, restarts), times in ISO 8601; ``completed``:
    for a step (``run.completes``), whether it has run to its end with exit code 0."""
    try:
        build, image_id = freshness(project, spec)
    except (OSError, UnusableFile) as e:  # an unreadable build context, a FIFO .dockerignore: said in the row
        build, image_id = f"unknown ({e})", None
    row = {"image": spec.key, "container": spec.run.name, "state": "absent", "exit_code": None,
           "completed": None, "ports": [], "started_at": None, "uptime_seconds": None, "restart_count": None,
           "image_id": image_id, "build": build, "container_image_current": None, "leftovers": []}
    # What an interrupted replace left; the next run or up puts it in order (containers.recover).
    row["leftovers"] = [{"name": row_name, "state": left["State"]}
                        for left in left_behind(project, spec) for row_name in [left["Names"][0].lstrip("/")]]
    container = engine.inspect_container(spec.run.name)
    if container is None:
        return row
    if not container_is_ours(container, project.name):
        row["state"] = "name taken by another owner"
        return row
    state = container["State"]
    row["state"] = state["Status"]
    row["exit_code"] = None if state["Running"] else state.get("ExitCode")
    if spec.run.completes:  # a step: its container is meant to end, and did, or did not, succeed
        row["completed"] = state["Status"] == "exited" and row["exit_code"] == 0
    row["restart_count"] = container.get("RestartCount", 0)
    row["ports"] = [{"host_ip": bound.host_ip or "0.0.0.0", "host_port": bound.host_port,
                     "container_port": bound.container_port, "protocol": bound.protocol}
                    for bound in engine_ports.bindings_of(container)]
    if state["Running"]:
        started = _parse_time(state["StartedAt"])
        row["started_at"] = started.isoformat()
        row["uptime_seconds"] = max(0, int((datetime.now(timezone.utc) - started).total_seconds()))
    row["container_image_current"] = bool(image_id) and container["Image"] == image_id
    return row


def _parse_time(text: str) -> datetime:
    """The engine's RFC 3339 time, nanoseconds and all, as an aware datetime (to the second)."""
    return datetime.fromisoformat(text[:19] + "+00:00")


def display(row: dict) -> dict[str, str]:
    """The row as the table shows it."""
    state = row["state"]
    if row["exit_code"] or row["completed"]:
        state = f"{state} ({row['exit_code']})"
    if row["completed"]:
        state += ", completed"
    ports = ", ".join(f"{p['host_ip']}:{p['host_port']}->{p['container_port']}/{p['protocol']}"
                      for p in row["ports"])
    build = row["build"]
    if row["container_image_current"] is False and row["image_id"]:
        build += ", container runs an older image"
    return {"image": row["image"], "container": row["container"], "state": state, "ports": ports,
            "uptime": "" if row["uptime_seconds"] is None else duration(row["uptime_seconds"]),
            "image_id": engine.short_id(row["image_id"]) if row["image_id"] else "", "build": build}


def duration(seconds: int) -> str:
    """'3m', '2h', '5d'."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def format_rows(rows: list[dict]) -> str:
    shown = [display(row) for row in rows]
    widths = {c: max(len(c), *(len(r[c]) for r in shown)) for c in COLUMNS}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in COLUMNS)]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in COLUMNS) for r in shown]
    for row in rows:
        for left in row["leftovers"]:
            lines.append(f"{left['name']} ({left['state']}): left by an interrupted run of {row['container']}; "
                         f"the next `inv {row['image']}.run` or `inv up` puts it in order")
    return "\n".join(line.rstrip() for line in lines)
