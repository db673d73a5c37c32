//! The widget's and the agent console's bundles keep to their size budgets, and the widget and demo page work in a headless browser.

use super::*;

#[test]
fn widget_bundle_fits_its_size_budget() {
    let bundle = widget_bundle();
    let mut gzip = GzEncoder::new(Vec::new(), Compression::best());
    gzip.write_all(&bundle).expect("gzip in memory");
    let gzipped = gzip.finish().expect("gzip in memory").len();
    println!(
        "chat-sync-widget.js: {} bytes, {gzipped} bytes gzipped (budget {WIDGET_BUDGET_GZIPPED})",
        bundle.len()
    );
    assert!(
        gzipped <= WIDGET_BUDGET_GZIPPED,
        "the widget is {gzipped} bytes gzipped, over its budget of {WIDGET_BUDGET_GZIPPED}: see what weighs what with \
         `node_modules/.bin/esbuild --analyze` or widget/dist/meta.json"
    );
    // Minified and self-contained: one file, no source map reference, no import left for the host to resolve.
    let text = String::from_utf8_lossy(&bundle);
    assert!(!text.contains("sourceMappingURL"));
    assert!(!text.contains("import(") && !text.starts_with("import"));
}

/// The agent console's budget, SDK included, gzipped (issue 23; `make agent` prints it too).
const CONSOLE_BUDGET_GZIPPED: usize = 150_000;

#[test]
fn agent_console_bundle_fits_its_size_budget() {
    let path = repo_root().join("agent/dist/agent-console.js");
    let bundle = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{} ({e}): run `make agent` first", path.display()));
    let mut gzip = GzEncoder::new(Vec::new(), Compression::best());
    gzip.write_all(&bundle).expect("gzip in memory");
    let gzipped = gzip.finish().expect("gzip in memory").len();
    println!(
        "agent-console.js: {} bytes, {gzipped} bytes gzipped (budget {CONSOLE_BUDGET_GZIPPED})",
        bundle.len()
    );
    assert!(
        gzipped <= CONSOLE_BUDGET_GZIPPED,
        "the agent console is {gzipped} bytes gzipped, over its budget of {CONSOLE_BUDGET_GZIPPED}: see \
         agent/dist/meta.json"
    );
    let text = String::from_utf8_lossy(&bundle);
    assert!(!text.contains("sourceMappingURL"));
}

#[tokio::test]
async fn widget_and_demo_page_work_in_a_headless_browser() {
    let chromium = std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).is_file(),
        "Chromium is not installed at {chromium}, so the demo page cannot be checked: run `make browser-deps` \
         (as root it runs apt-get install -y --no-install-recommends chromium), or set CHROMIUM_PATH"
    );
    let root = repo_root();
    widget_bundle();
    assert!(
        root.join("node_modules/playwright-core/package.json")
            .is_file(),
        "playwright-core is not installed: run `make deps` (npm ci) at {}",
        root.display()
    );
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("e2e-screenshot.png");
    std::fs::remove_file(&screenshot).ok();

    // The site's identity secret, so the shared-computer scenario's pages carry tokens registration verifies.
    let mut server = DevServer::start_with(&[("IDENTITY_SECRET", IDENTITY_SECRET)]).await;
    let browser = tokio::process::Command::new("node")
        .arg(root.join("infra/e2e/browser.mjs"))
        .arg(&server.base_url)
        .current_dir(root)
        .env("CHROMIUM_PATH", &chromium)
        .env("STREAM_SECRET", SANDBOX_STREAM_SECRET)
        .env("IDENTITY_SECRET", IDENTITY_SECRET)
        .env("E2E_SCREENSHOT", &screenshot)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run node (Node 20+ is required)");
    let output = tokio::time::timeout(BROWSER_TIMEOUT, browser.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("the browser check did not finish within {BROWSER_TIMEOUT:?}"))
        .expect("the browser check's output");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "the browser check failed ({}):\n{report}\nscreenshot: {}\n\ndev server log:\n{}",
        output.status,
        screenshot.display(),
        server.log_text()
    );
    assert!(report.contains("[browser] OK"), "{report}");
    // What was checked, for `--nocapture`.
    println!("{report}");
    assert!(
        screenshot.is_file(),
        "no screenshot at {}",
        screenshot.display()
    );

    let exit = server.interrupt().await;
    assert!(exit.success(), "{exit}\n{}", server.log_text());
}
