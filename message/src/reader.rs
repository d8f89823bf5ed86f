//! A bounds-checked big-endian cursor shared by the decoders.
//!
//! Every read checks the remaining length first and turns a short input into
//! [`Error::Incomplete`] (the input really ends) or [`Error::FieldOverrun`] (the structure's
//! own declared size ends), naming the field. Nothing here allocates.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::error::{Error, Result};

/// How running out of bytes is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bound {
    /// The slice ends where the input ends.
    InputEnd,
    /// The slice ends at the structure's declared size, which the input holds completely.
    Declared(usize),
}

/// A cursor over one structure (a record, a batch item) inside a larger input.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
    /// Offset of `buf[0]` in the caller's input, reported in errors.
    origin: usize,
    bound: Bound,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str, origin: usize, bound: Bound) -> Self {
        Self { buf, pos: 0, what, origin, bound }
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn what(&self) -> &'static str {
        self.what
    }

    pub(crate) fn origin(&self) -> usize {
        self.origin
    }

    fn short(&self, field: &'static str, needed: usize) -> Error {
        let available = self.buf.len().saturating_sub(self.pos);
        match self.bound {
            Bound::InputEnd => {
                Error::Incomplete { what: self.what, offset: self.origin, field, needed, available }
            }
            Bound::Declared(declared) => Error::FieldOverrun {
                what: self.what,
                offset: self.origin,
                field,
                declared,
                needed,
                available,
            },
        }
    }

    /// Takes `len` bytes, or reports the field as short.
    pub(crate) fn bytes(&mut self, field: &'static str, len: usize) -> Result<&'a [u8]> {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        match rest.get(..len) {
            Some(taken) => {
                self.pos += len;
                Ok(taken)
            }
            None => Err(self.short(field, len)),
        }
    }

    pub(crate) fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N]> {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        match rest.split_first_chunk::<N>() {
            Some((head, _)) => {
                self.pos += N;
                Ok(*head)
            }
            None => Err(self.short(field, N)),
        }
    }

    pub(crate) fn i8(&mut self, field: &'static str) -> Result<i8> {
        self.array::<1>(field).map(i8::from_be_bytes)
    }

    pub(crate) fn i16(&mut self, field: &'static str) -> Result<i16> {
        self.array::<2>(field).map(i16::from_be_bytes)
    }

    pub(crate) fn i32(&mut self, field: &'static str) -> Result<i32> {
        self.array::<4>(field).map(i32::from_be_bytes)
    }

    pub(crate) fn i64(&mut self, field: &'static str) -> Result<i64> {
        self.array::<8>(field).map(i64::from_be_bytes)
    }

    /// A non-negative length stored as a signed integer.
    pub(crate) fn len_field(&self, field: &'static str, value: i64) -> Result<usize> {
        usize::try_from(value).map_err(|_| Error::InvalidField {
            what: self.what,
            offset: self.origin,
            field,
            found: value,
            expected: "a length >= 0",
        })
    }

    /// A host field: 4 or 16 address bytes, then the port as an i32.
    pub(crate) fn socket_addr(&mut self, field: &'static str, v6: bool) -> Result<SocketAddr> {
        let ip = if v6 {
            IpAddr::V6(Ipv6Addr::from(self.array::<16>(field)?))
        } else {
            IpAddr::V4(Ipv4Addr::from(self.array::<4>(field)?))
        };
        let port = self.i32(field)?;
        let port = u16::try_from(port).map_err(|_| Error::InvalidField {
            what: self.what,
            offset: self.origin,
            field,
            found: i64::from(port),
            expected: "a port in 0..=65535",
        })?;
        Ok(SocketAddr::new(ip, port))
    }
}

/// Appends a host field: the address bytes, then the port as an i32.
pub(crate) fn put_socket_addr(out: &mut Vec<u8>, addr: SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
    }
    out.extend_from_slice(&i32::from(addr.port()).to_be_bytes());
}
