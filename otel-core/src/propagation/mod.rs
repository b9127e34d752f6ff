//! Context propagation. (temporary; replaced by the propagation work)
use opentelemetry::propagation::TextMapCompositePropagator;
/// Temporary.
#[derive(Debug)]
pub struct Propagators(TextMapCompositePropagator);
impl Propagators {
    /// Temporary.
    pub fn from_names(_s: &str) -> Result<Self, std::convert::Infallible> {
        Ok(Self(TextMapCompositePropagator::new(vec![])))
    }
}
impl opentelemetry::propagation::TextMapPropagator for Propagators {
    fn inject_context(
        &self,
        cx: &opentelemetry::Context,
        i: &mut dyn opentelemetry::propagation::Injector,
    ) {
        self.0.inject_context(cx, i)
    }
    fn extract_with_context(
        &self,
        cx: &opentelemetry::Context,
        e: &dyn opentelemetry::propagation::Extractor,
    ) -> opentelemetry::Context {
        self.0.extract_with_context(cx, e)
    }
    fn fields(&self) -> opentelemetry::propagation::text_map_propagator::FieldIter<'_> {
        self.0.fields()
    }
}
