//! The run folder's on-disk contract: owned types for `clusters.json`, `campaigns.json`,
//! `elbow.json` and `migration.json`, each carrying a schema version that every reader
//! checks, and [`RunFolder::open`], the one way batch, compare and the server read a folder.

mod campaigns;
mod clusters;
mod migration;
mod slug;

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use campaigns::{Campaign, Campaigns, CopySource, Email, Fallback, FallbackReason, RunSummary};
pub use clusters::{Clusters, FEATURES, InputRecord, KMeansRecord, RunParams, SnapshotSource};
pub use migration::Migration;
pub use slug::slug;

use crate::cluster::elbow::ElbowResult;
use crate::remedy::{Remedied, Remedy};

pub type ClustersFile = Stamped<Clusters>;
pub type CampaignsFile = Stamped<Campaigns>;
pub type ElbowFile = Stamped<ElbowResult>;
pub type MigrationFile = Stamped<Migration>;

/// The schema version this build writes and reads, the same for every document. It changes
/// when the shape of any document changes in a way an older reader would misread.
pub const SCHEMA: u32 = 1;

/// The schema of documents written before they carried the field.
fn first_schema() -> u32 {
    1
}

/// A document as written: who wrote it, its schema, then its fields.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Stamped<T> {
    /// rfm-agent version that wrote the file.
    #[serde(default)]
    pub version: String,
    #[serde(default = "first_schema")]
    pub schema: u32,
    #[serde(flatten)]
    pub body: T,
}

impl<T> Stamped<T> {
    /// `body` stamped with this build's version and schema.
    pub fn new(body: T) -> Self {
        Stamped {
            version: env!("CARGO_PKG_VERSION").into(),
            schema: SCHEMA,
            body,
        }
    }
}

impl<T> std::ops::Deref for Stamped<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.body
    }
}

/// One JSON document of a run folder.
pub trait Document: Serialize + DeserializeOwned {
    /// The file name inside the folder.
    const FILE: &'static str;
    /// Whether a file without a `schema` field is refused. Documents that gained the field
    /// later (campaigns, elbow, migration) read such files as schema 1, the shape they had.
    const SCHEMA_REQUIRED: bool;

    /// The pretty-printed JSON, with a final newline.
    fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("run-folder documents always serialise") + "\n"
    }
}

impl Document for ClustersFile {
    const FILE: &'static str = "clusters.json";
    const SCHEMA_REQUIRED: bool = true;
}

impl Document for CampaignsFile {
    const FILE: &'static str = "campaigns.json";
    const SCHEMA_REQUIRED: bool = false;
}

impl Document for ElbowFile {
    const FILE: &'static str = "elbow.json";
    const SCHEMA_REQUIRED: bool = false;
}

impl Document for MigrationFile {
    const FILE: &'static str = "migration.json";
    const SCHEMA_REQUIRED: bool = false;
}

/// Why a document of a run folder could not be read. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    #[error("{path}: cannot read it ({source})")]
    Missing {
        path: String,
        source: std::io::Error,
        remedy: Option<Remedy>,
    },
    #[error("{path}: not an rfm-agent {file} ({detail})")]
    NotOurs {
        path: String,
        file: &'static str,
        detail: String,
    },
    #[error(
        "{path}: written with schema {found} (rfm-agent {writer}), but this rfm-agent {ours} reads schema {SCHEMA}; {remedy}",
        ours = env!("CARGO_PKG_VERSION"),
        remedy = if *found > SCHEMA { "use the newer rfm-agent that wrote it" } else { "rerun that run with this rfm-agent" }
    )]
    Schema {
        path: String,
        found: u32,
        writer: String,
    },
    #[error("{path}: no campaigns.json; {who} needs the campaigns the agent writes")]
    NoCampaigns { path: String, who: String },
}

impl Remedied for FolderError {
    fn remedy(&self) -> Option<Remedy> {
        match self {
            FolderError::Missing { remedy, .. } => *remedy,
            FolderError::NotOurs { .. } => Some(Remedy::PointAtRunFolder),
            FolderError::Schema { .. } => None,
            FolderError::NoCampaigns { .. } => Some(Remedy::WriteWithAgent),
        }
    }
}

/// The fields every document starts with.
#[derive(serde::Deserialize)]
struct Header {
    schema: Option<u32>,
    #[serde(default)]
    version: String,
}

/// Reads `dir/D::FILE`, checking the schema before the shape. `remedy` is what a missing
/// file asks the user to do.
pub fn read<D: Document>(dir: &Path, remedy: Option<Remedy>) -> Result<D, FolderError> {
    let p = dir.join(D::FILE);
    let path = p.display().to_string();
    let bytes = std::fs::read(&p).map_err(|source| FolderError::Missing {
        path: path.clone(),
        source,
        remedy,
    })?;
    let not_ours = |e: serde_json::Error| FolderError::NotOurs {
        path: path.clone(),
        file: D::FILE,
        detail: e.to_string(),
    };
    let header: Header = serde_json::from_slice(&bytes).map_err(not_ours)?;
    match header.schema {
        Some(SCHEMA) => {}
        None if !D::SCHEMA_REQUIRED => {}
        None => {
            return Err(FolderError::NotOurs {
                path,
                file: D::FILE,
                detail: "no `schema` field".into(),
            });
        }
        Some(found) => {
            return Err(FolderError::Schema {
                path,
                found,
                writer: header.version,
            });
        }
    }
    serde_json::from_slice(&bytes).map_err(not_ours)
}

/// A run folder written by `segment --out` or `agent --out`.
#[derive(Debug, Clone)]
pub struct RunFolder {
    pub dir: PathBuf,
    pub clusters: ClustersFile,
    /// `None` when the folder was written by `segment` (no agent).
    pub campaigns: Option<CampaignsFile>,
}

impl RunFolder {
    /// Reads and checks clusters.json and, when present, campaigns.json.
    pub fn open(dir: &Path) -> Result<RunFolder, FolderError> {
        let clusters = read(dir, Some(Remedy::PointAtRunFolder))?;
        let campaigns = match dir.join(CampaignsFile::FILE).exists() {
            true => Some(read(dir, None)?),
            false => None,
        };
        Ok(RunFolder {
            dir: dir.to_path_buf(),
            clusters,
            campaigns,
        })
    }

    /// The campaigns, or an error that says `who` needs a folder written by the agent.
    pub fn campaigns(&self, who: &str) -> Result<&CampaignsFile, FolderError> {
        self.campaigns
            .as_ref()
            .ok_or_else(|| FolderError::NoCampaigns {
                path: self.dir.display().to_string(),
                who: who.to_string(),
            })
    }
}
