//! How AutoBot reaches Redis: `AUTOBOT_REDIS_URL`, with the ACL user and
//! password in it (`redis://user:password@host:6379/0`; never printed: see
//! [`RedisClient`]'s `Debug`), and for `rediss://` TLS with the service's
//! files: the CA Redis's certificate must chain to and the client
//! certificate presented to it (`AUTOBOT_TLS_*`). The files are read again
//! for each new connection, so a renewed certificate is used from the next
//! connection on; connections already open keep theirs.

use std::time::Duration;

use autobot_tls::TlsFiles;

/// A Redis URL, checked, and the TLS files of a `rediss://` one.
#[derive(Clone)]
pub struct RedisClient {
    url: String,
    /// Only for `rediss://`; a `redis://` URL ignores the files.
    tls: Option<TlsFiles>,
    /// The client of a `redis://` URL (made once: it holds no files).
    plain: Option<redis::Client>,
}

impl std::fmt::Debug for RedisClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisClient")
            .field("url", &autobot_tracing::redact::redact_url_str(&self.url))
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl RedisClient {
    /// Checks the URL (and, for `rediss://`, reads the files once).
    pub fn new(url: &str, tls: Option<&TlsFiles>) -> redis::RedisResult<Self> {
        let is_tls = url.starts_with("rediss://");
        let client = Self {
            url: url.to_owned(),
            tls: if is_tls { tls.cloned() } else { None },
            plain: None,
        };
        let made = client.make()?;
        Ok(Self {
            plain: (!is_tls).then_some(made),
            ..client
        })
    }

    /// Whether connections use TLS (`rediss://`).
    pub fn is_tls(&self) -> bool {
        self.url.starts_with("rediss://")
    }

    /// A client for the next connection.
    pub fn client(&self) -> redis::RedisResult<redis::Client> {
        match &self.plain {
            Some(client) => Ok(client.clone()),
            None => self.make(),
        }
    }

    fn make(&self) -> redis::RedisResult<redis::Client> {
        let Some(files) = self.tls.as_ref().filter(|_| self.is_tls()) else {
            // rediss:// without files: the system's roots, no client certificate.
            if self.is_tls() {
                autobot_tls::provider();
            }
            return redis::Client::open(self.url.as_str());
        };
        // redis-rs builds its rustls configuration with the process's default provider.
        autobot_tls::provider();
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|e| {
                redis::RedisError::from((
                    redis::ErrorKind::Io,
                    "cannot read a TLS file",
                    format!("{}: {e}", path.display()),
                ))
            })
        };
        let root_cert = files.ca.as_ref().map(|ca| read(&ca.path)).transpose()?;
        let client_tls = files
            .identity
            .as_ref()
            .map(|(cert, key)| {
                Ok::<_, redis::RedisError>(redis::ClientTlsConfig {
                    client_cert: read(&cert.path)?,
                    client_key: read(&key.path)?,
                })
            })
            .transpose()?;
        redis::Client::build_with_tls(
            self.url.as_str(),
            redis::TlsCertificates {
                client_tls,
                root_cert,
            },
        )
    }

    /// Opens a multiplexed connection whose replies may take
    /// `response_timeout` (blocking commands need more than redis-rs's
    /// 500 ms default).
    pub async fn connect(
        &self,
        response_timeout: Duration,
    ) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(response_timeout));
        self.client()?
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    /// At start: connects and PINGs. Credentials Redis refuses (a wrong
    /// password, a user it does not know, a password it wants and the URL
    /// lacks, an ACL that forbids PING) are an error, for the service to
    /// stop on; an unreachable Redis is not (it may come up later: the
    /// service reconnects) and is logged.
    pub async fn check_credentials(&self) -> Result<(), String> {
        let outcome = async {
            let mut con = self.connect(Duration::from_secs(2)).await?;
            redis::cmd("PING").query_async::<String>(&mut con).await
        }
        .await;
        match outcome {
            Ok(_) => Ok(()),
            Err(e) if is_refusal(&e) => Err(format!(
                "Redis refused the credentials: {e} (the ACL user and password go in the URL: redis://user:password@host:6379/0)"
            )),
            Err(e) => {
                tracing::warn!(
                    redis = %autobot_tracing::redact::redact_url_str(&self.url),
                    error = %e,
                    "Redis is not reachable at start; connecting again when it is needed"
                );
                Ok(())
            }
        }
    }
}

/// Redis said no to who we are (as opposed to not answering).
fn is_refusal(e: &redis::RedisError) -> bool {
    e.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(e.code(), Some("NOAUTH" | "WRONGPASS" | "NOPERM"))
}
