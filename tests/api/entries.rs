//! entries tests.
