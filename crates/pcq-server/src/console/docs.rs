//! `/_pcq/docs`: the OpenAPI document rendered on the server for reading, offline: every path
//! and method with its parameters, request body, answers and schemas.

use std::sync::LazyLock;

use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde_json::Value;

use super::{BASE, html_response, page};

static DOCS: LazyLock<String> = LazyLock::new(|| render(&document()).into_string());

fn document() -> Value {
    serde_json::to_value(crate::http::openapi()).unwrap_or(Value::Null)
}

/// `GET /_pcq/docs`.
pub async fn docs_page() -> Response {
    let mut response = html_response(StatusCode::OK, maud::PreEscaped(DOCS.clone()));
    // The same for everyone and for the life of the process.
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-cache"),
    );
    response
}

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

/// The name a `$ref` points to (`#/components/schemas/Customer` → `Customer`).
fn ref_name(reference: &str) -> &str {
    reference.rsplit('/').next().unwrap_or(reference)
}

fn anchor(name: &str) -> String {
    let id: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("schema-{id}")
}

/// A schema in a few words, with links to named schemas.
fn schema_type(schema: &Value) -> Markup {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = ref_name(reference);
        return html! { a href={ "#" (anchor(name)) } { (name) } };
    }
    for combinator in ["oneOf", "anyOf", "allOf"] {
        if let Some(choices) = schema[combinator].as_array() {
            let joiner = if combinator == "allOf" {
                " and "
            } else {
                " or "
            };
            return html! {
                @for (n, choice) in choices.iter().enumerate() {
                    @if n > 0 { (joiner) }
                    (schema_type(choice))
                }
            };
        }
    }
    let kind = match &schema["type"] {
        Value::String(t) => t.clone(),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => String::new(),
    };
    html! {
        @if kind.contains("array") {
            "array of " (schema_type(&schema["items"]))
        } @else if kind.is_empty() {
            "any"
        } @else {
            (kind)
            @if let Some(format) = schema["format"].as_str() { " (" (format) ")" }
        }
        @if let Some(values) = schema["enum"].as_array() {
            ": "
            @for (n, v) in values.iter().enumerate() {
                @if n > 0 { ", " }
                code { (v.as_str().map_or_else(|| v.to_string(), str::to_owned)) }
            }
        }
    }
}

fn operation(path: &str, method: &str, op: &Value) -> Markup {
    let id = format!(
        "op-{}-{}",
        method,
        path.replace(|c: char| !c.is_ascii_alphanumeric(), "-")
    );
    html! {
        section.card.operation id=(id) {
            h3 {
                span class={ "method " (method) } { (method.to_ascii_uppercase()) }
                " " code.path { (path) }
            }
            @if let Some(summary) = op["summary"].as_str() { p { (summary) } }
            @if let Some(description) = op["description"].as_str() {
                @if Some(description) != op["summary"].as_str() { p.muted { (description) } }
            }
            @if op["security"].as_array().is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some())) {
                p.muted { "Needs a bearer token." }
            }
            @if let Some(params) = op["parameters"].as_array().filter(|p| !p.is_empty()) {
                div.table-wrap {
                    table {
                        (super::table_head("Parameters", &["Name", "In", "Type", "Required", "Description"]))
                        tbody {
                            @for p in params {
                                tr {
                                    td { code { (p["name"].as_str().unwrap_or("")) } }
                                    td { (p["in"].as_str().unwrap_or("")) }
                                    td { (schema_type(&p["schema"])) }
                                    td { @if p["required"].as_bool() == Some(true) { "yes" } @else { "no" } }
                                    td { (p["description"].as_str().unwrap_or("")) }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(content) = op["requestBody"]["content"].as_object() {
                p {
                    "Request body"
                    @if op["requestBody"]["required"].as_bool() == Some(true) { " (required)" }
                    ": "
                    @for (n, (media, body)) in content.iter().enumerate() {
                        @if n > 0 { "; " }
                        (schema_type(&body["schema"])) " as " code { (media) }
                    }
                }
            }
            @if let Some(responses) = op["responses"].as_object() {
                div.table-wrap {
                    table {
                        (super::table_head("Answers", &["Status", "Description", "Body"]))
                        tbody {
                            @for (status, answer) in responses {
                                tr {
                                    td { (status) }
                                    td { (answer["description"].as_str().unwrap_or("")) }
                                    td {
                                        @if let Some(content) = answer["content"].as_object() {
                                            @for (n, (media, body)) in content.iter().enumerate() {
                                                @if n > 0 { "; " }
                                                (schema_type(&body["schema"])) " (" (media) ")"
                                            }
                                        } @else if let Some(reference) = answer["$ref"].as_str() {
                                            (ref_name(reference))
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn schema_section(name: &str, schema: &Value) -> Markup {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    html! {
        section.card.schema id=(anchor(name)) {
            h3 { (name) }
            @if let Some(description) = schema["description"].as_str() { p { (description) } }
            @if let Some(properties) = schema["properties"].as_object() {
                div.table-wrap {
                    table {
                        caption { "Properties of " (name) }
                        thead { tr {
                            th scope="col" { "Property" } th scope="col" { "Type" }
                            th scope="col" { "Required" } th scope="col" { "Description" }
                        } }
                        tbody {
                            @for (property, s) in properties {
                                tr {
                                    td { code { (property) } }
                                    td { (schema_type(s)) }
                                    td { @if required.contains(&property.as_str()) { "yes" } @else { "no" } }
                                    td { (s["description"].as_str().unwrap_or("")) }
                                }
                            }
                        }
                    }
                }
            } @else {
                p { "A " (schema_type(schema)) "." }
            }
        }
    }
}

fn render(doc: &Value) -> Markup {
    let title = doc["info"]["title"].as_str().unwrap_or("pcq");
    let version = doc["info"]["version"].as_str().unwrap_or("");
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    let schemas = doc["components"]["schemas"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let body = html! {
        p { (title) " " (version) ". The same document as JSON: "
            a href="/_pcq/openapi.json" { "/_pcq/openapi.json" } ". Error answers carry the \
            Partner Center envelope (" a href={ "#" (anchor("Envelope")) } { "Envelope" } "). "
            a href={ (BASE) "/" } { "Open the console" } "." }
        @if let Some(description) = doc["info"]["description"].as_str() { p.muted { (description) } }
        nav.toc aria-label="Paths" {
            h2 { "Paths" }
            ul {
                @for (path, item) in &paths {
                    @for method in METHODS {
                        @if item.get(method).is_some() {
                            li {
                                a href={ "#op-" (method) "-" (path.replace(|c: char| !c.is_ascii_alphanumeric(), "-")) } {
                                    span class={ "method " (method) } { (method.to_ascii_uppercase()) } " " (path)
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Operations" }
        @for (path, item) in &paths {
            @for method in METHODS {
                @if let Some(op) = item.get(method) { (operation(path, method, op)) }
            }
        }
        h2 { "Schemas" }
        @for (name, schema) in &schemas { (schema_section(name, schema)) }
    };
    page("API documentation", None, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_and_schema_is_rendered() {
        let doc = document();
        let html = render(&doc).into_string();
        for path in doc["paths"].as_object().unwrap().keys() {
            assert!(
                html.contains(&format!("<code class=\"path\">{path}</code>")),
                "{path}"
            );
        }
        for name in doc["components"]["schemas"].as_object().unwrap().keys() {
            assert!(html.contains(&format!("id=\"{}\"", anchor(name))), "{name}");
        }
    }
}
