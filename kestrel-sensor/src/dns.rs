//! DNS responses (RFC 1035 messages) as the probes copy them: the question and the
//! addresses answered. Bounded and total: any bytes give an answer or `None`, never a
//! panic, and name compression cannot loop.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What a response says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub name: String,
    /// The question's type, by name (`A`, `AAAA`, ...) or number.
    pub kind: String,
    pub response_code: u8,
    /// A and AAAA answers, in order.
    pub resolved: Vec<IpAddr>,
}

/// Labels a name may have; compression pointers a name may follow.
const MAX_LABELS: usize = 128;
const MAX_POINTERS: usize = 16;

/// Parses a DNS response; `None` when it is not one (a query, or malformed before the question).
pub fn parse(message: &[u8]) -> Option<Response> {
    let header = message.get(..12)?;
    let flags = u16::from_be_bytes([header[2], header[3]]);
    if flags & 0x8000 == 0 {
        return None;
    }
    let questions = u16::from_be_bytes([header[4], header[5]]);
    let answers = u16::from_be_bytes([header[6], header[7]]);
    if questions == 0 {
        return None;
    }
    let (name, mut at) = read_name(message, 12)?;
    let qtype = u16::from_be_bytes([*message.get(at)?, *message.get(at + 1)?]);
    at += 4;
    // Further questions (rare): skipped.
    for _ in 1..questions {
        at = read_name(message, at)?.1 + 4;
    }
    let mut resolved = Vec::new();
    for _ in 0..answers {
        let Some((_, after)) = read_name(message, at) else { break };
        let Some(fixed) = message.get(after..after + 10) else { break };
        let kind = u16::from_be_bytes([fixed[0], fixed[1]]);
        let length = u16::from_be_bytes([fixed[8], fixed[9]]) as usize;
        let Some(data) = message.get(after + 10..after + 10 + length) else { break };
        match (kind, length) {
            (1, 4) => resolved.push(IpAddr::V4(Ipv4Addr::new(data[0], data[1], data[2], data[3]))),
            (28, 16) => {
                let mut bytes = [0u8; 16];
                bytes.copy_from_slice(data);
                resolved.push(IpAddr::V6(Ipv6Addr::from(bytes)));
            }
            _ => {}
        }
        at = after + 10 + length;
    }
    Some(Response { name, kind: type_name(qtype), response_code: (flags & 0xf) as u8, resolved })
}

/// A (possibly compressed) name at `at`: the dotted name and where the record goes on.
fn read_name(message: &[u8], at: usize) -> Option<(String, usize)> {
    let mut name = String::new();
    let mut position = at;
    let mut resume = None;
    let mut pointers = 0;
    for _ in 0..MAX_LABELS {
        let length = *message.get(position)? as usize;
        match length {
            0 => return Some((name, resume.unwrap_or(position + 1))),
            length if length & 0xc0 == 0xc0 => {
                pointers += 1;
                if pointers > MAX_POINTERS {
                    return None;
                }
                let target = ((length & 0x3f) << 8) | *message.get(position + 1)? as usize;
                resume.get_or_insert(position + 2);
                position = target;
            }
            length if length < 64 => {
                let label = message.get(position + 1..position + 1 + length)?;
                if !name.is_empty() {
                    name.push('.');
                }
                name.push_str(&String::from_utf8_lossy(label));
                position += 1 + length;
            }
            _ => return None,
        }
    }
    None
}

fn type_name(kind: u16) -> String {
    match kind {
        1 => "A".into(),
        2 => "NS".into(),
        5 => "CNAME".into(),
        6 => "SOA".into(),
        12 => "PTR".into(),
        15 => "MX".into(),
        16 => "TXT".into(),
        28 => "AAAA".into(),
        33 => "SRV".into(),
        65 => "HTTPS".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response for example.com: A, with a CNAME then two A answers (compressed names).
    fn example() -> Vec<u8> {
        let mut message = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 3, 0, 0, 0, 0];
        message.extend_from_slice(b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
        // CNAME www.example.com -> example.com (pointer to offset 16).
        message.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xc0, 16]);
        for last in [34u8, 35] {
            message.extend_from_slice(&[0xc0, 16, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 93, 184, 216, last]);
        }
        message
    }

    #[test]
    fn a_response_gives_its_question_and_addresses() {
        let response = parse(&example()).unwrap();
        assert_eq!(response.name, "www.example.com");
        assert_eq!(response.kind, "A");
        assert_eq!(response.response_code, 0);
        assert_eq!(response.resolved, vec!["93.184.216.34".parse::<IpAddr>().unwrap(), "93.184.216.35".parse().unwrap()]);
    }

    #[test]
    fn queries_loops_and_junk_are_refused_without_panics() {
        let mut query = example();
        query[2] = 0x01;
        assert_eq!(parse(&query), None);
        // A name that points at itself.
        let mut looping = vec![0, 0, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12];
        looping.extend_from_slice(&[0, 1, 0, 1]);
        assert_eq!(parse(&looping), None);
        let message = example();
        for cut in 0..message.len() {
            let _ = parse(&message[..cut]);
        }
        let mut state: u32 = 1;
        for _ in 0..5000 {
            let mut bytes = message.clone();
            for _ in 0..4 {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let at = (state >> 8) as usize % bytes.len();
                bytes[at] = (state >> 24) as u8;
            }
            let _ = parse(&bytes);
        }
    }
}
