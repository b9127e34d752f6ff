//! Exemplar-tagged metrics. (being written)
