//! The protobuf wire format by hand: varints, length-delimited records, fixed 32/64-bit values.
//! The reader never panics and never reads past its slice: every bad byte is a `Malformation`.

use super::Malformation;

/// The four wire types Kubernetes messages use (groups, 3 and 4, are rejected).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WireType {
    Varint,
    Fixed64,
    Len,
    Fixed32,
}

impl WireType {
    fn from_bits(bits: u64) -> Result<Self, Malformation> {
        match bits {
            0 => Ok(WireType::Varint),
            1 => Ok(WireType::Fixed64),
            2 => Ok(WireType::Len),
            5 => Ok(WireType::Fixed32),
            other => Err(Malformation::UnsupportedWireType(other as u8)),
        }
    }

    fn bits(self) -> u8 {
        match self {
            WireType::Varint => 0,
            WireType::Fixed64 => 1,
            WireType::Len => 2,
            WireType::Fixed32 => 5,
        }
    }

    /// The name protobuf documentation uses, for error messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            WireType::Varint => "varint",
            WireType::Fixed64 => "fixed64",
            WireType::Len => "length-delimited",
            WireType::Fixed32 => "fixed32",
        }
    }
}

/// A cursor over one message's bytes.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, position: 0 }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.position >= self.bytes.len()
    }

    pub(crate) fn varint(&mut self) -> Result<u64, Malformation> {
        let mut value = 0u64;
        for index in 0..10 {
            let Some(&byte) = self.bytes.get(self.position) else {
                return Err(Malformation::TruncatedVarint);
            };
            self.position += 1;
            // The tenth byte may only carry the 64th bit.
            if index == 9 && byte > 1 {
                return Err(Malformation::VarintOverflow);
            }
            value |= u64::from(byte & 0x7f) << (7 * index);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(Malformation::VarintOverflow)
    }

    /// A record's key: field number and wire type.
    pub(crate) fn key(&mut self) -> Result<(u32, WireType), Malformation> {
        let key = self.varint()?;
        let wire_type = WireType::from_bits(key & 7)?;
        let number = key >> 3;
        if number == 0 || number > u64::from(u32::MAX >> 3) {
            return Err(Malformation::InvalidFieldNumber(number));
        }
        Ok((number as u32, wire_type))
    }

    pub(crate) fn len_delimited(&mut self) -> Result<&'a [u8], Malformation> {
        let length = self.varint()?;
        let available = self.bytes.len() - self.position;
        if length > available as u64 {
            return Err(Malformation::LengthPastEnd { length, available });
        }
        let start = self.position;
        self.position += length as usize;
        Ok(&self.bytes[start..self.position])
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], Malformation> {
        let available = self.bytes.len() - self.position;
        let Some(bytes) = self.bytes.get(self.position..self.position + N) else {
            return Err(Malformation::LengthPastEnd {
                length: N as u64,
                available,
            });
        };
        self.position += N;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub(crate) fn fixed64(&mut self) -> Result<u64, Malformation> {
        Ok(u64::from_le_bytes(self.fixed::<8>()?))
    }

    /// Skips one record's value of the given wire type (an unknown field).
    pub(crate) fn skip(&mut self, wire_type: WireType) -> Result<(), Malformation> {
        match wire_type {
            WireType::Varint => self.varint().map(drop),
            WireType::Fixed64 => self.fixed::<8>().map(drop),
            WireType::Len => self.len_delimited().map(drop),
            WireType::Fixed32 => self.fixed::<4>().map(drop),
        }
    }
}

/// An output buffer with the few writes a Go-compatible encoder needs.
#[derive(Default)]
pub(crate) struct Writer {
    pub(crate) bytes: Vec<u8>,
}

impl Writer {
    pub(crate) fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.bytes.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.bytes.push(value as u8);
    }

    pub(crate) fn key(&mut self, number: u32, wire_type: WireType) {
        self.varint((u64::from(number) << 3) | u64::from(wire_type.bits()));
    }

    pub(crate) fn len_delimited(&mut self, number: u32, bytes: &[u8]) {
        self.key(number, WireType::Len);
        self.varint(bytes.len() as u64);
        self.bytes.extend_from_slice(bytes);
    }

    pub(crate) fn varint_field(&mut self, number: u32, value: u64) {
        self.key(number, WireType::Varint);
        self.varint(value);
    }

    pub(crate) fn fixed64_field(&mut self, number: u32, value: u64) {
        self.key(number, WireType::Fixed64);
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    /// Writes field `number` as a nested message produced by `body`, which writes into this
    /// same buffer; the length prefix is fixed up afterwards, so no temporary buffers.
    pub(crate) fn nested<E>(
        &mut self,
        number: u32,
        body: impl FnOnce(&mut Writer) -> Result<(), E>,
    ) -> Result<(), E> {
        self.key(number, WireType::Len);
        let start = self.bytes.len();
        self.bytes.push(0);
        body(self)?;
        let length = self.bytes.len() - start - 1;
        if length < 0x80 {
            self.bytes[start] = length as u8;
        } else {
            let mut prefix = Writer::default();
            prefix.varint(length as u64);
            self.bytes.splice(start..start + 1, prefix.bytes);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_their_boundaries() {
        for value in [
            0,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u64::from(u32::MAX),
            i64::MIN as u64,
            u64::MAX,
        ] {
            let mut writer = Writer::default();
            writer.varint(value);
            let mut reader = Reader::new(&writer.bytes);
            assert_eq!(reader.varint(), Ok(value));
            assert!(reader.is_empty());
        }
    }

    #[test]
    fn malformed_varints_and_lengths_are_errors() {
        let cases: [(&[u8], Malformation); 4] = [
            (&[0x80], Malformation::TruncatedVarint),
            (&[0xff; 10], Malformation::VarintOverflow),
            (
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
                Malformation::VarintOverflow,
            ),
            (
                &[0x05, 0x01],
                Malformation::LengthPastEnd {
                    length: 5,
                    available: 1,
                },
            ),
        ];
        for (bytes, expected) in cases {
            let mut reader = Reader::new(bytes);
            let result = if bytes.len() == 2 {
                reader.len_delimited().map(drop)
            } else {
                reader.varint().map(drop)
            };
            assert_eq!(result, Err(expected), "{bytes:?}");
        }
    }

    #[test]
    fn keys_reject_groups_and_field_zero() {
        assert_eq!(
            Reader::new(&[0x0b]).key(),
            Err(Malformation::UnsupportedWireType(3))
        );
        assert_eq!(
            Reader::new(&[0x02]).key(),
            Err(Malformation::InvalidFieldNumber(0))
        );
        assert_eq!(Reader::new(&[0x12]).key(), Ok((2, WireType::Len)));
    }

    #[test]
    fn nested_lengths_longer_than_one_byte_are_fixed_up() {
        let mut writer = Writer::default();
        writer
            .nested::<()>(1, |inner| {
                inner.len_delimited(2, &[7; 200]);
                Ok(())
            })
            .unwrap();
        let mut reader = Reader::new(&writer.bytes);
        assert_eq!(reader.key(), Ok((1, WireType::Len)));
        let body = reader.len_delimited().unwrap();
        assert_eq!(body.len(), 203);
        assert!(reader.is_empty());
    }
}
