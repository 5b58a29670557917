//! Test harness (see tests/).
