"""Real servers for the deployment tests: the example project under gunicorn with its production
settings (``deploy/gunicorn.conf.py``), and Debian's nginx or Varnish in front of it, each on free
loopback ports with its own prefix, configuration (rendered from ``deploy/``) and working
directory, and stopped by the PID of the process the test started."""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from example_project.blog.testing import ROOT, demo_env, prepare_database
from example_project.serving import free_port, listening, stop, wait_until

DEPLOY = ROOT / "deploy"
NGINX = "/usr/sbin/nginx"
VARNISHD = "/usr/sbin/varnishd"
DEMO_AUTH = "Basic " + base64.b64encode(b"demo:demo").decode()


def render(template: Path, **values: object) -> str:
    """``template`` with each ``{{ name }}`` replaced by ``values[name]``."""
    text = template.read_text()
    for name, value in values.items():
        text = text.replace("{{ " + name + " }}", str(value))
    assert "{{" not in text, f"unfilled placeholder in {template}"
    return text


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str) -> str:
        return self.headers.get(name) or ""

    def json(self) -> Any:
        raw = self.body
        if self.header("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        return json.loads(raw)


def call(
    port: int,
    method: str,
    path: str,
    headers: Mapping[str, str] | None = None,
    body: object = None,
) -> Reply:
    """One request on a fresh connection to 127.0.0.1:``port``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    payload = None if body is None else json.dumps(body).encode()
    sent = dict(headers or {})
    if payload is not None:
        sent.setdefault("Content-Type", "application/json")
    try:
        connection.request(method, path, body=payload, headers=sent)
        response = connection.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        connection.close()


@dataclass
class App:
    port: int
    log_path: Path
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def prepared_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, seeded demo database (copy it per server: each has its own cache)."""
    path = tmp_path_factory.mktemp("deploy-db") / "demo.sqlite3"
    prepare_database(demo_env(path), articles=5)
    return path


@contextmanager
def app_server(tmp_path: Path, database: Path, **environ: str) -> Iterator[App]:
    """The example project with ``settings_production`` under gunicorn (``deploy/gunicorn.conf.py``),
    one worker (its local-memory cache is the version cache), on a copy of ``database``."""
    copy = tmp_path / "app.sqlite3"
    shutil.copyfile(database, copy)
    port = free_port()
    env = demo_env(copy)
    env.update(
        DJANGO_SETTINGS_MODULE="example_project.settings_production",
        DJANGO_SECRET_KEY="deploy-tests-only",
        PYTHONPATH=str(ROOT),
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS="1",
        **environ,
    )
    log_path = tmp_path / "gunicorn.log"
    command = [
        sys.executable, "-m", "gunicorn", "-c", str(DEPLOY / "gunicorn.conf.py"),
        "example_project.wsgi",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    app = App(port, log_path, process)
    try:
        try:
            wait_until(lambda: listening(port), process, what="gunicorn")
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}:\n{app.log()}") from None
        yield app
    finally:
        stop(process, timeout=10)


def _nginx_main(prefix: Path, site: Path) -> str:
    temp = "\n".join(
        f"    {kind}_temp_path {prefix / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # As root, nginx's workers would run as nobody, who cannot enter the test's directories.
    user = "user root root;\n" if os.geteuid() == 0 else ""
    return (
        f"{user}daemon off;\nworker_processes 1;\npid {prefix / 'nginx.pid'};\n"
        f"error_log {prefix / 'error.log'} warn;\n"
        "events { worker_connections 64; }\n"
        f"http {{\n    access_log {prefix / 'access.log'};\n{temp}\n"
        f"    include {site};\n}}\n"
    )


@contextmanager
def nginx(tmp_path: Path, template: str, app: App, **values: object) -> Iterator[int]:
    """Debian's nginx with ``deploy/nginx/<template>`` in front of ``app``; yields its port."""
    if not os.access(NGINX, os.X_OK):
        pytest.skip(f"needs Debian's nginx ({NGINX}): run scripts/ensure-nginx as root")
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    port = free_port()
    site = prefix / "site.conf"
    site.write_text(
        render(
            DEPLOY / "nginx" / template,
            app=f"127.0.0.1:{app.port}",
            listen=f"127.0.0.1:{port}",
            cache_dir=prefix / "cache",
            **values,
        )
    )
    main = prefix / "nginx.conf"
    main.write_text(_nginx_main(prefix, site))
    command = [
        NGINX,
        "-p",
        str(prefix),
        "-c",
        str(main),
        "-e",
        str(prefix / "error.log"),
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        wait_until(lambda: listening(port), process, what="nginx")
        yield port
    finally:
        stop(process, timeout=10)


@contextmanager
def varnish(tmp_path: Path, app: App, port: int, ttl: str = "1h") -> Iterator[int]:
    """Debian's varnishd with ``deploy/varnish/default.vcl`` in front of ``app`` on ``port``."""
    if not os.access(VARNISHD, os.X_OK):
        pytest.skip(
            f"needs Debian's varnish ({VARNISHD}): run scripts/ensure-varnish as root"
        )
    if not list(Path("/usr/lib").glob("*/varnish/vmods/libvmod_xkey.so")):
        pytest.skip(
            "needs the xkey vmod (varnish-modules): run scripts/ensure-varnish as root"
        )
    workdir = tmp_path / "varnish"
    workdir.mkdir()
    vcl = workdir / "default.vcl"
    vcl.write_text(
        render(
            DEPLOY / "varnish" / "default.vcl",
            app_host="127.0.0.1",
            app_port=app.port,
            ttl=ttl,
        )
    )
    command = [
        VARNISHD, "-F", "-j", "none", "-a", f"127.0.0.1:{port}", "-f", str(vcl),
        "-n", str(workdir / "work"), "-s", "malloc,32m", "-T", "127.0.0.1:0",
    ]  # fmt: skip
    log_path = workdir / "varnishd.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        try:
            wait_until(lambda: listening(port), process, what="varnishd", timeout=60)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}:\n{log_path.read_text()}") from None
        yield port
    finally:
        stop(process, timeout=15)


def article_path(port: int) -> str:
    """The API path of the first article of the seeded demo."""
    listing = call(port, "GET", "/api/articles/")
    assert listing.status == 200, listing.body[:500]
    first = json.loads(listing.body)["results"][0]
    return f"/api/articles/{first['id']}/"
