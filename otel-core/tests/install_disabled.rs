//! After `Telemetry::install` with the SDK disabled, adapters know their spans go nowhere
//! (`Instrumentation::is_noop`) and skip attribute work. Its own binary: `install` sets
//! process-wide state.
#![allow(clippy::unwrap_used, missing_docs)]

use otel_core::instrument::Instrumentation;
use otel_core::{EnvSource, Telemetry};

#[test]
fn instrumentation_after_a_disabled_install_is_noop() {
    // Nothing installed yet: the global provider may be anyone's, so samplers get attributes.
    assert!(!Instrumentation::builder("t", "0").build().is_noop());
    let _guard = Telemetry::builder()
        .with_env(EnvSource::from_pairs([("OTEL_SDK_DISABLED", "true")]))
        .with_tracing_subscriber(false)
        .install()
        .unwrap();
    assert!(Instrumentation::builder("t", "0").build().is_noop());
}
