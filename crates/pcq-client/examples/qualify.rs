//! Creates a customer, asks for its Education qualification and prints pcq's answer (InReview,
//! waiting for vetting).
//!
//! ```sh
//! pcq serve --in-memory &            # prints its URL and the development partner tenant
//! export PCQ_URL=http://127.0.0.1:8080
//! export PCQ_TOKEN=$(pcq token --tenant <partner tenant>)
//! cargo run -p pcq-client --example qualify -- contoso.example.edu
//! ```

use pcq_client::{EducationSegment, NewCustomer, PartnerClient, QualificationRequest};

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
    let domain = std::env::args()
        .nth(1)
        .unwrap_or_else(|| format!("school-{}.example.edu", std::process::id()));

    let client = PartnerClient::builder(url).token(token).build()?;
    let customer = client
        .customers()
        .create(&NewCustomer::new(&domain).company_name("Example School"))
        .await?;
    println!(
        "customer {} ({})",
        customer.id, customer.company_profile.domain
    );

    let qualification = client
        .customers()
        .by_id(customer.id)
        .qualifications()
        .create(
            QualificationRequest::education(EducationSegment::K12)
                .website(format!("https://www.{domain}")),
        )
        .await?;
    println!("{}", serde_json::to_string_pretty(&qualification)?);
    Ok(())
}
