"""The example project's containers.toml with every name made unique: for the tests and the bench.

Both run beside whatever else the engine holds, so tags, container names and the port are
their own; the images themselves are the example's.
"""

ISOLATED_TOML = """
[project]
name = "{name}"

[images.busybox]
tag = "{name}/busybox:latest"
dir = "images/busybox"
run = {{ name = "{name}-busybox" }}

[images.busybox.base]
rootfs = "rootfs.sh"
changes = ['CMD ["sh"]']

[images.my-app]
tag = "{name}/my-app:latest"
dir = "images/my-app"
run = {{ name = "{name}-my-app" }}

[images.httpd]
tag = "{name}/httpd:latest"
dir = "images/busybox-httpd"

[images.httpd.run]
name = "{name}-httpd"
ports = ["{port}:{port}"]
environment = {{ HTTPD_PORT = "{port}" }}
ready = {{ url = "http://127.0.0.1:{port}/cgi-bin/hello-world", timeout = 30 }}
cap_add = ["SETUID", "SETGID"]
after = ["api"]

[images.httpd.watch]
sync = {{ "hello-world.cgi" = "/www/cgi-bin/hello-world", "from-api.cgi" = "/www/cgi-bin/from-api", "index.html" = "/www/index.html" }}

[images.api]
tag = "{name}/api:latest"
dir = "images/api"

[images.api.run]
name = "{name}-api"
service = true
volumes = ["data:/data"]
cap_add = ["SETUID", "SETGID"]
"""
