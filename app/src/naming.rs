//! How whipcast names what it writes, the rules pipelines/lib.sh follows too (the tests below
//! hold the two together): a recording is `<stream>-<UTC time>.<extension>` in the container its
//! video codec takes, its snapshots `z<frame>.jpg` in a folder of the same name.

use std::path::Path;

use gst::glib;

/// The UTC time in file names: 20250101T120000Z.
const UTC_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// The container (extension, muxer) for a session: WebM takes AV1/VP8/VP9 with Opus, MP4
/// H.264/H.265, Matroska anything else.
pub fn container_for(video_codec: Option<&str>) -> (&'static str, &'static str) {
    match video_codec {
        None | Some("AV1" | "VP8" | "VP9") => ("webm", "webmmux"),
        Some("H264" | "H265") => ("mp4", "mp4mux"),
        Some(_) => ("mkv", "matroskamux"),
    }
}

/// `<stream>-<UTC time>`: a recording's name, before [`unique_name`] and the extension.
pub fn recording_base(stream: &str, time: &glib::DateTime) -> String {
    format!("{stream}-{}", utc_stamp(time))
}

fn utc_stamp(time: &glib::DateTime) -> String {
    time.to_utc().and_then(|t| t.format(UTC_FORMAT)).map(|s| s.to_string()).unwrap_or_else(|_| "now".into())
}

/// `base`, or `base-2`, `base-3` ... when a file of that name exists.
pub fn unique_name(folder: &Path, base: &str, extension: &str) -> String {
    (1..)
        .map(|i| if i == 1 { base.to_owned() } else { format!("{base}-{i}") })
        .find(|name| !folder.join(format!("{name}.{extension}")).exists() && !folder.join(name).exists())
        .unwrap()
}

/// The snapshot of the `frame`th decoded frame (counted from 1).
pub fn snapshot_file(frame: impl std::fmt::Display) -> String {
    format!("z{frame}.jpg")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `script` prints with pipelines/lib.sh sourced.
    fn lib_sh(script: &str) -> String {
        let lib = concat!(env!("CARGO_MANIFEST_DIR"), "/../pipelines/lib.sh");
        let out = std::process::Command::new("bash")
            .args(["-c", &format!(r#". "$1" && {script}"#), "-", lib])
            .output()
            .unwrap();
        assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim_end().to_owned()
    }

    #[test]
    fn containers_follow_the_video_codec() {
        assert_eq!(container_for(Some("AV1")), ("webm", "webmmux"));
        assert_eq!(container_for(Some("VP8")), ("webm", "webmmux"));
        assert_eq!(container_for(Some("H264")), ("mp4", "mp4mux"));
        assert_eq!(container_for(Some("H265")), ("mp4", "mp4mux"));
        assert_eq!(container_for(None), ("webm", "webmmux"), "audio only: Opus in WebM");
    }

    #[test]
    fn the_scripts_mux_each_extension_as_whipcast_does() {
        for codec in ["AV1", "VP8", "VP9", "H264", "H265"] {
            let (extension, muxer) = container_for(Some(codec));
            let said = lib_sh(&format!(r#"recording_sink x.{extension} {codec} && echo "${{mux[0]}} $codecs""#));
            let (script_muxer, codecs) = said.split_once(' ').unwrap();
            assert_eq!(script_muxer, muxer, "{codec} in .{extension}");
            assert!(codecs.split(',').any(|c| c == codec), "{codec}: .{extension} takes {codecs} in the scripts");
        }
    }

    #[test]
    fn the_scripts_name_files_as_whipcast_does() {
        let time = glib::DateTime::from_unix_utc(1_764_600_000).unwrap();
        assert_eq!(recording_base("cam", &time), "cam-20251201T144000Z");
        assert_eq!(lib_sh("WHIP_STREAM=cam whip_recording_name webm 1764600000"), "cam-20251201T144000Z.webm");
        assert_eq!(lib_sh("snapshot_name 300"), snapshot_file(300));
    }

    #[test]
    fn names_do_not_overwrite() {
        let dir = std::env::temp_dir().join(format!("whipcast-names-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(unique_name(&dir, "live-x", "webm"), "live-x");
        std::fs::write(dir.join("live-x.webm"), b"").unwrap();
        assert_eq!(unique_name(&dir, "live-x", "webm"), "live-x-2");
        std::fs::create_dir(dir.join("live-x-2")).unwrap();
        assert_eq!(unique_name(&dir, "live-x", "webm"), "live-x-3");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
