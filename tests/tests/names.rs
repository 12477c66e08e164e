//! Our element names beside gst-plugins-rs's `rswebrtc` plugin, which has elements called
//! `whipserversrc` and `whepserversink` too (our elements' first names, still registered): with
//! both plugins on GST_PLUGIN_PATH, in either order, `whipcastsrc` and `whipcastwhepsink` are ours,
//! while each old name goes to whichever plugin was registered last.

use std::path::{Path, PathBuf};
use std::process::Command;

use whipcast_tests::*;

/// The rswebrtc plugin the test crate builds (gst-plugin-webrtc with `whip` and `whep`), under a
/// name GStreamer accepts: cargo's `libgstrswebrtc-HASH.so` has no entry point GStreamer looks for.
fn rswebrtc_dir() -> PathBuf {
    let deps = build_dir().join("deps");
    let newest = std::fs::read_dir(&deps)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("libgstrswebrtc-") && name.ends_with(".so")
        })
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
        .unwrap_or_else(|| panic!("no libgstrswebrtc-*.so in {}: build the test crate", deps.display()));
    let dir = output_path("rswebrtc");
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("libgstrswebrtc.so");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&newest, &link).unwrap();
    dir
}

/// The file `element` is loaded from with `path` as GST_PLUGIN_PATH (a registry of its own).
fn loaded_from(element: &str, path: &[&Path], registry: &Path) -> String {
    let joined = std::env::join_paths(path).unwrap();
    let out = Command::new("gst-inspect-1.0")
        .arg(element)
        .env("GST_PLUGIN_PATH", &joined)
        .env("GST_REGISTRY", registry)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "gst-inspect-1.0 {element}: {text}{}", String::from_utf8_lossy(&out.stderr));
    let filename = text.lines().find_map(|l| l.trim_start().strip_prefix("Filename")).unwrap_or_default();
    Path::new(filename.trim()).file_name().unwrap_or_default().to_string_lossy().into_owned()
}

#[test]
fn our_names_are_ours_beside_rswebrtc_in_either_order() {
    // Only the plugin files themselves: the build dir also holds other crates' plugins.
    let ours = output_path("whipsrc-only");
    std::fs::create_dir_all(&ours).unwrap();
    let link = ours.join("libgstwhipsrc.so");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(build_dir().join("libgstwhipsrc.so"), &link).unwrap();
    let theirs = rswebrtc_dir();

    let mut old_names_went_to = Vec::new();
    for (order, path) in [("ours-first", [ours.as_path(), &theirs]), ("theirs-first", [&theirs, ours.as_path()])] {
        let registry = output_path(&format!("registry-{order}.bin"));
        let _ = std::fs::remove_file(&registry);
        for element in ["whipcastsrc", "whipcastwhepsink"] {
            assert_eq!(loaded_from(element, &path, &registry), "libgstwhipsrc.so", "{element}, {order}");
        }
        let old: Vec<String> =
            ["whipserversrc", "whepserversink"].iter().map(|e| loaded_from(e, &path, &registry)).collect();
        assert_eq!(old[0], old[1], "{order}: both old names go to the same plugin");
        old_names_went_to.push(old[0].clone());
    }
    // Each order gives the old names to the other plugin: both plugins were loaded, the names
    // really clash, and only the new ones are safe.
    old_names_went_to.sort();
    assert_eq!(old_names_went_to, ["libgstrswebrtc.so", "libgstwhipsrc.so"]);
}
