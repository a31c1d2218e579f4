//! `pcq admin requests`: the request journal of a node (`GET /_pcq/admin/requests`), once or
//! followed.

use std::time::Duration;

use clap::Args;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde_json::Value;

use crate::review;

/// How often `--follow` asks for new entries.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(500);

/// `pcq admin requests …`
#[derive(Args)]
pub struct RequestsArgs {
    /// Keep printing new requests as they are served (every half second) until interrupted.
    #[arg(long)]
    follow: bool,
    /// Print the API's JSON (under --follow, one entry per line).
    #[arg(long)]
    json: bool,
    /// Only requests of this partner tenant.
    #[arg(long, value_name = "GUID")]
    partner: Option<String>,
    /// Only requests with this method, e.g. POST.
    #[arg(long)]
    method: Option<String>,
    /// Only requests whose path starts with this, e.g. /v1/customers.
    #[arg(long, value_name = "PREFIX")]
    path: Option<String>,
    /// Only answers with this status (404) or class (4xx).
    #[arg(long, value_name = "CODE")]
    status: Option<String>,
    /// Most requests shown (1 to 1000) [default: 100]; under --follow, of those already served.
    #[arg(long, value_name = "N")]
    limit: Option<u32>,
    #[command(flatten)]
    connection: review::Connection,
}

/// Runs `pcq admin requests`.
pub async fn run(args: RequestsArgs) -> anyhow::Result<()> {
    let client = review::Client::new(&args.connection, pcq_server::auth::ROLE_ADMIN).await?;
    let mut query: Vec<(&str, String)> = Vec::new();
    query.extend(args.partner.clone().map(|v| ("partner", v)));
    query.extend(args.method.clone().map(|v| ("method", v)));
    query.extend(args.path.clone().map(|v| ("path", v)));
    query.extend(args.status.clone().map(|v| ("status", v)));
    let mut first = query.clone();
    first.extend(args.limit.map(|n| ("limit", n.to_string())));
    let page = client.get("/_pcq/admin/requests", &first).await?;
    if !args.follow {
        if args.json {
            review::print(&page);
        } else {
            print_table(items(&page));
        }
        return Ok(());
    }

    // Following: oldest first, as they come.
    if !args.json {
        println!("{}", header_line());
    }
    let mut since = page["nextSince"].as_u64().unwrap_or(0);
    print_lines(items(&page), args.json);
    loop {
        tokio::time::sleep(FOLLOW_INTERVAL).await;
        loop {
            let mut next = query.clone();
            next.push(("since", since.to_string()));
            next.push(("limit", "1000".to_owned()));
            let page = client.get("/_pcq/admin/requests", &next).await?;
            since = page["nextSince"].as_u64().unwrap_or(since);
            print_lines(items(&page), args.json);
            if page["truncated"] != true {
                break;
            }
        }
    }
}

fn items(page: &Value) -> &[Value] {
    page["items"].as_array().map_or(&[], Vec::as_slice)
}

/// Prints entries (given newest first) oldest first, one line each.
fn print_lines(entries: &[Value], json: bool) {
    for entry in entries.iter().rev() {
        if json {
            println!("{}", serde_json::to_string(entry).unwrap_or_default());
        } else {
            println!("{}", line(&row(entry)));
        }
    }
}

const COLUMNS: [&str; 8] = [
    "ID", "TIME", "METHOD", "STATUS", "MS", "PATH", "CALLER", "NOTE",
];
const WIDTHS: [usize; 7] = [6, 24, 7, 6, 8, 56, 36];

fn header_line() -> String {
    line(&COLUMNS.map(str::to_owned))
}

/// Columns padded to their widths (the last one as it is).
fn line(cells: &[String; 8]) -> String {
    let mut out = String::new();
    for (cell, width) in cells.iter().zip(WIDTHS) {
        out.push_str(&format!("{cell:<width$} "));
    }
    out.push_str(&cells[7]);
    out.trim_end().to_owned()
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// An entry's cells.
fn row(entry: &Value) -> [String; 8] {
    let caller = match (entry["user"].as_str(), entry["partner"].as_str()) {
        (Some(user), _) => user.to_owned(),
        (None, Some(partner)) => format!("app in {partner}"),
        (None, None) => String::new(),
    };
    let mut note = Vec::new();
    if entry["replayed"] == true {
        note.push("replayed".to_owned());
    }
    if let Some(fault) = entry["fault"].as_str() {
        note.push(format!("fault {fault}"));
    }
    if let Some(description) = entry["responseBody"]["description"].as_str() {
        note.push(description.chars().take(80).collect());
    }
    let millis = entry["durationMicros"].as_u64().unwrap_or(0) as f64 / 1000.0;
    [
        text(&entry["id"]),
        text(&entry["time"]),
        text(&entry["method"]),
        text(&entry["status"]),
        format!("{millis:.1}"),
        text(&entry["path"]),
        caller,
        note.join("; "),
    ]
}

fn print_table(entries: &[Value]) {
    if entries.is_empty() {
        println!("no requests recorded");
        return;
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(COLUMNS);
    for entry in entries {
        table.add_row(row(entry));
    }
    println!("{table}");
}
