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
    plugin_alone("rswebrtc", &newest, "libgstrswebrtc.so")
}

/// A fresh folder `folder` holding only `plugin`, linked as `name` (the build folder holds other
/// crates' plugins too, which GStreamer would load as well).
fn plugin_alone(folder: &str, plugin: &Path, name: &str) -> PathBuf {
    let dir = output_path(folder);
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join(name);
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(plugin, &link).unwrap();
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

/// What `element.factory()` names for an element made by each name, with our plugin loaded as
/// gst-launch-1.0 and applications load it (through the registry), in Debian's python3-gi.
fn factories_named(path: &Path, registry: &Path) -> Vec<String> {
    let script = "import gi\n\
                  gi.require_version('Gst', '1.0')\n\
                  from gi.repository import Gst\n\
                  Gst.init(None)\n\
                  for name in ['whipcastsrc', 'whipserversrc', 'whipcastwhepsink', 'whepserversink']:\n    \
                  print(name, Gst.ElementFactory.make(name).get_factory().get_name())\n";
    let out = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .env("GST_PLUGIN_PATH", path)
        .env("GST_REGISTRY", registry)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

#[test]
fn elements_made_by_either_name_are_named_by_the_new_one() {
    // The element's class takes its factory when first initialised; through the registry cache
    // the old name's factory was the type's then.
    let ours = ours_alone("factories");
    let registry = output_path("registry-factories.bin");
    let _ = std::fs::remove_file(&registry);
    assert_eq!(
        factories_named(&ours, &registry),
        [
            "whipcastsrc whipcastsrc",
            "whipserversrc whipcastsrc",
            "whipcastwhepsink whipcastwhepsink",
            "whepserversink whipcastwhepsink"
        ]
    );
}

/// A folder with our whipsrc plugin alone.
fn ours_alone(folder: &str) -> PathBuf {
    plugin_alone(folder, &build_dir().join("libgstwhipsrc.so"), "libgstwhipsrc.so")
}

#[test]
fn our_names_are_ours_beside_rswebrtc_in_either_order() {
    let ours = ours_alone("whipsrc-only");
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
