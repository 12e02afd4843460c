"""Swarm deployment: `deploy`, `scale`, `undeploy` and `status` on a single-node swarm of the
real engine, and the [deploy] table's errors (engine-free).

The `swarm` fixture makes the main engine a swarm manager (`docker swarm init --advertise-addr
127.0.0.1`) only when it is not in a swarm already, and leaves the swarm again afterwards
(removing the docker_gwbridge network that `swarm leave` keeps) only if it made it. The
ingress routing mesh needs IPVS, which this machine's kernel lacks, so the services publish
in host mode with no fixed port: every task gets its own host port, on every interface, which
the tests reach on 127.0.0.1.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.request

import pytest

from conftest import (DEMO_APP, REPO, assert_clean_failure, get, load_error, make_project, own_engine,
                      remove_project_objects)
from dockyard import config
from dockyard.config import PortMapping
from dockyard.swarm import task_url

integration = pytest.mark.integration

HOST_MODE = """
[images.httpd.deploy]
replicas = 2
publish = "host"
update = { monitor = 1 }  # a failed update is noticed, and a good one done, in a second

[images.api.deploy]
publish = "host"
"""


# -- fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def swarm(docker_client):
    """The main engine as a single-node swarm manager, for this session."""
    state = docker_client.api.info()["Swarm"]["LocalNodeState"]
    made = state == "inactive"
    if made:
        subprocess.run(["docker", "swarm", "init", "--advertise-addr", "127.0.0.1"], check=True,
                       capture_output=True, text=True)
    elif not docker_client.api.info()["Swarm"].get("ControlAvailable"):
        pytest.fail(f"the engine is in a swarm ({state}) but not a manager; the swarm tests need one", pytrace=False)
    yield docker_client
    if made:
        subprocess.run(["docker", "swarm", "leave", "--force"], check=True, capture_output=True, text=True)
        subprocess.run(["docker", "network", "rm", "docker_gwbridge"], capture_output=True, text=True)


def remove_services(client, name: str) -> None:
    """Our services first: their tasks' containers hold the overlay network and the images."""
    api = client.api
    services = api.services(filters={"label": f"dockyard.owner={name}"})
    for service in services:
        api.remove_service(service["ID"])
    deadline = time.monotonic() + 60
    for service in services:
        while api.containers(all=True, filters={"label": f"com.docker.swarm.service.id={service['ID']}"}) \
                and time.monotonic() < deadline:
            time.sleep(0.2)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory, swarm):
    """One copy of the example project whose httpd runs 2 host-mode replicas, for the tests
    below in their order (deploy, scale, rolling update, undeploy)."""
    made = make_project(tmp_path_factory.mktemp("swarm") / "project")
    made.config.write_text(made.config.read_text() + HOST_MODE)
    yield made
    remove_services(swarm, made.name)
    remove_project_objects(swarm, made.name)


def running_ports(client, service: str) -> list[int]:
    """The host port of every task of the service that is running now: the first listed, its
    IPv4 binding (the IPv6 one may be another port)."""
    ports = set()
    for task in client.api.tasks(filters={"service": service}):
        listed = (task["Status"].get("PortStatus") or {}).get("Ports") or []
        if task["Status"]["State"] == "running" and listed:
            ports.add(listed[0]["PublishedPort"])
    return sorted(ports)


def page(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/cgi-bin/hello-world", timeout=3) as response:
        return response.read().decode()


def answering(ports: list[int]) -> int:
    count = 0
    for port in ports:
        try:
            count += "<h4>" in page(port)
        except OSError:
            pass
    return count


def task_ports(result: dict) -> list[int]:
    return sorted(p["host_port"] for task in result["tasks"] for p in task["ports"])


# -- on a single-node swarm -----------------------------------------------------------


@integration
def test_deploy_runs_two_replicas_and_the_page_answers_from_every_task(deployed, swarm):
    done = deployed.inv("httpd.deploy", "--quiet-build", "--json")
    result = json.loads(done.stdout)
    service = f"{deployed.name}-httpd"
    assert (result["service"], result["action"], result["replicas"]) == (service, "created", 2)
    warning = (f"images.httpd.deploy: as a swarm service its port {deployed.port}/tcp is published on every "
               "interface of every node (a swarm has no address setting: the run table's host address does not apply)")
    assert result["warning"] == warning and f"dockyard: warning: {warning}\n" in done.stderr
    assert [t["state"] for t in result["tasks"]] == ["running", "running"]
    ports = task_ports(result)
    assert len(set(ports)) == 2 and ports == running_ports(swarm, service)
    # bound on every interface (a swarm has no address setting), reached at the node's address
    assert {(p["host_ip"], p["node_address"]) for t in result["tasks"] for p in t["ports"]} == \
        {("0.0.0.0", "127.0.0.1")}
    for port in ports:
        assert "Hello, World!" in page(port)
    inspected = swarm.api.inspect_service(service)
    assert inspected["Spec"]["Labels"]["dockyard.owner"] == deployed.name
    assert inspected["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == \
        swarm.api.inspect_image(deployed.tags["httpd"])["Id"]  # pinned: a rebuild is a change
    network = swarm.api.inspect_network(f"{deployed.name}_swarm")
    assert (network["Driver"], network["Attachable"], network["Labels"]["dockyard.owner"]) == \
        ("overlay", True, deployed.name)

    again = deployed.inv("httpd.deploy", "--quiet-build")
    assert again.stdout.splitlines()[0] == f"{service}: unchanged, 2 replicas"
    status = deployed.inv("httpd.status")
    assert f"service {service}: 2/2 running, publish host" in status.stdout
    for port in ports:
        assert f"running 0.0.0.0:{port}->{deployed.port}/tcp" in status.stdout
    row = json.loads(deployed.inv("httpd.status", "--json").stdout)
    assert task_ports(row["service"]) == ports and row["service"]["running"] == 2


@integration
def test_scale_to_three_and_back_to_two(deployed, swarm):
    """Up through the Python API, as a release script would; down through `inv`."""
    from dockyard import Project

    service = f"{deployed.name}-httpd"
    project = Project(deployed.config)
    up = project.scale("httpd", 3)
    assert (up["service"], up["before"], up["replicas"]) == (service, 2, 3)
    ports = running_ports(swarm, service)
    assert len(ports) == 3 and answering(ports) == 3 and task_ports(up) == ports
    [row] = project.deploy_status(["httpd"])
    assert (row["image"], row["replicas"], row["running"], task_ports(row)) == ("httpd", 3, 3, ports)
    down = json.loads(deployed.inv("httpd.scale", "2", "--json").stdout)
    assert (down["before"], down["replicas"], len(down["tasks"])) == (3, 2, 2)

    # containers.toml is the desired state: an edited count is deployed (no task replaced), and
    # deployed again as it was, it wins over the count the service has
    toml = deployed.config.read_text()
    deployed.config.write_text(toml.replace("replicas = 2", "replicas = 3", 1))
    try:
        more = json.loads(deployed.inv("httpd.deploy", "--quiet-build", "--json").stdout)
    finally:
        deployed.config.write_text(toml)
    assert (more["action"], more["reason"], more["replicas"], len(more["tasks"])) == \
        ("scaled", "2 -> 3 replicas", 3, 3)
    assert {t["id"] for t in down["tasks"]} < {t["id"] for t in more["tasks"]}
    again = deployed.inv("httpd.deploy", "--quiet-build")
    assert again.stdout.splitlines()[0] == f"{service}: scaled (3 -> 2 replicas), 2 replicas"
    deadline = time.monotonic() + 30
    while len(running_ports(swarm, service)) != 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert answering(running_ports(swarm, service)) == 2


@integration
def test_a_rebuild_rolls_the_service_over_and_some_task_always_answers(deployed, swarm):
    service = f"{deployed.name}-httpd"
    cgi = deployed.root / "images" / "busybox-httpd" / "hello-world.cgi"
    cgi.write_text(cgi.read_text().replace("<title>Hello</title>", "<title>Hello again</title>"))
    counts: list[int] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            counts.append(answering(running_ports(swarm, service)))
            time.sleep(0.05)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        result = json.loads(deployed.inv("httpd.deploy", "--quiet-build", "--json").stdout)
    finally:
        stop.set()
        poller.join()
    assert (result["action"], result["reason"]) == ("updated", "image changed")
    assert len(counts) > 20 and min(counts) >= 1, counts
    ports = task_ports(result)
    assert len(ports) == 2 and all("Hello again" in page(port) for port in ports)
    assert swarm.api.inspect_service(service)["UpdateStatus"]["State"] == "completed"


@integration
def test_an_update_whose_tasks_never_get_healthy_is_rolled_back_and_the_old_tasks_answer_throughout(deployed, swarm):
    """A health check of a page that is not there: the new tasks never count as running, so
    the engine (start-first) never stops an old one, and rolls the update back."""
    service = f"{deployed.name}-httpd"
    before = running_ports(swarm, service)
    dockerfile = deployed.root / "images" / "busybox-httpd" / "Dockerfile"
    good = dockerfile.read_text()
    dockerfile.write_text(good + "HEALTHCHECK --interval=1s --timeout=1s --retries=1 "
                                 "CMD wget -q -O /dev/null http://127.0.0.1:$HTTPD_PORT/cgi-bin/no-such-page\n")
    counts: list[int] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            counts.append(answering(before))
            time.sleep(0.05)

    poller = threading.Thread(target=poll)
    poller.start()
    started = time.monotonic()
    try:
        failed = deployed.inv("httpd.deploy", "--quiet-build", check=False)
    finally:
        stop.set()
        poller.join()
        dockerfile.write_text(good)
    took = time.monotonic() - started
    assert_clean_failure(failed, f"the update of {service} failed and was rolled back", "unhealthy",
                         f"the service {service} is left deployed (2/2 tasks running, its update rolled back); "
                         "`inv httpd.undeploy` removes it")
    said = [line for line in failed.stderr.splitlines()
            if line.startswith("dockyard:") and not line.startswith("dockyard: warning:")]  # ports: said first
    assert said == [failed.stderr.strip().splitlines()[-1]], failed.stderr  # the build's lines, then one
    assert len(counts) > 20 and min(counts) == 2, counts
    assert took < 30, took
    inspected = swarm.api.inspect_service(service)
    assert inspected["UpdateStatus"]["State"] == "rollback_completed"
    assert running_ports(swarm, service) == before and answering(before) == 2

    again = deployed.inv("httpd.deploy", "--quiet-build", "--json")  # the image as it was: deployed again
    assert len(task_ports(json.loads(again.stdout))) == 2


@integration
def test_deploy_of_the_project_reaches_the_api_by_name_and_undeploy_leaves_nothing(deployed, swarm):
    outcomes = json.loads(deployed.inv("deploy", "--quiet-build", "--json").stdout)
    assert [(o["image"], o["action"]) for o in outcomes] == [("api", "created"), ("httpd", "unchanged")]
    port = task_ports(outcomes[1])[0]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/cgi-bin/from-api", timeout=5) as response:
        assert "The api service says: {&quot;service&quot;: &quot;api&quot;" in response.read().decode()

    down = deployed.inv("down")  # `up`'s containers only: the services are undeploy's, and it says so
    assert down.stdout.splitlines() == ["nothing to remove", f"2 services stay deployed on the swarm ({deployed.name}-api, "
                                        f"{deployed.name}-httpd); `inv undeploy` removes them"]
    assert json.loads(deployed.inv("down", "--json").stdout)["deployed"] == [f"{deployed.name}-api",
                                                                              f"{deployed.name}-httpd"]
    assert answering(task_ports(outcomes[1])) == 2

    removed = deployed.inv("undeploy")
    assert removed.stdout.splitlines() == [f"removed service {deployed.name}-api",
                                           f"removed service {deployed.name}-httpd", "network: removed"]
    assert swarm.api.services(filters={"label": f"dockyard.owner={deployed.name}"}) == []
    for service in ("api", "httpd"):
        name = f"{deployed.name}-{service}"
        assert swarm.api.containers(all=True, filters={"label": f"com.docker.swarm.service.name={name}"}) == []
    assert swarm.api.networks(names=[f"{deployed.name}_swarm"]) == []
    assert deployed.inv("undeploy").stdout == "nothing deployed\n"


def deploy_httpd(project, replicas: int = 1) -> dict:
    """httpd deployed in host mode (with 1 task by default); the project's own fixture removes it."""
    project.config.write_text(project.config.read_text() + '\n[images.httpd.deploy]\npublish = "host"\n')
    return json.loads(project.inv("httpd.deploy", "--replicas", str(replicas), "--quiet-build", "--json").stdout)


def wait_for_no_task_containers(client, service: str) -> None:
    deadline = time.monotonic() + 60
    while client.api.containers(all=True, filters={"label": f"com.docker.swarm.service.name={service}"}):
        assert time.monotonic() < deadline, f"the tasks of {service} did not go away"
        time.sleep(0.2)


@integration
def test_build_and_clean_keep_the_image_a_service_scaled_to_zero_runs_and_say_which_service(project, swarm):
    """With its service at 0 replicas no container holds the deployed image, and after a
    rebuild it is dangling: only the service's spec says that it is still needed."""
    service = f"{project.name}-httpd"
    try:
        deploy_httpd(project)
        deployed = swarm.api.inspect_service(service)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
        project.inv("httpd.scale", "0")
        wait_for_no_task_containers(swarm, service)
        cgi = project.root / "images" / "busybox-httpd" / "hello-world.cgi"
        cgi.write_text(cgi.read_text().replace("<title>Hello</title>", "<title>Hello again</title>"))
        built = project.inv("httpd.build").stdout
        assert f"kept the replaced image {deployed.removeprefix('sha256:')[:12]}: service {service} uses it" in built
        assert "removed the replaced image" not in built
        assert swarm.api.inspect_image(project.tags["httpd"])["Id"] != deployed

        kept = f"kept image {deployed.removeprefix('sha256:')[:12]}: service {service} uses it"
        for argv in (["clean", "--dry-run"], ["httpd.clean", "--dry-run"], ["clean"], ["httpd.clean"]):
            said = project.inv(*argv).stdout.splitlines()
            assert said.count(kept) == 1, (argv, said)
            assert not any(deployed.removeprefix("sha256:")[:12] in line for line in said if line != kept), said
        result = json.loads(project.inv("clean", "--json").stdout)
        assert result["kept"] == [{"id": deployed, "service": service}]
        assert swarm.api.inspect_image(deployed)["Id"] == deployed

        scaled = json.loads(project.inv("httpd.scale", "1", "--json").stdout)  # the service can run again
        assert [t["state"] for t in scaled["tasks"]] == ["running"]
    finally:
        remove_services(swarm, project.name)


@integration
def test_on_two_nodes_deploy_asks_for_a_registry_and_push_takes_the_image_to_each(project, swarm, registry):
    """An engine of the tests' own joins the swarm as a worker: one host, two nodes. A task on
    the worker cannot find an image that only the manager has, so deploy refuses to start
    one without a registry; with --push every node pulls the image by its digest."""
    service = f"{project.name}-httpd"
    token = swarm.api.inspect_swarm()["JoinTokens"]["Worker"]
    # Off the project's overlay network: on one host the two nodes' VXLAN interfaces for it clash.
    config = project.config.read_text().replace("[images.httpd.run]\n", '[images.httpd.run]\nnetwork = "bridge"\n', 1)
    project.config.write_text(config + '\n[images.httpd.deploy]\npublish = "host"\n')
    project.inv("build", "--quiet")
    with own_engine() as worker, worker.client() as api:
        api.join_swarm(["127.0.0.1:2377"], token, listen_addr="127.0.0.1:2378", advertise_addr="127.0.0.1:2378")
        node = api.info()["Swarm"]["NodeID"]
        try:
            on_worker = project.inv("httpd.deploy", "--no-build", check=False, env=worker.env())
            assert_clean_failure(on_worker, f"the Docker engine at {worker.host}", "is a worker in a swarm, not a "
                                 "manager", "the swarm's managers: 127.0.0.1:2377", f"docker node promote {node}")
            assert "swarm init" not in on_worker.stderr

            refused = project.inv("httpd.deploy", "--replicas", "2", check=False)
            assert_clean_failure(refused, "the swarm has 2 nodes and each must pull", "deploy with --push")
            assert not swarm.api.services(filters={"name": service})

            deployed = json.loads(project.inv("httpd.deploy", "--replicas", "2", "--push", "--registry", registry,
                                              "--json").stdout)
            repository = project.tags["httpd"].rpartition(":")[0]
            image = swarm.api.inspect_service(service)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
            assert image.startswith(f"{registry}/{repository}@sha256:"), image
            running = swarm.api.tasks(filters={"service": service, "desired-state": "running"})
            manager = swarm.api.info()["Swarm"]["NodeID"]
            assert sorted(t["NodeID"] for t in running) == sorted([manager, node])  # one on the worker, pulled there
            assert [t["state"] for t in deployed["tasks"]] == ["running", "running"]
            for task in deployed["tasks"]:
                address = task["ports"][0]
                assert get(f"http://127.0.0.1:{address['host_port']}/cgi-bin/hello-world")[0] == 200
        finally:
            remove_services(swarm, project.name)
            api.leave_swarm(force=True)
            swarm.api.remove_node(node, force=True)


@integration
def test_status_shows_the_publish_mode_deployed_and_asks_for_the_services_once(project, swarm, monkeypatch):
    """containers.toml edited after the deploy (no redeploy): status says what runs."""
    from dockyard import Project, swarm as swarms

    service = f"{project.name}-httpd"
    try:
        deploy_httpd(project)
        project.config.write_text(project.config.read_text().replace('publish = "host"', 'publish = "ingress"'))
        asked = []
        monkeypatch.setattr(swarms, "ours", lambda spec, ours=swarms.ours: asked.append(spec.name) or ours(spec))
        rows = {row["image"]: row for row in Project(project.config).status()}
        assert asked == [project.name]  # once for the 4 images of the one engine
        row = rows["httpd"]["service"]
        assert (row["service"], row["publish"]) == (service, "host")
        assert row["published"] == [{"container_port": project.port, "host_port": None, "protocol": "tcp",
                                     "mode": "host"}]
        assert [rows[key]["service"] for key in ("busybox", "my-app", "api")] == [None, None, None]
        said = project.inv("status").stdout
        assert f"service {service}: 1/1 running, publish host {project.port}/tcp" in said, said
    finally:
        remove_services(swarm, project.name)


@integration
def test_a_deploy_asks_for_the_engines_info_once_and_looks_at_its_tasks_every_tenth_of_a_second(
        project, swarm, monkeypatch):
    """`docker info` (is it a manager? its log driver) is one request of a deploy, not two; and
    between two looks at the tasks no more than POLL_LIMIT passes, plus a poll's own requests."""
    from dockyard import Project, swarm as swarms
    from dockyard.engine import client

    project.config.write_text(project.config.read_text() + '\n[images.httpd.deploy]\npublish = "host"\n')
    project.inv("httpd.build", "--quiet")
    monkeypatch.setattr(client, "_log_drivers", {}, raising=False)  # none known yet in this process
    infos, polls = [], []
    # engine.info's request, made in the client module
    monkeypatch.setattr(client, "request", lambda method, path, *a, request=client.request, **k:
                        (path == "/info" and infos.append(1)) or request(method, path, *a, **k))
    monkeypatch.setattr(swarms, "tasks", lambda *a, tasks=swarms.tasks, **k: polls.append(time.monotonic())
                        or tasks(*a, **k))
    try:
        [outcome] = Project(project.config).deploy(["httpd"], replicas=2, build=False)
        assert [t["state"] for t in outcome["tasks"]] == ["running", "running"]
    finally:
        remove_services(swarm, project.name)
    assert len(infos) == 1
    gaps = [later - earlier for earlier, later in zip(polls, polls[1:])]
    assert len(gaps) > 5 and max(gaps) < 0.17, gaps


@integration
def test_an_ingress_port_that_nothing_answers_says_to_publish_in_host_mode(project, swarm):
    """The kernel here has no IPVS: the routing mesh accepts nothing (README: On a swarm)."""
    try:
        failed = project.inv("httpd.deploy", "--quiet-build", "--ready-timeout", "4", check=False)
        assert_clean_failure(failed, "did not have 1 task running and answering within 4s",
                             'set publish = "host" in [images.httpd.deploy]',
                             f"the service {project.name}-httpd is left deployed (1/1 task running); "
                             "`inv httpd.undeploy` removes it")
        # No [deploy] table, a failed wait: the service still publishes on every interface, and both say so.
        warning = (f"dockyard: warning: images.httpd.deploy: as a swarm service its port {project.port}/tcp is "
                   "published on every interface of every node")
        assert warning in failed.stderr and warning not in project.inv("config").stderr
        assert warning in project.inv("status").stderr
    finally:
        remove_services(swarm, project.name)


@integration
def test_scale_of_a_service_that_is_not_deployed_is_refused(project, swarm):
    failed = project.inv("httpd.scale", "2", check=False)
    assert_clean_failure(failed, f"no service {project.name}-httpd of project {project.name} is deployed",
                         "inv httpd.deploy")


@integration
def test_a_service_of_that_name_made_by_someone_else_is_left_alone(project, swarm):
    name = f"{project.name}-httpd"
    subprocess.run(["docker", "service", "create", "--detach", "--name", name, "--replicas", "0", "--no-resolve-image",
                    "busybox:latest", "sleep", "60"], check=True, capture_output=True)
    try:
        failed = project.inv("httpd.undeploy", check=False)
        assert_clean_failure(failed, f"a service named '{name}' exists and was made by something other than dockyard")
        assert swarm.api.inspect_service(name)["Spec"]["Name"] == name
    finally:
        swarm.api.remove_service(name)


@integration
def test_deploy_on_an_engine_that_is_not_a_swarm_manager_is_one_line(project, engine):
    failed = project.inv("httpd.deploy", check=False, env=engine.env())
    assert_clean_failure(failed, f"the Docker engine at {engine.host}", "is not a swarm manager",
                         "docker swarm init")
    assert len(failed.stderr.strip().splitlines()) == 1


# -- the [deploy] table, engine-free ---------------------------------------------------

PROJECT = DEMO_APP + """[images.app.run]
ports = ["8000:8000"]
"""


def test_deploy_defaults_are_one_replica_ingress_and_a_start_first_rollback_update(tmp_path):
    from conftest import write_project

    spec = config.load(write_project(tmp_path, PROJECT)).images["app"].deploy
    assert (spec.replicas, spec.publish, spec.placement, spec.registry) == (1, "ingress", (), None)
    assert (spec.update.parallelism, spec.update.delay, spec.update.order, spec.update.failure_action,
            spec.update.monitor) == (1, 0.0, "start-first", "rollback", 5.0)


def test_deploy_settings_are_read(tmp_path):
    from conftest import write_project

    spec = config.load(write_project(tmp_path, PROJECT + """
[images.app.deploy]
replicas = 3
publish = "host"
placement = ["node.role==manager"]
registry = "http://localhost:5000/"
update = { parallelism = 2, delay = 1.5, order = "stop-first", failure_action = "pause", monitor = 0.5 }
""")).images["app"].deploy
    assert (spec.replicas, spec.publish, spec.placement, spec.registry) == \
        (3, "host", ("node.role==manager",), "localhost:5000")
    assert (spec.update.parallelism, spec.update.delay, spec.update.order, spec.update.failure_action,
            spec.update.monitor) == (2, 1.5, "stop-first", "pause", 0.5)


def test_a_change_of_any_deploy_setting_is_one_that_deploy_sees(tmp_path, monkeypatch):
    """The settings hash covers every [deploy] setting but two: replicas, which deploy compares
    with the service's own count (`scale` changes it), and registry, which says where the image
    comes from (deploy compares the image by its id or digest)."""
    from dataclasses import fields, replace

    from conftest import write_project

    from dockyard import engine, swarm as swarms
    from dockyard.config import DeploySpec, UpdateSpec
    from dockyard.labels import SETTINGS

    monkeypatch.setattr(engine, "default_log_driver", lambda: "json-file")
    project = config.load(write_project(tmp_path, PROJECT))
    spec = project.images["app"]

    def request(deploy: DeploySpec) -> dict:
        return swarms.service_request(project, replace(spec, deploy=deploy), "sha256:1", deploy.replicas)

    other = {"publish": "host", "placement": ("node.role==manager",), "replicas": 3, "registry": "localhost:5000",
             "update": {"parallelism": 2, "delay": 1.0, "order": "stop-first", "failure_action": "pause",
                        "monitor": 1.0}}
    before = request(spec.deploy)
    for field in fields(DeploySpec):
        if field.name == "update":
            changes = [replace(spec.deploy, update=replace(spec.deploy.update, **{f.name: other["update"][f.name]}))
                       for f in fields(UpdateSpec)]
        else:
            changes = [replace(spec.deploy, **{field.name: other[field.name]})]
        for deploy in changes:
            after = request(deploy)
            hashed = after["labels"][SETTINGS] != before["labels"][SETTINGS]
            assert hashed == (field.name not in ("replicas", "registry")), deploy
    assert request(replace(spec.deploy, replicas=3))["mode"].replicas == 3


@pytest.mark.parametrize(("deploy", "where", "words"), [
    ("replicas = -1", "images.app.deploy.replicas", "must be a whole number from 0 to 1000"),
    ('replicas = "2"', "images.app.deploy.replicas", "expected an integer, got a string"),
    ('publish = "mesh"', "images.app.deploy.publish", "'mesh' is not one of ingress, host"),
    ("publish = true", "images.app.deploy.publish", "expected a string, got a boolean"),
    ("update = { paralelism = 2 }", "images.app.deploy.update.paralelism",
     "unknown key (did you mean 'parallelism'?)"),
    ('update = { order = "first" }', "images.app.deploy.update.order", "'first' is not one of start-first, stop-first"),
    ('update = { failure_action = "undo" }', "images.app.deploy.update.failure_action",
     "'undo' is not one of rollback, pause, continue"),
    ("update = { delay = -1 }", "images.app.deploy.update.delay", "must be a number of seconds from 0 to 86400"),
    ('update = { monitor = "5s" }', "images.app.deploy.update.monitor", "expected a number, got a string"),
    ("update = { monitor = nan }", "images.app.deploy.update.monitor", "must be a number of seconds from 0 to 86400"),
    ('placement = ["manager"]', "images.app.deploy.placement[0]", "is not a constraint"),
    ('registry = "not a host"', "images.app.deploy.registry", "is not a registry address"),
    ("replica = 2", "images.app.deploy.replica", "unknown key (did you mean 'replicas'?)"),
])
def test_deploy_table_errors_name_the_key(tmp_path, deploy, where, words):
    message = load_error(tmp_path, PROJECT + f"\n[images.app.deploy]\n{deploy}\n")
    assert f": {where}: " in message and words in message, message


def test_deploy_and_undeploy_are_top_level_task_names(tmp_path):
    message = load_error(tmp_path, PROJECT.replace("[images.app]", "[images.deploy]")
                         .replace("[images.app.run]", "[images.deploy.run]"))
    assert "images.deploy: the name 'deploy' is taken by the top-level task `inv deploy`" in message


def test_a_deploy_table_with_ports_warns_that_a_swarm_publishes_on_every_interface(tmp_path, capsys):
    from conftest import write_project
    from invoke import Program

    from dockyard import namespace

    assert config.warnings(config.load(write_project(tmp_path, PROJECT))) == []  # no [deploy] table: run's 127.0.0.1
    path = write_project(tmp_path, PROJECT + '\n[images.app.deploy]\nreplicas = 2\n[images.base.deploy]\nreplicas = 2\n')
    warning = ("images.app.deploy: as a swarm service its port 8000/tcp is published on every interface of every "
               "node (a swarm has no address setting: the run table's host address does not apply)")
    assert config.warnings(config.load(path)) == [warning]  # base publishes nothing
    Program(namespace=namespace(path), version="0").run(["inv", "config"])
    assert capsys.readouterr().err == f"dockyard: warning: {warning}\n"


def test_the_readiness_url_is_aimed_at_each_tasks_published_port(tmp_path):
    from conftest import write_project

    spec = config.load(write_project(tmp_path, PROJECT.replace(
        'ports = ["8000:8000"]',
        'ports = ["9000:9000", "8000:8080"]\nready = { url = "http://localhost:8000/cgi-bin/hello?x=1" }'))).images["app"]
    mappings = [PortMapping("127.0.0.1", 32768, 9000), PortMapping("127.0.0.1", 32769, 8080)]
    assert task_url(spec, mappings) == "http://127.0.0.1:32769/cgi-bin/hello?x=1"


def test_replica_counts_read_as_english(capsys):
    from invoke import Context

    from dockyard.tasks import swarm as tasks

    outcome = {"service": "p-httpd", "action": "created", "reason": None, "replicas": 1, "tasks": []}
    assert tasks.outcome_lines(outcome) == ["p-httpd: created, 1 replica"]
    assert tasks.outcome_lines(outcome | {"replicas": 0})[0] == "p-httpd: created, 0 replicas"

    class Scaled:
        def project(self, c):
            return self

        key = "httpd"

        def scale(self, key, count, ready_timeout):
            return {"service": "p-httpd", "before": 2, "replicas": count, "tasks": []}

    for count, said in (("1", "p-httpd: 2 -> 1 replica\n"), ("3", "p-httpd: 2 -> 3 replicas\n")):
        tasks.scale(Context(), Scaled(), count)
        assert capsys.readouterr().out == said


@pytest.mark.parametrize("reference, as_in_repo_digests", [
    ("sha256:abc", "sha256:abc"),
    ("reg:5000/p/httpd:latest@sha256:abc", "reg:5000/p/httpd@sha256:abc"),
    ("reg:5000/p/httpd@sha256:abc", "reg:5000/p/httpd@sha256:abc"),
    ("p/httpd:latest", "p/httpd:latest"),
])
def test_a_service_image_reference_is_compared_as_the_engine_lists_digests(reference, as_in_repo_digests):
    from dockyard.cleanup import _by_digest

    assert _by_digest(reference) == as_in_repo_digests


def run_program(argv: list[str], capsys) -> tuple[int, str]:
    """Invoke's own program over the example's namespace, in this process: exit code, stdout."""
    from invoke import Program

    from dockyard import namespace

    try:
        Program(namespace=namespace(REPO / "containers.toml"), version="0").run(["inv", *argv])
        code = 0
    except SystemExit as e:
        code = e.code or 0
    return code, capsys.readouterr().out


def test_the_swarm_tasks_are_listed_and_each_flag_has_help(capsys):
    code, listing = run_program(["--list"], capsys)
    assert code == 0
    for name in ("deploy", "undeploy", "httpd.deploy", "httpd.scale", "httpd.undeploy"):
        assert f"\n  {name} " in listing, listing
    for name, flags in (("httpd.deploy", ("--replicas", "--push", "--registry", "--ready-timeout", "--json")),
                        ("httpd.scale", ("--replicas", "--ready-timeout", "--json")),
                        ("deploy", ("--replicas", "--push", "--no-build")), ("undeploy", ("--json",))):
        code, text = run_program(["-h", name], capsys)
        assert code == 0 and all(flag in text for flag in flags), text
        for line in text.split("Options:")[-1].splitlines():
            if line.strip().startswith("-"):
                assert "  " in line.strip(), f"flag without help in `inv -h {name}`: {line}"


def test_config_shows_the_deploy_table_as_it_resolves(tmp_path, capsys):
    import json

    from conftest import write_project
    from invoke import Program

    from dockyard import namespace

    path = write_project(tmp_path, PROJECT + '\n[images.app.deploy]\npublish = "host"\nplacement = ["node.role==manager"]\n')
    Program(namespace=namespace(path), version="0").run(["inv", "config", "--json"])
    images = json.loads(capsys.readouterr().out)["images"]
    update = {"parallelism": 1, "delay": 0.0, "order": "start-first", "failure_action": "rollback", "monitor": 5.0}
    assert images["app"]["deploy"] == {"replicas": 1, "publish": "host", "update": update,
                                       "placement": ["node.role==manager"], "registry": None}
    # No [deploy] table: what `inv deploy` would make of it, the defaults.
    assert images["base"]["deploy"] == {"replicas": 1, "publish": "ingress", "update": update, "placement": [],
                                        "registry": None}


def test_a_services_tmpfs_gets_its_size_and_mode_and_refuses_what_a_swarm_cannot_set(tmp_path, monkeypatch):
    from conftest import write_project

    from dockyard import engine, swarm

    monkeypatch.setattr(engine, "default_log_driver", lambda: "none")
    toml = PROJECT + 'tmpfs = ["/tmp", "/run:size=64m,mode=1777"]\npids = -1\n'
    project = config.load(write_project(tmp_path, toml))
    request = swarm.service_request(project, project.images["app"], "demo/app:latest", 1)
    mounts = request["task_template"]["ContainerSpec"]["Mounts"]
    assert [(m["Target"], m.get("TmpfsOptions")) for m in mounts if m["Type"] == "tmpfs"] == \
        [("/tmp", None), ("/run", {"SizeBytes": 64 * 1024 ** 2, "Mode": 0o1777})]
    assert "Pids" not in (request["task_template"].get("Resources") or {}).get("Limits", {})  # -1: no limit
    project = config.load(write_project(tmp_path, PROJECT + 'tmpfs = ["/tmp:noexec"]\n'))
    with pytest.raises(config.DockyardError, match=r"images.app.run.tmpfs\[0\]: 'noexec' cannot be given to a swarm"):
        swarm.service_request(project, project.images["app"], "demo/app:latest", 1)
