//! The read-only constants region of a predicate module: literal slots, string bytes,
//! sorted string tables and wildcard piece lists, written once as a data segment.

use crate::tir::WildPiece;
use kestrel_bundle::abi::tag;
use std::collections::HashMap;
use std::net::IpAddr;

pub struct Consts {
    base: u32,
    bytes: Vec<u8>,
    dedup: HashMap<Vec<u8>, u32>,
}

impl Consts {
    pub fn new(base: u32) -> Consts {
        Consts { base, bytes: Vec::new(), dedup: HashMap::new() }
    }

    /// Size of the region so far.
    pub fn len(&self) -> u32 {
        self.bytes.len() as u32
    }

    pub fn base(&self) -> u32 {
        self.base
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Places `data` (8-aligned), reusing an identical earlier block; returns its address.
    fn place(&mut self, data: Vec<u8>) -> u32 {
        if let Some(&address) = self.dedup.get(&data) {
            return address;
        }
        while !self.bytes.len().is_multiple_of(8) {
            self.bytes.push(0);
        }
        let address = self.base + self.bytes.len() as u32;
        self.bytes.extend_from_slice(&data);
        self.dedup.insert(data, address);
        address
    }

    /// A string's bytes; returns (address, length).
    pub fn string(&mut self, text: &str) -> (u32, u32) {
        if text.is_empty() {
            return (self.base, 0);
        }
        (self.place(text.as_bytes().to_vec()), text.len() as u32)
    }

    fn slot(&mut self, tag: u8, len: u32, payload: u64) -> u32 {
        let mut data = Vec::with_capacity(16);
        data.extend_from_slice(&u32::from(tag).to_le_bytes());
        data.extend_from_slice(&len.to_le_bytes());
        data.extend_from_slice(&payload.to_le_bytes());
        self.place(data)
    }

    pub fn str_slot(&mut self, text: &str) -> u32 {
        let (address, len) = self.string(text);
        self.slot(tag::STRING, len, u64::from(address))
    }

    pub fn long_slot(&mut self, value: i64) -> u32 {
        self.slot(tag::LONG, 0, value as u64)
    }

    pub fn double_slot(&mut self, value: f64) -> u32 {
        self.slot(tag::DOUBLE, 0, value.to_bits())
    }

    pub fn bool_slot(&mut self, value: bool) -> u32 {
        self.slot(tag::BOOL, 0, u64::from(value))
    }

    /// An address in network order: 4 bytes for IPv4 (also IPv4-mapped IPv6), 16 for IPv6.
    pub fn ip_slot(&mut self, address: IpAddr) -> u32 {
        let bytes = ip_bytes(address);
        let len = bytes.len() as u32;
        let at = self.place(bytes);
        self.slot(tag::IP, len, u64::from(at))
    }

    /// A table of strings sorted by (length, bytes), as `$str_in_table` searches it;
    /// returns (address, count).
    pub fn string_table(&mut self, strings: &[String]) -> (u32, u32) {
        let mut sorted: Vec<&str> = strings.iter().map(String::as_str).collect();
        sorted.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.as_bytes().cmp(b.as_bytes())));
        sorted.dedup();
        let entries: Vec<(u32, u32)> = sorted.iter().map(|text| self.string(text)).collect();
        let mut data = Vec::with_capacity(entries.len() * 8);
        for (address, len) in &entries {
            data.extend_from_slice(&address.to_le_bytes());
            data.extend_from_slice(&len.to_le_bytes());
        }
        let count = entries.len() as u32;
        if data.is_empty() {
            return (self.base, 0);
        }
        (self.place(data), count)
    }

    /// A table of slot addresses (`u32` each), as `$slot_in_slots` reads it; returns
    /// (address, count).
    pub fn slot_table(&mut self, slots: &[u32]) -> (u32, u32) {
        let data: Vec<u8> = slots.iter().flat_map(|slot| slot.to_le_bytes()).collect();
        if data.is_empty() {
            return (self.base, 0);
        }
        (self.place(data), slots.len() as u32)
    }

    /// A general wildcard pattern as `$wild` reads it; returns (address, count).
    pub fn pieces(&mut self, pieces: &[WildPiece]) -> (u32, u32) {
        let mut data = Vec::with_capacity(pieces.len() * 12);
        for piece in pieces {
            let (kind, address, len) = match piece {
                WildPiece::Literal(text) => {
                    let (address, len) = self.string(text);
                    (0u32, address, len)
                }
                WildPiece::Any => (1, 0, 0),
                WildPiece::One => (2, 0, 0),
            };
            data.extend_from_slice(&kind.to_le_bytes());
            data.extend_from_slice(&address.to_le_bytes());
            data.extend_from_slice(&len.to_le_bytes());
        }
        let count = pieces.len() as u32;
        (self.place(data), count)
    }
}

/// An address as the ABI stores it.
pub fn ip_bytes(address: IpAddr) -> Vec<u8> {
    match address {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.octets().to_vec(),
            None => v6.octets().to_vec(),
        },
    }
}
