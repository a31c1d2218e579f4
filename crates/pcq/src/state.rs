//! `pcq admin dump` and `pcq admin restore`: the sandbox's state as a document, streamed down
//! from `GET /_pcq/admin/state` into a file (or standard output) and up from a file to
//! `PUT /_pcq/admin/state`, never held in memory (see docs/state.md).

use std::path::{Path, PathBuf};

use anyhow::Context;
use futures_util::TryStreamExt;
use tokio::io::AsyncWriteExt;

use crate::connection::{Connection, Role};
use crate::review;

/// `pcq admin dump`: streams the document to `output` (standard output without one). A file
/// is written beside its final name and renamed once the whole document has arrived, so a
/// failed dump leaves no partial file behind.
pub async fn dump(
    partner: Option<String>,
    output: Option<PathBuf>,
    connection: Connection,
) -> anyhow::Result<()> {
    let client = crate::connection::connect_for_documents(&connection, Role::Admin).await?;
    let mut document = client.admin().state().dump(partner.as_deref()).await?;
    match output {
        None => {
            // The CLI does nothing else meanwhile: plain blocking writes to standard output.
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            while let Some(chunk) = document.try_next().await.context("reading the dump")? {
                out.write_all(&chunk).context("writing the dump")?;
            }
            out.flush().context("writing the dump")?;
        }
        Some(path) => {
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let partial = tempfile::NamedTempFile::new_in(dir)
                .with_context(|| format!("creating a file in {}", dir.display()))?;
            let (file, partial) = partial.into_parts();
            let mut file = tokio::io::BufWriter::new(tokio::fs::File::from_std(file));
            while let Some(chunk) = document.try_next().await.context("reading the dump")? {
                file.write_all(&chunk)
                    .await
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            file.flush()
                .await
                .with_context(|| format!("writing {}", path.display()))?;
            file.into_inner()
                .sync_all()
                .await
                .with_context(|| format!("writing {}", path.display()))?;
            partial
                .persist(&path)
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(())
}

/// `pcq admin restore`: streams `file` up and prints what was loaded.
pub async fn restore(
    file: PathBuf,
    partner: Option<String>,
    json: bool,
    connection: Connection,
) -> anyhow::Result<()> {
    // Opened here, so that a missing file is told about before pcq is called.
    std::fs::File::open(&file).with_context(|| format!("reading {}", file.display()))?;
    let client = crate::connection::connect_for_documents(&connection, Role::Admin).await?;
    let answer = client
        .admin()
        .state()
        .load_file(partner.as_deref(), &file)
        .await?;
    if json {
        review::print(&answer);
        return Ok(());
    }
    let loaded = review::counts(&answer["loaded"]);
    let whose = review::whose(&answer);
    println!("restored {whose} from {}: loaded {loaded}", file.display());
    Ok(())
}
