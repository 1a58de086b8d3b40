//! A Redis connection made on first use and re-made after it broke.

use std::time::Duration;

use redis::aio::MultiplexedConnection;

pub(crate) struct Link {
    client: crate::RedisClient,
    response_timeout: Duration,
    slot: tokio::sync::Mutex<Option<MultiplexedConnection>>,
}

impl Link {
    pub(crate) fn new(client: crate::RedisClient, response_timeout: Duration) -> Self {
        Self {
            client,
            response_timeout,
            slot: tokio::sync::Mutex::new(None),
        }
    }

    /// The current connection, connecting first when there is none.
    pub(crate) async fn get(&self) -> redis::RedisResult<MultiplexedConnection> {
        let mut slot = self.slot.lock().await;
        if let Some(con) = slot.as_ref() {
            return Ok(con.clone());
        }
        let con = crate::connect(&self.client, self.response_timeout).await?;
        *slot = Some(con.clone());
        Ok(con)
    }

    /// Forgets the connection after an error said it is gone.
    pub(crate) async fn reset(&self) {
        *self.slot.lock().await = None;
    }
}
