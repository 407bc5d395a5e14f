//! Block copy for thick restores and clones: the source device's blocks into
//! a new LV. Sparse-aware: when the target was zeroed first (`blkdiscard
//! --zeroout`, which thin-provisioned and loop-backed storage do without
//! writing), chunks of zeros are skipped; otherwise every chunk is written,
//! because a new thick LV holds whatever its extents held before.
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Copy unit.
pub const CHUNK: usize = 1 << 20;

/// What a copy did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Copied {
    pub bytes: u64,
    /// Bytes skipped because they were zeros on a zeroed target.
    pub skipped: u64,
}

/// Copies the first `len` bytes of `src` onto `dst`, calling `progress`
/// with whole percentages as they are reached. Blocking: run it on a
/// blocking thread.
pub fn copy_blocks(
    src: &Path,
    dst: &Path,
    len: u64,
    target_zeroed: bool,
    mut progress: impl FnMut(u8),
) -> std::io::Result<Copied> {
    let mut input = File::open(src)?;
    let mut output = OpenOptions::new().write(true).open(dst)?;
    let mut buf = vec![0u8; CHUNK];
    let mut done = Copied::default();
    let mut last_pct = 0u8;
    let mut offset = 0u64;
    while offset < len {
        let want = usize::try_from((len - offset).min(CHUNK as u64)).unwrap_or(CHUNK);
        input.read_exact(&mut buf[..want])?;
        let chunk = &buf[..want];
        if target_zeroed && chunk.iter().all(|b| *b == 0) {
            done.skipped += want as u64;
        } else {
            output.seek(SeekFrom::Start(offset))?;
            output.write_all(chunk)?;
        }
        offset += want as u64;
        done.bytes = offset;
        let pct = u8::try_from(offset * 100 / len.max(1)).unwrap_or(100);
        if pct != last_pct {
            last_pct = pct;
            progress(pct);
        }
    }
    output.sync_all()?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_data_and_skips_zero_chunks_only_on_a_zeroed_target() {
        let dir = tempfile::tempdir().unwrap();
        let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
        let mut data = vec![0u8; 3 * CHUNK + 100];
        data[5] = 1;
        data[2 * CHUNK + 7] = 2;
        data[3 * CHUNK + 99] = 3;
        std::fs::write(&src, &data).unwrap();
        // A target holding old data: nothing may be skipped.
        std::fs::write(&dst, vec![0xAAu8; data.len()]).unwrap();
        let mut seen = Vec::new();
        let c = copy_blocks(&src, &dst, data.len() as u64, false, |p| seen.push(p)).unwrap();
        assert_eq!(std::fs::read(&dst).unwrap(), data);
        assert_eq!(c.skipped, 0);
        assert_eq!(seen.last(), Some(&100));
        assert!(seen.windows(2).all(|w| w[0] < w[1]));
        // A zeroed target: the all-zero chunk is skipped, the result is equal.
        std::fs::write(&dst, vec![0u8; data.len()]).unwrap();
        let c = copy_blocks(&src, &dst, data.len() as u64, true, |_| {}).unwrap();
        assert_eq!(std::fs::read(&dst).unwrap(), data);
        assert_eq!(c.skipped, CHUNK as u64);
    }
}
