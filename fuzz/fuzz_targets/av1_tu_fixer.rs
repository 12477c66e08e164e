//! Any bytes as a temporal unit into av1obufix's core: no panic; output is container-ready and
//! a fixed point.
#![no_main]

use gstav1rtp::av1::fixer::TuFixer;
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
    }
});
