//! Named profiles from `~/.config/loggate/cli.toml`, so nobody types a
//! gateway's URL and token twice:
//!
//! ```toml
//! default = "local"            # used when no --profile is given
//!
//! [profiles.local]
//! url = "http://localhost:3002"
//!
//! [profiles.prod]
//! url = "https://logs.example.com"
//! token_file = "~/.config/loggate/prod.token"
//! ca_file = "/etc/ssl/internal-ca.pem"
//! ```
//!
//! Owns finding, reading and checking that file; `Connection` (in the
//! parent) lays flags and environment over what a profile says.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Failure, exit};

/// One profile: any of its keys may be left out.
#[derive(Deserialize, Debug, Default, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub url: Option<String>,
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct File {
    default: Option<String>,
    #[serde(default)]
    profiles: BTreeMap<String, Profile>,
}

/// Where the file is: `LOGGATE_CLI_CONFIG`, else the XDG config directory.
pub fn path() -> Option<PathBuf> {
    let given = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(p) = given("LOGGATE_CLI_CONFIG") {
        return Some(PathBuf::from(p));
    }
    let config = given("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| given("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(config.join("loggate").join("cli.toml"))
}

/// The profile to use: the one named (an error if it is not there), else
/// the file's `default`, else none. A missing file is no profile, unless
/// one was asked for by name.
pub fn load(name: Option<&str>) -> Result<Profile, Failure> {
    let Some(path) = path() else {
        return match name {
            None => Ok(Profile::default()),
            Some(n) => Err(usage(format!(
                "--profile {n}: no config file (set HOME, XDG_CONFIG_HOME or LOGGATE_CLI_CONFIG)"
            ))),
        };
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && name.is_none() => {
            return Ok(Profile::default());
        }
        Err(e) => return Err(usage(format!("{}: {e}", path.display()))),
    };
    // toml itself rather than figment: its errors show the line.
    let file: File = toml::from_str(&text)
        .map_err(|e| usage(format!("{}: {}", path.display(), e.to_string().trim_end())))?;
    let Some(chosen) = name.or(file.default.as_deref()) else {
        return Ok(Profile::default());
    };
    let Some(profile) = file.profiles.get(chosen) else {
        let known: Vec<&str> = file.profiles.keys().map(String::as_str).collect();
        return Err(usage(format!(
            "{}: no profile {chosen:?} (it has: {})",
            path.display(),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )));
    };
    if profile.token.is_some() {
        warn_if_readable_by_others(&path);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    Ok(Profile {
        token_file: profile.token_file.as_deref().map(|p| resolve(dir, p)),
        ca_file: profile.ca_file.as_deref().map(|p| resolve(dir, p)),
        ..profile.clone()
    })
}

/// `~/x` from the home directory; a relative path from the file's own.
fn resolve(dir: &Path, p: &Path) -> PathBuf {
    if let Ok(rest) = p.strip_prefix("~")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    dir.join(p)
}

fn usage(message: String) -> Failure {
    Failure::new(exit::USAGE, message)
}

/// A token in a file others can read is a token others have: say so, as
/// ssh does for keys (but go on: the user may know better).
fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(path)
            && m.permissions().mode() & 0o077 != 0
        {
            eprintln!(
                "loggate: {} holds a token and others can read it (chmod 600 {})",
                path.display(),
                path.display()
            );
        }
    }
}
