"""Drives pcq with `ms-partner-tools` 0.1.1 (requests + strict pydantic 1 models).

The package's public customer operation is `PartnerTools.customer.get_customers()`
(GET /v1/customers, parsed into its strict `Customer` model, which requires id,
companyProfile{companyName, domain, tenantId} and relationshipToPartner). It has no
get-by-id operation, so a single customer is fetched through its own `ApiClient.get` and parsed
with the same `Customer` model. Customers are created with plain urllib first (the package has no
create operation), so this driver does not depend on the other one.

Run through tests/clients/run.sh, which passes the server URL and tokens in PCQTEST_* variables.
"""

import logging
import uuid

import pydantic
from partner_tools import PartnerTools
from partner_tools.auth import AuthInfo
from partner_tools.models import Customer

from harness_common import Checks, Plain, env, is_error_envelope, is_guid, short, unique_suffix

URL = env("PCQTEST_URL")
TOKEN_USER = env("PCQTEST_TOKEN_USER")
TOKEN_APP = env("PCQTEST_TOKEN_APP")
TOKEN_OTHER = env("PCQTEST_TOKEN_OTHER")

checks = Checks("ms-partner-tools")
check = checks.check
plain = Plain(URL)


class StaticToken(AuthInfo):
    """AuthInfo that hands out a fixed bearer token (no MSAL, no token cache)."""

    def __init__(self, token):
        super().__init__(enable_cache=False)
        self.token = token

    def _get_token(self):
        return self.token


def partner_tools(token):
    tools = PartnerTools(StaticToken(token))
    tools._api_client._base = URL  # the package hard-codes the production host here
    return tools


class WarningCatcher(logging.Handler):
    """The package reports non-200 answers only as warnings on the root logger."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


warnings = WarningCatcher()
logging.getLogger().addHandler(warnings)

# ---------------------------------------------------------------------------------------------
# Set-up: three customers created over plain HTTP
# ---------------------------------------------------------------------------------------------
print("== set-up: create customers (plain HTTP)")
RUN = unique_suffix()
created = {}
for n in range(3):
    domain = f"mpt-{n}-{RUN}.onmicrosoft.com"
    name = f"MPT Customer {n} {RUN}"
    status, body, text, _ = plain.call(
        "POST", "/v1/customers", TOKEN_USER,
        body={"companyProfile": {"domain": domain, "companyName": name}})
    ok = status == 201 and isinstance(body, dict) and is_guid(body.get("id"))
    check(f"set-up: POST /v1/customers ({domain}) -> 201", ok, f"HTTP {status} {short(text)}")
    if ok:
        created[body["id"]] = (domain, name)

# ---------------------------------------------------------------------------------------------
# customer.get_customers(): strict pydantic parsing of GET /v1/customers
# ---------------------------------------------------------------------------------------------
print("== PartnerTools.customer.get_customers()")
tools = partner_tools(TOKEN_USER)
listed = None
try:
    warnings.messages.clear()
    listed = tools.customer.get_customers()
    check("get_customers() parses every item into the strict Customer model", True)
except pydantic.ValidationError as error:
    check("get_customers() parses every item into the strict Customer model", False, str(error))
except Exception:  # noqa: BLE001
    checks.crashed("get_customers()")

if listed is not None:
    check("get_customers() returns Customer instances",
          all(isinstance(c, Customer) for c in listed), repr(listed[:3]))
    check("get_customers() logged no 'Request not accepted' warning",
          not warnings.messages, warnings.messages)
    by_id = {c.id: c for c in listed}
    check("every customer created above is listed",
          set(created) <= set(by_id), f"created={sorted(created)} listed={sorted(by_id)}")
    wrong = []
    for cid, (domain, name) in created.items():
        c = by_id.get(cid)
        if c is None:
            continue
        if (c.companyProfile.domain, c.companyProfile.companyName, c.companyProfile.tenantId,
                c.relationshipToPartner) != (domain, name, cid, "reseller"):
            wrong.append(c.dict())
    check("listed customers carry the created domain, companyName, tenantId == id, 'reseller'",
          not wrong, wrong)
    check("no customer is listed twice", len(by_id) == len(listed), len(listed))

# ---------------------------------------------------------------------------------------------
# A single customer through the package's ApiClient and Customer model
# ---------------------------------------------------------------------------------------------
print("== ApiClient.get('customers/{id}') + Customer model")
if created:
    cid, (domain, name) = next(iter(created.items()))
    try:
        raw = tools._api_client.get(f"customers/{cid}")
        one = Customer(**raw)
        check("GET customers/{id} parses into the strict Customer model",
              one.id == cid and one.companyProfile.tenantId == cid
              and one.companyProfile.domain == domain and one.companyProfile.companyName == name
              and one.relationshipToPartner == "reseller", one.dict())
    except pydantic.ValidationError as error:
        check("GET customers/{id} parses into the strict Customer model", False, str(error))
    except Exception:  # noqa: BLE001
        checks.crashed("customer by id")

# ---------------------------------------------------------------------------------------------
# App-only token and another partner
# ---------------------------------------------------------------------------------------------
print("== other credentials")
try:
    app_listed = partner_tools(TOKEN_APP).customer.get_customers()
    check("App-only token: get_customers() parses and lists the same customers",
          set(created) <= {c.id for c in app_listed}, [c.id for c in app_listed])
except Exception:  # noqa: BLE001
    checks.crashed("App-only get_customers()")

try:
    other_listed = partner_tools(TOKEN_OTHER).customer.get_customers()
    check("another partner's get_customers() shows none of these customers",
          not (set(created) & {c.id for c in other_listed}), [c.id for c in other_listed])
except Exception:  # noqa: BLE001
    checks.crashed("other partner get_customers()")

# ---------------------------------------------------------------------------------------------
# A bad token: an error on the client side, the server keeps serving
# ---------------------------------------------------------------------------------------------
print("== bad token")
bad_tools = partner_tools("not-a-jwt." + uuid.uuid4().hex)
warnings.messages.clear()
outcome = None
try:
    bad_tools.customer.get_customers()
    outcome = "returned a list"
except KeyError as error:
    # The package logs the error body and then looks for resp['items'], which an error has not.
    outcome = f"KeyError {error}"
except Exception as error:  # noqa: BLE001
    outcome = f"{type(error).__name__}: {error}"
check("bad token: get_customers() raises instead of returning customers",
      outcome is not None and outcome != "returned a list", outcome)
check("bad token: the package logged a non-200 warning with pcq's error body",
      any("status: 401" in m for m in warnings.messages)
      and any("'code':" in m and "'description':" in m for m in warnings.messages),
      warnings.messages)

status, body, text, headers = plain.call("GET", "/v1/customers", "not-a-jwt")
check("bad token over plain HTTP -> 401 JSON envelope with WWW-Authenticate",
      status == 401 and is_error_envelope(body) and headers.get("WWW-Authenticate") is not None,
      f"HTTP {status} {short(text)} WWW-Authenticate={headers.get('WWW-Authenticate')}")

try:
    after = tools.customer.get_customers()
    check("the server still serves valid callers after the bad-token call",
          set(created) <= {c.id for c in after}, [c.id for c in after])
except Exception:  # noqa: BLE001
    checks.crashed("get_customers() after the bad token")

checks.finish()
