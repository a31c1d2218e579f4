// The web console in Debian's chromium, against a running pcq (tests/console/run.sh starts it
// and passes its address and development tokens in the environment). The tests seed through
// the API and check through the API what the console did.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import path from "node:path";
import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set; run tests/console/run.sh`);
  return value;
};
const BASE = env("PCQ_URL");
const BACKEND = env("PCQ_BACKEND");
const PARTNER_TOKEN = env("PCQ_PARTNER_TOKEN");
const REVIEWER_TOKEN = env("PCQ_REVIEWER_TOKEN");
const ADMIN_TOKEN = env("PCQ_ADMIN_TOKEN");
const SCREENSHOTS = env("PCQ_SCREENSHOT_DIR");
const WIDE = { width: 1280, height: 900 };
const NARROW = { width: 390, height: 844 };

let browser;

before(async () => {
  browser = await chromium.launch({
    executablePath: env("PCQ_CHROMIUM"),
    // As root (CI) chromium's own sandbox cannot start.
    args: ["--no-sandbox"],
  });
});

after(async () => {
  await browser?.close();
});

/** A fresh browser context (no cookies), its page, and every dialog a page opened. */
async function newPage(viewport = WIDE) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const dialogs = [];
  page.on("dialog", async (dialog) => {
    dialogs.push(dialog.message());
    await dialog.dismiss();
  });
  return { context, page, dialogs };
}

/** Saves `<name>.png` (on PostgreSQL, `<name>-postgres.png`): the whole page, or the window. */
async function screenshot(page, name, fullPage = true) {
  const suffix = BACKEND === "sqlite" ? "" : `-${BACKEND}`;
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}${suffix}.png`), fullPage });
}

/** Calls the API; answers the status, headers and parsed body. */
async function api(method, route, token, body) {
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const answer = await fetch(BASE + route, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await answer.text();
  return { status: answer.status, headers: answer.headers, body: text ? JSON.parse(text) : null };
}

async function createCustomer(companyName, domain) {
  const created = await api("POST", "/v1/customers", PARTNER_TOKEN, {
    companyProfile: { domain, companyName },
    billingProfile: { companyName, email: `billing@${domain}` },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return created.body.id;
}

async function signInWithToken(page, token) {
  await page.goto(`${BASE}/_pcq/console/`);
  await page.getByLabel("Access token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("Signed in as").waitFor();
}

async function devSignIn(page, who) {
  await page.goto(`${BASE}/_pcq/console/`);
  await page.getByRole("button", { name: who, exact: true }).click();
  await page.getByText("Signed in as").waitFor();
}

test("a reviewer denies a seeded InReview Education request with a reason", async () => {
  // Others wait in the queue too.
  for (const [name, segment] of [["Fabrikam University", "HigherEducation"], ["Northwind School District", "K12"]]) {
    const other = await createCustomer(name, `${randomUUID().slice(0, 8)}.example.edu`);
    const waiting = await api("POST", `/v1/customers/${other}/qualifications`, PARTNER_TOKEN, {
      qualification: "Education",
      educationSegment: segment,
    });
    assert.equal(waiting.status, 201);
  }
  const domain = `deny-${randomUUID().slice(0, 8)}.example.com`;
  const customer = await createCustomer("Contoso Academy", domain);
  const requested = await api("POST", `/v1/customers/${customer}/qualifications`, PARTNER_TOKEN, {
    qualification: "Education",
    educationSegment: "K12",
    website: domain,
  });
  assert.equal(requested.status, 201);
  assert.equal(requested.body.vettingStatus, "InReview");

  const { context, page } = await newPage();
  await signInWithToken(page, REVIEWER_TOKEN);
  await page.getByRole("link", { name: "Review queue" }).first().click();
  await page.getByLabel("Partner tenant").fill(env("PCQ_DEV_PARTNER"));
  await page.getByLabel("Qualification").selectOption("Education");
  await page.getByRole("button", { name: "Filter" }).click();
  const row = page.getByRole("row").filter({ hasText: domain });
  await row.waitFor();
  await screenshot(page, "review-queue");
  await page.setViewportSize(NARROW);
  await screenshot(page, "review-queue-390");
  await page.setViewportSize(WIDE);
  await row.getByLabel("Reason for a denial").selectOption("Not an Academic Domain");
  await row.getByRole("button", { name: "Deny" }).click();
  await page.getByText(`Customer ${customer}: the qualification is now Denied.`).waitFor();
  assert.equal(await page.getByRole("row").filter({ hasText: domain }).count(), 0);

  // The API now answers Denied with that reason, and an audit record says so.
  const qualifications = await api("GET", `/v1/customers/${customer}/qualifications`, PARTNER_TOKEN);
  assert.equal(qualifications.status, 200);
  const education = qualifications.body.find((q) => q.qualification === "Education");
  assert.equal(education.vettingStatus, "Denied");
  assert.equal(education.vettingReason, "Not an Academic Domain");
  const audit = await api("GET", `/v1/auditrecords?customerId=${customer}`, PARTNER_TOKEN);
  assert.equal(audit.status, 200);
  const denial = audit.body.items.find((r) =>
    (r.customizedData ?? []).some((kv) => kv.key === "VettingReason" && kv.value === "Not an Academic Domain"));
  assert.ok(denial, `no audit record of the denial: ${JSON.stringify(audit.body.items)}`);
  assert.equal(denial.operationType, "update_customer_qualification");

  // The customer's page shows the round's transitions and the audit record.
  await page.goto(`${BASE}/_pcq/console/customers/${customer}`);
  await page.getByRole("table", { name: "Every step, oldest first" })
    .getByRole("row").filter({ hasText: "Denied" }).filter({ hasText: "Not an Academic Domain" }).waitFor();
  await page.getByRole("table", { name: "Audit records of this customer, oldest first" })
    .getByText("update_customer_qualification").first().waitFor();
  await screenshot(page, "review-customer");
  await page.setViewportSize(NARROW);
  await screenshot(page, "review-customer-390");
  await context.close();
});

test("a partner signs in and is refused the review and admin pages", async () => {
  const { context, page } = await newPage();
  await devSignIn(page, "Development partner");
  assert.equal(await page.getByRole("link", { name: "Review queue" }).count(), 0);
  const review = await page.goto(`${BASE}/_pcq/console/review`);
  assert.equal(review.status(), 403);
  await page.getByText("This page needs the Pcq.Reviewer role").waitFor();
  await screenshot(page, "partner-refused");
  const admin = await page.goto(`${BASE}/_pcq/console/admin`);
  assert.equal(admin.status(), 403);
  await page.getByText("This page needs the Pcq.Admin role").waitFor();
  // What a partner may see: its customers.
  await page.getByRole("link", { name: "Customers" }).first().click();
  await page.getByRole("heading", { name: "Customers" }).waitFor();
  await context.close();
});

test("a customer named <img src=x onerror=alert(1)> renders as text and runs nothing", async () => {
  const name = "<img src=x onerror=alert(1)>";
  const domain = `xss-${randomUUID().slice(0, 8)}.example.com`;
  const customer = await createCustomer(name, domain);
  const { context, page, dialogs } = await newPage();
  await devSignIn(page, "Development partner");
  await page.goto(`${BASE}/_pcq/console/customers?q=${domain}`);
  const link = page.getByRole("link", { name, exact: true });
  await link.waitFor();
  assert.equal(await page.locator("main img").count(), 0);
  await screenshot(page, "escaped-company-name");
  await link.click();
  await page.getByRole("heading", { level: 1, name, exact: true }).waitFor();
  assert.equal(await page.locator("img").count(), 0);
  assert.ok(page.url().endsWith(customer));
  assert.deepEqual(dialogs, []);
  await context.close();
});

test("a cross-site form post is refused", async () => {
  const before = await api("GET", "/_pcq/admin/clock", ADMIN_TOKEN);
  const { context, page } = await newPage();
  await devSignIn(page, "Admin");
  // A page on another site that posts a form to the console as soon as it loads.
  const target = `${BASE}/_pcq/console/admin/clock`;
  await page.route("http://elsewhere.test/**", (route) =>
    route.fulfill({
      contentType: "text/html",
      body: `<!doctype html><form method="post" action="${target}">
        <input name="advance" value="240h"></form>
        <script>document.forms[0].submit()</script>`,
    }));
  const answer = page.waitForResponse((r) => r.url() === target);
  await page.goto("http://elsewhere.test/attack");
  assert.equal((await answer).status(), 403);
  await page.getByText("This form was sent from another site").waitFor();
  await screenshot(page, "cross-site-refused");
  const after = await api("GET", "/_pcq/admin/clock", ADMIN_TOKEN);
  assert.equal(after.body.offsetSeconds, before.body.offsetSeconds);
  await context.close();
});

test("the admin pages advance the clock and add a fault that the API then serves", async () => {
  const before = await api("GET", "/_pcq/admin/clock", ADMIN_TOKEN);
  const { context, page } = await newPage();
  await devSignIn(page, "Admin");
  await page.getByRole("link", { name: "Sandbox" }).first().click();
  await page.getByLabel("Advance by").fill("72h");
  await page.getByRole("button", { name: "Advance the clock" }).click();
  await page.getByText("The clock moved.").waitFor();
  const after = await api("GET", "/_pcq/admin/clock", ADMIN_TOKEN);
  assert.equal(after.body.offsetSeconds - before.body.offsetSeconds, 72 * 3600);

  await page.getByLabel("Method").selectOption("GET");
  await page.getByLabel("Path (glob)").fill("/v1/customers/all/validations");
  await page.getByLabel("Answer with status").fill("503");
  await page.getByLabel("How many times").fill("1");
  await page.getByRole("button", { name: "Add the fault" }).click();
  await page.getByText("The fault was added.").waitFor();
  await page.getByRole("table", { name: "Faults, oldest first" })
    .getByText("/v1/customers/all/validations").waitFor();
  await screenshot(page, "admin-sandbox");
  await page.setViewportSize(NARROW);
  await screenshot(page, "admin-sandbox-390");
  await page.setViewportSize(WIDE);

  const faulted = await api("GET", "/v1/customers/all/validations", PARTNER_TOKEN);
  assert.equal(faulted.status, 503);
  assert.ok(faulted.headers.get("x-pcq-fault"));
  const next = await api("GET", "/v1/customers/all/validations", PARTNER_TOKEN);
  assert.equal(next.status, 200, "the fault fired once");

  // The journal's live tail shows the faulted request without a reload.
  await page.getByRole("link", { name: "Request journal" }).first().click();
  const marker = `/v1/customers?size=${1 + Math.floor(Math.random() * 50)}`;
  await page.getByRole("table", { name: "Request journal" }).waitFor();
  assert.equal((await api("GET", marker, PARTNER_TOKEN)).status, 200);
  await page.getByRole("table", { name: "Request journal" }).getByText(marker, { exact: true }).waitFor();
  await screenshot(page, "admin-journal");
  await context.close();
});

test("the API documentation lists the API's paths", async () => {
  const { context, page } = await newPage(NARROW);
  await page.goto(`${BASE}/_pcq/docs`);
  await page.getByRole("heading", { name: "API documentation" }).waitFor();
  const doc = await (await fetch(`${BASE}/_pcq/openapi.json`)).json();
  for (const route of Object.keys(doc.paths)) {
    assert.ok(await page.getByText(route, { exact: true }).count() > 0, route);
  }
  // The document is long: the first screen of it.
  await screenshot(page, "api-docs-390", false);
  await context.close();
});
