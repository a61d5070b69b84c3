//! Which files a run of the router was built from: the router configuration, the dealer
//! database, the rules, the security master and the score tables, each given by path or
//! compiled in.
//!
//! Owns reading those files for their length and hash, to write into a run's first record
//! (`records::encode_run_start`) and to compare with what `rfq-journal replay` is about to
//! use. Start-up and tool work only: it reads whole files and allocates. It does not parse
//! them (the config, dealers and select modules do) and never prints.

use std::io;
use std::path::{Path, PathBuf};

use super::records::{FileRole, RunFile, RunStart};
use crate::config::{EMBEDDED_ORIGIN, EMBEDDED_ROUTER_TOML};
use crate::dealers::{EMBEDDED_DEALERS_ORIGIN, EMBEDDED_DEALERS_TOML};
use crate::select::scored::{
    EMBEDDED_INSTRUMENTS_CSV, EMBEDDED_INSTRUMENTS_ORIGIN, EMBEDDED_RULES_ORIGIN,
    EMBEDDED_RULES_TOML,
};

/// The paths a run was given (`None`: the embedded copy; for scores: no score tables).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunPaths {
    pub config: Option<PathBuf>,
    pub dealers: Option<PathBuf>,
    pub rules: Option<PathBuf>,
    pub instruments: Option<PathBuf>,
    pub scores: Option<PathBuf>,
}

/// One file's identity, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileIdentity {
    pub role: FileRole,
    pub embedded: bool,
    pub path: String,
    pub len: u32,
    pub hash: u64,
}

impl FileIdentity {
    pub fn as_run_file(&self) -> RunFile<'_> {
        RunFile {
            role: self.role,
            embedded: self.embedded,
            path: &self.path,
            len: self.len,
            hash: self.hash,
        }
    }

    /// From a decoded run-start entry.
    pub fn from_run_file(f: &RunFile<'_>) -> FileIdentity {
        FileIdentity {
            role: f.role,
            embedded: f.embedded,
            path: f.path.to_string(),
            len: f.len,
            hash: f.hash,
        }
    }
}

fn identify(
    role: FileRole,
    path: Option<&Path>,
    embedded: Option<(&str, &str)>,
) -> io::Result<Option<FileIdentity>> {
    match (path, embedded) {
        (Some(p), _) => {
            let bytes = std::fs::read(p)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
            let f = RunFile::of(role, false, "", &bytes);
            Ok(Some(FileIdentity {
                role,
                embedded: false,
                path: p.display().to_string(),
                len: f.len,
                hash: f.hash,
            }))
        }
        (None, Some((origin, text))) => {
            let f = RunFile::of(role, true, origin, text.as_bytes());
            Ok(Some(FileIdentity::from_run_file(&f)))
        }
        (None, None) => Ok(None),
    }
}

impl RunPaths {
    /// Reads every file (or takes the embedded copy) and returns their identities, in
    /// [`FileRole`] order; no score tables means no entry for them.
    pub fn identify(&self) -> io::Result<Vec<FileIdentity>> {
        let all = [
            identify(
                FileRole::RouterConfig,
                self.config.as_deref(),
                Some((EMBEDDED_ORIGIN, EMBEDDED_ROUTER_TOML)),
            )?,
            identify(
                FileRole::Dealers,
                self.dealers.as_deref(),
                Some((EMBEDDED_DEALERS_ORIGIN, EMBEDDED_DEALERS_TOML)),
            )?,
            identify(
                FileRole::Rules,
                self.rules.as_deref(),
                Some((EMBEDDED_RULES_ORIGIN, EMBEDDED_RULES_TOML)),
            )?,
            identify(
                FileRole::Instruments,
                self.instruments.as_deref(),
                Some((EMBEDDED_INSTRUMENTS_ORIGIN, EMBEDDED_INSTRUMENTS_CSV)),
            )?,
            identify(FileRole::Scores, self.scores.as_deref(), None)?,
        ];
        Ok(all.into_iter().flatten().collect())
    }

    /// The paths a recorded run used (embedded copies stay `None`).
    pub fn from_run_start(start: &RunStart<'_>) -> RunPaths {
        let mut p = RunPaths::default();
        for f in &start.files {
            let path = (!f.embedded).then(|| PathBuf::from(f.path));
            match f.role {
                FileRole::RouterConfig => p.config = path,
                FileRole::Dealers => p.dealers = path,
                FileRole::Rules => p.rules = path,
                FileRole::Instruments => p.instruments = path,
                FileRole::Scores => p.scores = path,
            }
        }
        p
    }
}

/// How a file about to be used differs from the one a run recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMismatch {
    pub role: FileRole,
    pub recorded: Option<FileIdentity>,
    pub now: Option<FileIdentity>,
}

impl std::fmt::Display for FileMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |x: &Option<FileIdentity>| match x {
            Some(i) => format!("{} ({} bytes, fnv1a64 {:016x})", i.path, i.len, i.hash),
            None => "none".to_string(),
        };
        write!(
            f,
            "{}: the run used {}, replay would use {}",
            self.role.name(),
            show(&self.recorded),
            show(&self.now)
        )
    }
}

/// The files whose content differs (length or hash) between `recorded` and `now`; paths
/// may differ freely.
pub fn mismatches(recorded: &[FileIdentity], now: &[FileIdentity]) -> Vec<FileMismatch> {
    FileRole::ALL
        .into_iter()
        .filter_map(|role| {
            let a = recorded.iter().find(|f| f.role == role);
            let b = now.iter().find(|f| f.role == role);
            let same = match (a, b) {
                (Some(a), Some(b)) => a.len == b.len && a.hash == b.hash,
                (None, None) => true,
                _ => false,
            };
            (!same).then(|| FileMismatch {
                role,
                recorded: a.cloned(),
                now: b.cloned(),
            })
        })
        .collect()
}
