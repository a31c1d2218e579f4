//! `pcq admin load`: fills the store with generated customers and qualifications.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, ValueEnum};
use pcq_server::service::DevPartner;
use pcq_server::service::load::{BulkLoad, LoadedQualification};

/// SQLite page cache of the loading process, in MiB (at least).
const LOAD_CACHE_MIB: u32 = 256;

/// Arguments of `pcq admin load`.
#[derive(Args)]
pub struct LoadArgs {
    /// How many customers to create.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    customers: u64,
    /// Partner tenant that owns them [default: the development partner].
    #[arg(long, value_name = "GUID")]
    partner: Option<String>,
    /// What each customer gets.
    #[arg(long, value_enum, default_value_t = Kind::Education)]
    qualification: Kind,
    /// Customers per transaction.
    #[arg(long, value_name = "N", default_value_t = 50_000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    batch: u64,
    /// Data directory of the SQLite database [default: ./pcq-data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// PostgreSQL database to load into.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Configuration file (TOML).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// The qualification each loaded customer gets.
#[derive(Copy, Clone, PartialEq, Eq, ValueEnum)]
enum Kind {
    /// Education, Approved.
    Education,
    /// StateOwnedEntity.
    StateOwnedEntity,
    /// None.
    None,
}

pub fn load(args: LoadArgs) -> anyhow::Result<()> {
    let mut config = crate::tool_config(args.config.as_deref(), args.data_dir, args.database_url)?;
    // A load changes many pages per transaction; a short-lived process can afford a big cache.
    config.store.sqlite_cache_mib = config.store.sqlite_cache_mib.max(LOAD_CACHE_MIB);
    let partner = args
        .partner
        .as_deref()
        .map(|p| {
            pcq_core::ids::parse_guid(p).with_context(|| format!("--partner {p:?} is not a GUID"))
        })
        .transpose()?;
    let qualification = match args.qualification {
        Kind::Education => LoadedQualification::Education,
        Kind::StateOwnedEntity => LoadedQualification::StateOwnedEntity,
        Kind::None => LoadedQualification::None,
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let store = pcq_server::open_store(&config).await?;
        let partner = match partner {
            Some(p) => p,
            None => store.write(DevPartner).await?.output,
        };
        // Domains carry a tag of this run, so loads never collide with each other.
        let tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        // Created "now" on pcq's clock (the sandbox clock, if it was moved).
        let clock = pcq_server::clock::Clock::system();
        clock.set_offset_micros(
            store
                .read(pcq_server::service::clock::StoredOffset)
                .await?,
        );
        let now = clock.now();
        let started = Instant::now();
        let (mut done, mut rows, mut shown) = (0u64, 0u64, 0u64);
        // Generating the next batch overlaps with writing the current one.
        let generate = |first: u64, count: u64| {
            let tag = tag.clone();
            tokio::task::spawn_blocking(move || {
                BulkLoad::generate(partner, &tag, first, count, qualification, now)
            })
        };
        let mut next = Some(generate(0, args.batch.min(args.customers)));
        while let Some(pending) = next.take() {
            let batch = pending.await.context("generating customers")?;
            let count = batch.customers.len() as u64;
            let after = done + count;
            if after < args.customers {
                next = Some(generate(after, args.batch.min(args.customers - after)));
            }
            rows += batch.rows() as u64;
            // A load writes no events and starts no vetting: nothing is left to do after it.
            let () = store
                .write(batch)
                .await
                .context("writing generated customers")?
                .output;
            done = after;
            if done * 10 / args.customers > shown {
                shown = done * 10 / args.customers;
                eprintln!("pcq: {done} of {} customers loaded", args.customers);
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        store.close().await;
        println!(
            "loaded {done} customers for partner {partner} ({rows} rows) in {seconds:.1} s: {:.0} rows/s",
            rows as f64 / seconds
        );
        Ok(())
    })
}
