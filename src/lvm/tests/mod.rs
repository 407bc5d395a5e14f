//! Unit tests of the LVM layer, all over [`crate::lvm::FakeRunner`].
mod argv;
mod class;
mod names;
mod ops;
mod report;
mod retry;
mod view;
