//! Head sampling configured from `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`.
//!
//! | `OTEL_TRACES_SAMPLER` | sampler |
//! | --- | --- |
//! | `always_on` | every trace |
//! | `always_off` | none |
//! | `traceidratio` | the fraction `OTEL_TRACES_SAMPLER_ARG` (0.0–1.0, default 1.0) by trace id |
//! | `parentbased_always_on` (default) | the parent's decision; `always_on` for roots |
//! | `parentbased_always_off` | the parent's decision; `always_off` for roots |
//! | `parentbased_traceidratio` | the parent's decision; `traceidratio` for roots |

use opentelemetry_sdk::trace::Sampler;

use crate::config::{ConfigError, EnvSource};

/// Reads the sampler from `env`; `parentbased_always_on` when unset.
pub fn sampler_from_env(env: &EnvSource) -> Result<Sampler, ConfigError> {
    let name = env.get("OTEL_TRACES_SAMPLER");
    let ratio = || -> Result<f64, ConfigError> {
        match env.get("OTEL_TRACES_SAMPLER_ARG") {
            None => Ok(1.0),
            Some(v) => match v.parse::<f64>() {
                Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
                _ => Err(ConfigError::invalid(
                    "OTEL_TRACES_SAMPLER_ARG",
                    v,
                    "expected a probability between 0.0 and 1.0",
                )),
            },
        }
    };
    let Some(name) = name else {
        return Ok(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)));
    };
    Ok(match name.to_ascii_lowercase().as_str() {
        "always_on" => Sampler::AlwaysOn,
        "always_off" => Sampler::AlwaysOff,
        "traceidratio" => Sampler::TraceIdRatioBased(ratio()?),
        "parentbased_always_on" => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        "parentbased_always_off" => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        "parentbased_traceidratio" => {
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio()?)))
        }
        _ => {
            return Err(ConfigError::invalid(
                "OTEL_TRACES_SAMPLER",
                name,
                "expected always_on, always_off, traceidratio, parentbased_always_on, \
                 parentbased_always_off or parentbased_traceidratio",
            ));
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> EnvSource {
        EnvSource::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn names_and_args() {
        let dbg = |e| format!("{:?}", sampler_from_env(&env(e)).unwrap());
        assert!(dbg(&[]).contains("ParentBased(AlwaysOn)"));
        assert_eq!(dbg(&[("OTEL_TRACES_SAMPLER", "always_off")]), "AlwaysOff");
        assert!(
            dbg(&[
                ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "0.25")
            ])
            .contains("TraceIdRatioBased(0.25)")
        );
        let e = sampler_from_env(&env(&[("OTEL_TRACES_SAMPLER", "sometimes")])).unwrap_err();
        assert!(
            e.to_string().contains("OTEL_TRACES_SAMPLER") && e.to_string().contains("sometimes")
        );
        let e = sampler_from_env(&env(&[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("OTEL_TRACES_SAMPLER_ARG"));
    }
}
