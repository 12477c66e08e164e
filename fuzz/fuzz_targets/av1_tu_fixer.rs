//! Any bytes as a temporal unit into av1obufix's core: no panic; output is container-ready and
//! a fixed point. The SVC layer filter on the same bytes: no panic; what it keeps of a unit that
//! parses parses, within the limit.
#![no_main]

use gstav1rtp::av1::fixer::TuFixer;
use gstav1rtp::av1::layers::{LayerLimit, keep_layers};
use gstav1rtp::av1::obu::{self, Obus};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut fixer = TuFixer::new();
    for tu in data.split(|&b| b == 0xff) {
        if let Ok(fixed) = fixer.fix(tu) {
            assert!(fixed.data.starts_with(&obu::TEMPORAL_DELIMITER));
            for o in Obus::new(&fixed.data, false) {
                assert!(o.expect("well-formed OBU").is_canonical());
            }
            let copy = fixed.data.into_owned();
            let again = fixer.fix(&copy).expect("fixed output is accepted");
            assert_eq!(&*again.data, &copy[..]);
        }
        let _ = fixer.av1c();
        let limit = LayerLimit { spatial: Some(tu.len() as u8 % 3), temporal: Some(tu.len() as u8 % 4) };
        if let Some(kept) = keep_layers(tu, limit)
            && Obus::new(tu, false).all(|o| o.is_ok())
        {
            for o in Obus::new(&kept, false) {
                let o = o.expect("kept OBUs parse");
                assert!(limit.keeps(&o.header));
            }
        }
    }
});
