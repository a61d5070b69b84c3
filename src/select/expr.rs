//! The rule condition language: parsed once at load, evaluated per RFQ without allocating.
//!
//! Owns the grammar (below), the names it knows (fields of the order, the instrument and the
//! pre-trade analytics, and the symbols of each type), type checking, and the compiled
//! program. Must not: allocate, read the clock or do I/O while evaluating; panic on any
//! input text (every limit is an error at load).
//!
//! ```text
//! condition  := or
//! or         := and (("or" | "||") and)*
//! and        := unary (("and" | "&&") unary)*
//! unary      := ("not" | "!") unary | "(" or ")" | test
//! test       := operand [("==" | "!=" | "<" | "<=" | ">" | ">=") operand
//!                        | ["not"] "in" "[" operand ("," operand)* [","] "]"]
//! operand    := field | number | "string" | symbol
//! ```
//!
//! Numbers may use `_` separators and exponents (`5_000_000`, `5e6`). Symbols take their
//! type from the other side of the comparison: ratings on any agency's scale (`BBB-`,
//! `Baa3`, `NR`), asset classes (`muni`), sides (`buy`, `sell`), `true` and `false`. Strings
//! compare case-insensitively. Ratings order by notch (AAA highest); an ordering comparison
//! with NR is false, so `rating == NR` is the way to ask about unrated bonds. A comparison
//! with an unknown number (NaN, e.g. `fair_value` without a mid) is false, except `!=`.
//!
//! The compiled form is a flat vector of ops with forward jumps for `and`/`or`
//! short-circuiting and one boolean accumulator: no stack, no recursion at run time.

use crate::select::instruments::{AssetClass, AssetClassSet, Instrument, Rating};
use crate::select::pretrade::{PreTrade, Side};
use std::fmt;
use std::ops::Range;
use winnow::ascii::{digit1, multispace0};
use winnow::combinator::{alt, cut_err, fail, opt, peek};
use winnow::error::{ContextError, ErrMode, ModalResult, StrContext, StrContextValue};
use winnow::stream::{LocatingSlice, Location, Stream};
use winnow::token::{literal, one_of, take_while};
use winnow::Parser;

/// Longest condition, in bytes.
pub const MAX_CONDITION_BYTES: usize = 4096;
/// Deepest nesting of parentheses and `not`.
pub const MAX_DEPTH: u32 = 32;
/// Most ops in one compiled condition.
pub const MAX_OPS: usize = 1024;
/// Most items in one `in [...]` list.
pub const MAX_IN_ITEMS: usize = 64;

// ---------------------------------------------------------------------------------------------
// What a condition can see

/// The value types of the language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Number,
    Rating,
    Bool,
    AssetClass,
    Side,
    Text,
}

impl Type {
    fn describe(self) -> &'static str {
        match self {
            Type::Number => "a number",
            Type::Rating => "a rating",
            Type::Bool => "a true/false flag",
            Type::AssetClass => "an asset class",
            Type::Side => "a side",
            Type::Text => "text",
        }
    }
    fn ordered(self) -> bool {
        matches!(self, Type::Number | Type::Rating)
    }
}

/// A name a condition can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Order size, face amount in the bond's currency.
    Size,
    /// Market value (size x fair value / 100; size without a mid).
    Notional,
    /// 30-day ADV, face.
    Adv,
    /// Size as a percentage of the 30-day ADV.
    PctAdv,
    DaysSinceLastTrade,
    MaturityYears,
    /// Coupon, percent.
    Coupon,
    /// Expected impact (square-root law), bps.
    ImpactBps,
    /// Pre-trade fair value (the mid), NaN when unknown.
    FairValue,
    /// Composite rating (middle of three, lower of two).
    Rating,
    RatingSp,
    RatingMoodys,
    RatingFitch,
    Illiquid,
    InvestmentGrade,
    AssetClass,
    Side,
    Sector,
    Issuer,
    Currency,
}

/// Every field, with its name in conditions and its type.
pub const FIELDS: [(&str, Field, Type); 20] = [
    ("size", Field::Size, Type::Number),
    ("notional", Field::Notional, Type::Number),
    ("adv", Field::Adv, Type::Number),
    ("pct_adv", Field::PctAdv, Type::Number),
    (
        "days_since_last_trade",
        Field::DaysSinceLastTrade,
        Type::Number,
    ),
    ("maturity_years", Field::MaturityYears, Type::Number),
    ("coupon", Field::Coupon, Type::Number),
    ("impact_bps", Field::ImpactBps, Type::Number),
    ("fair_value", Field::FairValue, Type::Number),
    ("rating", Field::Rating, Type::Rating),
    ("rating_sp", Field::RatingSp, Type::Rating),
    ("rating_moodys", Field::RatingMoodys, Type::Rating),
    ("rating_fitch", Field::RatingFitch, Type::Rating),
    ("illiquid", Field::Illiquid, Type::Bool),
    ("investment_grade", Field::InvestmentGrade, Type::Bool),
    ("asset_class", Field::AssetClass, Type::AssetClass),
    ("side", Field::Side, Type::Side),
    ("sector", Field::Sector, Type::Text),
    ("issuer", Field::Issuer, Type::Text),
    ("currency", Field::Currency, Type::Text),
];

fn field_named(name: &str) -> Option<(Field, Type)> {
    FIELDS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|&(_, f, t)| (f, t))
}

/// Everything a condition is evaluated against: the order, its instrument and its pre-trade
/// analytics. Built by the caller per RFQ; borrowed, never copied into the rules.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub instrument: &'a Instrument,
    /// `None` for a two-sided request: `side == buy` and `side == sell` are both false.
    pub side: Option<Side>,
    /// Face amount.
    pub size: f64,
    pub pretrade: &'a PreTrade,
}

#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Number(f64),
    Rating(Rating),
    Bool(bool),
    AssetClass(AssetClass),
    Side(Option<Side>),
    Text(&'a str),
}

impl Field {
    fn read<'a>(self, f: &Facts<'a>) -> Value<'a> {
        let i = f.instrument;
        let p = f.pretrade;
        match self {
            Field::Size => Value::Number(f.size),
            Field::Notional => Value::Number(p.notional),
            Field::Adv => Value::Number(p.adv_30d),
            Field::PctAdv => Value::Number(p.pct_adv),
            Field::DaysSinceLastTrade => Value::Number(p.days_since_last_trade),
            Field::MaturityYears => Value::Number(p.maturity_years),
            Field::Coupon => Value::Number(i.coupon_pct),
            Field::ImpactBps => Value::Number(p.impact_bps),
            Field::FairValue => Value::Number(p.fair_value),
            Field::Rating => Value::Rating(i.rating),
            Field::RatingSp => Value::Rating(i.agency_ratings[0]),
            Field::RatingMoodys => Value::Rating(i.agency_ratings[1]),
            Field::RatingFitch => Value::Rating(i.agency_ratings[2]),
            Field::Illiquid => Value::Bool(p.illiquid),
            Field::InvestmentGrade => Value::Bool(i.rating.is_investment_grade()),
            Field::AssetClass => Value::AssetClass(i.asset_class),
            Field::Side => Value::Side(f.side),
            Field::Sector => Value::Text(&i.sector),
            Field::Issuer => Value::Text(&i.issuer),
            Field::Currency => Value::Text(i.currency_str()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Compiled form

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
    /// The operator with its operands swapped: `k < x` is `x > k`.
    fn mirrored(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            same => same,
        }
    }
    fn ordering(self) -> bool {
        !matches!(self, CmpOp::Eq | CmpOp::Ne)
    }
    fn holds<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Const {
    Number(f64),
    Rating(Rating),
    Bool(bool),
    AssetClass(AssetClass),
    Side(Side),
    Text(Box<str>),
}

impl Const {
    fn value(&self) -> Value<'_> {
        match self {
            Const::Number(x) => Value::Number(*x),
            Const::Rating(r) => Value::Rating(*r),
            Const::Bool(b) => Value::Bool(*b),
            Const::AssetClass(a) => Value::AssetClass(*a),
            Const::Side(s) => Value::Side(Some(*s)),
            Const::Text(t) => Value::Text(t),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Operand {
    Field(Field),
    Const(u16),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    /// acc = lhs op rhs
    Cmp {
        lhs: Operand,
        op: CmpOp,
        rhs: Operand,
    },
    /// acc = number field op constant (the common case, without the generic value path)
    NumberK { field: Field, op: CmpOp, k: f64 },
    /// acc = rating field op constant rating
    RatingK { field: Field, op: CmpOp, k: Rating },
    /// acc = (asset class is in the set) != negate
    AssetClassIn { set: AssetClassSet, negate: bool },
    /// acc = lhs equals one of consts[start..start + len]
    In { lhs: Operand, start: u16, len: u16 },
    /// acc = a boolean field or constant
    Load(Operand),
    /// acc = !acc
    Not,
    /// if !acc, continue at the target (leaving acc false)
    JumpIfFalse(u16),
    /// if acc, continue at the target (leaving acc true)
    JumpIfTrue(u16),
}

/// A compiled condition. Evaluation reads the facts and nothing else.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    source: Box<str>,
    ops: Box<[Op]>,
    consts: Box<[Const]>,
}

fn equal(a: Value<'_>, b: Value<'_>) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y,
        (Value::Rating(x), Value::Rating(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::AssetClass(x), Value::AssetClass(y)) => x == y,
        (Value::Side(x), Value::Side(y)) => x.is_some() && x == y,
        (Value::Text(x), Value::Text(y)) => x.eq_ignore_ascii_case(y),
        _ => false,
    }
}

fn compare(op: CmpOp, a: Value<'_>, b: Value<'_>) -> bool {
    match (op, a, b) {
        (CmpOp::Eq, a, b) => equal(a, b),
        (CmpOp::Ne, a, b) => !equal(a, b),
        (op, Value::Number(x), Value::Number(y)) => op.holds(x, y),
        (op, Value::Rating(x), Value::Rating(y)) => match (x.notch(), y.notch()) {
            (Some(p), Some(q)) => op.holds(p, q),
            _ => false,
        },
        _ => false,
    }
}

impl Condition {
    /// Parses and type-checks `source`. Errors carry a byte offset into `source`.
    pub fn compile(source: &str) -> Result<Condition, ExprError> {
        if source.len() > MAX_CONDITION_BYTES {
            return Err(ExprError::new(
                MAX_CONDITION_BYTES,
                format!("condition longer than {MAX_CONDITION_BYTES} bytes"),
            ));
        }
        let ast = parse(source)?;
        let mut gen = Gen {
            ops: Vec::new(),
            consts: Vec::new(),
        };
        gen.node(&ast)?;
        Ok(Condition {
            source: source.into(),
            ops: gen.ops.into_boxed_slice(),
            consts: gen.consts.into_boxed_slice(),
        })
    }

    /// The text the condition was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Number of compiled ops (for diagnostics and tests).
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    fn operand<'a>(&'a self, o: Operand, facts: &Facts<'a>) -> Value<'a> {
        match o {
            Operand::Field(f) => f.read(facts),
            Operand::Const(i) => match self.consts.get(usize::from(i)) {
                Some(c) => c.value(),
                None => Value::Bool(false),
            },
        }
    }

    /// Evaluates the condition. Does not allocate; runs each op at most once.
    pub fn eval(&self, facts: &Facts<'_>) -> bool {
        let mut acc = false;
        let mut pc = 0;
        while let Some(&op) = self.ops.get(pc) {
            pc += 1;
            match op {
                Op::NumberK { field, op, k } => {
                    acc = match field.read(facts) {
                        Value::Number(x) => op.holds(x, k),
                        _ => false,
                    };
                }
                Op::RatingK { field, op, k } => {
                    acc = match field.read(facts) {
                        Value::Rating(r) => compare(op, Value::Rating(r), Value::Rating(k)),
                        _ => false,
                    };
                }
                Op::AssetClassIn { set, negate } => {
                    acc = set.contains(facts.instrument.asset_class) != negate;
                }
                Op::Cmp { lhs, op, rhs } => {
                    acc = compare(op, self.operand(lhs, facts), self.operand(rhs, facts));
                }
                Op::In { lhs, start, len } => {
                    let v = self.operand(lhs, facts);
                    let (s, l) = (usize::from(start), usize::from(len));
                    acc = self
                        .consts
                        .get(s..s + l)
                        .is_some_and(|items| items.iter().any(|c| equal(v, c.value())));
                }
                Op::Load(o) => acc = matches!(self.operand(o, facts), Value::Bool(true)),
                Op::Not => acc = !acc,
                Op::JumpIfFalse(t) if !acc => pc = usize::from(t),
                Op::JumpIfTrue(t) if acc => pc = usize::from(t),
                Op::JumpIfFalse(_) | Op::JumpIfTrue(_) => {}
            }
        }
        acc
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// A condition that does not compile: where (byte offset into the condition) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprError {
    pub offset: usize,
    pub reason: String,
}

impl ExprError {
    fn new(offset: usize, reason: impl Into<String>) -> ExprError {
        ExprError {
            offset,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: {}", self.offset, self.reason)
    }
}

impl std::error::Error for ExprError {}

// ---------------------------------------------------------------------------------------------
// Syntax tree (load time only)

#[derive(Debug, Clone, PartialEq)]
enum AtomKind<'s> {
    Name(&'s str),
    Number(f64),
    Text(&'s str),
}

#[derive(Debug, Clone, PartialEq)]
struct Atom<'s> {
    kind: AtomKind<'s>,
    span: Range<usize>,
}

#[derive(Debug, Clone, PartialEq)]
enum Ast<'s> {
    Or(Box<Ast<'s>>, Box<Ast<'s>>),
    And(Box<Ast<'s>>, Box<Ast<'s>>),
    Not(Box<Ast<'s>>),
    Cmp {
        lhs: Atom<'s>,
        op: CmpOp,
        op_span: Range<usize>,
        rhs: Atom<'s>,
    },
    In {
        lhs: Atom<'s>,
        items: Vec<Atom<'s>>,
        negated: bool,
    },
    Flag(Atom<'s>),
}

type Input<'s> = LocatingSlice<&'s str>;

const KEYWORDS: [&str; 4] = ["and", "or", "not", "in"];

fn expected(what: &'static str) -> StrContext {
    StrContext::Expected(StrContextValue::Description(what))
}

fn ws(i: &mut Input<'_>) -> ModalResult<()> {
    multispace0.void().parse_next(i)
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// A keyword not followed by more name characters (so `order` is not `or` + `der`).
fn keyword<'s>(kw: &'static str) -> impl Parser<Input<'s>, (), ErrMode<ContextError>> {
    (literal(kw), peek(opt(one_of(is_name_char)))).verify_map(|(_, next)| match next {
        None => Some(()),
        Some(_) => None,
    })
}

/// A name or symbol: letters, digits and `_`, optionally ending in `+` or `-` (for ratings
/// such as `BBB-`; the language has no arithmetic, so this is unambiguous).
fn name<'s>(i: &mut Input<'s>) -> ModalResult<&'s str> {
    (
        one_of(|c: char| c.is_ascii_alphabetic() || c == '_'),
        take_while(0.., is_name_char),
        opt(one_of(['+', '-'])),
    )
        .take()
        .parse_next(i)
}

fn number_text<'s>(i: &mut Input<'s>) -> ModalResult<&'s str> {
    let digits = |i: &mut Input<'s>| -> ModalResult<()> {
        (
            digit1,
            take_while(0.., |c: char| c.is_ascii_digit() || c == '_'),
        )
            .void()
            .parse_next(i)
    };
    (
        opt('-'),
        digits,
        opt(('.', digits)),
        opt((one_of(['e', 'E']), opt(one_of(['+', '-'])), digit1)),
    )
        .take()
        .parse_next(i)
}

fn atom<'s>(i: &mut Input<'s>) -> ModalResult<Atom<'s>> {
    let start = i.current_token_start();
    let before = i.checkpoint();
    if let Some(text) = opt(number_text).parse_next(i)? {
        let cleaned: String = text.chars().filter(|&c| c != '_').collect();
        let span = start..i.current_token_start();
        return match cleaned.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(Atom {
                kind: AtomKind::Number(x),
                span,
            }),
            _ => {
                i.reset(&before);
                cut_err(fail.context(expected("a finite number"))).parse_next(i)
            }
        };
    }
    if opt('"').parse_next(i)?.is_some() {
        let text = take_while(0.., |c: char| c != '"' && c != '\n').parse_next(i)?;
        cut_err('"')
            .context(expected("a closing `\"`"))
            .parse_next(i)?;
        return Ok(Atom {
            kind: AtomKind::Text(text),
            span: start..i.current_token_start(),
        });
    }
    let n = peek(name)
        .context(expected("a field, a number, a \"string\" or a symbol"))
        .parse_next(i)?;
    if KEYWORDS.contains(&n) {
        // Report the keyword where it stands.
        return fail
            .context(expected("a field, a number, a \"string\" or a symbol"))
            .parse_next(i);
    }
    name.parse_next(i)?;
    Ok(Atom {
        kind: AtomKind::Name(n),
        span: start..i.current_token_start(),
    })
}

fn cmp_op(i: &mut Input<'_>) -> ModalResult<CmpOp> {
    alt((
        "==".value(CmpOp::Eq),
        "!=".value(CmpOp::Ne),
        "<=".value(CmpOp::Le),
        ">=".value(CmpOp::Ge),
        "<".value(CmpOp::Lt),
        ">".value(CmpOp::Gt),
    ))
    .parse_next(i)
}

fn in_list<'s>(i: &mut Input<'s>) -> ModalResult<Vec<Atom<'s>>> {
    ws(i)?;
    cut_err('[')
        .context(expected("`[` opening the list"))
        .parse_next(i)?;
    let mut items = Vec::new();
    loop {
        ws(i)?;
        if items.is_empty() && opt(peek(']')).parse_next(i)?.is_some() {
            return cut_err(fail.context(expected("at least one item in the list"))).parse_next(i);
        }
        if items.len() == MAX_IN_ITEMS {
            return cut_err(fail.context(expected("at most 64 items in a list"))).parse_next(i);
        }
        items.push(cut_err(atom).parse_next(i)?);
        ws(i)?;
        if opt(',').parse_next(i)?.is_some() {
            ws(i)?;
            if opt(']').parse_next(i)?.is_some() {
                break;
            }
            continue;
        }
        cut_err(']').context(expected("`,` or `]`")).parse_next(i)?;
        break;
    }
    Ok(items)
}

fn test<'s>(i: &mut Input<'s>) -> ModalResult<Ast<'s>> {
    let lhs = atom(i)?;
    ws(i)?;
    let op_start = i.current_token_start();
    if let Some(op) = opt(cmp_op).parse_next(i)? {
        let op_span = op_start..i.current_token_start();
        ws(i)?;
        let rhs = cut_err(atom).parse_next(i)?;
        return Ok(Ast::Cmp {
            lhs,
            op,
            op_span,
            rhs,
        });
    }
    if opt(keyword("in")).parse_next(i)?.is_some() {
        let items = in_list(i)?;
        return Ok(Ast::In {
            lhs,
            items,
            negated: false,
        });
    }
    if opt((keyword("not"), multispace0, keyword("in")))
        .parse_next(i)?
        .is_some()
    {
        let items = in_list(i)?;
        return Ok(Ast::In {
            lhs,
            items,
            negated: true,
        });
    }
    Ok(Ast::Flag(lhs))
}

fn unary<'s>(i: &mut Input<'s>, depth: u32) -> ModalResult<Ast<'s>> {
    ws(i)?;
    if depth > MAX_DEPTH {
        return cut_err(fail.context(expected("at most 32 levels of nesting"))).parse_next(i);
    }
    if opt(alt((keyword("not"), "!".void())))
        .parse_next(i)?
        .is_some()
    {
        let inner = cut_err(|i: &mut Input<'s>| unary(i, depth + 1)).parse_next(i)?;
        return Ok(Ast::Not(Box::new(inner)));
    }
    if opt('(').parse_next(i)?.is_some() {
        let inner = cut_err(|i: &mut Input<'s>| or_expr(i, depth + 1)).parse_next(i)?;
        ws(i)?;
        cut_err(')').context(expected("`)`")).parse_next(i)?;
        return Ok(inner);
    }
    test(i)
}

fn and_expr<'s>(i: &mut Input<'s>, depth: u32) -> ModalResult<Ast<'s>> {
    let mut lhs = unary(i, depth)?;
    loop {
        ws(i)?;
        if opt(alt((keyword("and"), "&&".void())))
            .parse_next(i)?
            .is_none()
        {
            return Ok(lhs);
        }
        let rhs = cut_err(|i: &mut Input<'s>| unary(i, depth)).parse_next(i)?;
        lhs = Ast::And(Box::new(lhs), Box::new(rhs));
    }
}

fn or_expr<'s>(i: &mut Input<'s>, depth: u32) -> ModalResult<Ast<'s>> {
    let mut lhs = and_expr(i, depth)?;
    loop {
        ws(i)?;
        if opt(alt((keyword("or"), "||".void())))
            .parse_next(i)?
            .is_none()
        {
            return Ok(lhs);
        }
        let rhs = cut_err(|i: &mut Input<'s>| and_expr(i, depth)).parse_next(i)?;
        lhs = Ast::Or(Box::new(lhs), Box::new(rhs));
    }
}

fn describe(e: &ContextError) -> String {
    let text = e.to_string();
    if text.is_empty() {
        "syntax error".to_string()
    } else {
        text.replace('\n', "; ")
    }
}

fn parse(source: &str) -> Result<Ast<'_>, ExprError> {
    let mut i = LocatingSlice::new(source);
    let result = or_expr(&mut i, 0);
    let at = i.current_token_start();
    match result {
        Ok(ast) => {
            let _ = ws(&mut i);
            let rest_at = i.current_token_start();
            if rest_at < source.len() {
                let rest = &source[rest_at..];
                let what = if rest.starts_with(')') {
                    "unbalanced `)`".to_string()
                } else {
                    "expected `and`, `or`, a comparison or the end of the condition".to_string()
                };
                return Err(ExprError::new(rest_at, what));
            }
            Ok(ast)
        }
        Err(ErrMode::Backtrack(e) | ErrMode::Cut(e)) => Err(ExprError::new(at, describe(&e))),
        Err(ErrMode::Incomplete(_)) => Err(ExprError::new(at, "incomplete condition")),
    }
}

// ---------------------------------------------------------------------------------------------
// Type checking and code generation

struct Gen {
    ops: Vec<Op>,
    consts: Vec<Const>,
}

/// An operand whose type is known, or a bare symbol waiting for the other side's type.
enum Typed<'s> {
    Known(Operand, Type),
    Symbol(&'s str),
}

fn field_list() -> String {
    FIELDS.map(|(n, _, _)| n).join(", ")
}

fn symbols_of(t: Type) -> String {
    match t {
        Type::Rating => "AAA ... D (S&P/Fitch), Aaa ... C (Moody's) or NR".into(),
        Type::AssetClass => AssetClass::ALL.map(AssetClass::name).join(", "),
        Type::Side => "buy, sell".into(),
        Type::Bool => "true, false".into(),
        Type::Number => "a number".into(),
        Type::Text => "\"quoted text\"".into(),
    }
}

impl Gen {
    fn emit(&mut self, op: Op, at: usize) -> Result<usize, ExprError> {
        if self.ops.len() >= MAX_OPS {
            return Err(ExprError::new(
                at,
                format!("condition too long (more than {MAX_OPS} operations)"),
            ));
        }
        self.ops.push(op);
        Ok(self.ops.len() - 1)
    }

    fn constant(&mut self, c: Const, at: usize) -> Result<Operand, ExprError> {
        if let Some(i) = self.consts.iter().position(|k| *k == c) {
            return Ok(Operand::Const(i as u16));
        }
        if self.consts.len() >= MAX_OPS {
            return Err(ExprError::new(at, "too many constants"));
        }
        self.consts.push(c);
        Ok(Operand::Const((self.consts.len() - 1) as u16))
    }

    fn first_offset(ast: &Ast<'_>) -> usize {
        match ast {
            Ast::Or(a, _) | Ast::And(a, _) => Gen::first_offset(a),
            Ast::Not(a) => Gen::first_offset(a).saturating_sub(1),
            Ast::Cmp { lhs, .. } | Ast::In { lhs, .. } | Ast::Flag(lhs) => lhs.span.start,
        }
    }

    fn node(&mut self, ast: &Ast<'_>) -> Result<(), ExprError> {
        match ast {
            Ast::Or(a, b) | Ast::And(a, b) => {
                self.node(a)?;
                let at = Gen::first_offset(b);
                let jump = match ast {
                    Ast::Or(..) => Op::JumpIfTrue(0),
                    _ => Op::JumpIfFalse(0),
                };
                let j = self.emit(jump, at)?;
                self.node(b)?;
                let target = self.ops.len() as u16;
                self.ops[j] = match jump {
                    Op::JumpIfTrue(_) => Op::JumpIfTrue(target),
                    _ => Op::JumpIfFalse(target),
                };
                Ok(())
            }
            Ast::Not(a) => {
                self.node(a)?;
                self.emit(Op::Not, Gen::first_offset(a))?;
                Ok(())
            }
            Ast::Flag(atom) => {
                let operand = match self.classify(atom)? {
                    Typed::Known(o, Type::Bool) => o,
                    Typed::Known(_, t) => {
                        return Err(ExprError::new(
                            atom.span.start,
                            format!(
                                "{} is {}, not a condition: compare it with something",
                                atom_text(atom),
                                t.describe()
                            ),
                        ))
                    }
                    Typed::Symbol(s) => return Err(unknown_name(s, atom.span.start)),
                };
                self.emit(Op::Load(operand), atom.span.start)?;
                Ok(())
            }
            Ast::Cmp {
                lhs,
                op,
                op_span,
                rhs,
            } => {
                let (l, r, ty) = self.pair(lhs, rhs)?;
                if op.ordering() && !ty.ordered() {
                    return Err(ExprError::new(
                        op_span.start,
                        format!(
                            "`{}` orders numbers and ratings only; {} is {} (use == , != or in)",
                            op.symbol(),
                            atom_text(lhs),
                            ty.describe()
                        ),
                    ));
                }
                let compiled = self.specialise(l, *op, r, ty);
                self.emit(compiled, lhs.span.start)?;
                Ok(())
            }
            Ast::In {
                lhs,
                items,
                negated,
            } => {
                let (operand, ty) = match self.classify(lhs)? {
                    Typed::Known(o, t) => (o, t),
                    Typed::Symbol(s) => return Err(unknown_name(s, lhs.span.start)),
                };
                if matches!(operand, Operand::Const(_)) {
                    return Err(ExprError::new(
                        lhs.span.start,
                        "the left of `in` must be a field",
                    ));
                }
                if operand == Operand::Field(Field::AssetClass) {
                    let mut set = AssetClassSet::EMPTY;
                    for item in items {
                        if let Const::AssetClass(a) = self.constant_of(item, ty)? {
                            set = set.with(a);
                        }
                    }
                    self.emit(
                        Op::AssetClassIn {
                            set,
                            negate: *negated,
                        },
                        lhs.span.start,
                    )?;
                    return Ok(());
                }
                // Items go into consecutive constant slots (no de-duplication across lists).
                let start = self.consts.len();
                for item in items {
                    let c = self.constant_of(item, ty)?;
                    if self.consts.len() >= MAX_OPS {
                        return Err(ExprError::new(item.span.start, "too many constants"));
                    }
                    self.consts.push(c);
                }
                let len = self.consts.len() - start;
                self.emit(
                    Op::In {
                        lhs: operand,
                        start: start as u16,
                        len: len as u16,
                    },
                    lhs.span.start,
                )?;
                if *negated {
                    self.emit(Op::Not, lhs.span.start)?;
                }
                Ok(())
            }
        }
    }

    /// A field-versus-constant comparison of numbers, ratings or asset classes becomes a
    /// dedicated op (constant on the left: the operator is mirrored); anything else stays
    /// generic.
    fn specialise(&self, l: Operand, op: CmpOp, r: Operand, ty: Type) -> Op {
        let (field, op, k) = match (l, r) {
            (Operand::Field(f), Operand::Const(k)) => (f, op, k),
            (Operand::Const(k), Operand::Field(f)) => (f, op.mirrored(), k),
            _ => return Op::Cmp { lhs: l, op, rhs: r },
        };
        match (ty, self.consts.get(usize::from(k))) {
            (Type::Number, Some(Const::Number(k))) => Op::NumberK { field, op, k: *k },
            (Type::Rating, Some(Const::Rating(k))) => Op::RatingK { field, op, k: *k },
            (Type::AssetClass, Some(Const::AssetClass(a))) if field == Field::AssetClass => {
                Op::AssetClassIn {
                    set: AssetClassSet::EMPTY.with(*a),
                    negate: op == CmpOp::Ne,
                }
            }
            _ => Op::Cmp { lhs: l, op, rhs: r },
        }
    }

    /// Types an atom on its own: fields, numbers, strings, `true`/`false`; other names wait.
    fn classify<'s>(&mut self, atom: &Atom<'s>) -> Result<Typed<'s>, ExprError> {
        let at = atom.span.start;
        Ok(match atom.kind {
            AtomKind::Number(x) => Typed::Known(self.constant(Const::Number(x), at)?, Type::Number),
            AtomKind::Text(t) => {
                Typed::Known(self.constant(Const::Text(t.into()), at)?, Type::Text)
            }
            AtomKind::Name(n) => match field_named(n) {
                Some((f, t)) => Typed::Known(Operand::Field(f), t),
                None if n == "true" || n == "false" => {
                    Typed::Known(self.constant(Const::Bool(n == "true"), at)?, Type::Bool)
                }
                None => Typed::Symbol(n),
            },
        })
    }

    /// A literal of the expected type (symbols are resolved against it).
    fn constant_of(&mut self, atom: &Atom<'_>, ty: Type) -> Result<Const, ExprError> {
        let at = atom.span.start;
        let mismatch = |found: Type| {
            ExprError::new(
                at,
                format!(
                    "type error: expected {}, found {} {}",
                    ty.describe(),
                    found.describe(),
                    atom_text(atom)
                ),
            )
        };
        match (&atom.kind, ty) {
            (AtomKind::Number(x), Type::Number) => Ok(Const::Number(*x)),
            (AtomKind::Number(_), _) => Err(mismatch(Type::Number)),
            (AtomKind::Text(t), Type::Text) => Ok(Const::Text((*t).into())),
            (AtomKind::Text(_), _) => Err(mismatch(Type::Text)),
            (AtomKind::Name(n), _) => {
                if let Some((_, ft)) = field_named(n) {
                    return Err(ExprError::new(
                        at,
                        format!(
                            "a list holds values, not fields (`{n}` is a field of type {})",
                            ft.describe()
                        ),
                    ));
                }
                self.symbol(n, ty, at)
            }
        }
    }

    fn symbol(&self, n: &str, ty: Type, at: usize) -> Result<Const, ExprError> {
        let found = match ty {
            Type::Rating => Rating::parse_any(n).map(Const::Rating),
            Type::AssetClass => AssetClass::from_name(n).map(Const::AssetClass),
            Type::Side => match n {
                "buy" => Some(Const::Side(Side::Buy)),
                "sell" => Some(Const::Side(Side::Sell)),
                _ => None,
            },
            Type::Bool => match n {
                "true" => Some(Const::Bool(true)),
                "false" => Some(Const::Bool(false)),
                _ => None,
            },
            Type::Number => None,
            Type::Text => {
                return Err(ExprError::new(
                    at,
                    format!("unknown name `{n}`: text is written in quotes, e.g. \"{n}\""),
                ))
            }
        };
        found.ok_or_else(|| {
            if ty == Type::Number {
                unknown_name(n, at)
            } else {
                ExprError::new(
                    at,
                    format!(
                        "`{n}` is not {} (expected {})",
                        ty.describe(),
                        symbols_of(ty)
                    ),
                )
            }
        })
    }

    /// Types both sides of a comparison, resolving a bare symbol against the other side.
    fn pair(
        &mut self,
        lhs: &Atom<'_>,
        rhs: &Atom<'_>,
    ) -> Result<(Operand, Operand, Type), ExprError> {
        let l = self.classify(lhs)?;
        let r = self.classify(rhs)?;
        match (l, r) {
            (Typed::Known(lo, lt), Typed::Known(ro, rt)) => {
                if lt != rt {
                    return Err(ExprError::new(
                        rhs.span.start,
                        format!(
                            "type error: cannot compare {} ({}) with {} ({})",
                            atom_text(lhs),
                            lt.describe(),
                            atom_text(rhs),
                            rt.describe()
                        ),
                    ));
                }
                if matches!((lo, ro), (Operand::Const(_), Operand::Const(_))) {
                    return Err(ExprError::new(
                        lhs.span.start,
                        "a comparison needs at least one field",
                    ));
                }
                Ok((lo, ro, lt))
            }
            (Typed::Known(lo, lt), Typed::Symbol(s)) => {
                let c = self.symbol(s, lt, rhs.span.start)?;
                let ro = self.constant(c, rhs.span.start)?;
                Ok((lo, ro, lt))
            }
            (Typed::Symbol(s), Typed::Known(ro, rt)) => {
                if matches!(ro, Operand::Const(_)) {
                    return Err(unknown_name(s, lhs.span.start));
                }
                let c = self.symbol(s, rt, lhs.span.start)?;
                let lo = self.constant(c, lhs.span.start)?;
                Ok((lo, ro, rt))
            }
            (Typed::Symbol(s), Typed::Symbol(_)) => Err(unknown_name(s, lhs.span.start)),
        }
    }
}

fn atom_text(atom: &Atom<'_>) -> String {
    match atom.kind {
        AtomKind::Name(n) => format!("`{n}`"),
        AtomKind::Number(x) => format!("`{x}`"),
        AtomKind::Text(t) => format!("\"{t}\""),
    }
}

fn unknown_name(n: &str, at: usize) -> ExprError {
    ExprError::new(
        at,
        format!("unknown field `{n}` (fields: {})", field_list()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_precedence_and_short_circuits() {
        // `or` binds looser than `and`; compiled jumps are forward only.
        let c = Condition::compile("size > 1 or size < 0 and illiquid").unwrap();
        assert!(c.len() >= 5);
        let targets_forward = c.ops.iter().enumerate().all(|(i, op)| match op {
            Op::JumpIfFalse(t) | Op::JumpIfTrue(t) => usize::from(*t) > i,
            _ => true,
        });
        assert!(targets_forward);
    }

    #[test]
    fn keyword_prefixes_are_names() {
        let e = Condition::compile("order > 1").unwrap_err();
        assert!(e.reason.contains("unknown field `order`"), "{e}");
        assert_eq!(e.offset, 0);
    }
}
