//! Steady traffic for the drills: requests sent at a fixed rate, each on its
//! own task (open loop: a slow answer never slows the sender, so a stall in
//! the system shows as latency and failures, not as fewer requests), and
//! what came back, summarised per window of the drill.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// One request and its answer.
#[derive(Clone, Debug)]
pub struct Sample {
    /// When it was sent, from the start of the traffic.
    pub sent: Duration,
    pub latency: Duration,
    /// The HTTP status, or None when no answer came (connect error, timeout).
    pub status: Option<u16>,
    /// The trace id from `traceresponse`.
    pub trace_id: Option<String>,
}

impl Sample {
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// Traffic being sent; [`Traffic::finish`] stops it and waits for the answers.
pub struct Traffic {
    pub started: Instant,
    stop: Arc<AtomicBool>,
    sender: tokio::task::JoinHandle<()>,
    samples: Arc<Mutex<Vec<Sample>>>,
}

impl Traffic {
    /// Sends `request()` `rate` times a second; each gets `timeout`.
    pub fn start<F>(rate: f64, timeout: Duration, request: F) -> Self
    where
        F: Fn(u64) -> reqwest::RequestBuilder + Send + Sync + 'static,
    {
        let started = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let sender = {
            let stop = stop.clone();
            let samples = samples.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                let mut tasks = JoinSet::new();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let builder = request(n).timeout(timeout);
                    n += 1;
                    let samples = samples.clone();
                    tasks.spawn(async move {
                        let sent = started.elapsed();
                        let at = Instant::now();
                        let (status, trace_id) = match builder.send().await {
                            Ok(response) => {
                                let trace = response
                                    .headers()
                                    .get("traceresponse")
                                    .and_then(|v| v.to_str().ok())
                                    .and_then(|v| v.split('-').nth(1))
                                    .map(str::to_owned);
                                let status = response.status().as_u16();
                                // Read the body: the answer is complete only then.
                                let _ = response.bytes().await;
                                (Some(status), trace)
                            }
                            Err(_) => (None, None),
                        };
                        samples.lock().await.push(Sample {
                            sent,
                            latency: at.elapsed(),
                            status,
                            trace_id,
                        });
                    });
                    while tasks.try_join_next().is_some() {}
                }
                while tasks.join_next().await.is_some() {}
            })
        };
        Self {
            started,
            stop,
            sender,
            samples,
        }
    }

    /// Time since the traffic started.
    pub fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// Stops sending, waits for every answer, returns them by send time.
    pub async fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.sender.await;
        let mut samples = std::mem::take(&mut *self.samples.lock().await);
        samples.sort_by_key(|s| s.sent);
        samples
    }
}

/// What the requests sent in one window got.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub sent: usize,
    pub ok: usize,
    /// Answered, but not 2xx, by status.
    pub statuses: Vec<(u16, usize)>,
    /// No answer at all (connect error, timeout).
    pub unanswered: usize,
    /// 2xx answers per second of the window.
    pub ok_rate: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Summary {
    pub fn failed(&self) -> usize {
        self.sent - self.ok
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} sent, {} ok ({:.1}/s), latency p50 {} ms p99 {} ms max {} ms",
            self.sent,
            self.ok,
            self.ok_rate,
            self.p50.as_millis(),
            self.p99.as_millis(),
            self.max.as_millis()
        )?;
        for (status, n) in &self.statuses {
            write!(f, ", {n}x HTTP {status}")?;
        }
        if self.unanswered > 0 {
            write!(f, ", {} unanswered", self.unanswered)?;
        }
        Ok(())
    }
}

/// The value below which `q` (0..=1) of the sorted values lie (nearest rank).
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The requests sent in `[from, to)`.
pub fn summarize(samples: &[Sample], from: Duration, to: Duration) -> Summary {
    let window: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.sent >= from && s.sent < to)
        .collect();
    let mut latencies: Vec<Duration> = window
        .iter()
        .filter(|s| s.ok())
        .map(|s| s.latency)
        .collect();
    latencies.sort();
    let mut statuses: Vec<(u16, usize)> = Vec::new();
    for s in window.iter().filter(|s| !s.ok()) {
        if let Some(code) = s.status {
            match statuses.iter_mut().find(|(c, _)| *c == code) {
                Some((_, n)) => *n += 1,
                None => statuses.push((code, 1)),
            }
        }
    }
    statuses.sort();
    let ok = latencies.len();
    let seconds = (to - from).as_secs_f64().max(f64::EPSILON);
    Summary {
        sent: window.len(),
        ok,
        unanswered: window.iter().filter(|s| s.status.is_none()).count(),
        statuses,
        ok_rate: ok as f64 / seconds,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        max: latencies.last().copied().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn sample(sent: u64, latency: u64, status: Option<u16>) -> Sample {
        Sample {
            sent: ms(sent),
            latency: ms(latency),
            status,
            trace_id: None,
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(percentile(&values, 0.5), ms(50));
        assert_eq!(percentile(&values, 0.99), ms(99));
        assert_eq!(percentile(&values, 1.0), ms(100));
        assert_eq!(percentile(&[ms(7)], 0.99), ms(7));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn a_window_counts_what_was_sent_in_it() {
        let samples = vec![
            sample(0, 10, Some(200)),
            sample(500, 30, Some(200)),
            sample(1000, 20, Some(200)),
            sample(1500, 5, Some(502)),
            sample(1600, 5000, None),
            sample(2000, 10, Some(200)),
        ];
        let s = summarize(&samples, ms(1000), ms(2000));
        assert_eq!(s.sent, 3);
        assert_eq!(s.ok, 1);
        assert_eq!(s.failed(), 2);
        assert_eq!(s.statuses, vec![(502, 1)]);
        assert_eq!(s.unanswered, 1);
        assert_eq!(s.ok_rate, 1.0);
        assert_eq!(s.p99, ms(20));
        let all = summarize(&samples, ms(0), ms(3000));
        assert_eq!(all.sent, 6);
        assert_eq!(all.max, ms(30));
        assert!(all.to_string().contains("1x HTTP 502"), "{all}");
    }

    #[tokio::test]
    async fn traffic_is_sent_at_its_rate_and_every_answer_kept() {
        // A local server that answers 200 with a traceresponse.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = [0u8; 1024];
                    let _ = socket.read(&mut buf).await;
                    let _ = socket
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\ntraceresponse: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                });
            }
        });
        let client = reqwest::Client::new();
        let url = format!("http://{addr}/");
        let traffic = Traffic::start(20.0, Duration::from_secs(5), move |_| client.get(&url));
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let samples = traffic.finish().await;
        assert!(
            (10..=25).contains(&samples.len()),
            "{} requests in 1 s at 20/s",
            samples.len()
        );
        assert!(samples.iter().all(Sample::ok));
        assert_eq!(
            samples[0].trace_id.as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
    }
}
