//! Models loaded once per process. Each facemark (whipcast runs one per stream) gets its own
//! instance of the same compiled weights, so a new stream starts without reading, checking and
//! compiling the files again: that took ~90 ms on an idle 2-core machine and up to 2 s on a busy
//! one, and whipcast does it while a publisher waits for its WHIP answer.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use super::{DETECTOR_FILE, IRIS_FILE, LANDMARK_FILE, ModelError, Models, Runtime, load_models};
use crate::core::attention;
use crate::core::cnn::Isa;
use crate::core::refine::Heads;

/// What a load depends on besides the files: the folder, the runtime and the instruction set
/// the fused engine compiles for (`FACEMARK_ISA` may differ from one load to the next).
#[derive(PartialEq)]
struct Key {
    dir: PathBuf,
    runtime: Runtime,
    isa: Isa,
}

/// A model file as last seen: size, modification time and inode, or absent. Another file put in
/// its place (`make models` again, an edit) makes the models load again.
type Stamp = Option<(u64, SystemTime, u64)>;

struct Loaded {
    key: Key,
    stamps: Vec<Stamp>,
    /// Never run: handed out through [`Models::instance`].
    models: Models,
}

/// Every load that succeeded, one per key (a process uses one or two folders).
static LOADED: Mutex<Vec<Loaded>> = Mutex::new(Vec::new());

/// [`load_models`], from the compiled models of an earlier load of the same files when there is
/// one. Errors are not kept: a folder fixed meanwhile loads on the next call.
pub fn shared_models(dir: &Path, runtime: Runtime) -> Result<Models, ModelError> {
    let key = Key { dir: std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned()), runtime, isa: Isa::chosen() };
    let stamps = stamps(&key.dir);
    // Held while loading: two streams starting together load once.
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    let instance_of = |models: &Models| {
        models
            .instance()
            .map_err(|e| ModelError { path: dir.to_owned(), reason: format!("cannot run the models ({e:#})") })
    };
    if let Some(hit) = loaded.iter().find(|l| l.key == key && l.stamps == stamps) {
        return instance_of(&hit.models);
    }
    let models = load_models(dir, runtime)?;
    let instance = instance_of(&models)?;
    loaded.retain(|l| l.key != key);
    loaded.push(Loaded { key, stamps, models });
    Ok(instance)
}

/// The stamps of every file [`load_models`] may read in `dir`.
fn stamps(dir: &Path) -> Vec<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let heads = Heads::REGIONS.map(|r| r.file);
    [DETECTOR_FILE, attention::TRUNK_FILE, LANDMARK_FILE, IRIS_FILE]
        .into_iter()
        .chain(heads)
        .map(|file| {
            let meta = std::fs::metadata(dir.join(file)).ok()?;
            Some((meta.len(), meta.modified().ok()?, meta.ino()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_replaced_changes_the_stamps() {
        let dir = std::env::temp_dir().join(format!("facemark-stamps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let before = stamps(&dir);
        assert!(before.iter().all(Option::is_none));
        std::fs::write(dir.join(DETECTOR_FILE), b"one").unwrap();
        let written = stamps(&dir);
        assert!(written[0].is_some() && written[1..] == before[1..]);
        // Same size, another file in its place.
        std::fs::write(dir.join("new"), b"two").unwrap();
        std::fs::rename(dir.join("new"), dir.join(DETECTOR_FILE)).unwrap();
        assert_ne!(stamps(&dir)[0], written[0]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
