//! What the live line says of a session, from whipcastsrc's `stats`.

/// `, layers 0 2.41, 1 0.98, 2 0.29 Mbit/s`: each simulcast layer (rid, bytes received) with its
/// mean bitrate over `seconds`; nothing without layers.
pub fn layers_text(layers: &[(String, u64)], seconds: f64) -> String {
    if layers.is_empty() || seconds <= 0.0 {
        return String::new();
    }
    let each: Vec<String> =
        layers.iter().map(|(rid, bytes)| format!("{rid} {:.2}", *bytes as f64 * 8.0 / seconds / 1e6)).collect();
    format!(", layers {} Mbit/s", each.join(", "))
}

/// The layers (rid, bytes received) in a session's stats structure (`layers`, an array).
pub fn layers_of(session: &gst::StructureRef) -> Vec<(String, u64)> {
    let Ok(layers) = session.get::<gst::Array>("layers") else { return Vec::new() };
    layers
        .iter()
        .filter_map(|v| v.get::<gst::Structure>().ok())
        .filter_map(|l| Some((l.get::<String>("rid").ok()?, l.get::<u64>("bytes-received").ok()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gst::prelude::*;

    #[test]
    fn each_layer_with_its_mean_bitrate() {
        let layers = [("0".to_string(), 3_000_000), ("1".to_string(), 1_000_000), ("2".to_string(), 250_000)];
        assert_eq!(layers_text(&layers, 10.0), ", layers 0 2.40, 1 0.80, 2 0.20 Mbit/s");
        assert_eq!(layers_text(&[], 10.0), "");
        assert_eq!(layers_text(&layers, 0.0), "");
    }

    #[test]
    fn layers_are_read_from_the_stats() {
        gst::init().unwrap();
        let layer = |rid: &str, bytes: u64| {
            gst::Structure::builder("layer")
                .field("rid", rid)
                .field("packets-received", 10u64)
                .field("bytes-received", bytes)
                .field("packets-lost", 0i64)
                .build()
                .to_send_value()
        };
        let session = gst::Structure::builder("session")
            .field("layers", gst::Array::new([layer("0", 900), layer("1", 300)]))
            .build();
        assert_eq!(layers_of(&session), vec![("0".to_string(), 900), ("1".to_string(), 300)]);
        assert!(layers_of(&gst::Structure::new_empty("session")).is_empty());
    }
}
