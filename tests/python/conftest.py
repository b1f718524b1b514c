"""Starts a real `berth server` for the Python client tests and points the
official `kubernetes` client at its admin kubeconfig."""

import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _berth_bin():
    explicit = os.environ.get("BERTH_BIN")
    if explicit:
        return explicit
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "target"))
    return os.path.join(target, "debug", "berth")


@pytest.fixture(scope="session")
def berth_server():
    data_dir = tempfile.mkdtemp(prefix="berth-py-")
    port = _free_port()
    log = open(os.path.join(data_dir, "server.log"), "wb")
    proc = subprocess.Popen(
        [_berth_bin(), "server", "--data-dir", data_dir, "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    kubeconfig = os.path.join(data_dir, "admin.kubeconfig")
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"berth server exited: {open(log.name).read()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            if os.path.exists(kubeconfig):
                break
        except OSError:
            pass
        time.sleep(0.05)
    else:
        proc.kill()
        raise RuntimeError("berth server did not come up in 30s")
    yield kubeconfig
    proc.kill()
    proc.wait()
    log.close()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture()
def api(berth_server):
    from kubernetes import client, config

    api_client = config.new_client_from_config(config_file=berth_server)
    yield client, api_client
    api_client.close()
