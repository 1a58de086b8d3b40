//! Debian's headless Chromium, driven over WebDriver by Debian's
//! `chromedriver` (`scripts/setup.d/60-chromium.sh` installs both): a real
//! browser for the tests of the web UIs (the trace tool's, AutoBot's page).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use autobot_testkit::chromium::Chromium;
//! let browser = Chromium::start("my_test").await?;
//! browser.goto("http://127.0.0.1:16686/search").await?;
//! let first = browser.wait_for(".result", std::time::Duration::from_secs(10)).await?;
//! browser.click(&first).await?;
//! browser.screenshot("after-click").await?;
//! # Ok(()) }
//! ```
//!
//! Chromium runs headless with a fresh profile, no sandbox (root in a
//! container), and none of its background network traffic (the flags in
//! [`CHROMIUM_FLAGS`]: a closed network refuses those connections and
//! Chromium would wait for them). Screenshots go to
//! `.run/test-artifacts/ui/<test>/NN-<name>.png`, kept after the test.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::process::{Launch, Process};

/// Where Debian puts them.
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Headless, as root, on a closed network, with nothing of its own to do.
pub const CHROMIUM_FLAGS: [&str; 11] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1440,1000",
    "--lang=en-US",
];

/// The W3C WebDriver key of an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How often the waits look again.
const POLL: Duration = Duration::from_millis(100);

/// An element of the page, as WebDriver names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element(String);

/// One browser session; the browser quits when this is dropped.
pub struct Chromium {
    driver: Process,
    base: String,
    session: String,
    http: reqwest::Client,
    artifacts: PathBuf,
    shots: AtomicUsize,
    _profile: tempfile::TempDir,
}

impl std::fmt::Debug for Chromium {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chromium")
            .field("driver", &self.base)
            .field("session", &self.session)
            .finish()
    }
}

/// `.run/test-artifacts/ui/` in the repository.
pub fn artifacts_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.run/test-artifacts/ui")
        .components()
        .collect()
}

/// "ChromeDriver was started successfully on port 41231."
fn driver_port(line: &str) -> Option<u16> {
    line.split("started successfully on port ")
        .nth(1)?
        .trim_end_matches('.')
        .trim()
        .parse()
        .ok()
}

impl Chromium {
    /// Starts chromedriver on a free port and a headless Chromium session;
    /// `test` names the folder its screenshots go to (emptied first).
    pub async fn start(test: &str) -> anyhow::Result<Self> {
        for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            if !Path::new(path).exists() {
                bail!("{path} is missing: install Debian's {package} (scripts/setup.sh does)");
            }
        }
        let (driver, port) = Launch::program(CHROMEDRIVER)
            .arg("--port=0")
            .within(Duration::from_secs(30))
            .start_when(driver_port)?;
        let base = format!("http://127.0.0.1:{port}");
        let profile = tempfile::Builder::new()
            .prefix("autobot-chromium-")
            .tempdir()
            .context("creating Chromium's profile folder")?;
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| (*f).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
            "timeouts": {"pageLoad": 30_000, "script": 30_000},
        }}});
        let answer: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .context("POST /session to chromedriver")?
            .json()
            .await?;
        let session = answer["value"]["sessionId"]
            .as_str()
            .with_context(|| {
                format!(
                    "chromedriver did not start Chromium: {answer}\nchromedriver's output:\n{}",
                    driver.output()
                )
            })?
            .to_owned();
        let artifacts = artifacts_root().join(test);
        let _ = std::fs::remove_dir_all(&artifacts);
        std::fs::create_dir_all(&artifacts)
            .with_context(|| format!("creating {}", artifacts.display()))?;
        Ok(Self {
            driver,
            base,
            session,
            http,
            artifacts,
            shots: AtomicUsize::new(0),
            _profile: profile,
        })
    }

    /// One WebDriver command: its `value`, or the error it answered.
    async fn command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> anyhow::Result<Value> {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut request = self.http.request(method.clone(), &url);
        if method != reqwest::Method::GET {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!(
                "WebDriver {method} {path}: {status} {}: {}",
                answer["value"]["error"].as_str().unwrap_or("?"),
                answer["value"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .lines()
                    .next()
                    .unwrap_or("")
            );
        }
        Ok(answer["value"].clone())
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.command(reqwest::Method::POST, path, body).await
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.command(reqwest::Method::GET, path, Value::Null).await
    }

    /// Opens a URL and waits for the document to load.
    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.post("/url", json!({"url": url})).await.map(drop)
    }

    pub async fn current_url(&self) -> anyhow::Result<String> {
        Ok(self
            .get("/url")
            .await?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    fn element(value: &Value) -> Option<Element> {
        value[ELEMENT_KEY].as_str().map(|id| Element(id.to_owned()))
    }

    /// Every element matching a CSS selector, in document order.
    pub async fn find_all(&self, css: &str) -> anyhow::Result<Vec<Element>> {
        let found = self
            .post("/elements", json!({"using": "css selector", "value": css}))
            .await?;
        Ok(found
            .as_array()
            .map(|list| list.iter().filter_map(Self::element).collect())
            .unwrap_or_default())
    }

    /// Waits until an element matches `css`; the first one.
    pub async fn wait_for(&self, css: &str, limit: Duration) -> anyhow::Result<Element> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(first) = self.find_all(css).await?.into_iter().next() {
                return Ok(first);
            }
            if Instant::now() > deadline {
                bail!(
                    "no element matches {css:?} within {limit:?} at {}\nthe page's console:\n{}",
                    self.current_url().await.unwrap_or_default(),
                    self.console().await.unwrap_or_default().join("\n")
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The element's rendered text.
    pub async fn text(&self, element: &Element) -> anyhow::Result<String> {
        Ok(self
            .get(&format!("/element/{}/text", element.0))
            .await?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// An attribute's value (None when the element has none).
    pub async fn attribute(&self, element: &Element, name: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .get(&format!("/element/{}/attribute/{name}", element.0))
            .await?
            .as_str()
            .map(str::to_owned))
    }

    /// A real click (scrolled into view, at the element's centre).
    pub async fn click(&self, element: &Element) -> anyhow::Result<()> {
        self.post(&format!("/element/{}/click", element.0), json!({}))
            .await
            .map(drop)
    }

    /// Clears a field and types `text` into it, key by key.
    pub async fn type_into(&self, element: &Element, text: &str) -> anyhow::Result<()> {
        self.post(&format!("/element/{}/clear", element.0), json!({}))
            .await?;
        self.post(
            &format!("/element/{}/value", element.0),
            json!({"text": text}),
        )
        .await
        .map(drop)
    }

    /// Runs a script in the page (`arguments[0]`, … are `args`) and returns its result.
    pub async fn execute(&self, script: &str, args: Value) -> anyhow::Result<Value> {
        self.post("/execute/sync", json!({"script": script, "args": args}))
            .await
    }

    /// The page's console messages since the last call (level and text).
    pub async fn console(&self) -> anyhow::Result<Vec<String>> {
        let entries = self.post("/se/log", json!({"type": "browser"})).await?;
        Ok(entries
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|e| {
                        format!(
                            "{} {}",
                            e["level"].as_str().unwrap_or("?"),
                            e["message"].as_str().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Saves a PNG of the window as `NN-<name>.png` in this test's artifact
    /// folder; returns its path.
    pub async fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        let data = self.get("/screenshot").await?;
        let png = base64_decode(data.as_str().unwrap_or_default())
            .context("the screenshot is not base64")?;
        let n = self.shots.fetch_add(1, Ordering::Relaxed) + 1;
        let path = self.artifacts.join(format!("{n:02}-{name}.png"));
        std::fs::write(&path, png).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Quits the browser (what Drop does, with the answer checked).
    pub async fn close(mut self) -> anyhow::Result<()> {
        let url = format!("{}/session/{}", self.base, self.session);
        self.http.delete(url).send().await?;
        self.session.clear();
        Ok(())
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        if self.session.is_empty() {
            return;
        }
        // Quit Chromium through chromedriver (a blocking request: no runtime
        // here), so no browser outlives the test; the driver is then stopped
        // by its Process handle.
        use std::io::{Read, Write};
        let addr = self.base.trim_start_matches("http://").to_owned();
        if let Ok(mut stream) = std::net::TcpStream::connect(&addr) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                stream,
                "DELETE /session/{} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.session
            );
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer);
        }
        self.driver.kill();
    }
}

/// Standard base64, as WebDriver sends screenshots.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b'\n' | b'\r' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_chromedrivers_ready_line_and_base64() {
        assert_eq!(
            driver_port("ChromeDriver was started successfully on port 41231."),
            Some(41231)
        );
        assert_eq!(driver_port("Starting ChromeDriver 156.0 on port 0"), None);
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("iVBORw0K").unwrap(), b"\x89PNG\r\n");
        assert!(base64_decode("a*b").is_none());
    }
}
