//! Removing credentials from what the journal keeps: query parameters and JSON body fields
//! named like credentials (`access_token`, `client_secret`, `password`, …), and the user name,
//! password and credential-like query parameters of URLs inside bodies (a webhook URL such as
//! `https://user:pw@hooks.example.com/in?key=…`).
//!
//! Bodies are scanned as text, so a body cut at the journal's 4 KiB limit (no longer valid
//! JSON) is cleaned as well as a whole one. Most answers name no credential at all: one pass of
//! a multi-pattern search decides whether a body needs the scan.

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

/// What replaces a credential.
pub const REDACTED: &str = "REDACTED";

/// Field and parameter names whose values are credentials, compared in lower case without
/// `_`, `-` and `.` (so `access_token`, `accessToken` and `Access-Token` all match).
const SECRET_NAMES: &[&str] = &[
    "accesstoken",
    "idtoken",
    "refreshtoken",
    "clientsecret",
    "token",
    "password",
    "assertion",
    "clientassertion",
    "secret",
    "authorization",
    "apikey",
];

/// Query parameters of URLs inside bodies that are treated as credentials too (signed webhook
/// URLs carry their key in the query).
const URL_SECRET_NAMES: &[&str] = &["key", "sig", "signature", "code"];

/// Text without any of these (in any letter case) carries none of the credentials above.
static TRIGGERS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build([
            "token",
            "secret",
            "password",
            "assertion",
            "authorization",
            "apikey",
            "api_key",
            "api-key",
            "://",
            ":\\/\\/",
            "%3a%2f%2f",
        ])
        .expect("fixed patterns build")
});

fn normalized(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '_' | '-' | '.'))
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Whether a field or parameter called `name` holds a credential.
pub fn is_secret_name(name: &str) -> bool {
    SECRET_NAMES.contains(&normalized(name).as_str())
}

fn is_url_secret_name(name: &str) -> bool {
    let name = normalized(name);
    SECRET_NAMES.contains(&name.as_str()) || URL_SECRET_NAMES.contains(&name.as_str())
}

fn percent_decoded(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(high), Some(low)) => {
                        out.push((high * 16 + low) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A query string (without `?`) with the values of credential parameters replaced, or `None`
/// when it holds none. `url_names` adds the names treated as credentials in URLs.
fn redact_pairs(query: &str, url_names: bool) -> Option<String> {
    let mut changed = false;
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decoded_name = percent_decoded(name);
            let secret = if url_names {
                is_url_secret_name(&decoded_name)
            } else {
                is_secret_name(&decoded_name)
            };
            if secret && !value.is_empty() {
                changed = true;
                return format!("{name}={REDACTED}");
            }
            let decoded_value = percent_decoded(value);
            if decoded_value.contains("://") {
                if let Some(url) = redact_url(&decoded_value) {
                    changed = true;
                    return format!("{name}={}", encode_query_value(&url));
                }
            }
            pair.to_owned()
        })
        .collect();
    changed.then(|| pairs.join("&"))
}

fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:/@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A request's query string (without `?`) with credential parameters replaced, or `None` when
/// it holds none.
pub fn redact_query(query: &str) -> Option<String> {
    if query.is_empty() {
        return None;
    }
    redact_pairs(query, false)
}

/// A URL without its user name and password and with the values of credential-like query
/// parameters replaced; `None` when it carries neither (or is not a URL).
pub fn redact_url(text: &str) -> Option<String> {
    let url = reqwest::Url::parse(text.trim()).ok()?;
    let userinfo = !url.username().is_empty() || url.password().is_some();
    let query = url.query().and_then(|q| redact_pairs(q, true));
    if !userinfo && query.is_none() {
        return None;
    }
    let host = url.host_str().unwrap_or_default();
    let mut out = format!("{}://", url.scheme());
    if userinfo {
        out.push_str(REDACTED);
        out.push('@');
    }
    out.push_str(host);
    if let Some(port) = url.port() {
        out.push_str(&format!(":{port}"));
    }
    out.push_str(url.path());
    match (query, url.query()) {
        (Some(q), _) => {
            out.push('?');
            out.push_str(&q);
        }
        (None, Some(q)) => {
            out.push('?');
            out.push_str(q);
        }
        (None, None) => {}
    }
    if let Some(fragment) = url.fragment() {
        out.push('#');
        out.push_str(fragment);
    }
    Some(out)
}

/// A body with its credentials replaced, or `None` when it holds none. JSON (also when cut
/// short) has the values of credential fields and the credentials of URLs replaced; a form
/// (`name=value&…`) its credential parameters; any other text that names a credential is
/// replaced whole, since where the credential is cannot be told.
pub fn redact_body(body: &[u8]) -> Option<Vec<u8>> {
    if body.is_empty() || !TRIGGERS.is_match(body) {
        return None;
    }
    let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if matches!(first, Some(b'{' | b'[' | b'"')) {
        return redact_json_text(body);
    }
    let text = std::str::from_utf8(body).ok();
    if let Some(text) = text.filter(|t| t.contains('=') && !t.contains(char::is_whitespace)) {
        return redact_pairs(text, false).map(String::into_bytes);
    }
    Some(b"(removed: a body that is neither JSON nor a form and may carry credentials)".to_vec())
}

/// A response body with the credentials of its URLs replaced, or `None` when it holds none.
/// pcq's answers carry no credential fields, only URLs (webhook targets) that may hold some:
/// a search for `://` (SIMD, as the answer of every read passes here) decides whether to scan.
pub fn redact_response_body(body: &[u8]) -> Option<Vec<u8>> {
    static URL: LazyLock<memchr::memmem::Finder<'static>> =
        LazyLock::new(|| memchr::memmem::Finder::new(b"://"));
    static ESCAPED_URL: LazyLock<memchr::memmem::Finder<'static>> =
        LazyLock::new(|| memchr::memmem::Finder::new(b":\\/\\/"));
    let has_url = URL.find(body).is_some() || ESCAPED_URL.find(body).is_some();
    if has_url { redact_body(body) } else { None }
}

/// The end of the JSON string whose opening quote is at `start`: the index of its closing
/// quote, or the body's length when it was cut short.
fn string_end(body: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < body.len() {
        match body[i] {
            b'\\' => i += 2,
            b'"' => return i,
            _ => i += 1,
        }
    }
    body.len()
}

fn unescaped(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    if !text.contains('\\') {
        return text.into_owned();
    }
    serde_json::from_str::<String>(&format!("\"{text}\"")).unwrap_or_else(|_| text.into_owned())
}

fn json_string_content(text: &str) -> Vec<u8> {
    let quoted = serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned());
    quoted.as_bytes()[1..quoted.len() - 1].to_vec()
}

/// Scans JSON text (possibly cut short) for credential fields and URLs with credentials.
fn redact_json_text(body: &[u8]) -> Option<Vec<u8>> {
    // (start, end, replacement): byte ranges of the body to replace, in order.
    let mut edits: Vec<(usize, usize, Vec<u8>)> = Vec::new();
    let mut secret_value_next = false;
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'"' => {
                let end = string_end(body, i);
                let content = &body[i + 1..end.min(body.len())];
                let mut after = end + 1;
                while after < body.len() && body[after].is_ascii_whitespace() {
                    after += 1;
                }
                if after < body.len() && body[after] == b':' {
                    secret_value_next = is_secret_name(&unescaped(content));
                } else if secret_value_next {
                    edits.push((i + 1, end, REDACTED.as_bytes().to_vec()));
                    secret_value_next = false;
                } else if content.windows(3).any(|w| w == b"://")
                    || content.windows(5).any(|w| w == b":\\/\\/")
                {
                    if let Some(url) = redact_url(&unescaped(content)) {
                        edits.push((i + 1, end, json_string_content(&url)));
                    }
                }
                i = end + 1;
            }
            b'{' | b'[' | b',' | b'}' | b']' => {
                secret_value_next = false;
                i += 1;
            }
            b if secret_value_next && !b.is_ascii_whitespace() && b != b':' => {
                // A number, true, false or null under a credential's name.
                let mut end = i;
                while end < body.len() && !b",}] \t\r\n".contains(&body[end]) {
                    end += 1;
                }
                let mut quoted = b"\"".to_vec();
                quoted.extend_from_slice(REDACTED.as_bytes());
                quoted.push(b'"');
                edits.push((i, end, quoted));
                secret_value_next = false;
                i = end;
            }
            _ => i += 1,
        }
    }
    if edits.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(body.len());
    let mut at = 0;
    for (start, end, replacement) in edits {
        out.extend_from_slice(&body[at..start]);
        out.extend_from_slice(&replacement);
        at = end;
    }
    out.extend_from_slice(&body[at.min(body.len())..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(text: &str) -> String {
        redact_body(text.as_bytes())
            .map(|b| String::from_utf8(b).unwrap())
            .unwrap_or_else(|| text.to_owned())
    }

    #[test]
    fn credential_fields_are_replaced_in_json() {
        let out = body(
            r#"{"access_token": "tok-1", "Client_Secret":"s2", "nested": {"refreshToken": "r3",
               "password": 12345, "id_token": null}, "continuationToken": "keep", "name": "x"}"#,
        );
        for gone in ["tok-1", "s2", "r3", "12345"] {
            assert!(!out.contains(gone), "{gone} in {out}");
        }
        assert!(out.contains("\"keep\""), "{out}");
        assert!(out.contains("\"name\": \"x\""), "{out}");
        let value: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value["access_token"], REDACTED);
        assert_eq!(value["nested"]["password"], REDACTED);
    }

    #[test]
    fn a_cut_body_is_cleaned_too() {
        let out =
            body(r#"[{"token": "abc-secret-value", "x": "https://u:pw@h.example/p?key=k1&a=b"#);
        assert!(!out.contains("abc-secret-value"), "{out}");
        assert!(!out.contains("pw@"), "{out}");
        assert!(!out.contains("k1"), "{out}");
        assert!(out.contains("a=b"), "{out}");
        let out = body(r#"{"token": "abc-secret-val"#);
        assert!(!out.contains("abc-secret"), "{out}");
    }

    #[test]
    fn urls_lose_their_credentials() {
        assert_eq!(
            redact_url("https://user:hunter2@hooks.example.com:8443/pc/in?key=s3cret&x=1#f")
                .unwrap(),
            "https://REDACTED@hooks.example.com:8443/pc/in?key=REDACTED&x=1#f"
        );
        assert_eq!(redact_url("https://hooks.example.com/pc/in?x=1"), None);
        let out = body(r#"{"WebhookUrl": "https:\/\/a:b@h.example\/x"}"#);
        assert!(!out.contains("a:b"), "{out}");
    }

    #[test]
    fn queries_and_forms() {
        assert_eq!(
            redact_query("partner=1&access_token=abc&Password=p").unwrap(),
            "partner=1&access_token=REDACTED&Password=REDACTED"
        );
        assert_eq!(redact_query("size=5&seekOperation=Next"), None);
        assert_eq!(
            redact_query("cb=https%3A%2F%2Fu%3Ap%40h.example%2Fx").unwrap(),
            "cb=https://REDACTED@h.example/x"
        );
        assert_eq!(
            body("grant_type=client_credentials&client_secret=s3"),
            "grant_type=client_credentials&client_secret=REDACTED"
        );
        assert!(!body("Bearer eyJ.secret.token here").contains("eyJ"));
        assert_eq!(
            body(r#"{"qualification": "Education"}"#),
            r#"{"qualification": "Education"}"#
        );
    }
}
