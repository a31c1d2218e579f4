//! Creates a customer for each domain read from standard input, idempotently: each request id
//! is derived from the domain, so running the import again creates nothing twice (pcq answers
//! the stored customer), even when answers were lost on the way.
//!
//! ```sh
//! printf 'a.example.com\nb.example.com\n' | cargo run -p pcq-client --example import
//! ```
//! (with `PCQ_URL` and `PCQ_TOKEN` set as for the `qualify` example).

use std::io::BufRead;

use pcq_client::{NewCustomer, PartnerClient};
use uuid::Uuid;

/// The namespace of this import's request ids.
const IMPORT: Uuid = Uuid::from_u128(0x6a1f_5e0b_8d4c_4e58_9b2a_7c3d_1e0f_4a21);

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Display, not Debug: "409 Conflict (code 950409): … [request id …]".
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("PCQ_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".to_owned());
    let token = std::env::var("PCQ_TOKEN").map_err(|_| "set PCQ_TOKEN (pcq token --tenant …)")?;
    let client = PartnerClient::builder(url).token(token).build()?;
    // One correlation id for the whole import, to find its calls in logs and pcq's journal.
    let client = client.with_correlation_id(Uuid::new_v4().to_string());

    for line in std::io::stdin().lock().lines() {
        let domain = line?.trim().to_lowercase();
        if domain.is_empty() {
            continue;
        }
        let request_id = Uuid::new_v5(&IMPORT, domain.as_bytes()).to_string();
        match client
            .customers()
            .create(&NewCustomer::new(&domain))
            .with_request_id(request_id)
            .await
        {
            Ok(customer) => println!("{domain}\t{}", customer.id),
            Err(e) => eprintln!("{domain}\t{e}"),
        }
    }
    Ok(())
}
