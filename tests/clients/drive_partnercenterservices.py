"""Drives pcq with `partnercenterservices` 0.1.2 (AutoRest/msrest client generated from the
Partner Center swagger).

Two levels are used and labelled as such in the check names:
  [generated]  the package's generated operations and models (customer get and list);
  [pipeline]   requests the package has no operation for (customer create, qualifications,
               validation codes, legacy qualification), sent through the same msrest
               ServiceClient (`client._client`), so the package's user agent, credentials and
               header stack reach pcq's routes.
The sandbox's admin call that issues a validation code uses plain urllib (set-up, not a client
feature).

Run through tests/clients/run.sh, which passes the server URL and tokens in PCQTEST_* variables.
"""

import json
import random
import threading
import uuid

from msrest.authentication import BasicTokenAuthentication
from microsoft.store.partnercenterservices import MicrosoftPartnerStoreApis
from microsoft.store.partnercenterservices.models import (
    MicrosoftPartnerSdkContractsV1CollectionsResourceCollectionMicrosoftPartnerSdkContractsV1Customer
    as CustomerCollection,
    MicrosoftPartnerSdkContractsV1Customer as CustomerModel,
)

from harness_common import (Checks, Plain, env, is_error_envelope, is_guid, is_number,
                            RFC3339_UTC_RE, short, unique_suffix)

URL = env("PCQTEST_URL")
PARTNER = env("PCQTEST_PARTNER")
OTHER_PARTNER = env("PCQTEST_OTHER_PARTNER")
TOKEN_USER = env("PCQTEST_TOKEN_USER")
TOKEN_APP = env("PCQTEST_TOKEN_APP")
TOKEN_ADMIN = env("PCQTEST_TOKEN_ADMIN")
TOKEN_OTHER = env("PCQTEST_TOKEN_OTHER")

API_VERSION = "1"  # the generated ops take the path's {version}
GCC = "GovernmentCommunityCloud"

checks = Checks("partnercenterservices")
check = checks.check
plain = Plain(URL)


def make_client(token):
    return MicrosoftPartnerStoreApis(BasicTokenAuthentication({"access_token": token}),
                                     base_url=URL)


user_client = make_client(TOKEN_USER)
app_client = make_client(TOKEN_APP)
other_client = make_client(TOKEN_OTHER)


class Reply:
    def __init__(self, response):
        self.status = response.status_code
        self.raw = response.content
        self.text = response.text
        self.headers = response.headers
        try:
            self.body = json.loads(self.text) if self.text else None
        except ValueError:
            self.body = None

    def __repr__(self):
        return f"HTTP {self.status} {short(self.text)}"


def pipeline(client, method, path, query=None, body=None, request_id=None, correlation_id=None):
    """Sends a request through the package's msrest ServiceClient with the same headers its
    generated operations add (Content-Type even on GET, x-ms-client-request-id,
    accept-language, MS-CorrelationId and optionally MS-RequestId)."""
    service = client._client
    url = service.format_url(path)
    build = {"GET": service.get, "POST": service.post, "PUT": service.put}[method]
    request = build(url, query or {})
    headers = {"Content-Type": "application/json; charset=utf-8",
               "MS-CorrelationId": correlation_id or str(uuid.uuid4())}
    if client.config.generate_client_request_id:
        headers["x-ms-client-request-id"] = str(uuid.uuid1())
    if client.config.accept_language is not None:
        headers["accept-language"] = client.config.accept_language
    if request_id is not None:
        headers["MS-RequestId"] = request_id
    return Reply(service.send(request, headers, content=body, stream=False))


def header(headers, name):
    return headers.get(name) if headers is not None else None


def error_code(reply):
    return reply.body.get("code") if isinstance(reply.body, dict) else None


# ---------------------------------------------------------------------------------------------
# Set-up and customer create ([pipeline]: the package has no POST /v1/customers operation)
# ---------------------------------------------------------------------------------------------
RUN = unique_suffix()
customers = {}  # role -> (id, domain, company name)


def create_customer(role, body=None, pascal=False):
    domain = f"pcs-{role}-{RUN}.onmicrosoft.com"
    name = f"PCS {role} {RUN}"
    if body is None:
        if pascal:
            body = {"CompanyProfile": {"Domain": domain, "CompanyName": name}}
        else:
            body = {"companyProfile": {"domain": domain, "companyName": name}}
    correlation = str(uuid.uuid4())
    reply = pipeline(user_client, "POST", "/v1/customers", body=body, correlation_id=correlation)
    c = reply.body if isinstance(reply.body, dict) else {}
    profile = c.get("companyProfile") or {}
    problems = []
    if reply.status != 201:
        problems.append(f"status {reply.status}")
    if not is_guid(c.get("id")):
        problems.append("id is not a GUID")
    if profile.get("tenantId") != c.get("id"):
        problems.append("companyProfile.tenantId != id")
    if profile.get("domain") != domain:
        problems.append("companyProfile.domain differs")
    if profile.get("companyName") != name:
        problems.append("companyProfile.companyName differs")
    if c.get("relationshipToPartner") != "reseller":
        problems.append("relationshipToPartner is not reseller")
    if (c.get("attributes") or {}).get("objectType") != "Customer":
        problems.append("attributes.objectType is not Customer")
    if header(reply.headers, "MS-CorrelationId") != correlation:
        problems.append("MS-CorrelationId not echoed")
    if not is_guid(header(reply.headers, "MS-RequestId")):
        problems.append("no generated MS-RequestId header")
    style = "PascalCase" if pascal else "camelCase"
    check(f"[pipeline] POST /v1/customers ({role}, {style} body) -> 201 Customer",
          not problems, f"{problems}\n{reply!r}")
    customers[role] = (c.get("id"), domain, name)
    return c


print("== customers: create [pipeline]")
BILLING = {"email": f"billing-{RUN}@example.com", "culture": "en-US", "language": "en",
           "companyName": f"PCS edu {RUN}", "firstName": "Ada", "lastName": "Lovelace",
           "defaultAddress": {"country": "US", "city": "Redmond", "state": "WA",
                              "addressLine1": "1 Microsoft Way", "postalCode": "98052",
                              "firstName": "Ada", "lastName": "Lovelace",
                              "phoneNumber": "4255550100"}}
created_edu = create_customer("edu", body={
    "companyProfile": {"domain": f"pcs-edu-{RUN}.onmicrosoft.com",
                       "companyName": f"PCS edu {RUN}"},
    "billingProfile": BILLING})
check("[pipeline] create echoes the billingProfile as sent",
      (created_edu.get("billingProfile") or {}).get("email") == BILLING["email"]
      and (created_edu.get("billingProfile") or {}).get("defaultAddress", {}).get("city")
      == "Redmond", short(created_edu.get("billingProfile")))
for role in ("gccbody", "gccquery", "soe", "fresh", "replay", "concurrent", "codeerrors",
             "legacysoe", "legacyedu", "legacygcc"):
    create_customer(role)
create_customer("pascal", pascal=True)

dup = pipeline(user_client, "POST", "/v1/customers",
               body={"companyProfile": {"domain": customers["fresh"][1], "companyName": "dup"}})
check("[pipeline] POST /v1/customers with a domain already used -> 409 JSON envelope",
      dup.status == 409 and is_error_envelope(dup.body), repr(dup))

ids = {role: value[0] for role, value in customers.items()}

# ---------------------------------------------------------------------------------------------
# Customer get ([generated]: getvversioncustomerscustomer.id)
# ---------------------------------------------------------------------------------------------
print("== customers: get [generated]")
try:
    cid, domain, name = customers["edu"]
    correlation, request_id = str(uuid.uuid4()), str(uuid.uuid4())
    raw = user_client.getvversioncustomerscustomer.id(
        cid, API_VERSION, ms_correlation_id=correlation, ms_request_id=request_id, raw=True)
    model = raw.output
    check("[generated] getvversioncustomerscustomer.id -> HTTP 200",
          raw.response.status_code == 200, f"HTTP {raw.response.status_code} {raw.response.text}")
    check("[generated] get deserializes into MicrosoftPartnerSdkContractsV1Customer",
          isinstance(model, CustomerModel), repr(model))
    if isinstance(model, CustomerModel):
        profile = model.company_profile
        check("[generated] customer.id is the created id", model.id == cid, model.id)
        check("[generated] company_profile.tenant_id/domain/company_name match the create",
              profile is not None and profile.tenant_id == cid and profile.domain == domain
              and profile.company_name == name,
              profile and (profile.tenant_id, profile.domain, profile.company_name))
        check("[generated] relationship_to_partner == 'reseller'",
              model.relationship_to_partner == "reseller", model.relationship_to_partner)
        check("[generated] commerce_id is a GUID and allow_delegated_access a bool",
              is_guid(model.commerce_id) and isinstance(model.allow_delegated_access, bool),
              (model.commerce_id, model.allow_delegated_access))
        check("[generated] attributes.object_type == 'Customer'",
              model.attributes is not None and model.attributes.object_type == "Customer",
              model.attributes and model.attributes.object_type)
        check("[generated] links.self.uri points at the customer",
              model.links is not None and model.links.itself is not None
              and model.links.itself.uri == f"/v1/customers/{cid}",
              model.links and model.links.itself and model.links.itself.uri)
        billing = model.billing_profile
        check("[generated] billing_profile deserializes with the values sent",
              billing is not None and billing.email == BILLING["email"]
              and billing.first_name == "Ada" and billing.default_address is not None
              and billing.default_address.postal_code == "98052"
              and billing.default_address.phone_number == "4255550100",
              billing and billing.as_dict())
    check("[generated] get echoes MS-CorrelationId and MS-RequestId",
          header(raw.response.headers, "MS-CorrelationId") == correlation
          and header(raw.response.headers, "MS-RequestId") == request_id,
          dict(raw.response.headers))

    braced = user_client.getvversioncustomerscustomer.id("{" + cid + "}", API_VERSION, raw=True)
    check("[generated] get with the id in braces (sent %7B..%7D) finds the same customer",
          braced.response.status_code == 200 and braced.output is not None
          and braced.output.id == cid, f"HTTP {braced.response.status_code} {braced.response.text}")

    app_get = app_client.getvversioncustomerscustomer.id(cid, API_VERSION)
    check("[generated] App-only token may read the customer",
          isinstance(app_get, CustomerModel) and app_get.id == cid, repr(app_get))

    missing_id = str(uuid.uuid4())
    missing = user_client.getvversioncustomerscustomer.id(missing_id, API_VERSION, raw=True)
    missing_body = missing.response.json() if missing.response.content else None
    check("[generated] unknown customer -> None (client swallows 404), body is a JSON envelope",
          missing.output is None and missing.response.status_code == 404
          and is_error_envelope(missing_body),
          f"HTTP {missing.response.status_code} {missing.response.text}")

    bad = user_client.getvversioncustomerscustomer.id("not-a-guid", API_VERSION, raw=True)
    bad_body = bad.response.json() if bad.response.content else None
    check("[generated] malformed customer id -> 400 with code 900118",
          bad.output is None and bad.response.status_code == 400
          and is_error_envelope(bad_body) and bad_body["code"] == 900118,
          f"HTTP {bad.response.status_code} {bad.response.text}")

    foreign = other_client.getvversioncustomerscustomer.id(cid, API_VERSION, raw=True)
    foreign_body = foreign.response.json() if foreign.response.content else None
    check("[generated] another partner's token on this customer -> 404 code 60003 (None), "
          "as for an unknown customer",
          foreign.output is None and foreign.response.status_code == 404
          and is_error_envelope(foreign_body) and foreign_body["code"] == 60003,
          f"HTTP {foreign.response.status_code} {foreign.response.text}")

    unauthorized = make_client("not-a-jwt").getvversioncustomerscustomer.id(
        cid, API_VERSION, raw=True)
    unauthorized_body = unauthorized.response.json() if unauthorized.response.content else None
    check("[generated] bad token -> None (client swallows 401); 401 envelope + WWW-Authenticate",
          unauthorized.output is None and unauthorized.response.status_code == 401
          and is_error_envelope(unauthorized_body)
          and header(unauthorized.response.headers, "WWW-Authenticate") is not None,
          f"HTTP {unauthorized.response.status_code} {unauthorized.response.text}")

    pascal = user_client.getvversioncustomerscustomer.id(ids["pascal"], API_VERSION)
    check("[generated] the customer created with a PascalCase body reads back camelCase",
          isinstance(pascal, CustomerModel) and pascal.company_profile is not None
          and pascal.company_profile.domain == customers["pascal"][1], repr(pascal))
except Exception:  # noqa: BLE001 - reported as a failed check, the run goes on
    checks.crashed("customer get")

# ---------------------------------------------------------------------------------------------
# Customer list ([generated]: getvversioncustomersfilterfilter.value), paged by 2
# ---------------------------------------------------------------------------------------------
print("== customers: list [generated]")
try:
    seen, pages, page_problems = [], 0, []
    extra_headers, seek = None, None
    while True:
        raw = user_client.getvversioncustomersfilterfilter.value(
            API_VERSION, size=2, seek_operation=seek, custom_headers=extra_headers, raw=True)
        page = raw.output
        pages += 1
        if raw.response.status_code != 200 or not isinstance(page, CustomerCollection):
            page_problems.append(f"page {pages}: HTTP {raw.response.status_code} "
                                 f"{raw.response.text[:300]}")
            break
        items = page.items or []
        seen.extend(items)
        if page.total_count != len(items) or len(items) > 2:
            page_problems.append(f"page {pages}: totalCount {page.total_count}, "
                                 f"{len(items)} items")
        if page.attributes is None or page.attributes.object_type != "Collection":
            page_problems.append(f"page {pages}: attributes.objectType is not Collection")
        nxt = page.links.next if page.links is not None else None
        if nxt is None:
            break
        token = {h.key: h.value for h in (nxt.headers or [])}.get("MS-ContinuationToken")
        if not token or nxt.method != "GET" or pages > 100:
            page_problems.append(f"page {pages}: unusable next link {nxt.as_dict()}")
            break
        extra_headers, seek = {"MS-ContinuationToken": token}, "next"
    check("[generated] list pages (size=2) deserialize into the collection model",
          not page_problems and pages >= 4, f"pages={pages} {page_problems}")
    listed_ids = [c.id for c in seen]
    check("[generated] paging returns every customer exactly once",
          len(listed_ids) == len(set(listed_ids)) and set(ids.values()) <= set(listed_ids),
          f"listed={listed_ids} created={list(ids.values())}")
    by_id = {c.id: c for c in seen}
    mismatched = [role for role, (cid, domain, name) in customers.items()
                  if cid not in by_id
                  or by_id[cid].company_profile is None
                  or by_id[cid].company_profile.domain != domain
                  or by_id[cid].company_profile.company_name != name
                  or by_id[cid].company_profile.tenant_id != cid
                  or by_id[cid].relationship_to_partner != "reseller"]
    check("[generated] listed items carry the created domain/name/tenantId and 'reseller'",
          not mismatched, f"mismatched roles: {mismatched}")

    other_page = other_client.getvversioncustomersfilterfilter.value(API_VERSION)
    other_ids = {c.id for c in (other_page.items or [])} if other_page else None
    check("[generated] another partner's list shows none of these customers",
          other_ids is not None and not (other_ids & set(ids.values())), repr(other_ids))

    bad_size = user_client.getvversioncustomersfilterfilter.value(API_VERSION, size=0, raw=True)
    bad_body = bad_size.response.json() if bad_size.response.content else None
    check("[generated] size=0 -> None (client swallows 400), body is a JSON envelope",
          bad_size.output is None and bad_size.response.status_code == 400
          and is_error_envelope(bad_body),
          f"HTTP {bad_size.response.status_code} {bad_size.response.text}")
except Exception:  # noqa: BLE001
    checks.crashed("customer list")

# ---------------------------------------------------------------------------------------------
# Validation codes: issue (sandbox admin, plain urllib) and read ([pipeline])
# ---------------------------------------------------------------------------------------------
print("== validation codes")
VALIDATION_ID = str(random.randint(10**8, 10**9 - 1))
ORG = f"PCS Agency {RUN}"


def find_code(reply):
    if reply.status != 200 or not isinstance(reply.body, list):
        return None
    return next((v for v in reply.body if isinstance(v, dict)
                 and v.get("validationId") == VALIDATION_ID), None)


def remaining_creates():
    code = find_code(pipeline(user_client, "GET", "/v1/customers/all/validations"))
    return code.get("remainingCreates") if code else None


status, issued, text, _ = plain.call(
    "POST", f"/_pcq/admin/partners/{PARTNER}/validation-codes", TOKEN_ADMIN,
    body={"organizationName": ORG, "maxCreates": 5, "validationId": VALIDATION_ID})
check("[admin] issue a validation code -> 201 ValidationCode",
      status == 201 and isinstance(issued, dict) and issued.get("validationId") == VALIDATION_ID
      and issued.get("maxCreates") == 5 and issued.get("remainingCreates") == 5
      and issued.get("partnerId") == PARTNER, f"HTTP {status} {text}")

status, _, text, _ = plain.call(
    "POST", f"/_pcq/admin/partners/{PARTNER}/validation-codes", TOKEN_USER,
    body={"organizationName": ORG, "maxCreates": 5})
check("[admin] issuing without the Pcq.Admin role -> 403", status == 403, f"HTTP {status} {text}")

codes = pipeline(user_client, "GET", "/v1/customers/all/validations")
code = find_code(codes)
check("[pipeline] GET /v1/customers/all/validations -> 200 bare array",
      codes.status == 200 and isinstance(codes.body, list), repr(codes))
check("[pipeline] the issued code is listed with max=5, remaining=5, partner, org, eTag",
      code is not None and code.get("maxCreates") == 5 and code.get("remainingCreates") == 5
      and code.get("partnerId") == PARTNER and code.get("organizationName") == ORG
      and isinstance(code.get("eTag"), str) and code.get("eTag") != ""
      and set(code) == {"partnerId", "organizationName", "validationId", "maxCreates",
                        "remainingCreates", "eTag"},
      repr(codes))
etag_before = code.get("eTag") if code else None

other_codes = pipeline(other_client, "GET", "/v1/customers/all/validations")
check("[pipeline] another partner does not see this partner's code",
      other_codes.status == 200 and isinstance(other_codes.body, list)
      and find_code(other_codes) is None, repr(other_codes))

# ---------------------------------------------------------------------------------------------
# Qualifications ([pipeline])
# ---------------------------------------------------------------------------------------------
print("== qualifications [pipeline]")


def qualifications_of(role, client=user_client):
    return pipeline(client, "GET", f"/v1/customers/{ids[role]}/qualifications")


def legacy_of(role, client=user_client):
    return pipeline(client, "GET", f"/v1/customers/{ids[role]}/qualification")


def post_qualification(role, body, client=user_client, query=None, request_id=None):
    return pipeline(client, "POST", f"/v1/customers/{ids[role]}/qualifications",
                    query=query, body=body, request_id=request_id)


def vetted_shape(body, qualification, status):
    return (isinstance(body, dict)
            and set(body) == {"qualification", "vettingStatus", "vettingCreateDate"}
            and body["qualification"] == qualification and body["vettingStatus"] == status
            and isinstance(body["vettingCreateDate"], str)
            and bool(RFC3339_UTC_RE.match(body["vettingCreateDate"])))


try:
    # Education -------------------------------------------------------------------------------
    edu = post_qualification("edu", {"qualification": "Education", "educationSegment": "K12"})
    check("POST Education -> 201 {qualification: Education, vettingStatus: InReview, "
          "vettingCreateDate: ...Z}",
          edu.status == 201 and vetted_shape(edu.body, "Education", "InReview"), repr(edu))
    got = qualifications_of("edu")
    check("GET qualifications (Education customer) -> exactly [the created qualification]",
          got.status == 200 and got.body == [edu.body], f"{got!r}\nexpected [{edu.body}]")
    legacy = legacy_of("edu")
    check("legacy GET qualification -> bare JSON string \"Education\"",
          legacy.status == 200 and legacy.text.strip() == '"Education"', repr(legacy))

    # GCC with the code in the body -----------------------------------------------------------
    gcc1 = post_qualification("gccbody", {"qualification": GCC, "validationCode": VALIDATION_ID})
    check("POST GCC (body validationCode) -> 201 Approved with vettingCreateDate ...Z",
          gcc1.status == 201 and vetted_shape(gcc1.body, GCC, "Approved"), repr(gcc1))
    after_one = find_code(pipeline(user_client, "GET", "/v1/customers/all/validations"))
    check("validation code: remainingCreates 5 -> 4 and eTag changed after one GCC",
          after_one is not None and after_one.get("remainingCreates") == 4
          and after_one.get("maxCreates") == 5 and after_one.get("eTag") != etag_before,
          f"before eTag={etag_before} after={after_one}")
    got = qualifications_of("gccbody")
    check("GET qualifications (GCC customer) -> exactly [the created qualification]",
          got.status == 200 and got.body == [gcc1.body], f"{got!r}\nexpected [{gcc1.body}]")

    # GCC with the code as ?code= -------------------------------------------------------------
    gcc2 = post_qualification("gccquery", {"qualification": GCC},
                              query={"code": VALIDATION_ID})
    check("POST GCC (?code= query) -> 201 Approved", gcc2.status == 201
          and vetted_shape(gcc2.body, GCC, "Approved"), repr(gcc2))
    check("validation code: remainingCreates dropped by exactly 2 over the two GCC creates",
          remaining_creates() == 3, f"remainingCreates={remaining_creates()}")

    # StateOwnedEntity, alone and stacked on GCC ----------------------------------------------
    soe = post_qualification("soe", {"qualification": "StateOwnedEntity"})
    check("POST StateOwnedEntity -> 201 exactly {qualification: StateOwnedEntity}",
          soe.status == 201 and soe.body == {"qualification": "StateOwnedEntity"}, repr(soe))
    got = qualifications_of("soe")
    check("GET qualifications (SOE customer) -> exactly [{qualification: StateOwnedEntity}]",
          got.status == 200 and got.body == [{"qualification": "StateOwnedEntity"}], repr(got))
    legacy = legacy_of("soe")
    check("legacy GET qualification (SOE customer) -> \"StateOwnedEntity\"",
          legacy.status == 200 and legacy.text.strip() == '"StateOwnedEntity"', repr(legacy))

    stacked = post_qualification("gccquery", {"qualification": "StateOwnedEntity"})
    check("POST StateOwnedEntity on a GCC customer -> 201 (SOE stacks)",
          stacked.status == 201 and stacked.body == {"qualification": "StateOwnedEntity"},
          repr(stacked))
    got = qualifications_of("gccquery")
    check("GET qualifications (GCC+SOE customer) -> exactly [GCC, SOE] in that order",
          got.status == 200 and got.body == [gcc2.body, {"qualification": "StateOwnedEntity"}],
          f"{got!r}\nexpected [{gcc2.body}, {{'qualification': 'StateOwnedEntity'}}]")
    legacy = legacy_of("gccquery")
    check("legacy GET qualification (GCC+SOE customer) -> \"GovernmentCommunityCloud\"",
          legacy.status == 200 and legacy.text.strip() == f'"{GCC}"', repr(legacy))

    # Education after GCC -> 409 --------------------------------------------------------------
    clash = post_qualification("gccbody", {"qualification": "Education",
                                           "educationSegment": "K12"})
    check("POST Education on a GCC customer -> 409 JSON envelope with a numeric code",
          clash.status == 409 and is_error_envelope(clash.body) and is_number(error_code(clash)),
          repr(clash))
    got = qualifications_of("gccbody")
    check("... and the customer's qualifications are unchanged",
          got.status == 200 and got.body == [gcc1.body], repr(got))
    check("... and the validation code was not consumed",
          remaining_creates() == 3, f"remainingCreates={remaining_creates()}")

    # A customer with no qualification --------------------------------------------------------
    legacy = legacy_of("fresh")
    check("legacy GET qualification (no qualification) -> \"None\"",
          legacy.status == 200 and legacy.text.strip() == '"None"', repr(legacy))
    got = qualifications_of("fresh")
    check("GET qualifications (no qualification) -> []",
          got.status == 200 and got.body == [], repr(got))

    # App-only credentials --------------------------------------------------------------------
    app_post = post_qualification("fresh", {"qualification": "StateOwnedEntity"},
                                  client=app_client)
    check("POST qualification with an App-only token -> 403 JSON envelope",
          app_post.status == 403 and is_error_envelope(app_post.body), repr(app_post))
    app_read = qualifications_of("fresh", client=app_client)
    check("App-only token may GET qualifications, and nothing was created",
          app_read.status == 200 and app_read.body == [], repr(app_read))

    # Another partner -------------------------------------------------------------------------
    foreign_read = qualifications_of("edu", client=other_client)
    check("other partner GET qualifications of this partner's customer -> 404 code 60003",
          foreign_read.status == 404 and is_error_envelope(foreign_read.body)
          and error_code(foreign_read) == 60003, repr(foreign_read))
    foreign_post = post_qualification("fresh", {"qualification": "StateOwnedEntity"},
                                      client=other_client)
    check("other partner POST qualification on this partner's customer -> 404 code 60003",
          foreign_post.status == 404 and is_error_envelope(foreign_post.body)
          and error_code(foreign_post) == 60003, repr(foreign_post))
    foreign_legacy = legacy_of("fresh", client=other_client)
    check("other partner legacy GET qualification -> 404 code 60003",
          foreign_legacy.status == 404 and error_code(foreign_legacy) == 60003,
          repr(foreign_legacy))
    foreign_gcc = post_qualification("fresh", {"qualification": GCC,
                                               "validationCode": VALIDATION_ID},
                                     client=other_client)
    check("other partner GCC on this partner's customer with this partner's code -> 404",
          foreign_gcc.status == 404 and error_code(foreign_gcc) == 60003, repr(foreign_gcc))
    got = qualifications_of("fresh")
    check("... and this partner's customer still has no qualification, code unchanged",
          got.status == 200 and got.body == [] and remaining_creates() == 3,
          f"{got!r} remainingCreates={remaining_creates()}")

    unknown = pipeline(user_client, "POST", f"/v1/customers/{uuid.uuid4()}/qualifications",
                       body={"qualification": "StateOwnedEntity"})
    check("POST qualification on an unknown customer -> 404 JSON envelope",
          unknown.status == 404 and is_error_envelope(unknown.body), repr(unknown))

    # Idempotent replay with MS-RequestId -----------------------------------------------------
    request_id = str(uuid.uuid4())
    gcc_body = {"qualification": GCC, "validationCode": VALIDATION_ID}
    first = post_qualification("replay", gcc_body, request_id=request_id)
    check("POST GCC with an MS-RequestId -> 201 Approved, code 3 -> 2",
          first.status == 201 and vetted_shape(first.body, GCC, "Approved")
          and remaining_creates() == 2, f"{first!r} remainingCreates={remaining_creates()}")
    check("... and the response echoes that MS-RequestId",
          header(first.headers, "MS-RequestId") == request_id, dict(first.headers or {}))
    again = post_qualification("replay", gcc_body, request_id=request_id)
    check("replay (same MS-RequestId, same body) -> same status and byte-identical body",
          again.status == first.status and again.raw == first.raw,
          f"first={first!r}\nagain={again!r}")
    check("... and the replay consumed no code create (still 2)",
          remaining_creates() == 2, f"remainingCreates={remaining_creates()}")
    got = qualifications_of("replay")
    check("... and the customer holds exactly the one qualification",
          got.status == 200 and got.body == [first.body], repr(got))
    reuse = post_qualification("replay", {"qualification": "StateOwnedEntity"},
                               request_id=request_id)
    check("same MS-RequestId with a different body -> 409 JSON envelope",
          reuse.status == 409 and is_error_envelope(reuse.body), repr(reuse))
    got = qualifications_of("replay")
    check("... and nothing was added",
          got.status == 200 and got.body == [first.body] and remaining_creates() == 2,
          f"{got!r} remainingCreates={remaining_creates()}")

    # Concurrent retries of one request --------------------------------------------------------
    request_id = str(uuid.uuid4())
    replies = []

    def retry():
        # One client per thread: each has its own msrest session.
        replies.append(post_qualification("concurrent", gcc_body, client=make_client(TOKEN_USER),
                                          request_id=request_id))

    threads = [threading.Thread(target=retry) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    bodies = {(r.status, r.raw) for r in replies}
    check("6 concurrent POSTs with one MS-RequestId -> all 201 with one identical body",
          len(replies) == 6 and len(bodies) == 1 and replies[0].status == 201
          and vetted_shape(replies[0].body, GCC, "Approved"), repr(replies))
    got = qualifications_of("concurrent")
    check("... and exactly one qualification was created and one code create consumed (2 -> 1)",
          got.status == 200 and len(got.body or []) == 1 and remaining_creates() == 1,
          f"{got!r} remainingCreates={remaining_creates()}")

    # Duplicates and code errors --------------------------------------------------------------
    again_edu = post_qualification("edu", {"qualification": "Education",
                                           "educationSegment": "K12"})
    check("POST Education on a customer that already has it -> 409 JSON envelope",
          again_edu.status == 409 and is_error_envelope(again_edu.body), repr(again_edu))
    got = qualifications_of("edu")
    check("... and the Education customer still holds exactly its first qualification",
          got.status == 200 and got.body == [edu.body], repr(got))

    no_code = post_qualification("codeerrors", {"qualification": GCC})
    check("POST GCC without any validation code -> 400 JSON envelope",
          no_code.status == 400 and is_error_envelope(no_code.body), repr(no_code))
    unknown_code = post_qualification("codeerrors", {"qualification": GCC,
                                                     "validationCode": "000000001"})
    check("POST GCC with an unknown validation code -> 400 JSON envelope",
          unknown_code.status == 400 and is_error_envelope(unknown_code.body),
          repr(unknown_code))

    foreign_id = str(random.randint(10**8, 10**9 - 1))
    status, _, text, _ = plain.call(
        "POST", f"/_pcq/admin/partners/{OTHER_PARTNER}/validation-codes", TOKEN_ADMIN,
        body={"organizationName": f"Other Agency {RUN}", "maxCreates": 3,
              "validationId": foreign_id})
    check("[admin] issue a code to the other partner -> 201", status == 201,
          f"HTTP {status} {text}")
    foreign_code = post_qualification("codeerrors", {"qualification": GCC,
                                                     "validationCode": foreign_id})
    check("POST GCC with another partner's validation code -> 400 JSON envelope",
          foreign_code.status == 400 and is_error_envelope(foreign_code.body),
          repr(foreign_code))
    theirs = pipeline(other_client, "GET", "/v1/customers/all/validations")
    their_code = next((v for v in (theirs.body or []) if v.get("validationId") == foreign_id),
                      None)
    check("... and the other partner's code still has 3 of 3 creates",
          their_code is not None and their_code.get("remainingCreates") == 3, repr(theirs))
    got = qualifications_of("codeerrors")
    check("... and none of the rejected GCC requests created anything",
          got.status == 200 and got.body == [], repr(got))

    # Legacy PUT (bare JSON string or integer body) -------------------------------------------
    def legacy_put(role, body, query=None):
        return pipeline(user_client, "PUT", f"/v1/customers/{ids[role]}/qualification",
                        query=query, body=body)

    put = legacy_put("legacysoe", "StateOwnedEntity")
    check("legacy PUT bare string \"StateOwnedEntity\" -> 200 \"StateOwnedEntity\"",
          put.status == 200 and put.text.strip() == '"StateOwnedEntity"', repr(put))
    put = legacy_put("legacysoe", 4)
    check("legacy PUT integer 4 (StateOwnedEntity) again -> 200, already held",
          put.status == 200 and put.text.strip() == '"StateOwnedEntity"', repr(put))
    got = qualifications_of("legacysoe")
    check("... and the customer holds exactly [{qualification: StateOwnedEntity}]",
          got.status == 200 and got.body == [{"qualification": "StateOwnedEntity"}], repr(got))

    put = legacy_put("legacyedu", 1)
    check("legacy PUT integer 1 (Education) -> 200 \"Education\"",
          put.status == 200 and put.text.strip() == '"Education"', repr(put))
    got = qualifications_of("legacyedu")
    check("... and GET qualifications shows Education InReview",
          got.status == 200 and isinstance(got.body, list) and len(got.body) == 1
          and vetted_shape(got.body[0], "Education", "InReview"), repr(got))

    single_id = str(random.randint(10**8, 10**9 - 1))
    status, _, text, _ = plain.call(
        "POST", f"/_pcq/admin/partners/{PARTNER}/validation-codes", TOKEN_ADMIN,
        body={"organizationName": f"Single Use {RUN}", "maxCreates": 1,
              "validationId": single_id})
    check("[admin] issue a single-use code -> 201", status == 201, f"HTTP {status} {text}")
    put = legacy_put("legacygcc", GCC, query={"code": single_id})
    check("legacy PUT \"GovernmentCommunityCloud\" with ?code= -> 200 bare string",
          put.status == 200 and put.text.strip() == f'"{GCC}"', repr(put))
    got = qualifications_of("legacygcc")
    check("... and GET qualifications shows GCC Approved",
          got.status == 200 and isinstance(got.body, list) and len(got.body) == 1
          and vetted_shape(got.body[0], GCC, "Approved"), repr(got))
    listing = pipeline(user_client, "GET", "/v1/customers/all/validations")
    single = next((v for v in (listing.body or []) if v.get("validationId") == single_id), None)
    check("... and the single-use code now has 0 remaining creates",
          single is not None and single.get("remainingCreates") == 0, repr(listing))
    exhausted = post_qualification("codeerrors", {"qualification": GCC,
                                                  "validationCode": single_id})
    check("POST GCC with the exhausted code -> 400 JSON envelope, nothing created",
          exhausted.status == 400 and is_error_envelope(exhausted.body)
          and qualifications_of("codeerrors").body == [], repr(exhausted))

    final = find_code(pipeline(user_client, "GET", "/v1/customers/all/validations"))
    check("first validation code at the end: maxCreates 5, remainingCreates 1 "
          "(four GCC creates; replays, rejects and other codes did not count)",
          final is not None and final.get("maxCreates") == 5
          and final.get("remainingCreates") == 1, repr(final))
except Exception:  # noqa: BLE001
    checks.crashed("qualifications")

checks.finish()
