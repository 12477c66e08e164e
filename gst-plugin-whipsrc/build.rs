//! Build script: sets `COMMIT_ID` and `BUILD_REL_DATE`, which `gst::plugin_define!` in src/lib.rs reads.

fn main() {
    gst_plugin_version_helper::info()
}
