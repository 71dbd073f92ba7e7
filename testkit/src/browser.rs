//! Real headless Chromium, driven through ChromeDriver (WebDriver) with
//! fantoccini, for the web viewer's tests and its benchmark.
//!
//! Each [`Browser`] is its own ChromeDriver process, started in a new
//! process group on a port it picks itself, with its own Chromium profile
//! in a temporary folder. Dropping the guard kills the whole group by pid
//! (ChromeDriver, Chromium and its helpers) and removes the profile, so a
//! failed test leaves no browser behind. At most [`AT_ONCE`] browsers run
//! at a time in one test binary: each is several processes, and the
//! machine has two cores.
//!
//! What a test reads of the page, it reads through WebDriver: elements by
//! their `data-testid`, scripts run in the page ([`Browser::eval`]), the
//! console (ChromeDriver's browser log, [`Browser::console`]) and
//! screenshots. Every wait is bounded by [`DEADLINE`].

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::{DEADLINE, POLL};

/// Browsers running at once in one test binary.
pub const AT_ONCE: usize = 2;

/// The viewport every test sees (and the README screenshot has).
pub const WINDOW: (u32, u32) = (1280, 800);

/// Chromium's flags: headless, and quiet on this machine's closed network
/// (without the background-networking flags it keeps dialling Google).
const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-crash-reporter",
    "--lang=en-US",
];

fn gate() -> &'static Semaphore {
    static GATE: OnceLock<Semaphore> = OnceLock::new();
    GATE.get_or_init(|| Semaphore::new(AT_ONCE))
}

/// `CHROMEDRIVER` if set, else `chromedriver` on `PATH`.
fn chromedriver_bin() -> PathBuf {
    std::env::var_os("CHROMEDRIVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| "chromedriver".into())
}

/// `CHROMIUM` if set, else Debian's binary (not its wrapper script, which
/// only adds flags of its own), else `chromium` on `PATH`.
fn chromium_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return p.into();
    }
    let debian = Path::new("/usr/lib/chromium/chromium");
    if debian.is_file() {
        return debian.into();
    }
    "chromium".into()
}

/// One line of the browser's console, as ChromeDriver reports it.
#[derive(Debug, Clone)]
pub struct ConsoleEntry {
    /// `SEVERE`, `WARNING`, `INFO`, …
    pub level: String,
    /// `javascript` (an uncaught exception), `console-api`, `network`,
    /// `security` (a CSP violation), …
    pub source: String,
    pub message: String,
}

impl ConsoleEntry {
    pub fn is_error(&self) -> bool {
        self.level == "SEVERE"
    }
}

/// ChromeDriver's `POST /session/{id}/se/log` (not in W3C WebDriver, but
/// ChromeDriver keeps it): the console lines since the last read.
#[derive(Debug)]
struct ReadLog;

impl WebDriverCompatibleCommand for ReadLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}

/// A DevTools command through ChromeDriver (`goog/cdp/execute`), for what
/// WebDriver has no verb for (time zone, downloads).
#[derive(Debug)]
struct Cdp(Value);

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.0.to_string()))
    }
}

/// A headless Chromium session; its processes die when this drops.
pub struct Browser {
    pub client: Client,
    processes: Processes,
    /// Every console line read so far (reads drain ChromeDriver's log).
    console: Vec<ConsoleEntry>,
    _turn: SemaphorePermit<'static>,
}

/// ChromeDriver (leading a process group that holds Chromium) and the
/// profile folder: owned from the moment they exist, so that a panic at
/// any step kills and removes them.
struct Processes {
    driver: Child,
    /// Chromium's profile, and `downloads/` inside it.
    dir: PathBuf,
}

impl Drop for Processes {
    fn drop(&mut self) {
        // The driver leads its own process group; Chromium and its
        // helpers are in it. `kill -KILL -- -PGID` ends them all.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Browser {
    /// Starts ChromeDriver and a headless Chromium with a fresh profile,
    /// waiting its turn behind the other browsers of this test binary.
    pub async fn launch() -> Browser {
        let turn = gate().acquire().await.expect("the gate stays open");
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "loggate-browser-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        // A driver that exits before it names its port (seen once on a
        // loaded machine, cause unknown) is started once more; if the
        // second exits too, the failure shows what both wrote on stderr.
        let (processes, port) = match start_driver(dir.clone()) {
            Ok(started) => started,
            Err(first) => start_driver(dir).unwrap_or_else(|second| {
                panic!("chromedriver exited before naming its port, twice:\n{first}\n{second}")
            }),
        };
        let dir = &processes.dir;
        let mut browser_args: Vec<String> = CHROMIUM_ARGS.iter().map(|s| s.to_string()).collect();
        browser_args.push(format!("--user-data-dir={}", dir.join("profile").display()));
        browser_args.push(format!("--window-size={},{}", WINDOW.0, WINDOW.1));
        let caps = json!({
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": chromium_bin(),
                "args": browser_args,
                "prefs": {
                    "download.default_directory": dir.join("downloads"),
                    "download.prompt_for_download": false,
                },
            },
        });
        let caps = match caps {
            Value::Object(m) => m,
            _ => unreachable!("capabilities are an object"),
        };
        let mut builder =
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        builder.capabilities(caps);
        let client = tokio::time::timeout(
            DEADLINE,
            builder.connect(&format!("http://127.0.0.1:{port}")),
        )
        .await
        .expect("a Chromium session within the deadline")
        .expect("a Chromium session");
        Browser {
            client,
            processes,
            console: Vec::new(),
            _turn: turn,
        }
    }

    /// Opens `url` and waits for the page's scripts to have run.
    pub async fn open(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    /// Runs `script` (a function body: `return …;`) in the page.
    pub async fn eval(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Runs `script` with `arguments[0..]`.
    pub async fn eval_with(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Polls `script` (which returns a value) until it is truthy; returns
    /// that value. Fails the test, naming `what`, after [`DEADLINE`].
    pub async fn wait_for(&self, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let v = self.eval(script).await;
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                Value::Array(a) => !a.is_empty(),
                Value::Object(_) => true,
            };
            if truthy {
                return v;
            }
            if Instant::now() > deadline {
                let status = self.status().await;
                panic!("timed out waiting for {what} (status: {status:?}; last value {v})");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The element `[data-testid=…]`.
    pub async fn by_testid(&self, id: &str) -> fantoccini::elements::Element {
        self.client
            .find(Locator::Css(&format!("[data-testid=\"{id}\"]")))
            .await
            .unwrap_or_else(|e| panic!("no [data-testid={id}]: {e}"))
    }

    /// Clicks the first element matching `css`.
    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
    }

    /// Replaces the value of the input `css` with `text` (typed as keys).
    pub async fn type_into(&self, css: &str, text: &str) {
        let input = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"));
        input.clear().await.expect("clear input");
        input.send_keys(text).await.expect("type into input");
    }

    /// The text of `[data-testid=status]`.
    pub async fn status(&self) -> String {
        self.eval("const s = document.querySelector('[data-testid=status]'); return s ? s.textContent : '';")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The page's address now.
    pub async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("current url")
            .to_string()
    }

    /// Every console line since the browser started.
    pub async fn console(&mut self) -> &[ConsoleEntry] {
        let read = self
            .client
            .issue_cmd(ReadLog)
            .await
            .expect("read the console");
        for e in read.as_array().into_iter().flatten() {
            let field = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            self.console.push(ConsoleEntry {
                level: field("level"),
                source: field("source"),
                message: field("message"),
            });
        }
        &self.console
    }

    /// Console errors other than failed requests (a refused or unreachable
    /// request is logged as an error by the browser itself, whatever the
    /// page does with it).
    pub async fn script_errors(&mut self) -> Vec<ConsoleEntry> {
        self.console()
            .await
            .iter()
            .filter(|e| e.is_error() && e.source != "network")
            .cloned()
            .collect()
    }

    /// A DevTools command (`method`, `params`), answered with its result.
    pub async fn cdp(&self, method: &str, params: Value) -> Value {
        self.client
            .issue_cmd(Cdp(json!({"cmd": method, "params": params})))
            .await
            .unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    /// Shows the page's clocks in the IANA zone `tz`.
    pub async fn set_time_zone(&self, tz: &str) {
        self.cdp("Emulation.setTimezoneOverride", json!({"timezoneId": tz}))
            .await;
    }

    /// Where this browser saves downloads.
    pub fn downloads(&self) -> PathBuf {
        self.processes.dir.join("downloads")
    }

    /// Saves a PNG of the viewport at `path` (its folder is created).
    pub async fn screenshot(&self, path: &Path) {
        let png = self.client.screenshot().await.expect("screenshot");
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("screenshot folder");
        }
        std::fs::write(path, png).expect("write the screenshot");
    }

    /// Ends the WebDriver session (Chromium quits); the guard then reaps
    /// whatever is left.
    pub async fn close(self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.client.clone().close()).await;
    }
}

/// Starts ChromeDriver on a port of its choosing; the guard that owns it
/// and the port, or what it wrote on stderr before it went away.
fn start_driver(dir: PathBuf) -> Result<(Processes, u16), String> {
    std::fs::create_dir_all(dir.join("downloads")).expect("profile folder");
    let log = dir.join("chromedriver.stderr");
    let stderr = std::fs::File::create(&log).expect("chromedriver's stderr file");
    let driver = Command::new(chromedriver_bin())
        .arg("--port=0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .process_group(0)
        .spawn()
        .expect("chromedriver starts (scripts/test.sh installs it)");
    let mut processes = Processes { driver, dir };
    match driver_port(&mut processes.driver) {
        Some(port) => Ok((processes, port)),
        None => {
            let status = processes.driver.try_wait().ok().flatten();
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            // Dropping the guard kills what is left and removes the folder.
            Err(format!("exit status {status:?}, stderr: {said}"))
        }
    }
}

/// Reads ChromeDriver's stdout up to "started successfully on port N";
/// `None` if it ends first, or says nothing within [`DEADLINE`].
fn driver_port(driver: &mut Child) -> Option<u16> {
    let stdout = driver.stdout.take().expect("stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let port = line
                .split("started successfully on port ")
                .nth(1)
                .and_then(|p| p.trim_end_matches('.').trim().parse::<u16>().ok());
            if let Some(p) = port {
                let _ = tx.send(p);
            }
            // Keep draining, so ChromeDriver never blocks on a full pipe.
        }
    });
    rx.recv_timeout(DEADLINE).ok()
}
