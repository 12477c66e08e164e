//! `make install` / `make uninstall` (scripts/install-plugins.sh), staged with DESTDIR: the .so
//! files land in DESTDIR + the directory pkg-config names for GStreamer's plugins, GStreamer
//! loads the elements from there, and uninstall removes exactly them.

use std::path::Path;
use std::process::Command;

use whipcast_tests::*;

const PLUGINS: [&str; 3] = ["libgstav1rtp.so", "libgstwhipsrc.so", "libgstfacemark.so"];

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// Runs `command`, which must succeed; returns what it printed.
fn succeeds(command: &mut Command) -> String {
    let out = command.output().unwrap();
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{printed}{}", String::from_utf8_lossy(&out.stderr));
    printed
}

#[test]
fn staged_install_lands_in_the_pkg_config_plugin_dir_and_uninstall_removes_it() {
    let build = build_dir();
    let stage = output_path("stage");
    let out = Command::new("pkg-config").args(["--variable=pluginsdir", "gstreamer-1.0"]).output().unwrap();
    let pluginsdir = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(out.status.success() && pluginsdir.starts_with('/'), "pkg-config: {pluginsdir:?}");
    let dir = stage.join(pluginsdir.trim_start_matches('/'));

    let printed = succeeds(
        Command::new(repo().join("scripts/install-plugins.sh"))
            .arg("install")
            .env("DESTDIR", &stage)
            .env("WHIPCAST_BUILD_DIR", &build),
    );
    for so in PLUGINS {
        let installed = std::fs::read(dir.join(so)).unwrap_or_else(|e| panic!("{so} not in {}: {e}", dir.display()));
        assert!(installed == std::fs::read(build.join(so)).unwrap(), "{so} differs from the build");
        assert!(printed.contains(&dir.join(so).display().to_string()), "{printed}");
    }

    // GStreamer loads the elements from the installed files (a registry of its own for this).
    for (element, so) in
        [("whipcastsrc", "libgstwhipsrc.so"), ("av1obufix", "libgstav1rtp.so"), ("facemark", "libgstfacemark.so")]
    {
        let inspect = Command::new("gst-inspect-1.0")
            .arg(element)
            .env("GST_PLUGIN_PATH", &dir)
            .env("GST_REGISTRY", stage.join("registry.bin"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&inspect.stdout);
        let filename = text.lines().find(|l| l.trim_start().starts_with("Filename")).unwrap_or_default();
        assert!(inspect.status.success() && filename.ends_with(&dir.join(so).display().to_string()), "{text}");
    }

    // Through make, as users run it: DESTDIR reaches the script.
    let printed = succeeds(
        Command::new("make")
            .args(["--no-print-directory", "uninstall"])
            .arg(format!("DESTDIR={}", stage.display()))
            .current_dir(repo()),
    );
    for so in PLUGINS {
        assert!(!dir.join(so).exists(), "{so} still installed");
        assert!(printed.contains(&format!("removed {}", dir.join(so).display())), "{printed}");
    }
    assert!(dir.exists(), "uninstall removes the files, not the directory");
}
