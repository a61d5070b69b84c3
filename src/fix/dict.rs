//! Flat lookup tables of the FIX 4.4 dictionary, built once from fefix's `Dictionary::fix44()`.
//!
//! Owns the translation of fefix's tree-shaped specification (fields, enums, components,
//! repeating groups, messages) into arrays that validation indexes without hashing or
//! searching: per tag (value format, enum set, header/trailer membership), per message type
//! (a small id), and per *scope* (the standard header, a message body, the standard trailer or
//! one repeating group's entry: its members in layout order, which are required, which are
//! nested groups). Components are flattened into the scope that uses them. Building allocates
//! and takes a few milliseconds; it happens once per process (`Fix44Dict::shared`). Lookups
//! never allocate. It must not hold rules about what a breach means: that is `validate`'s job.
//!
//! fefix 0.7.0 quirk handled here: every `<component name=".."/>` *reference* is imported by
//! fefix as a new, empty component that shadows the real definition, so layouts would lose
//! every component's fields. We resolve components by name to the definition that has items.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use fefix::dict::{FixDatatype, LayoutItem, LayoutItemKind};
use fefix::Dictionary;

/// Tags below this are indexed directly; FIX 4.4 defines tags 1..=956.
pub const TAG_LIMIT: u32 = 1024;
/// First user-defined tag number (FIX reserves 5000 and up for bilateral use).
pub const USER_DEFINED_MIN: u32 = 5000;
/// Deepest repeating-group nesting the tables may contain (FIX 4.4 needs 3).
pub const MAX_GROUP_DEPTH: usize = 8;
/// Most members one repeating-group entry may define (bits in a validator's presence set).
pub const MAX_GROUP_MEMBERS: usize = 256;

/// Identifies a scope: the header, the trailer, a message body or a repeating-group entry.
pub type ScopeId = u16;
/// `Member::group` for members that are not a NumInGroup field.
pub const NO_SCOPE: ScopeId = u16::MAX;

/// The syntax a field's value must have (FIX 4.4 data types, grouped by what is checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum ValueFormat {
    /// String, Currency, Exchange, Country, Language, MultipleStringValue: any bytes.
    #[default]
    Text,
    /// One byte.
    Char,
    /// `Y` or `N`.
    Boolean,
    /// Optional `-`, then digits (int, DayOfMonth).
    Int,
    /// Digits only (Length, NumInGroup, SeqNum, TagNum: never negative).
    UInt,
    /// Optional `-`, digits with an optional `.` (float, Qty, Price, PriceOffset, Amt, Percentage).
    Float,
    /// `YYYYMMDD-HH:MM:SS[.sss]`.
    UtcTimestamp,
    /// `HH:MM:SS[.sss]`.
    UtcTimeOnly,
    /// `YYYYMMDD` (UTCDateOnly, LocalMktDate).
    Date,
    /// `YYYYMM`, `YYYYMMDD` or `YYYYMMwN`.
    MonthYear,
    /// Raw data read by length: anything.
    Data,
    /// Space-separated values, each of which must be an enum value (MultipleValueString).
    MultipleValue,
}

/// The allowed values of an enumerated field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum EnumSet {
    /// Any value.
    #[default]
    Any,
    /// Single ASCII bytes: bit `b` set when byte `b` is allowed.
    Bytes(u128),
    /// Values of at most `PACKED_MAX_LEN` bytes are in `enum_table` as
    /// `(tag, pack(value))`; longer ones are `enum_spans[start..start + len]`, sorted.
    Packed { start: u32, len: u32 },
}

/// What the dictionary says about one tag.
#[derive(Debug, Clone, Copy, Default)]
pub struct FieldInfo {
    pub defined: bool,
    pub format: ValueFormat,
    pub in_header: bool,
    pub in_trailer: bool,
    /// A non-empty value needs no check: any bytes are well formed and allowed.
    pub plain: bool,
    /// A value of digits only (at most 18) is well formed and allowed: a number (int,
    /// unsigned or float) without enums.
    pub quick_digits: bool,
    /// Bit `b` set when the one-byte value `b` (ASCII) is well formed and allowed.
    pub quick_bytes: u128,
    /// The tag itself (the key of `EnumSet::Packed` lookups).
    tag: u16,
    enums: EnumSet,
}

/// One field of a scope, in layout order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Member {
    pub tag: u16,
    /// Required in every instance of the scope (a required field inside an optional
    /// component is not).
    pub required: bool,
    /// For a NumInGroup member: the scope of its group's entries; else `NO_SCOPE`.
    pub group: ScopeId,
}

/// The layout of a header, trailer, message body or repeating-group entry.
#[derive(Debug, Clone, Copy)]
pub struct Scope {
    first_member: u32,
    member_count: u32,
    first_required: u32,
    required_count: u32,
    /// For a group entry: the tag every entry starts with. 0 for other scopes.
    pub delimiter: u32,
    /// For a group entry: its NumInGroup tag. 0 for other scopes.
    pub count_tag: u32,
}

/// One message type of the dictionary.
#[derive(Debug, Clone)]
pub struct MsgTypeInfo {
    pub msg_type: String,
    pub name: String,
    pub body: ScopeId,
}

/// Small dense id of a message type known to the dictionary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MsgTypeId(pub u8);

/// Longest enum value that `pack` turns into a key.
const PACKED_MAX_LEN: usize = 7;

/// A value of at most `PACKED_MAX_LEN` bytes as one number: the bytes little-endian, the
/// length in the top byte (so `A` and `A\0` differ). `None` when the value is longer.
#[inline]
fn pack(value: &[u8]) -> Option<u64> {
    if value.len() > PACKED_MAX_LEN {
        return None;
    }
    let mut key = (value.len() as u64) << 56;
    for (i, &b) in value.iter().enumerate() {
        key |= u64::from(b) << (8 * i);
    }
    Some(key)
}

/// Slot of `(tag, key)` in an enum table of `1 << bits` slots (multiplicative hashing).
#[inline]
fn enum_slot(tag: u32, key: u64, bits: u32) -> usize {
    let h = (key ^ u64::from(tag).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    (h >> (64 - bits)) as usize
}

/// Size of the msg-type index: one-byte types at `b`, two-byte types at `128 + 128 * b0 + b1`.
const MSG_INDEX_LEN: usize = 128 + 128 * 128;

/// The FIX 4.4 dictionary as flat tables. See the module doc.
#[derive(Debug)]
pub struct Fix44Dict {
    fields: Vec<FieldInfo>,
    enum_values: Vec<u8>,
    /// (offset into `enum_values`, length), grouped per tag and sorted by value.
    enum_spans: Vec<(u32, u32)>,
    /// Open-addressing set of `(tag, pack(value))` for `EnumSet::Packed` fields; an empty
    /// slot has tag 0. Its length is `1 << enum_bits`.
    enum_table: Vec<(u64, u32)>,
    enum_bits: u32,
    scopes: Vec<Scope>,
    members: Vec<Member>,
    /// Required tags of each scope, ascending (the order QuickFIX reports them in).
    required: Vec<u16>,
    /// `slots[scope * TAG_LIMIT + tag]`: low 16 bits, position in the scope's members + 1
    /// (0: not a member); high 16 bits, the member's `group`.
    slots: Vec<u32>,
    msg_index: Vec<u8>,
    msg_types: Vec<MsgTypeInfo>,
    header: ScopeId,
    trailer: ScopeId,
    max_group_depth: usize,
}

/// Fields made required inside their component, as QuickFIX/J's FIX 4.4 dictionary has them
/// (its acceptance script 14b rejects a NewOrderSingle without Symbol as "Required tag
/// missing", 371=55): Symbol is required wherever the Instrument block is.
const REQUIRED_OVERRIDES: &[(&str, u32)] = &[("Instrument", 55)];

/// A layout item with components still by name (fefix's tree, owned).
#[derive(Debug, Clone)]
enum Item {
    Field {
        tag: u32,
        required: bool,
    },
    Component {
        name: String,
        required: bool,
    },
    Group {
        tag: u32,
        required: bool,
        items: Vec<Item>,
    },
}

fn convert(item: &LayoutItem<'_>) -> Item {
    let required = item.required();
    match item.kind() {
        LayoutItemKind::Field(f) => Item::Field {
            tag: u32::from(f.tag().get()),
            required,
        },
        LayoutItemKind::Component(c) => Item::Component {
            name: c.name().to_string(),
            required,
        },
        LayoutItemKind::Group(f, items) => Item::Group {
            tag: u32::from(f.tag().get()),
            required,
            items: items.iter().map(convert).collect(),
        },
    }
}

fn format_of(t: FixDatatype) -> ValueFormat {
    match t {
        FixDatatype::Char => ValueFormat::Char,
        FixDatatype::Boolean => ValueFormat::Boolean,
        FixDatatype::Float
        | FixDatatype::Amt
        | FixDatatype::Price
        | FixDatatype::PriceOffset
        | FixDatatype::Qty
        | FixDatatype::Percentage => ValueFormat::Float,
        FixDatatype::Int | FixDatatype::DayOfMonth => ValueFormat::Int,
        FixDatatype::Length
        | FixDatatype::NumInGroup
        | FixDatatype::SeqNum
        | FixDatatype::TagNum => ValueFormat::UInt,
        FixDatatype::Data | FixDatatype::XmlData => ValueFormat::Data,
        FixDatatype::MonthYear => ValueFormat::MonthYear,
        FixDatatype::MultipleCharValue => ValueFormat::MultipleValue,
        FixDatatype::LocalMktDate | FixDatatype::UtcDateOnly => ValueFormat::Date,
        FixDatatype::UtcTimeOnly => ValueFormat::UtcTimeOnly,
        FixDatatype::UtcTimestamp => ValueFormat::UtcTimestamp,
        _ => ValueFormat::Text,
    }
}

/// A scope under construction.
type Draft = Vec<Member>;

struct Builder {
    components: HashMap<String, Vec<Item>>,
    scopes: Vec<(Draft, u32, u32)>,
    interned: HashMap<(u32, Draft), ScopeId>,
}

impl Builder {
    fn flatten(&mut self, items: &[Item], all_required: bool, out: &mut Draft) {
        for item in items {
            match item {
                Item::Field { tag, required } => {
                    push_member(out, *tag, all_required && *required, NO_SCOPE)
                }
                Item::Component { name, required } => {
                    let inner = self.components.get(name).cloned().unwrap_or_default();
                    assert!(
                        !inner.is_empty(),
                        "FIX 4.4 component {name} has no definition"
                    );
                    self.flatten(&inner, all_required && *required, out);
                }
                Item::Group {
                    tag,
                    required,
                    items,
                } => {
                    let scope = self.group_scope(*tag, items);
                    push_member(out, *tag, all_required && *required, scope);
                }
            }
        }
    }

    fn group_scope(&mut self, count_tag: u32, items: &[Item]) -> ScopeId {
        let mut draft = Draft::new();
        self.flatten(items, true, &mut draft);
        assert!(!draft.is_empty(), "group {count_tag} has no members");
        let key = (count_tag, draft);
        if let Some(&id) = self.interned.get(&key) {
            return id;
        }
        let delimiter = u32::from(key.1[0].tag);
        let id = self.add_scope(key.1.clone(), delimiter, count_tag);
        self.interned.insert(key, id);
        id
    }

    fn add_scope(&mut self, draft: Draft, delimiter: u32, count_tag: u32) -> ScopeId {
        let id = self.scopes.len();
        assert!(id < NO_SCOPE as usize, "too many scopes");
        self.scopes.push((draft, delimiter, count_tag));
        id as ScopeId
    }
}

fn push_member(out: &mut Draft, tag: u32, required: bool, group: ScopeId) {
    assert!(
        tag > 0 && tag < TAG_LIMIT,
        "FIX 4.4 layout tag {tag} out of range"
    );
    if out.iter().any(|m| u32::from(m.tag) == tag) {
        return; // the first occurrence in layout order defines the position
    }
    out.push(Member {
        tag: tag as u16,
        required,
        group,
    });
}

fn msg_index_key(msg_type: &[u8]) -> Option<usize> {
    match *msg_type {
        [b] if b < 128 => Some(b as usize),
        [b0, b1] if b0 < 128 && b1 < 128 => Some(128 + 128 * b0 as usize + b1 as usize),
        _ => None,
    }
}

impl Fix44Dict {
    /// Builds the tables from fefix's embedded FIX 4.4 specification (a few ms).
    pub fn build() -> Fix44Dict {
        let dict = Dictionary::fix44();

        // Per-tag facts and enums.
        let mut fields = vec![FieldInfo::default(); TAG_LIMIT as usize];
        let mut enum_values = Vec::new();
        let mut enum_spans = Vec::new();
        let mut packed: Vec<(u32, u64)> = Vec::new();
        for f in dict.iter_fields() {
            let tag = u32::from(f.tag().get());
            assert!(tag < TAG_LIMIT, "FIX 4.4 tag {tag} above the table");
            let mut values: Vec<Vec<u8>> = f
                .enums()
                .map(|it| it.map(|e| e.value().as_bytes().to_vec()).collect())
                .unwrap_or_default();
            values.sort();
            values.dedup();
            // IOIQty (27) and LegIOIQty (682): FIX 4.4 allows a numeric quantity as well as the
            // relative sizes S/M/L/U its dictionary lists, so any text is accepted.
            if matches!(tag, 27 | 682) {
                values.clear();
            }
            let mut format = format_of(f.fix_datatype());
            if format == ValueFormat::Char && values.iter().any(|v| v.len() != 1) {
                // fefix's copy types MiscFeeType (139) and MassCancelRejectReason (532) as
                // CHAR with multi-character values; QuickFIX's FIX44.xml says STRING.
                format = ValueFormat::Text;
            }
            let enums = if values.is_empty() {
                EnumSet::Any
            } else if format != ValueFormat::MultipleValue
                && values.iter().all(|v| v.len() == 1 && v[0] < 128)
            {
                EnumSet::Bytes(values.iter().fold(0u128, |m, v| m | (1u128 << v[0])))
            } else {
                packed.extend(values.iter().filter_map(|v| pack(v)).map(|k| (tag, k)));
                let start = enum_spans.len() as u32;
                let long: Vec<&Vec<u8>> =
                    values.iter().filter(|v| v.len() > PACKED_MAX_LEN).collect();
                for v in &long {
                    enum_spans.push((enum_values.len() as u32, v.len() as u32));
                    enum_values.extend_from_slice(v);
                }
                EnumSet::Packed {
                    start,
                    len: long.len() as u32,
                }
            };
            fields[tag as usize] = FieldInfo {
                defined: true,
                format,
                in_header: false,
                in_trailer: false,
                plain: enums == EnumSet::Any
                    && matches!(
                        format,
                        ValueFormat::Text | ValueFormat::Data | ValueFormat::MultipleValue
                    ),
                quick_digits: enums == EnumSet::Any
                    && matches!(
                        format,
                        ValueFormat::UInt | ValueFormat::Int | ValueFormat::Float
                    ),
                quick_bytes: 0,
                tag: tag as u16,
                enums,
            };
        }

        // At most half full, so probes stay short.
        let mut enum_bits = 4;
        while (1usize << enum_bits) < packed.len() * 2 {
            enum_bits += 1;
        }
        let mut enum_table = vec![(0u64, 0u32); 1 << enum_bits];
        let slot_mask = enum_table.len() - 1;
        for &(tag, key) in &packed {
            let mut i = enum_slot(tag, key, enum_bits);
            while enum_table[i].1 != 0 {
                i = (i + 1) & slot_mask;
            }
            enum_table[i] = (key, tag);
        }

        // Components by name: the definition with items (see the module doc).
        let mut components: HashMap<String, Vec<Item>> = HashMap::new();
        for c in dict.iter_components() {
            let mut items: Vec<Item> = c.items().map(|i| convert(&i)).collect();
            for item in &mut items {
                if let Item::Field { tag, required } = item {
                    if REQUIRED_OVERRIDES.contains(&(c.name(), *tag)) {
                        *required = true;
                    }
                }
            }
            if !items.is_empty() {
                components.entry(c.name().to_string()).or_insert(items);
            }
        }
        let mut b = Builder {
            components,
            scopes: Vec::new(),
            interned: HashMap::new(),
        };

        let section = |b: &mut Builder, name: &str| -> ScopeId {
            let items = b.components.get(name).cloned().unwrap_or_default();
            assert!(!items.is_empty(), "FIX 4.4 {name} missing");
            let mut draft = Draft::new();
            b.flatten(&items, true, &mut draft);
            b.add_scope(draft, 0, 0)
        };
        let header = section(&mut b, "StandardHeader");
        let trailer = section(&mut b, "StandardTrailer");

        let mut msg_types = Vec::new();
        let mut msg_index = vec![0u8; MSG_INDEX_LEN];
        for m in dict.iter_messages() {
            let items: Vec<Item> = m.layout().map(|i| convert(&i)).collect();
            let mut draft = Draft::new();
            b.flatten(&items, true, &mut draft);
            let body = b.add_scope(draft, 0, 0);
            let key = msg_index_key(m.msg_type().as_bytes())
                .unwrap_or_else(|| panic!("msg type {} not indexable", m.msg_type()));
            assert!(msg_types.len() < 255, "too many message types");
            msg_types.push(MsgTypeInfo {
                msg_type: m.msg_type().to_string(),
                name: m.name().to_string(),
                body,
            });
            msg_index[key] = msg_types.len() as u8;
        }

        // Lay the scopes out flat.
        let mut scopes = Vec::with_capacity(b.scopes.len());
        let mut members = Vec::new();
        let mut required = Vec::new();
        let mut slots = vec![0u32; b.scopes.len() * TAG_LIMIT as usize];
        for (id, (draft, delimiter, count_tag)) in b.scopes.iter().enumerate() {
            if *count_tag != 0 {
                assert!(
                    draft.len() <= MAX_GROUP_MEMBERS,
                    "group {count_tag} has {} members",
                    draft.len()
                );
            }
            let mut req: Vec<u16> = draft.iter().filter(|m| m.required).map(|m| m.tag).collect();
            req.sort_unstable();
            scopes.push(Scope {
                first_member: members.len() as u32,
                member_count: draft.len() as u32,
                first_required: required.len() as u32,
                required_count: req.len() as u32,
                delimiter: *delimiter,
                count_tag: *count_tag,
            });
            for (pos, m) in draft.iter().enumerate() {
                slots[id * TAG_LIMIT as usize + m.tag as usize] =
                    (pos as u32 + 1) | (u32::from(m.group) << 16);
            }
            members.extend_from_slice(draft);
            required.extend_from_slice(&req);
        }
        for section in [header, trailer] {
            let s = scopes[section as usize];
            for m in &members[s.first_member as usize..(s.first_member + s.member_count) as usize] {
                let f = &mut fields[m.tag as usize];
                if section == header {
                    f.in_header = true;
                } else {
                    f.in_trailer = true;
                }
            }
        }

        let mut d = Fix44Dict {
            fields,
            enum_values,
            enum_spans,
            enum_table,
            enum_bits,
            scopes,
            members,
            required,
            slots,
            msg_index,
            msg_types,
            header,
            trailer,
            max_group_depth: 0,
        };
        let mut deepest = 0;
        for s in [header, trailer]
            .into_iter()
            .chain(d.msg_types.iter().map(|m| m.body))
        {
            deepest = deepest.max(d.group_depth(s));
        }
        assert!(
            deepest <= MAX_GROUP_DEPTH,
            "FIX 4.4 groups nest {deepest} deep"
        );
        d.max_group_depth = deepest;
        for tag in 0..d.fields.len() {
            let info = d.fields[tag];
            let mut quick = 0u128;
            for b in 0..128u8 {
                let well_formed = match info.format {
                    ValueFormat::Text
                    | ValueFormat::Data
                    | ValueFormat::MultipleValue
                    | ValueFormat::Char => true,
                    ValueFormat::Boolean => b == b'Y' || b == b'N',
                    ValueFormat::Int | ValueFormat::UInt | ValueFormat::Float => b.is_ascii_digit(),
                    _ => false,
                };
                if info.defined && well_formed && d.value_allowed(&info, &[b]) {
                    quick |= 1 << b;
                }
            }
            d.fields[tag].quick_bytes = quick;
        }
        d
    }

    /// The tables, built on first use and shared by every validator in the process.
    pub fn shared() -> Arc<Fix44Dict> {
        static SHARED: OnceLock<Arc<Fix44Dict>> = OnceLock::new();
        SHARED.get_or_init(|| Arc::new(Fix44Dict::build())).clone()
    }

    fn group_depth(&self, scope: ScopeId) -> usize {
        self.members(scope)
            .iter()
            .filter(|m| m.group != NO_SCOPE)
            .map(|m| 1 + self.group_depth(m.group))
            .max()
            .unwrap_or(0)
    }

    /// The deepest repeating-group nesting in the dictionary.
    pub fn max_group_depth(&self) -> usize {
        self.max_group_depth
    }

    /// What the dictionary says about `tag`; `None` when it does not define it.
    #[inline]
    pub fn field(&self, tag: u32) -> Option<&FieldInfo> {
        self.fields.get(tag as usize).filter(|f| f.defined)
    }

    /// Whether `value` is one of `tag`'s enum values (true for non-enumerated fields). For a
    /// MultipleValueString field, every space-separated value must be one.
    #[inline]
    pub fn value_allowed(&self, info: &FieldInfo, value: &[u8]) -> bool {
        match info.enums {
            EnumSet::Any => true,
            EnumSet::Bytes(mask) => {
                value.len() == 1 && value[0] < 128 && mask & (1u128 << value[0]) != 0
            }
            EnumSet::Packed { start, len } => {
                let tag = u32::from(info.tag);
                let one = |v: &[u8]| match pack(v) {
                    Some(key) => self.in_table(tag, key),
                    None => self.in_spans(start, len, v),
                };
                if info.format == ValueFormat::MultipleValue {
                    value.split(|&b| b == b' ').all(one)
                } else {
                    one(value)
                }
            }
        }
    }

    /// Whether `value` is one of `tag`'s values in `enum_table`.
    #[inline]
    fn in_table(&self, tag: u32, key: u64) -> bool {
        let mask = self.enum_table.len() - 1;
        let mut i = enum_slot(tag, key, self.enum_bits);
        loop {
            match self.enum_table.get(i) {
                Some(&(k, t)) if t == tag && k == key => return true,
                Some(&(_, t)) if t != 0 => i = (i + 1) & mask,
                _ => return false,
            }
        }
    }

    /// Whether `value` is one of `enum_spans[start..start + len]` (the long values of a tag).
    #[cold]
    fn in_spans(&self, start: u32, len: u32, value: &[u8]) -> bool {
        let Some(spans) = self.enum_spans.get(start as usize..(start + len) as usize) else {
            return false;
        };
        spans
            .binary_search_by(|&(off, len)| {
                self.enum_values[off as usize..(off + len) as usize].cmp(value)
            })
            .is_ok()
    }

    /// Whether `tag` has enumerated values.
    pub fn has_enums(&self, info: &FieldInfo) -> bool {
        info.enums != EnumSet::Any
    }

    /// The id of a message type the dictionary defines.
    #[inline]
    pub fn msg_type_id(&self, msg_type: &[u8]) -> Option<MsgTypeId> {
        let key = msg_index_key(msg_type)?;
        match self.msg_index[key] {
            0 => None,
            n => Some(MsgTypeId(n - 1)),
        }
    }

    pub fn msg_type_info(&self, id: MsgTypeId) -> &MsgTypeInfo {
        &self.msg_types[id.0 as usize]
    }

    pub fn msg_types(&self) -> &[MsgTypeInfo] {
        &self.msg_types
    }

    /// The body scope of a message type.
    #[inline]
    pub fn body(&self, id: MsgTypeId) -> ScopeId {
        self.msg_types[id.0 as usize].body
    }

    pub fn header(&self) -> ScopeId {
        self.header
    }

    pub fn trailer(&self) -> ScopeId {
        self.trailer
    }

    #[inline]
    pub fn scope(&self, id: ScopeId) -> &Scope {
        &self.scopes[id as usize]
    }

    /// Members of a scope in layout order.
    pub fn members(&self, id: ScopeId) -> &[Member] {
        let s = &self.scopes[id as usize];
        &self.members[s.first_member as usize..(s.first_member + s.member_count) as usize]
    }

    /// Required tags of a scope, ascending.
    pub fn required(&self, id: ScopeId) -> &[u16] {
        let s = &self.scopes[id as usize];
        &self.required[s.first_required as usize..(s.first_required + s.required_count) as usize]
    }

    /// `tag`'s position in the scope's layout and its member entry, when it is a member.
    #[inline]
    pub fn member(&self, id: ScopeId, tag: u32) -> Option<(usize, &Member)> {
        let (pos, _) = self.slot(id, tag)?;
        let first = self.scopes[id as usize].first_member as usize;
        Some((pos, &self.members[first + pos]))
    }

    /// `tag`'s position in the scope's layout and its `Member::group`, when it is a member:
    /// `member` without touching the member list.
    #[inline]
    pub fn slot(&self, id: ScopeId, tag: u32) -> Option<(usize, ScopeId)> {
        if tag >= TAG_LIMIT {
            return None;
        }
        match self
            .slots
            .get(id as usize * TAG_LIMIT as usize + tag as usize)
        {
            Some(&n) if n & 0xffff != 0 => Some(((n & 0xffff) as usize - 1, (n >> 16) as ScopeId)),
            _ => None,
        }
    }

    /// The group scope of NumInGroup `count_tag` as a member of `scope`, if it is one.
    pub fn group_in(&self, scope: ScopeId, count_tag: u32) -> Option<ScopeId> {
        self.member(scope, count_tag)
            .map(|(_, m)| m.group)
            .filter(|&g| g != NO_SCOPE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dict() -> Arc<Fix44Dict> {
        Fix44Dict::shared()
    }

    fn tags(d: &Fix44Dict, s: ScopeId) -> Vec<u32> {
        d.members(s).iter().map(|m| u32::from(m.tag)).collect()
    }

    #[test]
    fn header_and_trailer_come_from_the_standard_components() {
        let d = dict();
        let h = tags(&d, d.header());
        assert_eq!(&h[..5], &[8, 9, 35, 49, 56]);
        assert!(h.contains(&627), "NoHops is a header group");
        assert_eq!(d.required(d.header()), &[8, 9, 34, 35, 49, 52, 56]);
        assert_eq!(tags(&d, d.trailer()), vec![93, 89, 10]);
        assert!(d.field(52).unwrap().in_header && !d.field(52).unwrap().in_trailer);
        assert!(d.field(10).unwrap().in_trailer);
        assert!(!d.field(55).unwrap().in_header);
    }

    #[test]
    fn components_are_flattened_with_their_required_fields() {
        let d = dict();
        let nos = d.body(d.msg_type_id(b"D").unwrap());
        // ClOrdID, OrdType, Side, Symbol (Instrument is required), TransactTime.
        assert_eq!(d.required(nos), &[11, 40, 54, 55, 60]);
        assert!(d.member(nos, 38).is_some(), "OrderQtyData is flattened");
        assert!(d.member(nos, 55).is_some(), "Instrument is flattened");
        assert!(
            d.member(nos, 336).is_none(),
            "a group member is not a body field"
        );
        let g = d.group_in(nos, 386).expect("NoTradingSessions");
        assert_eq!(d.scope(g).delimiter, 336);
        assert_eq!(d.scope(g).count_tag, 386);
    }

    #[test]
    fn quote_request_groups_nest_parties_inside_each_leg() {
        let d = dict();
        let r = d.body(d.msg_type_id(b"R").unwrap());
        assert_eq!(d.required(r), &[131, 146]);
        let legs = d.group_in(r, 146).expect("NoRelatedSym");
        assert_eq!(d.scope(legs).delimiter, 55);
        assert!(d.required(legs).contains(&55));
        let parties = d
            .group_in(legs, 453)
            .expect("NoPartyIDs inside NoRelatedSym");
        assert_eq!(d.scope(parties).delimiter, 448);
        assert!(d.group_in(parties, 802).is_some(), "NoPartySubIDs");
        assert!(d.max_group_depth() >= 3);
        // the same component gives the same scope everywhere
        let nos = d.body(d.msg_type_id(b"D").unwrap());
        assert_eq!(d.group_in(nos, 453), Some(parties));
    }

    #[test]
    fn types_and_enums() {
        let d = dict();
        assert_eq!(d.field(38).unwrap().format, ValueFormat::Float);
        assert_eq!(d.field(34).unwrap().format, ValueFormat::UInt);
        assert_eq!(d.field(146).unwrap().format, ValueFormat::UInt);
        assert_eq!(d.field(52).unwrap().format, ValueFormat::UtcTimestamp);
        assert_eq!(d.field(54).unwrap().format, ValueFormat::Char);
        assert_eq!(d.field(18).unwrap().format, ValueFormat::MultipleValue);
        assert_eq!(d.field(139).unwrap().format, ValueFormat::Text);
        let side = d.field(54).unwrap();
        assert!(d.value_allowed(side, b"1") && !d.value_allowed(side, b"Z"));
        let st = d.field(167).unwrap();
        assert!(d.value_allowed(st, b"CS") && !d.value_allowed(st, b"BOO"));
        let ei = d.field(18).unwrap();
        assert!(d.value_allowed(ei, b"1 A") && !d.value_allowed(ei, b"1  A"));
        assert!(d.value_allowed(d.field(58).unwrap(), b"anything"));
        assert!(d.field(999).is_none() && d.field(5000).is_none() && d.field(0).is_none());
    }

    #[test]
    fn enum_tables_hold_exactly_the_dictionarys_values() {
        let d = dict();
        let mut long_values = 0;
        for f in Dictionary::fix44().iter_fields() {
            let tag = u32::from(f.tag().get());
            let info = d.field(tag).unwrap();
            let Some(values) = f.enums() else { continue };
            let values: Vec<Vec<u8>> = values.map(|e| e.value().as_bytes().to_vec()).collect();
            if matches!(tag, 27 | 682) {
                // IOIQty, LegIOIQty: any text (a numeric quantity or S/M/L).
                assert!(!d.has_enums(info), "{tag} takes a quantity too");
                assert!(d.value_allowed(info, b"5000000") && d.value_allowed(info, b"S"));
                continue;
            }
            for v in &values {
                long_values += usize::from(v.len() > PACKED_MAX_LEN);
                assert!(d.value_allowed(info, v), "{tag}={v:?}");
                // near misses: one byte more, one byte less, a NUL pad, the last byte changed
                let mut near = vec![[&v[..], b"Q"].concat(), [&v[..], b"\0"].concat()];
                near.push(v[..v.len() - 1].to_vec());
                let mut changed = v.clone();
                *changed.last_mut().unwrap() ^= 0x20;
                near.push(changed);
                for n in near
                    .into_iter()
                    .filter(|n| !n.is_empty() && !values.contains(n))
                {
                    assert!(!d.value_allowed(info, &n), "{tag}={n:?}");
                }
            }
        }
        assert!(long_values > 0, "some values take the long path");
    }

    #[test]
    fn msg_types_index() {
        let d = dict();
        for m in d.msg_types() {
            let id = d.msg_type_id(m.msg_type.as_bytes()).unwrap();
            assert_eq!(d.msg_type_info(id).msg_type, m.msg_type);
        }
        assert!(d.msg_types().len() > 90);
        assert_eq!(
            d.msg_type_info(d.msg_type_id(b"AJ").unwrap()).name,
            "QuoteResponse"
        );
        assert!(d.msg_type_id(b"*").is_none());
        assert!(d.msg_type_id(b"").is_none());
        assert!(d.msg_type_id(b"ZZZ").is_none());
        assert!(d.msg_type_id(&[0xff]).is_none());
    }
}
