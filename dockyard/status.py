"""What `status` reports for an image's container, as a row and as a table."""

from __future__ import annotations

from .config import ImageSpec, ProjectSpec

COLUMNS = ("image", "container", "state", "ports", "uptime", "image_id", "build")


def image_status(project: ProjectSpec, spec: ImageSpec) -> dict:
    from .builder import freshness
    from .containers import inspect, is_ours, uptime

    try:
        build, image_id = freshness(project, spec)
    except OSError as e:  # an unreadable build context: say so in the row
        build, image_id = f"unknown ({e})", None
    row = {"image": spec.key, "container": spec.run.name, "state": "absent", "ports": "",
           "uptime": "", "image_id": (image_id or "")[7:19], "build": build}
    container = inspect(spec.run.name)
    if container is None:
        return row
    if not is_ours(container, project):
        row["state"] = "name taken by another owner"
        return row
    state = container["State"]
    row["state"] = state["Status"] if not state.get("ExitCode") or state["Running"] \
        else f"{state['Status']} ({state['ExitCode']})"
    bindings = (container.get("HostConfig") or {}).get("PortBindings") or {}
    row["ports"] = ", ".join(f"{b['HostIp'] or '0.0.0.0'}:{b['HostPort']}->{port}"
                             for port, binds in bindings.items() for b in binds or [])
    if state["Running"]:
        row["uptime"] = uptime(state["StartedAt"])
    if container["Image"] != image_id and image_id:
        row["build"] += ", container runs an older image"
    return row


def format_rows(rows: list[dict]) -> str:
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in COLUMNS}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in COLUMNS)]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in COLUMNS) for r in rows]
    return "\n".join(line.rstrip() for line in lines)
