//! Tenant isolation as a property: random sequences of operations by three partners (each its
//! own token `tid`) never let one partner see, change or learn of another's data.
//!
//! Each case starts a fresh node and plays a generated sequence of steps: creating customers
//! (from a small pool of domains, so partners share domains), reading and listing them,
//! requesting and reading qualifications (Education, GCC with own or foreign validation codes,
//! State Owned Entity, through the current and the legacy route), histories, validation codes
//! issued by an admin, audit records, webhook registrations, validation events and delivery
//! logs, with `MS-RequestId`s drawn from a small shared pool. Any step may aim at another
//! partner's resource by id. After every step:
//!
//! - an answer about another partner's audit record, validation event or validation code is
//!   exactly the answer about one that never existed (status and envelope, ids aside); one about
//!   another partner's customer is Partner Center's 403 with code 20002 (no relationship),
//!   naming nothing but the caller and the id it sent; and neither partner's visible state
//!   changed;
//! - no answer names a customer, tenant or validation code of another partner that the request
//!   did not itself name;
//! - at the end, every partner's lists (customers, codes, audit records, deliveries, its
//!   registration and validation events) hold its own records only, and its codes' used creates
//!   match its GCC customers.

use std::collections::{BTreeMap, BTreeSet};

use crate::common::{Backend, TestApp, backend, with_backend};
use pcq_server::auth::TokenSpec;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

/// Partners per case.
const PARTNERS: usize = 3;
/// Domains customers are created with; partners share them.
const DOMAINS: [&str; 4] = [
    "contoso.example.com",
    "fabrikam.example.org",
    "school.example.edu",
    "shared.example.net",
];
/// Directory Readers: the GDAP role GCC requests may need in the token's `wids`.
const DIRECTORY_READERS: &str = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b";

/// A qualification request's kind.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Education,
    /// GCC with the validation code at this index among all issued codes (any partner's).
    Gcc(usize),
    StateOwnedEntity,
}

/// One generated step. `actor` and `partner` index the case's partners; `target` picks, modulo
/// their number, among the resources of *every* partner, so steps often aim at foreign ones.
#[derive(Debug, Clone)]
enum Step {
    CreateCustomer {
        actor: usize,
        domain: usize,
        request_id: Option<u8>,
    },
    ListCustomers {
        actor: usize,
    },
    ReadCustomer {
        actor: usize,
        target: usize,
    },
    RequestQualification {
        actor: usize,
        target: usize,
        kind: Kind,
        legacy: bool,
        request_id: Option<u8>,
    },
    ReadQualifications {
        actor: usize,
        target: usize,
        legacy: bool,
    },
    ReadHistory {
        actor: usize,
        target: usize,
    },
    IssueCode {
        partner: usize,
        max_creates: i64,
    },
    ListCodes {
        actor: usize,
    },
    ListAudit {
        actor: usize,
    },
    ReadAuditRecord {
        actor: usize,
        target: usize,
    },
    Register {
        actor: usize,
        replace: bool,
    },
    Unregister {
        actor: usize,
    },
    SendTestEvent {
        actor: usize,
    },
    ReadTestEvent {
        actor: usize,
        target: usize,
    },
    ListDeliveries {
        actor: usize,
    },
    Drain,
}

fn step() -> impl Strategy<Value = Step> {
    let actor = 0..PARTNERS;
    let target = 0usize..64;
    let request_id = proptest::option::of(0u8..3);
    let kind = prop_oneof![
        Just(Kind::Education),
        (0usize..64).prop_map(Kind::Gcc),
        Just(Kind::StateOwnedEntity),
    ];
    prop_oneof![
        4 => (actor.clone(), 0..DOMAINS.len(), request_id.clone())
            .prop_map(|(actor, domain, request_id)| Step::CreateCustomer { actor, domain, request_id }),
        1 => actor.clone().prop_map(|actor| Step::ListCustomers { actor }),
        2 => (actor.clone(), target.clone()).prop_map(|(actor, target)| Step::ReadCustomer { actor, target }),
        5 => (actor.clone(), target.clone(), kind, any::<bool>(), request_id)
            .prop_map(|(actor, target, kind, legacy, request_id)| Step::RequestQualification {
                actor, target, kind, legacy, request_id,
            }),
        2 => (actor.clone(), target.clone(), any::<bool>())
            .prop_map(|(actor, target, legacy)| Step::ReadQualifications { actor, target, legacy }),
        1 => (actor.clone(), target.clone()).prop_map(|(actor, target)| Step::ReadHistory { actor, target }),
        2 => (actor.clone(), 1i64..3).prop_map(|(partner, max_creates)| Step::IssueCode { partner, max_creates }),
        1 => actor.clone().prop_map(|actor| Step::ListCodes { actor }),
        1 => actor.clone().prop_map(|actor| Step::ListAudit { actor }),
        2 => (actor.clone(), target.clone()).prop_map(|(actor, target)| Step::ReadAuditRecord { actor, target }),
        1 => (actor.clone(), any::<bool>()).prop_map(|(actor, replace)| Step::Register { actor, replace }),
        1 => actor.clone().prop_map(|actor| Step::Unregister { actor }),
        1 => actor.clone().prop_map(|actor| Step::SendTestEvent { actor }),
        1 => (actor.clone(), target).prop_map(|(actor, target)| Step::ReadTestEvent { actor, target }),
        1 => actor.prop_map(|actor| Step::ListDeliveries { actor }),
        1 => Just(Step::Drain),
    ]
}

/// A partner of the case.
struct Partner {
    tenant: Uuid,
    token: String,
    /// Where its webhook registration points.
    hook_url: String,
}

/// What the case knows was created, and by whom.
#[derive(Default)]
struct World {
    /// Customers in creation order: (id, owning partner).
    customers: Vec<(Uuid, usize)>,
    /// The domains each partner's customers have.
    domains: BTreeMap<usize, BTreeSet<String>>,
    /// Validation codes in issue order: (id, owning partner).
    codes: Vec<(String, usize)>,
    /// Audit record ids seen, with their partner.
    audit_records: Vec<(String, usize)>,
    /// Validation events sent: (correlation id, partner).
    test_events: Vec<(String, usize)>,
    /// Which partners have a registration.
    registered: BTreeSet<usize>,
}

impl World {
    fn owner_of_customer(&self, id: Uuid) -> Option<usize> {
        self.customers
            .iter()
            .find(|(c, _)| *c == id)
            .map(|(_, p)| *p)
    }
}

/// An answer: status and body text.
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    status: u16,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

struct Case<'a> {
    app: &'a TestApp,
    admin: String,
    partners: Vec<Partner>,
    world: World,
}

/// The string `key` of every object in the JSON array `items` (none if it is not an array).
fn strings_at(items: &Value, key: &str) -> BTreeSet<String> {
    items
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item[key].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The ids in `world` (id, owner) that belong to partner `actor`, as text.
fn owned_by<T: ToString>(world: &[(T, usize)], actor: usize) -> BTreeSet<String> {
    world
        .iter()
        .filter(|(_, owner)| *owner == actor)
        .map(|(id, _)| id.to_string())
        .collect()
}

fn fail(message: String) -> TestCaseError {
    TestCaseError::fail(message)
}

impl Case<'_> {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
        headers: &[(&str, String)],
    ) -> Answer {
        let mut request = self.app.req(method, path, token);
        if let Some(body) = body {
            request = request.json(body);
        }
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let resp = request.send().await.expect("pcq answers");
        let status = resp.status().as_u16();
        let body = resp.text().await.expect("a body");
        Answer { status, body }
    }

    /// A GET by partner `actor`.
    async fn get(&self, actor: usize, path: &str) -> Answer {
        self.call(Method::GET, path, self.token(actor), None, &[])
            .await
    }

    fn token(&self, partner: usize) -> &str {
        &self.partners[partner].token
    }

    /// Everything `partner` can see of its own data, to tell whether a step changed it.
    async fn visible_state(&self, partner: usize) -> Vec<Answer> {
        let mut seen = Vec::new();
        for path in [
            "/v1/customers?size=1000",
            "/v1/customers/all/validations",
            "/v1/auditrecords?size=1000",
            "/webhooks/v1/registration",
            "/webhooks/v1/registration/deliveries?size=1000",
        ] {
            seen.push(self.get(partner, path).await);
        }
        for (id, _) in self.world.customers.iter().filter(|(_, p)| *p == partner) {
            seen.push(
                self.get(partner, &format!("/v1/customers/{id}/qualifications"))
                    .await,
            );
        }
        seen
    }

    /// Ids of other partners' customers, tenants and codes that `answer` names without the
    /// request (`asked`) having named them.
    fn foreign_names(&self, actor: usize, asked: &str, answer: &Answer) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for (id, owner) in &self.world.customers {
            if *owner != actor {
                names.push(id.to_string());
            }
        }
        for (code, owner) in &self.world.codes {
            if *owner != actor {
                names.push(format!("\"{code}\""));
            }
        }
        for (i, partner) in self.partners.iter().enumerate() {
            if i != actor {
                names.push(partner.tenant.to_string());
            }
        }
        let body = answer.body.to_ascii_lowercase();
        names
            .into_iter()
            .filter(|n| body.contains(&n.to_ascii_lowercase()) && !asked.contains(n.as_str()))
            .collect()
    }

    fn check_no_foreign_names(
        &self,
        actor: usize,
        asked: &str,
        answer: &Answer,
    ) -> Result<(), TestCaseError> {
        let leaked = self.foreign_names(actor, asked, answer);
        if leaked.is_empty() {
            Ok(())
        } else {
            Err(fail(format!(
                "partner {actor} saw {leaked:?} of another partner in the answer to {asked}: {answer:?}"
            )))
        }
    }

    /// Sends `actor`'s request about `foreign` (another partner's resource), which must change
    /// nothing that `owner` or `actor` can see; returns the request's path and the answer.
    async fn call_about_foreign(
        &self,
        actor: usize,
        owner: usize,
        foreign: &str,
        request: &impl Fn(&str) -> (Method, String, Option<Value>),
    ) -> Result<(String, Answer), TestCaseError> {
        let (method, path, body) = request(foreign);
        let before = (
            self.visible_state(owner).await,
            self.visible_state(actor).await,
        );
        let answer = self
            .call(method.clone(), &path, self.token(actor), body.as_ref(), &[])
            .await;
        let after = (
            self.visible_state(owner).await,
            self.visible_state(actor).await,
        );
        prop_assert_eq!(
            &before.0,
            &after.0,
            "partner {} changed partner {}'s data with {} {}",
            actor,
            owner,
            method,
            path
        );
        prop_assert_eq!(
            &before.1,
            &after.1,
            "{} {} changed its own data",
            actor,
            path
        );
        Ok((path, answer))
    }

    /// Runs a request about another partner's resource (`foreign`) and the same request about
    /// one that never existed (`unknown`); they must answer alike, and change nothing anyone
    /// can see. (Answering alike is the point, not failing: the legacy PUT of a qualification
    /// the customer holds succeeds without looking at the code.)
    async fn compare_with_unknown(
        &self,
        actor: usize,
        owner: usize,
        foreign: &str,
        unknown: &str,
        request: impl Fn(&str) -> (Method, String, Option<Value>),
    ) -> Result<Answer, TestCaseError> {
        let (path, answer) = self
            .call_about_foreign(actor, owner, foreign, &request)
            .await?;
        let (method, unknown_path, body) = request(unknown);
        let never = self
            .call(method, &unknown_path, self.token(actor), body.as_ref(), &[])
            .await;
        let normalise = |a: &Answer, id: &str| Answer {
            status: a.status,
            body: a.body.replace(id, "<id>"),
        };
        prop_assert_eq!(
            normalise(&answer, foreign),
            normalise(&never, unknown),
            "partner {} learns that {} exists ({})",
            actor,
            foreign,
            path
        );
        Ok(answer)
    }

    /// Runs a request about another partner's customer (`foreign`): as in Partner Center it
    /// answers 403 with code 20002 (no relationship), which names only the caller and the
    /// customer id the caller sent, and it changes nothing anyone can see.
    async fn about_foreign_customer(
        &self,
        actor: usize,
        owner: usize,
        foreign: &str,
        request: impl Fn(&str) -> (Method, String, Option<Value>),
    ) -> Result<Answer, TestCaseError> {
        let (path, answer) = self
            .call_about_foreign(actor, owner, foreign, &request)
            .await?;
        prop_assert_eq!(answer.status, 403, "{} {:?}", path, answer);
        prop_assert_eq!(&answer.json()["code"], 20002, "{:?}", answer);
        self.check_no_foreign_names(actor, &path, &answer)?;
        Ok(answer)
    }

    async fn run(&mut self, step: &Step) -> Result<(), TestCaseError> {
        match *step {
            Step::CreateCustomer {
                actor,
                domain,
                request_id,
            } => {
                let domain = DOMAINS[domain];
                let body =
                    json!({"companyProfile": {"domain": domain, "companyName": "Isolation Co"}});
                let headers: Vec<(&str, String)> = request_id
                    .map(|r| vec![("MS-RequestId", format!("shared-request-{r}"))])
                    .unwrap_or_default();
                let answer = self
                    .call(
                        Method::POST,
                        "/v1/customers",
                        self.token(actor),
                        Some(&body),
                        &headers,
                    )
                    .await;
                self.check_no_foreign_names(actor, "/v1/customers", &answer)?;
                let value = answer.json();
                let held = self
                    .world
                    .domains
                    .get(&actor)
                    .is_some_and(|d| d.contains(domain));
                match (answer.status, value["errorName"].as_str()) {
                    (201, _) => {
                        let id: Uuid = value["id"]
                            .as_str()
                            .and_then(|s| s.parse().ok())
                            .ok_or_else(|| fail(format!("no id in {answer:?}")))?;
                        match self.world.owner_of_customer(id) {
                            // A replay of the partner's own earlier request.
                            Some(owner) => {
                                prop_assert_eq!(owner, actor, "replayed {}", answer.body)
                            }
                            None => {
                                prop_assert!(
                                    !held,
                                    "partner {actor} created a second customer with {domain}"
                                );
                                prop_assert_eq!(&value["companyProfile"]["domain"], domain);
                                self.world.customers.push((id, actor));
                                self.world
                                    .domains
                                    .entry(actor)
                                    .or_default()
                                    .insert(domain.to_owned());
                            }
                        }
                    }
                    (409, Some("DomainAlreadyExists")) => prop_assert!(
                        held,
                        "partner {actor} was told {domain} is taken, which only another partner holds"
                    ),
                    (409, Some("RequestIdReused")) => {}
                    _ => return Err(fail(format!("creating {domain}: {answer:?}"))),
                }
            }
            Step::ListCustomers { actor } => {
                let answer = self.get(actor, "/v1/customers?size=1000").await;
                prop_assert_eq!(answer.status, 200);
                self.check_no_foreign_names(actor, "/v1/customers", &answer)?;
                let listed = strings_at(&answer.json()["items"], "id");
                let own = owned_by(&self.world.customers, actor);
                prop_assert_eq!(listed, own, "partner {}'s customer list", actor);
            }
            Step::ReadCustomer { actor, target } => {
                self.about_customer(actor, target, |id| {
                    (Method::GET, format!("/v1/customers/{id}"), None)
                })
                .await?;
            }
            Step::ReadQualifications {
                actor,
                target,
                legacy,
            } => {
                let suffix = if legacy {
                    "qualification"
                } else {
                    "qualifications"
                };
                self.about_customer(actor, target, |id| {
                    (Method::GET, format!("/v1/customers/{id}/{suffix}"), None)
                })
                .await?;
            }
            Step::ReadHistory { actor, target } => {
                self.about_customer(actor, target, |id| {
                    (
                        Method::GET,
                        format!("/_pcq/customers/{id}/qualifications/history"),
                        None,
                    )
                })
                .await?;
            }
            Step::RequestQualification {
                actor,
                target,
                kind,
                legacy,
                request_id,
            } => {
                self.request_qualification(actor, target, kind, legacy, request_id)
                    .await?;
            }
            Step::IssueCode {
                partner,
                max_creates,
            } => {
                let tenant = self.partners[partner].tenant;
                let answer = self
                    .call(
                        Method::POST,
                        &format!("/_pcq/admin/partners/{tenant}/validation-codes"),
                        &self.admin,
                        Some(&json!({"organizationName": "Isolation Government", "maxCreates": max_creates})),
                        &[],
                    )
                    .await;
                prop_assert_eq!(answer.status, 201, "{:?}", answer);
                let id = answer.json()["validationId"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| fail(format!("no validationId in {answer:?}")))?;
                self.world.codes.push((id, partner));
            }
            Step::ListCodes { actor } => {
                let answer = self.get(actor, "/v1/customers/all/validations").await;
                prop_assert_eq!(answer.status, 200);
                self.check_no_foreign_names(actor, "/v1/customers/all/validations", &answer)?;
                let listed = strings_at(&answer.json(), "validationId");
                let own = owned_by(&self.world.codes, actor);
                prop_assert_eq!(listed, own, "partner {}'s validation codes", actor);
            }
            Step::ListAudit { actor } => {
                self.list_audit(actor).await?;
            }
            Step::ReadAuditRecord { actor, target } => {
                let records = &self.world.audit_records;
                if records.is_empty() {
                    return Ok(());
                }
                let (id, owner) = records[target % records.len()].clone();
                let path =
                    |id: &str| (Method::GET, format!("/v1/auditrecords/{id}"), None::<Value>);
                if owner == actor {
                    let answer = self.get(actor, &format!("/v1/auditrecords/{id}")).await;
                    prop_assert_eq!(answer.status, 200, "{:?}", answer);
                    prop_assert_eq!(&answer.json()["id"], id.as_str());
                    self.check_no_foreign_names(actor, &id, &answer)?;
                } else {
                    let unknown = format!("{}{}", &id[..id.len().saturating_sub(4)], "ffff");
                    let unknown = if unknown == id {
                        format!("{}{}", &id[..id.len().saturating_sub(4)], "eeee")
                    } else {
                        unknown
                    };
                    let answer = self
                        .compare_with_unknown(actor, owner, &id, &unknown, path)
                        .await?;
                    prop_assert_eq!(answer.status, 404, "{:?}", answer);
                }
            }
            Step::Register { actor, replace } => {
                let url = self.partners[actor].hook_url.clone();
                let method = if replace { Method::PUT } else { Method::POST };
                let answer = self
                    .call(
                        method,
                        "/webhooks/v1/registration",
                        self.token(actor),
                        Some(&json!({"WebhookUrl": url,
                            "WebhookEvents": ["test-created", "customer-qualification-updated"]})),
                        &[],
                    )
                    .await;
                self.check_no_foreign_names(actor, "/webhooks/v1/registration", &answer)?;
                let registered = self.world.registered.contains(&actor);
                match (answer.status, replace, registered) {
                    (200, _, _) => {
                        prop_assert_eq!(&answer.json()["WebhookUrl"], url.as_str());
                        self.world.registered.insert(actor);
                    }
                    // POST when the partner has one already; PUT when it has none.
                    (409, false, true) | (404, true, false) => {}
                    _ => {
                        return Err(fail(format!(
                            "registering partner {actor} (replace {replace}, registered \
                             {registered}): {answer:?}"
                        )));
                    }
                }
            }
            Step::Unregister { actor } => {
                let answer = self
                    .call(
                        Method::DELETE,
                        "/webhooks/v1/registration",
                        self.token(actor),
                        None,
                        &[],
                    )
                    .await;
                let expected = if self.world.registered.remove(&actor) {
                    204
                } else {
                    404
                };
                prop_assert_eq!(answer.status, expected, "{:?}", answer);
            }
            Step::SendTestEvent { actor } => {
                let correlation = Uuid::new_v4().to_string();
                let answer = self
                    .call(
                        Method::POST,
                        "/webhooks/v1/registration/validationEvents",
                        self.token(actor),
                        None,
                        &[("MS-CorrelationId", correlation.clone())],
                    )
                    .await;
                self.check_no_foreign_names(actor, "validationEvents", &answer)?;
                if self.world.registered.contains(&actor) {
                    prop_assert_eq!(answer.status, 200, "{:?}", answer);
                    self.world.test_events.push((correlation, actor));
                } else {
                    prop_assert!(answer.status >= 400, "{answer:?}");
                }
            }
            Step::ReadTestEvent { actor, target } => {
                let events = &self.world.test_events;
                if events.is_empty() {
                    return Ok(());
                }
                let (id, owner) = events[target % events.len()].clone();
                if owner == actor {
                    let answer = self
                        .get(
                            actor,
                            &format!("/webhooks/v1/registration/validationEvents/{id}"),
                        )
                        .await;
                    prop_assert_eq!(answer.status, 200, "{:?}", answer);
                    let tenant = self.partners[actor].tenant.to_string();
                    prop_assert_eq!(&answer.json()["partnerId"], tenant.as_str());
                } else {
                    let unknown = Uuid::new_v4().to_string();
                    let answer = self
                        .compare_with_unknown(actor, owner, &id, &unknown, |id| {
                            (
                                Method::GET,
                                format!("/webhooks/v1/registration/validationEvents/{id}"),
                                None,
                            )
                        })
                        .await?;
                    prop_assert_eq!(answer.status, 404, "{:?}", answer);
                }
            }
            Step::ListDeliveries { actor } => {
                self.list_deliveries(actor).await?;
            }
            Step::Drain => {
                self.app.drain().await;
            }
        }
        Ok(())
    }

    /// A request about a customer: for the partner's own customer it must succeed, for another
    /// partner's it must answer 403/20002 and change nothing, for an unknown one 404.
    async fn about_customer(
        &self,
        actor: usize,
        target: usize,
        request: impl Fn(&str) -> (Method, String, Option<Value>),
    ) -> Result<(), TestCaseError> {
        let customers = &self.world.customers;
        let (id, owner) = if customers.is_empty() {
            (Uuid::new_v4(), usize::MAX)
        } else {
            customers[target % customers.len()]
        };
        let id = id.to_string();
        if owner == actor {
            let (method, path, body) = request(&id);
            let answer = self
                .call(method, &path, self.token(actor), body.as_ref(), &[])
                .await;
            prop_assert_eq!(answer.status, 200, "{} {:?}", path, answer);
            self.check_no_foreign_names(actor, &path, &answer)?;
        } else if owner == usize::MAX {
            let (method, path, body) = request(&id);
            let answer = self
                .call(method, &path, self.token(actor), body.as_ref(), &[])
                .await;
            prop_assert_eq!(answer.status, 404, "{} {:?}", path, answer);
        } else {
            self.about_foreign_customer(actor, owner, &id, request)
                .await?;
        }
        Ok(())
    }

    async fn request_qualification(
        &mut self,
        actor: usize,
        target: usize,
        kind: Kind,
        legacy: bool,
        request_id: Option<u8>,
    ) -> Result<(), TestCaseError> {
        let code = match kind {
            Kind::Gcc(i) if !self.world.codes.is_empty() => {
                Some(self.world.codes[i % self.world.codes.len()].clone())
            }
            Kind::Gcc(_) => Some(("123456789012".to_owned(), usize::MAX)),
            _ => None,
        };
        let name = match kind {
            Kind::Education => "Education",
            Kind::Gcc(_) => "GovernmentCommunityCloud",
            Kind::StateOwnedEntity => "StateOwnedEntity",
        };
        let request = |customer: &str, code: Option<&str>| {
            if legacy {
                let query = code.map(|c| format!("?code={c}")).unwrap_or_default();
                (
                    Method::PUT,
                    format!("/v1/customers/{customer}/qualification{query}"),
                    Some(json!(name)),
                )
            } else {
                let mut body = json!({"qualification": name});
                if let Some(code) = code {
                    body["validationCode"] = json!(code);
                }
                (
                    Method::POST,
                    format!("/v1/customers/{customer}/qualifications"),
                    Some(body),
                )
            }
        };

        let customers = &self.world.customers;
        let (customer, owner) = if customers.is_empty() {
            (Uuid::new_v4(), usize::MAX)
        } else {
            customers[target % customers.len()]
        };
        let customer = customer.to_string();
        let code_id = code.as_ref().map(|(c, _)| c.clone());
        if owner != actor && owner != usize::MAX {
            // Another partner's customer: no relationship, whatever the code.
            self.about_foreign_customer(actor, owner, &customer, |id| {
                request(id, code_id.as_deref())
            })
            .await?;
            return Ok(());
        }
        if let Some((code, code_owner)) = &code {
            if *code_owner != actor && *code_owner != usize::MAX && owner == actor {
                // Another partner's code on an own customer: like a code that never existed.
                let unknown: String = code
                    .chars()
                    .map(|c| if c == '9' { '8' } else { '9' })
                    .collect();
                self.compare_with_unknown(actor, *code_owner, code, &unknown, |c| {
                    request(&customer, Some(c))
                })
                .await?;
                return Ok(());
            }
        }
        let (method, path, body) = request(&customer, code_id.as_deref());
        let headers: Vec<(&str, String)> = request_id
            .map(|r| vec![("MS-RequestId", format!("shared-request-{r}"))])
            .unwrap_or_default();
        let answer = self
            .call(method, &path, self.token(actor), body.as_ref(), &headers)
            .await;
        self.check_no_foreign_names(actor, &path, &answer)?;
        prop_assert!(
            answer.status < 500,
            "{} {}: {:?}",
            path,
            body.unwrap_or_default(),
            answer
        );
        if owner == usize::MAX {
            prop_assert_eq!(answer.status, 404, "{:?}", answer);
        }
        Ok(())
    }

    async fn list_audit(&mut self, actor: usize) -> Result<(), TestCaseError> {
        let answer = self.get(actor, "/v1/auditrecords?size=1000").await;
        prop_assert_eq!(answer.status, 200, "{:?}", answer);
        self.check_no_foreign_names(actor, "/v1/auditrecords", &answer)?;
        let tenant = self.partners[actor].tenant.to_string();
        let records = answer.json()["items"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut added = 0;
        for record in &records {
            prop_assert_eq!(&record["partnerId"], tenant.as_str(), "{}", record);
            let customer: Option<Uuid> = record["customerId"].as_str().and_then(|s| s.parse().ok());
            prop_assert!(
                customer.is_some_and(|c| self.world.owner_of_customer(c) == Some(actor)),
                "partner {actor} audit record about a customer it does not have: {record}"
            );
            if record["operationType"] == "add_customer" {
                added += 1;
            }
            if let Some(id) = record["id"].as_str() {
                if !self.world.audit_records.iter().any(|(r, _)| r == id) {
                    self.world.audit_records.push((id.to_owned(), actor));
                }
            }
        }
        let own_customers = self
            .world
            .customers
            .iter()
            .filter(|(_, p)| *p == actor)
            .count();
        prop_assert_eq!(
            added,
            own_customers,
            "partner {}'s add_customer records",
            actor
        );
        Ok(())
    }

    async fn list_deliveries(&self, actor: usize) -> Result<(), TestCaseError> {
        let answer = self
            .get(actor, "/webhooks/v1/registration/deliveries?size=1000")
            .await;
        prop_assert_eq!(answer.status, 200, "{:?}", answer);
        self.check_no_foreign_names(actor, "/webhooks/v1/registration/deliveries", &answer)?;
        for delivery in answer.json().as_array().cloned().unwrap_or_default() {
            prop_assert_eq!(
                &delivery["callbackUrl"],
                self.partners[actor].hook_url.as_str(),
                "{}",
                delivery
            );
        }
        Ok(())
    }

    /// The end of a case: every partner's own view holds its own records only, and its codes'
    /// used creates are its GCC customers.
    async fn check_final(&mut self) -> Result<(), TestCaseError> {
        for actor in 0..PARTNERS {
            self.run(&Step::ListCustomers { actor }).await?;
            self.run(&Step::ListCodes { actor }).await?;
            self.list_audit(actor).await?;
            self.list_deliveries(actor).await?;
            let registration = self.get(actor, "/webhooks/v1/registration").await;
            if self.world.registered.contains(&actor) {
                prop_assert_eq!(registration.status, 200);
                prop_assert_eq!(
                    &registration.json()["WebhookUrl"],
                    self.partners[actor].hook_url.as_str()
                );
            } else {
                prop_assert_eq!(registration.status, 404, "{:?}", registration);
            }
            let mut gcc_customers = 0;
            for (id, _) in self.world.customers.iter().filter(|(_, p)| *p == actor) {
                let answer = self
                    .get(actor, &format!("/v1/customers/{id}/qualifications"))
                    .await;
                prop_assert_eq!(answer.status, 200);
                if answer.body.contains("\"GovernmentCommunityCloud\"") {
                    gcc_customers += 1;
                }
            }
            let codes = self
                .get(actor, "/v1/customers/all/validations")
                .await
                .json();
            let used: i64 = codes
                .as_array()
                .map(|codes| {
                    codes
                        .iter()
                        .map(|c| {
                            c["maxCreates"].as_i64().unwrap_or(0)
                                - c["remainingCreates"].as_i64().unwrap_or(0)
                        })
                        .sum()
                })
                .unwrap_or(0);
            prop_assert_eq!(
                used,
                gcc_customers,
                "partner {}'s used validation-code creates against its GCC customers",
                actor
            );
        }
        Ok(())
    }
}

/// Plays one generated sequence on a fresh node.
async fn play(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let app = TestApp::spawn().await;
    let partners = (0..PARTNERS)
        .map(|i| {
            let tenant = Uuid::new_v4();
            Partner {
                tenant,
                token: app.token(TokenSpec {
                    wids: vec![DIRECTORY_READERS.to_owned()],
                    ..TestApp::spec(tenant)
                }),
                hook_url: format!("http://127.0.0.1:9/hooks/partner-{i}"),
            }
        })
        .collect();
    let mut case = Case {
        admin: app.admin_token(),
        app: &app,
        partners,
        world: World::default(),
    };
    for step in &steps {
        case.run(step).await?;
    }
    case.check_final().await
}

/// Runs the property on the backend of the calling test, from a blocking thread (proptest's
/// runner is synchronous) that drives each case on the test's runtime.
async fn partners_never_see_each_others_data() {
    let backend = backend();
    // PROPTEST_CASES runs more (or fewer) cases, as for every property test.
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(match backend {
            Backend::Sqlite => 24,
            Backend::Postgres => 12,
        });
    let handle = tokio::runtime::Handle::current();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut runner = TestRunner::new(ProptestConfig {
            cases,
            max_shrink_iters: 200,
            failure_persistence: None,
            ..ProptestConfig::default()
        });
        runner
            .run(&prop::collection::vec(step(), 1..40), |steps| {
                handle.block_on(with_backend(backend, play(steps)))
            })
            .map_err(|e| e.to_string())
    })
    .await
    .expect("the property runs");
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

crate::common::backend_tests!(partners_never_see_each_others_data);
