//! Run with `cargo run -p risk-analysis -- demo` (needs the local servers:
//! `scripts/services.sh`). Subcommands:
//!
//! ```text
//! risk-analysis gateway  [--listen 127.0.0.1:8080] [--stop-on-stdin-eof]
//! risk-analysis analyzer [--listen 127.0.0.1:8081] [--stop-on-stdin-eof]
//! risk-analysis worker   [--stop-on-stdin-eof]
//! risk-analysis seed     [--generate N]
//! risk-analysis demo     [--generate N] [--python-analyzer]
//! ```
//!
//! Servers come from `DATABASE_URL`, `REDIS_URL`, `AMQP_URL`, `ANALYZER_URL`; the schema and
//! queue from `RISK_SCHEMA` and `RISK_QUEUE`; telemetry from the `OTEL_*` variables. With
//! `--stop-on-stdin-eof` a service stops cleanly (flushing its telemetry) when its standard
//! input closes. `demo --python-analyzer` starts the Python analyzer (`analyzer-py/`, through
//! `scripts/python-analyzer.sh`) instead of the Rust one.

use std::net::SocketAddr;
use std::process::ExitCode;

use risk_analysis::settings::Settings;
use risk_analysis::{analyzer, db, demo, gateway, telemetry, worker};

const USAGE: &str = "usage: risk-analysis <gateway|analyzer|worker|seed|demo> \
[--listen ADDR] [--stop-on-stdin-eof] [--generate N] [--python-analyzer]";

struct Args {
    command: String,
    listen: Option<SocketAddr>,
    stop_on_stdin_eof: bool,
    generate: usize,
    python_analyzer: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let command = args.next().ok_or_else(|| USAGE.to_owned())?;
    let mut parsed = Args {
        command,
        listen: None,
        stop_on_stdin_eof: false,
        generate: 0,
        python_analyzer: false,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => {
                let v = args.next().ok_or("--listen needs an address")?;
                parsed.listen = Some(v.parse().map_err(|e| format!("--listen {v:?}: {e}"))?);
            }
            "--generate" => {
                let v = args.next().ok_or("--generate needs a number")?;
                parsed.generate = v.parse().map_err(|e| format!("--generate {v:?}: {e}"))?;
            }
            "--stop-on-stdin-eof" => parsed.stop_on_stdin_eof = true,
            "--python-analyzer" => parsed.python_analyzer = true,
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(parsed)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("risk-analysis: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if args.python_analyzer && args.command != "demo" {
        return Err("--python-analyzer applies to `demo` only; run the Python analyzer itself with scripts/python-analyzer.sh".into());
    }
    let stop = telemetry::stop_signal(args.stop_on_stdin_eof);
    match args.command.as_str() {
        "gateway" => {
            let guard = telemetry::install("gateway")?;
            let listen = args.listen.unwrap_or(([127, 0, 0, 1], 8080).into());
            let result = gateway::serve(Settings::from_env()?, listen, stop).await;
            telemetry::shutdown(guard);
            result
        }
        "analyzer" => {
            let guard = telemetry::install("analyzer")?;
            let listen = args.listen.unwrap_or(([127, 0, 0, 1], 8081).into());
            let result = analyzer::serve(listen, stop).await;
            telemetry::shutdown(guard);
            Ok(result?)
        }
        "worker" => {
            let guard = telemetry::install("worker")?;
            let result = worker::run(Settings::from_env()?, stop).await;
            telemetry::shutdown(guard);
            result
        }
        "seed" => {
            let settings = Settings::from_env()?;
            let pool = risk_analysis::connect_postgres(&settings.database_url).await?;
            db::create_schema(&pool, &settings.schema).await?;
            db::seed(&pool, &settings.schema).await?;
            if args.generate > 0 {
                let generated = db::generate(args.generate, 42);
                db::insert(
                    &pool,
                    &settings.schema,
                    &generated.accounts,
                    &generated.transactions,
                )
                .await?;
            }
            pool.close().await;
            Ok(())
        }
        "demo" => {
            let outcome = demo::run(demo::DemoOptions {
                exe: std::env::current_exe()?,
                analyzer: if args.python_analyzer {
                    demo::Analyzer::python()
                } else {
                    demo::Analyzer::Rust
                },
                generated: args.generate,
                print: true,
            })
            .await?;
            if outcome.risk_level_after.as_deref() != Some("high") {
                return Err("the worker did not raise acc-001 to high".into());
            }
            Ok(())
        }
        other => Err(format!("unknown command {other:?}\n{USAGE}").into()),
    }
}
