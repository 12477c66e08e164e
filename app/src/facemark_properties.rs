//! `--facemark-property NAME=VALUE`: facemark properties (gst-inspect-1.0 facemark) set on every
//! session's facemark, checked once at start so a typo stops `whipcast serve` with a reason
//! instead of failing each session.

use gst::glib;
use gst::prelude::*;

/// Properties whipcast sets itself: its own flag says how.
const OWNED: [(&str, &str); 3] = [
    ("model-dir", "use --model-dir"),
    ("emit-messages", "whipcast needs facemark's messages for the landmarks files"),
    ("name", "whipcast names its elements"),
];

/// One `NAME=VALUE` as the command line gives it (clap's value parser).
pub fn parse(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => Ok((name.trim().to_owned(), value.trim().to_owned())),
        _ => Err(format!("'{text}' is not NAME=VALUE (e.g. iris-interval=2)")),
    }
}

/// whipcast's own choices for facemark, before the command line's (which win): each eye's model
/// (the attention eye head, or the older iris model) every other frame, within the model's own
/// frame-to-frame wobble (gst-plugin-facemark/README.md). With the older iris model it took a
/// 2-core server from 6 to 7-8 H.264 and from 5 to 6 AV1 720p30 publishers on facemark's AVX2
/// code; with the attention model 8 H.264 publishers held in 1 of 2 runs at interval 2 and in
/// none of 3 at interval 1 (README.md, capacity).
pub const DEFAULTS: [(&str, &str); 1] = [("iris-interval", "2")];

/// Sets [`DEFAULTS`], then each of `properties`, on `facemark`; the first that facemark lacks,
/// whipcast owns, or whose value does not fit (type or range) is an error naming it, and sets
/// nothing after it.
pub fn apply(facemark: &gst::Element, properties: &[(String, String)]) -> Result<(), String> {
    for (name, value) in DEFAULTS {
        facemark.set_property_from_value(name, &checked(facemark, name, value)?);
    }
    for (name, text) in properties {
        let value = checked(facemark, name, text).map_err(|why| format!("--facemark-property {name}={text}: {why}"))?;
        facemark.set_property_from_value(name, &value);
    }
    Ok(())
}

fn checked(facemark: &gst::Element, name: &str, text: &str) -> Result<glib::Value, String> {
    if let Some((_, why)) = OWNED.iter().find(|(owned, _)| *owned == name) {
        return Err(format!("not settable here ({why})"));
    }
    let pspec = facemark.find_property(name).ok_or("facemark has no such property (gst-inspect-1.0 facemark)")?;
    let flags = pspec.flags();
    if !flags.contains(glib::ParamFlags::WRITABLE) || flags.contains(glib::ParamFlags::CONSTRUCT_ONLY) {
        return Err("read-only".into());
    }
    let mut value = glib::Value::deserialize(text, pspec.value_type())
        .map_err(|_| format!("not a value of type {}", pspec.value_type()))?;
    // GLib clamps a value out of the property's range (and glib-rs panics on it): refuse it.
    // SAFETY: both pointers come from live objects borrowed for the call; the value has the
    // property's type (deserialized as it).
    let clamped: bool = unsafe {
        use glib::translate::{FromGlib, ToGlibPtr, ToGlibPtrMut};
        let changed = glib::gobject_ffi::g_param_value_validate(pspec.to_glib_none().0, value.to_glib_none_mut().0);
        bool::from_glib(changed)
    };
    if clamped {
        return Err(match range(&pspec) {
            Some(range) => format!("out of range ({range})"),
            None => "out of range (gst-inspect-1.0 facemark)".into(),
        });
    }
    Ok(value)
}

/// A numeric property's range, as `MIN..=MAX`.
fn range(pspec: &glib::ParamSpec) -> Option<String> {
    macro_rules! of {
        ($($kind:ty),*) => {$(
            if let Some(p) = pspec.downcast_ref::<$kind>() {
                return Some(format!("{}..={}", p.minimum(), p.maximum()));
            }
        )*};
    }
    of!(glib::ParamSpecUInt, glib::ParamSpecInt, glib::ParamSpecUInt64, glib::ParamSpecInt64, glib::ParamSpecDouble);
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facemark() -> gst::Element {
        gst::init().unwrap();
        gstfacemark::plugin_register_static().unwrap();
        gst::ElementFactory::make("facemark").build().unwrap()
    }

    fn props(list: &[&str]) -> Vec<(String, String)> {
        list.iter().map(|p| parse(p).unwrap()).collect()
    }

    #[test]
    fn whipcast_defaults_apply_without_a_command_line() {
        let e = facemark();
        assert_eq!(e.property::<u32>("iris-interval"), 1, "the element's default");
        apply(&e, &[]).unwrap();
        assert_eq!(e.property::<u32>("iris-interval"), 2);
    }

    #[test]
    fn name_value_pairs() {
        assert_eq!(parse("iris-interval=2"), Ok(("iris-interval".into(), "2".into())));
        assert_eq!(parse(" draw = box+keypoints "), Ok(("draw".into(), "box+keypoints".into())));
        assert_eq!(parse("irises="), Ok(("irises".into(), "".into())));
        assert!(parse("iris-interval").unwrap_err().contains("NAME=VALUE"));
        assert!(parse("=2").is_err());
    }

    #[test]
    fn properties_of_every_type_are_set() {
        let e = facemark();
        apply(&e, &props(&["iris-interval=3", "irises=false", "draw=box+keypoints", "min-detection-confidence=0.7"]))
            .unwrap();
        assert_eq!(e.property::<u32>("iris-interval"), 3, "the command line wins over whipcast's defaults");
        assert!(!e.property::<bool>("irises"));
        assert_eq!(e.property::<f64>("min-detection-confidence"), 0.7);
        let draw = e.property_value("draw");
        let (_, flags) = glib::FlagsValue::from_value(&draw).unwrap();
        assert_eq!(flags.iter().map(|f| f.nick()).collect::<Vec<_>>(), ["box", "keypoints"]);
        apply(&e, &props(&["mode=inline"])).unwrap();
        let mode = e.property_value("mode");
        assert_eq!(glib::EnumValue::from_value(&mode).unwrap().1.nick(), "inline");
    }

    #[test]
    fn each_bad_property_is_a_clear_error_and_nothing_after_it_is_set() {
        let e = facemark();
        for (given, says) in [
            ("iris-intervall=2", "facemark has no such property"),
            ("iris-interval=0", "out of range (1..=300)"),
            ("iris-interval=two", "not a value of type guint"),
            ("max-faces=99", "out of range (1..=16)"),
            ("min-tracking-confidence=1.5", "out of range (0..=1)"),
            ("draw=nose", "not a value of type"),
            ("stats=x", "read-only"),
            ("model-dir=/tmp", "use --model-dir"),
            ("emit-messages=false", "whipcast needs facemark's messages"),
        ] {
            let err = apply(&e, &props(&[given, "detect-interval=7"])).unwrap_err();
            assert!(err.starts_with(&format!("--facemark-property {given}: ")), "{err}");
            assert!(err.contains(says), "{given}: {err}");
            assert_eq!(e.property::<u32>("detect-interval"), 30, "{given}: applied past the error");
            assert_eq!(e.property::<u32>("iris-interval"), 2, "whipcast's default");
        }
    }
}
