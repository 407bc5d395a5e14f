//! The node's Probe: ready only while the volume group of every device
//! class answers, naming the first that does not (a VG that does not exist
//! on the fake LVM), so the livenessprobe sidecar sees a second class's VG
//! gone, not only the default's.
use lvsnap::driver::vg_check;
use lvsnap::lvm::Lvm;

#[tokio::test]
async fn every_class_vg_must_answer() {
    let (lvm, fake) = Lvm::fake("vg0", 1 << 30);
    fake.add_vg("vg-nvme", 1 << 30, 4 << 20);
    let check = vg_check(&lvm, vec!["vg0".into(), "vg-nvme".into()]);
    check().await.expect("both VGs answer");
    let calls = fake.calls();
    let vgs = calls.iter().filter(|c| c.program() == "vgs").count();
    assert_eq!(vgs, 2, "one vgs per VG: {calls:?}");

    let missing = vg_check(&lvm, vec!["vg0".into(), "vg-hdd".into()]);
    let why = missing().await.expect_err("vg-hdd does not exist");
    assert!(
        why.starts_with("vg-hdd:") && why.contains("not found"),
        "{why}"
    );
}
