//! Parsing QuickFIX acceptance scripts (`.def` files) into steps.
//!
//! Owns the script grammar: `iCONNECT` / `i1,CONNECT`, `iDISCONNECT` (we close),
//! `eDISCONNECT` (the peer must close), `I<fields>` (send), `E<fields>` (expect), `#` comments
//! and blank lines, with an optional one-digit connection index `N,` after the letter. Lines
//! may end in CRLF (some QuickFIX/J scripts do). This module only reads text: it does no I/O,
//! reads no clock and never panics on any input; a line it cannot read is a [`ScriptError`]
//! naming the line. Send templates keep their bytes exactly as written (garbled input in the
//! scripts is deliberate); `<TIME>` placeholders are resolved later by [`super::render`].

use super::render::SendTemplate;
use crate::fix::SOH;

/// Largest script we read, in bytes (the biggest in the suites is a few KiB).
pub const MAX_SCRIPT_BYTES: usize = 1 << 20;
/// Most steps in one script.
pub const MAX_STEPS: usize = 10_000;
/// Most fields in one expected message.
pub const MAX_EXPECTED_FIELDS: usize = 1_024;
/// Connection indices are one digit, `1..=MAX_CONNECTIONS` (the scripts use 1 and 2).
pub const MAX_CONNECTIONS: u8 = 9;

/// A connection index as written in the script (`1` when the line has none).
pub type ConnId = u8;

/// One parsed script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub steps: Vec<Step>,
}

/// One line of a script that does something (or a comment, kept for context in reports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// 1-based line number in the file.
    pub line_no: u32,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `#...`: text after the `#`.
    Comment(String),
    /// `iCONNECT`: open a TCP connection to the engine under test.
    Connect { conn: ConnId },
    /// `iDISCONNECT`: we close our connection.
    Disconnect { conn: ConnId },
    /// `eDISCONNECT`: the engine must close the connection, sending nothing more first.
    ExpectDisconnect { conn: ConnId },
    /// `I<fields>`: send this message (after `<TIME>` substitution and, where absent,
    /// BodyLength and CheckSum).
    Send {
        conn: ConnId,
        template: SendTemplate,
    },
    /// `E<fields>`: the next message received on `conn` must match this.
    Expect {
        conn: ConnId,
        expected: ExpectedMessage,
    },
}

/// An `E` line: the fields as written, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedMessage {
    pub fields: Vec<ExpectedField>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedField {
    pub tag: u32,
    pub value: Vec<u8>,
}

impl ExpectedMessage {
    /// Value of the first field with `tag`, if any.
    pub fn get(&self, tag: u32) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|f| f.tag == tag)
            .map(|f| f.value.as_slice())
    }

    /// Whether this expects a message the peer sends on its own heartbeat timer: a
    /// Heartbeat that answers no TestRequest (no TestReqID 112), or a TestRequest.
    pub fn is_timer_driven(&self) -> bool {
        match self.get(35) {
            Some(b"0") => self.get(112).is_none(),
            Some(b"1") => true,
            _ => false,
        }
    }

    /// The fields written back as `tag=value|...`, SOH shown as `|`.
    pub fn display(&self) -> String {
        let mut out = String::new();
        for f in &self.fields {
            out.push_str(&f.tag.to_string());
            out.push('=');
            out.push_str(&String::from_utf8_lossy(&f.value));
            out.push('|');
        }
        out
    }
}

/// Why a script could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptError {
    /// 1-based line, or 0 for the file as a whole.
    pub line_no: u32,
    pub reason: String,
}

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line_no == 0 {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "line {}: {}", self.line_no, self.reason)
        }
    }
}

impl std::error::Error for ScriptError {}

fn err(line_no: u32, reason: impl Into<String>) -> ScriptError {
    ScriptError {
        line_no,
        reason: reason.into(),
    }
}

impl Script {
    /// Parses a whole script.
    pub fn parse(text: &[u8]) -> Result<Script, ScriptError> {
        if text.len() > MAX_SCRIPT_BYTES {
            return Err(err(
                0,
                format!("script is {} bytes, over {MAX_SCRIPT_BYTES}", text.len()),
            ));
        }
        let mut steps = Vec::new();
        for (idx, raw_line) in text.split(|&b| b == b'\n').enumerate() {
            let line_no = u32::try_from(idx + 1).unwrap_or(u32::MAX);
            let line = raw_line.strip_suffix(b"\r").unwrap_or(raw_line);
            if line.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            if steps.len() >= MAX_STEPS {
                return Err(err(line_no, format!("more than {MAX_STEPS} steps")));
            }
            let action = parse_line(line).map_err(|reason| err(line_no, reason))?;
            steps.push(Step { line_no, action });
        }
        Ok(Script { steps })
    }
}

/// Splits `X` or `XN,` off the front of a line: (letter, connection, rest).
fn split_prefix(line: &[u8]) -> Result<(u8, ConnId, &[u8]), String> {
    let (&letter, rest) = line.split_first().ok_or_else(|| "empty line".to_string())?;
    match rest {
        [d @ b'0'..=b'9', b',', tail @ ..] => {
            let conn = d - b'0';
            if conn == 0 || conn > MAX_CONNECTIONS {
                return Err(format!(
                    "connection index {conn} outside 1..={MAX_CONNECTIONS}"
                ));
            }
            Ok((letter, conn, tail))
        }
        _ => Ok((letter, 1, rest)),
    }
}

fn parse_line(line: &[u8]) -> Result<Action, String> {
    if let Some(text) = line.strip_prefix(b"#") {
        return Ok(Action::Comment(String::from_utf8_lossy(text).into_owned()));
    }
    let (letter, conn, rest) = split_prefix(line)?;
    let rest_trimmed = trim_ascii_end(rest);
    match letter {
        b'i' | b'e' => {
            let action = match (letter, rest_trimmed) {
                (b'i', b"CONNECT") => Action::Connect { conn },
                (b'i', b"DISCONNECT") => Action::Disconnect { conn },
                (b'e', b"DISCONNECT") => Action::ExpectDisconnect { conn },
                _ => {
                    return Err(format!(
                        "unknown command {:?}",
                        String::from_utf8_lossy(line)
                    ))
                }
            };
            Ok(action)
        }
        b'I' => Ok(Action::Send {
            conn,
            template: SendTemplate::parse(rest),
        }),
        b'E' => Ok(Action::Expect {
            conn,
            expected: parse_expected(rest)?,
        }),
        other => Err(format!(
            "line starts with {:?}, not one of # i e I E",
            char::from(other)
        )),
    }
}

fn trim_ascii_end(s: &[u8]) -> &[u8] {
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |p| p + 1);
    &s[..end]
}

/// Reads `tag=value<SOH>...` from an `E` line. A final field without SOH is accepted.
fn parse_expected(body: &[u8]) -> Result<ExpectedMessage, String> {
    let body = body.strip_suffix(&[SOH]).unwrap_or(body);
    if body.is_empty() {
        return Err("expected message has no fields".to_string());
    }
    let mut fields = Vec::new();
    for (i, field) in body.split(|&b| b == SOH).enumerate() {
        if fields.len() >= MAX_EXPECTED_FIELDS {
            return Err(format!(
                "expected message has more than {MAX_EXPECTED_FIELDS} fields"
            ));
        }
        let eq = field.iter().position(|&b| b == b'=').ok_or_else(|| {
            format!(
                "expected field {} {:?} has no '='",
                i + 1,
                String::from_utf8_lossy(field)
            )
        })?;
        let tag = parse_tag(&field[..eq]).ok_or_else(|| {
            format!(
                "expected field {} has tag {:?}, not a number",
                i + 1,
                String::from_utf8_lossy(&field[..eq])
            )
        })?;
        fields.push(ExpectedField {
            tag,
            value: field[eq + 1..].to_vec(),
        });
    }
    if fields[0].tag != 8 {
        return Err("expected message does not start with BeginString (8)".to_string());
    }
    Ok(ExpectedMessage { fields })
}

/// A positive decimal tag below 2^31, as FIX allows.
pub(crate) fn parse_tag(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 10 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = s
        .iter()
        .fold(0u64, |acc, &b| acc * 10 + u64::from(b - b'0'));
    (1..=i32::MAX as u64).contains(&v).then_some(v as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn soh(s: &str) -> Vec<u8> {
        s.replace('|', "\x01").into_bytes()
    }

    #[test]
    fn parses_every_kind_of_line() {
        let text = soh(
            "# a comment\r\n\niCONNECT\r\nI8=FIX.4.4|35=A|34=1|52=<TIME>|\n\
             E8=FIX.4.4|9=5|35=A|10=0|\ni2,CONNECT\nI2,8=FIX.4.4|35=0|\ne2,DISCONNECT\n\
             i1,DISCONNECT\neDISCONNECT",
        );
        let script = Script::parse(&text).expect("parses");
        let kinds: Vec<(u32, String)> = script
            .steps
            .iter()
            .map(|s| {
                let k = match &s.action {
                    Action::Comment(t) => format!("#{t}"),
                    Action::Connect { conn } => format!("connect {conn}"),
                    Action::Disconnect { conn } => format!("disconnect {conn}"),
                    Action::ExpectDisconnect { conn } => format!("expect-disconnect {conn}"),
                    Action::Send { conn, .. } => format!("send {conn}"),
                    Action::Expect { conn, expected } => {
                        format!("expect {conn} {}", expected.display())
                    }
                };
                (s.line_no, k)
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                (1, "# a comment".to_string()),
                (3, "connect 1".to_string()),
                (4, "send 1".to_string()),
                (5, "expect 1 8=FIX.4.4|9=5|35=A|10=0|".to_string()),
                (6, "connect 2".to_string()),
                (7, "send 2".to_string()),
                (8, "expect-disconnect 2".to_string()),
                (9, "disconnect 1".to_string()),
                (10, "expect-disconnect 1".to_string()),
            ]
        );
    }

    #[test]
    fn bad_lines_name_their_line() {
        let e = Script::parse(b"iCONNECT\nX123\n").unwrap_err();
        assert_eq!(e.line_no, 2);
        let e = Script::parse(b"iCONNECT\niFOO\n").unwrap_err();
        assert_eq!(e.line_no, 2);
        let e = Script::parse(&soh("E8=FIX.4.4|abc|\n")).unwrap_err();
        assert_eq!(e.line_no, 1);
        assert!(e.reason.contains("no '='"), "{e}");
        let e = Script::parse(&soh("E8=FIX.4.4|x=1|\n")).unwrap_err();
        assert!(e.reason.contains("not a number"), "{e}");
        let e = Script::parse(&soh("E35=0|8=FIX.4.4|\n")).unwrap_err();
        assert!(e.reason.contains("BeginString"), "{e}");
        let e = Script::parse(b"i0,CONNECT\n").unwrap_err();
        assert!(e.reason.contains("outside"), "{e}");
    }

    #[test]
    fn oversized_script_is_refused() {
        let big = vec![b'#'; MAX_SCRIPT_BYTES + 1];
        assert_eq!(Script::parse(&big).unwrap_err().line_no, 0);
    }

    #[test]
    fn timer_driven_expectations() {
        let parse = |s: &str| match &Script::parse(&soh(s)).unwrap().steps[0].action {
            Action::Expect { expected, .. } => expected.clone(),
            other => panic!("{other:?}"),
        };
        assert!(parse("E8=FIX.4.4|35=0|34=2|").is_timer_driven());
        assert!(!parse("E8=FIX.4.4|35=0|34=2|112=X|").is_timer_driven());
        assert!(parse("E8=FIX.4.4|35=1|112=TEST|").is_timer_driven());
        assert!(!parse("E8=FIX.4.4|35=5|").is_timer_driven());
    }

    #[test]
    fn parse_tag_bounds() {
        assert_eq!(parse_tag(b"35"), Some(35));
        assert_eq!(parse_tag(b"0"), None);
        assert_eq!(parse_tag(b""), None);
        assert_eq!(parse_tag(b"2147483648"), None);
        assert_eq!(parse_tag(b"99999999999"), None);
    }

    /// Every script in both suites parses, when the suites are present on this machine
    /// (`../shared/fix-acceptance` beside the crate, or `$FIX_ACCEPTANCE_DIR`).
    #[test]
    fn shared_suites_parse_when_present() {
        let Some(root) = super::super::acceptance_dir() else {
            return;
        };
        for (suite, count) in [("quickfix-fix44", 59), ("quickfixj-fix44", 65)] {
            let mut parsed = 0;
            for entry in std::fs::read_dir(root.join(suite))
                .expect("suite dir")
                .flatten()
            {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "def") {
                    let text = std::fs::read(&path).expect("readable");
                    let script =
                        Script::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    assert!(
                        script
                            .steps
                            .iter()
                            .any(|s| matches!(s.action, Action::Connect { .. })),
                        "{} connects",
                        path.display()
                    );
                    parsed += 1;
                }
            }
            assert_eq!(parsed, count, "{suite}");
        }
    }
}
