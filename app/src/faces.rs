//! facemark's results as data (sans IO): one JSON object per analysed frame, the same for the
//! `/events/<stream>` Server-Sent Events and for a recording's `<name>.landmarks.jsonl`:
//! `{"pts":..., "width":..., "height":..., "faces":[{"score":..., "box":[x,y,w,h],
//! "landmarks":[[x,y,z],...]}]}`, pixels of the analysed frame, `pts` in nanoseconds.

/// One face of a frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Face {
    pub score: f64,
    /// x, y, width, height.
    pub bbox: [f64; 4],
    pub landmarks: Vec<[f64; 3]>,
}

/// One analysed frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub pts: u64,
    pub width: u32,
    pub height: u32,
    pub faces: Vec<Face>,
}

impl Frame {
    /// The frame's JSON object on one line.
    pub fn json(&self) -> String {
        let mut out = format!("{{\"pts\":{},\"width\":{},\"height\":{},\"faces\":[", self.pts, self.width, self.height);
        for (i, face) in self.faces.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let [x, y, w, h] = face.bbox.map(number);
            out += &format!("{{\"score\":{},\"box\":[{x},{y},{w},{h}],\"landmarks\":[", number(face.score));
            for (j, [x, y, z]) in face.landmarks.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                out += &format!("[{},{},{}]", number(*x), number(*y), number(*z));
            }
            out += "]}";
        }
        out += "]}";
        out
    }

    /// The same frame at another time (a recording's own timeline).
    pub fn at(&self, pts: u64) -> Frame {
        Frame { pts, ..self.clone() }
    }
}

/// A number as JSON: two decimals (a hundredth of a pixel), no trailing zeros, never NaN.
fn number(value: f64) -> String {
    if !value.is_finite() {
        return "0".to_owned();
    }
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" { "0".to_owned() } else { text.to_owned() }
}

/// `data: <json>\n\n`: one Server-Sent Event.
pub fn event(frame: &Frame) -> String {
    format!("data: {}\n\n", frame.json())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_of_json_per_frame() {
        let frame = Frame {
            pts: 1_000_000_000,
            width: 640,
            height: 480,
            faces: vec![Face {
                score: 0.987654,
                bbox: [100.0, 50.25, 200.5, 210.0],
                landmarks: vec![[120.126, 80.0, -3.5], [130.0, 90.004, 0.0]],
            }],
        };
        assert_eq!(
            frame.json(),
            "{\"pts\":1000000000,\"width\":640,\"height\":480,\"faces\":[{\"score\":0.99,\"box\":[100,50.25,200.5,210],\
             \"landmarks\":[[120.13,80,-3.5],[130,90,0]]}]}"
        );
        assert_eq!(event(&frame.at(5)), format!("data: {}\n\n", Frame { pts: 5, ..frame.clone() }.json()));
        let empty = Frame { faces: Vec::new(), ..frame };
        assert!(empty.json().ends_with("\"faces\":[]}"));
        assert!(!empty.json().contains('\n'));
    }

    #[test]
    fn numbers_are_always_json() {
        assert_eq!(number(f64::NAN), "0");
        assert_eq!(number(f64::INFINITY), "0");
        assert_eq!(number(-0.001), "0");
        assert_eq!(number(-1.5), "-1.5");
        assert_eq!(number(1e9), "1000000000");
    }
}
