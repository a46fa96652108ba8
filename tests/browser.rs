//! The console in a real browser: Debian's chromium driven through chromedriver (WebDriver)
//! with fantoccini. Screenshots of the browse and jobs pages go to target/screenshots/.

mod common;

use common::console::Served;
use common::{config_for, numbered};
use fantoccini::{Client, ClientBuilder, Locator};
use runner::embedded::EmbeddedKafka;
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SCREENSHOTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/screenshots");

/// chromedriver on a free port, killed on drop.
struct Driver {
    child: Child,
    url: String,
    profiles: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "chromedriver cannot start ({e}); install it with `apt-get install chromium chromium-driver`, or run `bash tests/run.sh`"
                )
            });
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            profiles: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A new headless browser with a profile of its own.
    async fn browser(&self, name: &str) -> Client {
        let profile = self.profiles.path().join(name);
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--window-size=1400,1000",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }),
        );
        ClientBuilder::rustls()
            .expect("TLS roots")
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a browser session")
    }
}

/// Replaces the text of the form's field `name`.
async fn set_field(browser: &Client, name: &str, text: &str) {
    let field = browser
        .find(Locator::Css(&format!("input[name={name}]")))
        .await
        .unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// Presses Run and waits for the scan of the new page to finish. The old page's table is
/// marked first: until the new page replaces it, it would answer the wait.
async fn run_query(browser: &Client) {
    browser
        .execute(
            "document.getElementById('results')?.setAttribute('data-old', '1')",
            vec![],
        )
        .await
        .unwrap();
    click(browser, "#run").await;
    browser
        .wait()
        .at_most(Duration::from_secs(60))
        .for_element(Locator::Css("#results[data-state=done]:not([data-old])"))
        .await
        .expect("the new page's scan finished");
}

/// Clicks the first element `css` finds.
async fn click(browser: &Client, css: &str) {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Waits (up to 30 s) for an element `css` finds.
async fn wait_for(browser: &Client, css: &str) {
    browser
        .wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"));
}

/// The text of the first element `css` finds.
async fn text_of(browser: &Client, css: &str) -> String {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn done(browser: &Client) {
    browser
        .wait()
        .at_most(Duration::from_secs(60))
        .for_element(Locator::Css("#results[data-state=done]"))
        .await
        .expect("the scan finished");
}

/// (partition, offset) of the rows shown.
async fn rows(browser: &Client) -> Vec<(i64, i64)> {
    let mut found = Vec::new();
    for row in browser
        .find_all(Locator::Css("#results tbody tr"))
        .await
        .unwrap()
    {
        let get = |v: Option<String>| v.unwrap().parse::<i64>().unwrap();
        found.push((
            get(row.attr("data-partition").await.unwrap()),
            get(row.attr("data-offset").await.unwrap()),
        ));
    }
    found
}

async fn screenshot(browser: &Client, name: &str) {
    std::fs::create_dir_all(SCREENSHOTS).unwrap();
    let png = browser.screenshot().await.unwrap();
    let path = format!("{SCREENSHOTS}/{name}.png");
    std::fs::write(&path, png).unwrap();
    println!("screenshot: {path}");
}

#[test]
fn browse_filter_download_permalink_and_jobs_in_a_browser() {
    let kafka = EmbeddedKafka::start().unwrap();
    kafka.create_topic("orders", 3).unwrap();
    for p in 0..3 {
        kafka.produce("orders", numbered(p, 0, 100)).unwrap();
    }
    kafka.create_topic("secret", 1).unwrap();
    let dir = config_for(
        &kafka,
        json!([
            {"topic": "orders", "format": "json"},
            {"topic": "secret", "format": "json", "browse": false}
        ]),
    );
    let out = dir.path().join("out");
    let mut connections: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("connections.json")).unwrap())
            .unwrap();
    connections["storage_url"] = json!(out.to_string_lossy());
    std::fs::write(dir.path().join("connections.json"), connections.to_string()).unwrap();
    std::fs::create_dir_all(dir.path().join("jobs")).unwrap();
    std::fs::write(
        dir.path().join("jobs/export.json"),
        // Yearly: no fire during the test, so the only runs are `once` and the trigger.
        r#"{"topics": ["orders"], "schedule": "0 0 1 1 *"}"#,
    )
    .unwrap();
    // One run, so the jobs page has history.
    let ran = common::runner_command(dir.path())
        .arg("once")
        .output()
        .unwrap();
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    kafka.produce("orders", numbered(0, 100, 25)).unwrap();

    let served = Served::start(dir.path(), &["serve"], &[]);
    let driver = Driver::start();
    let base = served.base.clone();
    let rt = common::runtime();
    let scheduler = rt.block_on(async {
        let browser = driver.browser("first").await;

        // Pick a topic, newest 20: rows decoded.
        browser.goto(&format!("{base}/browse")).await.unwrap();
        browser
            .find(Locator::Id("topic"))
            .await
            .unwrap()
            .select_by_value("orders")
            .await
            .unwrap();
        set_field(&browser, "limit", "20").await;
        run_query(&browser).await;
        let shown = rows(&browser).await;
        assert_eq!(shown.len(), 20);
        let values = browser
            .find_all(Locator::Css("#results td.value pre"))
            .await
            .unwrap();
        let first = values[0].text().await.unwrap();
        assert!(first.contains("\"seq\":"), "decoded JSON shown: {first}");
        screenshot(&browser, "console-browse-newest").await;

        // A value filter on top.
        set_field(&browser, "value", "\"seq\":9").await;
        set_field(&browser, "limit", "100").await;
        run_query(&browser).await;
        let filtered = rows(&browser).await;
        // seq 9 and 90..99 in each partition, and 109..124 hold no 9 after "seq":.
        assert_eq!(filtered.len(), 33, "{filtered:?}");
        for v in browser
            .find_all(Locator::Css("#results td.value pre"))
            .await
            .unwrap()
        {
            assert!(v.text().await.unwrap().contains("\"seq\":9"));
        }
        let status = text_of(&browser, "#status").await;
        assert!(status.starts_with("Done: 33 shown"), "{status}");
        screenshot(&browser, "console-browse-filter").await;

        // Downloads from the page's links, read back.
        let mut links = Vec::new();
        for a in browser.find_all(Locator::Css("a[download]")).await.unwrap() {
            links.push(a.attr("href").await.unwrap().unwrap());
        }
        assert_eq!(links.len(), 3);
        let csv_link = links.iter().find(|l| l.contains("format=csv")).unwrap();
        let fetch = |link: &str| {
            let url = format!("{base}{link}");
            async move {
                let response = reqwest::get(&url).await.unwrap();
                response.bytes().await.unwrap()
            }
        };
        let csv = fetch(csv_link).await;
        let mut reader = csv::Reader::from_reader(csv.as_ref());
        assert_eq!(reader.records().count(), 33);
        let parquet_link = links.iter().find(|l| l.contains("format=parquet")).unwrap();
        let parquet = fetch(parquet_link).await;
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(parquet)
                .unwrap()
                .build()
                .unwrap();
        let batches: Vec<_> = reader.map(|b| b.unwrap()).collect();
        let mut offsets = common::offsets_of(&batches);
        let mut expected: Vec<(i32, i64)> = filtered.iter().map(|(p, o)| (*p as i32, *o)).collect();
        offsets.sort();
        expected.sort();
        assert_eq!(offsets, expected);

        // The address reproduces the view in another browser.
        let permalink = browser.current_url().await.unwrap();
        let second = driver.browser("second").await;
        second.goto(permalink.as_str()).await.unwrap();
        done(&second).await;
        assert_eq!(rows(&second).await, filtered);
        second.close().await.unwrap();

        // A link to one message.
        click(&browser, "#results tbody tr td a").await;
        // Only the message page has this list; the browse page's h1 would answer too early.
        wait_for(&browser, "dl.message").await;
        let heading = browser.find(Locator::Css("h1")).await.unwrap();
        let (p, o) = filtered[0];
        assert_eq!(heading.text().await.unwrap(), format!("orders / {p} / {o}"));
        let source = browser.source().await.unwrap();
        assert!(
            source.contains("&quot;seq&quot;: ") || source.contains("\"seq\": "),
            "{source}"
        );

        // A sensitive topic refuses, and cannot be picked.
        browser
            .goto(&format!("{base}/browse?topic=secret"))
            .await
            .unwrap();
        let refused = text_of(&browser, "p.error").await;
        assert!(refused.contains("browsing is switched off"), "{refused}");
        let option = browser
            .find(Locator::Css("option[value=secret]"))
            .await
            .unwrap();
        assert_eq!(
            option.attr("disabled").await.unwrap().as_deref(),
            Some("true")
        );

        // A live tail streams until it is cancelled.
        browser
            .goto(&format!(
                "{base}/browse?topic=orders&seek=tail&max_seconds=120"
            ))
            .await
            .unwrap();
        wait_for(&browser, "#cancel:not([disabled])").await;
        click(&browser, "#cancel").await;
        wait_for(&browser, "#results[data-state=cancelled]").await;

        // The jobs page: schedule, last run, lag.
        browser.goto(&format!("{base}/jobs")).await.unwrap();
        let row = browser
            .find(Locator::Css("tr[data-job=export]"))
            .await
            .unwrap();
        let text = row.text().await.unwrap();
        assert!(
            text.contains("0 0 1 1 *") && text.contains("ok at"),
            "{text}"
        );
        assert!(text.contains("300"), "the run's records: {text}");
        let lag = text_of(&browser, "#job-export table.lag").await;
        assert!(lag.contains("25"), "partition 0 is 25 behind: {lag}");
        screenshot(&browser, "console-jobs").await;

        // The scheduler's console with --allow-trigger: the guarded button starts a run.
        let scheduler = Served::start(dir.path(), &["schedule", "--allow-trigger"], &[]);
        browser
            .goto(&format!("{}/jobs", scheduler.base))
            .await
            .unwrap();
        let button = browser
            .find(Locator::Css("button[data-run=export]"))
            .await
            .unwrap();
        button.click().await.unwrap();
        let question = browser.get_alert_text().await.unwrap();
        assert_eq!(question, "Start a run of export now?");
        browser.accept_alert().await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while button.text().await.unwrap() != "Started" {
            assert!(Instant::now() < deadline, "the button never said Started");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        screenshot(&browser, "console-jobs-triggered").await;
        browser.close().await.unwrap();
        scheduler
    });
    // The triggered run took the 25 new records of partition 0.
    let job = scheduler.get_until("/api/jobs/export", 120, |j| {
        j["running"] == false && j["history"].as_array().is_some_and(|h| h.len() >= 2)
    });
    assert_eq!(job["history"][0]["status"], "ok", "{job}");
    assert_eq!(job["history"][0]["topics"][0]["records"], 25, "{job}");
}
