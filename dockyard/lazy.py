"""The modules dockyard imports where it uses them, inside a function: the only ones.

Every other import is at the top of its module, so that the layers (tasks -> project ->
operations -> engine / config) can be read from each module's first lines;
tests/test_layers.py holds both rules. A module is kept lazy when a command that does not
use it would pay for it at start-up: `inv --list`, `inv -h TASK` and a no-op
`inv httpd.build` import none of the operations they do not run, nor docker-py.

Measured with ``python -X importtime -c "import dockyard.collection; import MODULE"`` (what
every command imports first, then the module: its cumulative time, with what it imports
that was not loaded yet; best of 5, 2-core CI machine). The operations share the engine
layer, so their times do not add up.
"""

from __future__ import annotations

# module -> why it is imported where it is used
LAZY: dict[str, str] = {
    "docker": "docker-py, 56 ms (with requests and urllib3): only remote engines and the requests "
              "not yet on the standard-library client use it; never `inv --list`, -h or a local no-op",
    "requests": "docker-py's transport: its exceptions are caught only where docker-py was used",
    "urllib3": "docker-py's transport: its exceptions and warnings, only where docker-py was used",
    "tqdm": "progress bars of the archive tasks (export, save, load, import), 4 ms",
    "dockyard.engine": "the engine package (its client, transports and errors), 10 ms: `inv --list`, -h and "
                       "`config` make no request",
    "dockyard.engine.ssh_relay": "ssh:// engines only",
    "dockyard.builder": "build (and status's freshness), 29 ms with the engine layer",
    "dockyard.containers": "run, stop, exec and the other container tasks, 22 ms",
    "dockyard.resources": "volumes and networks: run, up, status, clean, 21 ms",
    "dockyard.status": "status, 24 ms (it needs builder and containers)",
    "dockyard.up": "up, down and the services' logs, 26 ms",
    "dockyard.swarm": "deploy, scale and undeploy, 28 ms",
    "dockyard.registry": "push and pull, 12 ms",
    "dockyard.artifacts": "export, save, load, import and commit, 20 ms (the archive readers and writers)",
    "dockyard.cleanup": "clean, 16 ms",
    "dockyard.watch": "up --watch and run --watch only",
    "watchfiles": "the file watcher (inotify): a watch only, never another command",
}
