//! The resource: who is emitting the telemetry.
//!
//! [`ResourceConfig`] collects, in increasing order of precedence:
//!
//! 1. detectors: `telemetry.sdk.*`; host (`host.name`, `host.arch`); OS (`os.type`);
//!    process (`process.pid`, `process.executable.name`, `process.runtime.name`);
//!    Kubernetes downward-API variables (`K8S_POD_NAME`/`POD_NAME` → `k8s.pod.name`,
//!    `K8S_NAMESPACE_NAME`/`POD_NAMESPACE` → `k8s.namespace.name`, `K8S_NODE_NAME`/`NODE_NAME` →
//!    `k8s.node.name`, `K8S_POD_UID`/`POD_UID` → `k8s.pod.uid`);
//! 2. `OTEL_RESOURCE_ATTRIBUTES` (`key=value,…`, percent-encoded);
//! 3. `OTEL_SERVICE_NAME`;
//! 4. what the builder sets in code (service name, version, namespace, deployment environment,
//!    extra attributes).
//!
//! When no service name is given anywhere, `service.name` is `unknown_service:<executable>` as
//! the specification asks. Command-line arguments are never recorded (they may hold secrets).
//!
//! ```
//! use otel_core::EnvSource;
//! use otel_core::resource::{ResourceConfig, service_name};
//!
//! let env = EnvSource::from_pairs([
//!     ("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attributes"),
//!     ("OTEL_SERVICE_NAME", "from-env"),
//! ]);
//! // OTEL_SERVICE_NAME beats OTEL_RESOURCE_ATTRIBUTES…
//! assert_eq!(
//!     service_name(&ResourceConfig::default().build(&env)?),
//!     "from-env"
//! );
//! // …and code beats both.
//! let code = ResourceConfig {
//!     service_name: Some("checkout".into()),
//!     ..Default::default()
//! };
//! assert_eq!(service_name(&code.build(&env)?), "checkout");
//! # Ok::<(), otel_core::ConfigError>(())
//! ```

use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_semantic_conventions::attribute as attr;

use crate::config::{ConfigError, EnvSource, parse_key_values, to_key_values};

/// What the application says about itself in code; every field overrides the environment.
///
/// ```
/// use otel_core::EnvSource;
/// use otel_core::resource::{ResourceConfig, service_name};
///
/// let config = ResourceConfig {
///     service_name: Some("checkout".into()),
///     service_version: Some("1.4.0".into()),
///     deployment_environment: Some("staging".into()),
///     skip_detectors: true,
///     ..Default::default()
/// };
/// let resource = config.build(&EnvSource::from_pairs([("OTEL_SERVICE_NAME", "ignored")]))?;
/// assert_eq!(service_name(&resource), "checkout");
/// # Ok::<(), otel_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct ResourceConfig {
    /// `service.name`.
    pub service_name: Option<String>,
    /// `service.version`.
    pub service_version: Option<String>,
    /// `service.namespace`.
    pub service_namespace: Option<String>,
    /// `deployment.environment.name` (e.g. `production`).
    pub deployment_environment: Option<String>,
    /// Further attributes.
    pub attributes: Vec<KeyValue>,
    /// Run the host/OS/process/Kubernetes detectors (default on; see the module docs).
    pub skip_detectors: bool,
}

impl ResourceConfig {
    /// Builds the resource, reading variables from `env`.
    ///
    /// ```
    /// use opentelemetry::Key;
    /// use otel_core::EnvSource;
    /// use otel_core::resource::ResourceConfig;
    ///
    /// let env = EnvSource::from_pairs([
    ///     (
    ///         "OTEL_RESOURCE_ATTRIBUTES",
    ///         "service.name=from-attributes,team=payments",
    ///     ),
    ///     ("OTEL_SERVICE_NAME", "billing"),
    ///     ("K8S_POD_NAME", "billing-7d9f"),
    /// ]);
    /// let resource = ResourceConfig::default().build(&env)?;
    /// let get = |key: &'static str| {
    ///     resource
    ///         .get(&Key::from_static_str(key))
    ///         .map(|v| v.to_string())
    /// };
    /// assert_eq!(get("service.name").as_deref(), Some("billing")); // OTEL_SERVICE_NAME wins
    /// assert_eq!(get("team").as_deref(), Some("payments"));
    /// assert_eq!(get("k8s.pod.name").as_deref(), Some("billing-7d9f"));
    /// assert_eq!(get("telemetry.sdk.language").as_deref(), Some("rust"));
    ///
    /// let bad = EnvSource::from_pairs([("OTEL_RESOURCE_ATTRIBUTES", "team")]);
    /// assert!(ResourceConfig::default().build(&bad).is_err());
    /// # Ok::<(), otel_core::ConfigError>(())
    /// ```
    pub fn build(&self, env: &EnvSource) -> Result<Resource, ConfigError> {
        let mut attrs: Vec<KeyValue> = Vec::new();
        attrs.extend(sdk_attributes());
        if !self.skip_detectors {
            attrs.extend(host_attributes(env));
            attrs.extend(process_attributes());
            attrs.extend(kubernetes_attributes(env));
        }
        if let Some(v) = env.get("OTEL_RESOURCE_ATTRIBUTES") {
            attrs.extend(to_key_values(parse_key_values(
                "OTEL_RESOURCE_ATTRIBUTES",
                &v,
            )?));
        }
        if let Some(name) = env.get("OTEL_SERVICE_NAME") {
            attrs.push(KeyValue::new(attr::SERVICE_NAME, name));
        }
        let code = [
            (attr::SERVICE_NAME, &self.service_name),
            (attr::SERVICE_VERSION, &self.service_version),
            (attr::SERVICE_NAMESPACE, &self.service_namespace),
            (
                attr::DEPLOYMENT_ENVIRONMENT_NAME,
                &self.deployment_environment,
            ),
        ];
        for (key, value) in code {
            if let Some(v) = value {
                attrs.push(KeyValue::new(key, v.clone()));
            }
        }
        attrs.extend(self.attributes.iter().cloned());
        if !attrs.iter().any(|kv| kv.key.as_str() == attr::SERVICE_NAME) {
            attrs.push(KeyValue::new(
                attr::SERVICE_NAME,
                format!("unknown_service:{}", executable_name().unwrap_or_default()),
            ));
        }
        // Later entries win: the builder keeps the last value written for a key.
        Ok(Resource::builder_empty()
            .with_schema_url(attrs, opentelemetry_semantic_conventions::SCHEMA_URL)
            .build())
    }
}

/// The `service.name` of a resource, for messages.
///
/// ```
/// use otel_core::EnvSource;
/// use otel_core::resource::{ResourceConfig, service_name};
///
/// let config = ResourceConfig {
///     skip_detectors: true,
///     ..Default::default()
/// };
/// let resource = config.build(&EnvSource::from_pairs::<&str, &str>([]))?;
/// // No name anywhere: `unknown_service:<executable>`, as the specification asks.
/// assert!(service_name(&resource).starts_with("unknown_service:"));
/// # Ok::<(), otel_core::ConfigError>(())
/// ```
pub fn service_name(resource: &Resource) -> String {
    resource
        .get(&opentelemetry::Key::from_static_str(attr::SERVICE_NAME))
        .map(|v| v.to_string())
        .unwrap_or_default()
}

fn sdk_attributes() -> [KeyValue; 3] {
    [
        KeyValue::new(attr::TELEMETRY_SDK_NAME, "opentelemetry"),
        KeyValue::new(attr::TELEMETRY_SDK_LANGUAGE, "rust"),
        KeyValue::new(attr::TELEMETRY_SDK_VERSION, sdk_version()),
    ]
}

/// The version of `opentelemetry_sdk` this crate was built against (kept in step with the
/// workspace dependency).
fn sdk_version() -> &'static str {
    "0.33"
}

fn host_attributes(env: &EnvSource) -> Vec<KeyValue> {
    let mut out = vec![
        KeyValue::new(attr::OS_TYPE, std::env::consts::OS),
        KeyValue::new(attr::HOST_ARCH, host_arch()),
    ];
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| env.get("HOSTNAME"));
    if let Some(host) = host {
        out.push(KeyValue::new(attr::HOST_NAME, host));
    }
    out
}

/// `host.arch` uses the conventions' names (`amd64`, `arm64`, …), not Rust's.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "x86",
        "arm" => "arm32",
        "powerpc64" => "ppc64",
        "s390x" => "s390x",
        other => other,
    }
}

fn executable_name() -> Option<String> {
    std::env::current_exe()
        .ok()?
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
}

fn process_attributes() -> Vec<KeyValue> {
    let mut out = vec![
        KeyValue::new(attr::PROCESS_PID, i64::from(std::process::id())),
        KeyValue::new(attr::PROCESS_RUNTIME_NAME, "rust"),
    ];
    if let Some(name) = executable_name() {
        out.push(KeyValue::new(attr::PROCESS_EXECUTABLE_NAME, name));
    }
    out
}

fn kubernetes_attributes(env: &EnvSource) -> Vec<KeyValue> {
    const MAP: [(&str, &str, &str); 4] = [
        ("K8S_POD_NAME", "POD_NAME", attr::K8S_POD_NAME),
        (
            "K8S_NAMESPACE_NAME",
            "POD_NAMESPACE",
            attr::K8S_NAMESPACE_NAME,
        ),
        ("K8S_NODE_NAME", "NODE_NAME", attr::K8S_NODE_NAME),
        ("K8S_POD_UID", "POD_UID", attr::K8S_POD_UID),
    ];
    MAP.iter()
        .filter_map(|(primary, alt, key)| {
            env.get(primary)
                .or_else(|| env.get(alt))
                .map(|v| KeyValue::new(*key, Value::from(v)))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use opentelemetry::Key;

    fn get(r: &Resource, k: &'static str) -> Option<String> {
        r.get(&Key::from_static_str(k)).map(|v| v.to_string())
    }

    #[test]
    fn precedence_code_over_service_name_over_attributes() {
        let env = EnvSource::from_pairs([
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "service.name=from-attrs,service.version=1.0,team=payments",
            ),
            ("OTEL_SERVICE_NAME", "from-env"),
            ("K8S_POD_NAME", "pod-7"),
            ("POD_NAMESPACE", "risk"),
        ]);
        let r = ResourceConfig::default().build(&env).unwrap();
        assert_eq!(get(&r, attr::SERVICE_NAME).as_deref(), Some("from-env"));
        assert_eq!(get(&r, attr::SERVICE_VERSION).as_deref(), Some("1.0"));
        assert_eq!(get(&r, "team").as_deref(), Some("payments"));
        assert_eq!(get(&r, attr::K8S_POD_NAME).as_deref(), Some("pod-7"));
        assert_eq!(get(&r, attr::K8S_NAMESPACE_NAME).as_deref(), Some("risk"));
        assert_eq!(
            get(&r, attr::TELEMETRY_SDK_LANGUAGE).as_deref(),
            Some("rust")
        );
        assert!(get(&r, attr::PROCESS_PID).is_some());
        assert!(get(&r, attr::OS_TYPE).is_some());
        assert_eq!(
            r.schema_url(),
            Some(opentelemetry_semantic_conventions::SCHEMA_URL)
        );

        let code = ResourceConfig {
            service_name: Some("from-code".into()),
            deployment_environment: Some("staging".into()),
            ..Default::default()
        };
        let r = code.build(&env).unwrap();
        assert_eq!(get(&r, attr::SERVICE_NAME).as_deref(), Some("from-code"));
        assert_eq!(
            get(&r, attr::DEPLOYMENT_ENVIRONMENT_NAME).as_deref(),
            Some("staging")
        );
    }

    #[test]
    fn unknown_service_and_bad_attributes() {
        let r = ResourceConfig::default()
            .build(&EnvSource::from_pairs::<String, String>([]))
            .unwrap();
        assert!(
            get(&r, attr::SERVICE_NAME)
                .unwrap()
                .starts_with("unknown_service:")
        );
        let err = ResourceConfig::default()
            .build(&EnvSource::from_pairs([(
                "OTEL_RESOURCE_ATTRIBUTES",
                "broken",
            )]))
            .unwrap_err();
        assert!(err.to_string().contains("OTEL_RESOURCE_ATTRIBUTES"));
    }
}
