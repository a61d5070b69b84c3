//! Runs the QuickFIX acceptance scripts (`.def`) in memory against `Session` + `EchoApp`,
//! with simulated time, and reports PASS/FAIL per script.
//!
//! A development harness for the session layer, not the conformance tool (that is
//! `fix-conformance`, over real TCP). It reads the scripts from `$FIX_ACCEPTANCE_DIR` or
//! `../shared/fix-acceptance` at run time (they are data, never copied here) and does nothing
//! when neither exists. Comparison follows each suite's own runner: QuickFIX/C++ (same fields
//! in the same order, `fields.fmt` tags by form) for `quickfix-fix44`, QuickFIX/J (same set of
//! fields, time fields by presence, Text by prefix) for `quickfixj-fix44`. It must not grow
//! into a second conformance runner.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rfq_router::fix::echo::EchoApp;
use rfq_router::fix::frame::{checksum, Framer};
use rfq_router::fix::session::{
    logon_comp_ids, CollectOutbox, Compat, Session, SessionConfig, SessionEvent,
};
use rfq_router::fix::store::{MemoryStore, MemoryStoreLimits};
use rfq_router::fix::validate::{ValidationOptions, Validator};
use rfq_router::time::{format_utc_timestamp_ms, Nanos};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Suite {
    QuickFix,
    QuickFixJ,
}

fn acceptance_dir() -> Option<PathBuf> {
    if let Ok(d) = std::env::var("FIX_ACCEPTANCE_DIR") {
        return Some(PathBuf::from(d));
    }
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fix-acceptance");
    d.is_dir().then_some(d)
}

fn ts_secs(t: Nanos) -> String {
    let mut b = [0u8; 21];
    let s = format_utc_timestamp_ms(t, &mut b);
    String::from_utf8_lossy(&s[..17]).into_owned()
}

/// Replaces `<TIME>`, `<TIME+n>`, `<TIME-n>`.
fn timify(line: &str, now: Nanos) -> String {
    let mut s = line.to_owned();
    while let Some(at) = s.find("<TIME") {
        let end = at + s[at..].find('>').expect("unterminated <TIME");
        let inner = &s[at + 5..end];
        let t = if inner.is_empty() {
            now
        } else {
            let n: u64 = inner[1..].parse().expect("TIME offset");
            if inner.starts_with('+') {
                Nanos(now.0 + n * Nanos::PER_SEC)
            } else {
                Nanos(now.0 - n * Nanos::PER_SEC)
            }
        };
        s.replace_range(at..=end, &ts_secs(t));
    }
    s
}

/// QuickFIX's `fixify`: BodyLength and CheckSum computed where the line has none.
fn fixify(msg: &str) -> Vec<u8> {
    if !msg.starts_with("8=") {
        return msg.as_bytes().to_vec();
    }
    let has_len = msg.contains("\x019=");
    let head_end = msg.find('\x01').map_or(msg.len(), |i| i + 1);
    let head = &msg[..head_end];
    let mut rest = msg[head_end..].to_owned();
    let mut sum_field = None;
    if let Some(i) = rest.find("\x0110=") {
        if rest.ends_with('\x01') {
            sum_field = Some(rest[i + 1..].to_owned());
            rest.truncate(i + 1);
        }
    }
    let len = if has_len {
        String::new()
    } else {
        format!("9={}\x01", rest.len())
    };
    let mut out = format!("{head}{len}{rest}").into_bytes();
    match sum_field {
        Some(f) => out.extend_from_slice(f.as_bytes()),
        None => {
            let c = checksum(&out);
            out.extend_from_slice(format!("10={c:03}\x01").as_bytes());
        }
    }
    out
}

fn fields(msg: &[u8]) -> Vec<(String, String)> {
    msg.split(|&b| b == 1)
        .filter(|f| !f.is_empty())
        .map(|f| {
            let s = String::from_utf8_lossy(f);
            match s.split_once('=') {
                Some((t, v)) => (t.to_owned(), v.to_owned()),
                None => (s.into_owned(), String::new()),
            }
        })
        .collect()
}

fn is_timestamp_form(v: &str) -> bool {
    let b = v.as_bytes();
    let base = |b: &[u8]| {
        b.len() >= 17
            && b[..8].iter().all(u8::is_ascii_digit)
            && b[8] == b'-'
            && b[9..11].iter().all(u8::is_ascii_digit)
            && b[11] == b':'
            && b[12..14].iter().all(u8::is_ascii_digit)
            && b[14] == b':'
            && b[15..17].iter().all(u8::is_ascii_digit)
    };
    base(b)
        && (b.len() == 17
            || (b.len() == 21 && b[17] == b'.' && b[18..].iter().all(u8::is_ascii_digit)))
}

fn compare_quickfix(expected: &[u8], actual: &[u8]) -> Result<(), String> {
    let e = fields(expected);
    let a = fields(actual);
    if e.len() != a.len() {
        return Err("number of fields differ".into());
    }
    for ((et, ev), (at, av)) in e.iter().zip(&a) {
        if et != at {
            return Err(format!("expected field {et} but found {at}"));
        }
        let ok = match et.as_str() {
            "10" => av.len() == 3 && av.bytes().all(|b| b.is_ascii_digit()),
            "42" | "52" | "60" | "122" => is_timestamp_form(av),
            _ => ev == av,
        };
        if !ok {
            return Err(format!("field {et}: expected {ev:?}, got {av:?}"));
        }
    }
    Ok(())
}

fn compare_quickfixj(expected: &[u8], actual: &[u8]) -> Result<(), String> {
    let map = |m: &[u8]| -> std::collections::HashMap<String, String> {
        fields(m).into_iter().filter(|f| !f.1.is_empty()).collect()
    };
    let e = map(expected);
    let a = map(actual);
    if e.get("35") != a.get("35") {
        return Err("wrong msg type".into());
    }
    let time = ["52", "60", "122"];
    for (k, v) in &a {
        if time.contains(&k.as_str()) || k == "10" || k == "9" {
            continue;
        }
        match e.get(k) {
            None => return Err(format!("unexpected field {k}={v}")),
            // Text is free-form: compared by presence (the suites word it differently).
            Some(_) if k == "58" => {}
            Some(ev) if ev != v => return Err(format!("field {k}: expected {ev:?}, got {v:?}")),
            _ => {}
        }
    }
    for k in e.keys() {
        if !a.contains_key(k) {
            return Err(format!("missing expected field {k}"));
        }
    }
    // BodyLength is not compared: the QuickFIX/J scripts' values are not consistent with
    // their own fields (QuickFIX/J's runner skips 9 whenever its timestamps lack
    // milliseconds, which is how QuickFIX/J runs them).
    Ok(())
}

struct Conn {
    pending: VecDeque<Vec<u8>>,
    inbuf: Vec<u8>,
    closed: bool,
}

struct Host {
    suite: Suite,
    now: Nanos,
    session: Session<MemoryStore>,
    app: EchoApp,
    bound: Option<usize>,
    conns: Vec<Conn>,
    framer: Framer,
}

impl Host {
    fn new(suite: Suite) -> Host {
        let (target, compat, options) = match suite {
            Suite::QuickFix => ("TW44", Compat::QUICKFIX, ValidationOptions::quickfix()),
            Suite::QuickFixJ => ("TW", Compat::QUICKFIXJ, ValidationOptions::quickfix_j()),
        };
        let mut cfg = SessionConfig::acceptor("ISLD", target);
        cfg.compat = compat;
        let now = Nanos::from_secs(1_717_243_200); // 2024-06-01T12:00:00Z
        let store = MemoryStore::new(MemoryStoreLimits::default(), now);
        let mut app = EchoApp::acceptance();
        app.drop_empty_groups = suite == Suite::QuickFixJ;
        Host {
            suite,
            now,
            session: Session::new(cfg, store, Arc::new(Validator::with_options(options))),
            app,
            bound: None,
            conns: Vec::new(),
            framer: Framer::new(16 * 1024),
        }
    }

    fn conn(&mut self, cid: usize) -> &mut Conn {
        while self.conns.len() <= cid {
            self.conns.push(Conn {
                pending: VecDeque::new(),
                inbuf: Vec::new(),
                closed: true,
            });
        }
        &mut self.conns[cid]
    }

    fn absorb(&mut self, out: CollectOutbox) {
        let Some(cid) = self.bound else {
            return;
        };
        for f in out.frames {
            self.conns[cid].pending.push_back(f);
        }
        for e in out.events {
            if let SessionEvent::Disconnect { .. } = e {
                self.conns[cid].closed = true;
                self.session.on_disconnected(self.now);
                self.bound = None;
            }
        }
    }

    fn connect(&mut self, cid: usize) {
        let c = self.conn(cid);
        c.closed = false;
        c.pending.clear();
        c.inbuf.clear();
        if self.bound.is_none() {
            self.bound = Some(cid);
            let mut out = CollectOutbox::default();
            self.session.on_connected(self.now, &mut out);
            self.absorb(out);
        }
    }

    fn disconnect(&mut self, cid: usize) {
        self.conn(cid).closed = true;
        if self.bound == Some(cid) {
            self.session.on_disconnected(self.now);
            self.bound = None;
        }
    }

    fn send(&mut self, cid: usize, bytes: &[u8]) -> Result<(), String> {
        if self.conn(cid).closed {
            return Err(format!("connection {cid} is closed, cannot send"));
        }
        self.now = Nanos(self.now.0 + Nanos::PER_MS);
        self.conns[cid].inbuf.extend_from_slice(bytes);
        if self.bound != Some(cid) {
            // The host's duplicate-identity rule: a second connection for a logged-on session
            // is refused.
            let buf = &self.conns[cid].inbuf;
            if logon_comp_ids(&self.framer, buf).is_some() {
                self.conns[cid].closed = true;
                self.conns[cid].inbuf.clear();
            }
            return Ok(());
        }
        let buf = std::mem::take(&mut self.conns[cid].inbuf);
        let mut out = CollectOutbox::default();
        let used = self
            .session
            .on_input(self.now, &buf, &mut self.app, &mut out);
        self.conns[cid].inbuf = buf[used..].to_vec();
        self.absorb(out);
        Ok(())
    }

    /// Lets simulated time run until `cid` has output or is closed (at most ~5 minutes).
    fn wait(&mut self, cid: usize) {
        for _ in 0..64 {
            if !self.conn(cid).pending.is_empty() || self.conns[cid].closed {
                return;
            }
            if self.bound != Some(cid) {
                return;
            }
            let Some(deadline) = self.session.next_deadline() else {
                return;
            };
            if deadline.0 > self.now.0 + 300 * Nanos::PER_SEC {
                return;
            }
            self.now = self.now.max(deadline);
            let mut out = CollectOutbox::default();
            self.session.on_timer(self.now, &mut out);
            self.absorb(out);
        }
    }

    fn expect(&mut self, cid: usize, expected: &[u8]) -> Result<(), String> {
        self.wait(cid);
        let Some(actual) = self.conn(cid).pending.pop_front() else {
            return Err(format!(
                "expected {}, got {}",
                show(expected),
                if self.conns[cid].closed {
                    "a disconnect"
                } else {
                    "nothing"
                }
            ));
        };
        let r = match self.suite {
            Suite::QuickFix => compare_quickfix(expected, &actual),
            Suite::QuickFixJ => compare_quickfixj(expected, &actual),
        };
        r.map_err(|why| {
            format!(
                "{why}\n    expected {}\n    received {}",
                show(expected),
                show(&actual)
            )
        })
    }

    fn expect_disconnect(&mut self, cid: usize) -> Result<(), String> {
        self.wait(cid);
        let strict = self.suite == Suite::QuickFix;
        let c = self.conn(cid);
        if strict {
            if let Some(f) = c.pending.front() {
                return Err(format!("expected disconnect, got {}", show(f)));
            }
        }
        c.pending.clear();
        if c.closed {
            Ok(())
        } else {
            Err("expected disconnect, connection still open".into())
        }
    }
}

fn show(m: &[u8]) -> String {
    String::from_utf8_lossy(m).replace('\x01', "|")
}

fn run_script(suite: Suite, text: &str) -> Result<(), String> {
    let mut host = Host::new(suite);
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches(['\r', ' ']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let kind = line.as_bytes()[0];
        let (cid, body) = match line.as_bytes().get(1..3) {
            Some([d, b',']) if d.is_ascii_digit() => ((d - b'0') as usize, &line[3..]),
            _ => (1, &line[1..]),
        };
        let at = |e: String| format!("line {}: {e}", n + 1);
        match kind {
            b'i' if body == "CONNECT" => host.connect(cid),
            b'i' if body == "DISCONNECT" => host.disconnect(cid),
            b'e' if body == "DISCONNECT" => host.expect_disconnect(cid).map_err(at)?,
            b'e' if body == "CONNECT" => {}
            b'I' => {
                let bytes = fixify(&timify(body, host.now));
                host.send(cid, &bytes).map_err(at)?;
            }
            b'E' => {
                let expected = match suite {
                    Suite::QuickFix => fixify(&timify(body, host.now)),
                    Suite::QuickFixJ => timify(body, host.now).into_bytes(),
                };
                host.expect(cid, &expected).map_err(at)?;
            }
            _ => return Err(at(format!("cannot read {line:?}"))),
        }
    }
    Ok(())
}

#[test]
fn acceptance_scripts_in_memory() {
    let Some(dir) = acceptance_dir() else {
        eprintln!("acceptance scripts not found: set FIX_ACCEPTANCE_DIR to run them");
        return;
    };
    let filter = std::env::var("SCRIPT").ok();
    let mut passed = Vec::new();
    let mut failed = Vec::new();
    for (sub, suite) in [
        ("quickfix-fix44", Suite::QuickFix),
        ("quickfixj-fix44", Suite::QuickFixJ),
    ] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join(sub))
            .expect("suite dir")
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "def"))
            .collect();
        files.sort();
        for f in files {
            let name = format!("{sub}/{}", f.file_name().unwrap().to_string_lossy());
            if filter.as_deref().is_some_and(|s| !name.contains(s)) {
                continue;
            }
            let text = String::from_utf8_lossy(&std::fs::read(&f).expect("script")).into_owned();
            match run_script(suite, &text) {
                Ok(()) => {
                    println!("PASS {name}");
                    passed.push(name);
                }
                Err(e) => {
                    println!("FAIL {name}: {e}");
                    failed.push(name);
                }
            }
        }
    }
    println!("{} passed, {} failed", passed.len(), failed.len());
    if filter.is_none() {
        assert!(failed.is_empty(), "scripts failing in memory: {failed:?}");
    }
}
