//! What a user types into OBS: printed once the server is up.

use std::net::IpAddr;

use crate::args::ServeArgs;

/// The addresses publishers can reach: the one listened on, or every interface's (non-loopback
/// first) when listening on all of them.
fn reachable_addresses(listen: &str) -> Vec<IpAddr> {
    let listen: Option<IpAddr> = listen.parse().ok();
    if let Some(ip) = listen.filter(|ip| !ip.is_unspecified()) {
        return vec![ip];
    }
    let mut addresses: Vec<IpAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .map(|i| i.ip())
        .filter(|ip| ip.is_ipv4() || listen.is_some_and(|l| l.is_ipv6()))
        .filter(|ip| !matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80))
        .collect();
    addresses.sort_by_key(|ip| (ip.is_loopback(), *ip));
    addresses.dedup();
    if addresses.is_empty() {
        addresses.push(IpAddr::from([127, 0, 0, 1]));
    }
    addresses
}

fn host(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

pub fn print_settings(args: &ServeArgs) {
    let scheme = if args.tls_certificate.is_some() { "https" } else { "http" };
    let addresses = reachable_addresses(&args.address);
    let base = |ip: &IpAddr| format!("{scheme}://{}:{}", host(ip), args.port);
    let mut out = String::new();
    out += &format!("whipcast is serving WHIP on {scheme}://{}:{}\n\n", args.address, args.port);
    out += "OBS Studio > Settings > Stream\n";
    out += "  Service       WHIP\n";
    for (i, stream) in args.streams.iter().enumerate() {
        let label = if i == 0 { "Server" } else { "" };
        out += &format!("  {label:<13} {}/whip/{stream}\n", base(&addresses[0]));
    }
    for ip in &addresses[1..] {
        out += &format!("  {:<13} (or {}/whip/{})\n", "", base(ip), args.streams[0]);
    }
    let tokens: Vec<Option<&str>> = args.streams.iter().map(|s| args.token_for(s)).collect();
    if tokens.iter().all(|t| *t == tokens[0]) {
        match tokens[0] {
            Some(token) => out += &format!("  Bearer Token  {token}\n"),
            None => out += "  Bearer Token  (leave empty: this server accepts anyone)\n",
        }
    } else {
        for (i, (stream, token)) in args.streams.iter().zip(&tokens).enumerate() {
            let label = if i == 0 { "Bearer Token" } else { "" };
            let token = token.unwrap_or("(leave empty)");
            out += &format!("  {label:<13} {token}  (for /whip/{stream})\n");
        }
    }
    out += "OBS Studio > Settings > Output (Output Mode: Advanced) > Streaming\n";
    out += "  Video Encoder AV1 (SVT-AV1, AOM or NVENC AV1) or H.264 (x264 or NVENC H.264)\n";
    out += "  Keyframe Interval 2 s; no B-frames (x264: Profile baseline, or bframes=0 in x264 options)\n\n";
    if !args.no_publish_page {
        out += &format!("Browser publish page: {}/\n", base(&addresses[0]));
    }
    out += &format!(
        "Recordings: {}/<stream>-<UTC time>.webm (AV1, VP8, VP9) or .mp4 (H.264, H.265), with audio\n",
        args.recordings.display()
    );
    if !args.no_facemark {
        out += &format!(
            "Face snapshots: a folder beside each recording, {} every {} frames{}\n",
            crate::naming::snapshot_file(args.snapshot_every),
            args.snapshot_every,
            if args.snapshot_frames > 0 { format!(" of the first {}", args.snapshot_frames) } else { String::new() }
        );
    }
    out += "UDP: publishers send media over UDP to this machine";
    out += &match &args.port_range {
        Some(range) => format!(" (ports {range}): open them in the firewall\n"),
        None => " (any port: open UDP, or set --port-range)\n".to_string(),
    };
    out += "Ctrl-C stops, finalizing the recording in progress.\n";
    print!("{out}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_specific_address_is_the_only_one() {
        assert_eq!(reachable_addresses("192.0.2.7"), vec!["192.0.2.7".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn all_interfaces_list_loopback_last() {
        let all = reachable_addresses("0.0.0.0");
        assert!(!all.is_empty());
        assert!(all.iter().all(IpAddr::is_ipv4));
        let first_loopback = all.iter().position(IpAddr::is_loopback).unwrap_or(all.len());
        assert!(all[first_loopback..].iter().all(IpAddr::is_loopback), "{all:?}");
    }
}
