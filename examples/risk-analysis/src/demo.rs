//! The scripted demo: seeds a per-run schema, starts `analyzer`, `gateway` and `worker` as
//! child processes exporting to a loopback OTLP/HTTP receiver, sends a few requests, stops
//! the children cleanly and returns what was received.
//!
//! The analyzer is the Rust one (`risk-analysis analyzer`) or, with [`Analyzer::Python`], the
//! Flask implementation in `analyzer-py/` started through `scripts/python-analyzer.sh`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use opentelemetry::trace::TraceId;
use otel_core::testing::OtlpHttpReceiver;

use crate::db;
use crate::http_util::SIMULATE_FAILURE_HEADER;
use crate::settings::Settings;
use crate::spans::{self, ReceivedSpan};

/// Which implementation of the analyzer's HTTP API the demo starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Analyzer {
    /// `risk-analysis analyzer`, service `analyzer`.
    Rust,
    /// The Python analyzer (Flask, OpenTelemetry's Flask instrumentation), service
    /// `analyzer-py`, started through `script` (`scripts/python-analyzer.sh`), which prepares
    /// its virtualenv first.
    Python {
        /// The launcher script; [`Analyzer::python`] uses the one in this repository.
        script: PathBuf,
    },
}

impl Analyzer {
    /// The Python analyzer, started through this repository's `scripts/python-analyzer.sh`.
    ///
    /// ```
    /// use risk_analysis::demo::Analyzer;
    ///
    /// let python = Analyzer::python();
    /// assert_eq!(python.service_name(), "analyzer-py");
    /// assert!(matches!(&python, Analyzer::Python { script } if script.ends_with("python-analyzer.sh")));
    /// ```
    pub fn python() -> Self {
        let script = PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scripts/python-analyzer.sh"
        ));
        Self::Python {
            script: std::fs::canonicalize(&script).unwrap_or(script),
        }
    }

    /// The `service.name` the implementation exports its telemetry under.
    ///
    /// ```
    /// assert_eq!(risk_analysis::demo::Analyzer::Rust.service_name(), "analyzer");
    /// ```
    pub fn service_name(&self) -> &'static str {
        match self {
            Self::Rust => "analyzer",
            Self::Python { .. } => "analyzer-py",
        }
    }

    /// Runs `script --prepare` for the Python analyzer (creates or refreshes its virtualenv;
    /// pip runs only when `requirements.txt` changed); nothing to do for the Rust one. The
    /// script's messages (what it sets up, why it failed) go to standard error as they come.
    ///
    /// Called by [`run`] before it starts the children, so that a slow first `pip install`
    /// is not mistaken for an analyzer that never becomes healthy.
    pub fn prepare(&self) -> Result<(), String> {
        let Self::Python { script } = self else {
            return Ok(());
        };
        let status = Command::new(script)
            .arg("--prepare")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!(
                "setting up the Python analyzer failed: `{} --prepare` exited with {status} \
                 (its messages are on standard error)",
                script.display()
            ))
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The `risk-analysis` executable the children are started from.
    pub exe: PathBuf,
    /// The analyzer implementation to start.
    pub analyzer: Analyzer,
    /// Generated accounts (`gen-00000…`) added beside the seed data.
    pub generated: usize,
    /// Whether to print the responses and the waterfall on standard output.
    pub print: bool,
}

/// One scripted request and its answer.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// What the request demonstrates.
    pub label: &'static str,
    /// Request path.
    pub path: String,
    /// The trace id the request was sent with (in `traceparent`).
    pub trace_id: TraceId,
    /// Response status.
    pub status: u16,
    /// Response body.
    pub body: String,
}

/// What a demo run produced.
#[derive(Debug)]
pub struct DemoOutcome {
    /// The scripted requests, in order.
    pub exchanges: Vec<Exchange>,
    /// Every span the three services exported.
    pub spans: Vec<ReceivedSpan>,
    /// `risk_level` of `acc-001` after the worker handled the flag.
    pub risk_level_after: Option<String>,
    /// The trace id of the first request, the one that crosses every hop.
    pub full_trace: TraceId,
}

/// Kills a child that was not stopped cleanly (on early return).
struct ChildGuard(&'static str, Option<Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.1.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl ChildGuard {
    /// Closes the child's standard input (its stop signal) and waits up to `timeout`.
    fn stop(&mut self, timeout: Duration) -> Result<(), String> {
        let Some(child) = self.1.as_mut() else {
            return Ok(());
        };
        drop(child.stdin.take());
        let deadline = Instant::now() + timeout;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.1 = None;
                    return if status.success() {
                        Ok(())
                    } else {
                        Err(format!("{} exited with {status}", self.0))
                    };
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Ok(None) => return Err(format!("{} did not stop within {timeout:?}", self.0)),
                Err(e) => return Err(format!("{}: {e}", self.0)),
            }
        }
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn unique_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{}_{}", std::process::id(), nanos % 1_000_000_000_000)
}

fn trace_id_for(n: u64, suffix: &str) -> TraceId {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in suffix.bytes() {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    TraceId::from_bytes(((u128::from(hash) << 64) | u128::from(n + 1)).to_be_bytes())
}

/// Runs the demo. See the module docs.
pub async fn run(options: DemoOptions) -> Result<DemoOutcome, Box<dyn std::error::Error>> {
    let base = Settings::from_env()?;
    let suffix = unique_suffix();
    let schema = format!("risk_demo_{suffix}");
    let queue = format!("risk.flagged.{suffix}");

    let pool = crate::connect_postgres(&base.database_url).await?;
    db::create_schema(&pool, &schema).await?;
    let result = run_in_schema(&options, &base, &pool, &schema, &queue, &suffix).await;
    if let Err(e) = db::drop_schema(&pool, &schema).await {
        tracing::warn!(error = %e, schema, "could not drop the demo schema");
    }
    pool.close().await;
    result
}

async fn run_in_schema(
    options: &DemoOptions,
    base: &Settings,
    pool: &otel_sqlx::InstrumentedPgPool,
    schema: &str,
    queue: &str,
    suffix: &str,
) -> Result<DemoOutcome, Box<dyn std::error::Error>> {
    db::seed(pool, schema).await?;
    if options.generated > 0 {
        let generated = db::generate(options.generated, 42);
        db::insert(pool, schema, &generated.accounts, &generated.transactions).await?;
    }

    options.analyzer.prepare()?;
    let receiver = OtlpHttpReceiver::start()?;
    let analyzer_port = free_port()?;
    let gateway_port = free_port()?;
    let analyzer_url = format!("http://127.0.0.1:{analyzer_port}");
    let gateway_url = format!("http://127.0.0.1:{gateway_port}");
    let spawn = |role: &'static str, listen: Option<u16>| -> std::io::Result<ChildGuard> {
        let mut cmd = match (role, &options.analyzer) {
            ("analyzer", Analyzer::Python { script }) => Command::new(script),
            _ => {
                let mut cmd = Command::new(&options.exe);
                cmd.arg(role);
                cmd
            }
        };
        cmd.arg("--stop-on-stdin-eof");
        if let Some(port) = listen {
            cmd.arg("--listen").arg(format!("127.0.0.1:{port}"));
        }
        cmd.env("RISK_SCHEMA", schema)
            .env("RISK_QUEUE", queue)
            .env("ANALYZER_URL", &analyzer_url)
            .env("DATABASE_URL", &base.database_url)
            .env("REDIS_URL", &base.redis_url)
            .env("AMQP_URL", &base.amqp_url)
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
            .env("OTEL_TRACES_EXPORTER", "otlp")
            .env("OTEL_BSP_SCHEDULE_DELAY", "100")
            .env("OTEL_TRACES_SAMPLER", "parentbased_always_on")
            .env_remove("OTEL_SERVICE_NAME")
            .env_remove("OTEL_SDK_DISABLED")
            .stdin(Stdio::piped());
        if !options.print {
            cmd.stdout(Stdio::null());
        }
        Ok(ChildGuard(role, Some(cmd.spawn()?)))
    };
    let mut analyzer = spawn("analyzer", Some(analyzer_port))?;
    let mut worker = spawn("worker", None)?;
    let mut gateway = spawn("gateway", Some(gateway_port))?;

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()?;
    for url in [&analyzer_url, &gateway_url] {
        wait_healthy(&http, url, &mut [&mut analyzer, &mut gateway, &mut worker]).await?;
    }

    let mut script: Vec<(&'static str, String, Option<&'static str>)> = vec![
        (
            "ring: SQL, Redis, analyzer, RabbitMQ, worker",
            "acc-001".into(),
            None,
        ),
        (
            "same account again: served from the Redis cache",
            "acc-001".into(),
            None,
        ),
        (
            "outflow account: the ring is within two hops",
            "acc-004".into(),
            None,
        ),
        (
            "isolated account: no ring, nothing published",
            "acc-isolated-999".into(),
            None,
        ),
        ("unknown account: 404", "acc-unknown-000".into(), None),
        (
            "analyzer failure: 500 from the analyzer, 502 from the gateway",
            "acc-002".into(),
            Some("analyzer"),
        ),
    ];
    if options.generated > 0 {
        script.push(("generated graph", "gen-00000".into(), None));
    }
    let mut exchanges = Vec::new();
    for (n, (label, account, failure)) in script.into_iter().enumerate() {
        let trace_id = trace_id_for(n as u64, suffix);
        let path = format!("/analyze/{account}");
        let mut request = http
            .get(format!("{gateway_url}{path}"))
            .header("traceparent", format!("00-{trace_id}-{:016x}-01", n + 1));
        if let Some(value) = failure {
            request = request.header(SIMULATE_FAILURE_HEADER, value);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let body = response.text().await?;
        exchanges.push(Exchange {
            label,
            path,
            trace_id,
            status,
            body,
        });
    }

    // The worker raises acc-001 to `high` once it has processed the first flag.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut risk_level_after = db::risk_level(pool, schema, "acc-001").await?;
    while risk_level_after.as_deref() != Some("high") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        risk_level_after = db::risk_level(pool, schema, "acc-001").await?;
    }

    // Stop in dependency order; each flushes its telemetry before exiting.
    let mut stop_errors = Vec::new();
    for child in [&mut gateway, &mut worker, &mut analyzer] {
        if let Err(e) = child.stop(Duration::from_secs(15)) {
            stop_errors.push(e);
        }
    }
    if !stop_errors.is_empty() {
        return Err(stop_errors.join("; ").into());
    }

    let spans = spans::decode(&receiver.trace_requests());
    let full_trace = exchanges.first().map_or(TraceId::INVALID, |e| e.trace_id);
    if options.print {
        let mut out = std::io::stdout().lock();
        if let Analyzer::Python { script } = &options.analyzer {
            writeln!(
                out,
                "analyzer: the Python implementation ({}), service {}\n",
                script.display(),
                options.analyzer.service_name()
            )?;
        }
        for e in &exchanges {
            writeln!(out, "GET {} → {}  ({})", e.path, e.status, e.label)?;
            writeln!(out, "    {}", truncate(&e.body, 200))?;
        }
        writeln!(
            out,
            "\nacc-001 risk_level after the worker: {}",
            risk_level_after.as_deref().unwrap_or("?")
        )?;
        writeln!(out, "\n{}", spans::waterfall(&spans, full_trace))?;
        if let Some(failed) = exchanges.iter().find(|e| e.status >= 500) {
            writeln!(out, "{}", spans::waterfall(&spans, failed.trace_id))?;
        }
    }
    Ok(DemoOutcome {
        exchanges,
        spans,
        risk_level_after,
        full_trace,
    })
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

async fn wait_healthy(
    http: &reqwest::Client,
    base: &str,
    children: &mut [&mut ChildGuard],
) -> Result<(), Box<dyn std::error::Error>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(format!("{base}/health")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        for c in children.iter_mut() {
            if let Some(child) = c.1.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!("{} exited early with {status}", c.0).into());
            }
        }
        if Instant::now() > deadline {
            return Err(format!("{base} did not become healthy within 30 s").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
