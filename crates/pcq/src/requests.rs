//! `pcq admin requests`: the request journal of a node (`GET /_pcq/admin/requests`), once or
//! followed.

use std::time::Duration;

use clap::Args;
use pcq_client::RequestFilter;
use serde_json::Value;

use crate::connection::{Connection, Role};
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
    connection: Connection,
}

/// Runs `pcq admin requests`.
pub async fn run(args: RequestsArgs) -> anyhow::Result<()> {
    let client = crate::connection::connect(&args.connection, Role::Admin).await?;
    let admin = client.admin();
    let mut filter = RequestFilter::new();
    if let Some(partner) = &args.partner {
        filter = filter.partner(partner);
    }
    if let Some(method) = &args.method {
        filter = filter.method(method);
    }
    if let Some(path) = &args.path {
        filter = filter.path(path);
    }
    if let Some(status) = &args.status {
        filter = filter.status(status);
    }
    let mut first = filter.clone();
    if let Some(n) = args.limit {
        first = first.limit(n);
    }
    let page = admin.requests(first).await?;
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
            let page = admin
                .requests(filter.clone().since(since).limit(1000))
                .await?;
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
    let mut table = crate::output::table(COLUMNS);
    for entry in entries {
        table.add_row(row(entry));
    }
    println!("{table}");
}
