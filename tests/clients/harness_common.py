"""Small helpers shared by the client drivers (standard library only, so that each driver's own
virtualenv needs nothing beyond the client under test)."""

import json
import os
import re
import sys
import traceback
import urllib.error
import urllib.request
import uuid

GUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
RFC3339_UTC_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
ENVELOPE_KEYS = {"code", "description", "message", "errorName", "isRetryable",
                 "parameters", "data", "source"}


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"missing environment variable {name} (run this through tests/clients/run.sh)")
    return value


def is_guid(value):
    return isinstance(value, str) and bool(GUID_RE.match(value))


def is_number(value):
    # bool is an int subclass in Python; a JSON true/false is not a numeric code.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_error_envelope(body):
    """True when `body` is pcq's JSON error object with a numeric code."""
    return (isinstance(body, dict) and ENVELOPE_KEYS <= set(body)
            and is_number(body["code"]) and isinstance(body["description"], str)
            and body["description"] != "")


def short(value, limit=600):
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + "..."


class Checks:
    """Counts named checks; reports each; the driver calls finish() at the end."""

    def __init__(self, driver):
        self.driver = driver
        self.passed = 0
        self.failed = 0
        self.fail_fast = os.environ.get("PCQTEST_FAIL_FAST") == "1"

    def check(self, name, condition, detail=""):
        if condition:
            self.passed += 1
            print(f"  ok   {name}")
        else:
            self.failed += 1
            print(f"  FAIL {name}")
            if detail:
                for line in str(detail).splitlines():
                    print(f"         {line}")
            if self.fail_fast:
                self.finish()
        return bool(condition)

    def crashed(self, section):
        """Records an unexpected exception in a section as one failed check."""
        self.check(f"{section}: ran without an unexpected exception", False,
                   traceback.format_exc())

    def finish(self):
        print(f"{self.driver}: {self.passed} checks passed, {self.failed} failed")
        print(f"{self.passed} passed, {self.failed} failed")
        sys.exit(1 if self.failed else 0)


class Plain:
    """A bare urllib client, used only for set-up calls that no client under test offers
    (creating customers for the ms-partner-tools driver, issuing sandbox validation codes)."""

    def __init__(self, base_url):
        self.base_url = base_url.rstrip("/")

    def call(self, method, path, token, body=None, headers=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, raw, got = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            status, raw, got = error.code, error.read(), error.headers
        text = raw.decode("utf-8", "replace")
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = None
        return status, parsed, text, got


def unique_suffix():
    return uuid.uuid4().hex[:10]
