"""One pcq for the whole test session, put back to empty before every test.

pcq runs in memory (nothing written to disk but its signing key, in a temporary directory) on a
free port; its first lines on stdout name its address and the development partner tenant.
Set PCQ_BIN to the pcq binary when it is not on PATH.
"""

import os
import shutil
import subprocess
import tempfile
import uuid

import pytest
import requests

PCQ_BIN = os.environ.get("PCQ_BIN", "pcq")


class Pcq:
    """A running pcq and the tokens to call it with."""

    def __init__(self, url, partner, data_dir):
        self.url = url
        self.partner = partner
        self.data_dir = data_dir
        self.partner_token = self.mint_token()
        self.admin_token = self.mint_token("--role", "Pcq.Admin")

    def mint_token(self, *options):
        return subprocess.run(
            [PCQ_BIN, "token", "--tenant", self.partner, "--data-dir", self.data_dir, *options],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    def admin(self, method, path, **kwargs):
        """Calls a sandbox control (/_pcq/admin/...) and returns its JSON answer."""
        answer = requests.request(
            method,
            self.url + "/_pcq/admin" + path,
            headers={"Authorization": "Bearer " + self.admin_token},
            timeout=30,
            **kwargs,
        )
        answer.raise_for_status()
        return answer.json() if answer.content else None

    def partner_headers(self, request_id=None):
        return {
            "Authorization": "Bearer " + self.partner_token,
            "MS-RequestId": request_id or str(uuid.uuid4()),
        }


@pytest.fixture(scope="session")
def pcq():
    data_dir = tempfile.mkdtemp(prefix="pcq-tests-")
    server = subprocess.Popen(
        [PCQ_BIN, "serve", "--in-memory", "--data-dir", data_dir, "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = partner = None
        while url is None or partner is None:
            line = server.stdout.readline()
            if not line:
                raise RuntimeError(f"pcq exited before it was ready (status {server.wait()})")
            if line.startswith("pcq listening on "):
                url = line.split()[-1]
            elif line.startswith("development partner tenant: "):
                partner = line.split()[-1]
        yield Pcq(url, partner, data_dir)
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(autouse=True)
def empty_sandbox(pcq):
    """Every test starts from an empty pcq: no customers, faults or journal entries."""
    pcq.admin("POST", "/reset")
