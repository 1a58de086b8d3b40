//! PING for `GET /health`, on a connection kept between checks.

use std::time::Duration;

use redis::aio::MultiplexedConnection;

/// Is Redis reachable? Connects on first use, reconnects after an error.
pub struct RedisProbe {
    client: autobot_jobs::RedisClient,
    con: tokio::sync::Mutex<Option<MultiplexedConnection>>,
}

impl RedisProbe {
    pub fn new(redis_url: &str) -> redis::RedisResult<Self> {
        Ok(Self::from_client(autobot_jobs::RedisClient::new(
            redis_url, None,
        )?))
    }

    /// A probe over `client` (its TLS files, for `rediss://`).
    pub fn from_client(client: autobot_jobs::RedisClient) -> Self {
        Self {
            client,
            con: tokio::sync::Mutex::new(None),
        }
    }

    /// `Err` carries a message for the health body (no URL, so no password).
    pub async fn ping(&self) -> Result<(), String> {
        let mut slot = self.con.lock().await;
        let con = match slot.as_ref() {
            Some(con) => con.clone(),
            None => {
                let con = self
                    .client
                    .connect(Duration::from_secs(1))
                    .await
                    .map_err(|e| e.to_string())?;
                *slot = Some(con.clone());
                con
            }
        };
        let mut con = con;
        match redis::cmd("PING").query_async::<String>(&mut con).await {
            Ok(_) => Ok(()),
            Err(e) => {
                *slot = None;
                Err(e.to_string())
            }
        }
    }
}
