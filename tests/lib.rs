//! Shared helpers for the suites in it/.
