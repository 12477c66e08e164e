//! whipcast's `/metrics` in the Prometheus text format (version 0.0.4), sans IO: a snapshot of
//! the server in, the body out. The shell (recorder/report.rs) fills the snapshot from whipcastsrc's
//! and facemark's stats when a scrape comes.

/// Upper bounds (s) of the inference-time histogram's buckets: facemark takes 2-15 ms a frame
/// on a CPU core, a busy or small machine more.
pub const INFERENCE_BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64];

/// One live publisher's session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionMetrics {
    pub stream: String,
    pub received_bytes_per_second: u64,
    pub packets_received: u64,
    pub packets_lost: u64,
    pub nacks_sent: u64,
    pub keyframe_requests: u64,
    pub jitter_seconds: f64,
    /// Video frames written to the session's recording.
    pub recording_frames: u64,
}

/// A cumulative histogram of observed values.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Observations at most each bound (not yet cumulative), then those above the last.
    counts: Vec<u64>,
    sum: f64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram { bounds, counts: vec![0; bounds.len() + 1], sum: 0.0 }
    }

    pub fn observe(&mut self, value: f64) {
        let bucket = self.bounds.iter().position(|&b| value <= b).unwrap_or(self.bounds.len());
        self.counts[bucket] += 1;
        self.sum += value;
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// What `/metrics` says.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub sessions: Vec<SessionMetrics>,
    /// WHEP viewers watching now (every stream, both views).
    pub viewers: u64,
    /// HTTP responses of the server, by status code.
    pub http_responses: Vec<(u16, u64)>,
    pub inference_seconds: Histogram,
    pub dropped_inferences: u64,
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot {
            sessions: Vec::new(),
            viewers: 0,
            http_responses: Vec::new(),
            inference_seconds: Histogram::new(&INFERENCE_BUCKETS),
            dropped_inferences: 0,
        }
    }
}

/// The text exposition of `snapshot`.
pub fn render(snapshot: &Snapshot) -> String {
    // Each family: its HELP and TYPE lines, then its samples.
    let mut blocks: Vec<(String, Vec<String>)> = Vec::new();

    let sessions = &snapshot.sessions;
    blocks.push((
        header("whipcast_sessions_active", "gauge", "Publishers connected now."),
        vec![format!("whipcast_sessions_active {}", sessions.len())],
    ));
    blocks.push((
        header("whipcast_viewers_active", "gauge", "WHEP viewers watching now."),
        vec![format!("whipcast_viewers_active {}", snapshot.viewers)],
    ));
    let mut codes = snapshot.http_responses.clone();
    codes.sort();
    blocks.push((
        header("whipcast_http_requests_total", "counter", "HTTP requests answered, by status code."),
        codes.iter().map(|(code, n)| format!("whipcast_http_requests_total{{code=\"{code}\"}} {n}")).collect(),
    ));
    let per_session = |name: &str, value: &dyn Fn(&SessionMetrics) -> String| -> Vec<String> {
        sessions.iter().map(|s| format!("{name}{{stream=\"{}\"}} {}", label(&s.stream), value(s))).collect()
    };
    // Name, type, help, and the value of a session.
    type Family<'a> = (&'a str, &'a str, &'a str, &'a dyn Fn(&SessionMetrics) -> String);
    let families: [Family; 7] = [
        (
            "whipcast_session_received_bytes_per_second",
            "gauge",
            "What the publisher sends, over the last second (Prometheus counts bytes, not bits).",
            &|s| s.received_bytes_per_second.to_string(),
        ),
        ("whipcast_session_packets_received_total", "counter", "RTP packets received in the session.", &|s| {
            s.packets_received.to_string()
        }),
        (
            "whipcast_session_packets_lost_total",
            "counter",
            "RTP packets lost in the session (before retransmission).",
            &|s| s.packets_lost.to_string(),
        ),
        ("whipcast_session_nacks_sent_total", "counter", "NACKs sent to the publisher.", &|s| s.nacks_sent.to_string()),
        ("whipcast_session_keyframe_requests_total", "counter", "Key frames asked of the publisher (PLI).", &|s| {
            s.keyframe_requests.to_string()
        }),
        ("whipcast_session_jitter_seconds", "gauge", "Interarrival jitter of the session's video.", &|s| {
            format_float(s.jitter_seconds)
        }),
        ("whipcast_recording_frames_total", "counter", "Video frames written to the session's recording.", &|s| {
            s.recording_frames.to_string()
        }),
    ];
    for (name, kind, help, value) in families {
        blocks.push((header(name, kind, help), per_session(name, value)));
    }

    let histogram = &snapshot.inference_seconds;
    let name = "whipcast_facemark_inference_seconds";
    let mut lines = Vec::new();
    let mut cumulative = 0;
    for (bound, count) in histogram.bounds.iter().zip(&histogram.counts) {
        cumulative += count;
        lines.push(format!("{name}_bucket{{le=\"{}\"}} {cumulative}", format_float(*bound)));
    }
    lines.push(format!("{name}_bucket{{le=\"+Inf\"}} {}", histogram.count()));
    lines.push(format!("{name}_sum {}", format_float(histogram.sum)));
    lines.push(format!("{name}_count {}", histogram.count()));
    blocks.push((header(name, "histogram", "Time facemark took per analysed frame."), lines));
    blocks.push((
        header(
            "whipcast_facemark_dropped_inferences_total",
            "counter",
            "Frames facemark passed on with the last result, its worker being busy.",
        ),
        vec![format!("whipcast_facemark_dropped_inferences_total {}", snapshot.dropped_inferences)],
    ));

    let mut out = String::new();
    for (head, lines) in blocks {
        out += &head;
        for line in lines {
            out += &line;
            out.push('\n');
        }
    }
    out
}

fn header(name: &str, kind: &str, help: &str) -> String {
    format!("# HELP {name} {help}\n# TYPE {name} {kind}\n")
}

/// A label value with `\`, `"` and line feeds escaped.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn format_float(value: f64) -> String {
    if value.is_finite() { format!("{value}") } else { "NaN".to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        let mut inference_seconds = Histogram::new(&INFERENCE_BUCKETS);
        for seconds in [0.004, 0.006, 0.007, 2.0] {
            inference_seconds.observe(seconds);
        }
        Snapshot {
            sessions: vec![SessionMetrics {
                stream: "live".into(),
                received_bytes_per_second: 312_500,
                packets_received: 1200,
                packets_lost: 3,
                nacks_sent: 2,
                keyframe_requests: 1,
                jitter_seconds: 0.0042,
                recording_frames: 300,
            }],
            viewers: 2,
            http_responses: vec![(404, 2), (201, 1)],
            inference_seconds,
            dropped_inferences: 5,
        }
    }

    #[test]
    fn every_family_with_help_type_and_samples() {
        let text = render(&snapshot());
        for line in [
            "# TYPE whipcast_sessions_active gauge",
            "whipcast_sessions_active 1",
            "# TYPE whipcast_viewers_active gauge",
            "whipcast_viewers_active 2",
            "whipcast_http_requests_total{code=\"201\"} 1",
            "whipcast_http_requests_total{code=\"404\"} 2",
            "whipcast_session_received_bytes_per_second{stream=\"live\"} 312500",
            "whipcast_session_packets_received_total{stream=\"live\"} 1200",
            "whipcast_session_packets_lost_total{stream=\"live\"} 3",
            "whipcast_session_nacks_sent_total{stream=\"live\"} 2",
            "whipcast_session_keyframe_requests_total{stream=\"live\"} 1",
            "whipcast_session_jitter_seconds{stream=\"live\"} 0.0042",
            "whipcast_recording_frames_total{stream=\"live\"} 300",
            "# TYPE whipcast_facemark_inference_seconds histogram",
            "whipcast_facemark_dropped_inferences_total 5",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing in\n{text}");
        }
        // Requests sorted by code; each family's samples right after its TYPE line.
        let at = |needle: &str| text.find(needle).unwrap();
        assert!(at("code=\"201\"") < at("code=\"404\""));
        assert!(at("# TYPE whipcast_session_nacks_sent_total") < at("whipcast_session_nacks_sent_total{"));
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn the_histogram_is_cumulative_and_counts_past_its_last_bucket() {
        let text = render(&snapshot());
        let bucket = |le: &str| {
            let prefix = format!("whipcast_facemark_inference_seconds_bucket{{le=\"{le}\"}} ");
            text.lines().find_map(|l| l.strip_prefix(prefix.as_str())).unwrap().parse::<u64>().unwrap()
        };
        assert_eq!((bucket("0.0025"), bucket("0.005"), bucket("0.01"), bucket("0.64")), (0, 1, 3, 3));
        assert_eq!(bucket("+Inf"), 4);
        assert!(text.contains("whipcast_facemark_inference_seconds_count 4\n"));
        assert!(text.contains("whipcast_facemark_inference_seconds_sum 2.017\n"));
    }

    #[test]
    fn no_session_no_session_samples_and_labels_are_escaped() {
        let mut s = snapshot();
        s.sessions.clear();
        let text = render(&s);
        assert!(text.contains("whipcast_sessions_active 0\n"));
        assert!(!text.contains("stream=\""), "{text}");
        s.sessions.push(SessionMetrics { stream: "a\"b\\c".into(), ..Default::default() });
        assert!(render(&s).contains("whipcast_session_packets_received_total{stream=\"a\\\"b\\\\c\"} 0\n"));
    }
}
