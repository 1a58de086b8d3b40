//! PING for `GET /health`, on a connection kept between checks.

use std::time::Duration;

use redis::aio::MultiplexedConnection;

/// Is Redis reachable? Connects on first use, reconnects after an error.
pub struct RedisProbe {
    client: redis::Client,
    con: tokio::sync::Mutex<Option<MultiplexedConnection>>,
}

impl RedisProbe {
    pub fn new(redis_url: &str) -> redis::RedisResult<Self> {
        Ok(Self {
            client: redis::Client::open(redis_url)?,
            con: tokio::sync::Mutex::new(None),
        })
    }

    /// `Err` carries a message for the health body (no URL, so no password).
    pub async fn ping(&self) -> Result<(), String> {
        let mut slot = self.con.lock().await;
        let con = match slot.as_ref() {
            Some(con) => con.clone(),
            None => {
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(1)))
                    .set_response_timeout(Some(Duration::from_secs(1)));
                let con = self
                    .client
                    .get_multiplexed_async_connection_with_config(&config)
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
