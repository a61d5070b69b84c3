//! The zero-copy field index of one FIX message, and read access to it.
//!
//! Owns tokenising a complete frame (from `frame`) into `(tag, value)` references without
//! copying or allocating: a `Decoder` keeps one pre-sized index that every message reuses.
//! Length-prefixed data fields (RawData 96 after RawDataLength 95, and the other FIX 4.4
//! pairs) are read by length, so they may contain SOH. Here we only tokenise: whether the
//! fields make a valid message is `validate`'s job, which also fills in each field's
//! repeating-group scope that the group views read. Never panics on any input.

use super::frame::SOH;
use super::tags;

/// One field of a message: where its tag text and value sit in the frame.
///
/// `tag` is 0 when the tag text is not a positive decimal number below 2^31 (FIX calls that
/// "invalid tag number"; the text itself stays reachable for RefTagID).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FieldRef {
    pub tag: u32,
    /// Offset of the tag text in the frame.
    pub at: u32,
    /// Length of the value in bytes.
    pub value_len: u32,
    /// Length of the tag text in bytes.
    pub tag_len: u8,
    /// Repeating-group nesting depth (0 = not inside a group). Set by validation.
    pub depth: u8,
    /// Index (in the field list) of the NumInGroup field whose group this field belongs to;
    /// `NO_GROUP` at top level. Set by validation.
    pub group: u16,
}

/// `FieldRef::group` for fields that are not inside a repeating group.
pub const NO_GROUP: u16 = u16::MAX;

const _: () = assert!(
    std::mem::size_of::<FieldRef>() == 16,
    "FieldRef must stay 16 bytes"
);

impl FieldRef {
    pub fn value_at(&self) -> usize {
        self.at as usize + self.tag_len as usize + 1
    }
}

/// Why a frame could not be tokenised. A frame that fails here is garbled: FIX says it is
/// ignored (not answered, not counted in sequence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// A field without `=`, or a frame that does not end with SOH.
    MalformedField { at: usize },
    /// The first three fields are not BeginString, BodyLength, MsgType.
    FirstThreeFieldsOutOfOrder,
    /// More fields than the configured limit.
    TooManyFields { limit: usize },
    /// A length-prefixed data field whose length does not fit the frame.
    BadDataLength { tag: u32 },
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::MalformedField { at } => write!(f, "malformed field at byte {at}"),
            ParseError::FirstThreeFieldsOutOfOrder => {
                f.write_str("first three fields are not 8, 9, 35")
            }
            ParseError::TooManyFields { limit } => write!(f, "more than {limit} fields"),
            ParseError::BadDataLength { tag } => write!(f, "data field {tag} overruns its frame"),
        }
    }
}

/// Index of the first SOH at or after `from`. Eight bytes at a time (the classic "has a zero
/// byte" word trick on `word ^ 0x0101..`), then byte by byte for the tail: field values are
/// short, so this beats both a plain byte loop and a SIMD search's set-up cost.
#[inline]
fn find_soh(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut i = from;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("8-byte chunk")) ^ ONES;
        let zero = word.wrapping_sub(ONES) & !word & HIGHS;
        if zero != 0 {
            return Some(i + (zero.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    bytes
        .get(i..)?
        .iter()
        .position(|&b| b == SOH)
        .map(|p| i + p)
}

/// The tag text starting at `from`: its value (digits only, wrapping), the index of its `=`
/// and whether it was digits only. `None` when a SOH or the end comes first. A plain walk
/// over the slice: only the position and the value change per byte.
#[inline(always)]
fn scan_tag(frame: &[u8], from: usize) -> Option<(u32, usize, bool)> {
    let mut tag_value: u32 = 0;
    let mut digits_only = true;
    for (k, &b) in frame.get(from..)?.iter().enumerate() {
        // Digits are the common case: test for them first, `=` and SOH only otherwise.
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            if b == b'=' {
                return Some((tag_value, from + k, digits_only));
            }
            if b == SOH {
                return None;
            }
            digits_only = false;
        }
        // A non-digit makes the value meaningless, and `digits_only` says so.
        tag_value = tag_value.wrapping_mul(10).wrapping_add(u32::from(d));
    }
    None
}

/// FIX 4.4 Length -> Data field pairs: the data field's value is read by the length given.
#[inline]
fn data_tag_for_length(tag: u32) -> Option<u32> {
    if !(90..=621).contains(&tag) {
        return None; // most fields, in one comparison
    }
    Some(match tag {
        90 => 91,
        93 => 89,
        95 => 96,
        212 => 213,
        348 => 349,
        350 => 351,
        352 => 353,
        354 => 355,
        356 => 357,
        358 => 359,
        360 => 361,
        362 => 363,
        364 => 365,
        445 => 446,
        618 => 619,
        621 => 622,
        _ => return None,
    })
}

/// Reusable tokeniser. One per session or per thread; decoding never allocates once the
/// index has grown to `max_fields` (it is created at that capacity).
#[derive(Debug)]
pub struct Decoder {
    fields: Vec<FieldRef>,
    max_fields: usize,
}

impl Decoder {
    pub fn new(max_fields: usize) -> Decoder {
        let max_fields = max_fields.clamp(4, NO_GROUP as usize - 1);
        Decoder {
            fields: Vec::with_capacity(max_fields),
            max_fields,
        }
    }

    /// Tokenises a complete frame (as returned by `Framer`). The frame must start with
    /// `8=` and end with the checksum field's SOH.
    pub fn decode<'a>(&'a mut self, frame: &'a [u8]) -> Result<Message<'a>, ParseError> {
        let max_fields = self.max_fields;
        let fields = &mut self.fields;
        fields.clear();
        let len = frame.len();
        let mut pos = 0usize;
        // The data field a length field announced (0: none) and its length.
        let mut pending_tag = 0u32;
        let mut pending_len = 0usize;
        while pos < len {
            // One pass over the tag: find `=` and parse the digits on the way.
            let field_at = pos;
            let Some((tag_value, eq, digits_only)) = scan_tag(frame, field_at) else {
                return Err(ParseError::MalformedField { at: field_at });
            };
            let tag_len = eq - field_at;
            if tag_len > u8::MAX as usize {
                return Err(ParseError::MalformedField { at: field_at });
            }
            // A tag is 1 to 9 digits with no leading zero; anything else is 0 ("invalid").
            let tag = if digits_only && tag_len <= 9 && frame[field_at] != b'0' {
                tag_value
            } else {
                0
            };
            let value_at = eq + 1;
            let value_end = if pending_tag == 0 {
                match find_soh(frame, value_at) {
                    Some(i) => i,
                    None => return Err(ParseError::MalformedField { at: field_at }),
                }
            } else {
                let data_tag = std::mem::take(&mut pending_tag);
                data_value_end(frame, value_at, tag, data_tag, pending_len)
                    .map_err(|()| ParseError::MalformedField { at: field_at })?
                    .map_err(|tag| ParseError::BadDataLength { tag })?
            };
            // Length fields (most tags fail the first comparison): a data field follows.
            if (90..=621).contains(&tag) {
                if let Some((data_tag, n)) = data_announced(tag, &frame[value_at..value_end]) {
                    pending_tag = data_tag;
                    pending_len = n;
                }
            }
            if fields.len() == max_fields {
                return Err(ParseError::TooManyFields { limit: max_fields });
            }
            fields.push(FieldRef {
                tag,
                at: field_at as u32,
                value_len: (value_end - value_at) as u32,
                tag_len: tag_len as u8,
                depth: 0,
                group: NO_GROUP,
            });
            pos = value_end + 1;
        }
        if self.fields.len() < 4
            || self.fields[0].tag != tags::BEGIN_STRING
            || self.fields[1].tag != tags::BODY_LENGTH
            || self.fields[2].tag != tags::MSG_TYPE
        {
            return Err(ParseError::FirstThreeFieldsOutOfOrder);
        }
        Ok(Message {
            frame,
            fields: &mut self.fields,
        })
    }
}

/// Where the value of the field after a length field ends: read by length when it is the
/// announced data field (`Ok(Err(tag))` when the length overruns the frame or misses its SOH),
/// up to the next SOH otherwise (`Err(())` when there is none).
#[cold]
fn data_value_end(
    frame: &[u8],
    value_at: usize,
    tag: u32,
    data_tag: u32,
    len: usize,
) -> Result<Result<usize, u32>, ()> {
    if data_tag == tag {
        let end = value_at.checked_add(len).filter(|&e| e < frame.len());
        return Ok(match end {
            Some(e) if frame[e] == SOH => Ok(e),
            _ => Err(tag),
        });
    }
    find_soh(frame, value_at).map(Ok).ok_or(())
}

/// The data field a length field `tag` with value `v` announces, and its length.
#[cold]
fn data_announced(tag: u32, v: &[u8]) -> Option<(u32, usize)> {
    Some((data_tag_for_length(tag)?, parse_len(v)?))
}

fn parse_len(v: &[u8]) -> Option<usize> {
    if v.is_empty() || v.len() > 9 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        v.iter()
            .fold(0usize, |a, &b| a * 10 + usize::from(b - b'0')),
    )
}

/// One field as seen by readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    pub tag: u32,
    pub value: &'a [u8],
}

/// A tokenised message: the frame and its field index. Field order is kept as received.
#[derive(Debug)]
pub struct Message<'a> {
    frame: &'a [u8],
    fields: &'a mut [FieldRef],
}

impl<'a> Message<'a> {
    /// The whole frame, from `8=` to the checksum's SOH.
    pub fn frame(&self) -> &'a [u8] {
        self.frame
    }

    /// The field index, in wire order.
    pub fn field_refs(&self) -> &[FieldRef] {
        self.fields
    }

    /// Mutable access for the validator, which annotates group scope.
    pub(crate) fn field_refs_mut(&mut self) -> &mut [FieldRef] {
        self.fields
    }

    /// The value of the field at index `i`.
    #[inline]
    pub fn value_of(&self, r: &FieldRef) -> &'a [u8] {
        let s = r.value_at();
        &self.frame[s..s + r.value_len as usize]
    }

    /// The tag text of a field as received (for RefTagID of an invalid tag).
    pub fn tag_text_of(&self, r: &FieldRef) -> &'a [u8] {
        let s = r.at as usize;
        &self.frame[s..s + r.tag_len as usize]
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Fields in wire order.
    pub fn iter(&self) -> impl Iterator<Item = Field<'a>> + '_ {
        self.fields.iter().map(move |r| Field {
            tag: r.tag,
            value: self.value_of(r),
        })
    }

    /// The first occurrence of `tag` outside any repeating group.
    #[inline]
    pub fn get(&self, tag: u32) -> Option<&'a [u8]> {
        self.fields
            .iter()
            .find(|r| r.tag == tag && r.depth == 0)
            .map(|r| self.value_of(r))
    }

    /// Index of the first top-level occurrence of `tag`.
    pub fn position(&self, tag: u32) -> Option<usize> {
        self.fields
            .iter()
            .position(|r| r.tag == tag && r.depth == 0)
    }

    /// `get` parsed as an unsigned integer (no sign, digits only).
    pub fn get_u64(&self, tag: u32) -> Option<u64> {
        self.get(tag).and_then(parse_u64)
    }

    /// MsgType (35) value: always present, the decoder checks it.
    pub fn msg_type(&self) -> &'a [u8] {
        self.value_of(&self.fields[2])
    }

    pub fn begin_string(&self) -> &'a [u8] {
        self.value_of(&self.fields[0])
    }

    pub fn seq_num(&self) -> Option<u64> {
        self.get_u64(tags::MSG_SEQ_NUM)
    }

    /// `Y` in a boolean field.
    pub fn flag(&self, tag: u32) -> bool {
        self.get(tag) == Some(b"Y")
    }

    /// The entries of the repeating group whose NumInGroup field is `count_tag`, at top level.
    /// Needs a validated message (validation sets the scope the iterator follows).
    pub fn group(&self, count_tag: u32) -> GroupIter<'_, 'a> {
        match self.position(count_tag) {
            Some(i) => GroupIter::new(self, i),
            None => GroupIter::empty(self),
        }
    }
}

/// Parses a FIX unsigned integer (digits only, at most 19 digits).
pub fn parse_u64(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 {
        return None;
    }
    let mut n = 0u64;
    for &b in v {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(b - b'0');
    }
    Some(n)
}

/// Iterates over the entries of one repeating group; each entry is a `GroupEntry`.
pub struct GroupIter<'m, 'a> {
    msg: &'m Message<'a>,
    count_index: usize,
    next: usize,
    end: usize,
}

impl<'m, 'a> GroupIter<'m, 'a> {
    fn new(msg: &'m Message<'a>, count_index: usize) -> Self {
        let fields = msg.field_refs();
        let depth = fields[count_index].depth;
        let mut end = count_index + 1;
        while end < fields.len() && fields[end].depth > depth {
            end += 1;
        }
        GroupIter {
            msg,
            count_index,
            next: count_index + 1,
            end,
        }
    }

    fn empty(msg: &'m Message<'a>) -> Self {
        GroupIter {
            msg,
            count_index: 0,
            next: 0,
            end: 0,
        }
    }
}

impl<'m, 'a> Iterator for GroupIter<'m, 'a> {
    type Item = GroupEntry<'m, 'a>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.end {
            return None;
        }
        let fields = self.msg.field_refs();
        let start = self.next;
        let delimiter = fields[start].tag;
        let mut i = start + 1;
        while i < self.end
            && !(fields[i].group as usize == self.count_index && fields[i].tag == delimiter)
        {
            i += 1;
        }
        self.next = i;
        Some(GroupEntry {
            msg: self.msg,
            start,
            end: i,
        })
    }
}

/// One entry of a repeating group: the fields `start..end` of the message index.
pub struct GroupEntry<'m, 'a> {
    msg: &'m Message<'a>,
    start: usize,
    end: usize,
}

impl<'m, 'a> GroupEntry<'m, 'a> {
    fn own_depth(&self) -> u8 {
        self.msg.field_refs()[self.start].depth
    }

    /// The first occurrence of `tag` directly in this entry (not in a nested group).
    pub fn get(&self, tag: u32) -> Option<&'a [u8]> {
        let d = self.own_depth();
        self.msg.field_refs()[self.start..self.end]
            .iter()
            .find(|r| r.tag == tag && r.depth == d)
            .map(|r| self.msg.value_of(r))
    }

    pub fn get_u64(&self, tag: u32) -> Option<u64> {
        self.get(tag).and_then(parse_u64)
    }

    /// `get` of each of `tags` in one pass over the entry: the first occurrence of each,
    /// directly in this entry. The same answers as `tags.map(|t| self.get(t))`.
    pub fn get_each<const N: usize>(&self, tags: [u32; N]) -> [Option<&'a [u8]>; N] {
        let d = self.own_depth();
        let mut found = [None; N];
        for r in &self.msg.field_refs()[self.start..self.end] {
            if r.depth != d {
                continue;
            }
            for (k, &tag) in tags.iter().enumerate() {
                if r.tag == tag && found[k].is_none() {
                    found[k] = Some(self.msg.value_of(r));
                }
            }
        }
        found
    }

    /// A nested repeating group of this entry.
    pub fn group(&self, count_tag: u32) -> GroupIter<'m, 'a> {
        let d = self.own_depth();
        let fields = self.msg.field_refs();
        match (self.start..self.end).find(|&i| fields[i].tag == count_tag && fields[i].depth == d) {
            Some(i) => GroupIter::new(self.msg, i),
            None => GroupIter::empty(self.msg),
        }
    }

    /// Fields of this entry in wire order, nested groups included.
    pub fn iter(&self) -> impl Iterator<Item = Field<'a>> + '_ {
        self.msg.field_refs()[self.start..self.end]
            .iter()
            .map(move |r| Field {
                tag: r.tag,
                value: self.msg.value_of(r),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fix::frame::tests::frame;

    #[test]
    fn tokenises_fields_in_order_without_copying() {
        let f = frame("35=0|34=2|49=A|56=B|52=20020619-16:14:10|112=hi|");
        let mut d = Decoder::new(64);
        let m = d.decode(&f).unwrap();
        let tags: Vec<u32> = m.iter().map(|x| x.tag).collect();
        assert_eq!(tags, vec![8, 9, 35, 34, 49, 56, 52, 112, 10]);
        assert_eq!(m.get(112), Some(&b"hi"[..]));
        assert_eq!(m.msg_type(), b"0");
        assert_eq!(m.seq_num(), Some(2));
        let v = m.get(49).unwrap();
        assert!(std::ptr::eq(
            v.as_ptr(),
            f[f.windows(4).position(|w| w == b"49=A").unwrap() + 3..].as_ptr()
        ));
    }

    #[test]
    fn invalid_tags_keep_their_text() {
        let f = frame("35=0|34=2|-1=HI|0=x|5a=y|");
        let mut d = Decoder::new(64);
        let m = d.decode(&f).unwrap();
        let refs: Vec<FieldRef> = m.field_refs().to_vec();
        assert_eq!(refs[4].tag, 0);
        assert_eq!(m.tag_text_of(&refs[4]), b"-1");
        assert_eq!(refs[5].tag, 0);
        assert_eq!(refs[6].tag, 0);
        assert_eq!(m.tag_text_of(&refs[6]), b"5a");
    }

    #[test]
    fn data_fields_may_contain_soh() {
        let f = frame("35=B|34=2|148=x|95=5|96=a\x01b\x01c|");
        let mut d = Decoder::new(64);
        let m = d.decode(&f).unwrap();
        assert_eq!(m.get(96), Some(&b"a\x01b\x01c"[..]));
        let f = frame("35=B|34=2|95=50|96=abc|");
        assert_eq!(
            Decoder::new(64).decode(&f).unwrap_err(),
            ParseError::BadDataLength { tag: 96 }
        );
    }

    #[test]
    fn empty_values_are_tokens_not_errors() {
        let f = frame("35=0|34=2|56=|");
        let mut d = Decoder::new(64);
        let m = d.decode(&f).unwrap();
        assert_eq!(m.get(56), Some(&b""[..]));
    }

    #[test]
    fn refuses_what_is_not_tag_value() {
        let mut d = Decoder::new(64);
        assert!(matches!(
            d.decode(b"8=FIX.4.4\x019=5\x0135=0\x01junk\x0110=000\x01"),
            Err(ParseError::MalformedField { .. })
        ));
        assert_eq!(
            d.decode(b"8=FIX.4.4\x0135=0\x019=5\x0110=000\x01")
                .unwrap_err(),
            ParseError::FirstThreeFieldsOutOfOrder
        );
        assert!(matches!(
            d.decode(b"8=FIX.4.4\x019=5\x0135=0\x0110=000"),
            Err(ParseError::MalformedField { .. })
        ));
        let mut small = Decoder::new(5);
        let f = frame("35=0|34=2|49=A|56=B|");
        assert_eq!(
            small.decode(&f).unwrap_err(),
            ParseError::TooManyFields { limit: 5 }
        );
    }

    #[test]
    fn find_soh_agrees_with_a_byte_search_at_every_offset() {
        let mut buf = vec![b'x'; 40];
        for soh_at in 0..40 {
            buf.iter_mut().for_each(|b| *b = b'x');
            buf[soh_at] = SOH;
            for from in 0..40 {
                let want = buf[from..].iter().position(|&b| b == SOH).map(|p| p + from);
                assert_eq!(find_soh(&buf, from), want, "soh at {soh_at}, from {from}");
            }
        }
        // bytes that differ from SOH only in high bits must not match
        let tricky = [0x81u8, 0x00, 0x02, 0xFF, 0x80, 0x41, 0x01, 0x7F, 0x01];
        assert_eq!(find_soh(&tricky, 0), Some(6));
        assert_eq!(find_soh(&tricky, 7), Some(8));
        assert_eq!(find_soh(b"", 0), None);
        assert_eq!(find_soh(b"abc", 5), None);
    }

    #[test]
    fn parse_u64_is_strict() {
        assert_eq!(parse_u64(b"0012"), Some(12));
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"-1"), None);
        assert_eq!(parse_u64(b"1.0"), None);
        assert_eq!(parse_u64(b"99999999999999999999"), None);
    }
}
