//! A real headless Chromium driven through WebDriver, for the web console's
//! tests: ChromeDriver is started by `scripts/test` (scripts/webdriver-server),
//! and each `Browser` is one session with a fresh profile, closed on drop.
//! The helpers block (tests are plain `#[test]`s) and panic with what they
//! were looking for; waits poll with a limit, never a fixed sleep.

use std::path::Path;
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use crate::common::Home;
use crate::serve::Server;

/// How long `text`, `click` and `fill` wait for their element to appear.
pub const WAIT: Duration = Duration::from_secs(10);

/// Chromium's flags: headless, and nothing that reaches for the network on
/// its own (our machines have none; its background requests fail in bulk).
const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
];

/// One WebDriver session in a headless Chromium.
pub struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    /// Chromium's --user-data-dir; deleted after the session is closed.
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts a headless Chromium through the ChromeDriver at
    /// RECFLOW_TEST_WEBDRIVER_URL, with the binary at RECFLOW_TEST_CHROMIUM
    /// (else ChromeDriver's own choice).
    pub fn start() -> Browser {
        let url = std::env::var("RECFLOW_TEST_WEBDRIVER_URL").unwrap_or_else(|_| {
            panic!(
                "the browser tests need a WebDriver server: run them with `scripts/test` \
                 (e.g. `scripts/test browser`; it installs Chromium, starts ChromeDriver on \
                 127.0.0.1 and sets RECFLOW_TEST_WEBDRIVER_URL)"
            )
        });
        let profile = tempfile::tempdir().expect("temp dir");
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let mut options = json!({ "args": args });
        if let Ok(binary) = std::env::var("RECFLOW_TEST_CHROMIUM") {
            options["binary"] = json!(binary);
        }
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert("goog:chromeOptions".into(), options);

        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = rt
            .block_on(
                ClientBuilder::new(HttpConnector::new())
                    .capabilities(caps)
                    .connect(&url),
            )
            .unwrap_or_else(|e| panic!("cannot start Chromium through {url}: {e}"));
        Browser {
            rt,
            client: Some(client),
            _profile: profile,
        }
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("the session is open")
    }

    /// Opens `url` and waits until the page has loaded.
    pub fn open(&self, url: &str) {
        self.rt
            .block_on(self.client().goto(url))
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    /// Waits until an element matches the CSS selector `css`, checking every
    /// 50 ms; panics after `timeout`.
    pub fn wait_for(&self, css: &str, timeout: Duration) {
        self.element(css, timeout);
    }

    fn element(&self, css: &str, timeout: Duration) -> Element {
        self.rt
            .block_on(
                self.client()
                    .wait()
                    .at_most(timeout)
                    .every(Duration::from_millis(50))
                    .for_element(Locator::Css(css)),
            )
            .unwrap_or_else(|e| {
                panic!(
                    "no element matches `{css}` after {timeout:?} on {}: {e}",
                    self.url()
                )
            })
    }

    /// The visible text of the element matching `css` (waited for).
    pub fn text(&self, css: &str) -> String {
        let element = self.element(css, WAIT);
        self.rt
            .block_on(element.text())
            .unwrap_or_else(|e| panic!("cannot read the text of `{css}`: {e}"))
    }

    /// Clicks the element matching `css` (waited for).
    pub fn click(&self, css: &str) {
        let element = self.element(css, WAIT);
        self.rt
            .block_on(element.click())
            .unwrap_or_else(|e| panic!("cannot click `{css}`: {e}"));
    }

    /// Replaces the value of the form field matching `css` (waited for) by
    /// typing `value` into it.
    pub fn fill(&self, css: &str, value: &str) {
        let element = self.element(css, WAIT);
        self.rt
            .block_on(async {
                element.clear().await?;
                element.send_keys(value).await
            })
            .unwrap_or_else(|e| panic!("cannot fill `{css}`: {e}"));
    }

    /// Saves a PNG screenshot of the window to `path`.
    pub fn screenshot(&self, path: &Path) {
        let png = self
            .rt
            .block_on(self.client().screenshot())
            .unwrap_or_else(|e| panic!("cannot take a screenshot: {e}"));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    /// Reloads the page until an element matches `css`.
    pub fn wait_reloading(&self, css: &str, timeout: Duration) {
        let deadline = std::time::Instant::now() + timeout;
        while self.try_text(css).is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "no element matches `{css}` on {} after reloading for {timeout:?}",
                self.url()
            );
            std::thread::sleep(Duration::from_millis(200));
            self.rt
                .block_on(self.client().refresh())
                .unwrap_or_else(|e| panic!("cannot reload: {e}"));
        }
    }

    /// The text of the element matching `css` now, if there is one.
    pub fn try_text(&self, css: &str) -> Option<String> {
        self.rt.block_on(async {
            let e = self.client().find(Locator::Css(css)).await.ok()?;
            e.text().await.ok()
        })
    }

    /// Runs a script in the page and returns its value.
    pub fn script(&self, js: &str) -> serde_json::Value {
        self.rt
            .block_on(self.client().execute(js, Vec::new()))
            .unwrap_or_else(|e| panic!("cannot run the script {js:?}: {e}"))
    }

    /// The URL of the current page, for messages.
    pub fn url(&self) -> String {
        self.rt
            .block_on(self.client().current_url())
            .map_or_else(|e| format!("<unknown page: {e}>"), |u| u.to_string())
    }

    /// Ends the session and quits Chromium; panics if ChromeDriver fails to.
    pub fn close(mut self) {
        if let Some(client) = self.client.take() {
            self.rt
                .block_on(client.close())
                .unwrap_or_else(|e| panic!("cannot close the browser: {e}"));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            // Bounded: a hung ChromeDriver must not hang a failing test;
            // scripts/test kills whatever is left when the run ends.
            // (The timer must be made inside the runtime: hence the block.)
            let closed = self.rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(10), client.close()).await
            });
            match closed {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("closing the browser failed: {e}"),
                Err(_) => eprintln!("closing the browser took over 10 s; left to scripts/test"),
            }
        }
    }
}

#[test]
fn browser_shows_the_health_page_of_recflow_serve() {
    let home = Home::new();
    let server = Server::start(&home, &[]);
    let browser = Browser::start();

    browser.open(&format!("{}/healthz", server.base));
    let text = browser.text("body");
    assert!(text.contains(r#""status":"ok""#), "the page shows: {text}");

    let shot = home.path().join("shots/healthz.png");
    browser.screenshot(&shot);
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 1000,
        "{} is not a PNG screenshot ({} bytes)",
        shot.display(),
        png.len()
    );
    browser.close();
}

/// The helpers on a page of our own: a form whose button shows the typed
/// name a moment later, so waiting is needed.
#[test]
fn browser_fills_a_form_clicks_and_waits() {
    let page = r#"<!doctype html>
<input id="name" value="placeholder">
<button id="greet" onclick="setTimeout(() => {
  const p = document.createElement('p');
  p.id = 'greeting';
  p.textContent = 'Hello, ' + document.getElementById('name').value + '!';
  document.body.append(p);
}, 300)">Greet</button>"#;
    let browser = Browser::start();
    browser.open(&format!(
        "data:text/html,{}",
        percent_encoding::utf8_percent_encode(page, percent_encoding::NON_ALPHANUMERIC)
    ));
    browser.fill("#name", "Ada");
    browser.click("#greet");
    browser.wait_for("#greeting", WAIT);
    assert_eq!(browser.text("#greeting"), "Hello, Ada!");
}
