//! Wildcard patterns and IP blocks: classifying a pattern into a fast-path shape,
//! matching, and parsing addresses and CIDR blocks. The compiler classifies patterns
//! and validates blocks with these; the interpreter and the runtime match with them.

use super::{Pattern, WildPiece};
use std::net::IpAddr;

/// Splits a wildcard pattern into a fast-path shape. `*` matches any run of
/// characters; `?` matches one character when `question_is_wild` (Elasticsearch).
/// There is no escape character, as in both reference engines.
pub fn classify_wildcard(pattern: &str, question_is_wild: bool) -> Pattern {
    let mut pieces: Vec<WildPiece> = Vec::new();
    let mut literal = String::new();
    for ch in pattern.chars() {
        let wild = match ch {
            '*' => Some(WildPiece::Any),
            '?' if question_is_wild => Some(WildPiece::One),
            _ => None,
        };
        match wild {
            Some(piece) => {
                if !literal.is_empty() {
                    pieces.push(WildPiece::Literal(std::mem::take(&mut literal)));
                }
                // `**` is the same as `*`.
                if !(piece == WildPiece::Any && pieces.last() == Some(&WildPiece::Any)) {
                    pieces.push(piece);
                }
            }
            None => literal.push(ch),
        }
    }
    if !literal.is_empty() {
        pieces.push(WildPiece::Literal(literal));
    }
    use WildPiece::{Any, Literal};
    match pieces.as_slice() {
        [] => Pattern::Exact(String::new()),
        [Literal(text)] => Pattern::Exact(text.clone()),
        [Literal(text), Any] => Pattern::Prefix(text.clone()),
        [Any, Literal(text)] => Pattern::Suffix(text.clone()),
        [Any, Literal(text), Any] => Pattern::Contains(text.clone()),
        _ => Pattern::General(pieces),
    }
}

/// True for patterns that match every value (`*`, `**`).
pub fn matches_everything(pattern: &Pattern) -> bool {
    matches!(pattern, Pattern::General(pieces) if pieces.as_slice() == [WildPiece::Any])
}

/// Parses an IP address literal.
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    text.trim().parse().ok()
}

/// Parses `a.b.c.d/n`, `x::y/n`, or a bare address (a /32 or /128 block).
pub fn parse_cidr(text: &str) -> Result<(IpAddr, u8), String> {
    let (address, prefix) = match text.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (text, None),
    };
    let address: IpAddr = address.parse().map_err(|_| format!("`{address}` is not an IPv4 or IPv6 address"))?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(prefix) => match prefix.parse::<u8>() {
            Ok(prefix) if prefix <= max => prefix,
            _ => return Err(format!("prefix length `/{prefix}` is not between 0 and {max}")),
        },
    };
    Ok((address, prefix))
}

/// Whether `text` matches a classified wildcard pattern (case-sensitively).
pub fn wildcard_matches(pattern: &Pattern, text: &str) -> bool {
    match pattern {
        Pattern::Exact(literal) => text == literal,
        Pattern::Prefix(literal) => text.starts_with(literal.as_str()),
        Pattern::Suffix(literal) => text.ends_with(literal.as_str()),
        Pattern::Contains(literal) => text.contains(literal.as_str()),
        Pattern::General(pieces) => general_matches(pieces, text),
    }
}

/// Iterative wildcard matching with single-star backtracking: linear space, no recursion.
fn general_matches(pieces: &[WildPiece], text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    let (mut piece_idx, mut char_idx) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    loop {
        if piece_idx < pieces.len() {
            match &pieces[piece_idx] {
                WildPiece::Any => {
                    star = Some((piece_idx, char_idx));
                    piece_idx += 1;
                    continue;
                }
                WildPiece::One if char_idx < chars.len() => {
                    piece_idx += 1;
                    char_idx += 1;
                    continue;
                }
                WildPiece::Literal(literal) => {
                    let len = literal.chars().count();
                    if char_idx + len <= chars.len() && literal.chars().zip(&chars[char_idx..]).all(|(a, b)| a == *b) {
                        piece_idx += 1;
                        char_idx += len;
                        continue;
                    }
                }
                WildPiece::One => {}
            }
        } else if char_idx == chars.len() {
            return true;
        }
        match star {
            Some((star_piece, star_char)) if star_char < chars.len() => {
                star = Some((star_piece, star_char + 1));
                piece_idx = star_piece + 1;
                char_idx = star_char + 1;
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn general_patterns() {
        let pattern = classify_wildcard("?memfd:*", true);
        assert!(wildcard_matches(&pattern, "/memfd:x (deleted)"));
        assert!(!wildcard_matches(&pattern, "memfd:x"));
        let pattern = classify_wildcard("*a*b*c", true);
        assert!(wildcard_matches(&pattern, "xxaxxbxxc"));
        assert!(!wildcard_matches(&pattern, "xxaxxcxxb"));
        assert!(wildcard_matches(&classify_wildcard("**", true), ""));
    }
}
