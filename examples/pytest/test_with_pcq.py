"""What a partner's integration tests look like with pcq: a client with retries, tested against
faults pcq injects on purpose, and the request journal to check what the client really sent."""

import uuid

import requests


def create_customer(pcq, domain, attempts=3):
    """Creates a customer the way Partner Center asks clients to: on a lost answer or a 5xx, try
    again with the same MS-RequestId, so that Partner Center answers a retry of a write that
    already happened with that write's answer instead of doing it twice."""
    request_id = str(uuid.uuid4())
    body = {"companyProfile": {"domain": domain, "companyName": "Contoso"}}
    for _ in range(attempts):
        try:
            answer = requests.post(
                pcq.url + "/v1/customers",
                json=body,
                headers=pcq.partner_headers(request_id),
                timeout=10,
            )
        except requests.ConnectionError:
            continue  # the answer was lost: ask again
        if answer.status_code < 500:
            return answer
    raise AssertionError(f"no answer after {attempts} attempts")


def customers(pcq):
    answer = requests.get(pcq.url + "/v1/customers", headers=pcq.partner_headers(), timeout=10)
    answer.raise_for_status()
    return answer.json()["items"]


def journal(pcq, **filters):
    """The requests pcq served, newest first."""
    return pcq.admin("GET", "/requests", params=filters)["items"]


def test_every_test_starts_empty(pcq):
    assert customers(pcq) == []
    assert pcq.admin("GET", "/faults") == []


def test_a_503_is_retried(pcq):
    fault = pcq.admin(
        "POST",
        "/faults",
        json={"method": "POST", "path": "/v1/customers", "status": 503, "count": 1},
    )

    answer = create_customer(pcq, "retry.example.edu")

    assert answer.status_code == 201
    assert [c["companyProfile"]["domain"] for c in customers(pcq)] == ["retry.example.edu"]
    # The journal shows both attempts, newest first, with one MS-RequestId: the first was
    # answered by the fault, the second reached pcq and created the customer.
    sent = journal(pcq, method="POST", path="/v1/customers")
    assert [entry["status"] for entry in sent] == [201, 503]
    assert sent[1]["fault"] == fault["id"]
    assert sent[0]["requestId"] == sent[1]["requestId"]
    assert sent[0]["requestBody"]["companyProfile"]["domain"] == "retry.example.edu"


def test_a_lost_answer_is_retried_without_a_second_customer(pcq):
    # The customer is created and committed, then the connection is closed before the answer.
    fault = pcq.admin(
        "POST",
        "/faults",
        json={
            "method": "POST",
            "path": "/v1/customers",
            "status": "reset",
            "when": "after",
            "count": 1,
        },
    )

    answer = create_customer(pcq, "lost.example.edu")

    assert answer.status_code == 201
    assert len(customers(pcq)) == 1
    retry, first = journal(pcq, method="POST", path="/v1/customers")
    # No answer was sent to the first attempt (status 0): the fault closed its connection.
    assert (first["status"], first["fault"]) == (0, fault["id"])
    assert first["replayed"] is False
    assert retry["replayed"] is True
    assert retry["responseBody"]["id"] == customers(pcq)[0]["id"]


def test_throttling_carries_retry_after(pcq):
    pcq.admin(
        "POST",
        "/faults",
        json={"path": "/v1/customers", "status": 429, "retryAfterSeconds": 7, "count": 1},
    )

    answer = requests.get(pcq.url + "/v1/customers", headers=pcq.partner_headers(), timeout=10)

    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "7"
    assert answer.json()["parameters"]["retryAfterSeconds"] == 7
