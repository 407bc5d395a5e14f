//! Unit tests of the LVM layer.
mod names;
mod report;
