//! The full-selection fixture shared by `benches/selection.rs` (`full_selection/*`) and
//! `examples/selection_profile.rs` (callgrind driver), so that the instruction counts and
//! the timings are taken over the same order, rules, dealers and score rows. It builds
//! inputs only: it must not time, assert on speed or print.

use rfq_router::dealers::{Dealer, Dealers};
use rfq_router::rfq::types::{DealerId, FixId, Side};
use rfq_router::select::instruments::{Date, SecurityMaster};
use rfq_router::select::model::{ModelConfig, Observation};
use rfq_router::select::pretrade::{analyse, OrderTerms};
use rfq_router::select::rules::RuleSet;
use rfq_router::select::scored::{load_instruments, segment_keys, ScoredPanel, TableScores};
use rfq_router::select::segment::{Buckets, SegmentKeys};
use rfq_router::select::table::{ScoreWriter, TableParams};
use rfq_router::select::{Candidate, RfqSpec};
use rfq_router::time::Nanos;
use std::path::{Path, PathBuf};

/// The order: an HY corporate bond rated BB with an ADV of 6.8 M, bought 6 M.
pub const SELECTION_ISIN: &[u8] = b"US99L2QH1094";
pub const SELECTION_QTY: f64 = 6_000_000.0;

/// The order's time: 2026-11-21 00:00 UTC.
pub fn selection_now() -> Nanos {
    Nanos(Date::parse("2026-11-21").expect("date").0 as u64 * 86_400_000_000_000)
}

/// 49 conditions that do not hold for the order, then one that does (top 5 by score).
pub fn fifty_rules() -> String {
    let mut text = String::from(
        "[default.panel]\nwindow_days = 90\ntop = 4\n[default.protocol]\nmax_dealers = 4\n\n",
    );
    for k in 0..49u32 {
        let when = match k % 5 {
            0 => format!("asset_class == muni and size > {}", 2_000_000 + k),
            1 => format!(
                "pct_adv > {} or days_since_last_trade > {}",
                100 + k,
                30 + k
            ),
            2 => format!("issuer == \"Nobody {k}\" or maturity_years > {}", 60 + k),
            3 => format!("side == sell and illiquid and impact_bps > {}", 100 + k),
            _ => "currency == \"JPY\"".to_string(),
        };
        text.push_str(&format!("[[rule]]\nname = \"r{k}\"\nwhen = '{when}'\n\n"));
    }
    text.push_str(
        "[[rule]]\nname = \"fires\"\nwhen = \"asset_class == hy_corp and rating < BBB- and size > 5_000_000\"\n\
         [rule.panel]\ntop = 5\n[rule.protocol]\nmax_dealers = 5\n",
    );
    text
}

/// `n` dealers, every third in tier 2, alternately HY and IG specialists.
pub fn selection_dealers(n: u32) -> Dealers {
    Dealers {
        dealers: (0..n)
            .map(|i| {
                Dealer::new(
                    format!("Dealer {i}"),
                    format!("D{i}"),
                    i as usize,
                    1 + (i % 3 == 0) as u8,
                    vec![if i % 2 == 0 { "hy_corp" } else { "ig_corp" }.to_string()],
                )
            })
            .collect(),
    }
}

/// The engine's candidate list for `n` dealers: every 17th offline.
pub fn selection_candidates(n: u32) -> Vec<Candidate> {
    (0..n)
        .map(|i| Candidate {
            dealer: DealerId(i as u16),
            tier: 1 + (i % 3 == 0) as u8,
            online: i % 17 != 0,
        })
        .collect()
}

/// The segment path the order touches.
pub fn selection_keys(rules: &RuleSet, master: &SecurityMaster, now: Nanos) -> SegmentKeys {
    let instrument = master.lookup(SELECTION_ISIN).expect("fixture instrument");
    let pre = analyse(
        rules.pretrade(),
        instrument,
        &OrderTerms {
            side: Some(Side::Buy),
            size: SELECTION_QTY,
            mid: None,
        },
        now,
    );
    segment_keys(
        instrument,
        &pre,
        &Buckets::default_maturity_years(),
        &Buckets::default_size_notional(),
    )
}

/// Rows for dealers `0..dealers` (and the aggregate) in every segment of `keys`: 5-40 RFQs
/// each over the past hours, quotes, and wins on two RFQs in three.
pub fn fill_selection_table(
    w: &mut ScoreWriter,
    keys: &SegmentKeys,
    dealers: u32,
    now: Nanos,
    cfg: &ModelConfig,
) {
    let agg = w.header().aggregate_dealer();
    for d in 0..dealers {
        for key in keys.update_order() {
            for dealer in [d, agg] {
                w.update(dealer, key, |s| {
                    for k in 0..(5 + d % 36) {
                        let at = Nanos(now.0 - u64::from(k) * 3_600_000_000_000);
                        s.observe(Observation::RfqSent, at, cfg).expect("observe");
                        s.observe(
                            Observation::Quoted {
                                response_s: f64::from(2 + (d + k) % 50),
                            },
                            at,
                            cfg,
                        )
                        .expect("observe");
                        if (d + k) % 3 != 0 {
                            s.observe(
                                Observation::Won {
                                    price_improvement_bps: f64::from(d % 9) - 3.0,
                                    vs_cover_bps: Some(1.0),
                                },
                                at,
                                cfg,
                            )
                            .expect("observe");
                        }
                    }
                })
                .expect("fixture table has room");
            }
        }
    }
}

/// The whole fixture: the fifty rules, the embedded security master, `now`, the model and a
/// score table of `table_dealers` dealer blocks (16 segments each) whose first `filled`
/// dealers have rows in every segment of the order. The table file is removed on drop.
pub struct SelectionWorld {
    pub rules: RuleSet,
    pub master: SecurityMaster,
    pub now: Nanos,
    pub cfg: ModelConfig,
    pub writer: ScoreWriter,
    id: FixId,
    source: FixId,
    path: PathBuf,
}

impl SelectionWorld {
    /// `tag` names the table file (one per process in the temporary directory).
    pub fn new(tag: &str, table_dealers: u32, filled: u32) -> SelectionWorld {
        let rules = RuleSet::parse(&fifty_rules(), Path::new("fixture rules")).expect("rules");
        let master = load_instruments(None).expect("embedded security master");
        let now = selection_now();
        let keys = selection_keys(&rules, &master, now);
        let cfg = ModelConfig::default();
        let path = std::env::temp_dir().join(format!("{tag}-{}.scores", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut writer =
            ScoreWriter::create(&path, TableParams::new(table_dealers, 16, &cfg), Nanos(1))
                .expect("create fixture table");
        fill_selection_table(&mut writer, &keys, filled, now, &cfg);
        SelectionWorld {
            rules,
            master,
            now,
            cfg,
            writer,
            id: FixId::new(SELECTION_ISIN).expect("isin"),
            source: FixId::new(b"4").expect("id source"),
            path,
        }
    }

    /// The order: a buy of `SELECTION_QTY` of `SELECTION_ISIN` at `now`.
    pub fn spec(&self) -> RfqSpec<'_> {
        RfqSpec {
            instrument: &self.id,
            id_source: &self.source,
            side: Some(Side::Buy),
            qty: SELECTION_QTY,
            now: self.now,
        }
    }

    /// A panel over the first `n` dealers, reading the table.
    pub fn panel(&self, n: u32) -> ScoredPanel<TableScores> {
        ScoredPanel::new(
            self.rules.clone(),
            self.master.clone(),
            &selection_dealers(n),
            TableScores::new(self.writer.reader(), self.cfg.clone()),
        )
    }
}

impl Drop for SelectionWorld {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
