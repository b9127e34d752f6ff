//! The worker: consumes `risk.flagged` messages and raises the accounts' `risk_level` to
//! `high` in PostgreSQL. Its spans join the gateway's trace through the message headers.

use futures_util::StreamExt as _;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use otel_amqp::InstrumentedChannel;

use crate::db;
use crate::gateway::{RiskFlagged, declare_queue};
use crate::settings::Settings;

/// Consumes from the queue until `stop` resolves, then closes the channel.
pub async fn run(
    settings: Settings,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error>> {
    let pool = crate::connect_postgres(&settings.database_url).await?;
    db::create_schema(&pool, &settings.schema).await?;
    let amqp = Connection::connect(&settings.amqp_url, ConnectionProperties::default()).await?;
    let (host, port) = crate::amqp_server(&settings.amqp_url);
    let channel = InstrumentedChannel::builder(amqp.create_channel().await?)
        .with_server(host, port)
        .build();
    declare_queue(&channel, &settings.queue).await?;
    channel
        .get_ref()
        .basic_qos(16, BasicQosOptions::default())
        .await?;
    let mut consumer = channel
        .basic_consume(
            settings.queue.as_str().into(),
            "risk-worker".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tracing::info!(queue = %settings.queue, "worker consuming");
    let mut stop = std::pin::pin!(stop);
    loop {
        let delivery = tokio::select! {
            () = &mut stop => break,
            next = consumer.next() => match next {
                Some(d) => d?,
                None => break,
            },
        };
        let mut delivery = delivery;
        let (pool, schema) = (&pool, settings.schema.as_str());
        let result = delivery
            .process(|message| handle_flag(pool, schema, &message.data))
            .await;
        match result {
            Ok(_) => {
                delivery.ack(BasicAckOptions::default()).await?;
            }
            Err(e) => {
                tracing::error!(error = %e, "rejecting message");
                delivery
                    .reject(BasicRejectOptions { requeue: false })
                    .await?;
            }
        }
    }
    channel
        .get_ref()
        .close(200, "worker stopping".into())
        .await?;
    pool.close().await;
    Ok(())
}

/// Raises the accounts of one `risk.flagged` message to `high`; returns how many changed.
#[otel_core::traced(skip_all, err)]
async fn handle_flag(
    pool: &otel_sqlx::InstrumentedPgPool,
    schema: &str,
    body: &[u8],
) -> Result<u64, String> {
    let flagged: RiskFlagged = serde_json::from_slice(body)
        .map_err(|e| format!("unreadable risk.flagged message: {e}"))?;
    let changed = db::raise_risk(pool, schema, &flagged.accounts)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(accounts = ?flagged.accounts, changed, "raised risk level");
    Ok(changed)
}
