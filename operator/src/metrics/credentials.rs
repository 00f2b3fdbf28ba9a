//! The bearer token file, re-read when it changes: a token mounted from a Secret (or a projected
//! service-account token) is rotated in place by the kubelet, and an operator that read it once
//! would be locked out at the first rotation until restarted.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::header::HeaderValue;

use super::SettingsError;

/// How often the file is looked at again: the kubelet refreshes mounted Secrets about once a
/// minute, so this adds little to a rotation and reads one small file per interval at most.
pub const TOKEN_RECHECK: Duration = Duration::from_secs(10);

/// `Authorization: Bearer <the file's content>`, as of the last look at the file.
pub struct TokenFile {
    path: PathBuf,
    recheck: Duration,
    state: Mutex<Looked>,
}

struct Looked {
    at: Instant,
    token: String,
    header: HeaderValue,
}

impl TokenFile {
    /// Reads the token; an unreadable file or a token that cannot be a header is a settings error.
    pub fn open(path: &Path) -> Result<TokenFile, SettingsError> {
        Self::with_recheck(path, TOKEN_RECHECK)
    }

    fn with_recheck(path: &Path, recheck: Duration) -> Result<TokenFile, SettingsError> {
        let token = read(path)?;
        let header = header(&token)?;
        Ok(TokenFile { path: path.to_owned(), recheck, state: Mutex::new(Looked { at: Instant::now(), token, header }) })
    }

    /// The header to send now. When the file cannot be read or holds no valid token (mid-rotation,
    /// say), the last good token is sent and the failure logged: Prometheus then says whether it
    /// still holds.
    pub fn header(&self) -> HeaderValue {
        let mut looked = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if looked.at.elapsed() >= self.recheck {
            looked.at = Instant::now();
            match read(&self.path).and_then(|token| header(&token).map(|h| (token, h))) {
                Ok((token, header)) if token != looked.token => {
                    tracing::info!(path = %self.path.display(), "the Prometheus bearer token changed: using the new one");
                    looked.token = token;
                    looked.header = header;
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "keeping the last Prometheus bearer token"),
            }
        }
        looked.header.clone()
    }
}

fn read(path: &Path) -> Result<String, SettingsError> {
    std::fs::read_to_string(path).map(|s| s.trim().to_owned()).map_err(|source| SettingsError::ReadFile {
        what: "the bearer token",
        path: path.to_owned(),
        source,
    })
}

fn header(token: &str) -> Result<HeaderValue, SettingsError> {
    let mut value: HeaderValue = format!("Bearer {token}").parse()?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str, content: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("trimtab-token-{}-{name}", std::process::id()));
        std::fs::write(&path, content).expect("write the token");
        path
    }

    #[test]
    fn a_rotated_token_is_sent_from_the_next_look_at_the_file() {
        let path = temp_file("rotated", "first\n");
        let token = TokenFile::with_recheck(&path, Duration::ZERO).expect("readable");
        assert_eq!(token.header(), "Bearer first");
        std::fs::write(&path, "second\n").expect("rotate the token");
        assert_eq!(token.header(), "Bearer second");
        std::fs::remove_file(&path).expect("remove the token");
        assert_eq!(token.header(), "Bearer second", "a missing file keeps the last good token");
        assert!(token.header().is_sensitive(), "never logged");
    }

    #[test]
    fn the_file_is_not_read_again_before_the_recheck_interval() {
        let path = temp_file("cached", "first");
        let token = TokenFile::with_recheck(&path, Duration::from_secs(3600)).expect("readable");
        std::fs::write(&path, "second").expect("rotate the token");
        assert_eq!(token.header(), "Bearer first");
        std::fs::remove_file(&path).expect("remove the token");
    }

    #[test]
    fn an_unreadable_token_file_is_a_settings_error_naming_it() {
        let missing = std::env::temp_dir().join("trimtab-token-that-does-not-exist");
        let error = TokenFile::open(&missing).err().expect("an error").to_string();
        assert!(error.contains("cannot read the bearer token from") && error.contains("trimtab-token-that-does-not-exist"));
    }
}
