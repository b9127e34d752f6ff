//! Context propagation. (being written)
