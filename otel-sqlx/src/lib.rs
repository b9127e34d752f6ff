//! Not yet implemented: this crate is filled by its own issue. It exports nothing.
